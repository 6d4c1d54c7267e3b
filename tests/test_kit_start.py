# amaranth: UnusedElaboratable=no
"""Kit part: the start gate (:class:`hdl.kit.start.StartGate`) == its contract.

Random inputs every cycle, for the four (has_prng, ternary) variants: ``ok`` is the AND of the
conditions that apply in the same cycle (latency 0), ``beta`` is the ``beta_shift`` of the last
``load`` cycle from the next cycle on (the reset value before any), unchanged by later register
values — as the twin reads ``beta_shift`` once per sample.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hdl.kit.start import StartGate


@pytest.mark.parametrize("has_prng", [False, True])
@pytest.mark.parametrize("ternary", [False, True])
def test_start_gate_follows_its_contract(has_prng, ternary):
    dut = StartGate(range(5), 1, has_prng=has_prng, ternary=ternary)
    rnd = random.Random(has_prng * 2 + ternary)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        beta = 1
        for c in range(500):
            ins = {n: int(rnd.random() < p) for n, p in (("idle", 0.8), ("pending", 0.1), ("wcmd_valid", 0.1),
                                                         ("prng_ok", 0.8), ("mem_busy", 0.1), ("seed_write", 0.1),
                                                         ("load", 0.2))}
            ins["beta_shift"] = rnd.randrange(5)
            for n, v in ins.items():
                ctx.set(getattr(dut, n), v)
            ok = ins["idle"] and not ins["pending"] and not ins["wcmd_valid"]
            ok = ok and (ins["prng_ok"] or not has_prng) and (not (ins["mem_busy"] or ins["seed_write"]) or not ternary)
            assert ctx.get(dut.ok) == int(ok), f"cycle {c}"
            assert ctx.get(dut.beta) == beta, f"cycle {c}"
            if ins["load"]:
                beta = ins["beta_shift"]
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
