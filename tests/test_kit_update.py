# amaranth: UnusedElaboratable=no
"""Kit part: the update unit (:mod:`hdl.kit.update`) == its twin piece (:mod:`golden.ep_core.update`).

A random stream of pairs (b product, then a product; idle cycles between them allowed), single
products and idle cycles, with random old words, payloads, shifts, scales and PRNG words, for the
three update roundings; values compared with ``==``. Latency asserted: the difference (and its
payload) one cycle after the product that completes it, the rounded delta and the saturated words
two cycles after, ``diff_valid`` / ``valid_out`` / ``draw`` high exactly then (``apply`` low: the
difference leaves, nothing is written, nothing drawn). The unit is a pipeline without back-pressure
(it takes a product every cycle), so there are no stalls to inject.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.ep_core.update import apply_update, update_delta
from hdl.kit.update import UPDATE_ROUNDINGS, UpdateUnit


def value(rnd: random.Random, bits: int) -> int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return rnd.choice([lo, hi, 0, -1, 1, rnd.randint(lo, hi), rnd.randint(lo, hi)])


@pytest.mark.parametrize("rounding", UPDATE_ROUNDINGS)
@pytest.mark.parametrize("lanes", [1, 3])
def test_update_unit_matches_the_twin_piece(rounding, lanes):
    prod_bits, old_bits, widths, scale_shift, max_shift, side_bits = 12, 10, [6, 10], 4, 11, 5
    dut = UpdateUnit(lanes, prod_bits, old_bits, widths, scale_shift, max_shift, rounding, side_bits, 16)
    assert set(dut.new) == set(widths) and dut.delta_bits == prod_bits + 1 + scale_shift + 1
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rnd = random.Random(lanes * 10 + len(rounding))
    stoch = rounding == "stochastic"

    async def bench(ctx):
        held = None  # the b product waiting for its a product
        stage1 = stage2 = None  # (diff, old, side, apply, scale, shift, rnd words) one / two cycles on
        counts = {"diff": 0, "new": 0, "sat": 0}
        for _ in range(500):
            # cycle n: a product (the b or a of a pair, or a single one), or nothing
            what = rnd.choice(["idle", "b", "a", "single"]) if held is None else rnd.choice(["idle", "a", "a"])
            if what == "a" and held is None:
                what = "b"
            prod = [value(rnd, prod_bits) for _ in range(lanes)]
            old = [value(rnd, old_bits) for _ in range(lanes)]
            side = rnd.randrange(1 << side_bits)
            ctx.set(dut.valid, what != "idle")
            ctx.set(dut.sub, what == "a")
            ctx.set(dut.single, what == "single")
            for i in range(lanes):
                ctx.set(dut.prod[i], prod[i])
                ctx.set(dut.old[i], old[i])
            ctx.set(dut.side, side)
            done = None
            if what == "single":
                done = prod
            elif what == "a":
                done = [b - a for b, a in zip(held, prod, strict=True)]
            if done is not None:
                assert [ctx.get(dut.diff_full[i]) for i in range(lanes)] == done  # unnarrowed, same cycle
            # cycle n + 1 inputs: how the difference of the previous cycle is rounded
            apply, scale = rnd.random() < 0.8, rnd.random() < 0.3
            shift = rnd.randint(0, max_shift)
            words = [rnd.randrange(1 << 16) for _ in range(lanes)]
            ctx.set(dut.apply, apply)
            ctx.set(dut.scale, scale)
            ctx.set(dut.shift, shift)
            if stoch:
                for i in range(lanes):
                    ctx.set(dut.rnd[i], words[i])
            # the outputs of this cycle: the difference completed one cycle ago, the words two cycles ago
            assert ctx.get(dut.diff_valid) == (stage1 is not None)
            if stage1 is not None:
                counts["diff"] += 1
                d, _, s, *_ = stage1
                assert [ctx.get(dut.diff[i]) for i in range(lanes)] == d and ctx.get(dut.diff_side) == s
                want = update_delta(np.array(d), shift, rounding, np.array(words) if stoch else None,
                                    scale_shift if scale else 0)
                if apply:
                    assert [ctx.get(dut.delta_full[i]) for i in range(lanes)] == want.tolist()
            if stoch:
                assert ctx.get(dut.draw) == (stage1 is not None and apply)
            assert ctx.get(dut.valid_out) == (stage2 is not None)
            if stage2 is not None:
                counts["new"] += 1
                delta, o, s = stage2
                assert [ctx.get(dut.delta[i]) for i in range(lanes)] == delta.tolist()
                assert [ctx.get(dut.old_out[i]) for i in range(lanes)] == o and ctx.get(dut.side_out) == s
                for b in widths:
                    lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
                    new = apply_update(np.array(o), delta, lo, hi)
                    assert [ctx.get(dut.new[b][i]) for i in range(lanes)] == new.tolist(), (b, o, delta)
                    counts["sat"] += int(((new == lo) | (new == hi)).any())
            stage2 = (want, stage1[1], stage1[2]) if stage1 is not None and apply else None
            stage1 = (done, old, side) if done is not None else None
            held = prod if what == "b" else None if what == "a" else held
            await ctx.tick()
        assert counts["diff"] > 100 and counts["new"] > 80 and counts["sat"] > 10  # the stream exercised it

    sim.add_testbench(bench)
    sim.run()


def test_twin_piece_rounds_scales_and_saturates():
    d = np.array([-9, -8, -1, 0, 7, 8, 9], np.int64)
    assert update_delta(d, 3, "floor").tolist() == [-2, -1, -1, 0, 0, 1, 1]
    assert update_delta(d, 3, "half_up").tolist() == [-1, -1, 0, 0, 1, 1, 1]
    assert update_delta(d, 3, "stochastic", np.full(7, 7)).tolist() == [-1, -1, 0, 0, 1, 1, 2]
    assert update_delta(d, 3, "floor", scale=2).tolist() == (d * 4 >> 3).tolist()
    assert apply_update(np.array([120, -120, 5]), np.array([10, -10, -3]), -128, 127).tolist() == [127, -128, 2]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="rounding must be one of"):
        UpdateUnit(2, 10, 8, [8], 4, 6, "nearest")
    with pytest.raises(ValueError, match="widths must name"):
        UpdateUnit(2, 10, 8, [], 4, 6, "floor")
    with pytest.raises(ValueError, match="max_shift must be <= rnd_bits"):
        UpdateUnit(2, 10, 8, [8], 4, 20, "stochastic", rnd_bits=16)
