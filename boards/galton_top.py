"""The Galton-board emulator (:class:`hdl.galton.GaltonBoard`) on a board, behind the EP core's host link.

The link (:class:`boards.hostlink.HostLink`, protocol version 2 of :mod:`boards.protocol`: frames with
a sequence number and a CRC-16, go-back-N recovery, sessions) is the EP core's, unchanged in its bytes;
the board tops are :mod:`boards.top`'s. :class:`GaltonLinkSpec` is the link's view of a
:class:`~spec.galton.GaltonSpec`, and :class:`GaltonLinkAdapter` presents the emulator with the EP
core's port set:

* ``wcmd``/``wrsp``: a link "word" is one memory word of the emulator (``data_bits``: a threshold or
  a histogram counter), a link "address" its address in ``spec.memory_map()`` (WRITE_WORD and
  READ_WORD; the link takes the low ``addr_bits``/``data_bits`` bits, the host checks the ranges);
* ``reg``: the Galton register map (:mod:`spec.galton`) unchanged, plus one register of the adapter's
  own, :data:`REG_LINK_STATUS` (15, unused by the emulator), on which the link rests (below);
* ``inp``/``out``/``dump``: tied off. The view's ``link_commands`` leave out INPUT, INPUT_Z, STORE,
  RUN_STORED and STORE_INFO, which the link answers with ERROR 1 (unknown opcode). The emulator's own
  ``out`` stream (one ball per board per cycle, which no UART could carry) drains into an
  always-ready sink: the histograms are the readout, and the block runs at full rate whether or not
  ``REG_CTRL`` bit 1 (histogram-only) is set.

**Register writes and memory commands while the emulator runs.** The emulator ignores CTRL, SEED and
BALLS writes and does not accept memory commands while it runs or clears. The link therefore holds a
WRITE_REG, WRITE_WORD or READ_WORD until :data:`REG_LINK_STATUS` bit 0 (running or clearing) is 0: behind
a limited run (``REG_BALLS`` > 0) it is applied when the run ends. During an unlimited run (``REG_BALLS``
= 0: only a STOP ends it) it is dropped with ERROR 8 (``ERR_BUSY``) instead (bit 1). A WRITE_REG of
``REG_CMD`` with the STOP bit is applied at once. READ_REG never waits: status polls work during a run.

:data:`REG_LINK_STATUS` is made from the emulator's ``REG_STATUS`` and ``REG_REMAINING``, which the adapter
samples in turn (one a cycle) while the link rests on it, and reads 0 until fresh after any other
register access: bit 0 = running or clearing (or not sampled yet: the link waits), bit 1 = running
without a ball limit (``REG_REMAINING`` was 0 one cycle before ``REG_STATUS`` said running: nothing but
the link starts a run, so it ran then too, and a limited run never runs with 0 balls left), bit 2 =
running.

Classes: :class:`LinkedGalton` (a :class:`boards.top.LinkedCore`: byte streams, what the fast
simulations drive), :class:`UARTLinkedGalton` (a :class:`boards.top.UARTLinkedCore`: serial lines),
:class:`GaltonBoardTop` (a :class:`boards.top.BoardTop` with Galton's defaults: 115,200 baud; LED 0 =
running or clearing, LED 1 = fault, LED 2 = heartbeat; a PLL via ``clock_mhz`` on ECP5 boards) and
:class:`GaltonHost` (the host side, on :class:`boards.host.FramedLinkHost`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hdl.regport import RegSignature
from spec.galton import (
    CMD_CLEAR,
    CMD_START,
    CMD_STOP,
    CTRL_CORRELATED,
    CTRL_HIST_ONLY,
    REG_BALLS,
    REG_CMD,
    REG_CTRL,
    REG_DONE,
    REG_REMAINING,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    STATUS_WRITE_REFUSED,
    GaltonSpec,
)

from .host import FramedLinkHost, LinkError, LinkTimeout, SpecMismatchError
from .hostlink import connect_stream, fields_width
from .protocol import (
    CMD_INFO,
    CMD_READ_REG,
    CMD_READ_WORD,
    CMD_SYNC,
    CMD_WRITE_REG,
    CMD_WRITE_WORD,
    ERR_UNKNOWN_OPCODE,
    MESSAGES,
    MSG_REG,
    MSG_WORD,
    PROTOCOL_VERSION,
    REG_ADDR_LIMIT,
    LinkFormat,
    SpecView,
)
from .top import BoardTop, LinkedCore, UARTLinkedCore

REG_LINK_STATUS = 15  # the adapter's register (unused by the emulator): where the link rests
LINK_WAIT, LINK_UNLIMITED, LINK_RUNNING = 1, 2, 4  # its bits
GALTON_COMMANDS = (CMD_SYNC, CMD_WRITE_REG, CMD_READ_REG, CMD_WRITE_WORD, CMD_READ_WORD, CMD_INFO)


@dataclass(frozen=True)
class GaltonLinkSpec(SpecView):
    """The host link's view of a :class:`GaltonSpec` (the attributes :class:`boards.protocol.LinkFormat`
    and :class:`boards.hostlink.HostLink` read; one 1-bit lane, one-beat samples: no samples go over it)."""

    spec: GaltonSpec
    spec_type = GaltonSpec
    kind = "galton"
    status_addr = REG_LINK_STATUS
    link_commands = GALTON_COMMANDS
    refuse_bit = 1  # REG_LINK_STATUS bit 1: an unlimited run
    immediate_writes = ((REG_CMD, CMD_STOP),)
    lanes = 1
    input_bits = 1
    label_bits = 1
    layers = (1, 1)

    def tiles(self, k: int) -> int:
        return 1

    @property
    def addr_bits(self) -> int:
        return self.spec.addr_bits

    @property
    def link_word_bits(self) -> int:
        return self.spec.data_bits

    def input_fields(self):
        return [("pixels[0]", 1), ("label", 1)]

    def output_fields(self):
        return [("pred", 1)]

    def wcmd_fields(self):
        return self.spec.cmd_fields()  # data, addr, write: the link's order too

    def wrsp_fields(self):
        return self.spec.rsp_fields()


def _view(spec) -> GaltonLinkSpec:
    if isinstance(spec, GaltonLinkSpec):
        return spec
    if not isinstance(spec, GaltonSpec):
        raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
    return GaltonLinkSpec(spec)


class GaltonLinkAdapter(wiring.Component):
    """:class:`hdl.galton.GaltonBoard` with the EP core's port set for :func:`boards.hostlink.connect_core`
    (see the module docstring); ``board`` is the emulator."""

    def __init__(self, view: GaltonLinkSpec, *, rows_per_stage: int = 1):
        from hdl.galton import GaltonBoard

        self.view = _view(view)
        self.board = GaltonBoard(self.view.spec, rows_per_stage=rows_per_stage)
        v = self.view
        super().__init__({
            "inp": In(stream.Signature(fields_width(v.input_fields()))),
            "out": Out(stream.Signature(1)),
            "dump": Out(stream.Signature(8)),
            "wcmd": In(stream.Signature(fields_width(v.wcmd_fields()))),
            "wrsp": Out(stream.Signature(fields_width(v.wrsp_fields()))),
            "reg": In(RegSignature()),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.board = b = self.board
        connect_stream(m, self.wcmd, b.cmd)
        connect_stream(m, b.rsp, self.wrsp)
        # no samples, no predictions, no dump; the ball stream drains into an always-ready sink
        m.d.comb += [self.inp.ready.eq(1), self.out.valid.eq(0), self.dump.valid.eq(0), b.out.ready.eq(1)]
        m.d.comb += [b.reg.wdata.eq(self.reg.wdata), b.reg.we.eq(self.reg.we)]

        # REG_LINK_STATUS: REG_STATUS and REG_REMAINING sampled in turn while the link rests on it
        rest = self.reg.addr == REG_LINK_STATUS
        phase = Signal()  # 0: sample REG_STATUS this cycle, 1: REG_REMAINING
        st_valid, st_run, st_clr = Signal(), Signal(), Signal()
        rem_valid, rem_zero, unlimited = Signal(), Signal(), Signal()
        with m.If(rest & ~self.reg.we):
            m.d.comb += b.reg.addr.eq(Mux(phase, REG_REMAINING, REG_STATUS))
            m.d.sync += phase.eq(~phase)
            with m.If(~phase):
                m.d.sync += [st_valid.eq(1), st_run.eq(b.reg.rdata[0]), st_clr.eq(b.reg.rdata[1]),
                             unlimited.eq(rem_valid & rem_zero & b.reg.rdata[0])]
            with m.Else():
                m.d.sync += [rem_valid.eq(1), rem_zero.eq(b.reg.rdata == 0)]
        with m.Else():  # another register (or a write of REG_LINK_STATUS, which the emulator refuses)
            m.d.comb += b.reg.addr.eq(self.reg.addr)
            m.d.sync += [phase.eq(0), st_valid.eq(0), rem_valid.eq(0), unlimited.eq(0)]
        m.d.comb += self.reg.rdata.eq(Mux(rest, Cat(~st_valid | st_run | st_clr, unlimited, st_run & st_valid),
                                          b.reg.rdata))
        return m


def galton_core_factory(rows_per_stage: int = 1):
    """For :class:`boards.top.BoardTop`: ``factory(view) → GaltonLinkAdapter``."""
    return lambda view: GaltonLinkAdapter(view, rows_per_stage=rows_per_stage)


def _check_link_args(view: GaltonLinkSpec, depth, timeout_cycles=None) -> None:
    """The link's argument checks, made before any elaboratable is (no "created but never used")."""
    lo = LinkFormat(view).min_rx_fifo_depth()
    if isinstance(depth, bool) or not isinstance(depth, int) or not lo <= depth < 1 << 16:
        raise ValueError(f"rx_fifo_depth must be an integer in [{lo}, 65535] (bytes), not {depth!r}")
    if timeout_cycles is not None and (
        isinstance(timeout_cycles, bool) or not isinstance(timeout_cycles, int) or timeout_cycles < 1
    ):
        raise ValueError(f"timeout_cycles must be a positive integer or None, not {timeout_cycles!r}")


