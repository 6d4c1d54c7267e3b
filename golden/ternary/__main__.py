"""``python -m golden.ternary``: train, evaluate and export ternary/binary-weight EP MLPs.

* ``train`` — EP training with latent real weights and W_eff = 2^-a · T (docs/ternary.md),
  optionally error-aware (``--train-error-rate``); checkpoint every epoch, ``--resume``.
* ``evaluate`` — test accuracy of a checkpoint or an export, optionally under read errors
  (``--error-rate``, ``--error-mode``, one run per ``--error-seeds`` entry).
* ``export`` — the effective net for the hardware flow: int8 ``t{l}``, float32 ``b{l}``,
  ``manifest.json`` (kind, delta, alpha_shift, sha256 per array).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..clierr import ArgumentParser, CLIError, add_export_parser, cli_main
from ..clierr import finite_float_type as real
from ..clierr import nonneg_int_type as natural
from ..clierr import positive_int_type as count

TRAIN_FLAGS = (
    "layers",
    "kind",
    "delta",
    "alpha_shift",
    "init_scale",
    "latent_clip",
    "dataset",
    "data_dir",
    "T1",
    "T2",
    "beta",
    "optimizer",
    "lrs",
    "momentum",
    "lr_decay",
    "lr_decay_epochs",
    "lr_min",
    "batch_size",
    "epochs",
    "seed",
    "T_eval",
    "eval_batch_size",
    "train_limit",
    "test_limit",
    "dtype",
    "train_error_rate",
    "train_error_mode",
)
DATASETS = ["mnist", "mnist-subset"]


def _set_threads(n: int | None) -> None:
    import torch

    if n is not None:
        if n <= 0:
            raise CLIError(f"--threads must be a positive integer, not {n}")
        torch.set_num_threads(n)


def add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network")
    g.add_argument(
        "--config",
        type=Path,
        help="JSON or TOML file with the options below (underscores, e.g. alpha_shift); flags override it",
    )
    g.add_argument("--layers", type=count, nargs="+", metavar="N", help="layer sizes incl. input (default 784 500 10)")
    g.add_argument("--kind", choices=["ternary", "binary"], help="weight values {-1,0,+1} or {-1,+1} (default ternary)")
    g.add_argument("--delta", type=real, help="ternarisation threshold on the latent weights (default 0.05)")
    g.add_argument(
        "--alpha-shift",
        type=natural,
        nargs="+",
        metavar="A",
        help="per connection, alpha_l = 2^-A_l: W_eff = alpha_l * T_l (default 5 4 for 784-500-10, "
        "else round(log2 sqrt(fan_in)))",
    )
    g.add_argument(
        "--init-scale",
        type=real,
        nargs="+",
        metavar="S",
        help="latent weights start uniform in +-S (one value or one per connection; default 0.1)",
    )
    g.add_argument("--latent-clip", type=real, help="latent weights are clipped to +-C (default 1)")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, help="default mnist; mnist-subset is the shipped 2,000/500 subset")
    g.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    g.add_argument("--train-limit", type=count, metavar="N", help="use only the first N training images")
    g.add_argument("--test-limit", type=count, metavar="N", help="use only the first N test images")
    g = p.add_argument_group("EP (symmetric +-beta estimator, MSE, hard sigmoid)")
    g.add_argument("--beta", type=real, help="nudging strength (default 0.5)")
    g.add_argument("--T1", type=count, help="free-phase steps (default 30)")
    g.add_argument("--T2", type=count, help="steps of each nudged phase (default 10)")
    g.add_argument("--T-eval", type=count, help="free-phase steps at evaluation (default T1)")
    g = p.add_argument_group("optimisation (latent weights move by the EP update / alpha, see docs/ternary.md)")
    g.add_argument("--optimizer", choices=["sgd", "adam"], help="default adam")
    g.add_argument(
        "--lrs",
        type=real,
        nargs="+",
        metavar="LR",
        help="learning rate per connection, input side first (one value = all; default 1e-3)",
    )
    g.add_argument("--momentum", type=real, help="SGD momentum (default 0)")
    g.add_argument("--lr-decay", choices=["none", "cosine"], help="learning-rate schedule (default cosine)")
    g.add_argument("--lr-decay-epochs", type=count, help="cosine period in epochs (default: --epochs)")
    g.add_argument("--lr-min", type=real, help="cosine floor (default 1e-6)")
    g.add_argument("--batch-size", type=count, help="mini-batch size (default 50)")
    g.add_argument("--epochs", type=count, help="number of epochs (default 1)")
    g.add_argument("--seed", type=natural, help="seed of initialisation, shuffling and training errors (default 0)")
    g.add_argument("--eval-batch-size", type=count, help="batch size at evaluation (default 500)")
    g.add_argument("--dtype", choices=["float32", "float64"], help="default float32")
    g = p.add_argument_group("error-aware training")
    g.add_argument(
        "--train-error-rate",
        type=real,
        metavar="P",
        help="read error rate p injected during training (default 0: off)",
    )
    g.add_argument(
        "--train-error-mode",
        choices=["dynamic", "static"],
        help="dynamic: redrawn at every read (default); static: one draw per mini-batch",
    )


def config_from_args(args: argparse.Namespace):
    from ..clierr import load_config_file
    from .train import TernaryConfig

    d: dict[str, Any] = {}
    if args.config:
        d.update(load_config_file(args.config, "--config"))
    for flag in TRAIN_FLAGS:
        v = getattr(args, flag, None)
        if v is not None:
            d[flag] = v
    try:
        return TernaryConfig.from_dict(d)
    except (TypeError, ValueError) as e:
        if not args.config:
            raise
        raise CLIError(f"--config {args.config}: {e}") from None


def cmd_train(args) -> int:
    from ..distributed import cli_launch
    from .train import train

    _set_threads(args.threads)
    cfg = config_from_args(args)
    if cli_launch(train, args.nproc, "cpu", cfg.batch_size, cfg, args.out, threads=args.threads,
                  resume=args.resume, progress=args.progress, stop_after=args.stop_after):
        print(f"wrote {args.out}/checkpoint.pt, metrics.json, training.png")
    return 0


def cmd_evaluate(args) -> int:
    import numpy as np

    from ..fileio import atomic_write_bytes

    _set_threads(args.threads)
    if bool(args.checkpoint) == bool(args.export):
        raise CLIError("give exactly one of --checkpoint and --export")
    from ..data import load_dataset
    from .export import float_predict, load_ternary_export, write_ternary_export
    from .train import load_checkpoint, model_from_checkpoint

    if args.checkpoint:  # evaluate exactly what an export would hold
        import tempfile

        net, cfg = model_from_checkpoint(load_checkpoint(args.checkpoint))
        with tempfile.TemporaryDirectory() as tmp:
            exp = load_ternary_export(write_ternary_export(Path(tmp) / "export", net, cfg))
        dataset, data_dir = args.dataset or cfg.dataset, args.data_dir or cfg.data_dir
    else:
        exp = load_ternary_export(args.export)
        dataset, data_dir = args.dataset or exp.manifest["preprocessing"]["dataset"], args.data_dir
    ds = load_dataset(dataset, args.split, data_dir)
    images, labels = ds.images, ds.labels
    if args.limit is not None:
        images, labels = images[: args.limit], labels[: args.limit]
    seeds = args.error_seeds if args.error_rate > 0 else args.error_seeds[:1]
    accs = []
    for seed in seeds:
        pred = float_predict(exp, args.error_rate, args.error_mode, exp.kind, seed, images, args.T, args.batch_size)
        accs.append(float(np.mean(pred == labels)))
        print(
            f"{exp.kind} {'-'.join(map(str, exp.layers))} on {dataset} {args.split}: {100 * accs[-1]:.2f}% of "
            f"{len(labels)} (T = {args.T or exp.T1}, p = {args.error_rate:g} {args.error_mode}, seed {seed})"
        )
    res = {
        "dataset": dataset,
        "split": args.split,
        "n": len(labels),
        "T": args.T or exp.T1,
        "kind": exp.kind,
        "p": args.error_rate,
        "mode": args.error_mode,
        "seeds": list(seeds),
        "accuracy": accs,
        "mean_accuracy": float(np.mean(accs)),
    }
    if len(accs) > 1:
        print(f"mean {100 * res['mean_accuracy']:.2f}% over {len(accs)} seeds")
    if args.json:
        atomic_write_bytes(Path(args.json), json.dumps(res, indent=2).encode())
    return 0


def cmd_export(args) -> int:
    from ..export import check_array_out
    from .export import EXPORT_FORMAT, write_ternary_export
    from .train import load_checkpoint, model_from_checkpoint

    check_array_out(args.out, EXPORT_FORMAT, force=args.force)  # before any work: a foreign --out is refused
    ckpt = load_checkpoint(args.checkpoint)
    net, cfg = model_from_checkpoint(ckpt)
    hist = ckpt.get("history") or [{}]
    source = {"checkpoint": str(args.checkpoint), "epoch": ckpt["epoch"], "test_acc": hist[-1].get("test_acc")}
    write_ternary_export(args.out, net, cfg, source=source, force=args.force)
    print(f"exported {cfg.kind} {'-'.join(map(str, cfg.layers))} (alpha_shift {list(cfg.alpha_shift)}) to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m golden.ternary", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a ternary/binary-weight EP MLP",
        description="EP training with ternary/binary weights; writes checkpoint.pt (every epoch, "
        "atomically), config.json, metrics.json and training.png into --out.",
    )
    add_train_args(t)
    g = t.add_argument_group("run")
    g.add_argument("--out", type=Path, required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out bit-identically")
    g.add_argument(
        "--stop-after",
        type=count,
        metavar="N",
        help="stop after N epochs of this invocation (resume later with --resume)",
    )
    g.add_argument("--threads", type=count, help="CPU threads (torch.set_num_threads)")
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars with running accuracy (default: when stderr is a terminal)",
    )
    from ..distributed import add_nproc_arg

    add_nproc_arg(g)  # the ternary net trains on the CPU: gloo
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser(
        "evaluate",
        help="accuracy of a checkpoint or an export, optionally with read errors",
        description="Free phase of T steps on a data set with the effective (exported) net; with "
        "--error-rate the weights are read with errors (static: programmed once per "
        "seed; dynamic: redrawn at every read).",
    )
    e.add_argument("--checkpoint", help="checkpoint.pt or a run directory")
    e.add_argument("--export", help="an export directory (verified before use)")
    e.add_argument("--dataset", choices=DATASETS, help="default: the one the net was trained on")
    e.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    e.add_argument("--split", choices=["test", "train"], default="test", help="default test")
    e.add_argument("--limit", type=count, help="only the first N images")
    e.add_argument("--T", type=count, help="free-phase steps (default: the net's T1)")
    e.add_argument("--error-rate", type=real, default=0.0, metavar="P", help="mean read error rate (default 0)")
    e.add_argument("--error-mode", choices=["static", "dynamic"], default="static", help="default static")
    e.add_argument(
        "--error-seeds", type=natural, nargs="+", default=[0], metavar="SEED",
        help="one evaluation per seed (default 0)",
    )
    e.add_argument("--batch-size", type=count, default=500, help="default 500")
    e.add_argument("--threads", type=count, help="CPU threads")
    e.add_argument("--json", help="also write the result as JSON to this file")
    e.set_defaults(fn=cmd_evaluate)

    x = add_export_parser(sub, help="export the effective net for the hardware flow",
                          description="Write manifest.json (kind, delta, alpha_shift, layers, schedule, sha256 per "
                                      "array) and t{l}.npy (int8) / b{l}.npy (float32), atomically.")
    x.set_defaults(fn=cmd_export)
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
