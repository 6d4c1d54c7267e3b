"""``python -m hdl.formal [--deep] [--out DIR] [BLOCK ...]``: run the formal harnesses, print a table."""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from .run import run, tools_missing

BLOCKS = ("uart", "hostlink", "ternary_mem", "galton", "ep_core")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hdl.formal", description=__doc__)
    ap.add_argument("blocks", nargs="*", metavar="BLOCK", help=f"any of {', '.join(BLOCKS)} (default: all)")
    ap.add_argument("--deep", action="store_true", help="the deeper depths of `make formal`")
    ap.add_argument("--out", type=Path, help="work directory (kept; default: a temporary one)")
    args = ap.parse_args(argv)
    for b in args.blocks:
        if b not in BLOCKS:
            ap.error(f"unknown block {b!r}; allowed: {', '.join(BLOCKS)}")
    why = tools_missing()
    if why:
        print(f"error: {why}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="epforge-formal-"))
    print("| block | properties | BMC depth | cover depth | unbounded proof | time | result | covers reached |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    for b in args.blocks or BLOCKS:
        h = importlib.import_module(f"hdl.formal.{b}").harness()
        r = run(h, out / b, deep=args.deep)
        print(r.row(), flush=True)
        if not r.passed:
            ok = False
            print("\n".join(r.log_tail), file=sys.stderr)
    print(f"work directory: {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
