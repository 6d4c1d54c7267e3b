# amaranth: UnusedElaboratable=no
"""Kit part: the activation ρ (:mod:`hdl.kit.activation`) == its twin piece (:mod:`golden.ep_core.activation`).

Random pre-activations over the full signed range (and the extremes) for fixed and per-layer
shifts (negative — inputs that fit after the left shift —, zero and positive), both roundings;
values compared with ``==``. Latency 0 is asserted: the state of an input is there in the same
cycle, before any clock edge. ρ is combinational with no handshake, so there are no stalls to
inject.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from golden.ep_core.activation import activation
from hdl.kit.activation import Activation


def pre_value(rnd: random.Random, bits: int) -> int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return rnd.choice([lo, hi, 0, -1, 1, rnd.randint(lo, hi), rnd.randint(-4096, 4096)])


@pytest.mark.parametrize("rounding", ["floor", "half_up"])
@pytest.mark.parametrize("shifts", [{1: 4}, {1: 0}, {1: 3, 2: 7, 3: -2}])
def test_activation_matches_the_twin_piece_in_the_same_cycle(rounding, shifts):
    pre_bits, state_bits = 18, 6
    dut = Activation(shifts, rounding, pre_bits, state_bits)
    assert hasattr(dut, "layer") == (len(shifts) > 1)
    m = Module()
    m.submodules.dut = dut
    m.domains.sync = ClockDomain()
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rnd = random.Random(len(shifts) * 10 + len(rounding))

    async def bench(ctx):
        seen = set()
        for _ in range(400):
            k = rnd.choice(list(shifts))
            pre = pre_value(rnd, pre_bits + min(shifts[k], 0))  # a left shift must fit pre_bits + 1 bits
            ctx.set(dut.pre, pre)
            if len(shifts) > 1:
                ctx.set(dut.layer, k)
            want = int(activation(np.array([pre]), shifts[k], rounding, state_bits)[0])
            assert ctx.get(dut.state) == want, (pre, k, ctx.get(dut.state), want)  # latency 0: before the edge
            seen.add(want)
            await ctx.tick()
        assert {0, (1 << state_bits) - 1} <= seen  # both clip limits were reached

    sim.add_testbench(bench)
    sim.run()


def test_twin_piece_rounds_then_clips():
    pre = np.array([-100, -1, 0, 7, 8, 23, 24, 10_000], np.int64)
    assert activation(pre, 4, "floor", 4).tolist() == [0, 0, 0, 0, 0, 1, 1, 15]
    assert activation(pre, 4, "half_up", 4).tolist() == [0, 0, 0, 0, 1, 1, 2, 15]
    assert activation(pre, -1, "floor", 4).tolist() == [0, 0, 0, 14, 15, 15, 15, 15]


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="rounding must be one of"):
        Activation({1: 2}, "stochastic", 16, 4)
    with pytest.raises(ValueError, match="shifts must name"):
        Activation({}, "floor", 16, 4)
