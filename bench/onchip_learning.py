"""On-chip learning of the EP core, in its bit-exact twin: MNIST from scratch, batch 1.

Trains a 784-H-10 core (default 784-128-10, 16-bit weights) with the chip's own update rule for
several epochs, once per update rounding mode, and reports test accuracy per epoch (JSON + PNG).
The twin is bit-exact to the RTL (tests/test_ep_core_amsim.py), so these are the chip's numbers.

    python bench/onchip_learning.py --data-dir ../shared/data            # floor vs half_up, 3 epochs
    python bench/onchip_learning.py --data-dir ../shared/data --epochs 1 --roundings half_up stochastic floor
    python bench/onchip_learning.py --data-dir ../shared/data --estimator random-sign

Stochastic rounding and the random-sign estimator draw their bits from the core's PRNG
(spec/ep_core.py, "Randomness"), seeded with --prng-seed; the twin reproduces the chip's stream.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run(spec, regs_kw, x, y, xt, yt, epochs, seed, log):
    import numpy as np

    from golden.ep_core import EPCoreTwin, Registers, init_weights

    twin = EPCoreTwin(spec, init_weights(spec, seed))
    regs = Registers.from_spec(spec, train=True, **regs_kw)
    eval_regs = Registers.from_spec(spec, **regs_kw)
    rng = np.random.default_rng(seed)
    hist = []
    for epoch in range(epochs):
        t0 = time.time()
        correct = 0
        for i in rng.permutation(len(x)):
            correct += twin.train_sample(x[i], int(y[i]), regs).pred == y[i]
        preds = twin.predict(xt, eval_regs)
        rec = {"epoch": epoch + 1, "train_acc": correct / len(x), "test_acc": float((preds == yt).mean()),
               "seconds": time.time() - t0}
        hist.append(rec)
        log(f"  {spec.update_rounding:10s} epoch {epoch + 1}: train {100 * rec['train_acc']:.2f}%  "
            f"test {100 * rec['test_acc']:.2f}%  ({rec['seconds']:.0f} s)")
    return hist


from golden.clierr import ArgumentParser, cli_main  # noqa: E402
from spec.prng import ALLOW_REUSE_FLAG, check_prng_limit  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=128, help="hidden layer size (default 128)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per rounding mode (default 3)")
    p.add_argument("--roundings", nargs="+", default=["floor", "half_up"], choices=["floor", "half_up", "stochastic"],
                   help="update rounding modes to compare (default floor half_up)")
    p.add_argument("--estimator", default="symmetric", choices=["one-sided", "symmetric", "random-sign"],
                   help="gradient estimator (default symmetric)")
    p.add_argument("--prng-seed", type=int, default=1,
                   help="seed of the core's PRNG (stochastic rounding, random sign; default 1)")
    p.add_argument("--lr-shift", type=int, default=6, help="η = 2^-SHIFT (default 6)")
    p.add_argument("--beta-shift", type=int, default=1, help="β = 2^-SHIFT (default 1)")
    p.add_argument("--weight-bits", type=int, default=16, help="weight width (default 16)")
    p.add_argument("--weight-frac", type=int, default=12, help="weight fractional bits (default 12)")
    p.add_argument("--T1", type=int, default=30, help="free-phase steps (default 30)")
    p.add_argument("--T2", type=int, default=10, help="nudged-phase steps (default 10)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "mnist-subset"])
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    p.add_argument("--train-limit", type=int, help="first N training images only")
    p.add_argument("--seed", type=int, default=0, help="initialisation/shuffling seed (default 0)")
    p.add_argument("--out", type=Path, default=REPO / "bench/results/onchip_learning",
                   help="output directory for onchip_learning.json and .png")
    p.add_argument(ALLOW_REUSE_FLAG, action="store_true",
                   help="train even if epochs × images exceed the PRNG's independent samples (prints a note)")
    args = p.parse_args(argv)
    from golden.fileio import claim_output_dir

    # refused before any work: a directory marked by another command, or one holding these files not written by
    # this bench (its own earlier results are refreshed)
    claim_output_dir(args.out, "onchip-learning-bench", writes=("onchip_learning.json", "onchip_learning.png"),
                     force=True)
    import numpy as np

    from golden.data import load_dataset
    from golden.train import atomic_write_bytes
    from spec.ep_core import EPCoreSpec

    tr = load_dataset(args.dataset, "train", data_dir=args.data_dir)
    te = load_dataset(args.dataset, "test", data_dir=args.data_dir)
    x, y = tr.images.reshape(len(tr), -1).astype(np.int64), tr.labels
    if args.train_limit:
        x, y = x[:args.train_limit], y[:args.train_limit]
    xt, yt = te.images.reshape(len(te), -1).astype(np.int64), te.labels
    specs = {rounding: EPCoreSpec(layers=(784, args.hidden, 10), weight_bits=(args.weight_bits,),
                                  weight_frac=(args.weight_frac,), bias_bits=20, update_rounding=rounding,
                                  T1=args.T1, T2=args.T2, lr_shift=args.lr_shift, beta_shift=args.beta_shift,
                                  estimator=args.estimator, seed=args.prng_seed)
             for rounding in args.roundings}
    for spec in specs.values():  # refused before any training: one seeding serves every epoch
        check_prng_limit(spec.training_limit_message(args.epochs * len(x)), args.allow_prng_reuse)
    results = {}
    for rounding, spec in specs.items():
        print(f"{rounding}: 784-{args.hidden}-10, {args.estimator}, η = 2^-{args.lr_shift}, β = 2^-{args.beta_shift}, "
              f"{args.weight_bits}-bit weights (frac {args.weight_frac})", flush=True)
        results[rounding] = {"spec": spec.to_dict(),
                             "epochs": run(spec, {}, x, y, xt, yt, args.epochs, args.seed,
                                           lambda s: print(s, flush=True))}
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"bench": "onchip_learning", "dataset": args.dataset, "train_images": len(x), "estimator": args.estimator,
              "results": results}
    atomic_write_bytes(args.out / "onchip_learning.json", json.dumps(report, indent=2).encode())
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for rounding, r in results.items():
        ax.plot([e["epoch"] for e in r["epochs"]], [100 * e["test_acc"] for e in r["epochs"]], "o-",
                label=f"update rounding: {rounding}")
    ax.set_xlabel("epoch (batch 1, on-chip rule)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"EP core on-chip learning, 784-{args.hidden}-10, {args.estimator} ({args.dataset})")
    ax.grid(alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(args.out / "onchip_learning.png", buf.getvalue())
    print(f"wrote {args.out}/onchip_learning.json and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
