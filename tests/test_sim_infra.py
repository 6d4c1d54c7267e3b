"""The simulation infrastructure (sim.runner, sim.streams) proven on a toy stream accelerator.

:class:`ToyAccel` is shaped like the real cores: it takes 16-bit beats on ``inp``, keeps
``inp.ready`` low while it "computes" for a data-dependent number of cycles, and sends a struct
``{value, tag}`` on ``out``; a four-register file on ``reg`` adds an offset and extra busy cycles.
:func:`toy_model` is its Python model, compared with ``==``:

* the Amaranth simulator (the fast tier) runs it with and without back-pressure, and
* its generated Verilog runs on Icarus and Verilator through :func:`sim.runner.run_cocotb` with the
  bench :mod:`sim._toy_bench`, with and without random idle cycles and stalls.

Without idle cycles or stalls both must also hit the exact cycle count of the model: the drivers
lose no cycle.

Speed figures for docs/sim.md (opt-in, prints, asserts nothing)::

    .venv/bin/python tests/test_sim_infra.py            # ~200 k cycles per run
    .venv/bin/python tests/test_sim_infra.py --cycles 1000000
"""

import random
import time
from pathlib import Path

import pytest
from amaranth import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from sim import _toy_bench
from sim.runner import SimulationError, build, run_cocotb, sim_available, verilog_of

REG_OFFSET, REG_EXTRA, REG_BEATS, REG_ID = 0, 1, 2, 3
TOY_ID = 0x7A11
OUT_LAYOUT = data.StructLayout({"value": 16, "tag": 4})
OUT_FIELDS = [("value", 16), ("tag", 4)]  # the same, as the field list the bench unpacks with
REG_SIGNATURE = wiring.Signature({"addr": Out(2), "wdata": Out(16), "we": Out(1), "rdata": In(16)})


class ToyAccel(wiring.Component):
    """A stream accelerator in miniature: ``out.value = (3·x + 1 + OFFSET) mod 2^16``.

    After accepting ``x`` it is busy for ``x % 37 + 5 + EXTRA`` cycles with ``inp.ready`` low, then
    offers the result until it is taken; so one beat takes ``x % 37 + 5 + EXTRA + 2`` cycles when
    nothing stalls.

    Members
    -------
    inp : In(stream.Signature(16))
    out : Out(stream.Signature(OUT_LAYOUT))
        ``tag`` is the beat's index modulo 16.
    reg : In(REG_SIGNATURE)
        0: OFFSET, 1: EXTRA (read/write); 2: beats sent (mod 2^16), 3: ID (read-only).
        ``rdata`` is a combinational read of ``addr``.
    """

    inp: In(stream.Signature(16))
    out: Out(stream.Signature(OUT_LAYOUT))
    reg: In(REG_SIGNATURE)

    def elaborate(self, platform):
        m = Module()
        offset, extra, beats = Signal(16), Signal(16), Signal(16)
        x, busy = Signal(16), Signal(17)
        result = Signal(OUT_LAYOUT)

        with m.If(self.reg.we):
            with m.Switch(self.reg.addr):
                with m.Case(REG_OFFSET):
                    m.d.sync += offset.eq(self.reg.wdata)
                with m.Case(REG_EXTRA):
                    m.d.sync += extra.eq(self.reg.wdata)
        with m.Switch(self.reg.addr):
            with m.Case(REG_OFFSET):
                m.d.comb += self.reg.rdata.eq(offset)
            with m.Case(REG_EXTRA):
                m.d.comb += self.reg.rdata.eq(extra)
            with m.Case(REG_BEATS):
                m.d.comb += self.reg.rdata.eq(beats)
            with m.Case(REG_ID):
                m.d.comb += self.reg.rdata.eq(TOY_ID)

        m.d.comb += self.out.payload.eq(result)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.inp.ready.eq(1)
                with m.If(self.inp.valid):
                    m.d.sync += [x.eq(self.inp.payload), busy.eq(self.inp.payload % 37 + 4 + extra)]
                    m.next = "BUSY"
            with m.State("BUSY"):
                with m.If(busy == 0):
                    m.d.sync += [result.value.eq(x * 3 + 1 + offset), result.tag.eq(beats[:4])]
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += busy.eq(busy - 1)
            with m.State("DONE"):
                m.d.comb += self.out.valid.eq(1)
                with m.If(self.out.ready):
                    m.d.sync += beats.eq(beats + 1)
                    m.next = "IDLE"
        return m


