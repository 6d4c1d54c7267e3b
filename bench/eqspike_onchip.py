"""On-chip learning of the EqSpike core in its bit-exact twin: MNIST from scratch, batch 1, one epoch.

Trains a 784-H-10 EqSpike core (spec/eqspike.py defaults: 16-bit weights, spike-driven update,
symmetric ±β, sigma-delta encoders with PRNG-drawn residues) with the chip's own event-driven rule
(golden/eqspike/twin.py, ``train_sample``), one sample at a time, and measures the test accuracy
(batched twin path) every ``--eval-every`` samples. Writes the JSON after every evaluation (so an
interrupted run keeps its curve) and a PNG at the end.

    python bench/eqspike_onchip.py --data-dir ../shared/data                     # 784-500-10, 60,000 samples
    python bench/eqspike_onchip.py --dataset mnist-subset --train-limit 500 --test-limit 500 --eval-every 250
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from golden.clierr import ArgumentParser, CLIError, cli_main, parse_set_value  # noqa: E402
from golden.clierr import nonneg_int_type as natural  # noqa: E402
from golden.clierr import positive_int_type as count  # noqa: E402


def _load(dataset, split, data_dir, limit):
    from golden.data import load_dataset

    ds = load_dataset(dataset, split, data_dir=data_dir)
    x, y = ds.images.reshape(len(ds), -1), ds.labels
    return (x[:limit], y[:limit]) if limit else (x, y)


def _parse_schedule(text: str, spec) -> list[tuple[int, tuple[int, ...]]]:
    """``--lr-schedule`` 'N:LR[,LR..];…' → [(N, lr_shift tuple)], N strictly increasing, each value checked."""
    out: list[tuple[int, tuple[int, ...]]] = []
    for item in filter(None, (t.strip() for t in text.split(";"))):
        n, sep, lrs = item.partition(":")
        try:
            n_i = int(n)
            vals = tuple(int(v) for v in lrs.split(","))
        except ValueError:
            n_i, vals = -1, ()
        if not sep or n_i < 0 or not vals:
            raise CLIError(f"--lr-schedule: {item!r} is not N:LR[,LR...] (N >= 0 samples, integer lr_shift values)")
        if out and n_i <= out[-1][0]:
            raise CLIError(f"--lr-schedule: sample counts must increase, {n_i} follows {out[-1][0]}")
        try:
            out.append((n_i, spec.check_lr_shift(vals)))
        except ValueError as e:
            raise CLIError(f"--lr-schedule {item!r}: {e}") from None
    return out


@cli_main
def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from golden.eqspike.twin import EqSpikeTwin, init_weights
    from golden.fileio import atomic_write_bytes
    from spec.eqspike import EqSpikeSpec

    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=count, default=500, help="hidden layer size (default 500)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "mnist-subset"])
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    p.add_argument("--train-limit", type=count, help="first N training images (default all: one epoch)")
    p.add_argument("--test-limit", type=count, default=2000, help="test images per evaluation (default 2000)")
    p.add_argument("--final-test-limit", type=count,
                   help="test images of the final evaluation after the last sample (default: --test-limit; "
                        "10000 = the whole MNIST test set)")
    p.add_argument("--eval-every", type=count, default=5000, help="samples between evaluations (default 5000)")
    p.add_argument("--seed", type=natural, default=0, help="initialisation and shuffling seed (default 0)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a spec field")
    p.add_argument("--lr-schedule", default="", metavar="N:LR[,LR..][;N:..]",
                   help="η register writes by the host between samples: after N training samples set lr_shift "
                        "(one value per connection or one for all), e.g. '20000:8,9;40000:9,10' (default: none, "
                        "the spec's lr_shift throughout)")
    p.add_argument("--out", default=str(REPO / "bench/results/eqspike_onchip.json"), help="JSON path (PNG beside)")
    args = p.parse_args(argv)
    if args.hidden <= 0 or args.eval_every <= 0 or args.test_limit <= 0:
        raise ValueError("--hidden, --eval-every and --test-limit must be positive integers")
    d = {"layers": [784, args.hidden, 10]}
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set expects FIELD=VALUE, not {item!r}")
        k, v = item.split("=", 1)
        d[k.strip()] = parse_set_value(v)
    try:
        spec = EqSpikeSpec.from_dict(d)
    except (TypeError, ValueError) as e:
        raise CLIError(f"--hidden/--set: {e}") from None
    schedule = _parse_schedule(args.lr_schedule, spec)
    out = Path(args.out)
    if out.is_dir():
        raise CLIError(f"--out {out}: is a directory, not a file")
    for q in out.parents:
        if q.exists():
            if not q.is_dir():
                raise CLIError(f"--out {out}: {q} is a file, not a directory")
            break
    x, y = _load(args.dataset, "train", args.data_dir, args.train_limit)
    xt, yt = _load(args.dataset, "test", args.data_dir, args.test_limit)
    twin = EqSpikeTwin(spec, init_weights(spec, args.seed))
    evaluator = EqSpikeTwin(spec, twin.weights)
    order = np.random.default_rng(args.seed).permutation(len(x))
    res = {"spec": spec.to_dict(), "spec_digest": spec.digest(), "dataset": args.dataset, "train_samples": len(x),
           "test_images": len(xt), "seed": args.seed, "command": "python bench/eqspike_onchip.py " + " ".join(
               argv if argv is not None else sys.argv[1:]), "lr_schedule": [[n, list(v)] for n, v in schedule],
           "curve": [], "done": False}

    def evaluate(n, secs, correct_window):
        ev = EqSpikeTwin(spec, twin.weights)  # a fresh PRNG stream per evaluation: comparable points
        acc = float((ev.predict(xt) == yt).mean())
        rec = {"samples": n, "test_acc": acc, "train_acc_window": correct_window, "train_seconds": secs,
               "samples_per_s": n / secs if secs else None, "lr_shift": list(twin.lr_shift)}
        res["curve"].append(rec)
        atomic_write_bytes(out, json.dumps(res, indent=2).encode())
        print(f"{n:6d} samples: test {100 * acc:.2f}% ({len(xt)} images), train window {100 * correct_window:.1f}%, "
              f"{rec['samples_per_s'] or 0:.1f} samples/s", flush=True)

    del evaluator
    out.parent.mkdir(parents=True, exist_ok=True)
    evaluate(0, 0.0, 0.0)
    secs, correct, seen = 0.0, 0, 0
    writes = dict(schedule)
    for n, i in enumerate(order, 1):
        if n - 1 in writes:  # the host writes the η registers before sample n
            twin.set_lr_shift(writes[n - 1])
        t0 = time.time()
        correct += twin.train_sample(x[i], int(y[i])).pred == y[i]
        seen += 1
        secs += time.time() - t0
        if n % args.eval_every == 0 or n == len(x):
            evaluate(n, secs, correct / seen)
            correct = seen = 0
    res["final_test_images"] = len(xt)
    res["final_test_acc"] = res["curve"][-1]["test_acc"]
    if args.final_test_limit and args.final_test_limit != args.test_limit:
        xf, yf = _load(args.dataset, "test", args.data_dir, args.final_test_limit)
        t0 = time.time()
        res["final_test_images"] = len(xf)
        res["final_test_acc"] = float((EqSpikeTwin(spec, twin.weights).predict(xf) == yf).mean())
        print(f"final: test {100 * res['final_test_acc']:.2f}% ({len(xf)} images, {time.time() - t0:.0f} s)",
              flush=True)
    res["done"] = True
    atomic_write_bytes(out, json.dumps(res, indent=2).encode())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    c = res["curve"]
    ax.plot([r["samples"] for r in c], [100 * r["test_acc"] for r in c], "o-")
    ax.set_xlabel("training samples (batch 1, on-chip rule, bit-exact twin)")
    ax.set_ylabel(f"test accuracy (%), {len(xt)} images")
    ax.set_title(f"EqSpike on-chip learning, {'-'.join(map(str, spec.layers))}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
