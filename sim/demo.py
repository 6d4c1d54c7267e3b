"""``make demo``: the main job end to end.

Train a small EP network on MNIST (the full set when it can be found, else the subset shipped
with epforge), export it, and evaluate the export. Hardware steps are added as they land.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="output directory (default build/demo)")
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data; "
                                      "the shipped MNIST subset when no full MNIST is found)")
    p.add_argument("--hidden", type=int, default=64, help="hidden layer size of the 784-H-10 net (default 64)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    p.add_argument("--train-limit", type=int, default=10000,
                   help="training images used from the full MNIST (default 10000)")
    args = p.parse_args(argv)
    for name in ("hidden", "epochs", "train_limit"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, not {getattr(args, name)}")

    import torch

    from golden.cli import main as golden_main
    from golden.data import DataError, load_dataset

    torch.set_num_threads(2)
    try:
        load_dataset("mnist", "test", data_dir=args.data_dir, download=False)
        dataset = "mnist"
    except DataError:
        dataset = "mnist-subset"
        print("full MNIST not found: using the 2,000/500-image subset shipped with epforge "
              "(set EPFORGE_DATA or --data-dir to use the full set)")
    run = args.out / "float"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    t0 = time.time()
    print(f"== 1. train a float EP net 784-{args.hidden}-10 on {dataset}")
    cmd = ["train", "--dataset", dataset, "--layers", "784", str(args.hidden), "10", "--activation", "hard_sigmoid",
           "--T1", "30", "--T2", "10", "--beta", "0.5", "--estimator", "symmetric", "--optimizer", "adam",
           "--lrs", "2e-3", "--batch-size", "50", "--epochs", str(args.epochs), "--out", str(run)]
    if dataset == "mnist":
        cmd += ["--train-limit", str(args.train_limit)]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if golden_main(cmd) != 0:
        return 1
    print("== 2. export the weights")
    export = args.out / "export"
    if golden_main(["export", "--checkpoint", str(run), "--out", str(export)]) != 0:
        return 1
    print("== 3. evaluate the export (verified against its manifest)")
    result = args.out / "float_eval.json"
    ev = ["evaluate", "--export", str(export), "--dataset", dataset, "--json", str(result)]
    if args.data_dir:
        ev += ["--data-dir", args.data_dir]
    if golden_main(ev) != 0:
        return 1
    acc = json.loads(result.read_text())["accuracy"]
    print(f"\nfloat EP accuracy: {100 * acc:.2f}%   ({time.time() - t0:.0f} s; outputs in {args.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
