"""cocotb bench of the EqSpike core (runs inside the simulator; driven by :mod:`sim.eqspike`).

Reads a job of pre-packed beats — the weight image as element writes, then items (register writes, a
sample's ``inp`` or ``aer`` beats, optionally a read-back of every weight and bias) — drives the
core's streams with seeded random idle/stall cycles and writes what the hardware produced. It does
not judge: :func:`sim.eqspike.compare_with_twin` compares the result with the twin using ``==``.
"""

from __future__ import annotations

import time

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge, Timer

from sim.runner import load_job, save_result
from sim.streams import RegPort, StreamSink, StreamSource, reset, start_clock


@cocotb.test()
async def eqspike(dut):
    job = load_job()
    seed, idle, stall = job.get("seed", 0), job.get("idle_prob", 0.0), job.get("stall_prob", 0.0)
    start_clock(dut.clk)
    progress = {"where": "reset"}

    async def watchdog(limit_ns):
        await Timer(limit_ns, unit="ns")
        raise TimeoutError(f"EqSpike bench stuck at {progress['where']} after {limit_ns} ns of simulated time")

    if job.get("timeout_ns"):
        cocotb.start_soon(watchdog(job["timeout_ns"]))
    regs = RegPort(dut)
    srcs = {"inp": StreamSource(dut, "inp", seed=seed, idle_prob=idle),
            "aer": StreamSource(dut, "aer", seed=seed + 1, idle_prob=idle)}
    out = StreamSink(dut, "out", seed=seed + 2, stall_prob=stall)
    wcmd = StreamSource(dut, "wcmd", seed=seed + 3, idle_prob=idle)
    wrsp = StreamSink(dut, "wrsp", seed=seed + 4, stall_prob=stall)
    wdump = StreamSink(dut, "wdump", seed=seed + 5, stall_prob=stall) if job.get("dump_words") else None
    tjob = job.get("ternary")  # a ternary core: cells programmed on tcmd, raw cells read on trsp
    if tjob:
        tcmd = StreamSource(dut, "tcmd", seed=seed + 6, idle_prob=idle)
        trsp = StreamSink(dut, "trsp", seed=seed + 7, stall_prob=stall)
    await reset(dut)
    c = job["regs"]
    result: dict = {"spec_id": await regs.read(c["SPEC_ID"])}
    t0 = time.time()
    phase_s = {"load": 0.0, "samples": 0.0, "digests": 0.0, "dumps": 0.0, "readbacks": 0.0}  # wall s per kind

    class _timed:  # accumulate the wall time of a block into phase_s[kind]
        def __init__(self, kind):
            self.kind = kind

        def __enter__(self):
            self.t = time.time()

        def __exit__(self, *exc):
            phase_s[self.kind] += time.time() - self.t

    async def read_tmem(name: str) -> int:  # REG_TMEM: select the memory register (nowrite), then read
        await regs.write(c["TMEM"], tjob["tmem_select"][name])
        return await regs.read(c["TMEM"])

    async def readback() -> list[int]:
        cmds = job["readback_cmds"]
        task = cocotb.start_soon(wrsp.recv(len(cmds)))
        await wcmd.send(cmds)
        return await task

    async def digest() -> int:
        # a REG_DIGEST write starts the sweep (one memory word per cycle); sleep through it in one trigger,
        # then poll STATUS busy
        await regs.write(c["DIGEST"], 0)
        await Timer(job["digest_words"] * 10, unit="ns")
        while await regs.read(c["STATUS"]) & 1:
            pass
        return await regs.read(c["DIGEST"])

    dump_reads: list[int] = []  # ternary: the memory's PCSA reads (REG_TMEM READS) during each block read-back

    async def dump() -> tuple[list[int], int]:
        # block read-back: a REG_DUMP write, then one wdump beat per memory word; the same sweep leaves the
        # weight digest in REG_DIGEST
        r0 = await read_tmem("READS") if tjob else 0
        task = cocotb.start_soon(wdump.recv(job["dump_words"]))
        await regs.write(c["DUMP"], 0)
        beats = await task
        while await regs.read(c["STATUS"]) & 1:
            pass
        if tjob:
            dump_reads.append(await read_tmem("READS") - r0)
        return beats, await regs.read(c["DIGEST"])

    progress["where"] = "loading weights"
    with _timed("load"):
        if tjob:
            for a, v in tjob["tmem_writes"]:  # the memory's fault registers through the window
                await regs.write(a, v)
            await tcmd.send(tjob["program"])
        await wcmd.send(job["load"])
    if tjob:
        progress["where"] = "ternary cell read-back"
        with _timed("readbacks"):
            task = cocotb.start_soon(trsp.recv(len(tjob["cell_reads"])))
            await tcmd.send(tjob["cell_reads"])
            result["cells"] = await task
        result["tmem_initial"] = {k: await read_tmem(k) for k in ("INJECTED", "SPEC_ID")}
    if job.get("readback_initial"):
        progress["where"] = "initial read-back"
        with _timed("readbacks"):
            result["readback_initial"] = await readback()
    if job.get("dump_initial"):
        progress["where"] = "initial block read-back"
        with _timed("dumps"):
            result["dump_initial"], result["digest_initial"] = await dump()
    elif job.get("digest_initial"):
        with _timed("digests"):
            result["digest_initial"] = await digest()
    items = []
    for n, it in enumerate(job["items"]):
        progress["where"] = f"item {n}"
        with _timed("samples"):
            for a, v in it["regs"]:
                await regs.write(a, v)
            otask = cocotb.start_soon(out.recv(1))
            await srcs[it["stream"]].send(it["beats"])
            res = {"out": (await otask)[0]}
            res["counters"] = {k: await regs.read(c[k]) for k in ("CYCLES", "SPIKES", "WORDS", "SYN", "STATUS")}
        if it.get("dump"):
            with _timed("dumps"):
                res["dump"], res["digest"] = await dump()
        elif it.get("digest"):
            with _timed("digests"):
                res["digest"] = await digest()
        if it.get("readback"):
            with _timed("readbacks"):
                res["readback"] = await readback()
        items.append(res)
    res_regs = {k: await regs.read(c[k]) for k in ("SAMPLES", "AER_BAD", "STATUS")}
    if tjob:
        result["tmem_end"] = {k: await read_tmem(k) for k in ("INJECTED", "READS")}
        result["dump_reads"] = dump_reads
    await RisingEdge(dut.clk)
    result.update(items=items, end=res_regs, wall_s=time.time() - t0, sim_time_ns=get_sim_time(unit="ns"),
                  phase_s=phase_s)
    save_result(result)
