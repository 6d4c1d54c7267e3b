"""The shared PRNG: spec (period, jump), numpy twin and Amaranth bank produce identical streams."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.prng import XorshiftBank as TwinBank
from hdl.prng import XorshiftBank
from spec.prng import PRNGSpec, apply, jump_matrix, matrix, rotl, scramble, seed_state, step


def test_xorshift16_has_full_period():
    """Exhaustive: from any state the 16-bit generator visits all 65535 non-zero states once."""
    seen = bytearray(1 << 16)
    x = 1
    for _ in range((1 << 16) - 1):
        assert not seen[x]
        seen[x] = 1
        x = step(x, 16)
    assert x == 1 and sum(seen) == (1 << 16) - 1 and not seen[0]


@pytest.mark.parametrize("w", [16, 32, 64])
def test_matrix_and_jump_match_stepping(w):
    rng = np.random.default_rng(w)
    m = matrix(w)
    for _ in range(50):
        x = int(rng.integers(1, 1 << min(w, 62))) << (w - min(w, 62))
        x = x or 1
        assert apply(m, x) == step(x, w)
    jm = jump_matrix(w, 777)
    x = seed_state(12345, w)
    y = x
    for _ in range(777):
        y = step(y, w)
    assert apply(jm, x) == y
    # jumping is composable: M^(a+b) = M^a · M^b
    assert apply(jump_matrix(w, 1000), x) == apply(jump_matrix(w, 223), y)


def test_seed_state_and_spec_validation():
    assert seed_state(0, 16) == 1 and seed_state(0x10001, 16) == 1  # folds to 0 → 1
    assert seed_state(0x12345678, 16) == 0x1234 ^ 0x5678
    with pytest.raises(ValueError, match="width must be one of"):
        PRNGSpec(width=24)
    with pytest.raises(ValueError, match="lanes must be a positive integer, not 0"):
        PRNGSpec(lanes=0)
    with pytest.raises(ValueError, match="wraps the period"):
        PRNGSpec(width=16, lanes=4, jump=20000)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        seed_state(-1, 32)


def test_scrambler_is_the_star_star_function_and_a_bijection():
    """out = rotl(x·5, 7)·9 mod 2^w (Blackman & Vigna's "**"), by multiplication here; a permutation of
    the 16-bit words with 0 ↦ 0, so every non-zero state has a distinct non-zero output."""
    for w in (16, 32, 64):
        m = (1 << w) - 1
        for x in (1, 2, 0x8000, m, 0x1234 & m, (0xDEADBEEFCAFEF00D & m) or 1):
            assert scramble(x, w) == (rotl((x * 5) & m, 7, w) * 9) & m
    assert rotl(0x8001, 7, 16) == 0x00C0
    outs = {scramble(x, 16) for x in range(1 << 16)}
    assert len(outs) == 1 << 16 and scramble(0, 16) == 0
    # nonlinear over GF(2): f(a ^ b) != f(a) ^ f(b) for most pairs (a linear map would give equality)
    rng = np.random.default_rng(5)
    pairs = rng.integers(1, 1 << 32, size=(200, 2))
    assert sum(scramble(int(a) ^ int(b), 32) != scramble(int(a), 32) ^ scramble(int(b), 32) for a, b in pairs) > 190
    with pytest.raises(ValueError, match="output must be one of"):
        PRNGSpec(output="xor")


@pytest.mark.parametrize("output", ["scrambled", "raw"])
@pytest.mark.parametrize("w", [16, 32, 64])
def test_twin_matches_spec_per_lane(w, output):
    spec = PRNGSpec(width=w, lanes=3, jump=1000, seed=99, output=output)
    bank = TwinBank(spec)
    out = bank.stream(1200)
    for lane, x0 in enumerate(spec.lane_states()):
        x = x0
        for t in range(1200):
            x = step(x, w)
            assert int(out[t, lane]) == (scramble(x, w) if output == "scrambled" else x)
        assert int(bank.state[lane]) == x  # the bank keeps the states, not the output words
    # lane 1 is lane 0 shifted by the jump: their streams coincide 1000 outputs apart
    assert np.array_equal(out[1000:, 0], out[:200, 1])


def _run_bank(spec, cycles, reseed=None, want_states=False):
    dut = XorshiftBank(spec)
    got, states = [], []

    async def bench(ctx):
        if reseed is not None:
            ctx.set(dut.seed, reseed)
            ctx.set(dut.load, 1)
            await ctx.tick()
            ctx.set(dut.load, 0)
            await ctx.tick().until(dut.ready)
        ctx.set(dut.en, 1)
        for _ in range(cycles):
            await ctx.tick()
            got.append(ctx.get(dut.out))
            states.append(ctx.get(dut.state))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    w = spec.width

    def split(vals):
        return np.array([[(v >> (i * w)) & ((1 << w) - 1) for i in range(spec.lanes)] for v in vals], dtype=np.uint64)

    return (split(got), split(states)) if want_states else split(got)


def test_rtl_full_period_16bit():
    """Exhaustive over the full period: the RTL's 65535 outputs equal the twin's, and it returns home."""
    spec = PRNGSpec(width=16, lanes=1, jump=1, seed=1)
    rtl, states = _run_bank(spec, (1 << 16) - 1, want_states=True)
    twin = TwinBank(spec).stream((1 << 16) - 1)
    assert np.array_equal(rtl, twin)
    assert int(states[-1, 0]) == spec.lane_states()[0]
    assert len(set(rtl[:, 0].tolist())) == (1 << 16) - 1  # the scrambled outputs: every non-zero word once


@pytest.mark.parametrize("w", [32, 64])
def test_rtl_long_streams_with_jumped_lanes_and_reseed(w):
    spec = PRNGSpec(width=w, lanes=4, jump=1 << 20, seed=7)
    assert np.array_equal(_run_bank(spec, 3000), TwinBank(spec).stream(3000))
    raw = PRNGSpec(width=w, lanes=4, jump=1 << 20, seed=7, output="raw")
    assert np.array_equal(_run_bank(raw, 300), TwinBank(raw).stream(300))
    # a run-time seed fills the lanes through the jump network, one lane per cycle
    seed = 0xDEADBEEF
    assert np.array_equal(_run_bank(spec, 500, reseed=seed), TwinBank(spec, seed).stream(500))
