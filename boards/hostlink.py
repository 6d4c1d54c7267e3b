"""The host link: a byte-stream command parser and message framer in front of the EP core.

:class:`HostLink` turns the bytes of :mod:`boards.protocol` (from :class:`boards.uart.UARTRx`)
into register accesses, weight-port commands and input beats of the core, and frames everything
the core returns (register values, weight words, predictions, dump beats) into messages for
:class:`boards.uart.UARTTx`. Its ports mirror the core's with raw bit-vector payloads (the bit
order of ``spec.*_fields()``), so it does not depend on how the core nests its layouts;
:func:`connect_core` wires the two together.

Protocol version 2 (``docs/boards.md``): every frame carries a sequence number and a CRC-16; the
parser drops a frame with a bad CRC, the wrong sequence number or no open session with an ERROR
code, INPUT frames fill a sample buffer that reaches the core only once its frames were good.

Flow control. Every stream inside is valid/ready, so nothing is lost or reordered once a byte is
in the receive FIFO. A UART cannot be back-pressured, though: the host must never have more bytes
in flight than the FIFO holds. The driver (:class:`boards.host.EPCoreHost`) keeps that invariant
with SYNC tokens: a SYNC's echo proves that the parser has consumed every byte before it, and the
host never sends past the last echoed position plus ``rx_fifo_depth`` (reported by INFO).

:class:`LinkParser` is the part of the link that does not depend on the core (receive FIFO, opcode
and argument bytes, timeout, the register port at rest, SYNC/READ_REG/ERROR answers and the
framer).

Other cores ride the same link through a *view* of their spec (the attributes :class:`LinkFormat` and
:class:`HostLink` read, ``kind`` one of :data:`VIEW_KINDS`) and an adapter presenting the EP core's
port set: :mod:`boards.eqspike_top`, :mod:`boards.galton_top`. A view may also give

* ``link_commands``: the opcodes the link takes (default all of :data:`boards.protocol.COMMANDS`);
  any other opcode is answered with ERROR 1 (unknown opcode);
* ``refuse_bit``: a bit of the register the link rests on (``status_addr``) that says "the core runs
  until told to stop": a register write or a memory command that would wait for the core (bit 0)
  is then dropped with ERROR 8 (``ERR_BUSY``) instead of waiting for ever;
* ``immediate_writes``: ``(addr, mask)`` pairs: a WRITE_REG of ``addr`` with a value that has any
  bit of ``mask`` set (a STOP) is applied at once, without waiting for the core.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hdl.regport import RegSignature
from spec.ep_core import REG_STATUS, EPCoreSpec

from .protocol import (
    CMD_INFO,
    CMD_INPUT,
    CMD_INPUT_Z,
    CMD_READ_REG,
    CMD_READ_WORD,
    CMD_RUN_STORED,
    CMD_STORE,
    CMD_STORE_INFO,
    CMD_SYNC,
    CMD_WRITE_REG,
    CMD_WRITE_WORD,
    COMMANDS,
    ERR_BUSY,
    ERR_CRC,
    ERR_LENGTH,
    ERR_SEQ,
    ERR_SESSION,
    ERR_STORE,
    ERR_TIMEOUT,
    ERR_UNKNOWN_OPCODE,
    MSG_DUMP,
    MSG_ERROR,
    MSG_INFO,
    MSG_PRED,
    MSG_REG,
    MSG_STORE,
    MSG_SYNC,
    MSG_WORD,
    PAD,
    PROTOCOL_VERSION,
    ZERO_RUN_MAX,
    LinkFormat,
)

CRC_POLY = 0x1021
VIEW_KINDS = ("eqspike", "galton")  # spec views of other cores (boards.eqspike_top, boards.galton_top)


def _crc16_matrix() -> list[list[int]]:
    """For each bit of the next CRC register, the input bits XORed into it: bits 0-15 of the register,
    16-23 of the byte (the byte step is linear over GF(2); computed once by running it on sets)."""
    c = [{i} for i in range(16)]
    for i in range(8):
        c[8 + i] = c[8 + i] ^ {16 + i}
    for _ in range(8):
        top = c[15]
        c = [set()] + c[:15]
        c = [c[i] ^ top if (CRC_POLY >> i) & 1 else c[i] for i in range(16)]
    return [sorted(b) for b in c]


_CRC16_MATRIX = _crc16_matrix()


def crc16_update(crc: Value, byte: Value) -> Value:
    """CRC-16/CCITT-FALSE register after one more byte (MSB first): each bit one XOR of inputs."""
    bits = Cat(Value.cast(crc)[:16], Value.cast(byte)[:8])
    out = []
    for taps in _CRC16_MATRIX:
        v = bits[taps[0]]
        for t in taps[1:]:
            v = v ^ bits[t]
        out.append(v)
    return Cat(*out)


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
        data_states: dict | None = None,
        length_error: Value | None = None,
        store_error: Value | None = None,
    ):
        self.m, self.error = m, error
        self.data_states = dict(data_states or {})
        self.length_error = Const(0, 1) if length_error is None else length_error
        self.store_error = Const(0, 1) if store_error is None else store_error
        self.arg_bytes, self.commands, self.resp_bytes = arg_bytes, tuple(commands), resp_bytes
        self.status_addr = status_addr
        W = 8 * max(arg_bytes(c) for c in self.commands)
        self.W = W

        # ---- receive FIFO ----
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=rx_fifo_depth)
        m.d.comb += [fifo.w_data.eq(rx.payload), fifo.w_en.eq(rx.valid), rx.ready.eq(fifo.w_rdy)]
        self.take = take = Signal()  # the parser wants a byte this cycle
        self.got = got = Signal()  # … and gets one
        # the FIFO's next byte waits in a register (the block RAM's clock-to-out is then not in the parser's
        # paths): it is refilled whenever it is empty or its byte is taken, so a byte a cycle still gets through
        self.byte = Signal(8)
        byte_valid = Signal()
        m.d.comb += [fifo.r_en.eq(~byte_valid | take), got.eq(take & byte_valid)]
        with m.If(fifo.r_en & fifo.r_rdy):
            m.d.sync += [self.byte.eq(fifo.r_data), byte_valid.eq(1)]
        with m.Elif(take):
            m.d.sync += byte_valid.eq(0)

        # ---- parser state ----
        self.op = Signal(8)
        self.arg = Signal(W)  # bytes shift in at the top: after K bytes, byte j of the command is at W − 8K + 8j
        self.need = Signal(range(W // 8 + 1))

        # a response the parser itself produces, handed to the framer
        self.lresp = Signal(8 * resp_bytes)
        self.lresp_len = Signal(range(resp_bytes + 1))
        self.lresp_valid = Signal()

        # protocol version 2 (framed): every frame is opcode, seq, fields, [data], CRC-16
        self.seq = Signal(8)  # the frame's sequence number
        self.expect = Signal(8)  # the sequence number the next frame must carry
        self.crc = Signal(16)  # CRC register over the frame's bytes so far (0 after a good CRC)
        self.muted = Signal()  # an ERROR was sent and no frame was accepted since: further errors are silent
        self.at_op = Signal()  # the parser waits for an opcode
        self.opened = Signal()  # an INFO opened a session since reset
        self.session = Signal(8)  # the host's session number (INFO's argument; echoed by SYNC)
        with m.If(got):
            m.d.sync += self.crc.eq(crc16_update(Mux(self.at_op, 0xFFFF, self.crc), self.byte))

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
        """Answer ERROR ``code`` for the current opcode and wait for the next command (framed: the
        answer carries the expected sequence number, and only the first error after an accepted
        frame is answered, so garbage cannot flood the transmit line)."""
        m = self.m
        m.d.sync += self.error.eq(1)
        with m.If(self.muted):
            m.next = "OP"
        with m.Else():
            self.respond(Const(MSG_ERROR, 8), Const(code, 8), self.op, self.expect, length=4)
            m.d.sync += self.muted.eq(1)
            m.next = "RESP"

    def on_timeout(self) -> None:
        """In a state that takes bytes, after ``with m.If(got)``: a command cut short ends in ERROR 2."""
        with self.m.Elif(self.timeout_hit):
            self.fail(ERR_TIMEOUT)

    def _after_args(self, c: int) -> str:
        return self.data_states.get(c, "CRC1")

    def fetch_states(self) -> None:
        """OP (take the opcode), DECODE (the argument count, or ERROR 1), ARGS (take them) → EXEC.

        Framed (version 2): OP → DECODE → SEQ → ARGS → [the opcode's data state, which goes on to
        CRC1] → CRC1 → CRC2 → CHECK, which drops a frame with a bad CRC (ERROR 3), a wrong sequence
        number (ERROR 4) or ``length_error`` (ERROR 5) and hands a good one to EXEC. INFO starts a
        session (any seq is accepted and the next one expected after it; its argument is the session
        number SYNC echoes); SYNC is accepted with any seq and does not advance it; before the
        first INFO after reset every other frame is dropped (ERROR 6)."""
        m = self.m
        with m.State("OP"):
            m.d.comb += [self.take.eq(1), self.at_op.eq(1)]
            with m.If(self.got):
                m.d.sync += self.op.eq(self.byte)
                m.next = "DECODE"  # decoding from a flip-flop keeps the FIFO's RAM output off long paths
        with m.State("DECODE"):
            with m.Switch(self.op):
                for c in self.commands:
                    with m.Case(c):
                        n = self.arg_bytes(c)
                        m.d.sync += self.need.eq(n)
                        m.next = "SEQ"
                with m.Case(PAD):  # padding between frames (a new session's filler): skipped
                    m.next = "OP"
                with m.Default():
                    self.fail(ERR_UNKNOWN_OPCODE)  # the next byte is taken as an opcode again
        with m.State("SEQ"):
            m.d.comb += self.take.eq(1)
            with m.If(self.got):
                m.d.sync += self.seq.eq(self.byte)
                with m.If(self.need != 0):
                    m.next = "ARGS"
                with m.Else():
                    with m.Switch(self.op):
                        for c in self.commands:
                            if not self.arg_bytes(c):
                                with m.Case(c):
                                    m.next = self._after_args(c)
            self.on_timeout()
        with m.State("ARGS"):
            m.d.comb += self.take.eq(1)
            with m.If(self.got):
                m.d.sync += [self.arg.eq(Cat(self.arg[8:], self.byte)), self.need.eq(self.need - 1)]
                with m.If(self.need == 1):
                    if self.data_states:
                        with m.Switch(self.op):
                            for c, state in self.data_states.items():
                                with m.Case(c):
                                    m.next = state
                            with m.Default():
                                m.next = "CRC1"
                    else:
                        m.next = "CRC1"
            self.on_timeout()
        with m.State("CRC1"):
            m.d.comb += self.take.eq(1)
            with m.If(self.got):
                m.next = "CRC2"
            self.on_timeout()
        with m.State("CRC2"):
            m.d.comb += self.take.eq(1)
            with m.If(self.got):
                m.next = "CHECK"
            self.on_timeout()
        with m.State("CHECK"):
            with m.If(self.crc != 0):
                self.fail(ERR_CRC)
            with m.Elif(self.op == CMD_INFO):
                m.d.sync += [self.expect.eq(self.seq + 1), self.muted.eq(0), self.opened.eq(1),
                             self.session.eq(self.field(CMD_INFO, 0, 1))]
                m.next = "EXEC"
            with m.Elif(self.op == CMD_SYNC):
                m.d.sync += self.muted.eq(0)
                m.next = "EXEC"
            with m.Elif(~self.opened):
                self.fail(ERR_SESSION)
            with m.Elif(self.seq != self.expect):
                self.fail(ERR_SEQ)
            with m.Elif(self.length_error):
                self.fail(ERR_LENGTH)
            with m.Elif(self.store_error):
                self.fail(ERR_STORE)
            with m.Else():
                m.d.sync += [self.expect.eq(self.expect + 1), self.muted.eq(0)]
                m.next = "EXEC"

    def exec_sync(self) -> None:
        """In EXEC's ``Switch(op)``: SYNC echoes its token."""
        m = self.m
        with m.Case(CMD_SYNC):
            # the echo tells the host which frame the device expects next
            self.respond(Const(MSG_SYNC, 8), self.field(CMD_SYNC, 0, 1), self.expect, self.session, length=4)
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
        # framed: tag, message seq, payload, then the CRC-16 of those bytes (high byte first)
        nmax = max([self.resp_bytes] + [1 + n for _, _, n in sources]) + 1
        buf = Signal(8 * nmax)
        left = Signal(range(nmax + 1))
        tail = Signal(2)  # CRC bytes still to send
        crc = Signal(16)
        self.tx_seq = tx_seq = Signal(8)
        m.d.comb += [tx.valid.eq((left != 0) | (tail != 0)),
                     tx.payload.eq(Mux(left != 0, buf[:8], Mux(tail == 2, crc[8:], crc[:8])))]
        with m.If(left != 0):
            with m.If(tx.ready):
                m.d.sync += [buf.eq(buf[8:]), left.eq(left - 1), crc.eq(crc16_update(crc, buf[:8]))]
                with m.If(left == 1):
                    m.d.sync += tail.eq(2)
        with m.Elif(tail != 0):
            with m.If(tx.ready):
                m.d.sync += tail.eq(tail - 1)
        with m.Elif(self.lresp_valid):
            m.d.sync += [buf.eq(Cat(self.lresp[:8], tx_seq, self.lresp[8:])), left.eq(self.lresp_len + 1),
                         self.lresp_valid.eq(0), crc.eq(0xFFFF), tx_seq.eq(tx_seq + 1)]
        for src, tag, n in sources:
            with m.Elif(src.valid):
                m.d.comb += src.ready.eq(1)
                m.d.sync += [buf.eq(Cat(Const(tag, 8), tx_seq, src.payload)), left.eq(2 + n), crc.eq(0xFFFF),
                             tx_seq.eq(tx_seq + 1)]


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
    store_samples : int
        Slots of the sample store (0: none). The sample buffer's memory then holds the live sample
        and ``store_samples`` more (``boards.protocol.store_memory_bytes``; labels in a memory of
        their own): STORE frames fill a slot, RUN_STORED sends a range of slots to the core back to
        back with no host in the loop (``docs/boards.md``, "Streaming a test set from block RAM").

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

    def __init__(self, spec: EPCoreSpec, *, rx_fifo_depth: int = 512, timeout_cycles: int | None = None,
                 store_samples: int = 0):
        if not (isinstance(spec, EPCoreSpec) or getattr(spec, "kind", None) in VIEW_KINDS):
            raise TypeError(f"spec must be an EPCoreSpec or a core's link view (EqSpikeLinkSpec, GaltonLinkSpec), "
                            f"not {type(spec).__name__}")
        if isinstance(store_samples, bool) or not isinstance(store_samples, int) or not 0 <= store_samples < 1 << 16:
            raise ValueError(f"store_samples must be an integer in [0, 65535], not {store_samples!r}")
        if store_samples and CMD_STORE not in getattr(spec, "link_commands", COMMANDS):
            raise ValueError(f"store_samples must be 0 for a {spec.kind} core (its link takes no samples), "
                             f"not {store_samples}")
        self.store_samples = store_samples
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
        A, D, LB, BB = fmt.addr_bytes, fmt.word_bytes, fmt.label_bytes, fmt.beat_bytes
        SB = fmt.sample_bytes
        WB = fmt.word_bits
        refuse_bit = getattr(s, "refuse_bit", None)
        immediate = tuple(getattr(s, "immediate_writes", ()))
        NS = self.store_samples
        over = Signal()  # an INPUT frame's bytes went past the end of the sample
        input_op = Signal()  # the frame being parsed is an INPUT, INPUT_Z or STORE
        store_bad = Signal()  # a STORE slot or RUN_STORED range outside the store
        run_first, run_count = Signal(16), Signal(16)
        p = LinkParser(
            m,
            rx=self.rx,
            reg=self.reg,
            busy=self.core_busy,
            error=self.error,
            arg_bytes=fmt.arg_bytes,
            commands=tuple(getattr(s, "link_commands", COMMANDS)),
            resp_bytes=11,
            status_addr=getattr(s, "status_addr", REG_STATUS),  # EqSpike's register map differs
            rx_fifo_depth=self.rx_fifo_depth,
            timeout_cycles=self.timeout_cycles,
            data_states={CMD_INPUT: "DSTART", CMD_INPUT_Z: "DSTART", CMD_STORE: "DSTART"},
            length_error=over & input_op,
            store_error=store_bad,
        )
        field, op = p.field, p.op
        # STORE's fields are index(2), n(1), label(LB): n and label sit where INPUT's do
        m.d.comb += input_op.eq((op == CMD_INPUT) | (op == CMD_INPUT_Z) | (op == CMD_STORE))
        store_index = field(CMD_STORE, 0, 2)
        m.d.comb += [run_first.eq(field(CMD_RUN_STORED, 0, 2)), run_count.eq(field(CMD_RUN_STORED, 2, 2))]
        with m.Switch(op):
            with m.Case(CMD_STORE):
                m.d.comb += store_bad.eq(store_index >= NS)
            with m.Case(CMD_RUN_STORED):
                m.d.comb += store_bad.eq((run_count == 0) | (run_first + run_count > NS))

        # ---- the sample buffer: INPUT frames fill it (their bytes count once the frame's CRC and
        # sequence number are good); a full sample is released to the core as tiles(0) beats ----
        # one byte-wide memory: the live sample buffer at [0, SB), store slot k at [(k + 1)·SB, (k + 2)·SB)
        MB = (1 + NS) * SB
        m.submodules.sample_mem = mem = memory.Memory(shape=8, depth=MB, init=[])
        wport = mem.write_port()
        rport = mem.read_port(transparent_for=())
        wbase = Signal(range(MB + 1))  # the slot the current frame writes (0: the live sample)
        rbase = Signal(range(MB + 1))  # the slot being released to the core
        # RUN_STORED's first slot's base (run_first + 1)·SB, registered: the multiplier is not in front of rbase
        # (the command's fields are stable from its last byte, cycles before RUN_WAIT reads this)
        run_base = Signal(range(max(MB, (1 << 16) * SB) + 1))
        m.d.sync += run_base.eq((run_first + 1) * SB)
        run_active = Signal()  # a RUN_STORED is sending slots to the core
        run_idx = Signal(16)  # its current slot
        run_left = Signal(16)  # slots still to send, the current one included
        run_step = Signal(2)  # 1, 2: fetching the current slot's label; 0: releasing it / idle
        from_store = Signal()  # the sample being released comes from the store
        if NS:
            m.submodules.label_mem = lmem = memory.Memory(shape=s.label_bits, depth=NS, init=[])
            lwport = lmem.write_port()
            lrport = lmem.read_port(transparent_for=())
            m.d.comb += [lwport.addr.eq(store_index), lwport.data.eq(field(CMD_INPUT, 1, LB)[: s.label_bits]),
                         lrport.addr.eq(run_idx)]
        fill = Signal(range(SB + 1))  # committed bytes of the sample being assembled
        wcount = Signal(range(SB + 1))  # bytes the current frame wrote after them
        remaining = Signal(range(255 * BB + 1))  # decoded bytes the current frame still brings
        zrun = Signal(range(ZERO_RUN_MAX + 1))  # zero bytes of the current zero run still to write
        zmode = Signal()
        label_buf = Signal(s.label_bits)
        releasing = Signal()
        settle = Signal(2)  # cycles after a release before a register write or weight command may go
        idle_ok = ~releasing & (settle == 0) & ~run_active
        with m.If(settle != 0):
            m.d.sync += settle.eq(settle - 1)

        write_byte = Signal()
        write_data = Signal(8)
        m.d.comb += [wport.addr.eq(wbase + fill + wcount), wport.data.eq(write_data)]
        with m.If(write_byte):
            with m.If(fill + wcount < SB):
                m.d.comb += wport.en.eq(1)
                m.d.sync += wcount.eq(wcount + 1)
            with m.Else():
                m.d.sync += over.eq(1)

        # release: read the buffer byte by byte into a beat register, push a beat every BB bytes
        rd = Signal(range(SB + 1))
        req = Signal(range(BB + 1))
        have = Signal(range(BB + 1))
        rvalid = Signal()
        push = Signal()
        beat = Signal(8 * BB)
        issue = Signal()
        m.d.comb += [issue.eq(releasing & ~push & (req < BB) & (rd < SB)), rport.addr.eq(rbase + rd),
                     rport.en.eq(issue)]
        with m.If(issue):
            m.d.sync += [rd.eq(rd + 1), req.eq(req + 1)]
        m.d.sync += rvalid.eq(issue)
        with m.If(rvalid):
            m.d.sync += [beat.eq(Cat(beat[8:], rport.data)), have.eq(have + 1)]
            with m.If(have == BB - 1):
                m.d.sync += push.eq(1)
        m.d.comb += [self.inp.valid.eq(push), self.inp.payload.eq(Cat(beat[: P * IB], label_buf))]
        with m.If(push & self.inp.ready):
            m.d.sync += [push.eq(0), req.eq(0), have.eq(0)]
            with m.If(rd == SB):
                m.d.sync += [releasing.eq(0), rd.eq(0), settle.eq(3), from_store.eq(0)]
                with m.If(from_store):  # the next slot of a RUN_STORED, or its end
                    m.d.sync += [run_idx.eq(run_idx + 1), run_left.eq(run_left - 1), rbase.eq(rbase + SB)]
                    with m.If(run_left == 1):
                        m.d.sync += run_active.eq(0)
                    with m.Else():
                        m.d.sync += run_step.eq(1)
                with m.Else():
                    m.d.sync += fill.eq(0)
        # RUN_STORED: the slot's label is read (two cycles: address, then data), then its beats go
        if NS:
            with m.If(run_step == 1):
                m.d.sync += run_step.eq(2)
            with m.If(run_step == 2):
                m.d.sync += [run_step.eq(0), label_buf.eq(lrport.data), releasing.eq(1), from_store.eq(1)]

        m.d.comb += [
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
            with m.State("DSTART"):
                m.d.sync += [remaining.eq(field(CMD_INPUT, 0, 1) * BB), wcount.eq(0), over.eq(0), zrun.eq(0),
                             zmode.eq(op != CMD_INPUT)]
                with m.If((op == CMD_STORE) & (store_index < NS)):
                    m.d.sync += wbase.eq((store_index + 1) * SB)
                with m.Else():  # the live sample (a STORE outside the store writes there; it is dropped)
                    m.d.sync += wbase.eq(0)
                m.next = "DATA"
            with m.State("DATA"):
                with m.If(releasing | run_active):
                    pass  # the buffer still feeds the core: the bytes wait in the receive FIFO
                with m.Elif(remaining == 0):
                    with m.If(zrun != 0):  # a zero run longer than the frame: refused as too long
                        m.d.sync += over.eq(1)
                    m.next = "CRC1"
                with m.Elif(zrun != 0):
                    m.d.comb += [write_byte.eq(1), write_data.eq(0)]
                    m.d.sync += [zrun.eq(zrun - 1), remaining.eq(remaining - 1)]
                with m.Else():
                    m.d.comb += p.take.eq(1)
                    with m.If(p.got):
                        with m.If(zmode & (p.byte == 0)):
                            m.next = "ZCNT"
                        with m.Else():
                            m.d.comb += [write_byte.eq(1), write_data.eq(p.byte)]
                            m.d.sync += remaining.eq(remaining - 1)
                    p.on_timeout()
            with m.State("ZCNT"):
                m.d.comb += p.take.eq(1)
                with m.If(p.got):
                    m.d.sync += zrun.eq(p.byte + 1)
                    m.next = "DATA"
                p.on_timeout()
            with m.State("EXEC"):
                with m.Switch(op):
                    p.exec_sync()
                    with m.Case(CMD_WRITE_REG):
                        if immediate:  # e.g. a STOP: applied at once, not after the core is done
                            wa, wv = field(CMD_WRITE_REG, 0, 1), field(CMD_WRITE_REG, 1, 4)
                            now = Const(0, 1)
                            for a, mask in immediate:
                                now = now | ((wa == a) & ((wv & mask) != 0))
                            with m.If(now):
                                m.d.sync += p.reg_addr.eq(wa[:4])
                                m.next = "WREG_DO"
                            with m.Else():
                                m.next = "WREG_WAIT"
                        else:
                            m.next = "WREG_WAIT"
                    with m.Case(CMD_READ_REG):
                        p.read_reg()
                    with m.Case(CMD_WRITE_WORD, CMD_READ_WORD):
                        m.next = "WCMD"
                    with m.Case(CMD_INPUT, CMD_INPUT_Z):
                        m.d.sync += [fill.eq(fill + wcount), label_buf.eq(field(CMD_INPUT, 1, LB)[: s.label_bits])]
                        with m.If(fill + wcount == SB):
                            m.d.sync += [releasing.eq(1), rbase.eq(0)]
                        m.next = "OP"
                    with m.Case(CMD_STORE):  # the slot's bytes count; a full slot takes its label
                        m.d.sync += fill.eq(fill + wcount)
                        with m.If(fill + wcount == SB):
                            m.d.sync += fill.eq(0)
                            if NS:
                                m.d.comb += lwport.en.eq(1)
                        m.next = "OP"
                    with m.Case(CMD_RUN_STORED):  # in the background: the parser goes on (samples and
                        # register writes wait behind it, as behind a released sample)
                        m.next = "RUN_WAIT"
                    with m.Case(CMD_STORE_INFO):
                        p.respond(Const(MSG_STORE, 8), Const(NS, 16), Const(SB, 16), length=5)
                        m.next = "RESP"
                    with m.Case(CMD_INFO):
                        p.respond(
                            Const(MSG_INFO, 8),
                            Const(PROTOCOL_VERSION, 8),
                            Const(self.rx_fifo_depth, 16),
                            Const(s.spec_id, 32),
                            Const(SB, 16),
                            p.field(CMD_INFO, 0, 1),
                            length=11,
                        )
                        m.next = "RESP"
            p.answer_states()
            with m.State("RUN_WAIT"):  # a RUN_STORED behind a sample being released waits for it
                with m.If(idle_ok):
                    m.d.sync += [run_active.eq(1), run_idx.eq(run_first), run_left.eq(run_count), run_step.eq(1),
                                 rbase.eq(run_base)]
                    m.next = "OP"
            with m.State("WREG_WAIT"):
                # the core ignores writes while busy: apply it between samples instead of dropping it
                # (reg_addr rests on REG_STATUS here; nothing but the link starts a sample, and a
                # sample being released to the core counts as busy)
                with m.If(idle_ok & ~self.reg.rdata[0]):
                    m.d.sync += p.reg_addr.eq(field(CMD_WRITE_REG, 0, 1)[:4])
                    m.next = "WREG_DO"
                if refuse_bit is not None:  # the core runs until stopped: waiting would never end
                    with m.Elif(self.reg.rdata[refuse_bit]):
                        p.fail(ERR_BUSY)
            with m.State("WREG_DO"):
                m.d.comb += self.reg.we.eq(1)
                m.d.sync += p.reg_addr.eq(p.status_addr)
                m.next = "OP"
            with m.State("WCMD"):
                # weight commands keep their place behind the samples sent before them
                if refuse_bit is None:
                    m.d.comb += self.wcmd.valid.eq(idle_ok)
                    with m.If(idle_ok & self.wcmd.ready):
                        m.next = "OP"
                else:  # reg_addr rests on status_addr here too
                    with m.If(self.reg.rdata[refuse_bit]):
                        p.fail(ERR_BUSY)
                    with m.Else():
                        m.d.comb += self.wcmd.valid.eq(idle_ok)
                        with m.If(idle_ok & self.wcmd.ready):
                            m.next = "OP"

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
