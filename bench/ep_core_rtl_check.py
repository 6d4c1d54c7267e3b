"""The EP core's generated Verilog against its twin at scale, on Icarus and Verilator, with stalls.

1. Inference: ``--images`` MNIST test images (default 1000) through a trained, quantised 784-H-10
   network (``--image``, or one trained here in a minute: float 784-64-10 hard-sigmoid EP,
   quantised to 8-bit weights), streamed with random idle/stall cycles; every prediction compared.
2. On-chip training: ``--train-steps`` MNIST training images (default 100) through a 784-32-10
   training core from random 16-bit weights; after every step the whole weight memory is read
   back through the weight port and compared array by array with the twin.

Reports mismatches (must be 0), wall time per simulator (build excluded) and the Verilator/Icarus
speed ratio on the same inference check. JSON to --json.

    python bench/ep_core_rtl_check.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_image(data_dir: str | None, work: Path, hidden: int, lanes: int) -> Path:
    """Train a small float EP net (hard sigmoid), export and quantise it for the core."""
    from golden.cli import main as golden_main
    from golden.ep_core.__main__ import main as core_main
    from spec.ep_core import EPCoreSpec

    run, exp, img = work / "float", work / "export", work / "image"
    args = ["train", "--dataset", "mnist", "--layers", "784", str(hidden), "10", "--activation", "hard_sigmoid",
            "--T1", "30", "--T2", "10", "--beta", "0.5", "--optimizer", "adam", "--lrs", "2e-3", "--epochs", "2",
            "--out", str(run), "--no-progress"]
    if data_dir:
        args += ["--data-dir", data_dir]
    assert golden_main(args) == 0
    assert golden_main(["export", "--checkpoint", str(run), "--out", str(exp)]) == 0
    spec = EPCoreSpec(layers=(784, hidden, 10), lanes=lanes, training=False)
    (work / "spec.toml").write_text(spec.to_toml())
    assert core_main(["quantize", "--spec", str(work / "spec.toml"), "--export", str(exp), "--out", str(img)]) == 0
    return img


from golden.clierr import ArgumentParser, CLIError, cli_main  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", type=Path, help="weight image for the inference check (default: train one)")
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    p.add_argument("--images", type=int, default=1000, help="test images for the inference check (default 1000)")
    p.add_argument("--train-steps", type=int, default=100, help="on-chip training steps (default 100)")
    p.add_argument("--simulators", nargs="+", default=["verilator", "icarus"], choices=["icarus", "verilator"])
    p.add_argument("--stall", type=float, default=0.2, help="idle/stall probability on every stream (default 0.2)")
    p.add_argument("--seed", type=int, default=1, help="stall and initialisation seed (default 1)")
    p.add_argument("--json", type=Path, default=REPO / "bench/results/ep_core_rtl_check.json",
                   help="JSON output (default bench/results/ep_core_rtl_check.json)")
    args = p.parse_args(argv)
    for name in ("images", "train_steps"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, not {getattr(args, name)}")
    if not 0 <= args.stall < 1:
        p.error(f"--stall must be a probability in [0, 1), not {args.stall}")
    import numpy as np

    from golden.data import load_dataset
    from golden.ep_core import Registers, init_weights, load_image
    from golden.train import atomic_write_bytes
    from sim.ep_core import Segment, compare_with_twin, run_ep_core
    from sim.runner import build, verilog_of
    from spec.ep_core import EPCoreSpec

    work = Path(tempfile.mkdtemp(prefix="ep_core_rtl_check_"))
    image = args.image or make_image(args.data_dir, work, 64, 16)
    spec, weights, _ = load_image(image)
    if spec.layers[0] != 784:  # checked before the (slow) RTL build: the check feeds 28x28 MNIST images
        shape = "-".join(map(str, spec.layers))
        raise CLIError(f"--image {image}: the image's core has {spec.layers[0]} inputs ({shape}); this check feeds "
                       "MNIST images of 784 pixels")
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    train = load_dataset("mnist", "train", data_dir=args.data_dir)
    xi = test.images.reshape(len(test), -1)[:args.images].astype(np.int64)
    yi = test.labels[:args.images]
    inf = [Segment(Registers.from_spec(spec), xi, yi)]
    tspec = EPCoreSpec(layers=(784, 32, 10), lanes=16, weight_bits=(16,), weight_frac=(12,), bias_bits=20,
                       lr_shift=6, beta_shift=1, update_rounding="half_up")
    tw = init_weights(tspec, args.seed)
    xt = train.images.reshape(len(train), -1)[:args.train_steps].astype(np.int64)
    yt = train.labels[:args.train_steps]
    tr = [Segment(Registers.from_spec(tspec, train=True, dump=True), xt, yt, readback_each=True)]

    from hdl.ep_core import EPCore

    report = {"bench": "ep_core_rtl_check", "image": str(image), "inference_spec": spec.to_dict(),
              "training_spec": tspec.to_dict(), "stall_prob": args.stall, "results": {}}
    for sim in args.simulators:
        t0 = time.time()
        build(verilog_of(EPCore(spec), "ep_core"), "ep_core", sim)
        build(verilog_of(EPCore(tspec), "ep_core"), "ep_core", sim)
        build_s = time.time() - t0
        t0 = time.time()
        res = run_ep_core(spec, weights, inf, sim, seed=args.seed, idle_prob=args.stall, stall_prob=args.stall,
                          readback_initial=True)
        inf_s = time.time() - t0
        rep_i = compare_with_twin(spec, weights, inf, res, sim)
        acc = float((np.array(res["segments"][0]["preds"]) == yi).mean())
        t0 = time.time()
        res_t = run_ep_core(tspec, tw, tr, sim, seed=args.seed, idle_prob=args.stall, stall_prob=args.stall)
        tr_s = time.time() - t0
        rep_t = compare_with_twin(tspec, tw, tr, res_t, sim)
        report["results"][sim] = {
            "build_s": build_s, "inference_s": inf_s, "training_s": tr_s,
            "inference": {"images": rep_i.samples, "compared": rep_i.compared, "mismatches": rep_i.mismatches,
                          "rtl_accuracy": acc, "cycles_per_image": (res["segments"][0]["cycles"] or [None])[-1]},
            "training": {"steps": rep_t.training_steps, "compared": rep_t.compared, "mismatches": rep_t.mismatches},
        }
        print(f"{sim:9s}: inference {rep_i.samples} images, {len(rep_i.mismatches)} mismatches, RTL accuracy "
              f"{100 * acc:.2f}%, {inf_s:.1f} s | training {rep_t.training_steps} steps, "
              f"{rep_t.compared['weight_arrays']} weight arrays compared, {len(rep_t.mismatches)} mismatches, "
              f"{tr_s:.1f} s | build {build_s:.0f} s", flush=True)
    r = report["results"]
    if "icarus" in r and "verilator" in r:
        report["verilator_speedup_inference"] = r["icarus"]["inference_s"] / r["verilator"]["inference_s"]
        report["verilator_speedup_training"] = r["icarus"]["training_s"] / r["verilator"]["training_s"]
        print(f"Verilator vs Icarus on the same checks: inference {report['verilator_speedup_inference']:.1f}x, "
              f"training {report['verilator_speedup_training']:.1f}x faster (builds excluded)")
    atomic_write_bytes(args.json, json.dumps(report, indent=2).encode())
    print(f"wrote {args.json}")
    bad = sum(len(v["inference"]["mismatches"]) + len(v["training"]["mismatches"]) for v in r.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
