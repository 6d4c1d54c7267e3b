"""EqSpike part: the run-time registers (map ``REG_*``; docs/eqspike.md, "Registers"; twin pieces
:meth:`golden.eqspike.twin.EqSpikeTwin.set_lr_shift`, :meth:`~golden.eqspike.twin.EqSpikeTwin.reseed`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from ..regport import REG_ADDR_BITS, RegSignature

REG_BITS = 32
# register map (addresses on the 4-bit register port)
# bit 0: AER input mode, bit 1: train (on-chip learning); training cores: bits 8 … the label of AER training
# samples (< N_L; pixel samples bring theirs on ``inp``)
REG_CTRL = 0
REG_T1 = 1  # free-phase steps (1 .. 2^step_bits - 1)
REG_T2 = 2  # nudged-phase steps (training)
REG_SEED = 3  # PRNG seed (a write reseeds the bank)
REG_STATUS = 4  # bit 0 busy, bit 1 refused register write, bit 2 bad AER event, bit 3 bad weight command
REG_CYCLES = 5  # cycles of the last sample (start to prediction valid)
REG_SAMPLES = 6  # samples done since reset
REG_SPIKES = 7  # spikes of the last sample, layers 0 .. L
REG_WORDS = 8  # weight words read by the event engine in the last sample
REG_SYN = 9  # synaptic events of the last sample (spikes x fan-out: the twin's synaptic_events)
REG_AER_BAD = 10  # AER events for a neuron that does not exist, since the last STATUS write
REG_SPEC_ID = 11  # the spec digest's first 32 bits
REG_DIGEST = 12  # write: sweep every weight and bias memory word (STATUS busy meanwhile); read: the sweep's digest
REG_DUMP = 13  # write (cores built with dump=True): the digest sweep, every word also out on ``wdump``; reads 0
# training cores: the η registers (η = 2^-lr_shift per connection; reset: the spec's lr_shift). A write is
# ``shift | connection << 8`` (connection LR_ALL: every connection), shift in [lr_shift_min(spec, c), 32]
# (spec.eqspike.EqSpikeSpec.check_lr_shift); a read gives connection c's shift in bits 6c … 6c + 5 (c < 5)
REG_LR = 14
# ternary cores (weight_kind="ternary"): a window on the weight memory's registers (spec.ternary.REG_*). A
# write is ``a | nowrite << 4 | value << 5``: it selects memory register a (what a read of REG_TMEM shows)
# and, unless ``nowrite``, writes ``value`` (27 bits: CTRL, the rates, a seed < 2^27; any value clears a
# counter) to it. Read: the selected memory register (reset selection 0, its CTRL)
REG_TMEM = 15
TMEM_NOWRITE = 1 << 4
LR_ALL = 0xFF
LR_MAX = 32
CTRL_AER, CTRL_TRAIN = 1, 2
CTRL_LABEL_SHIFT = 8
STATUS_BUSY, STATUS_REG_ERROR, STATUS_AER_ERROR, STATUS_WCMD_ERROR = 1, 2, 4, 8
REGISTERS = {k: v for k, v in globals().items() if k.startswith("REG_") and k != "REG_BITS"}


def lr_shift_min(spec: EqSpikeSpec, l: int) -> int:
    """Smallest η register value of connection l (both of its update shifts stay >= 0): the lower bound of
    :meth:`spec.eqspike.EqSpikeSpec.check_lr_shift` for the fixed weight kind."""
    return max(0, -spec.update_shift(l, 0), -spec.bias_update_shift(l, 0))



class EqSpikeRegisters(wiring.Component):
    """The EqSpike core's run-time registers behind :class:`hdl.regport.RegSignature` (map: ``REG_*`` above).

    Contract (the same as :class:`hdl.kit.regfile.EPRegisterFile`'s, for this register map): a write
    while ``busy`` is low is taken, or refused when its value is out of range (``T1``/``T2`` 0 or
    ≥ 2^step_bits, ``CTRL`` bits beyond 0 (an inference core) or bits 2 … 7 and a label ≥ N_L (a training
    core: bits 0 and 1 in any combination, ``label`` in bits 8 …), a read-only or unmapped address): every
    register then keeps its value and ``reg_error`` (STATUS bit 1) is set, sticky until STATUS is written. A write while
    busy is ignored. ``rdata`` is combinational. ``seed_load`` is high in the cycle a SEED write is
    taken; ``status_clear`` in the cycle a STATUS write is taken (clears the core's sticky flags);
    ``digest_start`` in the cycle a DIGEST write is taken (starts the core's weight-digest sweep; the value
    written is ignored); ``dump_start`` in the cycle a DUMP write is taken (``dump=True`` only; without it
    DUMP is unmapped: refused like any other unmapped address).
    """

    def __init__(self, spec: EqSpikeSpec, *, dump: bool = False):
        self.spec, self.dump = spec, dump
        sb = spec.step_bits
        super().__init__({
            "bus": In(RegSignature()), "busy": In(1),
            "status": In(REG_BITS), "cycles": In(REG_BITS), "samples": In(REG_BITS), "spikes": In(REG_BITS),
            "words": In(REG_BITS), "syn": In(REG_BITS), "aer_bad": In(REG_BITS), "digest": In(REG_BITS),
            "aer_mode": Out(1), "train": Out(1), **({"label": Out(range(spec.layers[-1]))} if spec.training else {}),
            "T1": Out(sb, init=spec.T1), "T2": Out(sb, init=spec.T2),
            "seed": Out(REG_BITS, init=spec.seed), "reg_error": Out(1), "seed_load": Out(1), "status_clear": Out(1),
            "digest_start": Out(1), **({"dump_start": Out(1)} if dump else {}),
            **({"lr": Out(data.ArrayLayout(unsigned(6), spec.n_layers), init=list(spec.lr_shift))}
               if spec.training else {}),
            **({"tmem": Out(RegSignature())} if spec.weight_kind == "ternary" else {}),
        })

    def elaborate(self, platform):
        s, bus = self.spec, self.bus
        m = Module()
        wd = bus.wdata
        step_ok = (wd != 0) & (wd < (1 << s.step_bits))
        if s.weight_kind == "ternary":
            tsel = Signal(4)
            m.d.comb += [self.tmem.addr.eq(Mux(bus.we & (bus.addr == REG_TMEM), wd[:4], tsel)),
                         self.tmem.wdata.eq(wd[5:])]
        with m.If(bus.we & ~self.busy):
            with m.Switch(bus.addr):
                with m.Case(REG_CTRL):
                    if s.training:  # bits 8 …: the label of AER training samples
                        with m.If((wd[2:CTRL_LABEL_SHIFT] != 0) | (wd[CTRL_LABEL_SHIFT:] >= s.layers[-1])):
                            m.d.sync += self.reg_error.eq(1)
                        with m.Else():
                            m.d.sync += [self.aer_mode.eq(wd[0]), self.train.eq(wd[1]),
                                         self.label.eq(wd[CTRL_LABEL_SHIFT:])]
                    else:  # bit 1 (train) needs a training core
                        with m.If((wd[2:] != 0) | wd[1]):
                            m.d.sync += self.reg_error.eq(1)
                        with m.Else():
                            m.d.sync += [self.aer_mode.eq(wd[0]), self.train.eq(wd[1])]
                for addr, reg in ((REG_T1, self.T1), (REG_T2, self.T2)):
                    with m.Case(addr):
                        with m.If(step_ok):
                            m.d.sync += reg.eq(wd)
                        with m.Else():
                            m.d.sync += self.reg_error.eq(1)
                with m.Case(REG_SEED):
                    m.d.sync += self.seed.eq(wd)
                    m.d.comb += self.seed_load.eq(1)
                with m.Case(REG_STATUS):
                    m.d.sync += self.reg_error.eq(0)
                    m.d.comb += self.status_clear.eq(1)
                with m.Case(REG_DIGEST):  # any value: start a digest sweep
                    m.d.comb += self.digest_start.eq(1)
                if self.dump:
                    with m.Case(REG_DUMP):  # any value: start a digest sweep that also streams every word out
                        m.d.comb += self.dump_start.eq(1)
                if s.training:
                    with m.Case(REG_LR):  # shift | connection << 8: one connection, or all (LR_ALL)
                        conn, val = wd[8:16], wd[:8]
                        fits = [(val >= lr_shift_min(s, c)) & (val <= LR_MAX) for c in range(s.n_layers)]
                        ok = (conn == LR_ALL) & Cat(*fits).all()
                        for c in range(s.n_layers):
                            ok = ok | ((conn == c) & fits[c])
                        with m.If((wd[16:] == 0) & ok):
                            for c in range(s.n_layers):
                                with m.If((conn == c) | (conn == LR_ALL)):
                                    m.d.sync += self.lr[c].eq(val)
                        with m.Else():
                            m.d.sync += self.reg_error.eq(1)
                if s.weight_kind == "ternary":
                    with m.Case(REG_TMEM):  # select memory register wd[:4]; write it unless wd[4]
                        m.d.sync += tsel.eq(wd[:4])
                        m.d.comb += self.tmem.we.eq(~wd[4])
                with m.Default():
                    m.d.sync += self.reg_error.eq(1)
        ctrl = self.aer_mode | (self.train << 1)
        if s.training:
            ctrl = ctrl | (self.label << CTRL_LABEL_SHIFT)
        values = {REG_CTRL: ctrl, REG_T1: self.T1, REG_T2: self.T2, REG_SEED: self.seed,
                  REG_STATUS: self.status | (self.reg_error * STATUS_REG_ERROR), REG_CYCLES: self.cycles,
                  REG_SAMPLES: self.samples, REG_SPIKES: self.spikes, REG_WORDS: self.words, REG_SYN: self.syn,
                  REG_AER_BAD: self.aer_bad, REG_SPEC_ID: Const(s.spec_id, 32), REG_DIGEST: self.digest}
        if s.weight_kind == "ternary":
            values[REG_TMEM] = self.tmem.rdata
        if s.training:
            values[REG_LR] = Cat(*[self.lr[c] for c in range(min(s.n_layers, 5))])
        assert max(values) < 1 << REG_ADDR_BITS
        with m.Switch(bus.addr):
            for addr, v in values.items():
                with m.Case(addr):
                    m.d.comb += bus.rdata.eq(v)
        return m
