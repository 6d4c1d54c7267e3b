"""cocotb bench of the EP core (runs inside the simulator; driven by :mod:`sim.ep_core`).

Reads a job (spec, memory image, segments of samples with their registers), drives the core's
ports like a host — load weights, set registers, stream samples, collect predictions, state dumps
and read-backs — and writes what the hardware produced. It does not judge: the Python side
compares the result with the twin using ``==``.
"""

from __future__ import annotations

import time

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge, Timer

from sim.runner import load_job, save_result
from sim.streams import RegPort, StreamSink, StreamSource, reset, start_clock
from spec.ep_core import (
    REG_BETA_SHIFT,
    REG_CTRL,
    REG_CYCLES,
    REG_LR_SHIFT,
    REG_SEED,
    REG_SPEC_ID,
    REG_T1,
    REG_T2,
    REG_TILLEGAL,
    REG_TINJECTED,
    REG_TREADS,
    EPCoreSpec,
    pack_fields,
    unpack_fields,
)


def sample_beats(spec: EPCoreSpec, x: list[int], label: int) -> list[int]:
    P, f = spec.lanes, spec.input_fields()
    beats = []
    for t in range(spec.tiles(0)):
        vals = {f"pixels[{i}]": (x[t * P + i] if t * P + i < len(x) else 0) for i in range(P)}
        vals["label"] = label
        beats.append(pack_fields(f, vals))
    return beats


@cocotb.test()
async def ep_core(dut):
    job = load_job()
    spec = EPCoreSpec.from_dict(job["spec"])
    seed, idle, stall = job.get("seed", 0), job.get("idle_prob", 0.0), job.get("stall_prob", 0.0)
    start_clock(dut.clk)
    progress = {"where": "reset"}

    async def watchdog(limit_ns):
        await Timer(limit_ns, unit="ns")
        raise TimeoutError(f"EP core bench stuck at {progress['where']} after {limit_ns} ns of simulated time")

    if job.get("timeout_ns"):
        cocotb.start_soon(watchdog(job["timeout_ns"]))
    # the drivers drive every input of the core low before reset is released (no X into the FSM)
    regs = RegPort(dut)
    inp = StreamSource(dut, "inp", seed=seed, idle_prob=idle)
    out = StreamSink(dut, "out", seed=seed + 1, stall_prob=stall)
    dump = StreamSink(dut, "dump", seed=seed + 2, stall_prob=stall)
    wcmd = StreamSource(dut, "wcmd", seed=seed + 3, idle_prob=idle)
    wrsp = StreamSink(dut, "wrsp", seed=seed + 4, stall_prob=stall)
    await reset(dut)
    wf = spec.wcmd_fields()
    result: dict = {"spec_id": await regs.read(REG_SPEC_ID)}
    t0 = time.time()

    async def readback() -> list[int]:
        words = []
        for addr in range(spec.memory_words):
            await wcmd.send([pack_fields(wf, {"addr": addr, "write": 0})])
            words.append(unpack_fields(spec.wrsp_fields(), (await wrsp.recv(1))[0])["data"])
        return words

    progress["where"] = "loading weights"
    result["loaded_words"] = job.get("words") is not None
    if job.get("words") is not None:
        await wcmd.send(pack_fields(wf, {"data": w, "addr": a, "write": 1}) for a, w in enumerate(job["words"]))
    progress["where"] = "initial read-back"
    if job.get("readback_initial"):
        result["readback_initial"] = await readback()

    n_dump_beats = sum(spec.tiles(k) for k in range(1, spec.n_layers + 1))
    df = spec.dump_fields()
    segments = []
    for seg in job["segments"]:
        r = seg["regs"]
        for a, v in seg.get("mem_regs", []):  # ternary memory registers (and REG_SEED)
            await regs.write(a, v)
        if seg.get("program"):
            progress["where"] = f"segment {len(segments)}: programming"
            image = job["program_words"]
            await wcmd.send(pack_fields(wf, {"data": w, "addr": a, "write": 1}) for a, w in enumerate(image))
        await regs.write(REG_CTRL, int(r["train"]) | (int(r["symmetric"]) << 1) | (int(r["dump"]) << 2)
                         | (int(r.get("random_sign", False)) << 3))
        if seg.get("reseed") is not None:
            await regs.write(REG_SEED, seg["reseed"])
        await regs.write(REG_T1, r["T1"])
        await regs.write(REG_T2, r["T2"])
        await regs.write(REG_BETA_SHIFT, r["beta_shift"])
        await regs.write(REG_LR_SHIFT, r["lr_shift"])
        n_phases = (1 + (1 + int(r["symmetric"])) * int(r["train"])) if r["dump"] else 0
        xs, ys = seg["samples"], seg["labels"]
        res = {"preds": [], "dumps": [], "readbacks": [], "cycles": []}
        per_sample = seg.get("readback_each") or seg.get("cycles_each")
        if per_sample:
            for n, (x, y) in enumerate(zip(xs, ys, strict=True)):
                progress["where"] = f"segment {len(segments)} sample {n}"
                dtask = cocotb.start_soon(dump.recv(n_phases * n_dump_beats)) if n_phases else None
                otask = cocotb.start_soon(out.recv(1))
                await inp.send(sample_beats(spec, x, y))
                res["preds"].append(unpack_fields(spec.output_fields(), (await otask)[0])["pred"])
                if dtask is not None:
                    res["dumps"].append([unpack_fields(df, w) for w in await dtask])
                if seg.get("cycles_each"):
                    res["cycles"].append(await regs.read(REG_CYCLES))
                if seg.get("readback_each"):
                    res["readbacks"].append(await readback())
        else:
            # whole streams from few coroutines: predictions (and dumps) are collected concurrently
            progress["where"] = f"segment {len(segments)} streaming {len(xs)} samples"
            dtask = cocotb.start_soon(dump.recv(n_phases * n_dump_beats * len(xs))) if n_phases else None
            otask = cocotb.start_soon(out.recv(len(xs)))
            beats = [b for x, y in zip(xs, ys, strict=True) for b in sample_beats(spec, x, y)]
            await inp.send(beats)
            res["preds"] = [unpack_fields(spec.output_fields(), w)["pred"] for w in await otask]
            if dtask is not None:
                flat = [unpack_fields(df, w) for w in await dtask]
                k = n_phases * n_dump_beats
                res["dumps"] = [flat[i:i + k] for i in range(0, len(flat), k)]
            res["cycles"].append(await regs.read(REG_CYCLES))
        if spec.weight_kind == "ternary":
            res["mem_counters"] = [await regs.read(a) for a in (REG_TINJECTED, REG_TILLEGAL, REG_TREADS)]
        segments.append(res)
    await RisingEdge(dut.clk)
    result["segments"] = segments
    result["wall_s"] = time.time() - t0
    result["sim_time_ns"] = get_sim_time(unit="ns")
    save_result(result)
