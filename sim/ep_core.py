"""EP core on generated Verilog (cocotb, Icarus or Verilator) against its twin, compared with ``==``.

:func:`run_ep_core` builds the Verilog for a spec (optionally with weights baked in), runs the bench
(:mod:`sim.ep_core_bench`) on the chosen simulator, and :func:`compare_with_twin` replays the same
job on :class:`golden.ep_core.EPCoreTwin` and returns every mismatch (predictions, states after
every phase, weights and biases after every training step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.ep_core import EPCoreTwin, Registers, pack_memory, unpack_memory
from spec.ep_core import REG_SEED, REG_TILLEGAL, REG_TINJECTED, REG_TREADS, EPCoreSpec

from .runner import run_cocotb, verilog_of

TERNARY_COUNTERS = (REG_TINJECTED, REG_TILLEGAL, REG_TREADS)  # read back after every ternary segment


@dataclass
class Segment:
    """Samples run with one register setting."""

    regs: Registers
    x: np.ndarray  # (n, N0) ints
    y: np.ndarray  # (n,) ints
    readback_each: bool = False  # read the whole weight memory back after every sample
    cycles_each: bool = False
    reseed: int | None = None  # write REG_SEED with this value before the segment (cores with a PRNG)
    # ternary cores: register writes (core address, value; e.g. REG_TCTRL, REG_SEED) first, then
    # optionally the image loaded again through the weight port (static faults are drawn then)
    mem_regs: list[tuple[int, int]] = field(default_factory=list)
    program: bool = False


@dataclass
class Report:
    simulator: str
    samples: int = 0
    training_steps: int = 0
    compared: dict = field(default_factory=lambda: {"preds": 0, "phase_states": 0, "weight_arrays": 0})
    mismatches: list[str] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)
    wall_s: float = 0.0


def _regs_dict(r: Registers) -> dict:
    return {k: getattr(r, k) for k in ("train", "symmetric", "dump", "random_sign", "T1", "T2", "beta_shift",
                                       "lr_shift")}


def run_ep_core(spec: EPCoreSpec, weights: dict[str, np.ndarray], segments: list[Segment], simulator: str, *,
                build_root: Path | None = None, bake_weights: bool = False, seed: int = 1, idle_prob: float = 0.0,
                stall_prob: float = 0.0, readback_initial: bool = True, timeout_ns: int | None = None,
                verilog_style: str = "amaranth", core_kw: dict | None = None) -> dict:
    """Run the generated Verilog; returns the bench's raw result (``core_kw``: options of the
    :class:`hdl.ep_core.EPCore` generator, e.g. ``weight_read_stages``)."""
    from hdl.ep_core import EPCore

    words = pack_memory(spec, weights)
    core = EPCore(spec, init_words=words if bake_weights else None, **(core_kw or {}))
    verilog = verilog_of(core, "ep_core", verilog_style)
    job = {"spec": spec.to_dict(), "words": None if bake_weights else words, "seed": seed, "idle_prob": idle_prob,
           "program_words": words if any(s.program for s in segments) else None,
           "timeout_ns": timeout_ns,
           "stall_prob": stall_prob, "readback_initial": readback_initial,
           "segments": [{"regs": _regs_dict(s.regs), "samples": np.asarray(s.x).tolist(),
                         "labels": [int(v) for v in s.y], "readback_each": s.readback_each,
                         "cycles_each": s.cycles_each, "reseed": s.reseed,
                         "mem_regs": [list(map(int, a)) for a in s.mem_regs], "program": s.program}
                        for s in segments]}
    return run_cocotb(verilog, "ep_core", "sim.ep_core_bench", simulator, build_root, job=job, seed=seed)


def _dump_states(spec: EPCoreSpec, beats: list[dict], phase: int) -> list[list[int]]:
    per_layer = {k: {} for k in range(1, spec.n_layers + 1)}
    for b in beats:
        if b["phase"] == phase:
            per_layer[b["layer"]][b["tile"]] = [b[f"states[{i}]"] for i in range(spec.lanes)]
    out = []
    for k in range(1, spec.n_layers + 1):
        vals = []
        for t in range(spec.tiles(k)):
            vals += per_layer[k].get(t, [None] * spec.lanes)
        out.append(vals[:spec.layers[k]])
    return out


def compare_with_twin(spec: EPCoreSpec, weights: dict[str, np.ndarray], segments: list[Segment], result: dict,
                      simulator: str, max_report: int = 20) -> Report:
    """Replay the job on the twin and collect every difference (exact equality)."""
    rep = Report(simulator, wall_s=result.get("wall_s", 0.0))
    words = pack_memory(spec, weights)
    ternary = spec.weight_kind == "ternary"
    if ternary and result.get("loaded_words"):
        twin = EPCoreTwin(spec)  # loading through the port programs the ternary memory (one draw per word)
        twin.program(0, words)
    else:
        twin = EPCoreTwin(spec, weights)

    def bad(msg):
        if len(rep.mismatches) < max_report:
            rep.mismatches.append(msg)
        else:
            rep.mismatches.append("…")

    if result["spec_id"] != spec.spec_id:
        bad(f"SPEC_ID register {result['spec_id']:#x} != {spec.spec_id:#x}")
    if "readback_initial" in result and result["readback_initial"] != pack_memory(spec, weights):
        bad("initial weight read-back differs from the loaded image")
    for si, (seg, res) in enumerate(zip(segments, result["segments"], strict=True)):
        rep.cycles += res.get("cycles", [])
        for a, v in seg.mem_regs:
            if a == REG_SEED:
                twin.reseed(v)
            else:
                twin.write_memory_reg(a, v)
        if seg.program:
            twin.program(0, words)
        if seg.reseed is not None:
            twin.reseed(seg.reseed)
        x = np.asarray(seg.x)
        if not seg.regs.train:
            preds, free = twin.infer(x, seg.regs)
            for i, p in enumerate(res["preds"]):
                rep.compared["preds"] += 1
                if p != preds[i]:
                    bad(f"segment {si} sample {i}: prediction {p} != twin {preds[i]}")
                if seg.regs.dump:
                    rep.compared["phase_states"] += 1
                    if _dump_states(spec, res["dumps"][i], 0) != [f[i].tolist() for f in free]:
                        bad(f"segment {si} sample {i}: free-phase states differ")
            rep.samples += len(res["preds"])
            _check_counters(twin, res, si, bad)
            continue
        for i, p in enumerate(res["preds"]):
            rec = twin.train_sample(x[i], int(seg.y[i]), seg.regs)
            rep.samples += 1
            rep.training_steps += 1
            rep.compared["preds"] += 1
            if p != rec.pred:
                bad(f"segment {si} training sample {i}: prediction {p} != twin {rec.pred}")
            if seg.regs.dump:
                for ph, states in rec.phases.items():
                    rep.compared["phase_states"] += 1
                    if _dump_states(spec, res["dumps"][i], ph) != [s[0].tolist() for s in states]:
                        bad(f"segment {si} training sample {i}: states after phase {ph} differ")
            if seg.readback_each:
                got = unpack_memory(spec, res["readbacks"][i])
                for k in got:
                    rep.compared["weight_arrays"] += 1
                    if not np.array_equal(got[k], twin.weights[k]):
                        n = int((got[k] != twin.weights[k]).sum())
                        bad(f"segment {si} training sample {i}: {k} differs in {n} elements after the update")
        _check_counters(twin, res, si, bad)
    return rep


def _check_counters(twin: EPCoreTwin, res: dict, si: int, bad) -> None:
    """A ternary core's memory counters after a segment (injected faults, illegal cells, PCSA reads)."""
    if twin.memory is not None:
        want = [twin.read_memory_reg(a) for a in TERNARY_COUNTERS]
        if res.get("mem_counters") != want:
            bad(f"segment {si}: ternary memory counters {res.get('mem_counters')} != twin {want}")
