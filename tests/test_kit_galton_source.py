# amaranth: UnusedElaboratable=no
"""Galton part: the ball source (:class:`hdl.kit.galton_source.BallSource`) == ``GaltonTwin.words``.

The source is reseeded, then balls enter with random ``adv``/``enter`` and runs that end at random
(dropping the balls in flight). A model of the ``stages`` valid bits says when ``commit`` must be high
(exactly ``stages`` advancing cycles after a ball entered, never after its run ended), and every
entering ball's words must be the twin's (``GaltonTwin.reseed(seed)``, ``words``) for the ball
number it will have if generated: balls generated so far plus balls in flight (``==``). ``ready``
rises a fixed number of cycles after ``reseed`` (lanes + 3).
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden.domainwall import GaltonTwin
from hdl.galton import pipeline_stages
from hdl.kit.galton_source import BallSource
from spec.galton import GaltonSpec


@pytest.mark.parametrize("rows_per_stage", [1, 2, 5])
def test_source_matches_the_twin_words(rows_per_stage):
    spec = GaltonSpec(rows=5, boards=2, prob_bits=4, prng_width=16, bin_bits=2, count_bits=3)
    P = pipeline_stages(spec, rows_per_stage)
    dut = BallSource(spec, P)
    rnd = random.Random(rows_per_stage)
    w, lanes = spec.prng_width, spec.lanes
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for seed in (0x1234, 0xBEEF01):
            ctx.set(dut.running, 0)
            ctx.set(dut.seed, seed)
            ctx.set(dut.reseed, 1)
            await ctx.tick()
            ctx.set(dut.reseed, 0)
            waited = 1
            while not ctx.get(dut.ready):
                await ctx.tick()
                waited += 1
            assert waited == lanes + 3, f"ready {waited} cycles after reseed"
            want = GaltonTwin(spec, seed=seed).words(400)
            generated, slots = 0, [None] * P  # slots: the ball number in each stage register
            for _ in range(500):
                running = rnd.random() < 0.95 if generated < 300 else 0
                adv, enter = rnd.random() < 0.7, rnd.random() < 0.8
                ctx.set(dut.running, running)
                ctx.set(dut.adv, adv)
                ctx.set(dut.enter, enter)
                entering = running and adv and enter
                n = generated + sum(x is not None for x in slots)
                if entering:
                    words = ctx.get(dut.words)
                    assert [words >> (i * w) & ((1 << w) - 1) for i in range(lanes)] == want[n].tolist(), n
                leaving = (slots[-1] if P else (n if entering else None)) if running and adv else None
                assert ctx.get(dut.commit) == (leaving is not None)
                if leaving is not None:
                    assert leaving == generated
                    generated += 1
                if not running:
                    slots = [None] * P
                elif adv and P:
                    slots = [n if entering else None] + slots[:-1]
                await ctx.tick()
            assert generated > 100

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        BallSource(None, 0)
