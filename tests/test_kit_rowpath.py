# amaranth: UnusedElaboratable=no
"""Kit part: the row path (:mod:`hdl.kit.rowpath`) == its twin pieces (:mod:`golden.ep_core.lanes`
``accumulate_row``, :mod:`golden.ep_core.activation` ``activation`` / ``nudge``,
``EPCoreTwin.argmax``).

Rows of random length (every layer, random products, biases, partial sums, top-layer states, β
signs and shifts, the label) are fed one op per cycle with idle cycles and ops of other kinds
between them; each row's value and state equal the twin pieces' (``==``), and the argmax over the
rows marked ``argmax`` equals ``EPCoreTwin.argmax`` (ties: lowest index). Latency asserted: the
result exactly 1 + ⌈log2 P⌉ cycles after the row's last op, ``valid`` at no other time, and
``occupied`` while a valid op is in the adder tree. The path has no back-pressure.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.ep_core import EPCoreTwin
from golden.ep_core.activation import activation, nudge
from golden.ep_core.lanes import accumulate_row
from hdl.kit.rowpath import RowPath
from spec.ep_core import EPCoreSpec

ROW, OTHER = 0, 1
OP = data.StructLayout({"valid": 1, "kind": 3, "layer": 2, "first": 1, "last": 1, "j": 4, "bsign": 2,
                        "argmax": 1})


@pytest.mark.parametrize("lanes,training", [(4, True), (3, False), (1, True)])
def test_row_path_matches_the_twin_pieces(lanes, training):
    s = EPCoreSpec(layers=(12, 7, 6, 5), lanes=lanes, training=training, activation_rounding="half_up",
                   weight_frac=(6, 4, 5), bias_frac=(10, 6, 8))  # shifts that differ between layers
    L, SB, prod_bits = s.n_layers, s.state_bits, 12
    dut = RowPath(s, OP, prod_bits, (ROW,), ROW)
    lat = 1 + (lanes - 1).bit_length()
    assert dut.tree.latency + 1 == lat
    rnd = random.Random(lanes * 2 + training)
    rows, top = [], 0
    for n in range(24):
        layer = rnd.randint(1, L)
        tiles = rnd.randint(1, 3)
        prods = [[rnd.randint(-(1 << 9), 1 << 9) for _ in range(lanes)] for _ in range(tiles)]
        bias = rnd.randint(-(1 << (s.bias_bits - 2)), 1 << (s.bias_bits - 2))
        bsign = rnd.randint(0, 2) if training and layer == L else 0
        rows.append(dict(layer=layer, prods=prods, bias=bias, part=rnd.randint(-(1 << 12), 1 << 12),
                         nstate=rnd.randrange(1 << SB), bsign=bsign, j=top % s.layers[L] if layer == L else n % 4,
                         argmax=int(layer == L), beta=rnd.randint(0, s.beta_shift_max), gap=rnd.random() < 0.4))
        top += layer == L  # the top layer's rows come in order j = 0, 1, …, as in a sweep
    label = 3
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    got: dict[int, tuple[int, int, int]] = {}

    async def bench(ctx):
        ctx.set(dut.label, label)
        cyc, last_cycles, inflight = 0, {}, []
        feed = []
        for n, r in enumerate(rows):
            for t, p in enumerate(r["prods"]):
                feed.append((n, t, p, r))
                if rnd.random() < 0.3:
                    feed.append((None, None, [rnd.randint(-9, 9) for _ in range(lanes)], None))  # another kind
            if r["gap"]:
                feed.append(None)
        feed += [None] * (lat + 1)
        for item in feed:
            op = {"valid": 0, "kind": OTHER, "layer": 0, "first": 0, "last": 0, "j": 0, "bsign": 0, "argmax": 0}
            prods = [0] * lanes
            if item is not None:
                n, t, prods, r = item
                op["valid"] = 1
                if r is not None:
                    last = t == len(r["prods"]) - 1
                    op.update(kind=ROW, layer=r["layer"], first=int(t == 0), last=int(last), j=r["j"], bsign=r["bsign"],
                              argmax=r["argmax"])
                    if last:
                        ctx.set(dut.bias, r["bias"])
                        ctx.set(dut.part, r["part"])
                        ctx.set(dut.nstate, r["nstate"])
                        ctx.set(dut.beta_shift, r["beta"])
                        last_cycles[cyc] = n
            ctx.set(dut.op, op)
            for i in range(lanes):
                ctx.set(dut.prod[i], prods[i])
            inflight = [c for c in inflight if cyc - c < lat]  # valid ops in the tree's lat − 1 levels
            assert ctx.get(dut.occupied) == bool(inflight)
            inflight += [cyc] if op["valid"] else []
            if ctx.get(dut.valid):
                n = last_cycles.pop(cyc - lat)  # exactly lat cycles after the row's last op
                got[n] = (ctx.get(dut.value), ctx.get(dut.state), ctx.get(dut.op_out.j))
            else:
                assert cyc - lat not in last_cycles
            await ctx.tick()
            cyc += 1
        got["pred"] = ctx.get(dut.pred)

    sim.add_testbench(bench)
    sim.run()
    for n, r in enumerate(rows):
        sums = np.array([sum(p) for p in r["prods"]])
        target = (1 << SB) if r["j"] == label else 0
        nud = int(nudge(target, r["nstate"], s.nudge_shift(r["beta"]), {0: 0, 1: 1, 2: -1}[r["bsign"]])) \
            if training else 0
        addend = (r["bias"] << s.bias_shift(r["layer"])) + (nud if r["layer"] == L else r["part"])
        value = int(accumulate_row(sums, s.bottom_up_shift(r["layer"]), addend))
        state = int(activation(np.array([value]), s.activation_shift(r["layer"]), s.activation_rounding, SB)[0])
        assert got[n] == (value, state, r["j"]), f"row {n}: {r}"
    # argmax over the top-layer rows in order (a j = 0 row starts a new search)
    pred = None
    for n, r in enumerate(rows):
        if r["argmax"]:
            if r["j"] == 0:
                block = {}
            block[r["j"]] = got[n][1]
            order = sorted(block)
            pred = order[int(EPCoreTwin.argmax(np.array([[block[j] for j in order]]))[0])]
    assert got["pred"] == pred


def test_bad_parameters_are_refused():
    s = EPCoreSpec(layers=(12, 7, 5), lanes=2)
    with pytest.raises(ValueError, match="op_layout must have"):
        RowPath(s, data.StructLayout({"valid": 1}), 8, (0,), 0)
    with pytest.raises(TypeError, match="spec must be"):
        RowPath(None, OP, 8, (0,), 0)
