"""The Galton-board emulator (:class:`hdl.galton.GaltonBoard`) on a board: UART, byte protocol, board top.

* :class:`GaltonLink` — the Galton link protocol (below) on the EP link's receive FIFO, parser and
  framer (:class:`boards.hostlink.LinkParser`), driving the emulator's ``reg`` port and its
  ``cmd``/``rsp`` memory port.
* :class:`LinkedGalton` — link + emulator with byte-stream ports (what the fast simulations drive).
  The emulator's ``out`` stream is tied to an always-ready sink: one ball per board per cycle cannot
  cross a UART, so the balls are counted in the on-chip histograms (read back over the link) and
  the block always runs at full rate, whether or not the host sets ``REG_CTRL`` bit 1
  (histogram-only).
* :class:`UARTLinkedGalton` — the same behind :class:`~boards.uart.UARTRx`/:class:`~boards.uart.UARTTx`.
* :class:`GaltonBoardTop` — an elaboratable for amaranth-boards platforms, with the conventions of
  :class:`boards.top.BoardTop`: board oscillator or (ULX3S) a PLL, power-on reset plus a user
  button, the ``uart`` resource, LED 0 = running, LED 1 = fault (sticky), LED 2 = heartbeat.
* :class:`GaltonHost` — the host side (pure Python, on the EP host's link layer
  :class:`boards.host.LinkHost`): any transport with ``write(bytes)`` and ``read(n)`` (a serial
  port, or :mod:`boards.simlink`'s simulated transports).

Galton link protocol (version 1)
--------------------------------
Every frame is an opcode/tag byte followed by fixed-size little-endian fields. Sizes follow from
the :class:`~spec.galton.GaltonSpec`: ``A = ceil(addr_bits/8)`` bytes of memory address and
``D = ceil(data_bits/8)`` bytes of memory data (16 rows, ≤ 16 boards, 32-bit counters: A = 2, D = 4).

Host → device:

======  =========  ========================  =====================================================
opcode  command    fields after the opcode   answer
======  =========  ========================  =====================================================
0x00    SYNC       token (1)                 ``0x80`` token
0x01    WRITE_REG  addr (1), value (4)       none (waits for the board, see below)
0x02    READ_REG   addr (1)                  ``0x82`` addr (1), value (4), read at once
0x03    WRITE_MEM  addr (A), data (D)        none (waits for the board)
0x04    READ_MEM   addr (A)                  ``0x84`` data (D) (waits for the board)
0x06    INFO       —                         ``0x86`` version (1), rx_fifo_depth (2), spec id (4),
                                             link kind (1) = ``0x47`` ("G")
======  =========  ========================  =====================================================

``0xFF`` ERROR code (1), opcode (1) replaces a command's effect and answer: code 1 = unknown opcode
(any byte not listed above, e.g. the EP link's INPUT ``0x05``), 2 = the bytes of a command stopped
coming for ``timeout_cycles``, 3 = busy (the command would wait for an unlimited run, which only a
STOP ends), 4 = out of range (register address ≥ 16, memory address ≥ ``2^addr_bits``, memory data
≥ ``2^data_bits``). After an ERROR the parser expects an opcode again.

**Waiting for the board.** The emulator ignores CTRL/SEED/BALLS writes and refuses memory commands
while it runs or clears its histograms. So WRITE_REG (except a REG_CMD write with the STOP bit,
applied at once), WRITE_MEM and READ_MEM wait until the board is idle: they queue behind a
limited run (``REG_BALLS`` > 0) and are executed when it ends; during an unlimited run they are
answered with ERROR 3 and dropped (send STOP first). READ_REG never waits (status polls work while
running). Answers come in command order.

**Flow control.** A UART cannot be back-pressured: the host never has more than ``rx_fifo_depth``
bytes (INFO) in flight beyond the last SYNC echo (:class:`GaltonHost` does this).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from amaranth.build import ResourceError
from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import io, stream, wiring
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
    STATUS_CLEARING,
    STATUS_RUNNING,
    STATUS_WRITE_REFUSED,
    GaltonSpec,
)

from .host import LinkError, LinkHost, LinkTimeout
from .hostlink import LinkParser, connect_stream, fields_width
from .protocol import (
    CMD_INFO,
    CMD_READ_REG,
    CMD_SYNC,
    CMD_WRITE_REG,
    ERR_TIMEOUT,
    ERR_UNKNOWN_OPCODE,
    MIN_RX_FIFO_DEPTH,
    MSG_ERROR,
    MSG_INFO,
    MSG_REG,
    MSG_SYNC,
    REG_ADDR_LIMIT,
)
from .uart import UARTRx, UARTTx, uart_divisor

GALTON_PROTOCOL_VERSION = 1
LINK_KIND = 0x47  # "G": INFO's last byte, tells a Galton link from the EP core's

# host → device: SYNC, WRITE_REG, READ_REG and INFO as boards.protocol; the memory commands take
# the EP link's weight-word opcodes
CMD_WRITE_MEM = 0x03
CMD_READ_MEM = 0x04
COMMANDS = (CMD_SYNC, CMD_WRITE_REG, CMD_READ_REG, CMD_WRITE_MEM, CMD_READ_MEM, CMD_INFO)

# device → host: SYNC, REG, INFO and ERROR as boards.protocol
MSG_MEM = 0x84

# ERROR codes 1 (unknown opcode) and 2 (timeout) as boards.protocol
ERR_BUSY = 3
ERR_RANGE = 4
ERROR_NAMES = {
    ERR_UNKNOWN_OPCODE: "unknown opcode",
    ERR_TIMEOUT: "command timed out mid-way",
    ERR_BUSY: "busy: the board runs without a ball limit (send STOP first)",
    ERR_RANGE: "address or value out of range",
}

INFO_BYTES = 8  # after the tag


def _bytes(bits: int) -> int:
    return -(-bits // 8)


class GaltonLinkFormat:
    """Field sizes (bytes) of the Galton link protocol for one spec."""

    def __init__(self, spec: GaltonSpec):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.spec = spec
        self.addr_bytes = _bytes(spec.addr_bits)
        self.data_bytes = _bytes(spec.data_bits)

    def arg_bytes(self, opcode: int) -> int:
        A, D = self.addr_bytes, self.data_bytes
        return {CMD_SYNC: 1, CMD_WRITE_REG: 5, CMD_READ_REG: 1, CMD_WRITE_MEM: A + D, CMD_READ_MEM: A, CMD_INFO: 0}[
            opcode
        ]

    @property
    def max_arg_bytes(self) -> int:
        return max(self.arg_bytes(op) for op in COMMANDS)

    def payload_bytes(self, tag: int) -> int:
        sizes = {MSG_SYNC: 1, MSG_REG: 5, MSG_MEM: self.data_bytes, MSG_INFO: INFO_BYTES, MSG_ERROR: 2}
        if tag not in sizes:
            raise ValueError(f"unknown message tag 0x{tag:02x}")
        return sizes[tag]

    @property
    def max_message_bytes(self) -> int:
        return 1 + max(self.payload_bytes(t) for t in (MSG_SYNC, MSG_REG, MSG_MEM, MSG_INFO, MSG_ERROR))

    def min_rx_fifo_depth(self) -> int:
        """The longest command and a SYNC behind it must fit."""
        return max(MIN_RX_FIFO_DEPTH, 1 + self.max_arg_bytes + 2)


def _check_rx_fifo_depth(fmt: GaltonLinkFormat, depth) -> None:
    lo = fmt.min_rx_fifo_depth()
    if isinstance(depth, bool) or not isinstance(depth, int) or not lo <= depth < 1 << 16:
        raise ValueError(f"rx_fifo_depth must be an integer in [{lo}, 65535] (bytes), not {depth!r}")


# ================================================================================== gateware
class GaltonLink(wiring.Component):
    """Byte-protocol bridge between a UART byte-stream pair and the emulator's ``reg``/``cmd``/``rsp``.

    Parameters
    ----------
    spec : GaltonSpec
        The emulator's numbers (field sizes, the spec id reported by INFO).
    rx_fifo_depth : int
        Bytes of the receive FIFO (reported by INFO); 512 fills one iCE40 EBR.
    timeout_cycles : int or None
        A command whose bytes stop arriving for this many cycles is answered with ERROR 2 and
        dropped. ``None``: no timeout.

    Members
    -------
    rx : In(stream.Signature(8)) — bytes from the host. tx : Out(stream.Signature(8)) — to the host.
    cmd : Out(stream) — the emulator's memory command, flat payload (``spec.cmd_fields()``).
    rsp : In(stream) — its responses, flat payload (``spec.rsp_fields()``).
    reg : Out(RegSignature) — drives the emulator's register port (rests on ``REG_STATUS``).
    busy : Out(1) — ``REG_STATUS`` bit 0 (running), sampled whenever the link is not using the port.
    error : Out(1) — one-cycle pulse when the link sends an ERROR message.
    """

    def __init__(self, spec: GaltonSpec, *, rx_fifo_depth: int = 512, timeout_cycles: int | None = None):
        fmt = GaltonLinkFormat(spec)
        _check_rx_fifo_depth(fmt, rx_fifo_depth)
        if timeout_cycles is not None and (
            isinstance(timeout_cycles, bool) or not isinstance(timeout_cycles, int) or timeout_cycles < 3
        ):
            raise ValueError(f"timeout_cycles must be an integer >= 3 or None, not {timeout_cycles!r}")
        self.spec = spec
        self.format = fmt
        self.rx_fifo_depth = rx_fifo_depth
        self.timeout_cycles = timeout_cycles
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "cmd": Out(stream.Signature(fields_width(spec.cmd_fields()))),
                "rsp": In(stream.Signature(fields_width(spec.rsp_fields()))),
                "reg": Out(RegSignature()),
                "busy": Out(1),
                "error": Out(1),
            }
        )

    def elaborate(self, platform):
        s, fmt = self.spec, self.format
        m = Module()
        A, D = fmt.addr_bytes, fmt.data_bytes
        p = LinkParser(
            m,
            rx=self.rx,
            reg=self.reg,
            busy=self.busy,
            error=self.error,
            arg_bytes=fmt.arg_bytes,
            commands=COMMANDS,
            resp_bytes=fmt.max_message_bytes,
            status_addr=REG_STATUS,
            rx_fifo_depth=self.rx_fifo_depth,
            timeout_cycles=self.timeout_cycles,
        )
        field, op, reg_addr, fail = p.field, p.op, p.reg_addr, p.fail
        reg_we = Signal()
        m.d.comb += self.reg.we.eq(reg_we)

        # memory command: data, addr, write (spec.cmd_fields(), bit 0 first)
        mem_addr = field(CMD_WRITE_MEM, 0, A)  # the address comes first in both memory commands
        rd_addr = field(CMD_READ_MEM, 0, A)
        mem_data = field(CMD_WRITE_MEM, A, D)
        is_write = op == CMD_WRITE_MEM
        m.d.comb += self.cmd.payload.eq(
            Cat(Mux(is_write, mem_data[: s.data_bits], 0), Mux(is_write, mem_addr, rd_addr)[: s.addr_bits], is_write)
        )

        wreg_addr = field(CMD_WRITE_REG, 0, 1)
        wreg_value = field(CMD_WRITE_REG, 1, 4)
        rreg_addr = field(CMD_READ_REG, 0, 1)

        with m.FSM(name="parser"):
            p.fetch_states()
            with m.State("EXEC"):
                with m.Switch(op):
                    p.exec_sync()
                    with m.Case(CMD_WRITE_REG):
                        with m.If(wreg_addr >= REG_ADDR_LIMIT):
                            fail(ERR_RANGE)
                        with m.Elif((wreg_addr == REG_CMD) & wreg_value[CMD_STOP.bit_length() - 1]):
                            m.d.sync += reg_addr.eq(wreg_addr[:4])  # STOP: at once
                            m.next = "WREG"
                        with m.Else():
                            m.next = "WAIT"
                    with m.Case(CMD_READ_REG):
                        with m.If(rreg_addr >= REG_ADDR_LIMIT):
                            fail(ERR_RANGE)
                        with m.Else():
                            p.read_reg()
                    with m.Case(CMD_WRITE_MEM):
                        with m.If((mem_addr >= (1 << s.addr_bits)) | (mem_data >= (1 << s.data_bits))):
                            fail(ERR_RANGE)
                        with m.Else():
                            m.next = "WAIT"
                    with m.Case(CMD_READ_MEM):
                        with m.If(rd_addr >= (1 << s.addr_bits)):
                            fail(ERR_RANGE)
                        with m.Else():
                            m.next = "WAIT"
                    with m.Case(CMD_INFO):
                        p.respond(
                            Const(MSG_INFO, 8),
                            Const(GALTON_PROTOCOL_VERSION, 8),
                            Const(self.rx_fifo_depth, 16),
                            Const(s.spec_id, 32),
                            Const(LINK_KIND, 8),
                            length=1 + INFO_BYTES,
                        )
                        m.next = "RESP"
            p.answer_states()
            # ---- wait until the board is idle (not running, not clearing); refuse during unlimited runs
            with m.State("WAIT"):  # reg_addr = REG_STATUS
                st = self.reg.rdata
                with m.If((st & (STATUS_RUNNING | STATUS_CLEARING)) == 0):
                    m.next = "GO"
                with m.Elif(st & STATUS_RUNNING):
                    m.d.sync += reg_addr.eq(REG_REMAINING)
                    m.next = "WAIT_REMAINING"
            with m.State("WAIT_REMAINING"):  # reg_addr = REG_REMAINING: 0 while running ⇔ no ball limit …
                m.d.sync += reg_addr.eq(REG_STATUS)
                with m.If(self.reg.rdata == 0):
                    m.next = "WAIT_UNLIMITED"
                with m.Else():
                    m.next = "WAIT"
            with m.State("WAIT_UNLIMITED"):  # … or a limited run ended in that cycle: still running?
                with m.If(self.reg.rdata & STATUS_RUNNING):  # nothing but the link starts a run
                    fail(ERR_BUSY)
                with m.Else():
                    m.next = "WAIT"
            with m.State("GO"):
                with m.If(op == CMD_WRITE_REG):
                    m.d.sync += reg_addr.eq(wreg_addr[:4])
                    m.next = "WREG"
                with m.Else():
                    m.next = "MEM"
            with m.State("WREG"):
                m.d.comb += reg_we.eq(1)
                m.d.sync += reg_addr.eq(REG_STATUS)
                m.next = "OP"
            with m.State("MEM"):  # the board is idle, so it accepts (after at most a clear's N + 1 cycles)
                m.d.comb += self.cmd.valid.eq(1)
                with m.If(self.cmd.ready):
                    with m.If(op == CMD_READ_MEM):
                        m.next = "MEM_RSP"
                    with m.Else():
                        m.next = "OP"
            with m.State("MEM_RSP"):
                m.d.comb += self.rsp.ready.eq(1)
                with m.If(self.rsp.valid):
                    p.respond(
                        Const(MSG_MEM, 8), self.rsp.payload, Const(0, 8 * D - len(self.rsp.payload)), length=1 + D
                    )
                    m.next = "RESP"

        p.framer(self.tx)  # one message at a time, all from the parser
        return m


class LinkedGalton(wiring.Component):
    """:class:`hdl.galton.GaltonBoard` behind a :class:`GaltonLink`; ``out`` drains into an always-ready sink.

    Parameters
    ----------
    spec : GaltonSpec
    rx_fifo_depth, timeout_cycles : passed to :class:`GaltonLink`.
    rows_per_stage : passed to :class:`hdl.galton.GaltonBoard` (its pipeline; no number changes).

    Members
    -------
    rx : In(stream.Signature(8)), tx : Out(stream.Signature(8)) — the host's byte streams.
    busy : Out(1) — the board is running. error : Out(1) — pulse on a protocol error.
    """

    def __init__(
        self, spec: GaltonSpec, *, rx_fifo_depth: int = 512, timeout_cycles: int | None = None, rows_per_stage: int = 1
    ):
        from hdl.galton import GaltonBoard

        self.spec = spec
        self.board = GaltonBoard(spec, rows_per_stage=rows_per_stage)
        self.link = GaltonLink(spec, rx_fifo_depth=rx_fifo_depth, timeout_cycles=timeout_cycles)
        super().__init__(
            {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)), "busy": Out(1), "error": Out(1)}
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        m.submodules.board = board = self.board
        connect_stream(m, link.cmd, board.cmd)
        connect_stream(m, board.rsp, link.rsp)
        m.d.comb += [
            board.reg.addr.eq(link.reg.addr),
            board.reg.wdata.eq(link.reg.wdata),
            board.reg.we.eq(link.reg.we),
            link.reg.rdata.eq(board.reg.rdata),
        ]
        # one ball per board per cycle cannot cross a UART: the histograms are the readout, and an
        # always-ready sink keeps the block at full rate in both modes (streaming or histogram-only)
        m.d.comb += board.out.ready.eq(1)
        wiring.connect(m, wiring.flipped(self.rx), link.rx)
        wiring.connect(m, link.tx, wiring.flipped(self.tx))
        m.d.comb += [self.busy.eq(link.busy), self.error.eq(link.error)]
        return m


class UARTLinkedGalton(wiring.Component):
    """:class:`LinkedGalton` behind an 8N1 UART.

    Parameters
    ----------
    spec, rx_fifo_depth, timeout_cycles, rows_per_stage : as :class:`LinkedGalton`.
    divisor : int — clock cycles per bit.

    Members
    -------
    rx : In(1), tx : Out(1) — the serial lines (idle high). busy : Out(1) — running.
    fault : Out(1) — sticky until reset: a byte was lost (overrun), a stop bit was bad, or the link
        sent an ERROR.
    """

    def __init__(
        self,
        spec: GaltonSpec,
        *,
        divisor: int,
        rx_fifo_depth: int = 512,
        timeout_cycles: int | None = None,
        rows_per_stage: int = 1,
    ):
        self.divisor = divisor
        self.linked = LinkedGalton(
            spec, rx_fifo_depth=rx_fifo_depth, timeout_cycles=timeout_cycles, rows_per_stage=rows_per_stage
        )
        self.uart_rx = UARTRx(divisor=divisor)
        self.uart_tx = UARTTx(divisor=divisor)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1), "fault": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = self.uart_rx
        m.submodules.uart_tx = tx = self.uart_tx
        m.submodules.linked = linked = self.linked
        wiring.connect(m, rx.data, linked.rx)
        wiring.connect(m, linked.tx, tx.data)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.busy.eq(linked.busy)]
        with m.If(rx.overrun | rx.frame_error | linked.error):
            m.d.sync += self.fault.eq(1)
        return m


class GaltonBoardTop(Elaboratable):
    """Top level of the Galton-board emulator for an amaranth-boards platform.

    Same conventions as :class:`boards.top.BoardTop`: the sync domain is the board oscillator with
    the platform's power-on reset and user button, or (``clock_mhz``, ECP5 boards) a PLL held in
    reset until it locks (:func:`boards.top.pll_sync_domain`); the UART on the ``uart`` resource;
    LED 0 = running, LED 1 = fault (sticky), LED 2 = heartbeat (where the board has it).

    Parameters
    ----------
    spec : GaltonSpec
    baud : int — UART rate (divisor ``round(f_clk / baud)``, refused beyond 2 % error).
    rx_fifo_depth : int — receive FIFO bytes (512 = one iCE40 EBR).
    timeout_s : float or None — the link's mid-command timeout (default 0.1 s).
    clock_mhz : float or None — core clock from a PLL (ECP5 only); ``None``: the oscillator.
    rows_per_stage : int — the emulator's pipeline (:class:`hdl.galton.GaltonBoard`; default 1).
    """

    def __init__(
        self,
        spec: GaltonSpec,
        *,
        baud: int = 115200,
        rx_fifo_depth: int = 512,
        timeout_s: float | None = 0.1,
        clock_mhz: float | None = None,
        rows_per_stage: int = 1,
    ):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        if clock_mhz is not None and (
            isinstance(clock_mhz, bool) or not isinstance(clock_mhz, (int, float)) or not clock_mhz > 0
        ):
            raise ValueError(f"clock_mhz must be a positive number of MHz or None, not {clock_mhz!r}")
        if timeout_s is not None and (
            isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0
        ):
            raise ValueError(f"timeout_s must be a positive number of seconds or None, not {timeout_s!r}")
        _check_rx_fifo_depth(GaltonLinkFormat(spec), rx_fifo_depth)
        from hdl.galton import pipeline_stages

        pipeline_stages(spec, rows_per_stage)  # checked here, before any elaboratable is made
        self.rows_per_stage = rows_per_stage
        self.spec = spec
        self.baud = baud
        self.rx_fifo_depth = rx_fifo_depth
        self.timeout_s = timeout_s
        self.clock_mhz = clock_mhz
        self.pll_config = None

    def elaborate(self, platform):
        from .pll import ecp5_pll_config
        from .top import check_pll_platform, pll_sync_domain

        # every check before the first elaboratable is made (no "created but never used" warnings)
        clk_freq = platform.default_clk_frequency
        if self.clock_mhz is not None:
            check_pll_platform(platform)
            clk_freq = ecp5_pll_config(clk_freq / 1e6, float(self.clock_mhz)).f_out_mhz * 1e6
        divisor = uart_divisor(clk_freq, self.baud)
        m = Module()
        if self.clock_mhz is not None:
            self.pll_config = pll_sync_domain(m, platform, self.clock_mhz)
        timeout = None if self.timeout_s is None else max(3, int(self.timeout_s * clk_freq))
        m.submodules.top = top = UARTLinkedGalton(
            self.spec,
            divisor=divisor,
            rx_fifo_depth=self.rx_fifo_depth,
            timeout_cycles=timeout,
            rows_per_stage=self.rows_per_stage,
        )
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [top.rx.eq(rx_buf.i), tx_buf.o.eq(top.tx)]
        heartbeat = Signal(range(int(clk_freq)))
        m.d.sync += heartbeat.eq(heartbeat + 1)
        for i, value in enumerate([top.busy, top.fault, heartbeat[-1]]):
            try:
                pin = platform.request("led", i, dir="-")
            except ResourceError:  # fewer LEDs on this board
                break
            m.submodules[f"led{i}_buf"] = led = io.Buffer("o", pin)
            m.d.comb += led.o.eq(value)
        return m


# ================================================================================== host side
class GaltonLinkError(LinkError):
    """The device answered something the protocol does not allow, or reported an ERROR (``code``,
    ``opcode``)."""


class GaltonLinkTimeout(GaltonLinkError, LinkTimeout):
    """The transport returned no bytes while the host waited for a message."""


class GaltonHost(LinkHost):
    """Drive a :class:`GaltonBoardTop` (or :class:`LinkedGalton` in simulation) over a byte transport.

    Parameters
    ----------
    transport
        ``write(bytes)`` and ``read(n) -> bytes`` (may return fewer bytes; none means a timeout).
    spec : GaltonSpec
        Checked against INFO's and ``REG_SPEC_ID``'s spec id on construction.

    Raises
    ------
    GaltonLinkError
        On another protocol version or link kind, or a spec id mismatch (naming both ids).
    """

    Error = GaltonLinkError
    Timeout = GaltonLinkTimeout
    ERROR_NAMES = ERROR_NAMES
    OTHER_LINK = "is not a Galton link"

    def __init__(self, transport, spec: GaltonSpec):
        self.spec = spec
        self._open_link(transport, GaltonLinkFormat(spec), (MSG_REG, MSG_MEM, MSG_INFO))
        p = self._request(bytes((CMD_INFO,)), MSG_INFO)
        version, depth = p[0], int.from_bytes(p[1:3], "little")
        spec_id, kind = int.from_bytes(p[3:7], "little"), p[7]
        if version != GALTON_PROTOCOL_VERSION or kind != LINK_KIND:
            raise GaltonLinkError(
                f"the device speaks link version {version} kind 0x{kind:02x}; this host: "
                f"Galton link version {GALTON_PROTOCOL_VERSION} kind 0x{LINK_KIND:02x}"
            )
        self.rx_fifo_depth = depth
        for what, got in (("link", spec_id), ("emulator", self.read_reg(REG_SPEC_ID))):
            if got != spec.spec_id:
                raise GaltonLinkError(
                    f"the {what} was built for spec id 0x{got:08x}, but the host's spec has id 0x{spec.spec_id:08x}"
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
        self._check_reg(addr)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 32:
            raise ValueError(f"register value must be in 0..2^32-1, not {value!r}")
        self._send(bytes((CMD_WRITE_REG, addr)) + value.to_bytes(4, "little"))

    def read_reg(self, addr: int) -> int:
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
        self._send(
            bytes((CMD_WRITE_MEM,))
            + addr.to_bytes(self.format.addr_bytes, "little")
            + data.to_bytes(self.format.data_bytes, "little")
        )

    def read_mems(self, addrs: Iterable[int]) -> list[int]:
        """Read several words, pipelined (the answers come in command order)."""
        addrs = list(addrs)
        for a in addrs:
            self._check_mem(a)
        out: list[int] = []
        for a in addrs:
            self._send(bytes((CMD_READ_MEM,)) + a.to_bytes(self.format.addr_bytes, "little"))
        for _ in addrs:
            out.append(int.from_bytes(self._wait(MSG_MEM), "little"))
        return out

    def read_mem(self, addr: int) -> int:
        return self.read_mems([addr])[0]

    # ---- the emulator -------------------------------------------------------------------------
    def write_thresholds(self, thresholds: Sequence) -> None:
        """Write a ``[2][N][N]`` table (table, row, junction; junction ≤ row used), values 0 … 2^k."""
        s = self.spec
        for c in range(2):
            for i in range(s.rows):
                for j in range(i + 1):
                    self.write_mem(s.threshold_addr(c, i, j), int(thresholds[c][i][j]))

    def read_thresholds(self) -> list[list[list[int]]]:
        s = self.spec
        addrs = [s.threshold_addr(c, i, j) for c in range(2) for i in range(s.rows) for j in range(i + 1)]
        vals = iter(self.read_mems(addrs))
        return [[[next(vals) if j <= i else 0 for j in range(s.rows)] for i in range(s.rows)] for c in range(2)]

    def read_histograms(self) -> list[list[int]]:
        """``[B][N + 1]`` counters (waits for a limited run to end)."""
        s = self.spec
        vals = iter(self.read_mems([s.hist_addr(b, i) for b in range(s.boards) for i in range(s.n_bins)]))
        return [[next(vals) for _ in range(s.n_bins)] for _ in range(s.boards)]

    def start(
        self,
        balls: int,
        *,
        correlated: bool = False,
        hist_only: bool = True,
        seed: int | None = None,
        clear: bool = True,
    ) -> None:
        """Configure and start a run of ``balls`` balls per board (0: until :meth:`stop`)."""
        if isinstance(balls, bool) or not isinstance(balls, int) or not 0 <= balls < 1 << self.spec.count_bits:
            raise ValueError(
                f"balls must be in 0..{(1 << self.spec.count_bits) - 1} (count_bits="
                f"{self.spec.count_bits}), not {balls!r}"
            )
        self.write_reg(REG_CTRL, CTRL_CORRELATED * bool(correlated) | CTRL_HIST_ONLY * bool(hist_only))
        if seed is not None:
            self.write_reg(REG_SEED, seed)
        self.write_reg(REG_BALLS, balls)
        self.write_reg(REG_CMD, CMD_START | (CMD_CLEAR if clear else 0))

    def stop(self) -> None:
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
