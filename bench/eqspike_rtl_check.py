"""The EqSpike core's generated Verilog against its twin at scale, on Icarus and Verilator, with stalls.

1. Inference: ``--images`` MNIST test images (default 1000) through a 784-H-10 inference core
   (``--image``: a weight image of ``python -m golden.eqspike`` / hdl.build, else random weights from
   :func:`golden.eqspike.twin.init_weights` at ``--hidden``), streamed as pixels with random
   idle/stall cycles on every stream; every prediction, the output states and the spike /
   synaptic-event / weight-word counters compared with the twin.
2. On-chip training: ``--train-steps`` MNIST training images (default 100) through a 784-H-10
   training core (built with the ``wdump`` block read-back port) from random weights; after the load
   and after every ``--dump-every`` steps (default 1: every step) every weight and bias is read back as
   a block (``REG_DUMP``: one ``wdump`` beat per memory word) and compared array by array with the
   twin's, together with the weight digest the same sweep leaves in ``REG_DIGEST``
   (:func:`spec.eqspike.weight_digest`; steps without a dump compare a ``REG_DIGEST`` sweep); with
   ``--readback-every N`` every weight and bias is also read back element by element through
   ``wcmd``/``wrsp`` (the host link's path, 25,450 beats at the default net) every N steps and after the
   last (default 0: never; tests/test_eqspike_cocotb.py checks that path on small nets).

Ternary weights (``weight_kind="ternary"``, docs/eqspike.md §9): ``--weight-kind ternary`` (random ternary
weights: the random fixed-point init's signs where |w| > 0.7·mean|w|) or a ternary ``--image``; the cells
are programmed on ``tcmd`` (stalled like every stream), the raw cells read back on ``tcmd``/``trsp`` and
compared with the twin's stored cells, the memory's REG_TMEM counters too; ``--fault-rate P`` (with
``fault_injection``) sets static adjacent faults through ``REG_TMEM`` before programming and the twin the same
(:func:`golden.eqspike.ternary.configure_faults`). The training check is the fixed-point core's (ternary
training is not in the RTL); ``--train-steps 0`` skips it.

Reports mismatches (must be 0), wall time per simulator (build excluded) and the Verilator/Icarus
speed ratio on the same checks, as JSON and Markdown under ``--out``.

    python bench/eqspike_rtl_check.py --data-dir ../shared/data
    python bench/eqspike_rtl_check.py --data-dir ../shared/data --weight-kind ternary --fault-rate 0.05 \
        --images 200 --train-steps 0 --simulators verilator
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from golden.clierr import ArgumentParser, CLIError, cli_main  # noqa: E402


def markdown(report: dict) -> str:
    lines = ["# EqSpike RTL == twin (cocotb)", "",
             f"inference net {report['inference_net']}, training net {report['training_net']}, lanes "
             f"{report['lanes']}, T1 {report['T1']}, T2 {report['T2']}, training η shifts (REG_LR) "
             f"{report.get('lr_shift')}, stall probability {report['stall_prob']}, "
             f"inference weights {report.get('weight_kind', 'fixed')}"
             + (f" (static adjacent faults p = {report['fault_rate']}: {report['injected_faults']} cells changed)"
                if report.get("fault_rate") is not None else ""), "",
             "| simulator | images | inference mismatches | inference s | training steps | weight digests compared "
             "| block read-backs | weight arrays compared | training mismatches | training s | build s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for sim, r in report["results"].items():
        i, t = r["inference"], r["training"]
        lines.append(f"| {sim} | {i['images']} | {len(i['mismatches'])} | {r['inference_s']:.1f} | {t['steps']} | "
                     f"{t['compared']['digests']} | {t['compared']['dumps']} | {t['compared']['weight_arrays']} | "
                     f"{len(t['mismatches'])} | "
                     f"{r['training_s']:.1f} | "
                     f"{r['build_s']:.0f} |")
    for k in ("verilator_speedup_inference", "verilator_speedup_training"):
        if k in report:
            lines.append(f"\n{k}: {report[k]:.1f}x (per-sample wall time, builds excluded)")
    return "\n".join(lines) + "\n"


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", type=Path, help="EqSpike weight image for the inference check (default: random "
                   "weights on a 784-HIDDEN-10 core)")
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    p.add_argument("--images", type=int, default=1000, help="test images for the inference check (default 1000)")
    p.add_argument("--train-steps", type=int, default=100, help="on-chip training steps (default 100; 0: no "
                   "training check)")
    p.add_argument("--weight-kind", choices=["fixed", "ternary"], default="fixed",
                   help="weight kind of the random inference net (default fixed; --image: the image's)")
    p.add_argument("--fault-rate", type=float, metavar="P", help="ternary with fault_injection: static adjacent "
                   "faults of mean rate P drawn while programming (REG_TMEM; the twin the same)")
    p.add_argument("--fault-seed", type=int, default=7, help="the memory PRNG's seed for --fault-rate (default 7)")
    p.add_argument("--dump-every", type=int, default=1,
                   help="block read-back (wdump: one beat per memory word, 1,603 at the default net) every N "
                        "training steps and after the last (default 1: every step); other steps compare the digest")
    p.add_argument("--readback-every", type=int, default=0,
                   help="element-by-element read-back (wcmd/wrsp: 25,450 beats each at the default net) every N "
                        "training steps and after the last; 0 (default): never")
    p.add_argument("--hidden", type=int, default=32, help="hidden neurons of the random/training net (default 32)")
    p.add_argument("--lanes", type=int, default=16, help="lanes P (default 16)")
    p.add_argument("--T1", type=int, default=8, help="free-phase steps (default 8)")
    p.add_argument("--T2", type=int, default=4, help="nudged-phase steps (default 4)")
    p.add_argument("--simulators", nargs="+", default=["verilator", "icarus"], choices=["icarus", "verilator"],
                   help="simulators to run (default both)")
    p.add_argument("--lr-shift", type=int, nargs="+", metavar="S",
                   help="the training core's η registers (REG_LR, η = 2^-S): one value for every connection or one "
                        "per connection, written before the first training step, the twin the same "
                        "(EqSpikeTwin.set_lr_shift; checked with EqSpikeSpec.check_lr_shift; default: the spec's 4)")
    p.add_argument("--stall", type=float, default=0.2, help="idle/stall probability on every stream (default 0.2)")
    p.add_argument("--seed", type=int, default=1, help="stall and initialisation seed (default 1)")
    p.add_argument("--out", type=Path, default=REPO / "bench/results/eqspike_rtl_check",
                   help="output folder for report.json and report.md (default bench/results/eqspike_rtl_check)")
    args = p.parse_args(argv)
    if args.train_steps < 0:
        p.error(f"--train-steps must be 0 (no training check) or a positive integer, not {args.train_steps}")
    if args.fault_rate is not None and not 0 <= args.fault_rate < 1:
        p.error(f"--fault-rate must be a probability in [0, 1), not {args.fault_rate}")
    for name in ("images", "dump_every", "hidden", "lanes", "T1", "T2"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, not {getattr(args, name)}")
    if args.readback_every < 0:
        p.error(f"--readback-every must be 0 (never) or a positive integer, "
                f"not {args.readback_every}")
    if not 0 <= args.stall < 1:
        p.error(f"--stall must be a probability in [0, 1), not {args.stall}")
    import numpy as np

    from golden.data import load_dataset
    from golden.eqspike.image import load_image
    from golden.eqspike.twin import init_weights
    from golden.train import atomic_write_bytes
    from sim.eqspike import Item, Report, compare_with_twin, eqspike_verilog, run_eqspike
    from sim.runner import build
    from spec.eqspike import EqSpikeSpec

    if args.image is not None:
        if not args.image.exists():
            raise CLIError(f"--image {args.image}: no such weight image")
        spec, weights, _ = load_image(args.image)
        if spec.layers[0] != 784:  # checked before the (slow) RTL build
            raise CLIError(f"--image {args.image}: the image's core has {spec.layers[0]} inputs "
                           f"({'-'.join(map(str, spec.layers))}); this check feeds MNIST images of 784 pixels")
    elif args.weight_kind == "ternary":
        spec = EqSpikeSpec(layers=(784, args.hidden, 10), lanes=args.lanes, training=False, T1=args.T1,
                           weight_kind="ternary", weight_bits=(2,), weight_frac=(3,),
                           fault_injection=args.fault_rate is not None)
        fw = init_weights(EqSpikeSpec(layers=(784, args.hidden, 10), lanes=args.lanes, training=False, T1=args.T1),
                          seed=args.seed, scale=3.0)
        weights = {k: v for k, v in fw.items() if k.startswith("b")}
        for l in range(spec.n_layers):
            w = fw[f"w{l}"]
            weights[f"w{l}"] = (np.sign(w) * (np.abs(w) > 0.7 * np.abs(w).mean())).astype(np.int64)
    else:
        spec = EqSpikeSpec(layers=(784, args.hidden, 10), lanes=args.lanes, training=False, T1=args.T1)
        weights = init_weights(spec, seed=args.seed, scale=3.0)
    faults, twin_factory = None, None
    if args.fault_rate is not None:
        if spec.weight_kind != "ternary" or not spec.fault_injection:
            raise CLIError("--fault-rate needs a ternary core with fault_injection (--weight-kind ternary, or a "
                           "ternary --image whose spec has fault_injection = true)")
        from golden.eqspike.ternary import configure_faults
        from golden.eqspike.twin import EqSpikeTwin
        from spec.ternary import ctrl_value

        def twin_factory():
            twin = EqSpikeTwin(spec, weights)
            return twin, configure_faults(twin, weights, args.fault_rate, "static", "adjacent", seed=args.fault_seed)

        info = twin_factory()[1]
        faults = (ctrl_value("static", "adjacent"), info["rate_zero"], info["rate_nonzero"], args.fault_seed)
    tspec = EqSpikeSpec(layers=(784, args.hidden, 10), lanes=args.lanes, training=True, T1=args.T1, T2=args.T2,
                        lr_shift=(4,))
    if args.lr_shift is not None:  # checked before the data load and the RTL build
        if args.train_steps == 0:
            raise CLIError("--lr-shift sets the training core's η registers: it needs --train-steps > 0")
        try:
            tspec.check_lr_shift(args.lr_shift)
        except ValueError as e:
            raise CLIError(f"--lr-shift: {e}") from None
    tw = init_weights(tspec, seed=args.seed, scale=3.0)
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    train = load_dataset("mnist", "train", data_dir=args.data_dir)
    xi = test.images.reshape(len(test), -1)[:args.images].astype(np.int64)
    yi = test.labels[:args.images]
    xt = train.images.reshape(len(train), -1)[:args.train_steps].astype(np.int64)
    yt = train.labels[:args.train_steps]
    inf = [Item("infer", x) for x in xi]
    last = args.train_steps - 1
    tr = [Item("train", x, label=int(y), digest=True, dump=(n + 1) % args.dump_every == 0 or n == last,
               readback=args.readback_every > 0 and ((n + 1) % args.readback_every == 0 or n == last),
               lr_shift=tuple(args.lr_shift) if args.lr_shift is not None and n == 0 else None)
          for n, (x, y) in enumerate(zip(xt, yt, strict=True))]
    report = {"bench": "eqspike_rtl_check", "image": str(args.image) if args.image else None,
              "weight_kind": spec.weight_kind, "fault_rate": args.fault_rate,
              "injected_faults": None if faults is None else info["injected"],
              "inference_net": "-".join(map(str, spec.layers)), "training_net": "-".join(map(str, tspec.layers)),
              "lanes": spec.lanes, "dump_every": args.dump_every, "readback_every": args.readback_every,
              "T1": tspec.T1, "T2": tspec.T2, "lr_shift": list(tspec.check_lr_shift(
                  args.lr_shift if args.lr_shift is not None else tspec.lr_shift)),
              "stall_prob": args.stall,
              "command": "python bench/eqspike_rtl_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "results": {}}
    # the inference core without the dump port (its Verilog is the boards' and hdl.build's), the training
    # core with it
    vi, vt = eqspike_verilog(spec, dump=False), eqspike_verilog(tspec) if tr else None
    for sim in args.simulators:
        t0 = time.time()
        build(vi, "eqspike_core", sim)
        if tr:
            build(vt, "eqspike_core", sim)
        build_s = time.time() - t0
        t0 = time.time()
        res = run_eqspike(spec, weights, inf, sim, seed=args.seed, idle_prob=args.stall, stall_prob=args.stall,
                          verilog=vi, readback_initial=False, digest_initial=True, faults=faults)
        inf_s = time.time() - t0
        rep_i = compare_with_twin(spec, weights, inf, res, sim,
                                  twin=twin_factory()[0] if twin_factory is not None else None)
        acc = float((np.array([int(r["out"]) & 15 for r in res["items"]]) == yi).mean())
        t0 = time.time()
        if tr:
            res_t = run_eqspike(tspec, tw, tr, sim, seed=args.seed, idle_prob=args.stall, stall_prob=args.stall,
                                verilog=vt, readback_initial=False, dump_initial=True)
            rep_t = compare_with_twin(tspec, tw, tr, res_t, sim)
        else:  # --train-steps 0
            res_t, rep_t = {}, Report(sim)
        tr_s = time.time() - t0
        report["results"][sim] = {
            "build_s": build_s, "inference_s": inf_s, "training_s": tr_s,
            "bench_phase_s": {"inference": res.get("phase_s"), "training": res_t.get("phase_s")},
            "inference": {"images": rep_i.samples, "compared": rep_i.compared, "mismatches": rep_i.mismatches,
                          "rtl_accuracy": acc, "mean_cycles_per_image": float(np.mean(rep_i.cycles))},
            "training": {"steps": rep_t.training_steps, "compared": rep_t.compared, "mismatches": rep_t.mismatches},
        }
        print(f"{sim:9s}: inference {rep_i.samples} images, {len(rep_i.mismatches)} mismatches, {inf_s:.1f} s | "
              f"training {rep_t.training_steps} steps, {rep_t.compared['digests']} weight digests, "
              f"{rep_t.compared['dumps']} block read-backs and {rep_t.compared['weight_arrays']} weight arrays "
              f"compared, "
              f"{len(rep_t.mismatches)} mismatches, {tr_s:.1f} s | build {build_s:.0f} s", flush=True)
    r = report["results"]
    if "icarus" in r and "verilator" in r:
        for k in ("inference", "training") if tr else ("inference",):
            per = {s: r[s][f"{k}_s"] / max(1, r[s][k]["images" if k == "inference" else "steps"]) for s in r}
            report[f"verilator_speedup_{k}"] = per["icarus"] / per["verilator"]
        print(f"Verilator vs Icarus per sample: inference {report['verilator_speedup_inference']:.1f}x"
              + (f", training {report['verilator_speedup_training']:.1f}x" if tr else "") + " (builds excluded)")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "report.json", json.dumps(report, indent=2).encode())
    atomic_write_bytes(args.out / "report.md", markdown(report).encode())
    print(f"wrote {args.out}/report.json and report.md")
    bad = sum(len(v["inference"]["mismatches"]) + len(v["training"]["mismatches"]) for v in r.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
