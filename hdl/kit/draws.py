"""Kit part: the EP core's source of random draws (docs/ep-core.md, "Components"; twin piece
:class:`golden.prng.LaneStream`)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.prng import PRNGSpec

from ..prng import XorshiftBank


class DrawSource(wiring.Component):
    """A seeded, primed :class:`hdl.prng.XorshiftBank`: one step per draw (spec.ep_core, "Randomness").

    Contract (twin piece: :class:`golden.prng.LaneStream` — ``reseed(seed)``, then ``take(1)`` per draw):

    * ``seed_load`` (one cycle; ``seed`` the value) reseeds the bank: its lanes fill in P cycles,
      then one priming step is taken. ``ok`` is high from then on (not while a seed write is
      announced on ``seed_write``, nor while seeding): a sample may start.
    * In a cycle with ``draw`` high (only while ``ok``), ``out`` is every lane's output word after
      the draw — the n-th draw since the seeding sees the bank after n + 1 steps, exactly
      ``LaneStream.take(1)``'s n-th row — and the bank steps once at the end of the cycle.

    Latency: ``out`` is valid in the draw's cycle (combinational from the states); seeding P + 1
    cycles. No back-pressure.

    Parameters
    ----------
    spec : PRNGSpec (``spec.prng_spec()``).

    Members
    -------
    seed : In(32). seed_load, seed_write, draw : In(1). ok : Out(1). out : Out(lanes × 32).
    """

    def __init__(self, spec: PRNGSpec):
        if not isinstance(spec, PRNGSpec):
            raise TypeError(f"spec must be a PRNGSpec, not {type(spec).__name__}")
        self.spec = spec
        self.bank = XorshiftBank(spec)
        super().__init__({"seed": In(32), "seed_load": In(1), "seed_write": In(1), "draw": In(1), "ok": Out(1),
                          "out": Out(spec.lanes * spec.width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.prng = prng = self.bank
        primed = Signal()
        prime = prng.ready & ~primed
        with m.If(self.seed_load):  # reseed the bank (its lanes fill in P cycles), then prime it again
            m.d.comb += prng.load.eq(1)
            m.d.sync += primed.eq(0)
        with m.Elif(prime):
            m.d.sync += primed.eq(1)
        m.d.comb += [prng.seed.eq(self.seed), prng.en.eq(prime | self.draw), self.out.eq(prng.out),
                     self.ok.eq(prng.ready & primed & ~self.seed_write)]
        return m
