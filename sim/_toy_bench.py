"""cocotb bench of the toy stream accelerator in ``tests/test_sim_infra.py`` (runs in the simulator).

It proves the infrastructure (:mod:`sim.runner`, :mod:`sim.streams`) on a DUT shaped like the real
accelerators: a stream in, a long data-dependent ``ready``-low computation, a struct stream out and
a register port. Like every bench here it does not judge: it writes what the hardware produced and
the Python side compares that with a model using ``==``.

Job keys: ``inputs`` (16-bit ints), ``offset``, ``extra`` (register values), ``seed``,
``idle_prob``, ``stall_prob``, ``period_ns``, ``clock_impl`` (``"gpi"`` or ``"py"``); ``mode``:
``"stream"`` (the event-driven drivers) or ``"poll"`` (a naive bench that wakes Python every
cycle, the speed baseline); for the runner's own tests: ``fail`` (a message to fail with),
``no_result``, ``hang``.

Result keys: ``outputs``, ``tags``, ``cycles`` (rising edges from the first beat offered to the
last beat taken), ``regs_before``/``regs_after`` (the four registers), ``wall_s`` and
``sim_ns`` of the streaming part.
"""

from __future__ import annotations

import time

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, ReadOnly, RisingEdge

from sim.runner import load_job, save_result
from sim.streams import RegPort, StreamSink, StreamSource, reset, start_clock, unpack_fields

# Mirrors of the toy's constants (tests/test_sim_infra.py checks they agree).
REG_OFFSET, REG_EXTRA, REG_BEATS, REG_ID = 0, 1, 2, 3
OUT_FIELDS = [("value", 16), ("tag", 4)]


async def _poll_send(dut, words: list[int]) -> None:
    """Per-cycle source: the pattern the event-driven driver avoids (speed baseline only)."""
    for w in words:
        dut.inp__payload.value = w
        dut.inp__valid.value = 1
        while True:
            await ReadOnly()
            ok = dut.inp__ready.value == 1
            await RisingEdge(dut.clk)
            if ok:
                break
    dut.inp__valid.value = 0


async def _poll_recv(dut, n: int) -> list[int]:
    out: list[int] = []
    dut.out__ready.value = 1
    while len(out) < n:
        await ReadOnly()
        if dut.out__valid.value == 1:
            out.append(int(dut.out__payload.value))
        await RisingEdge(dut.clk)
    dut.out__ready.value = 0
    return out


@cocotb.test()
async def toy(dut):
    job = load_job()
    period = int(job.get("period_ns", 10))
    seed = int(job.get("seed", 0))
    inputs = [int(v) for v in job.get("inputs", [])]
    start_clock(dut.clk, period, impl=job.get("clock_impl", "gpi"))
    await reset(dut)
    regs = RegPort(dut)
    await regs.write(REG_OFFSET, int(job.get("offset", 0)))
    await regs.write(REG_EXTRA, int(job.get("extra", 0)))
    regs_before = [await regs.read(a) for a in range(4)]
    if job.get("fail"):
        raise AssertionError(job["fail"])
    if job.get("hang"):
        await Event().wait()  # never set; the clock keeps the simulator going

    t0, w0 = get_sim_time(unit="ns"), time.perf_counter()
    if job.get("mode", "stream") == "poll":
        rx = cocotb.start_soon(_poll_recv(dut, len(inputs)))
        await _poll_send(dut, inputs)
        words = await rx
    else:
        src = StreamSource(dut, "inp", seed=seed, idle_prob=float(job.get("idle_prob", 0.0)))
        sink = StreamSink(dut, "out", seed=seed + 1, stall_prob=float(job.get("stall_prob", 0.0)))
        rx = cocotb.start_soon(sink.recv(len(inputs)))
        await src.send(inputs)
        words = await rx
    wall, sim_ns = time.perf_counter() - w0, get_sim_time(unit="ns") - t0
    outs = [unpack_fields(OUT_FIELDS, w) for w in words]
    result = {"outputs": [o["value"] for o in outs], "tags": [o["tag"] for o in outs],
              "cycles": round(sim_ns / period), "regs_before": regs_before,
              "regs_after": [await regs.read(a) for a in range(4)], "wall_s": wall, "sim_ns": sim_ns}
    if not job.get("no_result"):
        save_result(result)
