"""Test accuracy per epoch of a full float-EP training run on MNIST (a published configuration).

A thin wrapper over the project's trainer (``golden.train.train``, the same code as
``python -m golden train``) started from one of ``golden.cli.PRESETS``: it trains, checkpoints
every epoch into --out (so --resume continues an interrupted run bit-identically), and writes
the per-epoch test accuracy, the best and final accuracy and the wall time to --json.

It refuses to run on the embedded 2,000-image MNIST subset (its accuracy says little) unless
--allow-subset is given.

    python bench/mnist_accuracy.py                                  # mnist-mlp preset, 30 epochs
    python bench/mnist_accuracy.py --preset mnist-conv --settle-tol 1e-5 --out runs/conv_acc
    python bench/mnist_accuracy.py --resume                         # continue the run in --out
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden.cli import PRESETS  # noqa: E402

DEFAULT_JSON = REPO / "bench" / "results" / "mnist_accuracy.json"
DEFAULT_OUT = REPO / "runs" / "bench_mnist_accuracy"
MNIST_PRESETS = sorted(k for k, v in PRESETS.items() if v["dataset"] == "mnist")


def default_data_dir(arg: str | None) -> str | None:
    """--data-dir, else $EPFORGE_DATA, else <repo>/../shared/data if it exists, else None (golden's default)."""
    if arg:
        return arg
    if os.environ.get("EPFORGE_DATA"):
        return os.environ["EPFORGE_DATA"]
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def resolve_dataset(data_dir: str | None, allow_subset: bool) -> tuple[str, str]:
    """("mnist" | "mnist-subset", note); SystemExit when full MNIST is missing and the subset is not allowed."""
    from golden.data import DataError, DataMissingError, load_dataset
    from golden.data import default_data_dir as golden_default

    try:
        for split in ("train", "test"):
            ds = load_dataset("mnist", split, data_dir, download=False)
        return "mnist", f"full MNIST from {ds.source}"
    except DataMissingError as e:
        where = data_dir or golden_default()
        if not allow_subset:
            raise SystemExit(f"error: full MNIST not found under {where} ({str(e).splitlines()[0]}); this bench "
                             "would only train on the embedded 2,000-image subset. Pass --data-dir (or set "
                             "EPFORGE_DATA, or run 'python -m golden.data fetch mnist'), or --allow-subset to "
                             "run on the subset anyway.") from None
        return "mnist-subset", f"embedded MNIST subset (full MNIST not found under {where}; --allow-subset)"
    except DataError as e:
        raise SystemExit(f"error: {e}") from None


def build_config(args: argparse.Namespace, dataset: str, data_dir: str | None):
    from golden.train import TrainConfig

    d: dict[str, Any] = json.loads(json.dumps(PRESETS[args.preset]))
    d["dataset"] = dataset
    d["data_dir"] = data_dir
    for name in ("epochs", "settle_tol", "train_limit", "test_limit"):
        v = getattr(args, name)
        if v is not None:
            d[name] = v
    return TrainConfig.from_dict(d)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=MNIST_PRESETS, default="mnist-mlp",
                   help="published configuration to train (golden.cli.PRESETS; default mnist-mlp)")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the preset's)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"run directory: checkpoint.pt, metrics.json, training.png "
                        f"(default {DEFAULT_OUT.relative_to(REPO)})")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (bit-identically)")
    p.add_argument("--data-dir", help="data root searched for MNIST (default $EPFORGE_DATA, else ../shared/data "
                                      "next to the repo if present, else ~/.cache/epforge/data); nothing is downloaded")
    p.add_argument("--allow-subset", action="store_true",
                   help="train on the embedded 2,000-image MNIST subset when full MNIST is missing")
    p.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads; default torch's)")
    p.add_argument("--settle-tol", type=float, metavar="TOL",
                   help="end the free phase early once a step moves no neuron by more than TOL, in training and "
                        "evaluation (default: off, always T1 steps as published)")
    p.add_argument("--train-limit", type=int, metavar="N", help="only the first N training images (quick checks)")
    p.add_argument("--test-limit", type=int, metavar="N", help="only the first N test images (quick checks)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: when stderr is a terminal)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON,
                   help=f"where the results go (default {DEFAULT_JSON.relative_to(REPO)})")
    return p


from golden.clierr import ArgumentParser, cli_main  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads is not None and args.threads <= 0:
        raise SystemExit("error: --threads must be positive")
    import torch

    from golden.train import atomic_write_bytes, train

    data_dir = default_data_dir(args.data_dir)
    dataset, data_note = resolve_dataset(data_dir, args.allow_subset)
    try:
        cfg = build_config(args, dataset, data_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"data: {data_note}")
    prev_threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        res = train(cfg, args.out, resume=args.resume, progress=args.progress)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        threads = torch.get_num_threads()
        torch.set_num_threads(prev_threads)  # main() may run in-process (tests)
    wall = time.perf_counter() - t0
    history = res["history"]
    best = max(history, key=lambda r: r["test_acc"])
    result = {
        "bench": "mnist_accuracy", "preset": args.preset, "config": res["config"],
        "data": {"dataset": dataset, "note": data_note, "train_limit": cfg.train_limit, "test_limit": cfg.test_limit},
        "out": str(args.out), "resumed": args.resume,
        "epochs": [{"epoch": r["epoch"], "test_acc": r["test_acc"], "train_acc": r["train_acc"],
                    "train_samples_per_s": r["train_samples_per_s"], "eval_s": r["eval_s"]} for r in history],
        "test_acc": [r["test_acc"] for r in history],
        "best_test_acc": best["test_acc"], "best_epoch": best["epoch"], "final_test_acc": history[-1]["test_acc"],
        "wall_s": wall,
        "wall_note": "wall-clock of this invocation (training, evaluation, checkpoints); with --resume the earlier "
                     "epochs are not included",
        "machine": {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "torch": torch.__version__,
                    "python": platform.python_version(), "threads": threads, "logical_cpus": os.cpu_count()},
    }
    atomic_write_bytes(Path(args.json), (json.dumps(result, indent=2) + "\n").encode())
    print(f"\n{args.preset} on {dataset}: best test {100 * result['best_test_acc']:.2f}% (epoch {best['epoch']}), "
          f"final {100 * result['final_test_acc']:.2f}% after {history[-1]['epoch']} epochs; {wall:.0f} s")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