class LinkedGalton(LinkedCore):
    """The emulator behind the host link (:class:`boards.top.LinkedCore`), byte-stream ports ``rx``/``tx``,
    ``core_busy`` (:data:`REG_LINK_STATUS` bit 0), ``error``; ``board`` is the emulator.

    Parameters: ``spec`` (a :class:`GaltonSpec`), ``rx_fifo_depth``, ``timeout_cycles`` (as
    :class:`boards.hostlink.HostLink`), ``rows_per_stage`` (the emulator's pipeline)."""

    def __init__(self, spec: GaltonSpec, *, rx_fifo_depth: int = 512, timeout_cycles: int | None = None,
                 rows_per_stage: int = 1):
        view = _view(spec)
        _check_link_args(view, rx_fifo_depth, timeout_cycles)
        adapter = GaltonLinkAdapter(view, rows_per_stage=rows_per_stage)
        self.board = adapter.board
        super().__init__(adapter, view, rx_fifo_depth=rx_fifo_depth, timeout_cycles=timeout_cycles)


class UARTLinkedGalton(UARTLinkedCore):
    """:class:`LinkedGalton` behind an 8N1 UART (:class:`boards.top.UARTLinkedCore`): serial lines
    ``rx``/``tx``, ``core_busy``, sticky ``fault``. ``divisor``: clock cycles per bit."""

    def __init__(self, spec: GaltonSpec, *, divisor: int, rx_fifo_depth: int = 512,
                 timeout_cycles: int | None = None, rows_per_stage: int = 1):
        view = _view(spec)
        _check_link_args(view, rx_fifo_depth, timeout_cycles)
        adapter = GaltonLinkAdapter(view, rows_per_stage=rows_per_stage)
        self.board = adapter.board
        super().__init__(adapter, view, divisor=divisor, rx_fifo_depth=rx_fifo_depth, timeout_cycles=timeout_cycles)


