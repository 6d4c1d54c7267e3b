"""The EP core's throughput at its synthesised Fmax, beside the golden model on this CPU.

For each synthesis report given (``python -m boards synth … --out DIR`` → ``DIR/synth.json``), this
bench takes the spec the core was built from and

* measures the core's cycles per sample in simulation (inference, and training when the core has
  it: the spec's T1, T2 and estimator), plus the ceil(N0/P) input beats that stream the pixels in;
* reads the Fmax nextpnr reported for the core's clock and turns cycles into samples/s at that
  Fmax (and at the clock the bitstream was actually built for);
* the bound the build's multipliers set: ``DSPs × Fmax / multiplies`` samples/s, with DSPs the
  MULT18X18D (ICESTORM_DSP) the build used and the multiplies per sample from the spec's schedule
  (``EPCoreSpec.multiplies``: every product of two non-constant operands, padding lanes not counted),
  and the core's samples/s as a fraction of it;
* times the float golden model (``golden.ep``, float32, hard-sigmoid, the same layer sizes, T1, T2,
  estimator and β) on this CPU at batch 1 (what the core does: one sample at a time) and at each of
  ``--golden-batches`` (default 1 16 50 256), and reports batch 1 and the best batch side by side.

Writes JSON (atomically) and a readable markdown table.

    python bench/ep_core_report.py --synth /path/to/synth-dir [--synth other-dir …]
    python bench/ep_core_report.py --synth DIR --golden-samples 2000 --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def load_synth(path: Path) -> dict[str, Any]:
    p = path / "synth.json" if path.is_dir() else path
    if not p.is_file():
        raise FileNotFoundError(f"--synth: no synthesis report at {p} (run 'python -m boards synth ... --out DIR')")
    r = json.loads(p.read_text())
    if r.get("format") != "epforge-synth-report/1" or r.get("design") != "ep":
        raise ValueError(f"--synth: {p} is not a synthesis report of the real EP core (design {r.get('design')!r})")
    r["_path"] = str(p)
    return r


def core_fmax(r: dict[str, Any]) -> float:
    """The lowest Fmax over the report's clocks (the top has one clock domain)."""
    return min(f["mhz"] for f in r["fmax"].values())


DSP_RESOURCES = ("MULT18X18D", "ICESTORM_DSP")  # the multiplier primitives of the ECP5 and the iCE40 reports


def build_dsps(r: dict[str, Any]) -> int | None:
    """Multiplier primitives the build used (``None`` when the report lists none of them)."""
    found = [r["resources"][k]["used"] for k in DSP_RESOURCES if k in r.get("resources", {})]
    return sum(found) if found else None


def dsp_bound(spec, training: bool, dsps: int | None, fmax_mhz: float) -> dict[str, Any]:
    """Samples/s the build's multipliers allow at ``fmax_mhz``: ``dsps × Fmax / multiplies per sample``
    (``None`` without multipliers: a ternary inference core adds and subtracts)."""
    mul = spec.multiplies(training)
    bound = dsps * fmax_mhz * 1e6 / mul["total"] if dsps else None
    return {"multiplies_per_sample": mul["total"], "multiplies": mul, "dsps": dsps, "samples_per_s": bound}


