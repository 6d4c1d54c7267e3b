"""The host link: a byte-stream command parser and message framer in front of the EP core.

:class:`HostLink` turns the bytes of :mod:`boards.protocol` (from :class:`boards.uart.UARTRx`)
into register accesses, weight-port commands and input beats of the core, and frames everything
the core returns (register values, weight words, predictions, dump beats) into messages for
:class:`boards.uart.UARTTx`. Its ports mirror the core's with raw bit-vector payloads (the bit
order of ``spec.*_fields()``), so it does not depend on how the core nests its layouts;
:func:`connect_core` wires the two together.

Flow control. Every stream inside is valid/ready, so nothing is lost or reordered once a byte is
in the receive FIFO. A UART cannot be back-pressured, though: the host must never have more bytes
in flight than the FIFO holds. The driver (:class:`boards.host.EPCoreHost`) keeps that invariant
with SYNC tokens: a SYNC's echo proves that the parser has consumed every byte before it, and the
host never sends past the last echoed position plus ``rx_fifo_depth`` (reported by INFO).

:class:`LinkParser` is the part of the link that does not depend on the core (receive FIFO, opcode
and argument bytes, timeout, the register port at rest, SYNC/READ_REG/ERROR answers and the
framer); the Galton board's link (:class:`boards.galton_top.GaltonLink`) is built on it too.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hdl.regport import RegSignature
from spec.ep_core import REG_STATUS, EPCoreSpec

from .protocol import (
    CMD_INFO,
    CMD_INPUT,
    CMD_READ_REG,
    CMD_READ_WORD,
    CMD_SYNC,
    CMD_WRITE_REG,
    CMD_WRITE_WORD,
    COMMANDS,
    ERR_TIMEOUT,
    ERR_UNKNOWN_OPCODE,
    MSG_DUMP,
    MSG_ERROR,
    MSG_INFO,
    MSG_PRED,
    MSG_REG,
    MSG_SYNC,
    MSG_WORD,
    PROTOCOL_VERSION,
    LinkFormat,
)


def fields_width(fields: list[tuple[str, int]]) -> int:
    """Bits of a flat stream payload of ``spec.*_fields()``."""
    return sum(w for _, w in fields)


class LinkParser:
    """The core-independent half of a byte link, built into the caller's module.

    Makes the receive FIFO (bytes from ``rx``), the opcode register ``op`` and the argument shift
    register (:meth:`field`), the mid-command timeout, the register port resting on ``status_addr``
    (``busy`` follows bit 0 of that register whenever the port is not used), the parser's own
    responses (:meth:`respond`, :meth:`fail`) and the framer (:meth:`framer`). Inside
    ``with m.FSM(name="parser")`` the caller adds :meth:`fetch_states` (OP → DECODE → ARGS →
    "EXEC", unknown opcodes answered with ERROR 1), :meth:`answer_states` (RESP, RREG) and its own
    "EXEC" and other states.

    Parameters
    ----------
    m : Module
    rx : the link's ``In(stream.Signature(8))``.
    reg : the link's ``Out(RegSignature())``; ``reg.addr`` and ``reg.wdata`` are driven here
        (``wdata`` from WRITE_REG's value field), ``reg.we`` by the caller.
    busy, error : the link's ``Out(1)`` members: ``REG_STATUS`` bit 0, and a one-cycle pulse per ERROR.
    arg_bytes : ``opcode → argument bytes`` for every opcode in ``commands``.
    resp_bytes : the longest message the parser itself sends (bytes, tag included).
    status_addr : the core's ``REG_STATUS``.
    rx_fifo_depth, timeout_cycles : as the links' parameters.
    """

    def __init__(
        self,
        m: Module,
        *,
        rx,
        reg,
        busy,
        error,
        arg_bytes,
        commands,
        resp_bytes: int,
        status_addr: int,
        rx_fifo_depth: int,
        timeout_cycles: int | None,
    ):
        self.m, self.error = m, error
        self.arg_bytes, self.commands, self.resp_bytes = arg_bytes, tuple(commands), resp_bytes
        self.status_addr = status_addr
        W = 8 * max(arg_bytes(c) for c in self.commands)
        self.W = W

        # ---- receive FIFO ----
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=rx_fifo_depth)
        m.d.comb += [fifo.w_data.eq(rx.payload), fifo.w_en.eq(rx.valid), rx.ready.eq(fifo.w_rdy)]
        self.take = take = Signal()  # the parser wants a byte this cycle
        self.got = got = Signal()  # … and gets one
        self.byte = fifo.r_data
        m.d.comb += [fifo.r_en.eq(take), got.eq(take & fifo.r_rdy)]

        # ---- parser state ----
        self.op = Signal(8)
        self.arg = Signal(W)  # bytes shift in at the top: after K bytes, byte j of the command is at W − 8K + 8j
        self.need = Signal(range(W // 8 + 1))

        # a response the parser itself produces, handed to the framer
        self.lresp = Signal(8 * resp_bytes)
        self.lresp_len = Signal(range(resp_bytes + 1))
        self.lresp_valid = Signal()

        self.timeout_hit = Signal()
        if timeout_cycles is not None:
            quiet = Signal(range(timeout_cycles + 1))
            with m.If(take & ~got):
                m.d.sync += quiet.eq(quiet + 1)
            with m.Else():
                m.d.sync += quiet.eq(0)
            # registered: a one-cycle-late timeout costs nothing and keeps the wide compare off the FSM
            m.d.sync += self.timeout_hit.eq(take & ~got & (quiet >= timeout_cycles - 2))

        # the register port's address comes from a flip-flop (the core's read mux is combinational:
        # this keeps the parser's decode out of that path) and rests on REG_STATUS: busy follows
        self.reg_addr = Signal(4, init=status_addr)
        self.reg = reg
        m.d.comb += [reg.addr.eq(self.reg_addr), reg.wdata.eq(self.field(CMD_WRITE_REG, 1, 4))]
        with m.If(self.reg_addr == status_addr):
            m.d.sync += busy.eq(reg.rdata[0])
        m.d.sync += error.eq(0)

    def field(self, op_code: int, j: int, n: int) -> Value:
        """Bytes ``j … j + n − 1`` of the arguments of command ``op_code`` (little-endian)."""
        lo = self.W - 8 * self.arg_bytes(op_code) + 8 * j
        return self.arg[lo : lo + 8 * n]

    def respond(self, *parts: Value, length: int) -> None:
        """Hand a message of ``length`` bytes (``parts`` concatenated, tag first) to the framer."""
        self.m.d.sync += [self.lresp.eq(Cat(*parts)), self.lresp_len.eq(length), self.lresp_valid.eq(1)]

    def fail(self, code: int) -> None:
        """Answer ERROR ``code`` for the current opcode and wait for the next command."""
        self.respond(Const(MSG_ERROR, 8), Const(code, 8), self.op, length=3)
        self.m.d.sync += self.error.eq(1)
        self.m.next = "RESP"

    def on_timeout(self) -> None:
        """In a state that takes bytes, after ``with m.If(got)``: a command cut short ends in ERROR 2."""
        with self.m.Elif(self.timeout_hit):
            self.fail(ERR_TIMEOUT)

    def fetch_states(self) -> None:
        """OP (take the opcode), DECODE (the argument count, or ERROR 1), ARGS (take them) → EXEC."""
        m = self.m
        with m.State("OP"):
            m.d.comb += self.take.eq(1)
            with m.If(self.got):
                m.d.sync += self.op.eq(self.byte)
                m.next = "DECODE"  # decoding from a flip-flop keeps the FIFO's RAM output off long paths
        with m.State("DECODE"):
            with m.Switch(self.op):
                for c in self.commands:
                    with m.Case(c):
                        n = self.arg_bytes(c)
                        m.d.sync += self.need.eq(n)
                        m.next = "ARGS" if n else "EXEC"
                with m.Default():
                    self.fail(ERR_UNKNOWN_OPCODE)
        with m.State("ARGS"):
            m.d.comb += self.take.eq(1)
            with m.If(self.got):
                m.d.sync += [self.arg.eq(Cat(self.arg[8:], self.byte)), self.need.eq(self.need - 1)]
                with m.If(self.need == 1):
                    m.next = "EXEC"
            self.on_timeout()

    def exec_sync(self) -> None:
        """In EXEC's ``Switch(op)``: SYNC echoes its token."""
        m = self.m
        with m.Case(CMD_SYNC):
            self.respond(Const(MSG_SYNC, 8), self.field(CMD_SYNC, 0, 1), length=2)
            m.next = "RESP"

    def read_reg(self) -> None:
        """Read the register READ_REG names (the answer in state RREG)."""
        self.m.d.sync += self.reg_addr.eq(self.field(CMD_READ_REG, 0, 1)[:4])
        self.m.next = "RREG"

    def answer_states(self) -> None:
        """RESP (wait until the framer took the parser's answer) and RREG (answer a READ_REG)."""
        m = self.m
        with m.State("RESP"):
            with m.If(~self.lresp_valid):
                m.next = "OP"
        with m.State("RREG"):
            self.respond(Const(MSG_REG, 8), self.field(CMD_READ_REG, 0, 1), self.reg.rdata, length=6)
            m.d.sync += self.reg_addr.eq(self.status_addr)
            m.next = "RESP"

    def framer(self, tx, sources=()) -> None:
        """Send one message at a time on ``tx``: the parser's own answers first, then ``sources`` by
        fixed priority, each ``(stream, tag, payload bytes)``: a beat becomes the tag and its payload."""
        m = self.m
        nmax = max([self.resp_bytes] + [1 + n for _, _, n in sources])
        buf = Signal(8 * nmax)
        left = Signal(range(nmax + 1))
        m.d.comb += [tx.valid.eq(left != 0), tx.payload.eq(buf[:8])]
        with m.If(left != 0):
            with m.If(tx.ready):
                m.d.sync += [buf.eq(buf[8:]), left.eq(left - 1)]
        with m.Elif(self.lresp_valid):
            m.d.sync += [buf.eq(self.lresp), left.eq(self.lresp_len), self.lresp_valid.eq(0)]
        for src, tag, n in sources:
            with m.Elif(src.valid):
                m.d.comb += src.ready.eq(1)
                m.d.sync += [buf.eq(Cat(Const(tag, 8), src.payload)), left.eq(1 + n)]


class HostLink(wiring.Component):
    """Byte-protocol bridge between a UART byte stream pair and the EP core's ports.

    Parameters
    ----------
    spec : EPCoreSpec
        The core's numbers: every field size of the protocol follows from it (:class:`LinkFormat`).
    rx_fifo_depth : int
        Bytes the receive FIFO holds (reported to the host by INFO; the host never has more in
        flight). 512 fills one iCE40 EBR (the FIFO keeps one byte in its output register).
    timeout_cycles : int or None
        If the bytes of a started command stop arriving for this many cycles, the parser sends
        ``MSG_ERROR(ERR_TIMEOUT)`` and waits for a new opcode, so a host that died mid-command
        cannot leave the link out of step. ``None`` disables the timeout.

    Members
    -------
    rx : In(stream.Signature(8)) — received bytes (``ready`` is the FIFO's room).
    tx : Out(stream.Signature(8)) — bytes to send.
    inp, wcmd : Out(stream) — to the core (payload widths of ``spec.input_fields()`` / ``wcmd_fields()``).
    out, dump, wrsp : In(stream) — from the core.
    reg : Out(RegSignature) — drives the core's register port.
    core_busy : Out(1) — ``REG_STATUS`` bit 0, sampled whenever the link is not using the port.
    error : Out(1) — one-cycle pulse when the link sends ``MSG_ERROR``.
    """

    def __init__(self, spec: EPCoreSpec, *, rx_fifo_depth: int = 512, timeout_cycles: int | None = None):
        if not (isinstance(spec, EPCoreSpec) or getattr(spec, "kind", None) == "eqspike"):
            raise TypeError(f"spec must be an EPCoreSpec or an EqSpikeLinkSpec, not {type(spec).__name__}")
        fmt = LinkFormat(spec)
        lo = fmt.min_rx_fifo_depth()
        if isinstance(rx_fifo_depth, bool) or not isinstance(rx_fifo_depth, int) or not lo <= rx_fifo_depth < 1 << 16:
            raise ValueError(
                f"rx_fifo_depth must be an integer in [{lo}, 65535] for this spec "
                f"(its longest command and a SYNC must fit), not {rx_fifo_depth!r}"
            )
        if timeout_cycles is not None and (
            isinstance(timeout_cycles, bool) or not isinstance(timeout_cycles, int) or timeout_cycles < 1
        ):
            raise ValueError(f"timeout_cycles must be a positive integer or None, not {timeout_cycles!r}")
        self.spec = spec
        self.format = fmt
        self.rx_fifo_depth = rx_fifo_depth
        self.timeout_cycles = timeout_cycles
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "inp": Out(stream.Signature(fields_width(spec.input_fields()))),
                "out": In(stream.Signature(fields_width(spec.output_fields()))),
                "dump": In(stream.Signature(fields_width(spec.dump_fields()))),
                "wcmd": Out(stream.Signature(fields_width(spec.wcmd_fields()))),
                "wrsp": In(stream.Signature(fields_width(spec.wrsp_fields()))),
                "reg": Out(RegSignature()),
                "core_busy": Out(1),
                "error": Out(1),
            }
        )

    def elaborate(self, platform):
        s, fmt = self.spec, self.format
        m = Module()
        P, IB = s.lanes, s.input_bits
        A, D, LB, PB = fmt.addr_bytes, fmt.word_bytes, fmt.label_bytes, fmt.pixel_bytes
        WB = fmt.word_bits
        p = LinkParser(
            m,
            rx=self.rx,
            reg=self.reg,
            busy=self.core_busy,
            error=self.error,
            arg_bytes=fmt.arg_bytes,
            commands=COMMANDS,
            resp_bytes=8,
            status_addr=getattr(s, "status_addr", REG_STATUS),  # EqSpike's register map differs
            rx_fifo_depth=self.rx_fifo_depth,
            timeout_cycles=self.timeout_cycles,
        )
        field, op = p.field, p.op

        beats = Signal(8)
        label = Signal(s.label_bits)
        pixels = Signal(P * IB)
        pix_i = Signal(range(P))
        pix_byte = Signal(range(PB))
        pixacc = Signal(8 * PB)

        m.d.comb += [
            self.inp.payload.eq(Cat(pixels, label)),
            self.wcmd.payload.eq(
                Mux(
                    op == CMD_WRITE_WORD,
                    Cat(field(CMD_WRITE_WORD, A, D)[:WB], field(CMD_WRITE_WORD, 0, A)[: s.addr_bits], Const(1, 1)),
                    Cat(Const(0, WB), field(CMD_READ_WORD, 0, A)[: s.addr_bits], Const(0, 1)),
                )
            ),
        ]

        with m.FSM(name="parser"):
            p.fetch_states()
            with m.State("EXEC"):
                with m.Switch(op):
                    p.exec_sync()
                    with m.Case(CMD_WRITE_REG):
                        m.next = "WREG_WAIT"
                    with m.Case(CMD_READ_REG):
                        p.read_reg()
                    with m.Case(CMD_WRITE_WORD, CMD_READ_WORD):
                        m.next = "WCMD"
                    with m.Case(CMD_INPUT):
                        n = field(CMD_INPUT, 0, 1)
                        m.d.sync += [
                            beats.eq(n),
                            label.eq(field(CMD_INPUT, 1, LB)[: s.label_bits]),
                            pix_i.eq(0),
                            pix_byte.eq(0),
                        ]
                        with m.If(n == 0):
                            m.next = "OP"
                        with m.Else():
                            m.next = "PIX"
                    with m.Case(CMD_INFO):
                        p.respond(
                            Const(MSG_INFO, 8),
                            Const(PROTOCOL_VERSION, 8),
                            Const(self.rx_fifo_depth, 16),
                            Const(s.spec_id, 32),
                            length=8,
                        )
                        m.next = "RESP"
            p.answer_states()
            with m.State("WREG_WAIT"):
                # the core ignores writes while busy: apply it between samples instead of dropping it
                # (reg_addr rests on REG_STATUS here; nothing but the link starts a sample)
                with m.If(~self.reg.rdata[0]):
                    m.d.sync += p.reg_addr.eq(field(CMD_WRITE_REG, 0, 1)[:4])
                    m.next = "WREG_DO"
            with m.State("WREG_DO"):
                m.d.comb += self.reg.we.eq(1)
                m.d.sync += p.reg_addr.eq(REG_STATUS)
                m.next = "OP"
            with m.State("WCMD"):
                m.d.comb += self.wcmd.valid.eq(1)
                with m.If(self.wcmd.ready):
                    m.next = "OP"
            with m.State("PIX"):
                m.d.comb += p.take.eq(1)
                with m.If(p.got):
                    px = Cat(pixacc[8:], p.byte)  # little-endian pixel bytes; the last one lands on top
                    m.d.sync += pixacc.eq(px)
                    with m.If(pix_byte == PB - 1):
                        m.d.sync += [pixels.eq(Cat(pixels[IB:], px[:IB])), pix_byte.eq(0), pix_i.eq(pix_i + 1)]
                        with m.If(pix_i == P - 1):
                            m.d.sync += pix_i.eq(0)
                            m.next = "PUSH"
                    with m.Else():
                        m.d.sync += pix_byte.eq(pix_byte + 1)
                p.on_timeout()
            with m.State("PUSH"):
                m.d.comb += self.inp.valid.eq(1)
                with m.If(self.inp.ready):
                    m.d.sync += beats.eq(beats - 1)
                    with m.If(beats == 1):
                        m.next = "OP"
                    with m.Else():
                        m.next = "PIX"

        # ---- framer: one message at a time, sources by fixed priority ----
        p.framer(self.tx, [(self.wrsp, MSG_WORD, D), (self.dump, MSG_DUMP, fmt.dump_bytes), (self.out, MSG_PRED, LB)])
        return m


def connect_stream(m: Module, src, dst) -> None:
    """Connect two streams whose payloads have the same width (flat bits vs a layout)."""
    s, d = Value.cast(src.payload), Value.cast(dst.payload)
    if len(s) != len(d):
        raise ValueError(f"stream payload widths differ: {len(s)} vs {len(d)}")
    m.d.comb += [dst.valid.eq(src.valid), d.eq(s), src.ready.eq(dst.ready)]


def connect_core(m: Module, link: HostLink, core) -> None:
    """Wire a :class:`HostLink` to a core with the EP core's signature (any payload layout nesting:
    the payloads are connected as flat bit vectors, whose order both take from the spec)."""
    connect_stream(m, link.inp, core.inp)
    connect_stream(m, core.out, link.out)
    connect_stream(m, core.dump, link.dump)
    connect_stream(m, link.wcmd, core.wcmd)
    connect_stream(m, core.wrsp, link.wrsp)
    m.d.comb += [
        core.reg.addr.eq(link.reg.addr),
        core.reg.wdata.eq(link.reg.wdata),
        core.reg.we.eq(link.reg.we),
        link.reg.rdata.eq(core.reg.rdata),
    ]
