"""``python -m golden.eqspike.twin_cli``: EqSpike core specs, quantisation, twin evaluation and on-chip learning.

    spec      write a spec file (defaults + --set FIELD=VALUE overrides)
    quantize  float EqSpike export (python -m golden.eqspike export) → fixed-point weight image
    evaluate  test accuracy of an image in the bit-exact twin (batched path), with event counts of a few samples
    train     on-chip learning in the twin (batch 1, spike-driven rule), from scratch or from an image
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from golden.clierr import ArgumentParser, CLIError, add_replaceable_out, cli_main, parse_set_value
from golden.clierr import nonneg_int_type as natural
from golden.clierr import positive_int_type as count
from spec.eqspike import EqSpikeSpec


def _parse_set(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects FIELD=VALUE (JSON value), not {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), parse_set_value(v)


def _spec_from_args(args) -> EqSpikeSpec:
    base = EqSpikeSpec.load(args.spec).to_dict() if getattr(args, "spec", None) else {}
    sets = getattr(args, "set", None) or []
    for key, val in sets:
        base[key] = val
    where = "--set " + " ".join(k for k, _ in sets) if sets else (f"--spec {args.spec}" if args.spec else "spec")
    try:
        spec = EqSpikeSpec.from_dict(base)
    except (TypeError, ValueError) as e:
        raise CLIError(f"{where}: {e}") from None
    import math

    from golden.clierr import check_memory

    n = sum(math.prod(s) for s in spec.weight_shapes().values())
    check_memory(f"{where}: the {'-'.join(map(str, spec.layers))} core's weights", n, 8, copies=4)
    return spec


def _data(dataset, split, data_dir, limit):
    from golden.data import load_dataset

    ds = load_dataset(dataset, split, data_dir=data_dir)
    x, y = ds.images.reshape(len(ds), -1), ds.labels
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


def _write_json(path, obj) -> None:
    from golden.fileio import atomic_write_bytes

    atomic_write_bytes(Path(path), json.dumps(obj, indent=2).encode())


def cmd_spec(args) -> int:
    from golden.fileio import write_spec_text

    return write_spec_text(_spec_from_args(args), args.out)


def cmd_quantize(args) -> int:
    from golden.export import check_array_out

    from .image import IMAGE_FORMAT, quantize_export, write_image

    check_array_out(args.out, IMAGE_FORMAT, force=args.force)  # a foreign --out is refused before any work
    base = _spec_from_args(args)
    if base.weight_kind == "ternary":  # golden/eqspike/ternary.py: TWN threshold rule, α a power of two
        from .image import quantize_export_ternary

        spec, weights, info = quantize_export_ternary(args.export, base)
    else:
        spec, weights, info = quantize_export(args.export, base, auto_frac=not args.keep_formats)
    write_image(args.out, spec, weights, source=info, force=args.force)
    print(f"quantised {args.export} → {args.out}: weight_frac {list(spec.weight_frac)}, bias_frac "
          f"{list(spec.bias_frac)}, saturated {info['saturated']} (spec digest {spec.digest()[:12]}…)")
    return 0


def cmd_evaluate(args) -> int:
    from .image import load_image
    from .twin import EqSpikeTwin

    if args.prng_seed is not None and args.prng_seed >= 1 << 32:
        raise CLIError(f"--prng-seed must be in 0..2^32-1 (the spec's seed field), not {args.prng_seed}")
    spec, weights, _ = load_image(args.image)
    x, y = _data(args.dataset, "test", args.data_dir, args.limit)
    twin = EqSpikeTwin(spec, weights)
    if args.prng_seed is not None:
        twin.reseed(args.prng_seed)
    faults = None
    if args.fault_rate is not None:  # static adjacent faults in a ternary image's memory
        from .ternary import configure_faults

        if not 0.0 <= args.fault_rate <= 0.5:
            raise CLIError(f"--fault-rate must be a probability in [0, 0.5], not {args.fault_rate}")
        try:
            faults = configure_faults(twin, weights, args.fault_rate, "static", seed=args.fault_seed)
        except ValueError as e:
            raise CLIError(f"--fault-rate: {e}") from None
        weights = twin.weights  # the event-path twin below computes with the same faulty cells
        print(f"static faults p = {args.fault_rate}: {faults['injected']} cells injected (seed {args.fault_seed})")
    t0 = time.time()
    from tqdm import tqdm

    preds = twin.predict(x, batch=args.batch_size, T=args.T,
                         progress=lambda it: tqdm(it, desc="twin", unit="batch", disable=not sys.stderr.isatty()))
    acc = float((preds == y).mean())
    secs = time.time() - t0
    # event counts of the first few samples on the event path (a fresh twin: same PRNG stream start)
    ev = EqSpikeTwin(spec, weights)
    if args.prng_seed is not None:
        ev.reseed(args.prng_seed)
    counts = [ev.infer(x[i], T=args.T).counts()["free"] for i in range(min(args.count_samples, len(x)))]
    mean = {k: float(sum(c[k] for c in counts) / len(counts)) for k in ("synaptic_events", "neuron_updates")}
    mean["spikes"] = [float(sum(c["spikes"][l] for c in counts) / len(counts)) for l in range(spec.n_layers + 1)]
    res = {"image": str(args.image), "dataset": args.dataset, "n": len(x), "T": args.T or spec.T1, "accuracy": acc,
           "seconds": secs, "events_per_sample_mean": mean, "events_samples": len(counts), "faults": faults}
    print(f"twin {args.dataset} test: {100 * acc:.2f}% of {len(x)} (T = {res['T']}, {secs:.0f} s); per sample: "
          f"{mean['synaptic_events']:.0f} synaptic events, spikes {[round(s) for s in mean['spikes']]}")
    if args.json:
        _write_json(args.json, res)
    return 0


def cmd_train(args) -> int:
    """On-chip learning in the twin (bit-exact to the RTL): batch 1."""
    import numpy as np
    from tqdm import tqdm

    from golden.fileio import claim_output_dir

    from .image import load_image, write_image
    from .twin import EqSpikeTwin, init_weights

    if args.image:
        if args.spec or args.set:
            raise CLIError("--image carries its own spec: do not combine it with --spec/--set")
        spec, weights, _ = load_image(args.image)
    else:
        spec = _spec_from_args(args)
        weights = init_weights(spec, args.seed)
    if not spec.training:
        raise CLIError("the spec has training=false (an inference-only core)")
    x, y = _data(args.dataset, "train", args.data_dir, args.train_limit)
    xt, yt = _data(args.dataset, "test", args.data_dir, args.test_limit)
    out = claim_output_dir(Path(args.out), "eqspike-twin-train-run", writes=("image", "metrics.json"),
                           force=args.force)
    twin = EqSpikeTwin(spec, weights)
    rng = np.random.default_rng(args.seed)
    history = []
    for epoch in range(args.epochs):
        correct, t0 = 0, time.time()
        totals = {"synaptic_events": 0, "update_events": 0, "weight_writes": 0}
        bar = tqdm(rng.permutation(len(x)), desc=f"epoch {epoch + 1}", disable=not sys.stderr.isatty(),
                   mininterval=1.0)
        for n, i in enumerate(bar):
            rec = twin.train_sample(x[i], int(y[i]))
            correct += rec.pred == y[i]
            for ph in rec.phases:
                for k in totals:
                    totals[k] += getattr(ph, k)
            if n % 200 == 0:
                bar.set_postfix(train_acc=f"{100 * correct / (n + 1):.1f}%")
        secs = time.time() - t0
        preds = EqSpikeTwin(spec, twin.weights).predict(xt)
        rec = {"epoch": epoch + 1, "train_acc": float(correct / len(x)), "test_acc": float((preds == yt).mean()),
               "samples_per_s": len(x) / secs, "events_per_sample": {k: v / len(x) for k, v in totals.items()}}
        history.append(rec)
        print(f"epoch {epoch + 1}: on-chip train {100 * rec['train_acc']:.2f}%  test {100 * rec['test_acc']:.2f}% "
              f"({len(xt)} images; {rec['samples_per_s']:.1f} samples/s in the twin)")
        write_image(out / "image", spec, twin.weights, source={"on_chip_training": history}, force=True)
        _write_json(out / "metrics.json", {"spec": spec.to_dict(), "dataset": args.dataset, "epochs": history})
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m golden.eqspike.twin_cli", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def spec_args(q):
        q.add_argument("--spec", help="EqSpike spec (.toml or .json; default: spec.eqspike's defaults)")
        q.add_argument("--set", type=_parse_set, action="append", metavar="FIELD=VALUE",
                       help="override a spec field, VALUE as JSON (e.g. --set lanes=32 --set 'layers=[784,128,10]')")

    s = sub.add_parser("spec", help="write a spec file (defaults + --set overrides)")
    spec_args(s)
    s.add_argument("--out", help="file to write (default: stdout)")
    s.set_defaults(fn=cmd_spec)

    q = sub.add_parser("quantize", help="quantise a float EqSpike export into a weight image")
    spec_args(q)
    q.add_argument("--export", required=True, help="float export directory (python -m golden.eqspike export)")
    add_replaceable_out(q, "image")
    q.add_argument("--keep-formats", action="store_true",
                   help="keep the spec's weight/bias fractional bits (default: the finest that holds the weights)")
    q.set_defaults(fn=cmd_quantize)

    e = sub.add_parser("evaluate", help="test accuracy of a weight image in the twin")
    e.add_argument("--image", required=True, help="image directory")
    e.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "mnist-subset"])
    e.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    e.add_argument("--limit", type=count, help="first N test images only")
    e.add_argument("--T", type=count, help="free-phase steps (default: the spec's T1)")
    e.add_argument("--batch-size", type=count, default=250, help="samples per batched twin call (default 250)")
    e.add_argument("--prng-seed", type=natural, help="reseed the core's PRNG (default: the spec's seed)")
    e.add_argument("--count-samples", type=count, default=20,
                   help="samples whose events are counted on the event path (default 20)")
    e.add_argument("--fault-rate", type=float, metavar="P", help="ternary images with fault_injection: static "
                   "adjacent faults of mean rate P drawn while programming (golden/eqspike/ternary.py)")
    e.add_argument("--fault-seed", type=natural, default=1, help="the memory PRNG's seed for --fault-rate (default 1)")
    e.add_argument("--json", help="also write the result as JSON")
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
    t.add_argument("--out", required=True, help="directory for metrics.json and the trained image")
    t.add_argument("--force", action="store_true", help="overwrite a previous run of this command at --out")
    t.set_defaults(fn=cmd_train)
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
