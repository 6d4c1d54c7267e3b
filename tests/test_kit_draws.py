# amaranth: UnusedElaboratable=no
"""Kit part: the draw source (:mod:`hdl.kit.draws`) == its twin piece (:class:`golden.prng.LaneStream`).

The source is seeded, draws are taken at random cycles (with gaps), it is reseeded in the middle
(once while ``ok``, once while still seeding) and drawn again; every draw's output words equal
``LaneStream.reseed(seed)`` then ``take(1)`` (``==``). Latency asserted: ``ok`` rises exactly
P + 1 cycles after ``seed_load`` (P lanes filled, one priming step), is low while ``seed_write``
is high, and the bank does not move between draws. No back-pressure.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden.prng import LaneStream
from hdl.kit.draws import DrawSource
from spec.ep_core import EPCoreSpec


@pytest.mark.parametrize("lanes", [1, 3])
def test_draws_match_the_lane_stream(lanes):
    spec = EPCoreSpec(layers=(5, 3, 2), lanes=lanes, training=True, update_rounding="stochastic").prng_spec()
    dut = DrawSource(spec)
    W = spec.width
    rnd = random.Random(lanes)
    seeds = [0x12345678, 0x9E3779B9, 0xDEADBEEF]
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for n, seed in enumerate(seeds):
            ctx.set(dut.seed, seed)
            ctx.set(dut.seed_load, 1)
            await ctx.tick()
            ctx.set(dut.seed_load, 0)
            if n == 1:  # a reseed while still seeding restarts the fill
                await ctx.tick()
                ctx.set(dut.seed, seed)
                ctx.set(dut.seed_load, 1)
                await ctx.tick()
                ctx.set(dut.seed_load, 0)
            waited = 0
            while not ctx.get(dut.ok):
                await ctx.tick()
                waited += 1
            assert waited + 1 == lanes + 1, f"ok {waited + 1} cycles after seed_load"
            ctx.set(dut.seed_write, 1)
            assert not ctx.get(dut.ok)
            ctx.set(dut.seed_write, 0)
            twin = LaneStream(spec)
            twin.reseed(seed)
            want = twin.take(12)
            for d in range(12):
                for _ in range(rnd.randint(0, 2)):  # no draw: the bank holds
                    await ctx.tick()
                ctx.set(dut.draw, 1)
                out = ctx.get(dut.out)
                assert [out >> (i * W) & ((1 << W) - 1) for i in range(lanes)] == want[d].tolist(), f"draw {d}"
                await ctx.tick()
                ctx.set(dut.draw, 0)

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    with pytest.raises(TypeError, match="spec must be a PRNGSpec"):
        DrawSource(None)
