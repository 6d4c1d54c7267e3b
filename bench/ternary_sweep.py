"""MNIST test accuracy of ternary/binary EP nets against the weight read-error rate p (ALGORITHMS.md §4).

For every net given (run directories or exports of ``python -m golden.ternary``), every p and
both modes — static (errors drawn once when the net is programmed; one programming per
``--static-seeds`` entry) and dynamic (redrawn at every read; ``--dynamic-seeds``) — the test set
is classified by an *engine* and the accuracy recorded beside the error-free accuracy. Reported:
for binary nets the loss (points) at p = 1e-4 and 4e-2, for ternary nets the p at which the
loss reaches 1 point (interpolated linearly in log p), per mode. Writes JSON and a PNG
(accuracy vs p, log axis, one panel per mode).

Engines are functions ``(export, p, mode, kind, seed, images) → predictions``: ``export`` a
:class:`golden.ternary.export.TernaryExport`, ``images`` the uint8 test images (N, 1, 28, 28),
predictions an int array (N,). ``float`` is the float model (:func:`golden.ternary.export.float_predict`);
``twin`` is the integer twin of the ternary core (the ULX3S core's formats, P = 32): what the RTL
computes, with the faults drawn by the memory's own PRNG (``bench/ternary_rtl_check.py`` replays a
twin point on the RTL with the same seed).

    python bench/ternary_sweep.py --nets RUN_T RUN_B RUN_T_AWARE RUN_B_AWARE --data-dir DATA \\
        --out runs/ternary/sweep
    python bench/ternary_sweep.py --nets RUN_MORE --include runs/ternary/sweep/ternary_sweep.json --out …

``--include`` adds the nets of earlier reports (same engine, p values and test set) to the new
JSON and figure without measuring them again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golden.fileio import atomic_write_bytes  # noqa: E402

PS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 4e-2, 1e-1)
MODES = ("static", "dynamic")
BINARY_POINTS = (1e-4, 4e-2)
LOSS_POINTS = 1.0  # ternary: the p where the net loses this many points
DEFAULT_OUT = REPO / "bench" / "results" / "ternary_sweep"

Engine = Callable[..., np.ndarray]


def float_engine(export, p: float, mode: str, kind: str, seed: int, images: np.ndarray) -> np.ndarray:
    from golden.ternary.export import float_predict

    return float_predict(export, p, mode, kind, seed, images)


_TWIN_CACHE: dict[int, Any] = {}


def twin_image(export):
    """The hardware image of ``export`` (the ULX3S ternary core's spec, P = 32, with fault injection,
    its layer sizes), cached per export."""
    key = id(export)
    if key not in _TWIN_CACHE:
        import dataclasses

        from golden.ep_core.image import ternary_image
        from hdl.build import ternary_board_spec

        base = dataclasses.replace(ternary_board_spec("ulx3s"), layers=tuple(export.layers),
                                   weight_bits=(2,), weight_frac=(5,), bias_frac=(11,))
        _TWIN_CACHE.clear()
        _TWIN_CACHE[key] = (export, ternary_image(export, base))
    return _TWIN_CACHE[key][1]


def twin_engine(export, p: float, mode: str, kind: str, seed: int, images: np.ndarray) -> np.ndarray:
    """The integer twin of the ternary core (what the RTL computes, read by read): faults drawn by the
    memory's own PRNG, seeded with ``seed + 1``, adjacent-level errors for ternary nets and sign flips for
    binary ones, PCSA at near-threshold supply. Dynamic faults take the twin's per-read path (slow)."""
    from golden.ep_core.faults import configure
    from golden.ep_core.twin import EPCoreTwin, Registers, pixels_to_input

    spec, weights, _ = twin_image(export)
    twin = EPCoreTwin(spec, weights)
    if p > 0:
        configure(twin, weights, p, mode, "flip" if kind == "binary" else "adjacent", "near-threshold", seed + 1)
    regs = Registers.from_spec(spec, T1=export.T1)
    return twin.predict(pixels_to_input(spec, images.reshape(len(images), -1).astype(np.int64)), regs)


def twin_limit_message(export, n_images: int) -> str | None:
    """Why ``n_images`` twin inferences with dynamic faults reuse the memory PRNG's lanes (every
    ``twin_engine`` call seeds afresh, and every weight read draws once); ``None`` if they do not."""
    spec = twin_image(export)[0]
    per = spec.memory_reads_per_inference(export.T1)
    return spec.ternary_memory_spec().access_limit_message(
        n_images * per, "weight-memory reads",
        f"twin engine, dynamic faults, layers={'-'.join(map(str, spec.layers))}, lanes={spec.lanes}, "
        f"T1={export.T1} ({per} reads per image), {n_images} images", "weight-memory read")


ENGINES: dict[str, Engine] = {"float": float_engine, "twin": twin_engine}


