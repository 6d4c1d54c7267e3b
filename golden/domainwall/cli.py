"""``python -m golden.domainwall``: Galton-board specs, exact distributions and twin histograms.

Commands:

* ``spec`` — write a Galton spec (defaults + ``--set FIELD=VALUE``) as TOML, for
  ``python -m hdl.build galton --spec``.
* ``exact`` — the exact output distribution for one or more fields: the float model's and, with
  ``--prob-bits``, the hardware's (thresholds quantised to k bits). Printed, and written as JSON
  with ``--json``.
* ``histogram`` — the device experiment on the bit-exact twin: for every field program the
  thresholds, run ``--balls`` balls per board, read the histograms, compare with the exact
  distribution (chi-square); writes ``histogram.png`` (histograms over the exact curves: the bell
  shifts and reshapes with the field) and ``histogram.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from golden.clierr import ArgumentParser, CLIError, cli_main, parse_set_value
from golden.clierr import finite_float_type as real
from spec.galton import GaltonSpec


def _parse_set(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects FIELD=VALUE (JSON value), not {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), parse_set_value(v)


def _parse_edit(text: str) -> tuple[int, int, float]:
    parts = text.split(",")
    try:
        if len(parts) != 3:
            raise ValueError
        dh = float(parts[2])
        if not math.isfinite(dh):
            raise ValueError
        return int(parts[0]), int(parts[1]), dh
    except ValueError:
        raise argparse.ArgumentTypeError(f"--edit expects ROW,JUNCTION,DH (e.g. 3,1,0.5), not {text!r}") from None


def _spec_from_args(args) -> GaltonSpec:
    base = GaltonSpec.load(args.spec).to_dict() if getattr(args, "spec", None) else {}
    if getattr(args, "rows", None) is not None:
        base["rows"] = args.rows
    for key, val in getattr(args, "set", None) or []:
        base[key] = val
    GaltonSpec.check_dict(base)
    return GaltonSpec.from_dict(base)


def _board(args, rows: int):
    import numpy as np

    from .model import DomainWallBoard

    offsets = None
    if args.edit:
        offsets = np.zeros((rows, rows))
        for i, j, dh in args.edit:
            if not 0 <= i < rows or not 0 <= j <= i:
                raise CLIError(f"--edit {i},{j},{dh}: junction ({i}, {j}) does not exist; rows 0..{rows - 1}, "
                               f"junction 0..row")
            offsets[i, j] += dh
    try:
        return DomainWallBoard(rows, H0=args.H0, width=args.width, offsets=offsets, stickiness=args.stickiness)
    except ValueError as e:
        raise CLIError(str(e)) from None


def _moments(pmf):
    from .model import moments

    mean, var = moments(pmf)
    return {"mean": mean, "var": var}


def cmd_spec(args) -> int:
    from golden.fileio import write_spec_text

    return write_spec_text(_spec_from_args(args), args.out)


def cmd_exact(args) -> int:
    from .model import binomial_pmf, threshold_distribution

    rows = GaltonSpec.load(args.spec).rows if args.spec else args.rows
    if rows is None:
        raise CLIError("give --rows N or --spec FILE")
    board = _board(args, rows)
    k = args.prob_bits if args.prob_bits is not None else (GaltonSpec.load(args.spec).prob_bits if args.spec else None)
    out = {"rows": rows, "H0": args.H0, "width": args.width, "stickiness": args.stickiness,
           "edits": [list(e) for e in args.edit or []], "prob_bits": k, "fields": []}
    for H in args.field:
        exact = board.exact(H)
        rec = {"H": H, "p_uniform": float(board.p(H)[0, 0]) if not args.edit else None,
               "float": exact.tolist(), **{f"float_{a}": b for a, b in _moments(exact).items()}}
        if not args.edit and not board.correlated:
            rec["binomial"] = binomial_pmf(rows, float(board.p(H)[0, 0])).tolist()
        if k is not None:
            t = board.thresholds(H, k)
            q = threshold_distribution(t, k, board.correlated)
            rec.update({"quantised": q.tolist(), **{f"quantised_{a}": b for a, b in _moments(q).items()}})
        out["fields"].append(rec)
        cols = "bin  float" + ("        quantised" if k is not None else "")
        print(f"H = {H:g}: mean {rec['float_mean']:.4f}, var {rec['float_var']:.4f}"
              + (f" | quantised (k={k}): mean {rec['quantised_mean']:.4f}, var {rec['quantised_var']:.4f}"
                 if k is not None else ""))
        print(cols)
        for n, v in enumerate(exact):
            print(f"{n:3d}  {v:.6e}" + (f"  {rec['quantised'][n]:.6e}" if k is not None else ""))
    if args.json:
        from golden.fileio import atomic_write_bytes

        atomic_write_bytes(Path(args.json), json.dumps(out, indent=2).encode())
        print(f"wrote {args.json}")
    return 0


def _plot(records: list[dict], rows: int, path: Path, title: str) -> None:
    import io
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from golden.fileio import atomic_write_bytes

    n = len(records)
    cols = min(n, 3)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False, sharey=True)
    x = list(range(rows + 1))
    for ax, rec in zip(axes.ravel(), records, strict=False):
        total = sum(rec["counts"])
        ax.bar(x, [c / total for c in rec["counts"]], color="tab:blue", alpha=0.6, label="twin (= RTL) histogram")
        ax.plot(x, rec["exact_quantised"], "o", color="tab:red", ms=4, label="exact (k-bit thresholds)")
        ax.plot(x, rec["exact_float"], "-", color="black", lw=1, label="exact (float model)")
        ax.set_title(f"H = {rec['H']:g}: mean {rec['mean']:.2f}, var {rec['var']:.2f}\n"
                     f"chi² p = {rec['chi_square']['p_value']:.3g}", fontsize=9)
        ax.set_xlabel("bin (right turns)")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel("fraction of balls")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def cmd_histogram(args) -> int:
    from golden.fileio import OutputDir, atomic_write_bytes

    from .model import threshold_distribution
    from .stats import chi_square_test
    from .twin import GaltonTwin

    spec = _spec_from_args(args)
    if args.balls < 1:
        raise CLIError(f"--balls must be a positive integer, not {args.balls}")
    # the fields' runs continue one PRNG stream: refuse more balls than the spec's independent draws
    try:
        spec.check_balls(args.balls * len(args.fields))
    except ValueError as e:
        raise CLIError(f"--balls {args.balls} × {len(args.fields)} fields: {e}") from None
    board = _board(args, spec.rows)
    # a foreign --out is refused before the balls are drawn; the result replaces a previous one atomically
    outdir = OutputDir(args.out, "galton-histogram", force=args.force)
    seed = spec.seed if args.seed is None else args.seed
    twin = GaltonTwin(spec, seed=seed, correlated=board.correlated)
    records = []
    t0 = time.time()
    for H in args.fields:
        thr = board.thresholds(H, spec.prob_bits)
        twin.set_thresholds(thr)
        twin.clear()
        twin.balls(args.balls)
        counts = twin.hist.sum(axis=0)
        exact_q = threshold_distribution(thr, spec.prob_bits, board.correlated)
        exact_f = board.exact(H)
        chi = chi_square_test(counts, exact_q)
        chi_f = chi_square_test(counts, exact_f)
        total = int(counts.sum())
        import numpy as np

        k = np.arange(spec.n_bins)
        mean = float((k * counts).sum() / total)
        var = float(((k - mean) ** 2 * counts).sum() / (total - 1)) if total > 1 else 0.0
        records.append({
            "H": H, "thresholds": thr.tolist(), "counts": counts.tolist(), "counts_per_board": twin.hist.tolist(),
            "balls": total, "mean": mean, "var": var,
            "exact_quantised": exact_q.tolist(), **{f"exact_quantised_{a}": b for a, b in _moments(exact_q).items()},
            "exact_float": exact_f.tolist(), **{f"exact_float_{a}": b for a, b in _moments(exact_f).items()},
            "chi_square": {"statistic": chi.statistic, "dof": chi.dof, "p_value": chi.p_value},
            "chi_square_vs_float": {"statistic": chi_f.statistic, "dof": chi_f.dof, "p_value": chi_f.p_value},
        })
        print(f"H = {H:g}: {total} balls, mean {mean:.4f} (exact {records[-1]['exact_quantised_mean']:.4f}), "
              f"var {var:.4f} (exact {records[-1]['exact_quantised_var']:.4f}), chi² p = {chi.p_value:.4g} "
              f"(dof {chi.dof}); vs float model p = {chi_f.p_value:.4g}", flush=True)
    out = Path(args.out)
    report = {"command": "histogram", "spec": spec.to_dict(), "spec_digest": spec.digest(), "seed": seed,
              "H0": args.H0, "width": args.width, "stickiness": args.stickiness,
              "edits": [list(e) for e in args.edit or []], "balls_per_board": args.balls,
              "wall_s": time.time() - t0, "fields": records}
    title = (f"Galton board: {spec.rows} rows × {spec.boards} boards, k = {spec.prob_bits}, "
             f"{args.balls} balls/board per field, H0 = {args.H0:g}, w = {args.width:g}"
             + (f", stickiness {args.stickiness:g}" if board.correlated else "")
             + (f", {len(args.edit)} edited junctions" if args.edit else ""))
    with outdir as tmp:
        _plot(records, spec.rows, tmp / "histogram.png", title)
        atomic_write_bytes(tmp / "histogram.json", json.dumps(report, indent=2).encode())
    print(f"wrote {out / 'histogram.png'} and {out / 'histogram.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m golden.domainwall", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def spec_args(q):
        q.add_argument("--spec", help="Galton spec (.toml or .json; write one with the spec command)")
        q.add_argument("--set", type=_parse_set, action="append", metavar="FIELD=VALUE",
                       help="override a spec field, VALUE as JSON (e.g. --set rows=12 --set boards=4)")

    def board_args(q):
        q.add_argument("--H0", type=real, default=0.0, help="switching field: p(H0) = 1/2 (default 0)")
        q.add_argument("--width", type=real, default=1.0, help="width w of the logistic p(H) (default 1)")
        q.add_argument("--edit", type=_parse_edit, action="append", metavar="ROW,JUNCTION,DH",
                       help="local lattice edit: shift junction (ROW, JUNCTION)'s switching field by DH "
                            "(repeatable)")
        q.add_argument("--stickiness", type=real, default=0.0,
                       help="chirality memory s in (-1, 1): P(R|R) = p + s(1-p), P(R|L) = p(1-s); "
                            "0 = independent junctions (default)")

    s = sub.add_parser("spec", help="write a Galton spec file (defaults + --set overrides)",
                       description="Write a Galton spec as TOML (defaults + --set overrides).")
    spec_args(s)
    s.add_argument("--out", help="file to write (default: stdout)")
    s.set_defaults(fn=cmd_spec, rows=None)

    e = sub.add_parser("exact", help="exact output distribution(s) for given fields",
                       description="Exact output distribution of the float model and, with --prob-bits (or "
                                   "--spec), of the hardware's k-bit thresholds.")
    e.add_argument("--rows", type=int, help="rows N (or take them from --spec)")
    e.add_argument("--spec", help="Galton spec giving rows and prob_bits")
    e.add_argument("--field", type=real, nargs="+", default=[0.0], metavar="H",
                   help="external field value(s) (default 0)")
    e.add_argument("--prob-bits", type=int, help="also the distribution of k-bit quantised thresholds")
    board_args(e)
    e.add_argument("--json", help="also write the result as JSON")
    e.set_defaults(fn=cmd_exact)

    h = sub.add_parser("histogram", help="sample balls with the bit-exact twin and plot histograms vs exact",
                       description="For every field: program the thresholds, run --balls balls per board on the "
                                   "bit-exact twin, compare the histogram with the exact distribution (chi-square) "
                                   "and plot it; writes histogram.png and histogram.json to --out.")
    spec_args(h)
    h.add_argument("--fields", type=real, nargs="+", default=[-2.0, -1.0, 0.0, 1.0, 2.0], metavar="H",
                   help="field values (default -2 -1 0 1 2)")
    h.add_argument("--balls", type=int, default=100_000, help="balls per board and field (default 100000)")
    h.add_argument("--seed", type=int, help="PRNG seed (default: the spec's)")
    board_args(h)
    h.add_argument("--out", required=True, help="output directory for histogram.png and histogram.json (new or "
                   "empty; a previous histogram only with --force, replaced atomically; other directories are refused)")
    h.add_argument("--force", action="store_true", help="replace a previous histogram at --out (never other files)")
    h.set_defaults(fn=cmd_histogram, rows=None)
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)
