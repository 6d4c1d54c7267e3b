"""Batch-1 references for EqSpike on-chip learning (docs/eqspike.md §7, "What limits on-chip learning").

Two float measurements on the model of ``golden/eqspike`` with the twin's defaults (sigma-delta
encoders with random residues, T1 = 64, T2 = 32, symmetric ±β, ε = 2^-2, λ = 2^-3):

* ``curve``: plain SGD at batch 1 (one sample, one update — what the chip does), with the spike-driven
  update (``--update spike``) or the rate-based EP update on the same dynamics (``--update rate``);
  test accuracy every ``--eval-every`` samples, spiking inference (and rate inference beside it);
* ``noise``: per-sample updates of one net (fresh init, or a ``curve`` checkpoint): the rate-based EP
  update g, the spike-driven update u over ``--draws`` residue draws; prints per layer the mean |g|²,
  the SGD noise E|g − ḡ|² (ḡ = mean over the samples), the spike noise E|u − ū|² (ū = mean over
  draws, per sample) and the cosines cos(ū, g), cos(u, g).

    python bench/eqspike_batch1.py curve --data-dir ../shared/data --train-limit 10000 --lrs 0.0078125 0.00390625
    python bench/eqspike_batch1.py noise --data-dir ../shared/data --checkpoint run.pt --samples 80
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from golden.clierr import ArgumentParser, CLIError, cli_main, finite_float_type  # noqa: E402
from golden.clierr import nonneg_int_type as natural  # noqa: E402
from golden.clierr import positive_int_type as count  # noqa: E402


def _data(dataset, split, data_dir, start, limit):
    import torch

    from golden.data import load_dataset

    ds = load_dataset(dataset, split, data_dir=data_dir)
    x = ds.images.reshape(len(ds), -1)[start:start + limit if limit else None]
    y = ds.labels[start:start + limit if limit else None]
    return torch.tensor(x / 255.0, dtype=torch.float32), torch.tensor(y).long()


def _net(args):
    import torch

    from golden.eqspike.config import EqSpikeConfig
    from golden.eqspike.train import build

    try:
        cfg = EqSpikeConfig(layers=(784, args.hidden, 10), encoder_phase="random", lrs=tuple(args.lrs), batch_size=1,
                            beta=args.beta, T2=args.T2, trace_shift=args.trace_shift, dataset=args.dataset,
                            seed=args.seed)
    except ValueError as e:
        raise CLIError(str(e)) from None
    torch.manual_seed(args.seed)
    net, opt, _ = build(cfg)
    return cfg, net, opt


@cli_main
def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from golden.ep.estimators import apply_update
    from golden.eqspike.train import evaluate
    from golden.fileio import atomic_write_bytes

    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["curve", "noise"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "mnist-subset"])
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    p.add_argument("--hidden", type=count, default=128, help="hidden layer size (default 128)")
    p.add_argument("--lrs", type=finite_float_type, nargs="+", default=[2.0 ** -7, 2.0 ** -8],
                   help="SGD η per connection (default 2^-7 2^-8, the twin's lr_shift 7,8)")
    p.add_argument("--beta", type=finite_float_type, default=0.5, help="β (default 0.5)")
    p.add_argument("--T2", type=count, default=32, help="nudged-phase steps (default 32)")
    p.add_argument("--trace-shift", type=natural, default=3, help="λ = 2^-K (default 3)")
    p.add_argument("--update", default="spike", choices=["spike", "rate"], help="curve: the update rule")
    p.add_argument("--train-limit", type=count, default=10000, help="curve: samples (default 10000)")
    p.add_argument("--test-limit", type=count, default=1000, help="curve: test images (default 1000)")
    p.add_argument("--eval-every", type=count, default=2500, help="curve: samples between evaluations")
    p.add_argument("--samples", type=count, default=40, help="noise: samples (default 40)")
    p.add_argument("--sample-start", type=natural, default=0, help="noise: first training image (default 0)")
    p.add_argument("--draws", type=count, default=8, help="noise: residue draws per sample (default 8)")
    p.add_argument("--checkpoint", help="noise: a net (curve --save, or python -m golden.eqspike train's "
                   "checkpoint.pt; default: the fresh init)")
    p.add_argument("--seed", type=natural, default=0, help="init, order and spike seed (default 0)")
    p.add_argument("--json", help="curve: write the curve here")
    p.add_argument("--save", help="curve: save the final net's state_dict here (for noise --checkpoint)")
    args = p.parse_args(argv)
    for v in args.lrs:
        if v <= 0:
            raise CLIError(f"--lrs entries must be positive, not {v}")
    if len(args.lrs) not in (1, 2):
        raise CLIError(f"--lrs takes 1 or 2 values (one per connection), not {len(args.lrs)}")
    torch.set_num_threads(1)
    cfg, net, opt = _net(args)
    if args.what == "curve":
        x, y = _data(args.dataset, "train", args.data_dir, 0, None)
        xt, yt = _data(args.dataset, "test", args.data_dir, 0, args.test_limit)
        order = np.random.default_rng(args.seed).permutation(len(x))[:args.train_limit]
        gen = torch.Generator().manual_seed(args.seed + 1)
        res = {"command": "python bench/eqspike_batch1.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "config": cfg.to_dict(), "update": args.update, "curve": []}
        t0, correct, seen = time.time(), 0, 0
        for n, i in enumerate(order, 1):
            u, free = net.spike_update(x[i:i + 1], y[i:i + 1], cfg.T1, cfg.T2, cfg.beta, cfg.estimator, gen=gen,
                                       spiking=args.update == "spike")
            apply_update(net, u, opt)
            correct += int(free.s[-1].argmax(1).item() == y[i].item())
            seen += 1
            if n % args.eval_every == 0 or n == len(order):
                acc = evaluate(net, xt, yt, cfg.T1, seed=args.seed)
                with torch.no_grad():
                    racc = float((net.free_phase(xt, cfg.T1, spiking=False).s[-1].argmax(1) == yt).float().mean())
                rec = {"samples": n, "test_acc": acc, "test_acc_rate_inference": racc,
                       "train_acc_window": correct / seen, "samples_per_s": n / (time.time() - t0)}
                res["curve"].append(rec)
                print(f"{n:6d} samples ({args.update} update): test {100 * acc:.2f}% (spiking inference), "
                      f"{100 * racc:.2f}% (rate), train window {100 * correct / seen:.1f}%, "
                      f"{rec['samples_per_s']:.1f} samples/s", flush=True)
                correct = seen = 0
                if args.json:
                    atomic_write_bytes(Path(args.json), json.dumps(res, indent=2).encode())
        if args.save:
            torch.save(net.state_dict(), args.save)
        return 0
    if args.checkpoint:
        try:
            sd = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
            net.load_state_dict(sd["model"] if "model" in sd else sd)  # python -m golden.eqspike train's, or --save's
        except (OSError, RuntimeError, KeyError, TypeError) as e:
            raise CLIError(f"--checkpoint {args.checkpoint}: {str(e).splitlines()[0]}") from None
    x, y = _data(args.dataset, "train", args.data_dir, args.sample_start, args.samples)
    G: dict[str, list] = {"w0": [], "w1": []}
    U: dict[str, list] = {"w0": [], "w1": []}
    for i in range(len(x)):
        g, _ = net.spike_update(x[i:i + 1], y[i:i + 1], cfg.T1, cfg.T2, cfg.beta, cfg.estimator, spiking=False)
        us = []
        for r in range(args.draws):
            gen = torch.Generator().manual_seed(1000 * i + r + args.seed)
            us.append(net.spike_update(x[i:i + 1], y[i:i + 1], cfg.T1, cfg.T2, cfg.beta, cfg.estimator, gen=gen)[0])
        for k in G:
            G[k].append(g[k].flatten())
            U[k].append(torch.stack([u[k].flatten() for u in us]))
    cos = torch.nn.functional.cosine_similarity
    for k in G:
        g, u = torch.stack(G[k]), torch.stack(U[k])
        um = u.mean(1)
        sgd = float(((g - g.mean(0)) ** 2).sum(-1).mean())
        print(f"{k}: |g|^2 {float((g ** 2).sum(-1).mean()):.3e}  SGD noise {sgd:.3e}"
              f"  spike noise {float(((u - um[:, None]) ** 2).sum(-1).mean()):.3e}  cos(mean spike, rate) "
              f"{float(cos(um, g, dim=1).mean()):.3f}  cos(one spike, rate) {float(cos(u[:, 0], g, dim=1).mean()):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
