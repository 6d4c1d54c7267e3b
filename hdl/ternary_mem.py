"""Ternary weight memory: 2T2R cells, PCSA read emulation, fault injection (Amaranth 0.5).

Numbers, random-bit use and registers are defined by :mod:`spec.ternary`; the twin
:class:`golden.ternary.memory.TernaryMemoryTwin` is the reference the tests compare with.

Structure:

* **Storage.** One :class:`amaranth.lib.memory.Memory` of ``depth`` words × 2P bits (cell i in
  bits [2i, 2i+2)), one synchronous read port and one write port driven by *one* address (a
  PCSA read, a program write and a raw read-back never share a cycle), so synthesis can map it
  to single-port RAM (iCE40UP5K SPRAM) as well as to block RAM (ECP5 EBR, iCE40 EBR).
* **Read port** ``rd_addr``/``rd_en`` → ``rd_nz``/``rd_neg`` one cycle later (lane i's weight is
  0 when ``rd_nz[i]`` is low, else −1 if ``rd_neg[i]`` else +1): the stored cells, through the
  injector in dynamic mode, through the PCSA. Reads must not be issued while ``busy``.
* **Program port** ``cmd``/``rsp`` (streams): write the cells of a word (through the injector in
  static mode) or read a word's stored cells back (no PCSA, no draw). A command is accepted only
  when the block is not busy, ``rd_en`` is low, no PCSA read is in its second cycle and no
  response waits.
* **PRNG** (``fault_injection`` only): :class:`hdl.prng.XorshiftBank`, P lanes. It steps once per
  programming write (in the write's cycle) and once per PCSA read (in the cycle after ``rd_en``,
  when the read's word is in use), so access n always sees the bank's (n+1)-th state after a
  seeding, whatever the gaps between accesses. After reset and after every write of ``REG_SEED``
  it refills the lanes and takes one priming step; ``busy`` is high meanwhile.
* **Counters** (saturating): injected cells, illegal cells sensed, PCSA reads.
* **Update port** (``spec.update_port``: a training core's weight memory): raw reads
  (``rd_en`` with ``rd_raw``: the stored cells on ``rd_cells`` one cycle later, no PCSA, no draw,
  not counted) and update writes (``up_en``/``up_addr``/``up_data``/``up_mask``: one draw each,
  static injection on the masked cells) that may share a cycle with a read: the storage then has
  separate read and write addresses (simple dual-port block RAM).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.ternary import (
    COUNTER_MAX,
    PCSA_BIT,
    PRNG_WIDTH,
    RATE_BITS,
    REG_BITS,
    REG_CTRL,
    REG_ILLEGAL,
    REG_INJECTED,
    REG_RATE_NONZERO,
    REG_RATE_ZERO,
    REG_READS,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    SIGN_BIT,
    TernaryMemorySpec,
)

from .prng import XorshiftBank
from .regport import RegSignature


def _layout(fields: list[tuple[str, int]]) -> data.StructLayout:
    return data.StructLayout({name: unsigned(width) for name, width in fields})


def popcount(bits) -> object:
    """Sum of the bits of a value (a balanced adder tree)."""
    terms = [bits[i] for i in range(len(bits))]
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def inject_cell(m: Module, cell, word, flip, rate_zero, rate_nonzero):
    """Comb logic of :func:`spec.ternary.inject` for one cell; returns the new 2-bit cell."""
    b0, b1 = cell[0], cell[1]
    nonzero = b0 ^ b1
    zero = ~b0 & ~b1
    thr = Mux(zero, rate_zero, rate_nonzero)
    hit = word[:RATE_BITS] < thr
    new = Signal(2)
    m.d.comb += new.eq(cell)
    with m.If(hit):
        with m.If(nonzero):
            m.d.comb += new.eq(Mux(flip, Cat(b1, b0), 0))
        with m.Elif(zero & ~flip):
            m.d.comb += new.eq(Mux(word[SIGN_BIT], 0b10, 0b01))
    return new


def sense_cell(cell, nominal, rand_bit):
    """PCSA read of one cell (:func:`spec.ternary.sense`): (nonzero, negative, illegal)."""
    b0, b1 = cell[0], cell[1]
    differ = b0 ^ b1
    illegal = b0 & b1
    nz = differ | illegal | nominal
    neg = Mux(differ, b1, rand_bit)
    return nz, neg, illegal


class TernaryWeightMemory(wiring.Component):
    """Ternary weights stored as 2T2R device bits, read through a PCSA model with fault injection.

    Parameters
    ----------
    spec : TernaryMemorySpec
    init : optional list of ``depth`` words (cells packed as :func:`spec.ternary.pack_cells`).

    Members
    -------
    rd_addr : In(addr_bits), rd_en : In(1) — PCSA read request.
    rd_nz, rd_neg : Out(P) — the read's weights, valid the cycle after ``rd_en``.
    busy : Out(1) — seeding/priming the PRNG; no reads or commands meanwhile.
    cmd : In(stream) — program writes / raw read-backs (``spec.cmd_fields()``).
    rsp : Out(stream) — one response per raw read-back (``spec.rsp_fields()``).
    reg : In(RegSignature) — ``REG_*`` of :mod:`spec.ternary`.
    wr_en, wr_addr, wr_cells : Out — the storage's write in this cycle (the cells as stored, after the
        injector): a copy of the array elsewhere (the EqSpike core's top-down rows) follows it.
    """

    def __init__(self, spec: TernaryMemorySpec, init: list[int] | None = None):
        if not isinstance(spec, TernaryMemorySpec):
            raise TypeError(f"spec must be a TernaryMemorySpec, not {type(spec).__name__}")
        if init is not None:
            if len(init) > spec.depth:
                raise ValueError(f"init must have at most depth={spec.depth} words, not {len(init)}")
            if any(not 0 <= int(w) < (1 << spec.word_bits) for w in init):
                raise ValueError(f"init words must fit {spec.word_bits} unsigned bits")
        self.spec = spec
        self.init = [int(w) for w in init] if init is not None else []
        P = spec.lanes
        members = {
            "rd_addr": In(spec.addr_bits), "rd_en": In(1), "rd_nz": Out(P), "rd_neg": Out(P),
            "busy": Out(1),
            "cmd": In(stream.Signature(_layout(spec.cmd_fields()))),
            "rsp": Out(stream.Signature(_layout(spec.rsp_fields()))),
            "reg": In(RegSignature()),
            # the storage's write (a program or update write, after the injector): what a mirror copies
            "wr_en": Out(1), "wr_addr": Out(spec.addr_bits), "wr_cells": Out(spec.word_bits),
        }
        if spec.update_port:
            members.update({"rd_raw": In(1), "rd_cells": Out(spec.word_bits), "up_en": In(1),
                            "up_addr": In(spec.addr_bits), "up_data": In(spec.word_bits), "up_mask": In(P)})
        super().__init__(members)

    def elaborate(self, platform):  # noqa: C901 - one small datapath
        s = self.spec
        P, fi = s.lanes, s.fault_injection
        m = Module()

        m.submodules.mem = mem = memory.Memory(shape=unsigned(s.word_bits), depth=s.depth, init=self.init)
        rp, wp = mem.read_port(), mem.write_port()

        # --- registers ---------------------------------------------------------------------------
        ctrl = Signal(4, init=s.ctrl_reset)
        rate_zero = Signal(RATE_BITS + 1, init=s.rate_zero)
        rate_nonzero = Signal(RATE_BITS + 1, init=s.rate_nonzero)
        r_seed = Signal(REG_BITS, init=s.seed)
        injected = Signal(REG_BITS)
        illegal = Signal(REG_BITS)
        reads = Signal(REG_BITS)
        mode = ctrl[:2]
        static = fi & (mode == 1)
        dynamic = fi & (mode == 2)
        flip = ctrl[2]  # CTRL_KIND_FLIP
        nominal = ctrl[3]  # CTRL_NOMINAL

        # --- PRNG ----------------------------------------------------------------------------------
        if fi:
            m.submodules.prng = prng = XorshiftBank(s.prng_spec())
            primed = Signal()
            prime = prng.ready & ~primed
            busy = ~(prng.ready & primed)
            words = [prng.out[i * PRNG_WIDTH:(i + 1) * PRNG_WIDTH] for i in range(P)]
        else:
            busy = Const(0)
            words = [Const(0, PRNG_WIDTH) for _ in range(P)]
        m.d.comb += self.busy.eq(busy)

        # --- access arbitration --------------------------------------------------------------------
        up = s.update_port
        sensing = Signal()  # a PCSA read's data is on the read port this cycle
        rsp_valid = Signal()
        rsp_data = Signal(s.word_bits)
        raw_pending = Signal()  # a raw read-back's data is on the read port this cycle
        m.d.sync += [sensing.eq(self.rd_en & ~self.rd_raw if up else self.rd_en), raw_pending.eq(0)]
        m.d.comb += self.cmd.ready.eq(~busy & ~self.rd_en & ~sensing & ~raw_pending & ~rsp_valid
                                      & (~self.up_en if up else 1))
        accept = self.cmd.valid & self.cmd.ready
        writing = accept & self.cmd.payload.write
        addr = Mux(self.rd_en, self.rd_addr, self.cmd.payload.addr)
        # the read port is enabled for PCSA reads and read-backs only, never in a write's cycle: its data
        # then holds, which is what a single-port RAM with "no change on write" (the UP5K's SPRAM) does
        port_en, port_we = Signal(), Signal()
        m.d.comb += [port_en.eq(self.rd_en | accept), port_we.eq(writing),
                     rp.addr.eq(addr), rp.en.eq(port_en & ~port_we)]
        if up:
            m.d.comb += [wp.addr.eq(Mux(self.up_en, self.up_addr, addr)), self.rd_cells.eq(rp.data)]
        else:
            m.d.comb += wp.addr.eq(addr)

        # --- program writes (static injection) -------------------------------------------------------
        # (an update write, when the block has the port, takes the same path: its mask picks the cells
        # the injector may change; a program write's mask is every cell)
        wdata = Mux(self.up_en, self.up_data, self.cmd.payload.data) if up else self.cmd.payload.data
        wcells = [wdata[2 * i:2 * i + 2] for i in range(P)]
        wchanged = Signal(P)
        if fi:
            wnew = [inject_cell(m, wcells[i], words[i], flip, rate_zero, rate_nonzero) for i in range(P)]
            if up:
                wmask = Mux(self.up_en, self.up_mask, (1 << P) - 1)
                wnew = [Mux(wmask[i], wnew[i], wcells[i]) for i in range(P)]
            m.d.comb += [wp.data.eq(Mux(static, Cat(*wnew), wdata)),
                         wchanged.eq(Mux(static, Cat(*[wnew[i] != wcells[i] for i in range(P)]), 0))]
        else:
            m.d.comb += wp.data.eq(wdata)
        m.d.comb += wp.en.eq((port_en & port_we) | (self.up_en if up else 0))
        m.d.comb += [self.wr_en.eq(wp.en), self.wr_addr.eq(wp.addr), self.wr_cells.eq(wp.data)]
        if up:  # an update write counts and draws like a program write
            writing = writing | self.up_en

        # --- raw read-backs ------------------------------------------------------------------------------
        with m.If(accept & ~self.cmd.payload.write):
            m.d.sync += raw_pending.eq(1)
        with m.If(raw_pending):
            m.d.sync += [rsp_valid.eq(1), rsp_data.eq(rp.data)]
        with m.Elif(self.rsp.valid & self.rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        m.d.comb += [self.rsp.valid.eq(rsp_valid), self.rsp.payload.data.eq(rsp_data)]

        # --- PCSA reads (dynamic injection) ------------------------------------------------------------
        rcells = [rp.data[2 * i:2 * i + 2] for i in range(P)]
        rchanged = Signal(P)
        ill = Signal(P)
        nz, neg = Signal(P), Signal(P)
        for i in range(P):
            cell = rcells[i]
            if fi:
                new = inject_cell(m, cell, words[i], flip, rate_zero, rate_nonzero)
                cell = Mux(dynamic, new, cell)
                m.d.comb += rchanged[i].eq(dynamic & (new != rcells[i]))
            lnz, lneg, lill = sense_cell(cell, nominal & fi, words[i][PCSA_BIT])
            m.d.comb += [nz[i].eq(lnz), neg[i].eq(lneg), ill[i].eq(lill)]
        m.d.comb += [self.rd_nz.eq(nz), self.rd_neg.eq(neg)]

        if fi:
            m.d.comb += prng.en.eq(writing | sensing | prime)
            with m.If(prime):
                m.d.sync += primed.eq(1)

        # --- counters --------------------------------------------------------------------------------------
        def sat_add(counter, inc, when):
            total = Signal(REG_BITS + 1)
            m.d.comb += total.eq(counter + inc)
            with m.If(when):
                # COUNTER_MAX = 2^REG_BITS - 1 and inc <= P: the carry out says "saturate"
                m.d.sync += counter.eq(Mux(total[REG_BITS], COUNTER_MAX, total[:REG_BITS]))

        # read by hdl/formal: the counters, and the read-back in flight (an invariant for the induction)
        self.formal_taps = {"injected": injected, "illegal": illegal, "reads": reads, "raw_pending": raw_pending}
        sat_add(injected, popcount(Mux(sensing, rchanged, wchanged)), sensing | writing)
        sat_add(illegal, popcount(ill), sensing)
        sat_add(reads, 1, sensing)

        # --- register port -----------------------------------------------------------------------------------
        reg = self.reg
        with m.If(reg.we):
            with m.Switch(reg.addr):
                if fi:
                    with m.Case(REG_CTRL):
                        m.d.sync += ctrl.eq(reg.wdata[:4])
                    with m.Case(REG_RATE_ZERO):
                        m.d.sync += rate_zero.eq(reg.wdata[:RATE_BITS + 1])
                    with m.Case(REG_RATE_NONZERO):
                        m.d.sync += rate_nonzero.eq(reg.wdata[:RATE_BITS + 1])
                with m.Case(REG_SEED):
                    m.d.sync += r_seed.eq(reg.wdata)
                    if fi:
                        m.d.comb += [prng.load.eq(1)]
                        m.d.sync += primed.eq(0)
                with m.Case(REG_INJECTED):
                    m.d.sync += injected.eq(0)
                with m.Case(REG_ILLEGAL):
                    m.d.sync += illegal.eq(0)
                with m.Case(REG_READS):
                    m.d.sync += reads.eq(0)
        if fi:
            m.d.comb += prng.seed.eq(reg.wdata)
        readable = {REG_CTRL: ctrl, REG_RATE_ZERO: rate_zero, REG_RATE_NONZERO: rate_nonzero, REG_SEED: r_seed,
                    REG_STATUS: busy, REG_INJECTED: injected, REG_ILLEGAL: illegal, REG_READS: reads,
                    REG_SPEC_ID: s.spec_id}
        with m.Switch(reg.addr):
            for addr, value in readable.items():
                with m.Case(addr):
                    m.d.comb += reg.rdata.eq(value)
        return m
