# amaranth: UnusedElaboratable=no
"""Kit part: the column path (:mod:`hdl.kit.colpath`) == its twin pieces
(:func:`golden.ep_core.lanes.accumulate_lanes`, :func:`golden.ep_core.activation.activation`).

Column tiles of random length (layer 1 from a random c1 word, a middle layer from 0; both
connections, whose top-down shifts differ) are fed one op per cycle with idle cycles and ops of
other kinds between them; each tile's P sums and states equal the twin pieces' (``==``), its write
mask leaves layer 1's padding lanes off. Latency asserted: the result exactly 1 cycle after the
tile's last op, ``valid`` at no other time. The path has no back-pressure.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.ep_core.activation import activation
from golden.ep_core.lanes import accumulate_lanes
from hdl.kit.colpath import ColumnPath
from spec.ep_core import EPCoreSpec

COL, OTHER = 1, 0
OP = data.StructLayout({"valid": 1, "kind": 3, "conn": 2, "layer": 2, "first": 1, "last": 1, "word": 3,
                        "wr_bank": 2})


@pytest.mark.parametrize("lanes", [4, 1])
def test_column_path_matches_the_twin_pieces(lanes):
    s = EPCoreSpec(layers=(12, 7, 6, 5), lanes=lanes, training=True, activation_rounding="half_up",
                   weight_frac=(6, 4, 5), bias_frac=(10, 6, 8))  # top-down shifts 2 and 0
    P, SB, c1b, T1, prod_bits = lanes, s.state_bits, s.c1_bits, s.tiles(1), 14
    dut = ColumnPath(s, OP, prod_bits, COL)
    rnd = random.Random(lanes)
    lo, hi = s.c1_range()
    tiles = []
    for _ in range(20):
        layer = rnd.choice([1, 2])
        tiles.append(dict(layer=layer, conn=layer, word=rnd.randrange(s.tiles(layer)), bank=rnd.randrange(4),
                          c1=[rnd.choice([lo, hi, rnd.randint(lo, hi)]) for _ in range(P)],
                          prods=[[rnd.randint(-(1 << 13), (1 << 13) - 1) for _ in range(P)]
                                 for _ in range(rnd.randint(1, 4))]))
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    got = {}

    async def bench(ctx):
        feed = []
        for n, tl in enumerate(tiles):
            for j in range(len(tl["prods"])):  # ops of another kind may come between a tile's ops: ignored
                feed += [(n, j)] + [("other",)] * (rnd.random() < 0.3)
            feed += [None] * rnd.randint(0, 1) + [("other",)] * rnd.randint(0, 1)
        feed += [None] * 2
        last_cycle = {}
        for cyc, item in enumerate(feed):
            op = {"valid": 0, "kind": OTHER, "conn": 0, "layer": 0, "first": 0, "last": 0, "word": 0, "wr_bank": 0}
            prods, c1 = [rnd.randint(-5, 5) for _ in range(P)], [rnd.randint(lo, hi) for _ in range(P)]
            if item == ("other",):
                op.update(valid=1, first=1, last=1, layer=1)
            elif item is not None:
                n, j = item
                tl = tiles[n]
                last = j == len(tl["prods"]) - 1
                op.update(valid=1, kind=COL, conn=tl["conn"], layer=tl["layer"], first=int(j == 0), last=int(last),
                          word=tl["word"], wr_bank=tl["bank"])
                prods = tl["prods"][j]
                if j == 0:
                    c1 = tl["c1"]
                if last:
                    last_cycle[cyc] = n
            ctx.set(dut.op, op)
            ctx.set(dut.c1, sum((v & ((1 << c1b) - 1)) << (i * c1b) for i, v in enumerate(c1)))
            for i in range(P):
                ctx.set(dut.prod[i], prods[i])
            if ctx.get(dut.valid):
                n = last_cycle.pop(cyc - 1)  # one cycle after the tile's last op
                got[n] = dict(acc=[ctx.get(dut.acc[i]) for i in range(P)],
                              state=[ctx.get(dut.state[i]) for i in range(P)], layer=ctx.get(dut.layer),
                              word=ctx.get(dut.word), bank=ctx.get(dut.bank), mask=ctx.get(dut.mask))
            else:
                assert cyc - 1 not in last_cycle
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(tiles)
    for n, tl in enumerate(tiles):
        init = np.array(tl["c1"] if tl["layer"] == 1 else [0] * P)
        acc = accumulate_lanes(init, np.array(tl["prods"]), s.top_down_shift(tl["conn"]))
        state = activation(acc, s.activation_shift(1), s.activation_rounding, SB)
        real = min(P, s.layers[1] - tl["word"] * P)
        mask = (1 << real) - 1 if tl["word"] == T1 - 1 else (1 << P) - 1
        assert got[n] == dict(acc=acc.tolist(), state=state.tolist(), layer=tl["layer"], word=tl["word"],
                              bank=tl["bank"], mask=mask), f"tile {n}: {tl}"


def test_bad_parameters_are_refused():
    s = EPCoreSpec(layers=(12, 7, 5), lanes=2)
    with pytest.raises(ValueError, match="op_layout must have"):
        ColumnPath(s, data.StructLayout({"valid": 1}), 8, 1)
    with pytest.raises(TypeError, match="spec must be"):
        ColumnPath(None, OP, 8, 1)