def default_data_dir(arg: str | None) -> str | None:
    """--data-dir, else $EPFORGE_DATA, else <repo>/../shared/data if it exists, else golden's default."""
    if arg:
        return arg
    if os.environ.get("EPFORGE_DATA"):
        return os.environ["EPFORGE_DATA"]
    shared = REPO.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def load_net(path: str):
    """A :class:`TernaryExport` from an export directory, or from a run directory / checkpoint (exported
    to a temporary directory first, so both go through the same verified loader)."""
    from golden.ternary.export import load_ternary_export, write_ternary_export
    from golden.ternary.train import load_checkpoint, model_from_checkpoint

    p = Path(path)
    if (p / "manifest.json").is_file():
        return load_ternary_export(p)
    net, cfg = model_from_checkpoint(load_checkpoint(p))
    with tempfile.TemporaryDirectory() as tmp:
        return load_ternary_export(write_ternary_export(Path(tmp) / "export", net, cfg, source={"run": str(p)}))


def net_label(exp) -> str:
    te = exp.manifest.get("training_errors") or {}
    aware = f", error-aware p={te['p']:g} {te.get('mode', '')}".rstrip() if te.get("p") else ""
    return f"{exp.kind} {'-'.join(map(str, exp.layers))}{aware}"


def p_at_loss(ps: list[float], losses: list[float], target: float) -> dict[str, Any]:
    """The p where the loss first reaches ``target`` points, linear in log10 p between the two
    measured p around it; ``below``/``above`` when it happens before the first / after the last p."""
    prev_p, prev_l = None, None
    for p, l in zip(ps, losses, strict=True):
        if l >= target:
            if prev_p is None:
                return {"p": None, "bound": "below", "note": f"loses {l:.2f} points already at p = {p:g}"}
            f = (target - prev_l) / (l - prev_l)
            lp = math.log10(prev_p) + f * (math.log10(p) - math.log10(prev_p))
            return {"p": 10**lp, "bound": None, "between": [prev_p, p]}
        prev_p, prev_l = p, l
    return {"p": None, "bound": "above", "note": f"loses less than {target} points up to p = {ps[-1]:g}"}


