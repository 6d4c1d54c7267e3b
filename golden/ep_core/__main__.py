"""``python -m golden.ep_core``: EP core specs, quantisation, twin evaluation and on-chip learning."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from golden.clierr import ArgumentParser, CLIError, add_replaceable_out, cli_main, parse_set_value
from golden.clierr import finite_float_type as real
from golden.clierr import nonneg_int_type as natural
from golden.clierr import positive_int_type as count
from spec.ep_core import EPCoreSpec
from spec.prng import ALLOW_REUSE_FLAG, check_prng_limit


def _spec_from_args(args) -> EPCoreSpec:
    base = EPCoreSpec.load(args.spec).to_dict() if getattr(args, "spec", None) else {}
    sets = getattr(args, "set", None) or []
    for key, val in sets:
        base[key] = val
    where = "--set " + " ".join(k for k, _ in sets) if sets else f"--spec {args.spec}"
    try:
        EPCoreSpec.check_dict(base)
        spec = EPCoreSpec.from_dict(base)
    except (TypeError, ValueError) as e:
        raise CLIError(f"{where}: {e}") from None
    _check_size(spec, where)
    return spec


def _check_size(spec: EPCoreSpec, where: str) -> None:
    """The twin holds every weight as int64 (several copies while training): refuse before allocating."""
    import math

    from golden.clierr import check_memory

    n = sum(math.prod(s) for s in spec.weight_shapes().values())
    check_memory(f"{where}: the {'-'.join(map(str, spec.layers))} core's weights", n, 8, copies=4)


def _parse_set(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects FIELD=VALUE (JSON value), not {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), parse_set_value(v)


def _mnist_like(dataset: str, split: str, data_dir, limit):
    from golden.data import load_dataset

    ds = load_dataset(dataset, split, data_dir=data_dir)
    x = ds.images.reshape(len(ds), -1)
    y = ds.labels
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def _twin_regs(spec, args, train: bool):
    from .twin import Registers

    over = {k: getattr(args, k) for k in ("T1", "T2", "beta_shift", "lr_shift") if getattr(args, k, None) is not None}
    if getattr(args, "estimator", None):
        over["symmetric"] = args.estimator == "symmetric"
        over["random_sign"] = args.estimator == "random-sign"
    return Registers.from_spec(spec, train=train, **over)


def _input_scale(spec, x):
    from .twin import pixels_to_input

    return pixels_to_input(spec, x)


def cmd_spec(args) -> int:
    from golden.fileio import write_spec_text

    return write_spec_text(_spec_from_args(args), args.out)


def cmd_quantize(args) -> int:
    from golden.export import check_array_out

    from .image import IMAGE_FORMAT, is_ternary_export, quantize_export, quantize_ternary_export, write_image

    check_array_out(args.out, IMAGE_FORMAT, force=args.force)  # before any work: a foreign --out is refused
    base = _spec_from_args(args)
    if is_ternary_export(args.export):  # golden.ternary export → a weight_kind="ternary" core
        spec, weights, info = quantize_ternary_export(args.export, base)
    else:
        spec, weights, info = quantize_export(args.export, base, auto_frac=not args.keep_formats)
    write_image(args.out, spec, weights, source=info, force=args.force)
    print(f"quantised {args.export} → {args.out}: weight_frac {list(spec.weight_frac)}, bias_frac "
          f"{list(spec.bias_frac)}, saturated {info['saturated']}")
    return 0


def cmd_evaluate(args) -> int:
    from .image import load_image
    from .twin import EPCoreTwin

    if not 0 <= args.error_rate <= 1:
        raise CLIError(f"--error-rate must be a probability in [0, 1], not {args.error_rate}")
    if args.error_rate > 0 and args.fault_mode == "off":
        raise CLIError(f"--error-rate {args.error_rate} has no effect with --fault-mode off: pass --fault-mode "
                       "static or dynamic")
    spec, weights, manifest = load_image(args.image)
    x, y = _mnist_like(args.dataset, "test", args.data_dir, args.limit)
    regs = _twin_regs(spec, args, train=False)
    if spec.weight_kind == "ternary" and (args.fault_mode == "dynamic" or args.supply == "nominal"):
        # every read draws once from the weight memory's PRNG (and the stream runs on across images)
        check_prng_limit(spec.ternary_memory_spec().access_limit_message(
            len(x) * spec.memory_reads_per_inference(regs.T1), "weight-memory reads",
            f"layers={'-'.join(map(str, spec.layers))}, lanes={spec.lanes}, T1={regs.T1} "
            f"({spec.memory_reads_per_inference(regs.T1)} reads per image), --fault-mode {args.fault_mode}, "
            f"--supply {args.supply}, {len(x)} images", "weight-memory read"), args.allow_prng_reuse)
    twin = EPCoreTwin(spec, weights)
    faults = None
    if args.fault_mode != "off" or args.supply != "near-threshold":
        from .faults import configure

        faults = configure(twin, weights, args.error_rate, args.fault_mode, args.fault_kind, args.supply,
                           args.fault_seed)
    t0 = time.time()
    from tqdm import tqdm

    preds = twin.predict(_input_scale(spec, x), regs,
                         progress=lambda it: tqdm(it, desc="twin", unit="chunk", disable=not sys.stderr.isatty()))
    acc = float((preds == y).mean())
    res = {"image": str(args.image), "dataset": args.dataset, "n": len(x), "T1": regs.T1, "accuracy": acc,
           "seconds": time.time() - t0, "faults": faults}
    if twin.memory is not None:
        from spec.ep_core import REG_TILLEGAL, REG_TINJECTED, REG_TREADS

        res["memory_counters"] = {"injected": twin.read_memory_reg(REG_TINJECTED),
                                  "illegal": twin.read_memory_reg(REG_TILLEGAL),
                                  "reads": twin.read_memory_reg(REG_TREADS)}
    fdesc = "" if faults is None else (f", faults {faults['mode']} {faults['kind']} p={faults['p']:g} "
                                       f"({faults['supply']} supply, seed {faults['seed']})")
    print(f"twin {args.dataset} test: {100 * acc:.2f}% of {len(x)} (T1 = {regs.T1}{fdesc})")
    if args.json:
        from golden.train import atomic_write_bytes

        atomic_write_bytes(Path(args.json), json.dumps(res, indent=2).encode())
    return 0


def cmd_train(args) -> int:
    """On-chip learning in the twin (bit-exact to the RTL): batch 1, from scratch or from an image."""
    import numpy as np
    from tqdm import tqdm

    from golden.train import atomic_write_bytes

    from .image import load_image, write_image
    from .twin import EPCoreTwin, init_weights

    if args.image:
        spec, weights, _ = load_image(args.image)
    else:
        spec = _spec_from_args(args)
        weights = init_weights(spec, args.seed)
    if not spec.training:
        raise CLIError("the spec has training=false (an inference-only core)")
    x, y = _mnist_like(args.dataset, "train", args.data_dir, args.train_limit)
    xt, yt = _mnist_like(args.dataset, "test", args.data_dir, args.test_limit)
    x, xt = _input_scale(spec, x), _input_scale(spec, xt)
    regs = _twin_regs(spec, args, train=True)
    # the core's PRNG bank runs on across epochs (one seeding): every sample draws from the same stream
    check_prng_limit(spec.training_limit_message(args.epochs * len(x), regs.random_sign, regs.symmetric),
                     args.allow_prng_reuse)
    twin = EPCoreTwin(spec, weights)
    eval_regs = _twin_regs(spec, args, train=False)
    from golden.fileio import claim_output_dir

    out = claim_output_dir(Path(args.out), "ep-core-train-run", writes=("image", "metrics.json"), force=args.force)
    history = []
    rng = np.random.default_rng(args.seed)
    for epoch in range(args.epochs):
        order = rng.permutation(len(x))
        correct = 0
        t0 = time.time()
        bar = tqdm(order, desc=f"epoch {epoch + 1}", disable=not sys.stderr.isatty(), mininterval=1.0)
        for n, i in enumerate(bar):
            rec = twin.train_sample(x[i], int(y[i]), regs)
            correct += rec.pred == y[i]
            if n % 500 == 0:
                bar.set_postfix(train_acc=f"{100 * correct / (n + 1):.2f}%")
        secs = time.time() - t0
        preds = twin.predict(xt, eval_regs)
        rec = {"epoch": epoch + 1, "train_acc": correct / len(x), "test_acc": float((preds == yt).mean()),
               "samples_per_s": len(x) / secs}
        history.append(rec)
        print(f"epoch {epoch + 1}: on-chip train {100 * rec['train_acc']:.2f}%  test {100 * rec['test_acc']:.2f}%  "
              f"({rec['samples_per_s']:.0f} samples/s in the twin)")
        write_image(out / "image", spec, twin.weights, source={"on_chip_training": history}, force=True)
        atomic_write_bytes(out / "metrics.json", json.dumps({"spec": spec.to_dict(), "registers": vars(regs),
                                                             "dataset": args.dataset, "epochs": history},
                                                            indent=2).encode())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m golden.ep_core", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def spec_args(q, required=False):
        q.add_argument("--spec", required=required, help="EP core spec (.toml or .json)")
        q.add_argument("--set", type=_parse_set, action="append", metavar="FIELD=VALUE",
                       help="override a spec field, VALUE as JSON (e.g. --set lanes=64 --set 'layers=[784,128,10]')")

    def reg_args(q):
        q.add_argument("--T1", type=count, help="free-phase steps (default: the spec's)")
        q.add_argument("--T2", type=count, help="nudged-phase steps (default: the spec's)")
        q.add_argument("--beta-shift", type=natural, help="β = 2^-SHIFT (default: the spec's)")
        q.add_argument("--lr-shift", type=natural, help="η = 2^-SHIFT (default: the spec's)")
        q.add_argument("--estimator", choices=["one-sided", "symmetric", "random-sign"],
                       help="default: the spec's (random-sign needs a core with a PRNG: spec.ep_core)")

    s = sub.add_parser("spec", help="write a spec file (defaults + --set overrides)")
    spec_args(s)
    s.add_argument("--out", help="file to write (default: stdout)")
    s.set_defaults(fn=cmd_spec)

    q = sub.add_parser("quantize", help="quantise a float export (python -m golden export) or a ternary "
                       "export (python -m golden.ternary export: gives a weight_kind='ternary' core; with a "
                       "training=true spec one that trains on chip, latent weights t*2*latent_threshold) into a "
                       "core weight image")
    spec_args(q, required=True)
    q.add_argument("--export", required=True, help="float export directory (python -m golden export)")
    add_replaceable_out(q, "image")
    q.add_argument("--keep-formats", action="store_true",
                   help="keep the spec's weight/bias fractional bits (default: choose per connection from the weights)")
    q.set_defaults(fn=cmd_quantize)

    e = sub.add_parser("evaluate", help="test accuracy of a weight image in the twin")
    e.add_argument("--image", required=True, help="image directory")
    e.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "mnist-subset"])
    e.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    e.add_argument("--limit", type=count, help="first N test images only")
    reg_args(e)
    e.add_argument("--fault-mode", default="off", choices=["off", "static", "dynamic"],
                   help="ternary images: faults drawn once while programming (static) or at every read "
                        "(dynamic) (default off)")
    e.add_argument("--fault-kind", default="adjacent", choices=["adjacent", "flip"],
                   help="adjacent: 0 <-> +-1 errors (ternary); flip: sign flips (binary) (default adjacent)")
    e.add_argument("--error-rate", type=real, default=0.0, help="mean weight error rate p (default 0)")
    e.add_argument("--supply", default="near-threshold", choices=["near-threshold", "nominal"],
                   help="PCSA supply: at nominal supply a 0 cell reads as a random +-1 (default near-threshold)")
    e.add_argument("--fault-seed", type=natural, default=1, help="seed of the memory's PRNG (default 1)")
    e.add_argument("--json", help="also write the result as JSON")
    e.add_argument(ALLOW_REUSE_FLAG, action="store_true",
                   help="run even if the reads exceed the memory PRNG's independent draws (prints a note)")
    e.set_defaults(fn=cmd_evaluate)

    t = sub.add_parser("train", help="on-chip learning in the twin (batch 1, bit-exact to the RTL)")
    spec_args(t)
    t.add_argument("--image", help="start from this image (default: random init from --seed)")
    t.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "mnist-subset"])
    t.add_argument("--data-dir", help="data root")
    t.add_argument("--epochs", type=count, default=1, help="default 1")
    t.add_argument("--seed", type=natural, default=0, help="initialisation and shuffling seed (default 0)")
    t.add_argument("--train-limit", type=count, help="first N training images only")
    t.add_argument("--test-limit", type=count, help="first N test images only")
    reg_args(t)
    t.add_argument("--out", required=True, help="directory for metrics.json and the trained image")
    t.add_argument("--force", action="store_true", help="overwrite a previous run of this command at --out")
    t.add_argument(ALLOW_REUSE_FLAG, action="store_true",
                   help="train even if epochs × samples exceed the PRNG's independent samples (prints a note)")
    t.set_defaults(fn=cmd_train)
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
