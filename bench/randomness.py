"""The project's random sources as the hardware consumes them, through ``dieharder`` and a dispersion test.

Sources (bits extracted by :mod:`golden.randomness`, ``==`` the bit-exact twins on a prefix — tests
check it — in the order the hardware reads them):

* ``galton``            — Galton board: per ball, board, row the k-bit comparator input r;
* ``galton-decisions``  — Galton board: the junction decisions r < 2^(k−1) of a symmetric board;
* ``ep-rounding``       — EP core: the stochastic-rounding bits of every update draw;
* ``ep-sign``           — EP core: the random-sign bit of every training sample;
* ``ternary``           — ternary fault injector: bits 0…23, 30, 31 of every lane word per access;
* ``lane``              — one lane of :mod:`spec.prng` (``--set width=64``, ``--set seed=N``): its
  words, little-endian (context for the sources above).

Every lane outputs scrambled words (:func:`spec.prng.scramble`, as the hardware); ``--prng-output raw``
gives the raw xorshift states instead (the generator before issue 12), for comparisons.

Commands:

* ``limits``    — period, bits per ball/draw, draws before the lanes overlap, per source;
* ``stream``    — write a source's bytes to a file or stdout (``--bytes``);
* ``dieharder`` — stream a source into ``dieharder -g 200`` (stdin_input_raw: never rewinds) with
  the given dieharder arguments (default ``-a``, the full battery at default settings, 10–60 min
  and ~10^11 bytes); reports PASSED/WEAK/FAILED counts, bytes fed and the table (JSON to ``--json``);
* ``summary``   — PASSED/WEAK/FAILED counts of dieharder output files (a stopped run's ``--log``);
* ``dispersion`` — Galton board: ``--histograms`` disjoint windows of ``--balls`` balls (each window
  a histogram of the symmetric board), the chi-square statistic of each against the exact
  distribution, and a KS test of the statistics against chi2(dof) (``--json``).

dieharder is a Debian package (``apt-get install dieharder``), needed by the ``dieharder`` command only.

    .venv/bin/python bench/randomness.py limits
    .venv/bin/python bench/randomness.py dieharder --source galton --json bench/results/dieharder_galton.json
    .venv/bin/python bench/randomness.py dieharder --source galton --set prng_width=16 -- -d 2
    .venv/bin/python bench/randomness.py dieharder --source lane --set width=64 --prng-output raw -- -d 209
    .venv/bin/python bench/randomness.py dispersion --set prng_width=16 --balls 60000 --histograms 200
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from golden.clierr import ArgumentParser, CLIError, cli_main, parse_set_value  # noqa: E402

SOURCES = ("galton", "galton-decisions", "ep-rounding", "ep-sign", "ternary", "lane")
_LINE = re.compile(r"^\s*(\S+)\|\s*(\d+)\|\s*(\d+)\|\s*(\d+)\|\s*([0-9.eE+-]+)\|\s*(PASSED|WEAK|FAILED)\s*$")


def _parse_set(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects FIELD=VALUE (JSON value), not {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), parse_set_value(v)


def make_spec(source: str, spec_file: str | None, sets):
    """The spec of ``source``: defaults (EP: a training core with stochastic rounding; ``ep-sign``:
    the random-sign estimator; ternary: fault injection on), then ``--spec``, then ``--set``."""
    if source == "lane":
        from spec.prng import PRNGSpec

        if spec_file:
            raise CLIError("--spec: the lane source takes no spec file; use --set width=W --set seed=N")
        d = {"width": 64, "lanes": 1, "jump": 1}
        for k, v in sets or []:
            if k not in ("width", "seed"):
                raise CLIError(f"--set {k}: the lane source has the fields width and seed, not {k!r}")
            d[k] = v
        try:
            return PRNGSpec(**d)
        except (ValueError, TypeError) as e:
            raise CLIError(f"lane spec: {e}") from None
    if source.startswith("galton"):
        from spec.galton import GaltonSpec as cls
        base = {}
    elif source.startswith("ep"):
        from spec.ep_core import EPCoreSpec as cls
        base = ({"training": True, "update_rounding": "stochastic"} if source == "ep-rounding"
                else {"training": True, "estimator": "random-sign"})
    else:
        from spec.ternary import TernaryMemorySpec as cls
        base = {"fault_injection": True, "mode": "dynamic"}
    if spec_file:
        base.update(cls.load(spec_file).to_dict())
    for k, v in sets or []:
        base[k] = v
    try:
        cls.check_dict(base)
        return cls.from_dict(base)
    except (ValueError, TypeError) as e:
        raise CLIError(f"{source} spec: {e}") from None


def stream(source: str, spec, seed: int | None, output: str | None = None):
    """The source's bytes; ``output`` overrides the lanes' output function ("raw" or "scrambled")."""
    import dataclasses

    from golden import randomness as R

    if source == "lane":
        p = dataclasses.replace(spec, **({} if seed is None else {"seed": seed}),
                                **({} if output is None else {"output": output}))
        return R.lane_stream(p)
    if source == "galton":
        return R.galton_stream(spec, seed, "fields", output)
    if source == "galton-decisions":
        return R.galton_stream(spec, seed, "decisions", output)
    if source == "ep-rounding":
        return R.ep_stream(spec, "rounding", seed, output=output)
    if source == "ep-sign":
        return R.ep_stream(spec, "sign", seed, output=output)
    return R.ternary_stream(spec, seed, output)


def limits(source: str, spec) -> dict:
    """Period, bits consumed per ball/draw and draws before the lanes overlap."""
    from golden import randomness as R

    if source == "lane":
        return {"prng_width": spec.width, "lanes": 1, "period_words": spec.period, "seed": spec.seed}
    if source.startswith("galton"):
        return {"prng_width": spec.prng_width, "lanes": spec.lanes, "period_balls": spec.ball_period,
                "prng_jump": spec.prng_jump, "independent_balls": spec.independent_balls,
                "bits_per_ball_per_board": spec.random_bits_per_ball,
                "bits_per_ball": spec.random_bits_per_ball * spec.boards,
                "generated_bits_per_ball": spec.generated_bits_per_ball * spec.boards}
    if source.startswith("ep"):
        d = R.ep_draws(spec)
        return {"prng_width": 32, "lanes": spec.lanes, "period_draws": (1 << 32) - 1, "prng_jump": spec.prng_jump,
                "draws_per_sample": d.draws, "rounding_bits_per_sample": int(d.bits.sum()),
                "sign_bits_per_sample": d.sign,
                "samples_per_period": ((1 << 32) - 1) // d.draws if d.draws else None,
                "samples_before_lane_overlap": spec.prng_jump // d.draws if d.draws else None}
    return {"prng_width": 32, "lanes": spec.lanes, "period_draws": (1 << 32) - 1, "prng_jump": spec.prng_jump,
            "bits_per_draw": R.TERNARY_BITS * spec.lanes,
            "note": "one draw per PCSA read and per programming/update write"}


def run_dieharder(gen, args: list[str], log=None) -> dict:
    """Feed ``gen``'s bytes to ``dieharder -g 200 ARGS`` until it exits; parse its table."""
    exe = shutil.which("dieharder")
    if exe is None:
        raise CLIError("dieharder is not installed: apt-get install dieharder (Debian/Ubuntu)")
    cmd = [exe, "-g", "200", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    fed = [0]

    def feed():
        try:
            for chunk in gen:
                proc.stdin.write(chunk)
                fed[0] += len(chunk)
        except (BrokenPipeError, ValueError, OSError):
            pass

    t = threading.Thread(target=feed, daemon=True)
    t0 = time.time()
    t.start()
    rows: list[dict] = []
    lines = []
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        lines.append(line)
        if log is not None:
            print(line, file=log, flush=True)
        rows += parse_table([line])
    rc = proc.wait()
    try:
        proc.stdin.close()
    except OSError:
        pass
    return {"command": " ".join(cmd), "returncode": rc, "wall_s": round(time.time() - t0, 1),
            "bytes_fed": fed[0], "rewinds": 0, "counts": counts(rows), "tests": rows,
            "note": "stdin_input_raw (-g 200) streams fresh bytes: no rewinds"}


def parse_table(lines) -> list[dict]:
    """The result rows of dieharder's output (test, ntup, tsamples, psamples, p-value, assessment)."""
    rows = []
    for line in lines:
        m = _LINE.match(line.rstrip("\n"))
        if m:
            rows.append({"test": m[1], "ntup": int(m[2]), "tsamples": int(m[3]), "psamples": int(m[4]),
                         "p_value": float(m[5]), "assessment": m[6]})
    return rows


def counts(rows: list[dict]) -> dict:
    return {a: sum(r["assessment"] == a for r in rows) for a in ("PASSED", "WEAK", "FAILED")}


def dispersion(spec, balls: int, histograms: int, seed: int | None, output: str | None = None) -> dict:
    """``histograms`` disjoint consecutive windows of ``balls`` balls of the symmetric board (board 0)."""
    from golden import randomness as R
    from golden.domainwall.model import binomial_pmf
    from golden.domainwall.stats import dispersion_test

    hists = R.galton_histograms(spec, balls, histograms, seed, output=output)
    need = balls * histograms
    res = dispersion_test(hists, binomial_pmf(spec.rows, 0.5))
    return {"spec": spec.to_dict(), "balls_per_histogram": balls, "histograms": histograms,
            "prng_output": output or "scrambled", "balls_total": need,
            "independent_balls": spec.independent_balls, "ball_period": spec.ball_period,
            **res.as_dict()}


def _spec_dict(spec) -> dict:
    import dataclasses

    return spec.to_dict() if hasattr(spec, "to_dict") else dataclasses.asdict(spec)


def _print_dieharder(source: str, rep: dict) -> None:
    c = rep["counts"]
    print(f"{source}: PASSED {c['PASSED']}, WEAK {c['WEAK']}, FAILED {c['FAILED']} "
          f"({len(rep['tests'])} p-values, {rep['bytes_fed'] / 1e9:.2f} GB fed, rewinds 0, {rep['wall_s']:.0f} s)")
    for r in rep["tests"]:
        if r["assessment"] != "PASSED":
            print(f"  {r['assessment']:6s} {r['test']} ntup={r['ntup']} p={r['p_value']:.8f}")


def _write_json(path: str | None, obj: dict) -> None:
    if path:
        from golden.fileio import atomic_write_bytes

        atomic_write_bytes(Path(path), json.dumps(obj, indent=2).encode())
        print(f"wrote {path}")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="bench/randomness.py", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def common(q, sources=SOURCES):
        q.add_argument("--source", choices=sources, default=sources[0], help=f"random source (default {sources[0]})")
        q.add_argument("--spec", help="spec file (.toml/.json) of the source's block (default: the defaults, see "
                                      "make_spec: EP sources use a training core)")
        q.add_argument("--set", type=_parse_set, action="append", metavar="FIELD=VALUE",
                       help="override a spec field, VALUE as JSON (e.g. --set prng_width=16)")
        q.add_argument("--seed", type=int, help="PRNG seed (default: the spec's)")
        q.add_argument("--prng-output", choices=("scrambled", "raw"),
                       help="the lanes' output words: scrambled (default, as the hardware) or raw xorshift states "
                            "(the generator before issue 12)")

    q = sub.add_parser("limits", help="period and draws before repetition of every source",
                       description="Period, bits per ball/draw and draws before the lanes overlap, per source.")
    common(q)
    q.add_argument("--all", action="store_true", help="every source at its default spec (ignores --source)")
    q.add_argument("--json", help="also write the result as JSON")

    q = sub.add_parser("stream", help="write a source's bytes", description="Write --bytes bytes of a source "
                       "(bits LSB-first, consumption order) to --out (a file, or - for stdout).")
    common(q)
    q.add_argument("--bytes", type=int, required=True, help="bytes to write (> 0)")
    q.add_argument("--out", required=True, help="file to write, or - for stdout")

    q = sub.add_parser("dieharder", help="run dieharder on a source (streamed: no rewinds)",
                       description="Stream a source into dieharder -g 200 (stdin_input_raw). Arguments after -- "
                                   "go to dieharder (default -a: the full battery at default settings).")
    common(q)
    q.add_argument("--json", help="write the report (counts, every p-value) as JSON")
    q.add_argument("--log", help="also write dieharder's output to this file as it comes")
    q.add_argument("dieharder_args", nargs="*", help="dieharder arguments after -- (default: -a)")

    q = sub.add_parser("summary", help="PASSED/WEAK/FAILED counts of dieharder logs (--log files, even unfinished)",
                       description="Count PASSED/WEAK/FAILED in dieharder output files (e.g. the --log of a run that "
                                   "was stopped: the tests it finished).")
    q.add_argument("logs", nargs="+", help="dieharder output files")
    q.add_argument("--json", help="also write the counts and rows as JSON")

    q = sub.add_parser("dispersion", help="KS test of many Galton histograms' chi-square statistics",
                       description="Disjoint windows of --balls balls of the symmetric Galton board (board 0); the "
                                   "chi-square statistic of each window's histogram against the binomial; a KS test "
                                   "of the statistics against chi2(dof). Independent balls give a KS p-value that "
                                   "is not tiny.")
    common(q, ("galton",))
    q.add_argument("--balls", type=int, default=60_000, help="balls per histogram (default 60000)")
    q.add_argument("--histograms", type=int, default=200, help="histograms (default 200)")
    q.add_argument("--json", help="also write the result as JSON")
    return p


def _positive(name: str, v: int) -> None:
    if v < 1:
        raise CLIError(f"{name} must be a positive integer, not {v}")


def _check_out_file(option: str, path: str | None, new: bool = False) -> None:
    """Refuse an output path that cannot be written, before any work (a directory, a path under a file;
    ``new``: an existing file, which is never overwritten)."""
    if not path or path == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{option} {p}: is a directory, not a file")
    if new and p.exists():
        raise CLIError(f"{option} {p}: already exists; it is never overwritten: choose another {option}")
    for q in p.parents:
        if q.exists():
            if not q.is_dir():
                raise CLIError(f"{option} {p}: {q} is a file, not a directory")
            break


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_out_file("--json", getattr(args, "json", None))
    _check_out_file("--log", getattr(args, "log", None))
    _check_out_file("--out", getattr(args, "out", None), new=True)
    if args.cmd == "summary":
        out = {}
        for path in args.logs:
            try:
                rows = parse_table(Path(path).read_text(errors="replace").splitlines())
            except OSError as e:
                raise CLIError(f"{path}: {e.strerror or e}") from None
            c = counts(rows)
            out[path] = {"counts": c, "tests": rows}
            print(f"{path}: PASSED {c['PASSED']}, WEAK {c['WEAK']}, FAILED {c['FAILED']} ({len(rows)} p-values)")
            for r in rows:
                if r["assessment"] != "PASSED":
                    print(f"  {r['assessment']:6s} {r['test']} ntup={r['ntup']} p={r['p_value']:.8f}")
        _write_json(args.json, out)
        return 0
    if args.seed is not None and not 0 <= args.seed < (1 << 32):
        raise CLIError(f"--seed must be in 0..2^32-1, not {args.seed}")
    if args.cmd == "limits":
        out = {}
        for src in (SOURCES if args.all else (args.source,)):
            out[src] = limits(src, make_spec(src, None if args.all else args.spec, None if args.all else args.set))
            print(f"{src}: " + ", ".join(f"{k} {v}" for k, v in out[src].items()))
        _write_json(args.json, out)
        return 0
    spec = make_spec(args.source, args.spec, args.set)
    if args.cmd == "stream":
        _positive("--bytes", args.bytes)
        gen = stream(args.source, spec, args.seed, args.prng_output)
        left = args.bytes
        out = sys.stdout.buffer if args.out == "-" else open(args.out, "xb")  # noqa: SIM115
        try:
            while left > 0:
                chunk = next(gen)[:left]
                out.write(chunk)
                left -= len(chunk)
        except BrokenPipeError:  # the reader (e.g. dieharder) has had enough: not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush there
            return 0
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        return 0
    if args.cmd == "dieharder":
        log = open(args.log, "w") if args.log else None  # noqa: SIM115
        try:
            rep = run_dieharder(stream(args.source, spec, args.seed, args.prng_output),
                                args.dieharder_args or ["-a"], log)
        finally:
            if log:
                log.close()
        rep.update({"source": args.source, "spec": _spec_dict(spec), "seed": args.seed,
                    "prng_output": args.prng_output or "scrambled",
                    "limits": limits(args.source, spec)})
        _print_dieharder(args.source, rep)
        _write_json(args.json, rep)
        return 0 if rep["returncode"] == 0 else 1
    _positive("--balls", args.balls)
    _positive("--histograms", args.histograms)
    rep = dispersion(spec, args.balls, args.histograms, args.seed, args.prng_output)
    print(f"dispersion: {args.histograms} histograms × {args.balls} balls (w = {spec.prng_width}, "
          f"{spec.rows} rows, k = {spec.prob_bits}): mean chi² {rep['mean_statistic']:.3f} at dof {rep['dof']}, "
          f"KS D = {rep['ks_statistic']:.4f}, p = {rep['ks_p_value']:.3g}")
    if args.balls * args.histograms > spec.independent_balls:
        print(f"note: {args.balls * args.histograms} balls exceed the {spec.independent_balls} independent balls of "
              f"this spec ({spec.randomness_limit_message(args.balls * args.histograms)})")
    _write_json(args.json, rep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
