"""Galton part: the control/status registers and the run (docs/galton.md, "Components"; twin piece
:meth:`golden.domainwall.twin.GaltonTwin.write_reg`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.galton import (
    CMD_CLEAR,
    CMD_START,
    CMD_STOP,
    CTRL_CORRELATED,
    CTRL_HIST_ONLY,
    REG_BALLS,
    REG_BITS,
    REG_CMD,
    REG_CTRL,
    REG_DONE,
    REG_REMAINING,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    GaltonSpec,
)

from ..regport import RegSignature


def _bit(mask: int) -> int:
    return mask.bit_length() - 1


class GaltonRegisters(wiring.Component):
    """``REG_*`` of :mod:`spec.galton` behind the register port, and the run they start and stop.

    Contract (twin piece: ``GaltonTwin.write_reg`` / ``spec.register_write_error``; runs as ``balls``):

    * A write (``bus.we``) out of range changes nothing and sets ``write_refused`` (REG_STATUS bit 4,
      sticky; a STATUS write clears it; so does nothing else). CTRL, SEED and BALLS are taken only while
      idle (not ``running``, not ``clearing``); ``reseed`` is high in the cycle a SEED write is taken.
      CMD: START (not running) starts a run of ``BALLS`` balls (0: unlimited); STOP ends it (STOP wins
      over START and over a ball in the same cycle); CLEAR (not running) raises ``clear`` that cycle
      and zeroes DONE.
    * ``commit`` (a generated ball): DONE +1 (saturating), REMAINING −1 in a limited run, which ends
      with the last one. ``thr_refused`` sets ``write_refused`` (over a STATUS write in the same cycle).
    * ``bus.rdata`` is combinational; STATUS = running | (clearing | tinit) << 1 | ~ready << 2 |
      out_valid << 3 | write_refused << 4.

    Latency: writes 1 cycle, reads 0 cycles. No stream ports.

    Members
    -------
    bus : In(RegSignature). commit, clearing, tinit, ready, out_valid, thr_refused : In(1).
    corr, hist_only, running, write_refused, reseed, clear : Out(1). seed : Out(32). balls, done,
    remaining : Out(count_bits).
    """

    def __init__(self, spec: GaltonSpec):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.spec = spec
        cb = spec.count_bits
        super().__init__({
            "bus": In(RegSignature()), "commit": In(1), "clearing": In(1), "tinit": In(1), "ready": In(1),
            "out_valid": In(1), "thr_refused": In(1), "corr": Out(1, init=int(spec.correlated)), "hist_only": Out(1),
            "seed": Out(REG_BITS, init=spec.seed), "balls": Out(cb), "running": Out(1), "write_refused": Out(1),
            "done": Out(cb), "remaining": Out(cb), "reseed": Out(1), "clear": Out(1),
        })

    def elaborate(self, platform):
        s, m, bus = self.spec, Module(), self.bus
        running, remaining, done, refused = self.running, self.remaining, self.done, self.write_refused
        limited = Signal()
        idle = ~running & ~self.clearing
        done_inc = Signal(s.count_bits + 1)  # the carry out says DONE is at its maximum
        m.d.comb += done_inc.eq(done + 1)
        with m.If(self.commit):
            m.d.sync += done.eq(Mux(done_inc[-1], done, done_inc[:-1]))
            with m.If(limited):
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(remaining == 1):
                    m.d.sync += running.eq(0)
        # an out-of-range write (spec.register_write_error) changes nothing and sets the sticky
        # write_refused (REG_STATUS bit 4); a write of REG_STATUS clears it
        wd = bus.wdata
        with m.If(bus.we):
            with m.Switch(bus.addr):
                with m.Case(REG_CTRL):
                    with m.If(wd[2:] != 0):
                        m.d.sync += refused.eq(1)
                    with m.Elif(idle):
                        m.d.sync += [self.corr.eq(wd[_bit(CTRL_CORRELATED)]),
                                     self.hist_only.eq(wd[_bit(CTRL_HIST_ONLY)])]
                with m.Case(REG_SEED):
                    with m.If(idle):
                        m.d.sync += self.seed.eq(wd)
                        m.d.comb += self.reseed.eq(1)
                with m.Case(REG_BALLS):
                    if s.count_bits < REG_BITS:
                        with m.If(wd[s.count_bits:] != 0):
                            m.d.sync += refused.eq(1)
                        with m.Elif(idle):
                            m.d.sync += self.balls.eq(wd)
                    else:
                        with m.If(idle):
                            m.d.sync += self.balls.eq(wd)
                with m.Case(REG_STATUS):
                    m.d.sync += refused.eq(0)
                with m.Case(REG_CMD):
                    with m.If(wd[3:] != 0):
                        m.d.sync += refused.eq(1)
                    with m.Elif(wd[_bit(CMD_START)] & ~running):
                        m.d.sync += [running.eq(1), limited.eq(self.balls != 0), remaining.eq(self.balls)]
                    with m.If((wd[3:] == 0) & wd[_bit(CMD_STOP)]):
                        m.d.sync += [running.eq(0), remaining.eq(0)]
                    with m.If((wd[3:] == 0) & wd[_bit(CMD_CLEAR)] & ~running):
                        m.d.sync += done.eq(0)
                        m.d.comb += self.clear.eq(1)
                with m.Default():  # read-only or unmapped
                    m.d.sync += refused.eq(1)
        with m.If(self.thr_refused):
            m.d.sync += refused.eq(1)
        with m.Switch(bus.addr):
            with m.Case(REG_CTRL):
                m.d.comb += bus.rdata.eq(self.corr * CTRL_CORRELATED | self.hist_only * CTRL_HIST_ONLY)
            with m.Case(REG_SEED):
                m.d.comb += bus.rdata.eq(self.seed)
            with m.Case(REG_BALLS):
                m.d.comb += bus.rdata.eq(self.balls)
            with m.Case(REG_STATUS):
                m.d.comb += bus.rdata.eq(running | ((self.clearing | self.tinit) << 1) | (~self.ready << 2)
                                         | (self.out_valid << 3) | (refused << 4))
            with m.Case(REG_DONE):
                m.d.comb += bus.rdata.eq(done)
            with m.Case(REG_REMAINING):
                m.d.comb += bus.rdata.eq(remaining)
            with m.Case(REG_SPEC_ID):
                m.d.comb += bus.rdata.eq(s.spec_id)
        return m
