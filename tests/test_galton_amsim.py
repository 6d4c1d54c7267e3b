# amaranth: UnusedElaboratable=no
# (test_rows_per_stage_is_checked makes the constructor raise, which leaves an unused object behind)
"""Galton-board RTL == twin in the Amaranth simulator (the fast tier), with seeded random stalls.

The host below executes the same segment jobs as the cocotb bench (:func:`sim.galton.segment_job`)
and :func:`sim.galton.compare_with_twin` checks every ball of every board, the ball counter, every
histogram counter and every threshold read back, with ``==``.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.domainwall import DomainWallBoard, GaltonTwin
from hdl.galton import GaltonBoard
from sim.galton import Segment, compare_with_twin, segment_job
from spec.ep_core import pack_fields, unpack_fields
from spec.galton import (
    CMD_CLEAR,
    CMD_START,
    CMD_STOP,
    CTRL_CORRELATED,
    CTRL_HIST_ONLY,
    REG_BALLS,
    REG_CMD,
    REG_CTRL,
    REG_DONE,
    REG_REMAINING,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    STATUS_CLEARING,
    STATUS_PENDING,
    STATUS_RUNNING,
    STATUS_SEEDING,
    STATUS_WRITE_REFUSED,
    GaltonSpec,
)


class Host:
    """Drive the emulator's ports from an async testbench, with random idles (cmd) and stalls (out, rsp)."""

    def __init__(self, dut: GaltonBoard, *, seed: int = 0, idle_prob: float = 0.0, stall_prob: float = 0.0):
        self.dut, self.spec = dut, dut.spec
        self.rng = random.Random(seed)
        self.idle_prob, self.stall_prob = idle_prob, stall_prob

    async def write_reg(self, ctx, addr: int, value: int) -> None:
        ctx.set(self.dut.reg.addr, addr)
        ctx.set(self.dut.reg.wdata, value)
        ctx.set(self.dut.reg.we, 1)
        await ctx.tick()
        ctx.set(self.dut.reg.we, 0)

    async def read_reg(self, ctx, addr: int) -> int:
        ctx.set(self.dut.reg.addr, addr)
        value = int(ctx.get(self.dut.reg.rdata))
        await ctx.tick()  # one cycle per access, like the cocotb RegPort
        return value

    async def put(self, ctx, stream, word: int) -> None:
        while self.idle_prob and self.rng.random() < self.idle_prob:
            await ctx.tick()
        ctx.set(stream.payload.as_value(), word)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
        ctx.set(stream.valid, 0)

    async def recv(self, ctx, stream, n: int) -> list[int]:
        out = []
        while len(out) < n:
            stall = bool(self.stall_prob) and self.rng.random() < self.stall_prob
            ctx.set(stream.ready, 0 if stall else 1)
            _clk, _rst, word, valid = await ctx.tick().sample(stream.payload.as_value(), stream.valid)
            if valid and not stall:
                out.append(int(word))
        ctx.set(stream.ready, 0)
        return out

    async def wait_until_clear(self, ctx, mask: int) -> None:
        while (await self.read_reg(ctx, REG_STATUS)) & mask:
            pass

    async def mem_write(self, ctx, addr: int, data: int) -> None:
        await self.put(ctx, self.dut.cmd, pack_fields(self.spec.cmd_fields(), {"data": data, "addr": addr, "write": 1}))

    async def mem_read(self, ctx, addr: int) -> int:
        await self.put(ctx, self.dut.cmd, pack_fields(self.spec.cmd_fields(), {"addr": addr, "write": 0}))
        return unpack_fields(self.spec.rsp_fields(), (await self.recv(ctx, self.dut.rsp, 1))[0])["data"]

    async def run_segments(self, ctx, jobs: list[dict]) -> dict:
        """The same host sequence as sim/galton_bench.py."""
        result = {"spec_id": await self.read_reg(ctx, REG_SPEC_ID), "segments": []}
        for seg in jobs:
            await self.wait_until_clear(ctx, STATUS_RUNNING | STATUS_CLEARING)
            for a, d in seg["writes"]:
                await self.mem_write(ctx, a, d)
            if seg["seed"] is not None:
                await self.write_reg(ctx, REG_SEED, seg["seed"])
            await self.write_reg(ctx, REG_CTRL, seg["ctrl"])
            await self.write_reg(ctx, REG_BALLS, seg["balls"])
            await self.write_reg(ctx, REG_CMD, CMD_START | (CMD_CLEAR if seg["clear"] else 0))
            balls: list[int] = []
            if seg["hist_only"]:
                for _ in range(seg["balls"]):
                    await ctx.tick()
            elif seg["stop_after"] is None:
                balls = await self.recv(ctx, self.dut.out, seg["balls"])
            else:
                balls = await self.recv(ctx, self.dut.out, seg["stop_after"])
                await self.write_reg(ctx, REG_CMD, CMD_STOP)
                if (await self.read_reg(ctx, REG_STATUS)) & STATUS_PENDING:
                    balls += await self.recv(ctx, self.dut.out, 1)
            await self.wait_until_clear(ctx, STATUS_RUNNING)
            res = {
                "balls": balls,
                "done": await self.read_reg(ctx, REG_DONE),
                "remaining": await self.read_reg(ctx, REG_REMAINING),
            }
            res["reads"] = [await self.mem_read(ctx, a) for a in seg["reads"]]
            result["segments"].append(res)
        return result