def toy_model(inputs: list[int], offset: int, extra: int) -> tuple[list[int], int]:
    """Outputs, and the cycles from the first beat offered to the last taken with no stalls."""
    outs = [(3 * x + 1 + offset) & 0xFFFF for x in inputs]
    return outs, sum(x % 37 + 5 + extra + 2 for x in inputs)


def toy_inputs(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    edge = [0, 1, 36, 37, 0x7FFF, 0xFFFF]
    return edge + [rng.randrange(1 << 16) for _ in range(n - len(edge))]


# ------------------------------------------------------------------------------ Amaranth simulator
def run_amaranth(inputs: list[int], offset: int, extra: int, *, seed: int = 0, idle_prob: float = 0.0,
                 stall_prob: float = 0.0) -> dict:
    dut = ToyAccel()
    res: dict = {}

    async def source(ctx):
        rng = random.Random(seed)
        t = 0
        for addr, value in ((REG_OFFSET, offset), (REG_EXTRA, extra)):
            ctx.set(dut.reg.addr, addr)
            ctx.set(dut.reg.wdata, value)
            ctx.set(dut.reg.we, 1)
            await ctx.tick()
            t += 1
        ctx.set(dut.reg.we, 0)
        res["regs_before"] = []
        for addr in range(4):
            ctx.set(dut.reg.addr, addr)
            res["regs_before"].append(ctx.get(dut.reg.rdata))
        res["t0"] = t
        for x in inputs:
            while rng.random() < idle_prob:
                ctx.set(dut.inp.valid, 0)
                await ctx.tick()
            ctx.set(dut.inp.payload, x)
            ctx.set(dut.inp.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.inp.ready)
                if ready:
                    break
        ctx.set(dut.inp.valid, 0)

    async def sink(ctx):
        rng = random.Random(seed + 1)
        out, t = [], 0
        while len(out) < len(inputs):
            stall = rng.random() < stall_prob
            ctx.set(dut.out.ready, not stall)
            _, _, valid, payload = await ctx.tick().sample(dut.out.valid, dut.out.payload)
            t += 1
            if valid and not stall:
                out.append({"value": payload.value, "tag": payload.tag})
        ctx.set(dut.out.ready, 0)
        ctx.set(dut.reg.addr, REG_BEATS)
        res["beats"] = ctx.get(dut.reg.rdata)
        res["outputs"] = [o["value"] for o in out]
        res["tags"] = [o["tag"] for o in out]
        res["t_end"] = t

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    res["cycles"] = res["t_end"] - res["t0"]
    return res


@pytest.mark.parametrize("idle_prob,stall_prob", [(0.0, 0.0), (0.3, 0.3)], ids=["no-stalls", "stalls"])
def test_toy_amaranth(idle_prob, stall_prob):
    inputs, offset, extra = toy_inputs(60, seed=1), 0x1234, 3
    res = run_amaranth(inputs, offset, extra, seed=5, idle_prob=idle_prob, stall_prob=stall_prob)
    want, cycles = toy_model(inputs, offset, extra)
    assert res["outputs"] == want
    assert res["tags"] == [i % 16 for i in range(len(inputs))]
    assert res["regs_before"] == [offset, extra, 0, TOY_ID]
    assert res["beats"] == len(inputs)
    if idle_prob == stall_prob == 0:
        assert res["cycles"] == cycles
    else:
        assert res["cycles"] > cycles


def test_bench_mirrors_toy():
    assert (_toy_bench.REG_OFFSET, _toy_bench.REG_EXTRA, _toy_bench.REG_BEATS, _toy_bench.REG_ID) == (
        REG_OFFSET, REG_EXTRA, REG_BEATS, REG_ID)
    assert _toy_bench.OUT_FIELDS == OUT_FIELDS
    assert [(name, Shape.cast(f.shape).width) for name, f in OUT_LAYOUT] == OUT_FIELDS


def test_verilog_ports():
    v = verilog_of(ToyAccel(), "toy")
    for port in ("clk", "rst", "inp__valid", "inp__ready", "inp__payload", "out__payload", "reg__addr",
                 "reg__rdata"):
        assert f" {port}" in v, port
    assert "module toy(" in v


# ------------------------------------------------------------------------------------------ cocotb
needs = {s: pytest.mark.skipif(not sim_available(s), reason=f"{s} is not installed") for s in ("icarus", "verilator")}
SIMS = [pytest.param(s, marks=[needs[s], pytest.mark.cocotb]) for s in ("icarus", "verilator")]


@pytest.fixture(scope="module")
def toy_verilog() -> str:
    return verilog_of(ToyAccel(), "toy")


@pytest.mark.parametrize("idle_prob,stall_prob", [(0.0, 0.0), (0.3, 0.3)], ids=["no-stalls", "stalls"])
@pytest.mark.parametrize("simulator", SIMS)
def test_toy_cocotb(toy_verilog, simulator, idle_prob, stall_prob):
    inputs, offset, extra = toy_inputs(300, seed=2), 0xBEEF, 0
    job = {"inputs": inputs, "offset": offset, "extra": extra, "seed": 11, "idle_prob": idle_prob,
           "stall_prob": stall_prob}
    res = run_cocotb(toy_verilog, "toy", "sim._toy_bench", simulator, job=job, timeout_s=240)
    want, cycles = toy_model(inputs, offset, extra)
    assert res["outputs"] == want
    assert res["tags"] == [i % 16 for i in range(len(inputs))]
    assert res["regs_before"] == [offset, extra, 0, TOY_ID]
    assert res["regs_after"] == [offset, extra, len(inputs), TOY_ID]
    if idle_prob == stall_prob == 0:
        assert res["cycles"] == cycles
    else:
        assert res["cycles"] > cycles


@pytest.mark.cocotb
@pytest.mark.skipif(not (sim_available("icarus") and sim_available("verilator")), reason="needs both simulators")
def test_simulators_agree_cycle_for_cycle(toy_verilog):
    """Same seeds, same stalls: the drivers must see identical handshakes on both engines."""
    job = {"inputs": toy_inputs(80, seed=4), "offset": 7, "extra": 2, "seed": 3, "idle_prob": 0.4,
           "stall_prob": 0.5}
    a, b = (run_cocotb(toy_verilog, "toy", "sim._toy_bench", s, job=job) for s in ("icarus", "verilator"))
    assert a["outputs"] == b["outputs"] == toy_model(job["inputs"], 7, 2)[0]
    assert a["cycles"] == b["cycles"]


# ----------------------------------------------------------------------------- runner behaviour
icarus = pytest.mark.parametrize("simulator", [SIMS[0]])


@icarus
@pytest.mark.parametrize("job,match", [
    ({"fail": "deliberate failure 42"}, "deliberate failure 42"),
    ({"no_result": True}, "wrote no result"),
], ids=["bench-fails", "no-result"])
def test_failures_raise(toy_verilog, tmp_path, simulator, job, match):
    with pytest.raises(SimulationError, match=match):
        run_cocotb(toy_verilog, "toy", "sim._toy_bench", simulator, tmp_path, job=job, waves=False)


@icarus
def test_timeout_raises(toy_verilog, tmp_path, simulator):
    t = time.monotonic()
    with pytest.raises(SimulationError, match="timed out after 3 s"):
        run_cocotb(toy_verilog, "toy", "sim._toy_bench", simulator, tmp_path, job={"hang": True}, timeout_s=3)
    assert time.monotonic() - t < 30


@icarus
def test_build_cache(toy_verilog, tmp_path, simulator):
    first = build(toy_verilog, "toy", simulator, tmp_path)
    stamp = (first / ".built").stat().st_mtime_ns
    assert build(toy_verilog, "toy", simulator, tmp_path) == first
    assert (first / ".built").stat().st_mtime_ns == stamp
    other = build(toy_verilog.replace("toy", "toy2"), "toy2", simulator, tmp_path)
    assert other != first and other.parent == first.parent


@icarus
def test_waves(toy_verilog, tmp_path, simulator, monkeypatch):
    monkeypatch.setenv("WAVES", "1")
    job = {"inputs": [1, 2, 3]}
    res = run_cocotb(toy_verilog, "toy", "sim._toy_bench", simulator, tmp_path, job=job)
    assert res["outputs"] == toy_model([1, 2, 3], 0, 0)[0]
    assert Path(res["waves"]).stat().st_size > 0


def test_bad_arguments(toy_verilog):
    with pytest.raises(ValueError, match=r"simulator must be one of \('icarus', 'verilator'\), not 'ghdl'"):
        sim_available("ghdl")
    with pytest.raises(ValueError, match="simulator must be one of"):
        run_cocotb(toy_verilog, "toy", "sim._toy_bench", "ghdl")
    with pytest.raises(ValueError, match="timeout_s must be a positive number of seconds, not 0"):
        run_cocotb(toy_verilog, "toy", "sim._toy_bench", "icarus", timeout_s=0)


# ------------------------------------------------------------------------- speed (opt-in script)
def measure_speed(cycles: int = 200_000, beats: int = 20) -> list[dict]:
    """Icarus vs Verilator on a long run: the event-driven drivers with the C (``gpi``) or Python
    clock, and a bench that wakes Python every cycle (``poll``)."""
    verilog = verilog_of(ToyAccel(), "toy")
    inputs = toy_inputs(beats, seed=3)
    extra = max(0, cycles // beats - 7 - 18)
    rows = []
    for simulator in ("icarus", "verilator"):
        if not sim_available(simulator):
            continue
        t = time.monotonic()
        build(verilog, "toy", simulator)
        build_s = time.monotonic() - t
        for mode, clock in (("stream", "gpi"), ("stream", "py"), ("poll", "gpi")):
            t = time.monotonic()
            res = run_cocotb(verilog, "toy", "sim._toy_bench", simulator,
                             job={"inputs": inputs, "extra": extra, "mode": mode, "clock_impl": clock})
            total = time.monotonic() - t
            assert res["outputs"] == toy_model(inputs, 0, extra)[0]
            rows.append({"simulator": simulator, "mode": mode, "clock": clock, "cycles": res["cycles"],
                         "build_s": build_s, "run_s": res["wall_s"], "total_s": total,
                         "cycles_per_s": res["cycles"] / res["wall_s"]})
    return rows


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=200_000)
    args = ap.parse_args()
    print("| simulator | bench | clock | cycles | build s (cached) | streaming s | whole call s | cycles/s |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in measure_speed(args.cycles):
        print(f"| {r['simulator']} | {r['mode']} | {r['clock']} | {r['cycles']} | {r['build_s']:.2f} | "
              f"{r['run_s']:.2f} | {r['total_s']:.2f} | {r['cycles_per_s']:,.0f} |")


def test_netlist_verilog_style_has_no_processes_and_refuses_unknown_styles():
    """verilog_of(style="netlist"): continuous assignments and clocked registers only (no always @*)."""
    from hdl.ternary_mem import TernaryWeightMemory
    from sim.runner import verilog_of
    from spec.ternary import TernaryMemorySpec

    mem = TernaryWeightMemory(TernaryMemorySpec(lanes=2, depth=8, fault_injection=True))
    assert "always @*" in verilog_of(mem, "tm")
    text = verilog_of(mem, "tm", "netlist")
    assert "module tm(" in text and "always @*" not in text
    with pytest.raises(ValueError, match="style must be one of"):
        verilog_of(mem, "tm", "fast")
