# amaranth: UnusedElaboratable=no
"""Kit part: the lane datapath (:mod:`hdl.kit.lanes`) == its twin piece (:mod:`golden.ep_core.lanes`).

Random operands over the full signed ranges (and the extremes) every cycle; values compared with
``==`` and the latency asserted: the products one cycle after their operands (never in the same
cycle), the adder tree's sum, payload and valid ``ceil(log2 P)`` cycles after its inputs, and
``occupied`` high exactly while a valid input is inside the tree. Neither part has back-pressure
(they are pipeline stages that take an input every cycle), so there are no stalls to inject.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from golden.ep_core.lanes import accumulate_lanes, accumulate_row, dot, lane_products, reduce_lanes, ternary_lane
from hdl.kit.lanes import LANE_MODES, AdderTree, LaneAccumulators, LaneProducts, RowAccumulator


def operand(rnd: random.Random, bits: int) -> int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return rnd.choice([lo, hi, 0, -1, 1, rnd.randint(lo, hi), rnd.randint(lo, hi)])


@pytest.mark.parametrize("mode", LANE_MODES)
@pytest.mark.parametrize("lanes,lb,rb", [(1, 2, 9), (3, 16, 9), (4, 10, 10)])
def test_lane_products_match_the_twin_piece(mode, lanes, lb, rb):
    dut = LaneProducts(lanes, lb, rb, mode=mode)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rnd = random.Random(lanes * 100 + lb)

    async def bench(ctx):
        prev = None
        for _ in range(300):
            left = [operand(rnd, lb) for _ in range(lanes)]
            right = [operand(rnd, rb) for _ in range(lanes)]
            mul = rnd.random() < 0.5
            for i in range(lanes):
                ctx.set(dut.left[i], left[i])
                ctx.set(dut.right[i], right[i])
            if mode == "addsub+multiply":
                ctx.set(dut.mul, mul)
            got = [ctx.get(dut.prod[i]) for i in range(lanes)]
            if prev is not None:  # this cycle shows the previous operands' products, not these
                assert got == list(lane_products(prev[0], prev[1], mode=mode, mul=prev[2])), (prev, got)
            await ctx.tick()
            got = [ctx.get(dut.prod[i]) for i in range(lanes)]
            assert got == list(lane_products(left, right, mode=mode, mul=mul)), (left, right, mul, got)
            prev = (left, right, mul)

    sim.add_testbench(bench)
    sim.run()


def test_addsub_lanes_equal_multiplying_by_the_ternary_weight():
    rnd = np.random.default_rng(1)
    w = rnd.integers(-1, 2, 200)
    x = rnd.integers(-256, 256, 200)
    assert (lane_products(w, x, "addsub") == w * x).all()
    assert (ternary_lane(np.array([-2, -1, 0, 1, 2, 3])) == [0, -1, 0, 1, 0, 1]).all()
    with pytest.raises(ValueError, match="mode must be one of"):
        lane_products(w, x, "divide")


@pytest.mark.parametrize("lanes", [1, 2, 3, 5, 8])
def test_adder_tree_sum_latency_and_occupancy(lanes):
    width, side_bits = 12, 7
    dut = AdderTree(lanes, width, side_bits)
    assert dut.latency == (0 if lanes == 1 else int(np.ceil(np.log2(lanes))))
    m = Module()
    m.submodules.dut = dut
    m.domains.sync = ClockDomain()  # P = 1 has no register of its own
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rnd = random.Random(lanes)

    async def bench(ctx):
        hist = []  # (inputs, valid, side) of every cycle so far
        for n in range(300):
            inp = [operand(rnd, width) for _ in range(lanes)]
            if n % 50 == 0:  # the extremes: every lane at its minimum
                inp = [-(1 << (width - 1))] * lanes
            valid, side = rnd.random() < 0.6, rnd.getrandbits(side_bits)
            for i in range(lanes):
                ctx.set(dut.inp[i], inp[i])
            ctx.set(dut.valid_in, valid)
            ctx.set(dut.side_in, side)
            hist.append((inp, valid, side))
            lat = dut.latency
            if n >= lat:
                old_inp, old_valid, old_side = hist[n - lat]
                assert ctx.get(dut.sum) == reduce_lanes(old_inp), (n, old_inp)
                assert ctx.get(dut.valid_out) == old_valid and ctx.get(dut.side_out) == old_side
                inside = [v for _, v, _ in hist[n - lat:n]] if lat else []
                assert ctx.get(dut.occupied) == int(any(inside))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("mode", ["multiply", "addsub"])
def test_products_through_the_tree_are_the_twins_dot_product(mode):
    """Lanes then tree over one tile: the twin's sweep kernel (``dot``) of the same operands."""
    lanes, lb, rb = 6, 8, 9
    prods = LaneProducts(lanes, lb, rb, mode=mode)
    tree = AdderTree(lanes, lb + rb)
    m = Module()
    m.submodules.prods, m.submodules.tree = prods, tree
    m.d.comb += [tree.inp[i].eq(prods.prod[i]) for i in range(lanes)]
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rnd = np.random.default_rng(3)

    async def bench(ctx):
        tiles = []
        for n in range(100):
            w = rnd.integers(-1, 2, lanes) if mode == "addsub" else rnd.integers(-(1 << (lb - 1)), 1 << (lb - 1), lanes)
            x = rnd.integers(-(1 << (rb - 1)), 1 << (rb - 1), lanes)
            for i in range(lanes):
                ctx.set(prods.left[i], int(w[i]))
                ctx.set(prods.right[i], int(x[i]))
            tiles.append((w, x))
            lat = 1 + tree.latency
            if n >= lat:
                w0, x0 = tiles[n - lat]
                assert ctx.get(tree.sum) == int(dot(w0[None, :], x0[:, None])[0, 0])
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("lanes,max_shift", [(1, 0), (4, 3)])
def test_lane_accumulators_sum_columns_like_the_twin_piece(lanes, max_shift):
    """Columns of random length (``first`` starts each, ``en`` low in gaps), each checked one cycle after
    its last ``en`` against ``accumulate_lanes``; ``acc`` holds while ``en`` is low; ``sum`` is combinational."""
    width, pb = 24, 10
    dut = LaneAccumulators(lanes, width, pb, max_shift)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rnd = random.Random(lanes + 7)

    async def bench(ctx):
        for _ in range(60):
            shift = rnd.randint(0, max_shift)
            init = [operand(rnd, 12) for _ in range(lanes)]
            rows = []
            ctx.set(dut.shift, shift)
            for i in range(lanes):
                ctx.set(dut.init[i], init[i])
            for r in range(rnd.randint(1, 6)):
                while rnd.random() < 0.3:  # a gap: en low, the accumulators hold
                    ctx.set(dut.en, 0)
                    before = [ctx.get(dut.acc[i]) for i in range(lanes)]
                    await ctx.tick()
                    assert [ctx.get(dut.acc[i]) for i in range(lanes)] == before
                prod = [operand(rnd, pb) for _ in range(lanes)]
                rows.append(prod)
                for i in range(lanes):
                    ctx.set(dut.prod[i], prod[i])
                ctx.set(dut.first, r == 0)
                ctx.set(dut.en, 1)
                want = list(accumulate_lanes(init, rows, shift))
                assert [ctx.get(dut.sum[i]) for i in range(lanes)] == want  # combinational
                assert [ctx.get(dut.sum_full[i]) for i in range(lanes)] == want
                await ctx.tick()
                assert [ctx.get(dut.acc[i]) for i in range(lanes)] == want  # one cycle after en
            ctx.set(dut.en, 0)

    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("bad,match", [(dict(lanes=0), "lanes must be"), (dict(left_bits=1), "left_bits must be"),
                                       (dict(mode="mac"), "mode must be one of")])
