"""EqSpike's spike-driven phase sum against the rate-based EP update on the same net and batch.

For each trace (stages × λ = 2^-trace_shift) and nudged-phase length T2, one symmetric training
step's spike-driven update Σ_t e ⊗ Δŝ / 2β is compared, per weight and bias, with the EP update of
the same network run without spikes (e = s) to its fixed points (T1_ref, T2_ref steps): cosine and
norm ratio, mean over --seeds (network initialisation and encoder phases). The figure shows why
EqSpike learns: the cosine approaches 1 as T2 grows and the trace smooths the spikes.

    python bench/eqspike_vs_ep.py                                   # 784-100-10, subset batch of 100, ~1–2 min
    python bench/eqspike_vs_ep.py --checkpoint runs/eqspike-mnist   # a trained net instead of a fresh one

Writes JSON (default bench/results/eqspike_vs_ep.json) and a PNG beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from golden.clierr import ArgumentParser, CLIError, cli_main  # noqa: E402
from golden.clierr import positive_int_type as count  # noqa: E402


def cosine(a, b) -> float:
    return float((a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-30))


def measure(args, log=print) -> dict:
    import dataclasses

    import torch

    from golden.data import load_dataset
    from golden.eqspike import EqSpikeConfig, EqSpikeNet

    ds = load_dataset(args.dataset, "train", data_dir=args.data_dir)
    n = min(args.batch, len(ds.labels))
    x = torch.from_numpy(ds.images[:n]).to(torch.float64).div(255).reshape(n, -1)
    y = torch.from_numpy(ds.labels[:n]).long()
    base = None
    if args.checkpoint:
        from golden.eqspike.train import load_eqspike_checkpoint, model_from_checkpoint

        ckpt = load_eqspike_checkpoint(args.checkpoint)
        model_from_checkpoint(ckpt)  # shapes fit the configuration, finite weights
        base = ckpt["model"]
        cfg0 = EqSpikeConfig.from_dict({**ckpt["config"], "dtype": "float64"})
    else:
        cfg0 = EqSpikeConfig(layers=(784, args.hidden, 10), dtype="float64", beta=args.beta)
    refs: dict[int, dict] = {}  # the rate reference depends on the weights only (one per seed)
    rows = []
    for stages in args.stages:
        for ts in args.trace_shifts:
            for T2 in args.T2s:
                per_seed = []
                for seed in args.seeds:
                    cfg = dataclasses.replace(cfg0, trace_stages=stages, trace_shift=ts, seed=seed,
                                              encoder_phase=args.encoder_phase, update=args.update, theta=args.theta)
                    net = EqSpikeNet(cfg)
                    if base is not None:
                        net.load_state_dict({k: v.to(torch.float64) for k, v in base.items()})
                    if seed not in refs:
                        refs[seed], _ = net.spike_update(x, y, args.T1_ref, args.T2_ref, cfg.beta, "symmetric",
                                                         spiking=False)
                    ref = refs[seed]
                    up, _ = net.spike_update(x, y, args.T1, T2, cfg.beta, "symmetric",
                                             gen=torch.Generator().manual_seed(seed))
                    per_seed.append({k: (cosine(up[k], ref[k]), float(up[k].norm() / ref[k].norm())) for k in ref})
                keys = list(per_seed[0])
                row = {"stages": stages, "trace_shift": ts, "T2": T2,
                       "cosine": {k: sum(p[k][0] for p in per_seed) / len(per_seed) for k in keys},
                       "cosine_min": {k: min(p[k][0] for p in per_seed) for k in keys},
                       "norm_ratio": {k: sum(p[k][1] for p in per_seed) / len(per_seed) for k in keys}}
                rows.append(row)
                log(f"stages {stages}  λ = 2^-{ts}  T2 {T2:3d}: cosine " +
                    "  ".join(f"{k} {v:.3f}" for k, v in row["cosine"].items()) +
                    f"  |spike|/|EP| (w0) {row['norm_ratio']['w0']:.2f}")
    return {"layers": list(cfg0.layers), "batch": n, "dataset": args.dataset, "beta": cfg0.beta, "T1": args.T1,
            "T1_ref": args.T1_ref, "T2_ref": args.T2_ref, "seeds": list(args.seeds), "update": args.update,
            "theta": args.theta, "encoder_phase": args.encoder_phase,
            "checkpoint": str(args.checkpoint) if args.checkpoint else None, "rows": rows}


def plot(res: dict, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from golden.fileio import atomic_write_bytes

    keys = [k for k in res["rows"][0]["cosine"] if k.startswith("w")]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    combos = sorted({(r["stages"], r["trace_shift"]) for r in res["rows"]})
    for ax, k in zip(axes[0], keys, strict=True):
        for st, ts in combos:
            rr = [r for r in res["rows"] if r["stages"] == st and r["trace_shift"] == ts]
            ax.plot([r["T2"] for r in rr], [r["cosine"][k] for r in rr], "o-" if st == 2 else "s--",
                    label=f"{st} stage(s), λ = 2^-{ts}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("T2 (nudged steps per phase)")
        ax.set_ylabel(f"cosine(spike-driven, rate EP) of {k}")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"EqSpike vs rate-based EP, {'-'.join(map(str, res['layers']))}, batch {res['batch']}, "
                 f"β {res['beta']}, {res['update']} update")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=100, help="hidden layer of a fresh 784-H-10 net (default 100)")
    p.add_argument("--checkpoint", help="use a trained EqSpike checkpoint instead of a fresh net")
    p.add_argument("--dataset", default="mnist-subset", choices=["mnist", "mnist-subset"],
                   help="where the batch comes from (default mnist-subset, shipped)")
    p.add_argument("--data-dir", help="data root for --dataset mnist")
    p.add_argument("--batch", type=int, default=100, help="training images in the batch (default 100)")
    p.add_argument("--beta", type=float, default=0.5, help="β of a fresh net (default 0.5)")
    p.add_argument("--T1", type=int, default=64, help="spiking free-phase steps (default 64)")
    p.add_argument("--T2s", type=int, nargs="+", default=[8, 16, 32, 64, 128], help="nudged-phase lengths")
    p.add_argument("--trace-shifts", type=int, nargs="+", default=[2, 3, 4], help="λ = 2^-K values")
    p.add_argument("--stages", type=int, nargs="+", default=[1, 2], choices=[1, 2], help="trace stages")
    p.add_argument("--encoder-phase", choices=["zero", "random"], default="random",
                   help="initial sigma-delta residues (default random)")
    p.add_argument("--update", choices=["spike", "ternary"], default="spike", help="update kind (default spike)")
    p.add_argument("--theta", type=float, default=0.002, help="θ of the ternary update (default 0.002)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="initialisation/encoder seeds")
    p.add_argument("--T1-ref", type=int, default=300, help="free steps of the rate reference (default 300)")
    p.add_argument("--T2-ref", type=int, default=150, help="nudged steps of the rate reference (default 150)")
    p.add_argument("--threads", type=count, help="CPU threads")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "eqspike_vs_ep.json",
                   help="output JSON (default bench/results/eqspike_vs_ep.json); the PNG goes beside it")
    args = p.parse_args(argv)
    for name in ("hidden", "batch", "T1", "T1_ref", "T2_ref"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, not {getattr(args, name)}")
    if any(t <= 0 for t in args.T2s):
        raise ValueError(f"--T2s must be positive integers, not {args.T2s}")
    if args.json.is_dir():
        raise CLIError(f"--json {args.json}: is a directory, not a file")
    for q in args.json.parents:
        if q.exists():
            if not q.is_dir():
                raise CLIError(f"--json {args.json}: {q} is a file, not a directory")
            break
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.time()
    res = measure(args)
    res["seconds"] = time.time() - t0
    from golden.fileio import atomic_write_bytes

    atomic_write_bytes(args.json, json.dumps(res, indent=2).encode())
    plot(res, args.json.with_suffix(".png"))
    print(f"wrote {args.json} and {args.json.with_suffix('.png')} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
