# amaranth: UnusedElaboratable=no
"""EqSpike part: the event engine's row issue (:mod:`hdl.eqspike_kit.issue`) == a model of the roofline: each
event's bottom-up row words then its top-down row words (``words_read`` of tests/test_eqspike_core.py), the
address ``j·tiles(target) + k``, one word per cycle with no gap between events (accumulation), stage 1 (the
accumulate's target, direction and word) the next cycle; in update mode a word with a transposed copy holds
the next issue for its neurons' scatter cycles, and stage 1 carries the event's fields."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.eqspike_kit.issue import EventIssue
from spec.eqspike import EqSpikeSpec


@pytest.mark.parametrize("upd_mode", [False, True])
def test_issue_matches_the_roofline(upd_mode):
    s = EqSpikeSpec(layers=(13, 7, 5, 3), lanes=3, training=True)
    L, P, N, T = s.n_layers, s.lanes, s.layers, [s.tiles(k) for k in range(s.n_layers + 1)]
    dut = EventIssue(s)
    rng = np.random.default_rng(int(upd_mode))
    events = [(int(lay), int(rng.integers(0, N[lay]))) for lay in rng.integers(0, L + 1, 12)]
    want, gaps = [], []  # (lay, dn, k, addr) per issued word; cycles after each word before the next
    for lay, j in events:
        targets = ([(False, lay + 1)] if lay < L else []) + ([(True, lay - 1)] if lay >= 2 else [])
        for dn, tgt in targets:
            for k in range(T[tgt]):
                want.append((lay, dn, k, j * T[tgt] + k, tgt))
                last = N[tgt] - (T[tgt] - 1) * P if k == T[tgt] - 1 else P
                gaps.append(last if upd_mode and (dn or lay >= 1) else 0)
    got, stage1 = [], []

    async def bench(ctx):
        queue = list(events)
        ctx.set(dut.upd_mode, upd_mode)
        ctx.set(dut.run, 1)
        prev = None
        for cycle in range(600):
            if prev is not None:  # stage 1 of the word issued in the previous cycle
                v = ctx.get(dut.u1_v if upd_mode else dut.e1_v)
                stage1.append((v, ctx.get(dut.u1_addr) if upd_mode else ctx.get(dut.e1_tgt),
                               ctx.get(dut.u1_k if upd_mode else dut.e1_k)))
            prev = None
            pop = ctx.get(dut.pop)
            ctx.set(dut.take, bool(pop and queue))
            if pop and queue:
                lay, j = queue.pop(0)
                for port, v in ((dut.ev_lay, lay), (dut.ev_j, j), (dut.ev_jw, j // P), (dut.ev_jl, j % P),
                                (dut.ev_dj, -j)):
                    ctx.set(port, v)
            if ctx.get(dut.issue):
                got.append((cycle, ctx.get(dut.lay), ctx.get(dut.dn), ctx.get(dut.k), ctx.get(dut.addr)))
                prev = got[-1]
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [g[1:] for g in got] == [w[:4] for w in want]
    # back to back, or held for the scatter
    assert [b[0] - a[0] - 1 for a, b in zip(got[:-1], got[1:], strict=True)] == gaps[:-1]
    assert all(v for v, _, _ in stage1)
    if upd_mode:
        assert [(a, k) for _, a, k in stage1] == [(w[3], w[2]) for w in want]
    else:
        assert [(t, k) for _, t, k in stage1] == [(w[4], w[2]) for w in want]
