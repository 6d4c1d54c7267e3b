"""``python -m golden gdu``: EP updates against BPTT gradients, per estimator and β.

For each estimator the EP update after T2 nudged steps is compared with −∇θ L from BPTT through
the last T2 steps of the free phase (same batch, same network): per-parameter cosine similarity
and relative error ‖Δ_EP + ∇_BPTT‖ / ‖∇_BPTT‖. The random-sign estimator is reported for the
sign drawn with ``--seed`` and for each sign; its average over the two signs equals the
symmetric estimator exactly, which is why it is unbiased to first order in expectation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .ep.bptt import bptt, compare, ep_trajectory
from .ep.network import EPNet


def run_gdu(args, net_spec=None) -> dict[str, Any]:
    """The GDU check of ``args`` (``python -m golden gdu``): the net is ``args.checkpoint``'s, else a fresh
    one of ``net_spec`` (the caller builds it from the command line: this module does not import the CLI)."""
    from .fileio import claim_output_dir
    from .train import TrainConfig, atomic_write_bytes, load_checkpoint, load_split, model_from_checkpoint

    # refuse a directory of someone else's files before any work
    claim_output_dir(args.out, "golden-gdu", writes=("gdu.json", "gdu.png"), force=True)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    if args.checkpoint:
        path = Path(args.checkpoint)
        net32, _ = model_from_checkpoint(load_checkpoint(path / "checkpoint.pt" if path.is_dir() else path))
        net = EPNet(net32.spec, dtype=dtype)
        net.load_state_dict({k: v.to(dtype) for k, v in net32.state_dict().items()})
    else:
        if net_spec is None:
            raise ValueError("run_gdu needs a checkpoint or a net_spec")
        net = EPNet(net_spec, dtype=dtype, seed=args.seed)
    for b in args.betas:
        if not b > 0:
            raise ValueError(f"betas must be positive, not {b!r}")
    cfg = TrainConfig(net=net.spec, dataset=args.dataset, data_dir=args.data_dir, lrs=(1.0,),
                      train_limit=args.batch, T1=args.T1, T2=args.T2)
    data = load_split(cfg, "train")
    x, y = data.x[:args.batch].to(dtype), data.y[:args.batch]

    ref = bptt(net, x, y, args.T1, args.T2)
    results: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    sign = 1.0 if torch.randint(0, 2, (1,), generator=torch.Generator().manual_seed(args.seed)).item() else -1.0
    for beta in args.betas:
        key = f"{beta:g}"
        runs = {}
        if "one-sided" in args.estimators:
            runs["one-sided"] = ep_trajectory(net, x, y, args.T1, args.T2, beta)
        if "symmetric" in args.estimators:
            runs["symmetric"] = ep_trajectory(net, x, y, args.T1, args.T2, beta, symmetric=True)
        if "random-sign" in args.estimators:
            plus = runs.get("one-sided") or ep_trajectory(net, x, y, args.T1, args.T2, beta)
            minus = ep_trajectory(net, x, y, args.T1, args.T2, -beta)
            runs["random-sign"] = plus if sign > 0 else minus
            runs["random-sign(+beta)"] = plus
            runs["random-sign(-beta)"] = minus
        for name, traj in runs.items():
            if name.startswith("random-sign(") and "random-sign" not in args.estimators:
                continue
            m = compare(traj.total, ref.total)
            results.setdefault(name, {})[key] = {
                "params": m,
                "min_cosine": min(v["cosine"] for v in m.values()),
                "max_rel_error": max(v["rel_error"] for v in m.values()),
                "neurons_cosine": _neuron_cosines(traj, ref),
            }
            curves.setdefault(name, {})[key] = traj
    report = {
        "net": net.spec.to_dict(), "T1": args.T1, "T2": args.T2, "batch": len(x), "dtype": args.dtype,
        "dataset": args.dataset, "checkpoint": args.checkpoint, "seed": args.seed,
        "random_sign_draw": sign, "betas": list(args.betas), "results": results,
        "bptt_norms": {k: v.norm().item() for k, v in ref.total.items()},
    }
    out = Path(args.out)
    atomic_write_bytes(out / "gdu.json", json.dumps(report, indent=2).encode())
    plot_gdu(report, curves, ref, out / "gdu.png")
    print(format_table(report))
    print(f"wrote {out / 'gdu.json'} and {out / 'gdu.png'}")
    return report


def _neuron_cosines(traj, ref) -> list[float]:
    out = []
    for layer in range(len(ref.neurons[0])):
        a = torch.stack([st[layer].flatten() for st in traj.neurons]).flatten().double()
        b = torch.stack([st[layer].flatten() for st in ref.neurons]).flatten().double()
        out.append((a @ b).item() / max(a.norm().item() * b.norm().item(), 1e-300))
    return out


def format_table(report: dict[str, Any]) -> str:
    names = list(report["bptt_norms"])
    lines = [f"EP update vs -grad BPTT ({report['dtype']}, batch {report['batch']}, T1 {report['T1']}, "
             f"T2 {report['T2']}): cosine / relative error per parameter"]
    lines.append(f"{'estimator':<20} {'beta':>6}  " + "  ".join(f"{n:>15}" for n in names))
    for est, by_beta in report["results"].items():
        for beta, r in by_beta.items():
            cells = "  ".join(f"{r['params'][n]['cosine']:7.4f}/{r['params'][n]['rel_error']:7.4f}" for n in names)
            lines.append(f"{est:<20} {beta:>6}  {cells}")
    return "\n".join(lines)


def plot_gdu(report: dict[str, Any], curves: dict[str, Any], ref, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .train import atomic_write_bytes

    names = list(report["bptt_norms"])
    ests = [e for e in report["results"] if not e.startswith("random-sign(")]
    betas = [f"{b:g}" for b in report["betas"]]
    weights = [n for n in names if n.startswith("w")][:3]
    fig, axes = plt.subplots(1, 1 + len(weights), figsize=(4.5 * (1 + len(weights)), 4))
    ax = axes[0]
    width = 0.8 / (len(ests) * len(betas))
    for i, (est, beta) in enumerate((e, b) for e in ests for b in betas):
        errs = [report["results"][est][beta]["params"][n]["rel_error"] for n in names]
        ax.bar([j + i * width for j in range(len(names))], errs, width, label=f"{est}, β={beta}")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names)
    ax.set_yscale("log")
    ax.set_ylabel("‖Δ_EP + ∇_BPTT‖ / ‖∇_BPTT‖")
    ax.set_title("EP vs BPTT: relative error")
    ax.legend(fontsize=7)
    # step-by-step partial sums of a few components, like the reference code's GDU plots
    beta = betas[-1]
    gen = torch.Generator().manual_seed(0)
    T2 = report["T2"]
    for ax, name in zip(axes[1:], weights, strict=True):
        flat = ref.total[name].flatten()
        idx = torch.topk(flat.abs(), 20).indices[torch.randperm(20, generator=gen)[:4]]
        t = list(range(1, T2 + 1))
        for j, comp in enumerate(idx.tolist()):
            color = f"C{j}"
            bp = torch.cumsum(torch.stack([st[name].flatten()[comp] for st in ref.steps]), 0)
            ax.plot(t, bp.tolist(), "-", color=color, lw=2, alpha=0.5, label="BPTT" if j == 0 else None)
            for est, style in (("one-sided", ":"), ("symmetric", "--")):
                if est in curves and beta in curves[est]:
                    ep = torch.cumsum(torch.stack([st[name].flatten()[comp] for st in curves[est][beta].steps]), 0)
                    ax.plot(t, ep.tolist(), style, color=color, label=f"EP {est}" if j == 0 else None)
        ax.set_title(f"{name}: partial sums, β = {beta}")
        ax.set_xlabel("nudged step k")
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
