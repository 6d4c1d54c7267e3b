# amaranth: UnusedElaboratable=no
"""Kit part: the stage registers (:class:`hdl.kit.stages.StageRegs`) == a model of the core's pipeline timing.

Random micro-ops (random valid bits and fields) and read addresses enter every cycle; with K = 0 … 2
weight read stages, with and without the read stage (``register_reads``), every output is compared with
the history: ``addr_k`` is ``addr`` of K cycles before, ``op0r`` the op of K + 1 cycles before, ``op1``
of K + 2 (K + 1 without the read stage), ``op2`` and ``op3`` one and two cycles after ``op1``; ``occupied``
is the OR of ``run``, the valid bits held (delayed addresses' ``run``, ops) and ``more``. (The core's
whole-sample cycle counts, tests/test_ep_core_amsim.py, are the twin-level check of this timing.)
"""

from __future__ import annotations

import random

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from hdl.kit.stages import StageRegs

OP = data.StructLayout({"valid": 1, "kind": 3, "word": 4, "lane": 2})
ADDR = data.StructLayout({"run": 1, "x": 3, "s": data.ArrayLayout(5, 2)})


@pytest.mark.parametrize("K", [0, 1, 2])
@pytest.mark.parametrize("rr", [True, False])
def test_stage_registers_follow_the_model(K, rr):
    dut = StageRegs(OP, ADDR, K, rr, 3)
    op_in, addr_in = data.View(OP, dut.op), data.View(ADDR, dut.addr)
    addr_k, *stage_ops = dut.views()
    outs = dict(zip(("op0r", "op1", "op2", "op3"), stage_ops, strict=True))
    rnd = random.Random(K * 2 + rr)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        ops, addrs = [], []  # what entered, cycle by cycle
        zero_op, zero_addr = {"valid": 0, "kind": 0, "word": 0, "lane": 0}, {"run": 0, "x": 0, "s": [0, 0]}

        def back(hist, n, zero):
            return hist[-1 - n] if n < len(hist) else zero

        for c in range(300):
            burst = c % 40 < 30  # runs of ops, then the pipeline drains
            op = {"valid": int(burst and rnd.random() < 0.8), "kind": rnd.randrange(8), "word": rnd.randrange(16),
                  "lane": rnd.randrange(4)}
            addr = {"run": int(burst), "x": rnd.randrange(8), "s": [rnd.randrange(32), rnd.randrange(32)]}
            more = rnd.randrange(8) if rnd.random() < 0.2 else 0
            ctx.set(op_in, op)
            ctx.set(addr_in, addr)
            ctx.set(dut.more, more)
            ops.append(op)
            addrs.append(addr)
            assert ctx.get(addr_k) == back(addrs, K, zero_addr), f"cycle {c}"
            d1 = K + 2 if rr else K + 1
            want = {"op0r": K + 1, "op1": d1, "op2": d1 + 1, "op3": d1 + 2}
            for name, n in want.items():
                assert ctx.get(outs[name]) == back(ops, n, zero_op), f"cycle {c}: {name}"
            held = [back(addrs, n, zero_addr)["run"] for n in range(K + 1)] + (
                [back(ops, K, zero_op)["valid"]] if K else []) + [back(ops, n, zero_op)["valid"] for n in want.values()]
            assert ctx.get(dut.occupied) == int(any(held) or more != 0), f"cycle {c}"
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="valid field"):
        StageRegs(data.StructLayout({"kind": 3}), ADDR, 0, True, 1)
    with pytest.raises(ValueError, match="K must be"):
        StageRegs(OP, ADDR, -1, True, 1)
