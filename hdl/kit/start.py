"""Kit part: when a sample may start, and what is latched when it does (docs/ep-core.md, "Components";
twin piece: :meth:`golden.ep_core.EPCoreTwin.train_sample` / ``infer`` take ``beta_shift`` once per sample)."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class StartGate(wiring.Component):
    """The input loader's ``ok`` and the sample's latched ``beta_shift``.

    Contract:

    * ``ok`` (combinational) = ``idle`` (the sequencer waits for a sample) and no weight-port traffic (not
      ``pending``, no ``wcmd_valid``), and — with ``has_prng`` — ``prng_ok`` (the core's PRNG seeded and
      primed), and — with ``ternary`` — the ternary memory not busy (``mem_busy``) and no seed write
      announced (``seed_write``).
    * ``beta`` holds ``beta_shift`` as it was in the cycle of ``load`` (the sample's last input beat), from
      the next cycle on: a register write during the sample does not change it (the twin reads the
      registers once per sample).

    Latency: ``ok`` 0 cycles; ``beta`` 1 cycle after ``load``. No stream ports.

    Parameters
    ----------
    beta_shape : the shape of ``beta_shift``. beta_init : ``beta``'s reset value (the register's).
    has_prng, ternary : bool — which conditions apply.

    Members
    -------
    idle, pending, wcmd_valid, prng_ok, mem_busy, seed_write, load : In(1). beta_shift : In(beta_shape).
    ok : Out(1). beta : Out(beta_shape).
    """

    def __init__(self, beta_shape, beta_init: int = 0, *, has_prng: bool, ternary: bool):
        self.has_prng, self.ternary = bool(has_prng), bool(ternary)
        super().__init__({"idle": In(1), "pending": In(1), "wcmd_valid": In(1), "prng_ok": In(1), "mem_busy": In(1),
                          "seed_write": In(1), "load": In(1), "beta_shift": In(beta_shape), "ok": Out(1),
                          "beta": Out(beta_shape, init=beta_init)})

    def elaborate(self, platform):
        m = Module()
        start_ok = ~self.pending & ~self.wcmd_valid
        if self.has_prng:  # a sample starts only with the PRNG seeded and primed
            start_ok = start_ok & self.prng_ok
        if self.ternary:  # … and the ternary memory's PRNG likewise
            start_ok = start_ok & ~self.mem_busy & ~self.seed_write
        m.d.comb += self.ok.eq(self.idle & start_ok)
        with m.If(self.load):
            m.d.sync += self.beta.eq(self.beta_shift)
        return m
