"""The Galton-board emulator's generated Verilog against its twin at scale, on Icarus and Verilator.

Four runs per simulator on one build (default 8 rows × 2 boards, k = 8, 32-bit xorshift), with
random idle cycles on ``cmd`` and stalls on ``out``/``rsp`` (``--stall``):

1. a field-tuned board (H = 0.5, w = 1), ``--balls`` balls per board streamed on ``out``;
2. a site-edited board with sticky chirality (s = 0.5), ``--balls``/2 balls streamed;
3. after a reseed, ``2·--balls`` balls per board counted in histogram-only mode (full rate);
4. an unlimited run stopped by the host after ``--balls``/5 beats.

Every streamed ball of every board, the ball counter, every threshold and histogram counter read
back are compared with the twin (``==``; mismatches must be 0). The RTL's own histograms are then
chi-square tested against the exact distribution of the thresholds they ran with. Reports wall
time (build excluded) and simulated cycles; JSON to ``--json``.

    .venv/bin/python bench/galton_rtl_check.py                      # 1e5 balls/board, both simulators
    .venv/bin/python bench/galton_rtl_check.py --balls 2000 --simulators icarus   # seconds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def scenario(spec, balls: int):
    import numpy as np

    from golden.domainwall import DomainWallBoard
    from sim.galton import Segment

    n = spec.rows
    off = np.tril(np.random.default_rng(2021).normal(0, 1.0, (n, n)))
    sticky = DomainWallBoard(n, H0=0.0, width=1.0, offsets=off, stickiness=0.5)
    plain = DomainWallBoard(n, H0=0.0, width=1.0)
    thr_plain = plain.thresholds(0.5, spec.prob_bits)
    thr_sticky = sticky.thresholds(-0.3, spec.prob_bits)
    segments = [
        Segment(balls=balls, thresholds=thr_plain, clear=True),
        Segment(balls=max(1, balls // 2), thresholds=thr_sticky, correlated=True, clear=True),
        Segment(balls=2 * balls, seed=0x5EED, hist_only=True, correlated=True, clear=True),
        Segment(stop_after=max(1, balls // 5), clear=True),
    ]
    # (thresholds, correlated) each segment ran with, for the chi-square tests
    used = [(thr_plain, False), (thr_sticky, True), (thr_sticky, True), (thr_sticky, False)]
    return segments, used


from golden.clierr import ArgumentParser, cli_main  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--balls", type=int, default=100_000, help="balls per board of run 1 (default 100000)")
    p.add_argument("--rows", type=int, default=8, help="rows N (default 8)")
    p.add_argument("--boards", type=int, default=2, help="boards B (default 2)")
    p.add_argument("--simulators", nargs="+", default=["verilator", "icarus"], choices=["icarus", "verilator"])
    p.add_argument("--stall", type=float, default=0.2, help="idle/stall probability on every stream (default 0.2)")
    p.add_argument("--seed", type=int, default=1, help="stall seed (default 1)")
    p.add_argument("--json", type=Path, default=REPO / "bench/results/galton_rtl_check.json",
                   help="JSON output (default bench/results/galton_rtl_check.json)")
    args = p.parse_args(argv)
    if args.balls < 5:
        p.error(f"--balls must be at least 5, not {args.balls}")
    import numpy as np

    from golden.domainwall import chi_square_test, threshold_distribution
    from golden.fileio import atomic_write_bytes
    from hdl.galton import GaltonBoard
    from sim.galton import compare_with_twin, decode_balls, run_galton
    from sim.runner import build, verilog_of
    from spec.galton import GaltonSpec

    spec = GaltonSpec(rows=args.rows, boards=args.boards)
    segments, used = scenario(spec, args.balls)
    report = {"bench": "galton_rtl_check", "spec": spec.to_dict(), "spec_digest": spec.digest(),
              "balls": args.balls, "stall_prob": args.stall, "seed": args.seed, "results": {}}
    for sim in args.simulators:
        t0 = time.time()
        build(verilog_of(GaltonBoard(spec), "galton"), "galton", sim)
        build_s = time.time() - t0
        t0 = time.time()
        res = run_galton(spec, segments, sim, seed=args.seed, idle_prob=args.stall, stall_prob=args.stall)
        run_s = time.time() - t0
        rep = compare_with_twin(spec, segments, res, sim)
        chi = []
        for si, (seg, (thr, corr)) in enumerate(zip(segments, used, strict=True)):
            pmf = threshold_distribution(thr, spec.prob_bits, corr)
            if seg.hist_only:  # the RTL's histogram, read back through rsp (== twin, checked above)
                counts = rep.histograms[si].sum(axis=0)
            else:
                counts = np.bincount(decode_balls(spec, res["segments"][si]["balls"]).ravel(),
                                     minlength=spec.n_bins)
            c = chi_square_test(counts, pmf)
            chi.append({"segment": si, "balls": int(counts.sum()), "statistic": c.statistic, "dof": c.dof,
                        "p_value": c.p_value})
        report["results"][sim] = {
            "build_s": build_s, "run_s": run_s, "sim_time_ns": res.get("sim_time_ns"),
            "cycles": int(res["sim_time_ns"] // 10) if res.get("sim_time_ns") else None,
            "balls_compared": rep.balls_compared, "balls_generated_per_board": rep.balls_generated,
            "balls_generated": rep.balls_generated * spec.boards, "words_compared": rep.words_compared,
            "mismatches": rep.mismatches, "chi_square": chi,
        }
        cycles = int(res["sim_time_ns"] // 10) if res.get("sim_time_ns") else 0
        print(f"{sim:9s}: per board {rep.balls_compared // spec.boards} balls streamed on out and "
              f"{rep.balls_generated} generated (all {spec.boards} boards: {rep.balls_compared} streamed bins "
              f"compared ball by ball, {rep.balls_generated * spec.boards} balls in the histograms), "
              f"{rep.words_compared} memory words; {len(rep.mismatches)} mismatches; {cycles} cycles in "
              f"{run_s:.1f} s (build {build_s:.0f} s); chi² p per run: "
              + ", ".join(f"{c['p_value']:.3g}" for c in chi), flush=True)
        for m in rep.mismatches[:5]:
            print(f"    {m}")
    r = report["results"]
    if "icarus" in r and "verilator" in r:
        report["verilator_speedup"] = r["icarus"]["run_s"] / r["verilator"]["run_s"]
        print(f"Verilator vs Icarus on the same runs: {report['verilator_speedup']:.1f}x faster (builds excluded)")
    atomic_write_bytes(args.json, json.dumps(report, indent=2).encode())
    print(f"wrote {args.json}")
    return 1 if any(v["mismatches"] for v in r.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
