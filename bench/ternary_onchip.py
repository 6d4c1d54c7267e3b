"""On-chip training of the ternary EP core (latent weights), in its bit-exact twin: MNIST.

The core starts either from scratch (``--from-scratch``: latent weights U(±0.1), cells their
ternary values) or from a ternary net trained in float by ``python -m golden.ternary`` (``--run``:
an image of a *training* ternary core, :func:`golden.ep_core.image.ternary_image`, with the latent
weights of the run's checkpoint rounded to ``latent_bits``). It is programmed under the chosen
faults and trains on chip, batch 1, with its own update rule (latent weights move, cells whose
ternary value changes are reprogrammed — through the injector in static mode). The test accuracy
is measured before training and every ``--eval-every`` samples, per condition (``--conditions``):

* ``faults``: training with the faults on (static: drawn while programming, also by the update);
* ``clean``: the same without faults.

The twin is bit-exact to the RTL (tests/test_ternary_core.py, tests/test_ep_core_cocotb.py), so
these are the chip's numbers. Writes JSON and a PNG (accuracy vs training samples).

    python bench/ternary_onchip.py --from-scratch --data-dir DATA --p 0.1 --mode static \\
        --train-samples 60000 --out runs/ternary/onchip
    python bench/ternary_onchip.py --run runs/ternary/t500_a54_e30 --lr-shift 11 --conditions faults clean …

``--include JSON …`` adds the conditions of earlier reports (same spec) to the JSON and figure;
with ``--conditions`` empty it only merges them (e.g. two conditions run in parallel processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden.fileio import atomic_write_bytes  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "ternary_onchip"


def training_spec(layers, alpha_shift, args):
    """The training ternary core the image is built for (formats from the export, numbers from args)."""
    from spec.ep_core import EPCoreSpec

    n = len(layers) - 1
    lat = {} if args.latent_bits is None else {"latent_bits": [args.latent_bits] * n}
    if args.latent_threshold is not None:
        lat["latent_threshold"] = [args.latent_threshold] * n
    spec = EPCoreSpec(layers=tuple(layers), lanes=args.lanes, weight_kind="ternary", weight_bits=(2,),
                      weight_frac=tuple(alpha_shift), training=True, fault_injection=True,
                      update_rounding=args.rounding, estimator=args.estimator, beta_shift_max=0, beta_shift=0,
                      lr_shift=args.lr_shift, T1=args.T1, T2=args.T2, **lat)
    # β range: what the output layer's format keeps exact, at most 4 (a larger --beta-shift is refused)
    bmax = max(args.beta_shift, min(4, spec.beta_shift_room))
    return dataclasses.replace(spec, beta_shift_max=bmax, beta_shift=args.beta_shift)


def load_net(run: Path, base):
    """(spec, integer weights, info) of a golden.ternary run: its export, latent weights from its checkpoint."""
    from golden.ep_core.image import ternary_image
    from golden.ternary.export import load_ternary_export

    exp = load_ternary_export(run / "export")
    latent = None
    if (run / "checkpoint.pt").is_file():
        from golden.ternary.train import load_checkpoint, model_from_checkpoint

        net, _ = model_from_checkpoint(load_checkpoint(run))
        latent = [getattr(net, f"w{l}").detach().double().numpy() for l in range(len(exp.layers) - 1)]
    return ternary_image(exp, base, where=str(run / "export"), latent=latent)


def run_condition(spec, weights, faults: dict | None, x, y, xt, yt, args, label: str, log) -> dict[str, Any]:
    from tqdm import tqdm

    from golden.ep_core import EPCoreTwin, Registers
    from golden.ep_core.faults import configure
    from spec.ep_core import REG_TINJECTED

    twin = EPCoreTwin(spec, weights)
    info = None
    if faults is not None:
        info = configure(twin, weights, faults["p"], faults["mode"], faults["kind"], seed=faults["seed"])
    regs = Registers.from_spec(spec, train=True)
    ev = Registers.from_spec(spec)

    def accuracy() -> float:
        return float((twin.predict(xt, ev) == yt).mean())

    hist = [{"samples": 0, "test_acc": accuracy(), "injected": twin.read_memory_reg(REG_TINJECTED)}]
    log(f"  {label}: before training {100 * hist[0]['test_acc']:.2f}%")
    order = np.random.default_rng(args.seed).permutation(len(x))[:args.train_samples]
    correct, t0, seen = 0, time.time(), 0
    bar = tqdm(order, desc=label, unit="sample", disable=not sys.stderr.isatty(), mininterval=1.0)
    for n, i in enumerate(bar, start=1):
        correct += twin.train_sample(x[i], int(y[i]), regs).pred == y[i]
        seen += 1
        if n % args.eval_every == 0 or n == len(order):
            rec = {"samples": n, "train_acc": correct / seen, "test_acc": accuracy(),
                   "injected": twin.read_memory_reg(REG_TINJECTED), "samples_per_s": n / (time.time() - t0)}
            hist.append(rec)
            log(f"  {label}: {n} samples: train {100 * rec['train_acc']:.2f}%  test {100 * rec['test_acc']:.2f}%  "
                f"(injected so far {rec['injected']})")
            correct, seen = 0, 0
    return {"label": label, "faults": info, "history": hist}


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in res["conditions"]:
        h = c["history"]
        ax.plot([r["samples"] for r in h], [100 * r["test_acc"] for r in h], marker="o", label=c["label"])
    if res.get("run"):
        ax.axhline(100 * res["accuracy_of_image"], color="gray", ls=":", label="image, no faults, before training")
    ax.set_xlabel("on-chip training samples (batch 1)")
    ax.set_ylabel(f"MNIST test accuracy (%, {res['test_images']} images)")
    ax.set_title(f"ternary {'-'.join(map(str, res['spec']['layers']))} on-chip training (twin = RTL)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


from golden.clierr import ArgumentParser, cli_main  # noqa: E402
from spec.prng import ALLOW_REUSE_FLAG, check_prng_limit  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path,
                     help="a python -m golden.ternary run directory (export/ and checkpoint.pt; kind ternary)")
    src.add_argument("--from-scratch", action="store_true", help="start from random latent weights")
    p.add_argument("--layers", type=int, nargs="+", default=[784, 500, 10],
                   help="layer sizes with --from-scratch (default 784 500 10; α from golden.ternary's default)")
    p.add_argument("--init-seed", type=int, default=0, help="initial weights' seed with --from-scratch (default 0)")
    p.add_argument("--conditions", nargs="*", choices=["faults", "clean"], default=["faults", "clean"],
                   help="faults: train with the faults on; clean: without (default both; none: only --include)")
    p.add_argument("--include", type=Path, nargs="*", default=[],
                   help="earlier reports (same spec) whose conditions join this report and figure")
    p.add_argument("--data-dir", help="dataset root (default: EPFORGE_DATA or the package default)")
    p.add_argument("--p", type=float, default=0.1, help="mean error rate of the faults (default 0.1)")
    p.add_argument("--mode", choices=["static", "dynamic"], default="static",
                   help="static: drawn when cells are programmed (also by the update); dynamic: at every read")
    p.add_argument("--kind", choices=["adjacent", "flip"], default="adjacent", help="error kind (default adjacent)")
    p.add_argument("--fault-seed", type=int, default=3, help="seed of the memory's PRNG (default 3)")
    p.add_argument("--train-samples", type=int, default=20000, help="on-chip training samples (default 20000)")
    p.add_argument("--eval-every", type=int, default=2000, help="evaluate every N samples (default 2000)")
    p.add_argument("--test-limit", type=int, default=10000, help="test images (default 10000: all)")
    p.add_argument("--lanes", type=int, default=16, help="P (default 16; the numbers do not depend on it)")
    p.add_argument("--latent-bits", type=int, help="latent weight width (default: the spec's, 8)")
    p.add_argument("--latent-threshold", type=int, help="Δ in latent LSBs (default: the spec's, round(0.05·2^frac))")
    p.add_argument("--lr-shift", type=int, default=9, help="η = 2^-SHIFT (default 9)")
    p.add_argument("--beta-shift", type=int, default=1, help="β = 2^-SHIFT (default 1: β = 0.5)")
    p.add_argument("--T1", type=int, default=30, help="free-phase steps (default 30)")
    p.add_argument("--T2", type=int, default=10, help="nudged-phase steps (default 10)")
    p.add_argument("--estimator", choices=["symmetric", "one-sided"], default="symmetric",
                   help="gradient estimator (default symmetric)")
    p.add_argument("--rounding", choices=["half_up", "floor"], default="half_up",
                   help="update rounding (default half_up; ternary cores have no PRNG for stochastic rounding)")
    p.add_argument("--seed", type=int, default=0, help="sample order seed (default 0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument(ALLOW_REUSE_FLAG, action="store_true", help="run the faults condition even if its memory "
                   "accesses exceed the fault injector's independent draws (prints a note)")
    args = p.parse_args(argv)
    from golden.fileio import claim_output_dir

    # refused before any work: a directory marked by another command, or one holding these files not written by
    # this bench (its own earlier results are refreshed)
    claim_output_dir(args.out, "ternary-onchip-bench", writes=('ternary_onchip.json', 'ternary_onchip.png'), force=True)
    for name in ("train_samples", "eval_every", "test_limit", "lanes"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, not {getattr(args, name)}")
    if not args.conditions and not args.include:
        p.error("--conditions is empty and nothing is --include'd: nothing to report")
    if not 0.0 <= args.p <= 0.5:
        p.error(f"--p must be a probability in [0, 0.5], not {args.p}")

    from golden.data import load_mnist_or_subset
    from golden.ep_core import EPCoreTwin, Registers
    from golden.ep_core.twin import init_weights, pixels_to_input

    try:
        if args.from_scratch:
            from golden.ternary.train import default_alpha_shift

            spec = training_spec(args.layers, default_alpha_shift(tuple(args.layers)), args)
            weights, info = init_weights(spec, args.init_seed), {"init": "U(±0.1) latent", "seed": args.init_seed}
        else:
            from golden.ternary.export import load_ternary_export

            exp = load_ternary_export(args.run / "export")
            spec, weights, info = load_net(args.run, training_spec(exp.layers, exp.alpha_shift, args))
    except ValueError as e:
        p.error(str(e))
    included = []
    for path in args.include:
        old = json.loads(path.read_text())
        if old.get("spec") != spec.to_dict():
            p.error(f"--include {path}: its spec differs from this run's")
        included += old["conditions"]

    datasets = {}

    def data(split, limit=None):
        ds = load_mnist_or_subset(split, data_dir=args.data_dir)  # the embedded subset when MNIST is absent
        datasets[split] = ds.name
        xs = pixels_to_input(spec, ds.images.reshape(len(ds), -1).astype(np.int64))
        return (xs, ds.labels) if limit is None else (xs[:limit], ds.labels[:limit])

    x, y = data("train")
    xt, yt = data("test", args.test_limit)
    if datasets["train"] != "mnist":
        print(f"note: full MNIST not found under {args.data_dir or 'the default data dir'}: using {datasets['train']}")
    if "faults" in args.conditions:  # refused before any work: one seeding serves the whole condition
        n = min(args.train_samples, len(x))
        evals = 1 + len({*range(args.eval_every, n + 1, args.eval_every), n})
        per = spec.memory_reads_per_inference()
        # a lower bound: every training sample reads at least one free phase (its nudged phases and update
        # writes draw more), every evaluation reads one free phase per test image
        check_prng_limit(spec.ternary_memory_spec().access_limit_message(
            (n + evals * len(xt)) * per, "weight-memory accesses",
            f"layers={'-'.join(map(str, spec.layers))}, lanes={spec.lanes}, T1={spec.T1} ({per} reads per "
            f"free phase), --mode {args.mode}, {n} training samples + {evals} evaluations of {len(xt)} images, "
            "at least"), args.allow_prng_reuse)
    clean = float((EPCoreTwin(spec, weights).predict(xt, Registers.from_spec(spec)) == yt).mean())
    print(f"core: {'-'.join(map(str, spec.layers))} ternary, latent {spec.latent_bits} bits (frac {spec.latent_frac}, "
          f"Δ {spec.latent_threshold}), η = 2^-{spec.lr_shift}; accuracy before training, no faults: "
          f"{100 * clean:.2f}%", flush=True)
    faults = {"p": args.p, "mode": args.mode, "kind": args.kind, "seed": args.fault_seed}
    conds = []
    for c in args.conditions:
        label = f"{args.mode} {args.kind} p={args.p:g}" if c == "faults" else "no faults"
        conds.append(run_condition(spec, weights, faults if c == "faults" else None, x, y, xt, yt, args,
                                   label, print))
    conds += included
    res = {"format": "epforge-ternary-onchip/1", "created": dt.datetime.now(dt.UTC).isoformat(),
           "command": " ".join(sys.argv), "run": None if args.from_scratch else str(args.run), "spec": spec.to_dict(),
           "start": info, "accuracy_of_image": clean, "data": datasets, "test_images": len(xt),
           "train_samples": max(c["history"][-1]["samples"] for c in conds),
           "registers": {"lr_shift": spec.lr_shift, "beta_shift": spec.beta_shift, "T1": spec.T1, "T2": spec.T2,
                         "estimator": spec.estimator, "update_rounding": spec.update_rounding},
           "conditions": conds, "host": platform.node()}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "ternary_onchip.json", json.dumps(res, indent=2).encode())
    plot(res, args.out / "ternary_onchip.png")
    for c in conds:
        h = c["history"]
        print(f"{c['label']}: {100 * h[0]['test_acc']:.2f}% → {100 * h[-1]['test_acc']:.2f}% after "
              f"{h[-1]['samples']} samples (best {100 * max(r['test_acc'] for r in h):.2f}%)")
    print(f"wrote {args.out / 'ternary_onchip.json'} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
