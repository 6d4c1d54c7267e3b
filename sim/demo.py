"""``make demo``: the main job end to end.

1. train a small float EP network (784-H-10, hard sigmoid) on MNIST — the full set when it can
   be found, else the 2,000/500-image subset shipped with epforge;
2. export it and quantise it for the EP core (8-bit weights and states);
3. evaluate the bit-exact twin;
4. generate the core's Verilog (``python -m hdl.build``), weights baked in;
5. run the Verilog in a simulator (cocotb) on N test images;
6. print float vs twin vs RTL accuracy and the number of RTL/twin mismatches (must be 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from golden.clierr import ArgumentParser, cli_main


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m sim.demo", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("build/demo"),
                   help="output directory (default build/demo): new or empty, or with --force a previous demo "
                        "output, replaced atomically when the new one is complete; any other directory is refused")
    p.add_argument("--force", action="store_true", help="replace a previous demo output at --out (never other files)")
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data; "
                                      "the shipped MNIST subset when no full MNIST is found)")
    p.add_argument("--hidden", type=int, default=64, help="hidden layer size of the 784-H-10 net (default 64)")
    p.add_argument("--epochs", type=int, default=3, help="float training epochs (default 3)")
    p.add_argument("--train-limit", type=int, default=10000,
                   help="training images used from the full MNIST (default 10000)")
    p.add_argument("--lanes", type=int, default=16, help="P, the core's parallel lanes (default 16)")
    p.add_argument("--rtl-images", type=int, default=200, help="test images simulated in the RTL (default 200)")
    p.add_argument("--simulator", choices=["icarus", "verilator"], default="icarus",
                   help="HDL simulator for step 5 (default icarus: no compile step)")
    args = p.parse_args(argv)
    for name in ("hidden", "epochs", "train_limit", "lanes", "rtl_images"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, not {getattr(args, name)}")
    from golden.fileio import OutputDir

    # checked before any work: a foreign --out is refused; the new tree is built beside it and put in place
    # atomically at the end (the previous demo output stays until then)
    outdir = OutputDir(args.out, "sim-demo", force=args.force, legacy=_legacy_demo)
    with outdir as work:
        rc = _run(args, work)
    print(f"  outputs in {args.out} (Verilog, manifest, weight image, demo.json)")
    return rc


DEMO_ENTRIES = {"float", "export", "image", "verilog", "base_spec.toml", "float_eval.json", "demo.json"}


def _legacy_demo(path: Path) -> bool:
    """A demo output written before output markers existed: demo.json and nothing but the demo's entries."""
    names = {p.name for p in path.iterdir()}
    return "demo.json" in names and names <= DEMO_ENTRIES


