"""Ternary weight memory: the spec's cell/PCSA/injector rules, the twin, and RTL == twin (Amaranth sim)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.ternary.memory import (
    TernaryMemoryTwin,
    encode_array,
    inject_array,
    pack_words,
    sense_array,
    unpack_words,
)
from hdl.ternary_mem import TernaryWeightMemory
from spec.ep_core import pack_fields, unpack_fields
from spec.ternary import (
    CELL_ILLEGAL,
    CELL_MINUS,
    CELL_PLUS,
    CELL_ZERO,
    RATE_MAX,
    REG_CTRL,
    REG_ILLEGAL,
    REG_INJECTED,
    REG_RATE_NONZERO,
    REG_RATE_ZERO,
    REG_READS,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    TernaryMemorySpec,
    ctrl_value,
    decode_ctrl,
    encode,
    inject,
    pack_cells,
    rate_threshold,
    rate_thresholds,
    sense,
    transition_probabilities,
    unpack_cells,
)


# --- spec ---------------------------------------------------------------------------------------------
def test_cells_encode_and_sense():
    assert [encode(t) for t in (1, -1, 0)] == [CELL_PLUS, CELL_MINUS, CELL_ZERO]
    for supply in ("near-threshold", "nominal"):
        assert sense(CELL_PLUS, supply) == (1, False)
        assert sense(CELL_MINUS, supply, 1 << 30) == (-1, False)
        assert sense(CELL_ILLEGAL, supply, 0) == (1, True)
        assert sense(CELL_ILLEGAL, supply, 1 << 30) == (-1, True)
    assert sense(CELL_ZERO, "near-threshold", 1 << 30) == (0, False)
    assert sense(CELL_ZERO, "nominal", 0) == (1, False)
    assert sense(CELL_ZERO, "nominal", 1 << 30) == (-1, False)
    assert unpack_cells(pack_cells([1, 2, 0, 3]), 4) == [1, 2, 0, 3]
    with pytest.raises(ValueError, match="ternary weight must be -1, 0 or 1, not 2"):
        encode(2)


def test_injector_rules_are_adjacent_or_flip_never_both():
    w_hit, w_miss = 5, RATE_MAX - 1  # r = 5 < 10 hits; r = 2^24 - 1 misses every threshold < 2^24
    neg = 1 << 31
    assert inject(CELL_ZERO, w_hit, "adjacent", 10, 0) == CELL_PLUS
    assert inject(CELL_ZERO, w_hit | neg, "adjacent", 10, 0) == CELL_MINUS
    assert inject(CELL_PLUS, w_hit, "adjacent", 0, 10) == CELL_ZERO
    assert inject(CELL_MINUS, w_hit, "adjacent", 0, 10) == CELL_ZERO
    assert inject(CELL_PLUS, w_hit, "flip", 10, 10) == CELL_MINUS
    assert inject(CELL_MINUS, w_hit, "flip", 10, 10) == CELL_PLUS
    assert inject(CELL_ZERO, w_hit, "flip", 10, 10) == CELL_ZERO
    assert inject(CELL_ILLEGAL, w_hit, "adjacent", 10, 10) == CELL_ILLEGAL
    for cell in range(4):
        assert inject(cell, w_miss, "adjacent", RATE_MAX - 1, RATE_MAX - 1) == cell
        assert inject(cell, w_miss, "adjacent", RATE_MAX, RATE_MAX) in ((CELL_ILLEGAL,) if cell == 3 else (0, 1, 2))


def test_transition_probabilities_give_mean_rate_p():
    for p, p0 in ((1e-3, 0.4), (0.04, 0.6), (0.2, 0.0)):
        q0, q1 = transition_probabilities(p, p0)
        assert math.isclose(p0 * q0 + (1 - p0) * q1, p, rel_tol=1e-12)
        assert math.isclose(q0, 2 * q1)
    assert transition_probabilities(0.01, 0.3, "flip") == (0.0, 0.01)
    assert rate_threshold(0.5) == 1 << 23
    assert rate_threshold(1.0) == RATE_MAX
    assert rate_threshold(1e-6) == 17  # 16.78 rounds half up
    assert rate_thresholds(0.01, 0.5) == (rate_threshold(0.02 / 1.5), rate_threshold(0.01 / 1.5))
    with pytest.raises(ValueError, match="p must be at most"):
        transition_probabilities(0.9, 0.2)
    with pytest.raises(ValueError, match="p0 must be a probability in"):
        transition_probabilities(0.1, 1.5)
    with pytest.raises(ValueError, match=r"kind must be one of \('adjacent', 'flip'\), not 'x'"):
        transition_probabilities(0.1, 0.5, "x")


def test_ctrl_roundtrip_and_spec_validation():
    for mode in ("off", "static", "dynamic"):
        for kind in ("adjacent", "flip"):
            for supply in ("near-threshold", "nominal"):
                assert decode_ctrl(ctrl_value(mode, kind, supply)) == (mode, kind, supply)
    s = TernaryMemorySpec(depth=100, lanes=8, mode="dynamic", rate_zero=3)
    assert TernaryMemorySpec.from_toml(s.to_toml()) == s
    assert s.word_bits == 16 and s.addr_bits == 7
    with pytest.raises(ValueError, match="lanes must be an integer in 1..256, not 0"):
        TernaryMemorySpec(lanes=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        TernaryMemorySpec(mode="sometimes")
    with pytest.raises(ValueError, match="without fault_injection"):
        TernaryMemorySpec(fault_injection=False, supply="nominal")
    with pytest.raises(ValueError, match="rate_zero must be an integer in 0..16777216"):
        TernaryMemorySpec(rate_zero=RATE_MAX + 1)
    with pytest.raises(ValueError, match="unknown TernaryMemorySpec fields"):
        TernaryMemorySpec.from_dict({"depth": 4, "colour": 1})


# --- twin -----------------------------------------------------------------------------------------------
def test_twin_array_rules_equal_the_spec_scalars():
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 4, 4000).astype(np.uint8)
    words = rng.integers(0, 1 << 32, 4000, dtype=np.uint64)
    words[::2] &= np.uint64(0xFF0000FF)  # many small r: hits
    for kind in ("adjacent", "flip"):
        got = inject_array(cells, words, kind, 1 << 20, 1 << 19)
        ref = [inject(int(c), int(w), kind, 1 << 20, 1 << 19) for c, w in zip(cells, words, strict=True)]
        assert got.tolist() == ref
    for supply in ("near-threshold", "nominal"):
        val, ill = sense_array(cells, supply, words)
        ref = [sense(int(c), supply, int(w)) for c, w in zip(cells, words, strict=True)]
        assert val.tolist() == [v for v, _ in ref] and ill.tolist() == [b for _, b in ref]
    t = rng.integers(-1, 2, (5, 6))
    assert (unpack_words(pack_words(encode_array(t)), 6) == encode_array(t)).all()
    with pytest.raises(ValueError, match="must be -1, 0 or 1, not 3"):
        encode_array(np.array([0, 3]))


def _three_sigma(count: int, n: int, q: float, k: float = 3.0) -> bool:
    return abs(count - n * q) <= k * math.sqrt(n * q * (1 - q)) + 1


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_injector_rates_within_three_sigma_over_a_million_weights(mode):
    """Each transition's rate, over ≥ 1e6 weights, is within 3σ of its target (adjacent and flip)."""
    P, depth = 64, 16384  # 1,048,576 cells
    rng = np.random.default_rng(1)
    t = rng.choice([-1, 0, 1], size=(depth, P), p=[0.3, 0.4, 0.3])
    cells = encode_array(t)
    p0 = float((t == 0).mean())
    for kind, p in (("adjacent", 0.01), ("adjacent", 1e-3), ("flip", 0.02)):
        spec = TernaryMemorySpec(depth=depth, lanes=P)
        tw = TernaryMemoryTwin(spec)
        rz, rnz = rate_thresholds(p, p0, kind)
        tw.configure(mode=mode, kind=kind, rate_zero=rz, rate_nonzero=rnz, seed=12345)
        if mode == "static":
            tw.program(0, cells)
            after = tw.cells
        else:
            tw.cells[:] = cells
            after = encode_array(tw.read(np.arange(depth)))
            assert (tw.cells == cells).all()  # dynamic errors never change what is stored
        q0, q1 = rz / RATE_MAX, rnz / RATE_MAX
        zero, plus, minus = cells == CELL_ZERO, cells == CELL_PLUS, cells == CELL_MINUS
        n0, n1 = int(zero.sum()), int((plus | minus).sum())
        assert n0 + n1 >= 1_000_000
        if kind == "adjacent":
            assert _three_sigma(int((zero & (after == CELL_PLUS)).sum()), n0, q0 / 2)
            assert _three_sigma(int((zero & (after == CELL_MINUS)).sum()), n0, q0 / 2)
            assert _three_sigma(int(((plus | minus) & (after == CELL_ZERO)).sum()), n1, q1)
            assert int((plus & (after == CELL_MINUS)).sum() + (minus & (after == CELL_PLUS)).sum()) == 0
            changed = int((after != cells).sum())
            # the mean error rate is p (a sum of the three counts above: 4σ keeps the joint false-alarm rate low)
            assert _three_sigma(changed, n0 + n1, p, k=4.0)
        else:
            assert _three_sigma(int((plus & (after == CELL_MINUS)).sum()), int(plus.sum()), q1)
            assert _three_sigma(int((minus & (after == CELL_PLUS)).sum()), int(minus.sum()), q1)
            assert int((zero & (after != CELL_ZERO)).sum()) == 0
        assert tw.injected == int((after != cells).sum())


