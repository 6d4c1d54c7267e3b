"""cocotb bench of the Galton-board emulator (runs inside the simulator; driven by :mod:`sim.galton`).

Reads a job (spec, segments from :func:`sim.galton.segment_job`), drives the emulator like a host —
memory writes on ``cmd``, registers, START/STOP, balls collected from ``out`` with seeded random
stalls, read-back through ``cmd``/``rsp`` — and writes what the hardware produced. It does not
judge: the Python side compares with the twin using ``==``.
"""

from __future__ import annotations

import time

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, RisingEdge, Timer

from sim.runner import load_job, save_result
from sim.streams import RegPort, StreamSink, StreamSource, pack_fields, reset, start_clock, unpack_fields
from spec.galton import (
    CMD_CLEAR,
    CMD_START,
    CMD_STOP,
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
    GaltonSpec,
)


@cocotb.test()
async def galton(dut):
    job = load_job()
    spec = GaltonSpec.from_dict(job["spec"])
    seed, idle, stall = job.get("seed", 0), job.get("idle_prob", 0.0), job.get("stall_prob", 0.0)
    start_clock(dut.clk)
    progress = {"where": "reset"}

    async def watchdog(limit_ns):
        await Timer(limit_ns, unit="ns")
        raise TimeoutError(f"Galton bench stuck at {progress['where']} after {limit_ns} ns of simulated time")

    if job.get("timeout_ns"):
        cocotb.start_soon(watchdog(job["timeout_ns"]))
    regs = RegPort(dut)
    cmd = StreamSource(dut, "cmd", seed=seed, idle_prob=idle)
    rsp = StreamSink(dut, "rsp", seed=seed + 1, stall_prob=stall)
    out = StreamSink(dut, "out", seed=seed + 2, stall_prob=stall)
    await reset(dut)
    cf, rf = spec.cmd_fields(), spec.rsp_fields()
    result: dict = {"spec_id": await regs.read(REG_SPEC_ID), "segments": []}
    t0 = time.time()

    async def wait_until_clear(mask: int) -> None:
        while (await regs.read(REG_STATUS)) & mask:
            pass

    for si, seg in enumerate(job["segments"]):
        progress["where"] = f"segment {si}: set-up"
        await wait_until_clear(STATUS_RUNNING | STATUS_CLEARING)
        if seg["writes"]:
            await cmd.send(pack_fields(cf, {"data": d, "addr": a, "write": 1}) for a, d in seg["writes"])
        if seg["seed"] is not None:
            await regs.write(REG_SEED, seg["seed"])
        await regs.write(REG_CTRL, seg["ctrl"])
        await regs.write(REG_BALLS, seg["balls"])
        await regs.write(REG_CMD, CMD_START | (CMD_CLEAR if seg["clear"] else 0))
        balls: list[int] = []
        progress["where"] = f"segment {si}: running"
        if seg["hist_only"]:
            await ClockCycles(dut.clk, seg["balls"])
        elif seg["stop_after"] is None:
            balls = await out.recv(seg["balls"])
        else:
            balls = await out.recv(seg["stop_after"])
            await regs.write(REG_CMD, CMD_STOP)
            if (await regs.read(REG_STATUS)) & STATUS_PENDING:
                balls += await out.recv(1)
        await wait_until_clear(STATUS_RUNNING)
        res = {"balls": balls, "done": await regs.read(REG_DONE), "remaining": await regs.read(REG_REMAINING)}
        progress["where"] = f"segment {si}: read-back"
        reads = []
        for a in seg["reads"]:
            await cmd.send([pack_fields(cf, {"addr": a, "write": 0})])
            reads.append(unpack_fields(rf, (await rsp.recv(1))[0])["data"])
        res["reads"] = reads
        result["segments"].append(res)
    await RisingEdge(dut.clk)
    result["wall_s"] = time.time() - t0
    result["sim_time_ns"] = get_sim_time(unit="ns")
    save_result(result)