def _run(args, work: Path) -> int:

    import numpy as np
    import torch

    from golden.cli import main as golden_main
    from golden.data import DataError, load_dataset
    from golden.ep_core import EPCoreTwin, Registers, load_image
    from golden.ep_core.__main__ import main as core_main
    from hdl.build import load_build_manifest
    from hdl.build import main as build_main
    from sim.ep_core import Segment, compare_with_twin, run_ep_core
    from spec.ep_core import EPCoreSpec

    torch.set_num_threads(2)
    try:
        load_dataset("mnist", "test", data_dir=args.data_dir, download=False)
        dataset = "mnist"
    except DataError:
        dataset = "mnist-subset"
        print("full MNIST not found: using the 2,000/500-image subset shipped with epforge "
              "(set EPFORGE_DATA or --data-dir to use the full set)")
    t0 = time.time()
    data_args = ["--data-dir", args.data_dir] if args.data_dir else []

    print(f"\n== 1. train a float EP net 784-{args.hidden}-10 (hard sigmoid, symmetric β) on {dataset}")
    run = work / "float"
    cmd = ["train", "--dataset", dataset, "--layers", "784", str(args.hidden), "10", "--activation", "hard_sigmoid",
           "--T1", "30", "--T2", "10", "--beta", "0.5", "--estimator", "symmetric", "--optimizer", "adam",
           "--lrs", "2e-3", "--batch-size", "50", "--epochs", str(args.epochs), "--out", str(run)] + data_args
    if dataset == "mnist":
        cmd += ["--train-limit", str(args.train_limit)]
    if golden_main(cmd) != 0:
        return 1

    print("\n== 2. export and quantise for the EP core (8-bit weights and states)")
    export, image = work / "export", work / "image"
    if golden_main(["export", "--checkpoint", str(run), "--out", str(export)]) != 0:
        return 1
    base = EPCoreSpec(layers=(784, args.hidden, 10), lanes=args.lanes, training=False)
    (work / "base_spec.toml").write_text(base.to_toml())
    if core_main(["quantize", "--spec", str(work / "base_spec.toml"), "--export", str(export),
                  "--out", str(image)]) != 0:
        return 1
    spec, weights, _ = load_image(image)

    print("\n== 3. evaluate float model and twin on the test set")
    test = load_dataset(dataset, "test", data_dir=args.data_dir)
    x = test.images.reshape(len(test), -1).astype(np.int64)
    y = test.labels
    float_json = work / "float_eval.json"
    if golden_main(["evaluate", "--export", str(export), "--dataset", dataset, "--json", str(float_json)]
                   + data_args) != 0:
        return 1
    float_acc = json.loads(float_json.read_text())["accuracy"]
    twin = EPCoreTwin(spec, weights)
    regs = Registers.from_spec(spec)
    twin_pred = np.concatenate([twin.infer(x[i:i + 1000], regs)[0] for i in range(0, len(x), 1000)])
    twin_acc = float((twin_pred == y).mean())
    print(f"twin {dataset} test: {100 * twin_acc:.2f}% of {len(x)}")

    print("\n== 4. generate the EP core's Verilog (weights baked into the memories)")
    if build_main(["ep", "--spec", str(image / "spec.toml"), "--weights", str(image), "--out",
                   str(work / "verilog")]) != 0:
        return 1
    manifest = load_build_manifest(work / "verilog")

    n = min(args.rtl_images, len(x))
    print(f"\n== 5. simulate the Verilog on {n} test images ({args.simulator}, cocotb)")
    seg = Segment(regs, x[:n], y[:n])
    t1 = time.time()
    result = run_ep_core(spec, weights, [seg], args.simulator, bake_weights=True)
    sim_s = time.time() - t1
    rep = compare_with_twin(spec, weights, [seg], result, args.simulator)
    rtl_pred = np.array(result["segments"][0]["preds"])
    rtl_acc = float((rtl_pred == y[:n]).mean())
    cycles = result["segments"][0]["cycles"][-1]
    roof = spec.roofline(False)["cycles"]

    summary = {
        "dataset": dataset, "network": f"784-{args.hidden}-10", "lanes": spec.lanes, "spec_digest": spec.digest(),
        "float_accuracy": float_acc, "twin_accuracy": twin_acc, "test_images": len(x),
        "rtl_images": n, "rtl_accuracy": rtl_acc, "twin_accuracy_on_rtl_images": float((twin_pred[:n] == y[:n]).mean()),
        "rtl_twin_mismatches": len(rep.mismatches), "cycles_per_image": cycles, "roofline_cycles": roof,
        "simulator": args.simulator, "simulation_s": sim_s,
        "verilog_sha256": manifest["outputs"]["ep_core.v"]["sha256"],
        "total_s": time.time() - t0,
    }
    (work / "demo.json").write_text(json.dumps(summary, indent=2))
    print("\n== 6. hardware vs golden")
    print(f"  float model          {100 * float_acc:6.2f} %  ({len(x)} test images)")
    print(f"  bit-exact twin       {100 * twin_acc:6.2f} %  ({len(x)} test images)")
    print(f"  RTL ({args.simulator:9s})    {100 * rtl_acc:6.2f} %  ({n} test images; twin on the same: "
          f"{100 * summary['twin_accuracy_on_rtl_images']:.2f} %)")
    print(f"  RTL/twin mismatches  {len(rep.mismatches)} of {n} predictions")
    print(f"  cycles per image     {cycles} (roofline {roof:.0f}, P = {spec.lanes})")
    print(f"  total {summary['total_s']:.0f} s")
    for msg in rep.mismatches[:5]:
        print("  MISMATCH:", msg)
    return 0 if not rep.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
