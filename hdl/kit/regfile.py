"""The EP core's register file behind the shared register port (:class:`hdl.regport.RegSignature`)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import (
    REG_BETA_SHIFT,
    REG_BITS,
    REG_CTRL,
    REG_CYCLES,
    REG_LR_SHIFT,
    REG_SAMPLES,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    REG_T1,
    REG_T2,
    STATUS_REG_ERROR,
    TERNARY_REGS,
    EPCoreSpec,
)

from ..regport import REG_ADDR_BITS, RegSignature


class EPRegisterFile(wiring.Component):
    """Run-time registers of an EP core (``spec.ep_core.REG_*``) with the refused-write flag.

    Contract (twin piece: :class:`golden.ep_core.twin.Registers`, ``write`` / ``read``):

    * A write (``bus.we``) while ``busy`` is low is taken or refused as
      :meth:`spec.ep_core.EPCoreSpec.register_write_error` says. Taken: the register holds the
      value from the next cycle on. Refused: every register keeps its value and ``reg_error``
      (``REG_STATUS`` bit 1) is set from the next cycle on, sticky until ``REG_STATUS`` is written.
      A write while ``busy`` is high is ignored without a flag.
    * ``bus.rdata`` is combinational: the value of register ``bus.addr`` in the same cycle
      (``REG_STATUS`` = ``busy`` | ``reg_error`` << 1; ``REG_CYCLES``/``REG_SAMPLES`` are the
      ``cycles``/``samples`` inputs; ``REG_SPEC_ID`` the spec digest; unmapped addresses read 0).
    * ``seed_load`` is high (combinationally) in the cycle a ``REG_SEED`` write is taken.
    * A ternary core (``spec.weight_kind == "ternary"``) forwards its memory's registers
      (``spec.ep_core.TERNARY_REGS``) on ``mem``: the mapped address and ``wdata`` always, ``we``
      only for such a write while not busy; reads of them show ``mem.rdata`` (``REG_SEED`` too,
      unless the core has a PRNG of its own, whose seed ``REG_SEED`` then reads).

    Latency: writes 1 cycle; reads 0 cycles. No stream ports (no back-pressure).

    Parameters
    ----------
    spec : EPCoreSpec
        Register widths, reset values and the write checks.

    Members
    -------
    bus : In(RegSignature) — the host's register port.
    busy : In(1) — the core runs a sample (writes are ignored; ``REG_STATUS`` bit 0).
    cycles, samples : In(REG_BITS) — the values of ``REG_CYCLES`` and ``REG_SAMPLES``.
    train, symmetric, dump, random_sign : Out(1) — ``REG_CTRL`` bits 0..3 (``random_sign`` stays 0
        without a PRNG).
    T1, T2 : Out(step_bits); beta_shift, lr_shift : Out(range(max + 1)); seed : Out(REG_BITS).
    reg_error : Out(1) — the sticky refused-write flag.
    seed_load : Out(1) — a ``REG_SEED`` write is taken this cycle.
    mem : Out(RegSignature) — the ternary memory's register port (ternary cores only).
    """

    def __init__(self, spec: EPCoreSpec):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        self.spec = spec
        self.ternary = spec.weight_kind == "ternary"
        self.has_prng = spec.uses_prng
        members = {
            "bus": In(RegSignature()),
            "busy": In(1),
            "cycles": In(REG_BITS),
            "samples": In(REG_BITS),
            "train": Out(1, init=0),
            "symmetric": Out(1, init=int(spec.estimator == "symmetric")),
            "dump": Out(1, init=0),
            "random_sign": Out(1, init=int(spec.estimator == "random-sign" and self.has_prng)),
            "T1": Out(spec.step_bits, init=spec.T1),
            "T2": Out(spec.step_bits, init=spec.T2),
            "beta_shift": Out(range(spec.beta_shift_max + 1), init=spec.beta_shift),
            "lr_shift": Out(range(spec.lr_shift_max + 1), init=spec.lr_shift),
            "seed": Out(REG_BITS, init=spec.seed),
            "reg_error": Out(1),
            "seed_load": Out(1),
        }
        if self.ternary:
            members["mem"] = Out(RegSignature())
        super().__init__(members)

    def elaborate(self, platform):
        s, bus = self.spec, self.bus
        m = Module()
        rng, ternary = self.has_prng, self.ternary
        wd = bus.wdata
        with m.If(bus.we & ~self.busy):
            with m.Switch(bus.addr):
                # a value out of range is refused: the register keeps its value and reg_error is set
                with m.Case(REG_CTRL):
                    ctrl_bad = (wd[4:] != 0) | (wd[0] & int(not s.training)) | (wd[3] & int(not rng))
                    with m.If(ctrl_bad):
                        m.d.sync += self.reg_error.eq(1)
                    with m.Else():
                        m.d.sync += [self.train.eq(wd[0]), self.symmetric.eq(wd[1]), self.dump.eq(wd[2])]
                        if rng:
                            m.d.sync += self.random_sign.eq(wd[3])
                for addr, reg, ok in ((REG_T1, self.T1, (wd != 0) & (wd < (1 << s.step_bits))),
                                      (REG_T2, self.T2, (wd != 0) & (wd < (1 << s.step_bits))),
                                      (REG_BETA_SHIFT, self.beta_shift, wd <= s.beta_shift_max),
                                      (REG_LR_SHIFT, self.lr_shift, wd <= s.lr_shift_max)):
                    with m.Case(addr):
                        with m.If(ok):
                            m.d.sync += reg.eq(wd)
                        with m.Else():
                            m.d.sync += self.reg_error.eq(1)
                with m.Case(REG_STATUS):
                    m.d.sync += self.reg_error.eq(0)
                if ternary:  # the memory's registers (forwarded below)
                    with m.Case(*[a for a in TERNARY_REGS if a != REG_SEED]):
                        pass
                with m.Case(REG_SEED):
                    m.d.sync += self.seed.eq(wd)
                    m.d.comb += self.seed_load.eq(1)
                with m.Default():  # read-only or unmapped
                    m.d.sync += self.reg_error.eq(1)
        if ternary:  # the memory's registers (spec.ep_core.TERNARY_REGS), written between samples only
            t_addr, t_sel = Signal(REG_ADDR_BITS), Signal()
            with m.Switch(bus.addr):
                for core_a, mem_a in TERNARY_REGS.items():
                    with m.Case(core_a):
                        m.d.comb += [t_addr.eq(mem_a), t_sel.eq(1)]
            m.d.comb += [self.mem.addr.eq(t_addr), self.mem.wdata.eq(wd), self.mem.we.eq(bus.we & ~self.busy & t_sel)]
        with m.Switch(bus.addr):
            if ternary:
                for core_a in TERNARY_REGS:
                    if core_a != REG_SEED or not rng:  # without a core PRNG the memory holds the one seed
                        with m.Case(core_a):
                            m.d.comb += bus.rdata.eq(self.mem.rdata)
            with m.Case(REG_CTRL):
                ctrl = self.train | (self.symmetric << 1) | (self.dump << 2)
                m.d.comb += bus.rdata.eq(ctrl | (self.random_sign << 3) if rng else ctrl)
            with m.Case(REG_T1):
                m.d.comb += bus.rdata.eq(self.T1)
            with m.Case(REG_T2):
                m.d.comb += bus.rdata.eq(self.T2)
            with m.Case(REG_BETA_SHIFT):
                m.d.comb += bus.rdata.eq(self.beta_shift)
            with m.Case(REG_LR_SHIFT):
                m.d.comb += bus.rdata.eq(self.lr_shift)
            if rng or not ternary:
                with m.Case(REG_SEED):
                    m.d.comb += bus.rdata.eq(self.seed)
            with m.Case(REG_STATUS):
                m.d.comb += bus.rdata.eq(self.busy | (self.reg_error * STATUS_REG_ERROR))
            with m.Case(REG_CYCLES):
                m.d.comb += bus.rdata.eq(self.cycles)
            with m.Case(REG_SAMPLES):
                m.d.comb += bus.rdata.eq(self.samples)
            with m.Case(REG_SPEC_ID):
                m.d.comb += bus.rdata.eq(s.spec_id)
        return m