def sweep_net(
    exp,
    engine: Engine,
    images: np.ndarray,
    labels: np.ndarray,
    ps: list[float],
    static_seeds: list[int],
    dynamic_seeds: list[int],
    log=print,
    modes: tuple[str, ...] = MODES,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    clean = float(np.mean(engine(exp, 0.0, "static", exp.kind, 0, images) == labels))
    log(f"  error-free: {100 * clean:.2f}%")
    res: dict[str, Any] = {
        "label": net_label(exp),
        "kind": exp.kind,
        "layers": list(exp.layers),
        "alpha_shift": list(exp.alpha_shift),
        "training_errors": exp.manifest.get("training_errors"),
        "source": exp.manifest.get("source"),
        "clean_acc": clean,
        "modes": {},
    }
    for mode in modes:
        seeds = static_seeds if mode == "static" else dynamic_seeds
        rows = []
        for p in ps:
            accs = [float(np.mean(engine(exp, p, mode, exp.kind, s, images) == labels)) for s in seeds]
            mean = float(np.mean(accs))
            rows.append(
                {"p": p, "acc": accs, "mean": mean, "std": float(np.std(accs)), "loss_points": 100 * (clean - mean)}
            )
            log(
                f"  {mode:7s} p = {p:7.0e}: {100 * mean:6.2f}% (loss {100 * (clean - mean):+.2f} points, "
                f"{len(accs)} seed{'s' if len(accs) > 1 else ''})"
            )
        summary: dict[str, Any] = {}
        losses = [r["loss_points"] for r in rows]
        if exp.kind == "binary":
            for q in BINARY_POINTS:
                hit = [r for r in rows if math.isclose(r["p"], q)]
                summary[f"loss_at_{q:g}"] = hit[0]["loss_points"] if hit else None
        else:
            summary[f"p_at_{LOSS_POINTS:g}_point_loss"] = p_at_loss(list(ps), losses, LOSS_POINTS)
        res["modes"][mode] = {"seeds": seeds, "rows": rows, "summary": summary}
    res["seconds"] = time.perf_counter() - t0
    return res


def plot(results: list[dict[str, Any]], path: Path, title: str) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in MODES if any(m in r["modes"] for r in results)]
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.5), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, mode in zip(axes, modes, strict=True):
        for i, r in enumerate(results):
            if mode not in r["modes"]:
                continue
            rows = r["modes"][mode]["rows"]
            color = f"C{i}"
            ax.errorbar(
                [x["p"] for x in rows],
                [100 * x["mean"] for x in rows],
                yerr=[100 * x["std"] for x in rows],
                fmt="o-",
                color=color,
                capsize=3,
                label=f"{r['label']} ({100 * r['clean_acc']:.2f}% error-free)",
            )
            ax.axhline(100 * r["clean_acc"], color=color, ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("weight read error rate p")
        ax.set_title(f"{mode} errors")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("MNIST test accuracy (%)")
    axes[-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


from golden.clierr import ArgumentParser, cli_main  # noqa: E402
from spec.prng import ALLOW_REUSE_FLAG, check_prng_limit  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--nets",
        nargs="+",
        default=[],
        metavar="PATH",
        help="run directories (checkpoint.pt) or export directories of python -m golden.ternary",
    )
    ap.add_argument("--engine", choices=sorted(ENGINES), default="float", help="inference engine (default float)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                    help="error modes to sweep (default: static dynamic)")
    ap.add_argument(
        "--ps",
        type=float,
        nargs="+",
        default=list(PS),
        metavar="P",
        help=f"error rates (default {' '.join(f'{p:g}' for p in PS)})",
    )
    ap.add_argument(
        "--static-seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2, 3, 4],
        metavar="S",
        help="one programming (static draw) per seed (default 0 1 2 3 4)",
    )
    ap.add_argument("--dynamic-seeds", type=int, nargs="+", default=[0], metavar="S", help="default 0")
    ap.add_argument("--data-dir", help="data root with mnist/ (default $EPFORGE_DATA, else ../shared/data)")
    ap.add_argument(
        "--allow-subset", action="store_true", help="use the shipped 500-image test subset when full MNIST is missing"
    )
    ap.add_argument("--limit", type=int, help="only the first N test images")
    ap.add_argument(
        "--include",
        nargs="+",
        default=[],
        type=Path,
        metavar="JSON",
        help="add the nets of earlier ternary_sweep.json files (same engine, p values and data) to this "
        "report instead of measuring them again",
    )
    ap.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    ap.add_argument(ALLOW_REUSE_FLAG, action="store_true", help="twin engine, dynamic faults: run even if the "
                    "reads exceed the memory PRNG's independent draws (prints a note)")
    ap.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory for ternary_sweep.json and ternary_sweep.png (default bench/results/ternary_sweep)",
    )
    args = ap.parse_args(argv)
    from golden.fileio import claim_output_dir

    # refused before any work: a directory marked by another command, or one holding these files not written by
    # this bench (its own earlier results are refreshed)
    claim_output_dir(args.out, "ternary-sweep-bench", writes=('ternary_sweep.json', 'ternary_sweep.png'), force=True)
    if not args.nets and not args.include:
        ap.error("give --nets and/or --include")
    for p in args.ps:
        if not 0 < p <= 0.5:
            ap.error(f"--ps entries must be in (0, 0.5], not {p}")
    import torch

    from golden.data import DataMissingError, load_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = default_data_dir(args.data_dir)
    try:
        ds = load_dataset("mnist", "test", data_dir, download=False)
    except DataMissingError:
        if not args.allow_subset:
            ap.error(f"full MNIST not found under {data_dir}; pass --data-dir or --allow-subset")
        ds = load_dataset("mnist-subset", "test")
    images, labels = ds.images, ds.labels
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    engine = ENGINES[args.engine]
    ps = sorted(args.ps)
    results = []
    for inc in args.include:
        prev = json.loads(inc.read_text())
        same = (prev.get("engine"), prev.get("ps"), prev.get("data", {}).get("n"))
        if same != (args.engine, ps, len(labels)):
            ap.error(f"--include {inc}: engine, p values or test-set size differ from this run ({same})")
        results.extend(prev["nets"])
    if args.engine == "twin" and "dynamic" in args.modes:  # refused before any work
        for path in args.nets:
            check_prng_limit(twin_limit_message(load_net(path), len(labels)), args.allow_prng_reuse)
    t0 = time.perf_counter()
    for path in args.nets:
        exp = load_net(path)
        print(f"{net_label(exp)} ({path}), engine {args.engine}, {len(labels)} test images")
        r = sweep_net(exp, engine, images, labels, ps, args.static_seeds, args.dynamic_seeds, modes=tuple(args.modes))
        r["path"] = str(path)
        results.append(r)
    print("\nsummary (loss in points against the same net without errors):")
    for r in results:
        for mode in r["modes"]:
            s = r["modes"][mode]["summary"]
            if r["kind"] == "binary":
                txt = ", ".join(f"loss at p={k.split('_')[-1]}: {v:+.2f}" for k, v in s.items() if v is not None)
            else:
                hit = next(iter(s.values()))
                txt = f"1-point loss at p = {hit['p']:.2e}" if hit["p"] is not None else hit["note"]
            print(f"  {r['label']:45s} {mode:7s} {txt}")
    res = {
        "bench": "ternary_sweep",
        "engine": args.engine,
        "data": {"source": ds.source, "n": len(labels)},
        "ps": ps,
        "nets": results,
        "seconds": time.perf_counter() - t0,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "date": dt.datetime.now().isoformat(timespec="seconds"),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "ternary_sweep.json", json.dumps(res, indent=2).encode())
    plot(results, args.out / "ternary_sweep.png", f"MNIST, {args.engine} engine, {len(labels)} test images")
    print(f"wrote {args.out / 'ternary_sweep.json'} and ternary_sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