def best_golden(golden: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest of the timed golden batches (``None`` if none was timed)."""
    return max(golden.values(), key=lambda g: g["samples_per_s"], default=None)


def golden_speed(spec, mode: str, batch: int, samples: int, threads: int, seed: int = 0) -> dict[str, Any]:
    """Float golden samples/s for ``spec``'s network (random data: the timing does not depend on it)."""
    import torch

    from golden.ep import EPNet, NetSpec
    from golden.ep.estimators import EPSchedule, ep_step

    torch.set_num_threads(threads)
    net_spec = NetSpec(kind="mlp", layers=tuple(spec.layers), activation="hard_sigmoid", loss="mse")
    net = EPNet(net_spec, dtype=torch.float32, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    n = max(batch, samples // batch * batch)
    x = torch.rand(n, spec.layers[0], generator=gen)
    y = torch.randint(0, spec.layers[-1], (n,), generator=gen)
    beta = 2.0 ** -spec.beta_shift
    sched = EPSchedule(T1=spec.T1, T2=spec.T2, beta=beta, estimator=spec.estimator)

    def one(i):
        xb, yb = x[i:i + batch], y[i:i + batch]
        if mode == "inference":
            with torch.no_grad():
                net.relax(net.clamp(xb), net.init_state(len(xb)), spec.T1)
        else:
            ep_step(net, xb, yb, sched, gen)

    for i in range(0, min(n, 5 * batch), batch):  # warm-up
        one(i)
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        one(i)
    sec = time.perf_counter() - t0
    return {"batch": batch, "samples": n, "seconds": sec, "samples_per_s": n / sec}


def run(args: argparse.Namespace, log=print) -> dict[str, Any]:
    from ep_core_cycles import measure_spec

    from spec.ep_core import EPCoreSpec

    rows = []
    for path in args.synth:
        r = load_synth(Path(path))
        spec = EPCoreSpec.from_dict(r["spec"])
        fmax = core_fmax(r)
        dsps = build_dsps(r)
        modes = ["inference"] + (["training"] if spec.training else [])
        row = {"synth": r["_path"], "board": r["board"], "device": r["device"], "spec": r["spec"],
               "spec_digest": r["spec_digest"], "clock_mhz": r["clock_mhz"], "fmax_mhz": fmax,
               "timing_met_at_clock": all(f["pass"] for f in r["fmax"].values()),
               "resources": {k: r["resources"][k] for k in ("LUT4", "DFF", "TRELLIS_FF", "DP16KD", "MULT18X18D",
                                                            "ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_SPRAM",
                                                            "ICESTORM_DSP") if k in r["resources"]},
               "modes": {}}
        for mode in modes:
            log(f"{r['board']} {'-'.join(map(str, spec.layers))} P={spec.lanes}: simulating one {mode} sample …")
            # the core as it was built (its memory read stage and weight read stages, from synth.json)
            c = measure_spec(spec, mode == "training", r.get("register_reads") is not False,
                             r.get("weight_read_stages") or 0)
            per_sample = c["cycles"] + c["input_beats"]
            entry = {"cycles": c["cycles"], "input_beats": c["input_beats"], "cycles_per_sample": per_sample,
                     "roofline_cycles": c["roofline_cycles"], "ratio_to_roofline": c["ratio"],
                     "samples_per_s_at_fmax": fmax * 1e6 / per_sample,
                     "samples_per_s_at_clock": r["clock_mhz"] * 1e6 / per_sample if row["timing_met_at_clock"]
                     else None,
                     "golden_cpu": {}}
            bound = dsp_bound(spec, mode == "training", dsps, fmax)
            entry["dsp_bound"] = bound
            entry["ratio_to_dsp_bound"] = (entry["samples_per_s_at_fmax"] / bound["samples_per_s"]
                                           if bound["samples_per_s"] else None)
            if not args.skip_golden:
                for b in args.golden_batches:
                    g = golden_speed(spec, mode, b, args.golden_samples, args.threads)
                    entry["golden_cpu"][f"batch{b}"] = g
                    log(f"  golden float32 {mode} batch {b}: {g['samples_per_s']:.1f} samples/s")
            best = best_golden(entry["golden_cpu"])
            entry["golden_cpu_batch1"] = entry["golden_cpu"].get("batch1")
            entry["golden_cpu_best"] = best
            row["modes"][mode] = entry
            log(f"  {mode}: {per_sample} cycles/sample → {entry['samples_per_s_at_fmax']:.0f} samples/s at "
                f"{fmax:.2f} MHz")
        rows.append(row)
    import os
    import platform

    import torch
    return {"bench": "ep_core_report", "rows": rows,
            "golden_cpu_note": f"golden.ep float32 MLP (hard_sigmoid, MSE), same layers/T1/T2/estimator/β, "
                               f"{args.threads} threads; inference = free phase of T1 steps, training = ep_step "
                               "(free + nudged phases + update); random inputs (speed does not depend on them)",
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                        "loadavg_at_end": list(os.getloadavg())}}


def format_table(result: dict[str, Any]) -> str:
    lines = ["| core | board | Fmax (MHz) | mode | cycles/sample | ×roofline | samples/s at Fmax | DSPs | "
             "DSP bound (samples/s) | × DSP bound | golden CPU batch 1 | golden CPU best (batch) |",
             "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in result["rows"]:
        s = row["spec"]
        name = f"{'-'.join(map(str, s['layers']))} P{s['lanes']} w{'/'.join(map(str, s['weight_bits']))}"
        for mode, e in row["modes"].items():
            b, g1, gb = e["dsp_bound"], e.get("golden_cpu_batch1"), e.get("golden_cpu_best")
            best = f"{gb['samples_per_s']:.0f} (b{gb['batch']})" if gb else "—"
            lines.append(
                f"| {name} | {row['board']} | {row['fmax_mhz']:.2f} | {mode} | {e['cycles_per_sample']} | "
                f"{e['ratio_to_roofline']:.3f} | {e['samples_per_s_at_fmax']:.0f} | {_num(b['dsps'], 'd')} | "
                f"{_num(b['samples_per_s'], '.0f')} | {_num(e['ratio_to_dsp_bound'], '.2f')} | "
                f"{_num(g1 and g1['samples_per_s'], '.0f')} | {best} |")
    return "\n".join(lines)


def _num(v, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synth", nargs="+", required=True, metavar="DIR",
                   help="synthesis output directories (or their synth.json) of 'python -m boards synth --design ep'")
    p.add_argument("--golden-batches", type=int, nargs="+", default=[1, 16, 50, 256], metavar="B",
                   help="batch sizes of the golden CPU timing (default 1 16 50 256; batch 1 is always timed, "
                   "the best is reported beside it)")
    p.add_argument("--golden-samples", type=int, default=1000, metavar="N",
                   help="samples timed per golden configuration (default 1000)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for the golden timing (default 2)")
    p.add_argument("--skip-golden", action="store_true", help="cycles and Fmax only")
    p.add_argument("--json", type=Path, default=REPO / "bench/results/ep_core_report.json",
                   help="JSON output (default bench/results/ep_core_report.json); a .md table is written beside it")
    return p


from golden.clierr import ArgumentParser, cli_main  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("golden_samples", "threads"):
        if getattr(args, name) < 1:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be a positive integer, not {getattr(args, name)}")
    if any(b < 1 for b in args.golden_batches):
        raise SystemExit(f"error: --golden-batches must be positive integers, not {args.golden_batches}")
    args.golden_batches = sorted(set(args.golden_batches) | {1})
    result = run(args)
    table = format_table(result)
    print(table)
    from golden.train import atomic_write_bytes

    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.json, json.dumps(result, indent=2).encode())
    atomic_write_bytes(args.json.with_suffix(".md"), (table + "\n").encode())
    print(f"wrote {args.json} and {args.json.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
