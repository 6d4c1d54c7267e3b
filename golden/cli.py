"""``python -m golden``: train, evaluate, compare with BPTT (gdu) and export float EP networks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .clierr import ArgumentParser, CLIError, add_export_parser, cli_main, describe
from .clierr import finite_float_type as real
from .clierr import nonneg_int_type as natural
from .clierr import positive_int_type as count

PRESETS: dict[str, dict[str, Any]] = {
    # Laborieux et al.'s MNIST MLP check, symmetric estimator (ALGORITHMS.md §1)
    "mnist-mlp": {"net": {"kind": "mlp", "layers": [784, 512, 10], "activation": "my_sigmoid"},
                  "dataset": "mnist", "T1": 30, "T2": 10, "beta": 0.1, "estimator": "symmetric",
                  "optimizer": "adam", "lrs": [5e-4, 5e-4], "lr_decay": "cosine", "batch_size": 50, "epochs": 30},
    # Ernoult et al.'s P-conv: 1-32-64, 5×5, max-pool, fc 10, hard sigmoid, T1 200, T2 10, β 0.4, plain SGD,
    # batch 20; their lr_tab lists layers output-first (0.015 0.035 0.15), ours input-first
    "mnist-conv": {"net": {"kind": "conv", "in_shape": [1, 28, 28], "channels": [32, 64], "kernels": [5, 5],
                           "pools": "mm", "fc": [10], "activation": "hard_sigmoid"},
                   "dataset": "mnist", "T1": 200, "T2": 10, "beta": 0.4, "estimator": "symmetric",
                   "optimizer": "sgd", "lrs": [0.15, 0.035, 0.015], "batch_size": 20, "epochs": 40,
                   "eval_batch_size": 500},
    # Laborieux et al.'s CIFAR-10 ConvNet, symmetric estimator with the CE read-out
    "cifar10-conv": {"net": {"kind": "conv", "in_shape": [3, 32, 32], "channels": [128, 256, 512, 512],
                             "kernels": [3, 3, 3, 3], "paddings": [1, 1, 1, 0], "pools": "mmmm", "fc": [10],
                             "activation": "my_hard_sig", "loss": "ce"},
                     "dataset": "cifar10", "T1": 250, "T2": 25, "beta": 1.0, "estimator": "symmetric",
                     "optimizer": "sgd", "lrs": [0.25, 0.15, 0.1, 0.08, 0.05], "momentum": 0.9,
                     "weight_decay": [3e-4], "lr_decay": "cosine", "lr_decay_epochs": 100, "batch_size": 128,
                     "epochs": 120, "data_aug": True, "eval_batch_size": 200},
}

NET_FLAGS = {  # CLI dest -> NetSpec field
    "model": "kind", "layers": "layers", "in_shape": "in_shape", "channels": "channels", "kernels": "kernels",
    "strides": "strides", "paddings": "paddings", "pools": "pools", "fc": "fc", "activation": "activation",
    "loss": "loss", "connections": "connections", "same_update": "same_update", "init_scale": "init_scale",
}
TRAIN_FLAGS = ("dataset", "data_dir", "alg", "T1", "T2", "beta", "estimator", "settle_tol", "optimizer", "lrs",
               "momentum", "weight_decay", "lr_decay", "lr_decay_epochs", "lr_min", "batch_size", "epochs", "seed",
               "T_eval", "eval_batch_size", "data_aug", "train_limit", "test_limit", "dtype")


def add_net_args(p: argparse.ArgumentParser) -> None:
    from .ep.activations import ACTIVATIONS

    g = p.add_argument_group("network (overrides the preset / config file)")
    g.add_argument("--preset", choices=sorted(PRESETS),
                   help="start from a published configuration: " + "; ".join(
                       f"{k}: {v['net']['kind']} on {v['dataset']}" for k, v in PRESETS.items()))
    g.add_argument("--model", choices=["mlp", "conv"], help="network kind")
    g.add_argument("--layers", type=count, nargs="+", metavar="N", help="MLP layer sizes incl. input, e.g. 784 512 10")
    g.add_argument("--in-shape", type=count, nargs=3, metavar=("C", "H", "W"), help="ConvNet input shape")
    g.add_argument("--channels", type=count, nargs="+", metavar="C", help="conv output channels per layer")
    g.add_argument("--kernels", type=count, nargs="+", metavar="K", help="conv kernel size per layer")
    g.add_argument("--strides", type=count, nargs="+", metavar="S", help="conv stride per layer (default 1)")
    g.add_argument("--paddings", type=natural, nargs="+", metavar="P", help="conv zero padding per layer (default 0)")
    g.add_argument("--pools", help="one letter per conv layer: m = 2×2 max-pool, a = average, i = none")
    g.add_argument("--fc", type=count, nargs="+", metavar="N",
                   help="fully connected sizes after the convs (last = classes)")
    g.add_argument("--activation", choices=sorted(ACTIVATIONS), help="neuron activation ρ")
    g.add_argument("--loss", choices=["mse", "ce"], help="mse: nudge the output layer; ce: softmax read-out")
    g.add_argument("--connections", choices=["symmetric", "vf"],
                   help="symmetric weights (an energy) or separate feedback weights (vector field)")
    g.add_argument("--same-update", action="store_true", default=None,
                   help="vf only: feedback weights receive the forward weights' update")
    g.add_argument("--init-scale", type=real, nargs="+", metavar="G",
                   help="scale of the default initialisation, one value or one per weight layer")
    g.add_argument("--config", type=Path, help="TOML or JSON file with the same keys as these flags "
                   "(underscores, e.g. batch_size) and the network in a [net] table; flags override it")


def add_train_args(p: argparse.ArgumentParser) -> None:
    add_net_args(p)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10", "mnist-subset"],
                   help="data set (default mnist); mnist-subset is the 2,000/500-image subset shipped with epforge")
    g.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    g.add_argument("--train-limit", type=count, metavar="N", help="use only the first N training images")
    g.add_argument("--test-limit", type=count, metavar="N", help="use only the first N test images")
    g.add_argument("--data-aug", action="store_true", default=None, help="CIFAR-10: random flips and 4-px crops")
    g = p.add_argument_group("algorithm")
    g.add_argument("--alg", choices=["ep", "cep", "bptt"],
                   help="ep (default), continual EP (weights move at every nudged step) or BPTT")
    g.add_argument("--estimator", choices=["one-sided", "random-sign", "symmetric"],
                   help="EP gradient estimator (default symmetric)")
    g.add_argument("--beta", type=real, help="nudging strength β (default 0.1)")
    g.add_argument("--T1", type=count, help="free-phase steps (default 30)")
    g.add_argument("--T2", type=count, help="nudged-phase steps (default 10)")
    g.add_argument("--T-eval", type=count, help="free-phase steps at evaluation (default T1)")
    g.add_argument("--settle-tol", type=real, metavar="TOL",
                   help="end the free phase early once one step moves no neuron of the batch by more than TOL "
                        "(default: off, always T1 steps as published)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=["sgd", "adam"], help="default sgd")
    g.add_argument("--lrs", type=real, nargs="+", metavar="LR",
                   help="learning rate per weight layer, input side first (one value = all layers)")
    g.add_argument("--momentum", type=real, help="SGD momentum (default 0)")
    g.add_argument("--weight-decay", type=real, nargs="+", metavar="WD", help="per layer or one value (default 0)")
    g.add_argument("--lr-decay", choices=["none", "cosine"], help="learning-rate schedule (default none)")
    g.add_argument("--lr-decay-epochs", type=count, help="cosine period in epochs (default: --epochs)")
    g.add_argument("--lr-min", type=real, help="cosine floor (default 1e-5)")
    g.add_argument("--batch-size", type=count, help="mini-batch size (default 50)")
    g.add_argument("--epochs", type=count, help="number of epochs (default 1)")
    g.add_argument("--seed", type=natural, help="seed of initialisation, shuffling and random signs (default 0)")
    g.add_argument("--eval-batch-size", type=count, help="batch size at evaluation (default 500)")
    g.add_argument("--dtype", choices=["float32", "float64"], help="default float32")


def load_config_file(path: Path) -> dict[str, Any]:
    from .clierr import load_config_file as load

    return load(path, "--config")


def _preset(name: Any, where: str) -> dict[str, Any]:
    if not isinstance(name, str) or name not in PRESETS:
        raise CLIError(f"{where}: unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}")
    return json.loads(json.dumps(PRESETS[name]))


def config_from_args(args: argparse.Namespace):
    """Merge defaults ← preset ← config file ← command-line flags into a TrainConfig."""
    from .ep.config import NetSpec
    from .train import TrainConfig

    d: dict[str, Any] = {}
    net: dict[str, Any] = {}
    if args.preset:
        preset = _preset(args.preset, "--preset")
        net.update(preset.pop("net"))
        d.update(preset)
    if getattr(args, "config", None):
        filed = load_config_file(args.config)
        if "preset" in filed:
            preset = _preset(filed.pop("preset"), f"--config {args.config}")
            net.update(preset.pop("net"))
            d.update(preset)
        filed_net = filed.pop("net", {})
        if not isinstance(filed_net, dict):
            raise CLIError(f"--config {args.config}: 'net' must be a table of network fields, not {filed_net!r}")
        net.update(filed_net)
        d.update(filed)
    for flag, field in NET_FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            net[field] = v
    for flag in TRAIN_FLAGS:
        v = getattr(args, flag, None)
        if v is not None:
            d[flag] = v
    if net.get("kind") == "conv" and "layers" in net:
        if getattr(args, "layers", None) is not None:
            raise CLIError("--layers is for --model mlp; a ConvNet takes --in-shape, --channels, --kernels and --fc")
        net.pop("layers")
    try:
        d["net"] = NetSpec.from_dict(net) if net else NetSpec()
        return TrainConfig.from_dict(d)
    except (TypeError, ValueError) as e:
        if not getattr(args, "config", None):
            raise
        raise CLIError(f"--config {args.config}: {e}") from None


def set_threads(n: int | None) -> None:
    import torch

    if n is not None:
        if n <= 0:
            raise CLIError(f"--threads must be a positive integer, not {n}")
        torch.set_num_threads(n)


# ----------------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from . import distributed as D
    from .train import train

    set_threads(args.threads)
    cfg = config_from_args(args)
    single = None if cfg.alg == "ep" else f"data-parallel training supports --alg ep only, not {cfg.alg!r}"
    if D.cli_launch(train, args.nproc, args.device, cfg.batch_size, cfg, args.out, single=single, threads=args.threads,
                    resume=args.resume, progress=args.progress, stop_after=args.stop_after):
        print(f"wrote {args.out}/checkpoint.pt, metrics.json, training.png")
    return 0


def _load_model(args):
    """A network and its preprocessing/T1 from --checkpoint or --export."""
    import torch

    from .ep.network import EPNet
    from .train import load_checkpoint, model_from_checkpoint

    if bool(args.checkpoint) == bool(args.export):
        raise CLIError("give exactly one of --checkpoint and --export")
    if args.checkpoint:
        path = Path(args.checkpoint)
        if path.is_dir():
            path = path / "checkpoint.pt"
        try:
            net, cfg = model_from_checkpoint(load_checkpoint(path))
        except (OSError, ValueError) as e:
            raise CLIError(f"--checkpoint {args.checkpoint}: {describe(e)}") from None
        return net, {"dataset": cfg.dataset, "T1": cfg.T1, "data_dir": cfg.data_dir}
    from .export import load_export

    try:
        spec, arrays, manifest = load_export(args.export)
    except ValueError as e:
        raise CLIError(f"--export {args.export}: {e}") from None
    dtype = torch.float64 if all(a.dtype.name == "float64" for a in arrays.values()) else torch.float32
    net = EPNet(spec, dtype=dtype)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(arrays[name]))
    try:
        info = {"dataset": manifest["preprocessing"]["dataset"], "T1": manifest.get("schedule", {}).get("T1"),
                "data_dir": None}
    except (KeyError, TypeError, AttributeError):
        raise CLIError(f"--export {args.export}: the manifest has no preprocessing.dataset") from None
    return net, info


def cmd_evaluate(args) -> int:
    from .train import evaluate, load_split

    set_threads(args.threads)
    net, info = _load_model(args)
    dataset = args.dataset or info["dataset"]
    T = args.T if args.T is not None else info["T1"]
    if T is None:
        raise CLIError("the export records no T1; pass --T")
    from .train import TrainConfig

    cfg = TrainConfig(net=net.spec, dataset=dataset, data_dir=args.data_dir or info["data_dir"],
                      lrs=(1.0,), test_limit=args.limit, train_limit=args.limit)
    split = load_split(cfg, args.split)
    acc = evaluate(net, split.x, split.y, T, args.batch_size, progress=sys.stderr.isatty())
    res = {"dataset": dataset, "split": args.split, "n": len(split.x), "T": T, "accuracy": acc}
    print(f"{dataset} {args.split}: {100 * acc:.2f}% of {len(split.x)} (T = {T})")
    if args.json:
        from .train import atomic_write_bytes

        atomic_write_bytes(Path(args.json), json.dumps(res, indent=2).encode())
    return 0


def cmd_export(args) -> int:
    from .export import write_export
    from .train import CIFAR_MEAN, CIFAR_STD3, load_checkpoint, model_from_checkpoint

    path = Path(args.checkpoint)
    if path.is_dir():
        path = path / "checkpoint.pt"
    from .export import EXPORT_FORMAT, check_array_out

    check_array_out(args.out, EXPORT_FORMAT, force=args.force)  # before any work: a foreign --out is refused
    try:
        ckpt = load_checkpoint(path)
        net, cfg = model_from_checkpoint(ckpt)
    except (OSError, ValueError) as e:
        raise CLIError(f"--checkpoint {args.checkpoint}: {describe(e)}") from None
    arrays = {k: v.detach().cpu().numpy() for k, v in net.named_parameters()}
    if cfg.dataset == "cifar10":
        pre = {"dataset": cfg.dataset, "input": "(pixel/255 - mean) / std", "mean": CIFAR_MEAN, "std": CIFAR_STD3}
    else:
        pre = {"dataset": cfg.dataset, "input": "pixel/255"}
    hist = ckpt.get("history") or [{}]
    extra = {"schedule": {"T1": cfg.T1, "T2": cfg.T2, "beta": cfg.beta, "estimator": cfg.estimator},
             "source": {"checkpoint": str(path), "epoch": ckpt["epoch"], "test_acc": hist[-1].get("test_acc")}}
    write_export(args.out, net.spec, arrays, preprocessing=pre, extra=extra, force=args.force)
    print(f"exported {len(arrays)} arrays to {args.out}")
    return 0


def cmd_gdu(args) -> int:
    from .gdu import run_gdu

    set_threads(args.threads)
    run_gdu(args, None if args.checkpoint else config_from_args(args).net)
    return 0


# ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m golden", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a float EP network",
                       description="Train an EP network; writes checkpoint.pt (every epoch, atomically), "
                                   "metrics.json and training.png into --out.")
    add_train_args(t)
    g = t.add_argument_group("run")
    g.add_argument("--out", type=Path, required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out bit-identically")
    g.add_argument("--stop-after", type=count, metavar="N",
                   help="stop after N epochs of this invocation (resume later with --resume)")
    g.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    g.add_argument("--threads", type=count, help="CPU threads (torch.set_num_threads)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: when stderr is a terminal)")
    from .distributed import add_nproc_arg

    add_nproc_arg(g)
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("evaluate", help="accuracy of a checkpoint or an export",
                       description="Run the free phase on a data set and report the accuracy.")
    e.add_argument("--checkpoint", help="checkpoint.pt or a run directory")
    e.add_argument("--export", help="an export directory (manifest.json + arrays), verified before use")
    e.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10", "mnist-subset"],
                   help="default: the one the model was trained on")
    e.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    e.add_argument("--split", choices=["test", "train"], default="test", help="default test")
    e.add_argument("--limit", type=count, help="only the first N images")
    e.add_argument("--T", type=count, help="free-phase steps (default: the model's T1)")
    e.add_argument("--batch-size", type=count, default=500, help="default 500")
    e.add_argument("--threads", type=count, help="CPU threads")
    e.add_argument("--json", help="also write the result as JSON to this file")
    e.set_defaults(fn=cmd_evaluate)

    x = add_export_parser(sub, help="export a checkpoint's weights for the hardware flow",
                          description="Write manifest.json (network, preprocessing, schedule, sha256 per array) "
                                      "and one .npy per parameter, atomically.")
    x.set_defaults(fn=cmd_export)

    d = sub.add_parser("gdu", help="compare EP updates with BPTT gradients (GDU check)",
                       description="Run EP's nudged phase(s) and BPTT through the last T2 free steps on a "
                                   "batch, per estimator and β; report per-layer cosine and relative error of "
                                   "the EP update against −∇BPTT (JSON) and plot the step-by-step curves.")
    add_net_args(d)
    d.add_argument("--checkpoint", help="use a trained network (default: a fresh one from --seed)")
    d.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "cifar10", "mnist-subset"],
                   help="where the batch comes from (default mnist)")
    d.add_argument("--data-dir", help="data root")
    d.add_argument("--betas", type=real, nargs="+", default=[0.01, 0.1], help="β values (default 0.01 0.1)")
    d.add_argument("--estimators", nargs="+", default=["one-sided", "random-sign", "symmetric"],
                   choices=["one-sided", "random-sign", "symmetric"], help="default: all three")
    d.add_argument("--T1", type=count, default=30, help="free-phase steps (default 30)")
    d.add_argument("--T2", type=count, default=10, help="nudged steps = BPTT window (default 10)")
    d.add_argument("--batch", type=count, default=20, help="number of training images (default 20)")
    d.add_argument("--seed", type=natural, default=0, help="initialisation and random-sign seed (default 0)")
    d.add_argument("--dtype", choices=["float32", "float64"], default="float64", help="default float64")
    d.add_argument("--threads", type=count, help="CPU threads")
    d.add_argument("--out", type=Path, required=True, help="directory for gdu.json and gdu.png")
    d.set_defaults(fn=cmd_gdu)
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)
