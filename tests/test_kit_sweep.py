# amaranth: UnusedElaboratable=no
"""Kit part: the sweep engine (:mod:`hdl.kit.sweep`) == its twin piece
(:meth:`spec.ep_core.EPCoreSpec.weight_read_schedule`).

Every sweep of the EP core's own table (:meth:`hdl.ep_core.EPCore.sweeps`) is run through the
engine, in the order a training sample runs them, back to back (the next ``start`` in a ``done``
cycle) and with idle cycles between; the weight words of the relaxation sweeps equal the spec's
read schedule (c1 sweep, then a step's sweeps), an update sweep's words equal the row order of its
connection and its word counts the spec's update draws (``==``). Latency asserted: the first
position the cycle after ``start``, one position per cycle (two for a two-cycle sweep, ``sub`` 0
then 1), ``done`` on the last one only, ``run`` low the cycle after. The engine has no
back-pressure (it issues every cycle), so there are no stalls to inject.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hdl.ep_core import K_BCAST, K_C1, K_DPASS, K_REDUCE, K_UPB, K_UPW, EPCore
from hdl.kit.sweep import Sweep, SweepEngine
from spec.ep_core import EPCoreSpec

SPECS = {
    "4 layers, P 4": dict(layers=(20, 12, 7, 5), lanes=4, training=True),
    "2 layers, P 1": dict(layers=(6, 3, 2), lanes=1, training=True),
    "P wider than a layer": dict(layers=(9, 5, 3), lanes=8, training=True),
}


def run_sweeps(dut: SweepEngine, order: list[int], gaps: list[bool]) -> list[list[dict]]:
    """Positions issued by each sweep of ``order`` (``gaps[n]``: idle cycle before sweep n)."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    got: list[list[dict]] = []

    async def bench(ctx):
        for idx, gap in zip(order, gaps, strict=True):
            if gap:
                ctx.set(dut.start, 0)
                await ctx.tick()
                assert not ctx.get(dut.run)
            ctx.set(dut.start, 1)
            ctx.set(dut.index, idx)
            await ctx.tick()  # the first position comes the cycle after start
            ctx.set(dut.start, 0)
            positions = []
            while True:
                assert ctx.get(dut.run)
                positions.append({name: ctx.get(getattr(dut, name)) for name in
                                  ("outer", "inner", "sub", "waddr", "o_w", "o_l", "i_w", "i_l", "kind", "conn",
                                   "layer", "first", "last")})
                if ctx.get(dut.done):
                    break
                await ctx.tick()
            got.append(positions)
        ctx.set(dut.start, 0)
        await ctx.tick()
        assert not ctx.get(dut.run) and ctx.get(dut.waddr) == 0 and ctx.get(dut.outer) == 0

    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("name", sorted(SPECS))
def test_sweeps_issue_the_spec_schedule(name):
    spec = EPCoreSpec(**SPECS[name])
    P, L = spec.lanes, spec.n_layers
    table, step, named = EPCore(spec).sweeps()
    T = [spec.tiles(l) for l in range(L + 1)]
    dut = SweepEngine(table, P, T[:L], max(spec.layers[l + 1] * T[l] for l in range(L)))
    upd = [named["dpass"]] + [named[f"upw{l}"] for l in range(L)] + [named[f"upb{l}"] for l in range(L)]
    order = [named["c1"]] + [i for i in step if i >= 0] + upd
    rnd = random.Random(len(name))
    gaps = [rnd.random() < 0.5 for _ in order]
    got = dict(zip(order, run_sweeps(dut, order, gaps), strict=True))
    base = {r.name: r.base for r in spec.memory_map()}
    c1_addrs, step_sched = spec.weight_read_schedule()

    for idx, positions in got.items():
        d = table[idx]
        assert len(positions) == d.outer * d.inner * (2 if d.two_cycle else 1), d  # one position per cycle
        subs = (0, 1) if d.two_cycle else (0,)
        expect = [(o, i, sub) for o in range(d.outer) for i in range(d.inner) for sub in subs]
        assert [(p["outer"], p["inner"], p["sub"]) for p in positions] == expect
        for p in positions:
            assert (p["kind"], p["conn"], p["layer"]) == (d.kind, d.conn, d.layer)
            assert (p["o_w"], p["o_l"], p["i_w"], p["i_l"]) == (*divmod(p["outer"], P), *divmod(p["inner"], P))
            assert (p["first"], p["last"]) == (p["inner"] == 0, p["inner"] == d.inner - 1)
    words = {idx: [p["waddr"] for p in positions if p["sub"] == 0] for idx, positions in got.items()}
    # the relaxation sweeps read the spec's schedule
    assert [a + base["w0"] for a in words[named["c1"]]] == c1_addrs
    relax = [i for i in step if i >= 0]
    assert len(relax) == len(step_sched)
    for idx, (direction, k, l, addrs) in zip(relax, step_sched, strict=True):
        d = table[idx]
        assert (d.kind, d.conn, d.layer) == ({"td": K_BCAST, "bu": K_REDUCE}[direction], l, k)
        assert [a + base[f"w{l}"] for a in words[idx]] == addrs
    # the update sweeps: W words in row order (one update draw per word), bias words one per tile
    draws = dict(spec.update_draws())
    for l in range(L):
        row_order = [j * T[l] + t for j in range(spec.layers[l + 1]) for t in range(T[l])]
        assert words[named[f"upw{l}"]] == row_order and len(row_order) == draws[f"w{l}"]
        assert [p["outer"] for p in got[named[f"upb{l}"]] if p["sub"] == 0] == list(range(draws[f"b{l}"]))
    assert table[named["c1"]].kind == K_C1 and table[named["dpass"]].kind == K_DPASS
    assert {table[named[f"upw{l}"]].kind for l in range(L)} == {K_UPW}
    assert {table[named[f"upb{l}"]].kind for l in range(L)} == {K_UPB}


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="table must be"):
        SweepEngine([], 2, [1], 4)
    with pytest.raises(ValueError, match="needs outer, inner >= 1"):
        SweepEngine([Sweep(0, 1, 1, 2, 2)], 2, [1], 4)
    with pytest.raises(ValueError, match="words must be"):
        SweepEngine([Sweep(0, 0, 1, 3, 2)], 2, [2], 5)
