# amaranth: UnusedElaboratable=no
"""Kit part: activation ρ and ±β nudge (:mod:`hdl.kit.activation`) == twin pieces (:mod:`golden.ep_core.activation`).

Random pre-activations over the full signed range (and the extremes) for fixed and per-layer
shifts (negative — inputs that fit after the left shift —, zero and positive), both roundings;
values compared with ``==``. Latency 0 is asserted: the state of an input is there in the same
cycle, before any clock edge. ρ is combinational with no handshake, so there are no stalls to
inject. The nudge: random match/state/sign/β, ``nudge`` and ``full`` == the twin piece in the same cycle.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from golden.ep_core.activation import activation, nudge
from hdl.kit.activation import Activation, Nudge


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


@pytest.mark.parametrize("state_bits,shift0,beta_bits", [(6, 9, 3), (4, 3, 2)])
def test_nudge_matches_the_twin_piece_in_the_same_cycle(state_bits, shift0, beta_bits):
    out_bits = state_bits + 3 + shift0
    dut = Nudge(state_bits, shift0, beta_bits, out_bits)
    m = Module()
    m.submodules.dut = dut
    m.domains.sync = ClockDomain()
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rnd = random.Random(shift0)

    async def bench(ctx):
        seen = set()
        for _ in range(300):
            match, bsign = rnd.random() < 0.3, rnd.choice([0, 1, 2])
            state = rnd.choice([0, (1 << state_bits) - 1, rnd.randrange(1 << state_bits)])
            beta = rnd.randint(0, min(shift0, (1 << beta_bits) - 1))
            for port, v in ((dut.match, match), (dut.state, state), (dut.bsign, bsign), (dut.beta_shift, beta)):
                ctx.set(port, v)
            target = (1 << state_bits) if match else 0
            want = int(nudge(np.array([target]), np.array([state]), shift0 - beta, {0: 0, 1: 1, 2: -1}[bsign])[0])
            assert ctx.get(dut.nudge) == want, (match, state, bsign, beta, want)  # latency 0: before the edge
            assert ctx.get(dut.full) == (target - state) << (shift0 - beta)
            seen.add((bsign, want > 0, want < 0))
            await ctx.tick()
        assert {(1, True, False), (1, False, True), (2, True, False), (2, False, True), (0, False, False)} <= seen

    sim.add_testbench(bench)
    sim.run()
