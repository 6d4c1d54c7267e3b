# amaranth: UnusedElaboratable=no
"""EqSpike part: the scatter (:mod:`hdl.eqspike_kit.scatter`) == a model: after ``start``, one element per
cycle for q = 0 … n − 1 (row k·P + q, the value of lane q, the lane-j write enable when lane q is enabled),
then idle; ``busy`` exactly while elements are left (latency: the first element 1 cycle after ``start``)."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from hdl.eqspike_kit.scatter import Scatter
from spec.eqspike import EqSpikeSpec


def test_scatter_matches_the_model():
    s = EqSpikeSpec(layers=(13, 7, 5, 3), lanes=4, training=True)
    P, wb = s.lanes, max(s.weight_bits)
    dut = Scatter(s)
    rng = np.random.default_rng(0)
    count = {"words": 0, "writes": 0}

    async def bench(ctx):
        for _ in range(12):
            vals = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), P)
            en, n = int(rng.integers(0, 1 << P)), int(rng.integers(1, P + 1))
            k, jw, jl, dn, lay = int(rng.integers(0, 3)), int(rng.integers(0, 3)), int(rng.integers(0, P)), \
                int(rng.integers(0, 2)), int(rng.integers(0, 4))
            for port, v in ((dut.start, 1), (dut.en, en), (dut.n, n), (dut.k_in, k), (dut.jw_in, jw),
                            (dut.jl_in, jl), (dut.dn_in, dn), (dut.lay_in, lay)):
                ctx.set(port, v)
            for i in range(P):
                ctx.set(dut.vals[i], int(vals[i]))
            await ctx.tick()
            ctx.set(dut.start, 0)
            for q in range(n):
                assert ctx.get(dut.act) and ctx.get(dut.busy)
                assert (ctx.get(dut.row), ctx.get(dut.val), ctx.get(dut.we)) == (
                    k * P + q, vals[q], (1 << jl) if en >> q & 1 else 0), q
                assert (ctx.get(dut.dn), ctx.get(dut.lay), ctx.get(dut.jw)) == (dn, lay, jw)
                count["writes"] += bool(ctx.get(dut.we))
                await ctx.tick()
            assert not ctx.get(dut.act) and not ctx.get(dut.busy)
            for _ in range(int(rng.integers(0, 3))):
                await ctx.tick()
            count["words"] += 1
        assert count["writes"] > 5

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
