"""``python -m golden.eqspike``: train, evaluate and export float EqSpike nets; the STDP window; event counts.

* ``train`` — spike-driven EP training (docs/eqspike.md); checkpoint.pt every epoch (atomically),
  metrics.json and training.png; ``--resume`` continues bit-identically.
* ``evaluate`` — spiking free-phase accuracy of a checkpoint or an export.
* ``export`` — manifest.json (network, EqSpike constants, sha256 per array) + one .npy per parameter.
* ``stdp`` — the pair protocol: ΔW against the delay between a presynaptic spike and a rise/fall of
  the postsynaptic trace (JSON + PNG).
* ``events`` — per sample and phase: spikes, synaptic events, weight-update events, and an energy
  estimate against rate-based EP on a GPU (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..clierr import ArgumentParser, add_export_parser, cli_main, finite_float_type, nonneg_int_type, positive_int_type

PRESETS: dict[str, dict[str, Any]] = {
    # the full-MNIST accuracy run (docs/eqspike.md §5, measured on a GPU: 98.32 % test): 784-500-10,
    # sigma-delta spikes with random initial residues, two-stage traces λ = 2^-3, ε = 2^-2, T1 64, T2 32,
    # β 0.5, symmetric nudging; Adam 1.5e-3 at batch 500 with a cosine schedule over 12 epochs
    "mnist-eqspike": {"layers": [784, 500, 10], "dataset": "mnist", "encoder": "sigma-delta",
                      "encoder_phase": "random", "eps_shift": 2, "trace_shift": 3, "trace_stages": 2,
                      "update": "spike", "T1": 64, "T2": 32, "beta": 0.5, "estimator": "symmetric",
                      "optimizer": "adam", "lrs": [1.5e-3], "lr_decay": "cosine", "batch_size": 500,
                      "epochs": 12},
    # the same net and spikes with plain SGD (ΔW = η·Δ, what on-chip learning implements)
    "mnist-eqspike-sgd": {"layers": [784, 500, 10], "dataset": "mnist", "encoder": "sigma-delta",
                          "encoder_phase": "random", "eps_shift": 2, "trace_shift": 3, "trace_stages": 2,
                          "update": "spike", "T1": 64, "T2": 32, "beta": 0.5, "estimator": "symmetric",
                          "optimizer": "sgd", "lrs": [0.4, 0.2], "lr_decay": "cosine", "batch_size": 50,
                          "epochs": 30},
    # a few-second run on the 2,000-image subset shipped with epforge
    "subset-eqspike": {"layers": [784, 128, 10], "dataset": "mnist-subset", "eps_shift": 2, "trace_shift": 3,
                       "trace_stages": 2, "T1": 64, "T2": 32, "beta": 0.5, "lrs": [0.2, 0.1], "batch_size": 20,
                       "epochs": 2},
}
FLAGS = ("layers", "init_scale", "encoder", "encoder_phase", "eps_shift", "trace_shift", "trace_stages", "update",
         "theta", "dataset", "data_dir", "T1", "T2", "beta", "estimator", "optimizer", "lrs", "momentum", "lr_decay",
         "lr_decay_epochs", "lr_min", "batch_size", "epochs", "seed", "T_eval", "eval_batch_size", "train_limit",
         "test_limit", "dtype")
DATASETS = ["mnist", "fashion-mnist", "mnist-subset"]


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network and spiking model (override the preset / config file)")
    g.add_argument("--preset", choices=sorted(PRESETS), help="start from a configuration: " + "; ".join(
        f"{k}: {'-'.join(map(str, v['layers']))} on {v['dataset']}" for k, v in PRESETS.items()))
    g.add_argument("--config", type=Path, help="TOML or JSON file with the options below (underscores, e.g. "
                   "trace_shift; may name a preset); flags override it")
    g.add_argument("--layers", type=int, nargs="+", metavar="N", help="MLP sizes incl. input (default 784 500 10)")
    g.add_argument("--init-scale", type=float, nargs="+", metavar="G",
                   help="scale of the U(±1/√fan_in) initialisation, one value or one per connection (default 1)")
    g.add_argument("--encoder", choices=["sigma-delta", "stochastic"],
                   help="sigma-delta: φ ← φ + s, spike iff φ > ½, φ ← φ − spike (default); "
                        "stochastic: spike iff s > u, u uniform in [0, 1)")
    g.add_argument("--encoder-phase", choices=["zero", "random"],
                   help="initial sigma-delta residue of each sample: 0 (default) or uniform in [−½, ½)")
    g.add_argument("--eps-shift", type=int, metavar="K", help="neuron step ε = 2^-K, K in [0, 8] (default 2)")
    g.add_argument("--trace-shift", type=int, metavar="K",
                   help="trace low-pass constant λ = 2^-K, K in [0, 10] (default 3)")
    g.add_argument("--trace-stages", type=int, choices=[1, 2],
                   help="first-order low-pass stages of the spike trace ŝ (default 2)")
    g.add_argument("--update", choices=["spike", "ternary"],
                   help="ΔW from e·Δŝ (default) or from e·θ·sign(Δŝ)[|Δŝ| > θ] (comparators)")
    g.add_argument("--theta", type=float, help="threshold θ of the ternary update (default 0.01)")
    g.add_argument("--dtype", choices=["float32", "float64"], help="default float32")


def add_train_args(p: argparse.ArgumentParser) -> None:
    add_model_args(p)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, help="default mnist; mnist-subset: the 2,000/500 images shipped "
                   "with epforge")
    g.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    g.add_argument("--train-limit", type=int, metavar="N", help="use only the first N training images")
    g.add_argument("--test-limit", type=int, metavar="N", help="use only the first N test images")
    g = p.add_argument_group("phases and learning")
    g.add_argument("--T1", type=int, help="free-phase steps (default 64)")
    g.add_argument("--T2", type=int, help="steps of each nudged phase (default 32)")
    g.add_argument("--T-eval", type=int, help="free-phase steps at evaluation (default T1)")
    g.add_argument("--beta", type=float, help="nudging strength β > 0 (default 0.5)")
    g.add_argument("--estimator", choices=["one-sided", "random-sign", "symmetric"],
                   help="nudged phases: +β; ±β drawn per mini-batch; +β and −β from the free state (default)")
    g.add_argument("--optimizer", choices=["sgd", "adam"], help="default sgd (η = the learning rate)")
    g.add_argument("--lrs", type=float, nargs="+", metavar="LR",
                   help="learning rate η per connection, input side first (one value = all; default 0.05)")
    g.add_argument("--momentum", type=float, help="SGD momentum in [0, 1) (default 0)")
    g.add_argument("--lr-decay", choices=["none", "cosine"], help="learning-rate schedule (default none)")
    g.add_argument("--lr-decay-epochs", type=int, help="cosine period in epochs (default: --epochs)")
    g.add_argument("--lr-min", type=float, help="cosine floor (default 1e-5)")
    g.add_argument("--batch-size", type=int, help="mini-batch size (default 50)")
    g.add_argument("--epochs", type=int, help="number of epochs (default 1)")
    g.add_argument("--seed", type=int, help="seed of initialisation, shuffling and spike randomness (default 0)")
    g.add_argument("--eval-batch-size", type=int, help="batch size at evaluation (default 500)")


def config_from_args(args: argparse.Namespace):
    """Merge defaults ← preset ← config file ← flags into an :class:`EqSpikeConfig`."""
    from ..clierr import load_config_file
    from .config import EqSpikeConfig

    d: dict[str, Any] = {}
    if getattr(args, "preset", None):
        d.update(json.loads(json.dumps(PRESETS[args.preset])))
    if getattr(args, "config", None):
        filed = load_config_file(Path(args.config))
        if "preset" in filed:
            name = filed.pop("preset")
            if name not in PRESETS:
                raise ValueError(f"preset in {args.config} must be one of {sorted(PRESETS)}, not {name!r}")
            d.update(json.loads(json.dumps(PRESETS[name])))
        d.update(filed)
    for flag in FLAGS:
        v = getattr(args, flag, None)
        if v is not None:
            d[flag] = v
    return EqSpikeConfig.from_dict(d)


def _threads(n: int | None) -> None:
    import torch

    if n is not None:
        if n <= 0:
            raise ValueError(f"--threads must be a positive integer, not {n}")
        torch.set_num_threads(n)


def _write_json(path: Path, obj) -> None:
    from ..fileio import atomic_write_bytes

    atomic_write_bytes(Path(path), json.dumps(obj, indent=2).encode())


# ----------------------------------------------------------------------------------------------
def cmd_train(args) -> int:
    from ..distributed import cli_launch
    from .train import train

    _threads(args.threads)
    cfg = config_from_args(args)
    if cli_launch(train, args.nproc, args.device, cfg.batch_size, cfg, args.out, threads=args.threads,
                  resume=args.resume, progress=args.progress, stop_after=args.stop_after):
        print(f"wrote {args.out}/checkpoint.pt, metrics.json, training.png")
    return 0


def load_model(args, device="cpu"):
    """(net, cfg) from --checkpoint or --export (verified against its sha256 manifest)."""
    import torch

    from .config import EqSpikeConfig
    from .train import build, load_eqspike_checkpoint, model_from_checkpoint

    if bool(getattr(args, "checkpoint", None)) == bool(getattr(args, "export", None)):
        raise ValueError("give exactly one of --checkpoint and --export")
    if args.checkpoint:
        return model_from_checkpoint(load_eqspike_checkpoint(args.checkpoint), device)
    from ..export import load_export

    spec, arrays, manifest = load_export(args.export)
    if "eqspike" not in manifest:
        raise ValueError(f"{args.export} is not an EqSpike export (its manifest has no 'eqspike' section)")
    pre = manifest.get("preprocessing")
    if not isinstance(manifest["eqspike"], dict) or not isinstance(pre, dict) or "dataset" not in pre:
        raise ValueError(f"{args.export}/manifest.json: needs an 'eqspike' table and preprocessing.dataset")
    cfg = EqSpikeConfig.from_dict({**manifest["eqspike"], "layers": list(spec.layers), "dataset": pre["dataset"]})
    net, _, _ = build(cfg, torch.device(device))
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(torch.from_numpy(arrays[name]))
    return net, cfg


def cmd_evaluate(args) -> int:
    import dataclasses

    from ..train import load_split, resolve_device
    from .train import evaluate

    _threads(args.threads)
    net, cfg = load_model(args, resolve_device(args.device))
    if args.T is not None and args.T <= 0:
        raise ValueError(f"--T must be a positive integer, not {args.T}")
    T = args.T or cfg.T_eval or cfg.T1
    cfg = dataclasses.replace(cfg, dataset=args.dataset or cfg.dataset, data_dir=args.data_dir or cfg.data_dir,
                              test_limit=args.limit, train_limit=args.limit)
    split = load_split(cfg, args.split)
    acc = evaluate(net, split.x, split.y, T, args.batch_size, args.seed, sys.stderr.isatty())
    print(f"{cfg.dataset} {args.split}: {100 * acc:.2f}% of {len(split.x)} (spiking, T = {T})")
    if args.json:
        _write_json(args.json, {"dataset": cfg.dataset, "split": args.split, "n": len(split.x), "T": T,
                                "accuracy": acc, "seed": args.seed})
    return 0


EXPORT_KEYS = ("encoder", "encoder_phase", "eps_shift", "trace_shift", "trace_stages", "update", "theta", "T1",
               "T2", "T_eval", "beta", "estimator", "init_scale")


def cmd_export(args) -> int:
    from ..export import EXPORT_FORMAT, check_array_out, write_export
    from .train import load_eqspike_checkpoint, model_from_checkpoint

    check_array_out(args.out, EXPORT_FORMAT, force=args.force)  # before any work: a foreign --out is refused
    ckpt = load_eqspike_checkpoint(args.checkpoint)
    net, cfg = model_from_checkpoint(ckpt)
    arrays = {k: v.detach().cpu().numpy() for k, v in net.named_parameters()}
    d = cfg.to_dict()
    hist = ckpt.get("history") or [{}]
    extra = {"eqspike": {k: d[k] for k in EXPORT_KEYS},
             "schedule": {"T1": cfg.T1, "T2": cfg.T2, "beta": cfg.beta, "estimator": cfg.estimator},
             "source": {"checkpoint": str(args.checkpoint), "epoch": ckpt["epoch"],
                        "test_acc": hist[-1].get("test_acc")}}
    write_export(args.out, net.spec, arrays, preprocessing={"dataset": cfg.dataset, "input": "pixel/255"},
                 extra=extra, force=args.force)
    print(f"exported {len(arrays)} arrays to {args.out}")
    return 0


def cmd_stdp(args) -> int:
    from .config import EqSpikeConfig
    from .stdp import pair_protocol, plot_stdp, stdp_report

    if args.dt_max <= 0 or args.dt_step <= 0:
        raise ValueError(f"--dt-max and --dt-step must be positive integers, not {args.dt_max}, {args.dt_step}")
    params = {"trace_shift": args.trace_shift, "stages": args.trace_stages, "r_lo": args.r_lo, "r_hi": args.r_hi,
              "update": args.update, "theta": args.theta, "repeats": args.repeats, "seed": args.seed}
    EqSpikeConfig(trace_shift=args.trace_shift, trace_stages=args.trace_stages, theta=args.theta)  # validates
    if args.repeats <= 0:
        raise ValueError(f"--repeats must be a positive integer, not {args.repeats}")
    from ..clierr import check_memory
    from ..fileio import claim_output_dir

    steps = 2 * args.dt_max + 10 + max(200, 20 * 2 ** args.trace_shift)
    n_dts = len(range(-args.dt_max, args.dt_max + 1, args.dt_step))
    check_memory(f"--dt-max {args.dt_max} --dt-step {args.dt_step} --repeats {args.repeats}",
                 2 * n_dts * args.repeats * steps, 8, copies=3)
    dts = list(range(-args.dt_max, args.dt_max + 1, args.dt_step))
    claim_output_dir(args.out, "eqspike-stdp", writes=("stdp.json", "stdp.png"), force=True)
    res = pair_protocol(dts, trace_shift=args.trace_shift, stages=args.trace_stages, r_lo=args.r_lo, r_hi=args.r_hi,
                        update=args.update, theta=args.theta, repeats=args.repeats, seed=args.seed,
                        pre_at=args.dt_max + 10, tail=max(200, 20 * 2 ** args.trace_shift))
    report = stdp_report(res, params)
    _write_json(args.out / "stdp.json", report)
    plot_stdp(report, args.out / "stdp.png")
    i0 = dts.index(0) if 0 in dts else None
    peak = max(range(len(dts)), key=lambda i: report["rise"][i])
    low = min(range(len(dts)), key=lambda i: report["rise"][i])
    print(f"rise: max ΔW {report['rise'][peak]:+.4f} at Δt = {dts[peak]}, min {report['rise'][low]:+.4f} at "
          f"Δt = {dts[low]}" + (f", ΔW(0) = {report['rise'][i0]:+.4f}" if i0 is not None else "") + " (units η/β)")
    print(f"wrote {args.out}/stdp.json, stdp.png")
    return 0


def cmd_events(args) -> int:
    import torch

    from ..fileio import claim_output_dir
    from ..train import load_split
    from .events import count_events, energy_report
    from .train import build

    _threads(args.threads)
    if args.checkpoint or args.export:
        net, cfg = load_model(args)
    else:
        cfg = config_from_args(args)
        net, _, _ = build(cfg)
    if args.samples <= 0:
        raise ValueError(f"--samples must be a positive integer, not {args.samples}")
    import dataclasses

    cfg = dataclasses.replace(cfg, dataset=args.dataset or cfg.dataset, data_dir=args.data_dir or cfg.data_dir,
                              test_limit=args.samples)
    split = load_split(cfg, "test")
    claim_output_dir(args.out, "eqspike-events", writes=("events.json",), force=True)
    gen = torch.Generator().manual_seed(args.seed or 0)
    ev = count_events(net, split.x, split.y, gen)
    energy = energy_report(ev, tuple(cfg.layers), cfg.T1, cfg.T2, cfg.estimator)
    report = {"layers": list(cfg.layers), "T1": cfg.T1, "T2": cfg.T2, "estimator": cfg.estimator,
              "encoder": cfg.encoder, "samples": len(split.x), "dataset": cfg.dataset,
              "per_sample": ev, "energy": energy}
    _write_json(args.out / "events.json", report)
    for ph, d in ev.items():
        per_layer = ", ".join(f"{v:.0f}" for v in d["spikes_per_layer"])
        print(f"{ph:8s} {d['steps']:4d} steps: {d['spikes']:10.0f} spikes ({per_layer} per layer), "
              f"{d['synaptic_events']:12.0f} synaptic events, {d['update_events']:12.0f} update events per sample")
    for chip in ("loihi", "truenorth"):
        r = energy[chip]
        tr = r["energy_j"]["training"]
        g1, g2 = r["gpu_over_chip_rate_ep_w0x_once"], r["gpu_over_chip_rate_ep_w0x_every_step"]
        print(f"{chip}: inference {r['energy_j']['inference'] * 1e6:.1f} µJ, training "
              f"{'n/a' if tr is None else f'{tr * 1e6:.1f} µJ'} per sample; GPU rate-EP / chip: inference "
              f"{g1['inference']:.2f}× (W0·x once) – {g2['inference']:.2f}× (W0·x every step)"
              + ("" if g1["training"] is None else f", training {g1['training']:.2f}× – {g2['training']:.2f}×"))
    print(f"wrote {args.out}/events.json")
    return 0


# ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m golden.eqspike", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a float EqSpike net",
                       description="Train an EqSpike MLP by spike-driven EP; writes checkpoint.pt (every epoch, "
                                   "atomically), config.json, metrics.json and training.png into --out.")
    add_train_args(t)
    g = t.add_argument_group("run")
    g.add_argument("--out", type=Path, required=True, help="run directory")
    g.add_argument("--resume", action="store_true", help="continue the run in --out bit-identically")
    g.add_argument("--stop-after", type=positive_int_type, metavar="N", help="stop after N epochs of this invocation")
    g.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")
    g.add_argument("--threads", type=positive_int_type, help="CPU threads (torch.set_num_threads)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: when stderr is a terminal)")
    from ..distributed import add_nproc_arg

    add_nproc_arg(g)
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("evaluate", help="spiking accuracy of a checkpoint or an export",
                       description="Run the spiking free phase on a data set and report the accuracy.")
    e.add_argument("--checkpoint", help="checkpoint.pt or a run directory")
    e.add_argument("--export", help="an EqSpike export directory (manifest.json + arrays), verified before use")
    e.add_argument("--dataset", choices=DATASETS, help="default: the one the model was trained on")
    e.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    e.add_argument("--split", choices=["test", "train"], default="test", help="default test")
    e.add_argument("--limit", type=positive_int_type, help="only the first N images")
    e.add_argument("--T", type=positive_int_type, help="free-phase steps (default: the model's T_eval or T1)")
    e.add_argument("--batch-size", type=positive_int_type, default=500, help="default 500")
    e.add_argument("--seed", type=nonneg_int_type, default=0, help="seed of the spikes' randomness (default 0)")
    e.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    e.add_argument("--threads", type=positive_int_type, help="CPU threads")
    e.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    e.set_defaults(fn=cmd_evaluate)

    x = add_export_parser(sub, help="export a checkpoint's weights and EqSpike constants",
                          description="Write manifest.json (network, preprocessing, EqSpike constants, sha256 per "
                                      "array) and one .npy per parameter, atomically.")
    x.set_defaults(fn=cmd_export)

    s = sub.add_parser("stdp", help="the STDP window of the spike-driven rule (pair protocol)",
                       description="A presynaptic spike, then a rise/fall of the postsynaptic rate (and so of its "
                                   "trace) Δt steps later, for Δt in [−dt-max, dt-max]: the rule's ΔW (units η/β) "
                                   "against Δt, as stdp.json and stdp.png.")
    s.add_argument("--dt-max", type=positive_int_type, default=50, help="largest |Δt| in steps (default 50)")
    s.add_argument("--dt-step", type=positive_int_type, default=1, help="Δt spacing in steps (default 1)")
    s.add_argument("--trace-shift", type=nonneg_int_type, default=3, help="trace constant λ = 2^-K (default 3)")
    s.add_argument("--trace-stages", type=int, choices=[1, 2], default=2, help="low-pass stages (default 2)")
    s.add_argument("--r-lo", type=finite_float_type, default=0.2, help="low postsynaptic rate (default 0.2)")
    s.add_argument("--r-hi", type=finite_float_type, default=0.8, help="high postsynaptic rate (default 0.8)")
    s.add_argument("--update", choices=["spike", "ternary"], default="spike", help="update kind (default spike)")
    s.add_argument("--theta", type=finite_float_type, default=0.01,
                   help="threshold of the ternary update (default 0.01)")
    s.add_argument("--repeats", type=positive_int_type, default=64,
                   help="random initial encoder residues averaged per Δt (default 64)")
    s.add_argument("--seed", type=nonneg_int_type, default=0, help="seed of those residues (default 0)")
    s.add_argument("--out", type=Path, required=True, help="directory for stdp.json and stdp.png")
    s.set_defaults(fn=cmd_stdp)

    v = sub.add_parser("events", help="spikes, synaptic and update events per sample and phase; energy estimate",
                       description="Run one training step's phases (no weight change) on test images and count, per "
                                   "sample and phase, spikes, synaptic events (one weight read per spike and target) "
                                   "and weight-update events; estimate the energy on Loihi/TrueNorth-class chips "
                                   "against the rate-based EP net on a GPU (constants and sources: docs/eqspike.md). "
                                   "Writes events.json.")
    add_model_args(v)
    v.add_argument("--checkpoint", help="a trained net (checkpoint.pt or run directory); default: a fresh one")
    v.add_argument("--export", help="an EqSpike export directory")
    v.add_argument("--T1", type=int, help="free-phase steps (default 64)")
    v.add_argument("--T2", type=int, help="nudged-phase steps (default 32)")
    v.add_argument("--beta", type=float, help="nudging strength (default 0.5)")
    v.add_argument("--estimator", choices=["one-sided", "random-sign", "symmetric"], help="default symmetric")
    v.add_argument("--seed", type=nonneg_int_type, help="initialisation seed of a fresh net (default 0)")
    v.add_argument("--dataset", choices=DATASETS, help="default: the model's (mnist)")
    v.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    v.add_argument("--samples", type=positive_int_type, default=100, help="test images counted (default 100)")
    v.add_argument("--threads", type=positive_int_type, help="CPU threads")
    v.add_argument("--out", type=Path, required=True, help="directory for events.json")
    v.set_defaults(fn=cmd_events)
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