def run_rtl(spec: GaltonSpec, segments: list[Segment], *, seed=0, idle=0.0, stall=0.0, rows_per_stage=1) -> dict:
    jobs = segment_job(spec, segments)
    dut = GaltonBoard(spec, rows_per_stage=rows_per_stage)
    out: dict = {}

    async def bench(ctx):
        out.update(await Host(dut, seed=seed, idle_prob=idle, stall_prob=stall).run_segments(ctx, jobs))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def check(spec, segments, **kw):
    res = run_rtl(spec, segments, **kw)
    rep = compare_with_twin(spec, segments, res, "amaranth")
    assert rep.mismatches == []
    return rep


def scenario(spec: GaltonSpec, rng: np.random.Generator, balls: int) -> list[Segment]:
    """Field-tuned thresholds, then sticky chirality with site edits and odd raw writes, a reseed
    with histogram-only counting, and an unlimited run stopped by the host."""
    n = spec.rows
    off = np.tril(rng.normal(0, 1.0, (n, n)))
    sticky = DomainWallBoard(n, offsets=off, stickiness=0.5)
    odd = [
        (spec.threshold_addr(1, n - 1, 0), (1 << spec.data_bits) - 1),  # above 2^k: refused (flagged), not clamped
        (spec.threshold_addr(0, 0, 0) | (1 << spec.row_bits) - 1, 3) if n > 1 else (0, 1),
    ]  # j > i: ignored
    return [
        Segment(balls=balls, thresholds=DomainWallBoard(n).thresholds(0.6, spec.prob_bits)),
        Segment(
            balls=balls, thresholds=sticky.thresholds(-0.3, spec.prob_bits), writes=odd, correlated=True, clear=True
        ),
        Segment(balls=balls, seed=0xC0FFEE, hist_only=True, correlated=True, clear=True),
        Segment(
            stop_after=balls // 3,
            clear=False,
            reads=[spec.hist_addr(b, i) for b in range(spec.boards) for i in range(spec.n_bins)],
        ),
    ]


CASES = {
    "8x2-k8-w32": GaltonSpec(rows=8, boards=2),
    "5x3-k5-w16-correlated-reset": GaltonSpec(rows=5, boards=3, prob_bits=5, prng_width=16, seed=4321, correlated=True),
    "3x1-k16-w64-narrow-counters": GaltonSpec(rows=3, boards=1, prob_bits=16, prng_width=64, bin_bits=7, count_bits=11),
    "1x1-k1": GaltonSpec(rows=1, boards=1, prob_bits=1, bin_bits=4),
}


