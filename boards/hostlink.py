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


def _width(fields: list[tuple[str, int]]) -> int:
    return sum(w for _, w in fields)


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
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        fmt = LinkFormat(spec)
        lo = fmt.min_rx_fifo_depth()
        if isinstance(rx_fifo_depth, bool) or not isinstance(rx_fifo_depth, int) or not lo <= rx_fifo_depth < 1 << 16:
            raise ValueError(f"rx_fifo_depth must be an integer in [{lo}, 65535] for this spec "
                             f"(its longest command and a SYNC must fit), not {rx_fifo_depth!r}")
        if timeout_cycles is not None and (isinstance(timeout_cycles, bool) or not isinstance(timeout_cycles, int)
                                           or timeout_cycles < 1):
            raise ValueError(f"timeout_cycles must be a positive integer or None, not {timeout_cycles!r}")
        self.spec = spec
        self.format = fmt
        self.rx_fifo_depth = rx_fifo_depth
        self.timeout_cycles = timeout_cycles
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "inp": Out(stream.Signature(_width(spec.input_fields()))),
            "out": In(stream.Signature(_width(spec.output_fields()))),
            "dump": In(stream.Signature(_width(spec.dump_fields()))),
            "wcmd": Out(stream.Signature(_width(spec.wcmd_fields()))),
            "wrsp": In(stream.Signature(_width(spec.wrsp_fields()))),
            "reg": Out(RegSignature()),
            "core_busy": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):  # noqa: C901  (one parser, one framer)
        s, fmt = self.spec, self.format
        m = Module()
        P, IB = s.lanes, s.input_bits
        A, D, LB, PB = fmt.addr_bytes, fmt.word_bytes, fmt.label_bytes, fmt.pixel_bytes
        WB = fmt.word_bits
        NA = fmt.max_arg_bytes
        W = 8 * NA

        # ---- receive FIFO ----
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=self.rx_fifo_depth)
        m.d.comb += [fifo.w_data.eq(self.rx.payload), fifo.w_en.eq(self.rx.valid), self.rx.ready.eq(fifo.w_rdy)]
        take = Signal()  # the parser wants a byte this cycle
        got = Signal()  # … and gets one
        byte = fifo.r_data
        m.d.comb += [fifo.r_en.eq(take), got.eq(take & fifo.r_rdy)]

        # ---- parser state ----
        op = Signal(8)
        arg = Signal(W)  # bytes shift in at the top: after K bytes, byte j of the command is at W − 8K + 8j
        need = Signal(range(NA + 1))

        def field(op_code: int, j: int, n: int) -> Value:
            lo = W - 8 * fmt.arg_bytes(op_code) + 8 * j
            return arg[lo:lo + 8 * n]

        lresp = Signal(64)  # a response the parser itself produces (≤ 8 bytes), handed to the framer
        lresp_len = Signal(range(9))
        lresp_valid = Signal()

        def respond(*parts: Value, length: int):
            m.d.sync += [lresp.eq(Cat(*parts)), lresp_len.eq(length), lresp_valid.eq(1)]

        beats = Signal(8)
        label = Signal(s.label_bits)
        pixels = Signal(P * IB)
        pix_i = Signal(range(P))
        pix_byte = Signal(range(PB))
        pixacc = Signal(8 * PB)

        timeout_hit = Signal()
        if self.timeout_cycles is not None:
            quiet = Signal(range(self.timeout_cycles + 1))
            with m.If(take & ~got):
                m.d.sync += quiet.eq(quiet + 1)
            with m.Else():
                m.d.sync += quiet.eq(0)
            # registered: a one-cycle-late timeout costs nothing and keeps the wide compare off the FSM
            m.d.sync += timeout_hit.eq(take & ~got & (quiet >= self.timeout_cycles - 2))

        # the register port addresses REG_STATUS unless the parser uses it: core_busy follows
        # the register port's address comes from a flip-flop (the core's read mux is combinational:
        # this keeps the parser's decode out of that path) and rests on REG_STATUS: core_busy follows
        reg_addr = Signal(4, init=REG_STATUS)
        m.d.comb += [self.reg.addr.eq(reg_addr), self.reg.wdata.eq(field(CMD_WRITE_REG, 1, 4))]
        with m.If(reg_addr == REG_STATUS):
            m.d.sync += self.core_busy.eq(self.reg.rdata[0])

        m.d.comb += [self.inp.payload.eq(Cat(pixels, label)), self.wcmd.payload.eq(
            Mux(op == CMD_WRITE_WORD,
                Cat(field(CMD_WRITE_WORD, A, D)[:WB], field(CMD_WRITE_WORD, 0, A)[:s.addr_bits], Const(1, 1)),
                Cat(Const(0, WB), field(CMD_READ_WORD, 0, A)[:s.addr_bits], Const(0, 1))))]

        def on_timeout():
            with m.Elif(timeout_hit):
                respond(Const(MSG_ERROR, 8), Const(ERR_TIMEOUT, 8), op, length=3)
                m.d.sync += self.error.eq(1)
                m.next = "RESP"

        m.d.sync += self.error.eq(0)
        with m.FSM(name="parser"):
            with m.State("OP"):
                m.d.comb += take.eq(1)
                with m.If(got):
                    m.d.sync += op.eq(byte)
                    m.next = "DECODE"  # decoding from a flip-flop keeps the FIFO's RAM output off long paths
            with m.State("DECODE"):
                with m.Switch(op):
                    for c in COMMANDS:
                        with m.Case(c):
                            n = fmt.arg_bytes(c)
                            m.d.sync += need.eq(n)
                            m.next = "ARGS" if n else "EXEC"
                    with m.Default():
                        respond(Const(MSG_ERROR, 8), Const(ERR_UNKNOWN_OPCODE, 8), op, length=3)
                        m.d.sync += self.error.eq(1)
                        m.next = "RESP"
            with m.State("ARGS"):
                m.d.comb += take.eq(1)
                with m.If(got):
                    m.d.sync += [arg.eq(Cat(arg[8:], byte)), need.eq(need - 1)]
                    with m.If(need == 1):
                        m.next = "EXEC"
                on_timeout()
            with m.State("EXEC"):
                with m.Switch(op):
                    with m.Case(CMD_SYNC):
                        respond(Const(MSG_SYNC, 8), field(CMD_SYNC, 0, 1), length=2)
                        m.next = "RESP"
                    with m.Case(CMD_WRITE_REG):
                        m.next = "WREG_WAIT"
                    with m.Case(CMD_READ_REG):
                        m.d.sync += reg_addr.eq(field(CMD_READ_REG, 0, 1)[:4])
                        m.next = "RREG"
                    with m.Case(CMD_WRITE_WORD, CMD_READ_WORD):
                        m.next = "WCMD"
                    with m.Case(CMD_INPUT):
                        n = field(CMD_INPUT, 0, 1)
                        m.d.sync += [beats.eq(n), label.eq(field(CMD_INPUT, 1, LB)[:s.label_bits]),
                                     pix_i.eq(0), pix_byte.eq(0)]
                        with m.If(n == 0):
                            m.next = "OP"
                        with m.Else():
                            m.next = "PIX"
                    with m.Case(CMD_INFO):
                        respond(Const(MSG_INFO, 8), Const(PROTOCOL_VERSION, 8), Const(self.rx_fifo_depth, 16),
                                Const(s.spec_id, 32), length=8)
                        m.next = "RESP"
            with m.State("RESP"):
                with m.If(~lresp_valid):
                    m.next = "OP"
            with m.State("RREG"):
                respond(Const(MSG_REG, 8), field(CMD_READ_REG, 0, 1), self.reg.rdata, length=6)
                m.d.sync += reg_addr.eq(REG_STATUS)
                m.next = "RESP"
            with m.State("WREG_WAIT"):
                # the core ignores writes while busy: apply it between samples instead of dropping it
                # (reg_addr rests on REG_STATUS here; nothing but the link starts a sample)
                with m.If(~self.reg.rdata[0]):
                    m.d.sync += reg_addr.eq(field(CMD_WRITE_REG, 0, 1)[:4])
                    m.next = "WREG_DO"
            with m.State("WREG_DO"):
                m.d.comb += self.reg.we.eq(1)
                m.d.sync += reg_addr.eq(REG_STATUS)
                m.next = "OP"
            with m.State("WCMD"):
                m.d.comb += self.wcmd.valid.eq(1)
                with m.If(self.wcmd.ready):
                    m.next = "OP"
            with m.State("PIX"):
                m.d.comb += take.eq(1)
                with m.If(got):
                    px = Cat(pixacc[8:], byte)  # little-endian pixel bytes; the last one lands on top
                    m.d.sync += pixacc.eq(px)
                    with m.If(pix_byte == PB - 1):
                        m.d.sync += [pixels.eq(Cat(pixels[IB:], px[:IB])), pix_byte.eq(0), pix_i.eq(pix_i + 1)]
                        with m.If(pix_i == P - 1):
                            m.d.sync += pix_i.eq(0)
                            m.next = "PUSH"
                    with m.Else():
                        m.d.sync += pix_byte.eq(pix_byte + 1)
                on_timeout()
            with m.State("PUSH"):
                m.d.comb += self.inp.valid.eq(1)
                with m.If(self.inp.ready):
                    m.d.sync += beats.eq(beats - 1)
                    with m.If(beats == 1):
                        m.next = "OP"
                    with m.Else():
                        m.next = "PIX"

        # ---- framer: one message at a time, sources by fixed priority ----
        nmax = fmt.max_message_bytes
        buf = Signal(8 * max(nmax, 8))
        left = Signal(range(max(nmax, 8) + 1))
        m.d.comb += [self.tx.valid.eq(left != 0), self.tx.payload.eq(buf[:8])]
        with m.If(left != 0):
            with m.If(self.tx.ready):
                m.d.sync += [buf.eq(buf[8:]), left.eq(left - 1)]
        with m.Elif(lresp_valid):
            m.d.sync += [buf.eq(lresp), left.eq(lresp_len), lresp_valid.eq(0)]
        with m.Elif(self.wrsp.valid):
            m.d.comb += self.wrsp.ready.eq(1)
            m.d.sync += [buf.eq(Cat(Const(MSG_WORD, 8), self.wrsp.payload)), left.eq(1 + D)]
        with m.Elif(self.dump.valid):
            m.d.comb += self.dump.ready.eq(1)
            m.d.sync += [buf.eq(Cat(Const(MSG_DUMP, 8), self.dump.payload)), left.eq(1 + fmt.dump_bytes)]
        with m.Elif(self.out.valid):
            m.d.comb += self.out.ready.eq(1)
            m.d.sync += [buf.eq(Cat(Const(MSG_PRED, 8), self.out.payload)), left.eq(1 + LB)]
        return m


def _connect_stream(m: Module, src, dst) -> None:
    s, d = Value.cast(src.payload), Value.cast(dst.payload)
    if len(s) != len(d):
        raise ValueError(f"stream payload widths differ: {len(s)} vs {len(d)}")
    m.d.comb += [dst.valid.eq(src.valid), d.eq(s), src.ready.eq(dst.ready)]


def connect_core(m: Module, link: HostLink, core) -> None:
    """Wire a :class:`HostLink` to a core with the EP core's signature (any payload layout nesting:
    the payloads are connected as flat bit vectors, whose order both take from the spec)."""
    _connect_stream(m, link.inp, core.inp)
    _connect_stream(m, core.out, link.out)
    _connect_stream(m, core.dump, link.dump)
    _connect_stream(m, link.wcmd, core.wcmd)
    _connect_stream(m, core.wrsp, link.wrsp)
    m.d.comb += [core.reg.addr.eq(link.reg.addr), core.reg.wdata.eq(link.reg.wdata), core.reg.we.eq(link.reg.we),
                 link.reg.rdata.eq(core.reg.rdata)]