def test_three_sigma_check_fails_for_a_wrong_rate():
    """The acceptance check above rejects an injector running at 1.1× its target."""
    n, q = 1_000_000, 0.01
    assert _three_sigma(int(n * q), n, q)
    assert not _three_sigma(int(n * q * 1.1), n, q)


# --- RTL == twin --------------------------------------------------------------------------------------------
class Host:
    """Drive TernaryWeightMemory from an async testbench; random idles on cmd, stalls on rsp."""

    def __init__(self, dut: TernaryWeightMemory, seed: int, idle: float, stall: float):
        self.dut, self.spec = dut, dut.spec
        self.rng, self.idle, self.stall = random.Random(seed), idle, stall

    async def write_reg(self, ctx, addr, value):
        ctx.set(self.dut.reg.addr, addr)
        ctx.set(self.dut.reg.wdata, value)
        ctx.set(self.dut.reg.we, 1)
        await ctx.tick()
        ctx.set(self.dut.reg.we, 0)

    async def read_reg(self, ctx, addr):
        ctx.set(self.dut.reg.addr, addr)
        v = int(ctx.get(self.dut.reg.rdata))
        await ctx.tick()
        return v

    async def wait_ready(self, ctx):
        while ctx.get(self.dut.busy):
            await ctx.tick()

    async def cmd(self, ctx, fields):
        while self.idle and self.rng.random() < self.idle:
            await ctx.tick()
        ctx.set(self.dut.cmd.payload.as_value(), pack_fields(self.spec.cmd_fields(), fields))
        ctx.set(self.dut.cmd.valid, 1)
        await ctx.tick().until(self.dut.cmd.ready)
        ctx.set(self.dut.cmd.valid, 0)

    async def raw(self, ctx, addr):
        await self.cmd(ctx, {"addr": addr, "write": 0})
        while True:
            stall = self.stall and self.rng.random() < self.stall
            ctx.set(self.dut.rsp.ready, 0 if stall else 1)
            _, _, word, valid = await ctx.tick().sample(self.dut.rsp.payload.as_value(), self.dut.rsp.valid)
            if valid and not stall:
                ctx.set(self.dut.rsp.ready, 0)
                return unpack_cells(unpack_fields(self.spec.rsp_fields(), word)["data"], self.spec.lanes)

    async def reads(self, ctx, addrs):
        """PCSA reads, back to back with random gaps; the weights of each read, sampled the next cycle."""
        P, out = self.spec.lanes, []
        for a in addrs:
            while self.idle and self.rng.random() < self.idle:
                ctx.set(self.dut.rd_en, 0)
                await ctx.tick()
            ctx.set(self.dut.rd_en, 1)
            ctx.set(self.dut.rd_addr, a)
            await ctx.tick()
            nz, neg = int(ctx.get(self.dut.rd_nz)), int(ctx.get(self.dut.rd_neg))
            out.append([0 if not (nz >> i) & 1 else (-1 if (neg >> i) & 1 else 1) for i in range(P)])
        ctx.set(self.dut.rd_en, 0)
        return out


