# amaranth: UnusedElaboratable=no
"""EqSpike part: the output scan (:mod:`hdl.eqspike_kit.scan`) == the twin's prediction (``np.argmax``: the
lowest index of the largest output state) and output states: random states with many ties, the words of the
output layer one per cycle (random gaps), ``pred``/``states`` 1 cycle after the last word; ``clear`` starts
a new scan."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from eqspike_kit_util import pack  # noqa: I001  (tests/ is on sys.path)

from hdl.eqspike_kit.scan import OutputScan
from spec.eqspike import EqSpikeSpec


@pytest.mark.parametrize("layers,lanes", [((9, 7, 10), 4), ((9, 5, 3), 8), ((9, 6), 3)])
def test_output_scan_matches_the_twin(layers, lanes):
    s = EqSpikeSpec(layers=layers, lanes=lanes)
    P, n, T = s.lanes, s.layers[-1], s.tiles(s.n_layers)
    dut = OutputScan(s)
    rng = np.random.default_rng(n)
    ties = [0]

    async def bench(ctx):
        for _ in range(30):
            states = rng.integers(0, 4, n) * (s.state_one // 4) + rng.integers(0, 2, n)  # few values: ties
            ties[0] += int((states == states.max()).sum() > 1)
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            for w in range(T):
                while rng.random() < 0.3:
                    await ctx.tick()
                word = np.zeros(P, np.int64)
                word[:min(P, n - w * P)] = states[w * P:(w + 1) * P]
                ctx.set(dut.s, pack(word, s.state_bits))
                ctx.set(dut.word, w)
                ctx.set(dut.valid, 1)
                await ctx.tick()
                ctx.set(dut.valid, 0)
            assert ctx.get(dut.pred) == int(np.argmax(states))
            assert [ctx.get(dut.states[i]) for i in range(n)] == states.tolist()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert ties[0] > 3  # not vacuous: ties decided by the lowest index