def test_lane_products_refuse_bad_parameters(bad, match):
    args = dict(lanes=4, left_bits=8, right_bits=8, mode="multiply") | bad
    with pytest.raises(ValueError, match=match):
        LaneProducts(args.pop("lanes"), args.pop("left_bits"), args.pop("right_bits"), **args)


@pytest.mark.parametrize("shifts", [{1: 3, 2: 0, 3: 5}, {1: 0}])
def test_row_accumulator_matches_the_twin_piece(shifts):
    width, sum_bits, side_bits = 24, 12, 6
    dut = RowAccumulator(width, sum_bits, shifts, side_bits)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rnd = random.Random(len(shifts))

    async def bench(ctx):
        rows = 0
        pending = None  # (value, side) due this cycle
        for _ in range(60):
            layer = rnd.choice(list(shifts) + [max(shifts) + 1] * (len(shifts) > 1))  # an unlisted layer: shift 0
            n = rnd.randint(1, 5)
            sums = [operand(rnd, sum_bits) for _ in range(n)]
            addend = rnd.randint(-(1 << 16), 1 << 16)
            t = 0
            while t < n:
                en = rnd.random() < 0.7  # gaps between a row's inputs
                side = rnd.randrange(1 << side_bits)
                for port, v in ((dut.sum, sums[t] if en else operand(rnd, sum_bits)), (dut.en, en),
                                (dut.first, t == 0), (dut.last, t == n - 1), (dut.layer, layer),
                                (dut.addend, addend), (dut.side, side)):
                    ctx.set(port, v)
                assert ctx.get(dut.valid) == (pending is not None)
                if pending is not None:
                    assert (ctx.get(dut.value), ctx.get(dut.side_out)) == pending
                    rows += 1
                pending = None
                if en and t == n - 1:
                    want = int(accumulate_row(np.array(sums), shifts.get(layer, 0), addend))
                    assert ctx.get(dut.final_full) == want  # the unwrapped sum, same cycle
                    pending = (want, side)  # registered: 1 cycle after the last input
                await ctx.tick()
                t += en
        assert rows >= 59

    sim.add_testbench(bench)
    sim.run()
