# amaranth: UnusedElaboratable=no
"""Kit part: the core's own memories and read stage (:mod:`hdl.kit.statemem`) == a model of them.

The model keeps each memory as a list of words (the twin's data: input tiles, c1, four state
banks per layer at ``b·tiles(k) + t``, partial sums, d) and applies the contract: lane-granular
writes of c1 and the states, the read address of each port (the engine's while ``run``, the
dump's over it, word 0 when neither), a read seeing the word before that cycle's write, and the
read stage's extra cycle (or none). Random reads and writes every cycle, fixed and ternary,
inference and training, with and without the read stage; every output ``==`` the model in every
cycle (latency asserted that way).
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hdl.kit.statemem import CoreMemories
from spec.ep_core import EPCoreSpec

SPECS = {
    "fixed training": dict(layers=(9, 6, 5, 3), lanes=3, training=True),
    "fixed inference": dict(layers=(9, 6, 5, 3), lanes=2, training=False),
    "ternary inference": dict(layers=(9, 6, 3), lanes=4, weight_kind="ternary", weight_bits=(2,), weight_frac=(5, 4),
                              training=False),
    "ternary training": dict(layers=(9, 6, 3), lanes=1, weight_kind="ternary", weight_bits=(2,), weight_frac=(5, 4),
                             training=True),
}


def lane_write(old: int, new: int, mask: int, width: int, lanes: int) -> int:
    g = width // lanes
    for i in range(lanes):
        if mask >> i & 1:
            sel = ((1 << g) - 1) << (i * g)
            old = (old & ~sel) | (new & sel)
    return old


@pytest.mark.parametrize("register_reads", [True, False])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_memories_match_the_model(name, register_reads):
    s = EPCoreSpec(**SPECS[name])
    L, P = s.n_layers, s.lanes
    w_bits = [] if s.weight_kind == "ternary" and not s.training else [P * 5 + l for l in range(L)]
    dut = CoreMemories(s, register_reads, w_bits, P * s.bias_bits)
    rnd = random.Random(name)
    mems = {n: [0] * d for n, d in dut.depths.items()}
    lane_en = {"c1"} | {f"s{k}" for k in range(1, L + 1)}
    store = [f"w{l}" for l in range(len(w_bits))] + ["b"] + (["nz", "neg"] if s.weight_kind == "ternary" else []) + (
        ["cells"] if s.ternary_training else [])
    row_depth = min([dut.depths[n] for n in mems if n[0] in "pd"] or [1])
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        raw_prev = {n: 0 for n in mems}  # each read port's data (the word read in the previous cycle)
        q_prev = {n: 0 for n in list(mems) + store}  # the read stage's registers
        for cycle in range(120):
            run = rnd.random() < 0.6
            ctx.set(dut.run, run)
            row = rnd.randrange(row_depth)
            xa, c1a = rnd.randrange(dut.depths["x"]), rnd.randrange(dut.depths["c1"])
            ctx.set(dut.x_raddr, xa)
            ctx.set(dut.row_raddr, row)
            ctx.set(dut.c1_raddr, c1a)
            addr = {"x": xa if run else 0, "c1": c1a, **{n: row if run else 0 for n in mems if n[0] in "pd"}}
            for k in range(1, L + 1):
                ra, da, den = rnd.randrange(dut.depths[f"s{k}"]), rnd.randrange(dut.depths[f"s{k}"]), rnd.random() < 0.3
                ctx.set(getattr(dut, f"s{k}_raddr"), ra)
                ctx.set(getattr(dut, f"s{k}_dump_addr"), da)
                ctx.set(getattr(dut, f"s{k}_dump_en"), den)
                addr[f"s{k}"] = da if den else ra if run else 0
            writes = {}
            for n, width in dut.widths.items():
                wa, wd = rnd.randrange(dut.depths[n]), rnd.getrandbits(width)
                we = rnd.getrandbits(P) if n in lane_en else rnd.random() < 0.5
                ctx.set(getattr(dut, f"{n}_waddr"), wa)
                ctx.set(getattr(dut, f"{n}_wdata"), wd)
                ctx.set(getattr(dut, f"{n}_wen"), we)
                writes[n] = (wa, wd, int(we) if n in lane_en else (1 << P) - 1 if we else 0)
            now = {}
            for n in store:
                now[n] = rnd.getrandbits(len(getattr(dut, n)))
                ctx.set(getattr(dut, n), now[n])
            lane = rnd.randrange(P)
            ctx.set(dut.b_lane, lane)
            if not s.training:  # the bias of lane b_lane, signed, selected before the read stage
                b = now["b"] >> (lane * s.bias_bits) & ((1 << s.bias_bits) - 1)
                now["b"] = b - (1 << s.bias_bits) if b >> (s.bias_bits - 1) else b
            # outputs of this cycle
            for k in range(1, L + 1):
                assert ctx.get(getattr(dut, f"s{k}_rdata")) == raw_prev[f"s{k}"], (cycle, k)
            for n in mems:
                want = q_prev[n] if register_reads else raw_prev[n]
                assert ctx.get(getattr(dut, f"{n}_q")) == want, (cycle, n)
            for n in store:
                want = q_prev[n] if register_reads else now[n]
                assert ctx.get(getattr(dut, f"{n}_q")) == want, (cycle, n)
            # the clock edge: registers take the ports' data, ports read (old words), then the writes
            q_prev = {**{n: raw_prev[n] for n in mems}, **{n: now[n] for n in store}}
            raw_prev = {n: mems[n][addr[n]] for n in mems}
            for n, (wa, wd, mask) in writes.items():
                mems[n][wa] = lane_write(mems[n][wa], wd, mask, dut.widths[n], P)
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    s = EPCoreSpec(layers=(9, 6, 3), lanes=2)
    with pytest.raises(TypeError, match="register_reads must be a bool"):
        CoreMemories(s, 1, [16], 32)
    with pytest.raises(ValueError, match="w_bits must be a list"):
        CoreMemories(s, True, [0], 32)
    with pytest.raises(TypeError, match="spec must be an EPCoreSpec"):
        CoreMemories(None, True, [16], 32)