class GaltonBoardTop(BoardTop):
    """:class:`boards.top.BoardTop` for the emulator: the board oscillator with the platform's power-on
    reset and user button, or (``clock_mhz``, ECP5 boards) a PLL held in reset until it locks; the UART
    on the ``uart`` resource; LED 0 = running (or clearing), LED 1 = fault (sticky), LED 2 = heartbeat.

    Parameters
    ----------
    spec : GaltonSpec
    baud : int or None — UART rate (default 115,200; ``None``: the board's fastest exact rate).
    rx_fifo_depth : int — receive FIFO bytes (512 = one iCE40 EBR).
    timeout_s : float or None — the link's mid-frame timeout (default 0.1 s).
    clock_mhz : float or None — core clock from a PLL (ECP5 only); ``None``: the oscillator.
    rows_per_stage : int — the emulator's pipeline (:class:`hdl.galton.GaltonBoard`; default 1).
    """

    def __init__(self, spec: GaltonSpec, *, baud: int | None = 115200, rx_fifo_depth: int = 512,
                 timeout_s: float | None = 0.1, clock_mhz: float | None = None, rows_per_stage: int = 1):
        view = _view(spec)
        if clock_mhz is not None and (
            isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) or not clock_mhz > 0
        ):
            raise ValueError(f"clock_mhz must be a positive number of MHz or None, not {clock_mhz!r}")
        if timeout_s is not None and (
            isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0
        ):
            raise ValueError(f"timeout_s must be a positive number of seconds or None, not {timeout_s!r}")
        _check_link_args(view, rx_fifo_depth)
        from hdl.galton import pipeline_stages

        pipeline_stages(view.spec, rows_per_stage)  # checked here, before any elaboratable is made
        self.rows_per_stage = rows_per_stage
        super().__init__(galton_core_factory(rows_per_stage), view, baud=baud, rx_fifo_depth=rx_fifo_depth,
                         timeout_s=timeout_s, clock_mhz=clock_mhz)