@pytest.mark.parametrize("stalls", [0.0, 0.35])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rtl_matches_twin(name, stalls):
    spec = CASES[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    segments = scenario(spec, rng, 600)
    rep = check(spec, segments, seed=len(name), idle=stalls, stall=stalls)
    assert rep.balls_compared >= (600 + 600 + 200) * spec.boards
    assert rep.balls_generated >= 600 * 3 + 200
    # not vacuous: the balls spread over several bins (or saturate counters, where that is the point)
    assert sum((h > 0).sum() for h in rep.histograms) > spec.boards


@pytest.mark.parametrize("rows_per_stage", [1, 2, 3, 5])
def test_rtl_matches_twin_at_every_pipeline_depth(rows_per_stage):
    """Latency is all the pipeline changes: 4, 2, 1 and 0 stage registers give the twin's balls."""
    spec = CASES["5x3-k5-w16-correlated-reset"]
    dut = GaltonBoard(spec, rows_per_stage=rows_per_stage)
    assert dut.stages == {1: 4, 2: 2, 3: 1, 5: 0}[rows_per_stage] and dut.latency == dut.stages + 1
    rng = np.random.default_rng(rows_per_stage)
    rep = check(spec, scenario(spec, rng, 150), seed=rows_per_stage, idle=0.3, stall=0.3, rows_per_stage=rows_per_stage)
    assert rep.balls_compared >= (150 + 150 + 50) * spec.boards


def test_rows_per_stage_is_checked():
    with pytest.raises(ValueError, match=r"rows_per_stage must be an integer in 1..4 \(rows\), not 5"):
        GaltonBoard(GaltonSpec(rows=4), rows_per_stage=5)
    with pytest.raises(ValueError, match="rows_per_stage must be an integer"):
        GaltonBoard(GaltonSpec(rows=4), rows_per_stage=True)


def test_stall_and_stop_at_every_pipeline_fill_level():
    """Back-pressure from the first cycle of a run for 0 … latency + 2 cycles, then a STOP after as
    many cycles, then a limited run shorter than the pipeline, a threshold write and a reseed right
    after a run ends: every ball on `out`, REG_DONE and the histograms stay the twin's, and no
    ball in flight is lost, repeated or counted."""
    spec = GaltonSpec(rows=6, boards=2, prob_bits=4, prng_width=16, seed=77, correlated=True)
    dut = GaltonBoard(spec)
    L = dut.latency
    thr = np.random.default_rng(3).integers(0, spec.threshold_max + 1, size=(2, spec.rows, spec.rows))
    log: list = []  # ("balls", [words]) | ("write", addr, data) | ("seed", s) | ("done", n)

    async def bench(ctx):
        host = Host(dut)
        await host.wait_until_clear(ctx, STATUS_CLEARING | STATUS_SEEDING)
        for c in range(2):
            for i in range(spec.rows):
                for j in range(i + 1):
                    await host.mem_write(ctx, spec.threshold_addr(c, i, j), int(thr[c, i, j]))
        for hold in range(L + 3):
            # a limited run, out.ready low for `hold` cycles from the START
            await host.write_reg(ctx, REG_BALLS, 9)
            await host.write_reg(ctx, REG_CMD, CMD_START)
            for _ in range(hold):
                await ctx.tick()
            log.append(("balls", await host.recv(ctx, dut.out, 9)))
            await host.wait_until_clear(ctx, STATUS_RUNNING)
            # an unlimited run with out.ready high, STOPped after `hold` cycles
            await host.write_reg(ctx, REG_BALLS, 0)
            ctx.set(dut.out.ready, 1)
            await host.write_reg(ctx, REG_CMD, CMD_START)
            got = []
            for _ in range(hold):
                _clk, _rst, word, valid = await ctx.tick().sample(dut.out.payload.as_value(), dut.out.valid)
                if valid:
                    got.append(int(word))
            ctx.set(dut.out.ready, 0)
            await host.write_reg(ctx, REG_CMD, CMD_STOP)
            if (await host.read_reg(ctx, REG_STATUS)) & STATUS_PENDING:
                got += await host.recv(ctx, dut.out, 1)
            log.append(("balls", got))
            # at once: the run is over, the host may write (balls in flight were dropped)
            addr = spec.threshold_addr(hold % 2, hold % spec.rows, 0)
            await host.mem_write(ctx, addr, hold)
            log.append(("write", addr, hold))
            # a run of 2 balls, shorter than the pipeline: the extra balls in flight are dropped
            await host.write_reg(ctx, REG_BALLS, 2)
            ctx.set(dut.out.ready, 1)
            await host.write_reg(ctx, REG_CMD, CMD_START)
            got = []
            while len(got) < 2:
                _clk, _rst, word, valid = await ctx.tick().sample(dut.out.payload.as_value(), dut.out.valid)
                if valid:
                    got.append(int(word))
            ctx.set(dut.out.ready, 0)
            log.append(("balls", got))
            if hold % 3 == 2:
                await host.write_reg(ctx, REG_SEED, 1000 + hold)  # right after the run ends
                log.append(("seed", 1000 + hold))
            await host.wait_until_clear(ctx, STATUS_RUNNING | STATUS_SEEDING)
            log.append(("done", await host.read_reg(ctx, REG_DONE)))
        hist = [await host.mem_read(ctx, spec.hist_addr(b, i)) for b in range(spec.boards) for i in range(spec.n_bins)]
        log.append(("hist", hist))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    from sim.galton import decode_balls

    twin = GaltonTwin(spec, thr, correlated=True)
    stopped = []
    for entry in log:
        if entry[0] == "balls":
            got = decode_balls(spec, entry[1])
            assert np.array_equal(got, twin.balls(len(got)))
            stopped.append(len(got))
        elif entry[0] == "write":
            twin.write(entry[1], entry[2])
        elif entry[0] == "seed":
            twin.reseed(entry[1])
        elif entry[0] == "done":
            assert entry[1] == twin.done
        else:
            assert entry[1] == twin.hist.ravel().tolist()
    # the STOPs came at every fill level: no ball yet, some on `out`, one pending
    # the STOPs came at every fill level: 0 … L − 1 balls in flight and none generated yet, then one
    # pending on `out` (the others in flight dropped), then more already taken
    assert stopped[1::3] == [max(0, h - L) + (h >= L - 1) for h in range(L + 3)]


def test_a_reset_restores_every_word_read_back():
    """After threshold writes and a run, a reset of the domain: every threshold reads back 2^(k-1) (or 0
    where unused), every histogram counter and DONE read 0, and the next run is the twin's from reset."""
    from amaranth.hdl import ClockDomain, Module

    from sim.galton import all_read_addrs, decode_balls

    spec = GaltonSpec(rows=3, boards=2, bin_bits=8)
    dut = GaltonBoard(spec)
    top = Module()
    top.domains.sync = cd = ClockDomain("sync")
    top.submodules.dut = dut
    res: dict = {}
    addrs = all_read_addrs(spec) + [spec.threshold_addr(0, 1, 0) + 3]  # and an unused address

    async def bench(ctx):
        host = Host(dut, seed=4, stall_prob=0.3)
        for a in addrs[:-1]:
            await host.mem_write(ctx, a, 5)
        await host.write_reg(ctx, REG_SEED, 77)
        await host.write_reg(ctx, REG_BALLS, 30)
        await host.write_reg(ctx, REG_CMD, CMD_START)
        await host.recv(ctx, dut.out, 30)
        res["before"] = [await host.mem_read(ctx, a) for a in addrs]
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        await host.wait_until_clear(ctx, STATUS_CLEARING | STATUS_SEEDING)
        res["after"] = [await host.mem_read(ctx, a) for a in addrs]
        res["done"] = await host.read_reg(ctx, REG_DONE)
        await host.write_reg(ctx, REG_BALLS, 20)
        await host.write_reg(ctx, REG_CMD, CMD_START)
        res["balls"] = await host.recv(ctx, dut.out, 20)

    sim = Simulator(top)
    sim.add_clock(1e-6, domain="sync")
    sim.add_testbench(bench)
    sim.run()
    twin = GaltonTwin(spec)
    assert res["before"][: spec.rows * (spec.rows + 1)] == [5] * (spec.rows * (spec.rows + 1))
    assert sum(res["before"]) > 5 * spec.rows * (spec.rows + 1)  # the run was counted
    assert res["after"] == [twin.read(a) for a in addrs] and res["done"] == 0
    assert res["after"][0] == 1 << (spec.prob_bits - 1) and res["after"][-1] == 0
    assert np.array_equal(decode_balls(spec, res["balls"]), twin.balls(20))


def test_counters_saturate():
    """3-bit histogram counters and a 4-bit ball counter: both stop at their maximum."""
    spec = GaltonSpec(rows=2, boards=2, bin_bits=3, count_bits=4, seed=8)
    segments = [
        Segment(balls=12, reads=[]),
        Segment(balls=15, hist_only=True),
        Segment(balls=9, clear=True),
        Segment(balls=15, hist_only=True),
    ]
    rep = check(spec, segments, seed=1, stall=0.3)
    assert rep.histograms[1].max() == 7 and rep.histograms[3].max() == 7
    twin = GaltonTwin(spec)
    twin.balls(27)
    assert twin.done == 15  # the twin saturates too (compared with REG_DONE above)


def test_full_rate_one_ball_per_cycle_and_backpressure_holds_the_ball():
    spec = GaltonSpec(rows=6, boards=2)
    dut = GaltonBoard(spec)
    res: dict = {}

    async def bench(ctx):
        host = Host(dut)
        await host.wait_until_clear(ctx, STATUS_CLEARING | STATUS_SEEDING)
        await host.write_reg(ctx, REG_BALLS, 500)
        ctx.set(dut.out.ready, 1)
        await host.write_reg(ctx, REG_CMD, CMD_START)
        beats, cycles = [], 0
        while len(beats) < 500:
            _clk, _rst, word, valid = await ctx.tick().sample(dut.out.payload.as_value(), dut.out.valid)
            cycles += 1
            if valid:
                beats.append(int(word))
        ctx.set(dut.out.ready, 0)
        res["cycles"], res["beats"] = cycles, beats
        # back-pressure: START another 50, hold ready low for 40 cycles — the first ball waits unchanged
        await host.write_reg(ctx, REG_BALLS, 50)
        await host.write_reg(ctx, REG_CMD, CMD_START)
        held = []
        for _ in range(40):
            _clk, _rst, word, valid = await ctx.tick().sample(dut.out.payload.as_value(), dut.out.valid)
            held.append((int(valid), int(word)))
        res["held"] = held
        res["done_while_held"] = await host.read_reg(ctx, REG_DONE)
        res["more"] = await host.recv(ctx, dut.out, 50)
        res["done"] = await host.read_reg(ctx, REG_DONE)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    twin = GaltonTwin(spec)
    from sim.galton import decode_balls

    assert np.array_equal(decode_balls(spec, res["beats"]), twin.balls(500))
    # `latency` cycles from START to the first beat (one per pipeline stage, and the out register),
    # then one ball per cycle
    assert dut.latency == spec.rows and res["cycles"] == 500 + dut.latency
    # under back-pressure exactly one ball was generated (into the output register) and it stays put;
    # the balls behind it in the pipeline wait uncounted
    assert res["done_while_held"] == 501
    held = res["held"][1 + dut.latency :]
    assert len({w for v, w in held}) == 1 and all(v for v, _ in held)
    assert not any(v for v, _ in res["held"][: dut.latency])
    assert np.array_equal(decode_balls(spec, res["more"]), twin.balls(50))
    assert res["done"] == 550


def test_registers_are_locked_while_running_and_stop_wins():
    spec = GaltonSpec(rows=4, boards=1, seed=3)
    dut = GaltonBoard(spec)
    res: dict = {}

    async def bench(ctx):
        host = Host(dut)
        await host.wait_until_clear(ctx, STATUS_CLEARING | STATUS_SEEDING)
        res["ctrl0"] = await host.read_reg(ctx, REG_CTRL)
        await host.write_reg(ctx, REG_BALLS, 0)
        await host.write_reg(ctx, REG_CMD, CMD_START)  # unlimited; out.ready low: one ball waits
        await host.write_reg(ctx, REG_CTRL, CTRL_CORRELATED | CTRL_HIST_ONLY)
        await host.write_reg(ctx, REG_SEED, 99)
        await host.write_reg(ctx, REG_BALLS, 7)
        await host.write_reg(ctx, REG_CMD, CMD_CLEAR)  # ignored while running
        res["cmd_ready_running"] = int(ctx.get(dut.cmd.ready))
        res["locked"] = [await host.read_reg(ctx, a) for a in (REG_CTRL, REG_SEED, REG_BALLS)]
        res["status_running"] = await host.read_reg(ctx, REG_STATUS)
        await host.write_reg(ctx, REG_CMD, CMD_START | CMD_STOP)
        res["status_stopped"] = await host.read_reg(ctx, REG_STATUS)
        res["done"] = await host.read_reg(ctx, REG_DONE)
        res["pending"] = await host.recv(ctx, dut.out, 1)
        res["cmd_ready_idle"] = int(ctx.get(dut.cmd.ready))
        await host.write_reg(ctx, REG_SEED, 99)
        res["seeding"] = await host.read_reg(ctx, REG_STATUS)
        res["unlocked"] = await host.read_reg(ctx, REG_SEED)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert res["ctrl0"] == 0
    assert res["cmd_ready_running"] == 0 and res["cmd_ready_idle"] == 1
    assert res["locked"] == [0, spec.seed, 0]
    assert res["status_running"] == STATUS_RUNNING | STATUS_PENDING
    assert res["status_stopped"] == STATUS_PENDING  # STOP wins over START in one write
    assert res["done"] == 1
    from sim.galton import decode_balls

    assert np.array_equal(decode_balls(spec, res["pending"]), GaltonTwin(spec).balls(1))
    assert res["seeding"] & STATUS_SEEDING and res["unlocked"] == 99


def test_comparison_catches_a_wrong_ball_counter_or_word():
    """The checker is not vacuous: one altered bin, counter or read-back word is reported."""
    import copy

    spec = GaltonSpec(rows=4, boards=2)
    segments = [Segment(balls=50), Segment(balls=30, hist_only=True), Segment(stop_after=10)]
    res = run_rtl(spec, segments, seed=2, stall=0.2)
    assert compare_with_twin(spec, segments, res).mismatches == []
    bad = copy.deepcopy(res)
    w = bad["segments"][0]["balls"][17]
    bad["segments"][0]["balls"][17] = w ^ 1  # board 0's bin off by one in ball 17
    assert any("ball 17 board 0" in m for m in compare_with_twin(spec, segments, bad).mismatches)
    bad = copy.deepcopy(res)
    bad["segments"][1]["done"] += 1
    assert any("REG_DONE" in m for m in compare_with_twin(spec, segments, bad).mismatches)
    bad = copy.deepcopy(res)
    bad["segments"][1]["reads"][-1] += 1  # the last histogram counter
    assert any("memory word" in m for m in compare_with_twin(spec, segments, bad).mismatches)
    bad = copy.deepcopy(res)
    bad["segments"][2]["balls"].pop()  # a ball lost after STOP
    assert any("balls on out" in m for m in compare_with_twin(spec, segments, bad).mismatches)


def test_out_of_range_writes_are_refused_and_flagged_like_the_twin():
    """One rule (spec.galton register_write_error / memory_write_error) in the RTL and the twin: an
    out-of-range register or threshold write changes nothing (no truncation, no clamping) and sets
    REG_STATUS bit 4, sticky until a write of REG_STATUS; in-range writes are taken."""
    spec = GaltonSpec(rows=3, boards=2, prob_bits=5, count_bits=10, seed=9)
    dut = GaltonBoard(spec)
    twin = GaltonTwin(spec)
    thr = spec.threshold_addr(1, 2, 1)
    steps = [
        ("reg", REG_CTRL, 3), ("reg", REG_CTRL, 4), ("reg", REG_BALLS, 1023), ("reg", REG_BALLS, 1024),
        ("reg", REG_STATUS, 0), ("reg", REG_BALLS, 0xFFFF_FFFF), ("reg", REG_CMD, 8), ("reg", REG_STATUS, 0),
        ("reg", REG_DONE, 5), ("reg", REG_STATUS, 0), ("reg", 15, 1), ("reg", REG_STATUS, 1),
        ("mem", thr, spec.threshold_max), ("mem", thr, spec.threshold_max + 1), ("reg", REG_STATUS, 0),
        ("mem", thr, 7), ("mem", thr, (1 << spec.data_bits) - 1), ("mem", spec.threshold_addr(0, 1, 0) | 3, 99),
        ("mem", spec.hist_addr(1, 2), 5), ("reg", REG_SEED, 77), ("reg", REG_CMD, 4), ("reg", REG_CTRL, 1),
    ]
    got, want = [], []

    async def bench(ctx):
        host = Host(dut)
        await host.wait_until_clear(ctx, STATUS_CLEARING | STATUS_SEEDING)
        for kind, addr, value in steps:
            if kind == "reg":
                await host.write_reg(ctx, addr, value)
                err = twin.write_reg(addr, value)
            else:
                await host.mem_write(ctx, addr, value)
                err = twin.write(addr, value)
            await host.wait_until_clear(ctx, STATUS_CLEARING | STATUS_SEEDING)
            st = await host.read_reg(ctx, REG_STATUS)
            regs = [await host.read_reg(ctx, a) for a in (REG_CTRL, REG_BALLS)]
            back = await host.mem_read(ctx, thr)
            got.append((bool(st & STATUS_WRITE_REFUSED), regs, back))
            want.append((twin.write_refused, [twin.correlated | twin.hist_only << 1, twin.balls_reg],
                         twin.read(thr), err))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [w[:3] for w in want]
    refused = [s for s, w in zip(steps, want, strict=True) if w[3] is not None]
    assert len(refused) == 8 and all(w[0] for w in want if w[3] is not None)
    assert want[0][1] == [3, 0] and want[2][1] == [3, 1023] and want[3][1] == [3, 1023]  # 1024 not truncated to 0
    assert want[12][2] == spec.threshold_max and want[13][2] == spec.threshold_max  # 2^k + 1 not clamped
