# amaranth: UnusedElaboratable=no
"""Galton part: the thresholds and rows (:class:`hdl.kit.galton_rows.GaltonRows`) == ``bins_from_words``.

Random thresholds are written through the ``t_we`` port (with writes to offsets that name no
threshold, which must change nothing), then random lane words enter with ``adv`` high at random: every
ball's bins appear after exactly ``stages`` advancing cycles and equal the twin piece's
(:func:`golden.domainwall.twin.bins_from_words`, ``==``), with and without chirality memory; with
``adv`` low nothing moves.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.domainwall.twin import bins_from_words, default_thresholds
from hdl.galton import pipeline_stages
from hdl.kit.galton_rows import GaltonRows
from spec.galton import GaltonSpec


@pytest.mark.parametrize("rows_per_stage", [1, 2, 5])
@pytest.mark.parametrize("corr", [0, 1])
def test_rows_match_bins_from_words(rows_per_stage, corr):
    spec = GaltonSpec(rows=5, boards=2, prob_bits=4, prng_width=16, bin_bits=2, count_bits=3)
    stages = pipeline_stages(spec, rows_per_stage)
    dut = GaltonRows(spec, rows_per_stage, stages)
    rnd = random.Random(rows_per_stage * 2 + corr)
    N, w = spec.rows, spec.prng_width
    thr = default_thresholds(spec)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        ctx.set(dut.corr, corr)
        for _ in range(80):  # thresholds, and offsets that hold none (ignored)
            off = rnd.randrange(1 << spec.region_bits)
            c, i, j = off >> (2 * spec.row_bits), (off >> spec.row_bits) & ((1 << spec.row_bits) - 1), \
                off & ((1 << spec.row_bits) - 1)
            val = rnd.randrange(spec.threshold_max + 1)
            ctx.set(dut.t_we, 1)
            ctx.set(dut.t_off, off)
            ctx.set(dut.t_data, val)
            await ctx.tick()
            if c <= 1 and i < N and j <= i:
                thr[c, i, j] = val
        ctx.set(dut.t_we, 0)
        entered = []  # words of every advancing cycle
        for _ in range(300):
            word = [rnd.randrange(1 << w) for _ in range(spec.lanes)]
            adv = rnd.random() < 0.7
            ctx.set(dut.words, sum(x << (n * w) for n, x in enumerate(word)))
            ctx.set(dut.adv, adv)
            src = word if stages == 0 else entered[len(entered) - stages] if len(entered) >= stages else None
            if src is not None:  # the ball in the last register (stages = 0: the entering one)
                got = [ctx.get(dut.bins[b]) for b in range(spec.boards)]
                ref = bins_from_words(spec, thr, np.array([src], dtype=np.uint64), bool(corr))[0]
                assert got == ref.tolist()
            await ctx.tick()
            if adv:
                entered.append(word)

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    spec = GaltonSpec(rows=5, boards=1, prob_bits=4, prng_width=16)
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        GaltonRows(None, 1, 4)
    with pytest.raises(ValueError, match="stages"):
        GaltonRows(spec, 2, 4)