# ================================================================================== host side
class GaltonLinkError(LinkError):
    """The device answered something the protocol does not allow, or reported an ERROR (``code``,
    ``opcode``)."""


class GaltonLinkTimeout(GaltonLinkError, LinkTimeout):
    """The transport returned no bytes while the host waited for a message."""


class GaltonHost(FramedLinkHost):
    """Drive a :class:`GaltonBoardTop` (or :class:`LinkedGalton` in simulation) over a byte transport,
    with the EP host's link layer (:class:`boards.host.FramedLinkHost`: frames, SYNC credit, recovery).

    Parameters
    ----------
    transport
        ``write(bytes)`` and ``read(n) -> bytes`` (may return fewer bytes; none means a timeout).
    spec : GaltonSpec
        Checked against INFO's and ``REG_SPEC_ID``'s spec id on construction.

    Raises
    ------
    GaltonLinkError
        On another protocol version, or a spec id mismatch (naming both ids); a device ERROR later
        (e.g. 8, busy: a command sent during an unlimited run).
    """

    Error = GaltonLinkError
    Timeout = GaltonLinkTimeout

    def _raise_device_error(self, code: int, opcode: int, expect: int) -> None:
        if code == ERR_UNKNOWN_OPCODE:  # the sample opcodes are unknown to this link by design: noted
            return  # in error_log; the recovery that follows checks that nothing was lost
        super()._raise_device_error(code, opcode, expect)

    def __init__(self, transport, spec: GaltonSpec):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.spec = spec
        self.view = GaltonLinkSpec(spec)
        self._open_link(transport, LinkFormat(self.view), MESSAGES)
        p = self._open_session()
        version, depth, spec_id = p[0], int.from_bytes(p[1:3], "little"), int.from_bytes(p[3:7], "little")
        if version != PROTOCOL_VERSION:
            raise GaltonLinkError(f"the device speaks host-link protocol version {version}, this host "
                                  f"{PROTOCOL_VERSION}")
        self.rx_fifo_depth = depth
        self.protocol_version = version
        for what, got in (("link", spec_id), ("emulator", self.read_reg(REG_SPEC_ID))):
            if got != spec.spec_id:
                raise SpecMismatchError(
                    f"the {what} was built for spec id 0x{got:08x}, but the host's spec has id 0x{spec.spec_id:08x}"
                    f": load the bitstream built from this Galton spec"
                )

    # ---- raw commands -------------------------------------------------------------------------
    def _check_reg(self, addr: int) -> None:
        if isinstance(addr, bool) or not isinstance(addr, int) or not 0 <= addr < REG_ADDR_LIMIT:
            raise ValueError(f"register address must be in 0..{REG_ADDR_LIMIT - 1}, not {addr!r}")

    def _check_mem(self, addr: int) -> None:
        if isinstance(addr, bool) or not isinstance(addr, int) or not 0 <= addr < 1 << self.spec.addr_bits:
            raise ValueError(
                f"memory address must be in 0..{(1 << self.spec.addr_bits) - 1} "
                f"(addr_bits={self.spec.addr_bits}), not {addr!r}"
            )

    def write_reg(self, addr: int, value: int) -> None:
        """WRITE_REG: waits on the device for a limited run to end; refused (ERROR 8) during an unlimited
        run, except a STOP (applied at once)."""
        self._check_reg(addr)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 32:
            raise ValueError(f"register value must be in 0..2^32-1, not {value!r}")
        self._send(bytes((CMD_WRITE_REG, addr)) + value.to_bytes(4, "little"))

    def read_reg(self, addr: int) -> int:
        """READ_REG: read at once, also while running (``REG_LINK_STATUS`` = 15 is the adapter's)."""
        self._check_reg(addr)
        p = self._request(bytes((CMD_READ_REG, addr)), MSG_REG)
        if p[0] != addr:
            raise GaltonLinkError(f"READ_REG {addr}: the answer is for register {p[0]}")
        return int.from_bytes(p[1:5], "little")

    def write_mem(self, addr: int, data: int) -> None:
        self._check_mem(addr)
        if isinstance(data, bool) or not isinstance(data, int) or not 0 <= data < 1 << self.spec.data_bits:
            raise ValueError(
                f"memory data must be in 0..{(1 << self.spec.data_bits) - 1} "
                f"(data_bits={self.spec.data_bits}), not {data!r}"
            )
        f = self.format
        self._send(bytes((CMD_WRITE_WORD,)) + addr.to_bytes(f.addr_bytes, "little")
                   + data.to_bytes(f.word_bytes, "little"))

    def read_mems(self, addrs: Iterable[int]) -> list[int]:
        """Read several words, pipelined (the answers come in command order)."""
        addrs = list(addrs)
        for a in addrs:
            self._check_mem(a)
        for a in addrs:
            self._send(bytes((CMD_READ_WORD,)) + a.to_bytes(self.format.addr_bytes, "little"))
        return [int.from_bytes(self._wait(MSG_WORD), "little") for _ in addrs]

    def read_mem(self, addr: int) -> int:
        return self.read_mems([addr])[0]

    def _refuse_if_unlimited(self, what: str) -> None:
        """Several frames in a row would each be refused during an unlimited run: ask first."""
        if self.read_reg(REG_LINK_STATUS) & LINK_UNLIMITED:
            raise GaltonLinkError(f"{what}: the board runs without a ball limit; stop() it first")

    # ---- the emulator -------------------------------------------------------------------------
    def write_thresholds(self, thresholds: Sequence) -> None:
        """Write a ``[2][N][N]`` table (table, row, junction; junction ≤ row used), values 0 … 2^k."""
        s = self.spec
        self._refuse_if_unlimited("write_thresholds")
        for c in range(2):
            for i in range(s.rows):
                for j in range(i + 1):
                    self.write_mem(s.threshold_addr(c, i, j), int(thresholds[c][i][j]))

    def read_thresholds(self) -> list[list[list[int]]]:
        s = self.spec
        self._refuse_if_unlimited("read_thresholds")
        addrs = [s.threshold_addr(c, i, j) for c in range(2) for i in range(s.rows) for j in range(i + 1)]
        vals = iter(self.read_mems(addrs))
        return [[[next(vals) if j <= i else 0 for j in range(s.rows)] for i in range(s.rows)] for c in range(2)]

    def read_histograms(self) -> list[list[int]]:
        """``[B][N + 1]`` counters (the reads wait on the device for a limited run to end)."""
        s = self.spec
        self._refuse_if_unlimited("read_histograms")
        vals = iter(self.read_mems([s.hist_addr(b, i) for b in range(s.boards) for i in range(s.n_bins)]))
        return [[next(vals) for _ in range(s.n_bins)] for _ in range(s.boards)]

    def start(self, balls: int, *, correlated: bool = False, hist_only: bool = True, seed: int | None = None,
              clear: bool = True) -> None:
        """Configure and start a run of ``balls`` balls per board (0: until :meth:`stop`). Behind a
        limited run the writes wait on the device for it to end; during an unlimited run this raises."""
        if isinstance(balls, bool) or not isinstance(balls, int) or not 0 <= balls < 1 << self.spec.count_bits:
            raise ValueError(
                f"balls must be in 0..{(1 << self.spec.count_bits) - 1} (count_bits="
                f"{self.spec.count_bits}), not {balls!r}"
            )
        self._refuse_if_unlimited("start")
        self.write_reg(REG_CTRL, CTRL_CORRELATED * bool(correlated) | CTRL_HIST_ONLY * bool(hist_only))
        if seed is not None:
            self.write_reg(REG_SEED, seed)
        self.write_reg(REG_BALLS, balls)
        self.write_reg(REG_CMD, CMD_START | (CMD_CLEAR if clear else 0))

    def stop(self) -> None:
        """STOP: applied at once by the link, also during a run."""
        self.write_reg(REG_CMD, CMD_STOP)

    def status(self) -> dict[str, int]:
        """``REG_STATUS`` (raw), ``write_refused`` (its bit 4: an out-of-range register or threshold write
        was refused, spec.galton ``register_write_error``/``memory_write_error``; sticky until
        :meth:`clear_write_refused`), ``REG_DONE`` and ``REG_REMAINING``."""
        st = self.read_reg(REG_STATUS)
        return {
            "status": st,
            "write_refused": int(bool(st & STATUS_WRITE_REFUSED)),
            "done": self.read_reg(REG_DONE),
            "remaining": self.read_reg(REG_REMAINING),
        }

    def clear_write_refused(self) -> None:
        """Clear ``REG_STATUS`` bit 4 (any write of ``REG_STATUS`` clears it)."""
        self.write_reg(REG_STATUS, 0)