def scenario(spec: TernaryMemorySpec, rng: np.random.Generator) -> list[tuple]:
    """A host session: programming in several modes, PCSA reads, read-backs, reseeds, counter clears."""
    D, P = spec.depth, spec.lanes
    ops: list[tuple] = []

    def cells(n, illegal=0.0):
        c = encode_array(rng.integers(-1, 2, (n, P)))
        c[rng.random((n, P)) < illegal] = CELL_ILLEGAL
        return c

    fi = spec.fault_injection
    settings = ([("off", "adjacent", "near-threshold", 0, 0, None)] if not fi else [
        ("off", "adjacent", "near-threshold", 0, 0, None),
        ("static", "adjacent", "near-threshold", RATE_MAX // 5, RATE_MAX // 7, 99),
        ("dynamic", "adjacent", "nominal", RATE_MAX // 3, RATE_MAX // 6, None),
        ("static", "flip", "nominal", 0, RATE_MAX // 4, 0xDEADBEEF),
        ("dynamic", "flip", "near-threshold", 0, RATE_MAX // 2, None),
        ("dynamic", "adjacent", "near-threshold", RATE_MAX, RATE_MAX, 7),
    ])
    for mode, kind, supply, rz, rnz, seed in settings:
        ops.append(("reg", REG_CTRL, ctrl_value(mode, kind, supply)))
        ops.append(("reg", REG_RATE_ZERO, rz))
        ops.append(("reg", REG_RATE_NONZERO, rnz))
        if seed is not None:
            ops.append(("reg", REG_SEED, seed))
        a = int(rng.integers(0, D - 8))
        ops.append(("write", a, cells(8, illegal=0.1)))
        ops.append(("reads", rng.integers(0, D, 40).tolist() + [a, a, a + 1]))
        ops.append(("raw", [a, a + 3, int(rng.integers(0, D))]))
        if rng.random() < 0.5:
            ops.append(("reg", int(rng.choice([REG_INJECTED, REG_ILLEGAL, REG_READS])), 0))
        ops.append(("regs",))
    return ops


def run_twin(spec, init, ops) -> list:
    tw = TernaryMemoryTwin(spec, init)
    out = []
    for op in ops:
        if op[0] == "reg":
            tw.write_reg(op[1], op[2])
        elif op[0] == "write":
            for i, row in enumerate(op[2]):
                tw.program(op[1] + i, row)
        elif op[0] == "reads":
            out.append(("reads", tw.read(op[1]).tolist()))
        elif op[0] == "raw":
            out.append(("raw", [tw.raw(a).tolist() for a in op[1]]))
        else:
            out.append(("regs", [tw.read_reg(r) for r in (REG_CTRL, REG_RATE_ZERO, REG_RATE_NONZERO, REG_SEED,
                                                          REG_STATUS, REG_INJECTED, REG_ILLEGAL, REG_READS,
                                                          REG_SPEC_ID)]))
    return out


def run_rtl(spec, init, ops, *, seed=0, idle=0.0, stall=0.0) -> list:
    dut = TernaryWeightMemory(spec, pack_words(init))
    out: list = []

    async def bench(ctx):
        h = Host(dut, seed, idle, stall)
        await h.wait_ready(ctx)
        for op in ops:
            if op[0] == "reg":
                await h.write_reg(ctx, op[1], op[2])
                await h.wait_ready(ctx)
            elif op[0] == "write":
                for i, row in enumerate(op[2]):
                    await h.cmd(ctx, {"data": pack_cells(row.tolist()), "addr": op[1] + i, "write": 1})
            elif op[0] == "reads":
                out.append(("reads", await h.reads(ctx, op[1])))
            elif op[0] == "raw":
                out.append(("raw", [await h.raw(ctx, a) for a in op[1]]))
            else:
                out.append(("regs", [await h.read_reg(ctx, r) for r in (
                    REG_CTRL, REG_RATE_ZERO, REG_RATE_NONZERO, REG_SEED, REG_STATUS, REG_INJECTED, REG_ILLEGAL,
                    REG_READS, REG_SPEC_ID)]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("fault_injection", [True, False])
@pytest.mark.parametrize("stalls", [False, True])
def test_rtl_matches_twin(fault_injection, stalls):
    spec = TernaryMemorySpec(depth=37, lanes=5, fault_injection=fault_injection, seed=3)
    rng = np.random.default_rng(7 + fault_injection)
    init = encode_array(rng.integers(-1, 2, (spec.depth, spec.lanes)))
    init[rng.random(init.shape) < 0.05] = CELL_ILLEGAL
    ops = scenario(spec, rng)
    kw = {"seed": 5, "idle": 0.3, "stall": 0.4} if stalls else {}
    rtl, twin = run_rtl(spec, init, ops, **kw), run_twin(spec, init, ops)
    assert len(rtl) == len(twin)
    for i, (a, b) in enumerate(zip(rtl, twin, strict=True)):
        assert a == b, f"result {i} ({a[0]}) differs"


def test_comparison_catches_a_wrong_seed():
    """The RTL == twin comparison is sharp: a twin seeded differently disagrees on dynamic reads."""
    spec = TernaryMemorySpec(depth=16, lanes=4, mode="dynamic", rate_zero=RATE_MAX // 2, rate_nonzero=RATE_MAX // 2)
    init = encode_array(np.random.default_rng(0).integers(-1, 2, (16, 4)))
    ops = [("reads", list(range(16)))]
    rtl = run_rtl(spec, init, ops)
    assert rtl == run_twin(spec, init, ops)
    assert rtl != run_twin(TernaryMemorySpec(**{**spec.to_dict(), "seed": 2}), init, ops)
