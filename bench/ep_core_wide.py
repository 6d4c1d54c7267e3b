"""Wide EP training cores on the ULX3S (ECP5-85F): the largest 784-N-10 per lane count P, its multipliers and
block RAM, and its training throughput at a target clock (issue 14.4).

For each P: ``N_bound``, the largest N that passes ``boards.fit.check_fits`` (the weight memories' block RAM
as a lower bound — every weight word read whole each cycle through one port while the other takes the
update's writes — and the lanes' MULT18X18D), and ``N``, estimated with room for the rest: the host link's
two DP16KD and the core's other memories (input, c1, states, d, biases) as in the 784-320-10 P16 build
(191 DP16KD: 182 for the weights, 2 for the link, 7 others), scaled by P/16 since their words are P lanes
wide. For the core of that N: the training cycles of one sample (``--simulate``: simulated in the Amaranth
simulator, exact since the schedule does not depend on the data; otherwise the roofline), samples/s at
``--mhz`` and the DSP bound ``DSPs × f / multiplies`` (``EPCoreSpec.multiplies``).

    python bench/ep_core_wide.py                                   # P = 16 32 64 96 128, 12-bit weights
    python bench/ep_core_wide.py --lanes 16 32 64 --simulate --json bench/results/ep_core_wide.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

# the training format of the measured 784-320-10 ULX3S build (docs/boards.md)
TRAIN = dict(weight_bits=(12,), weight_frac=(10,), bias_bits=16, update_rounding="half_up", estimator="symmetric")
LINK_BLOCKS = 2  # the host link's receive FIFO and sample buffer (docs/boards.md)


def spec_for(n: int, lanes: int, n0: int = 784, n2: int = 10, **kw):
    from spec.ep_core import EPCoreSpec

    return EPCoreSpec(layers=(n0, n, n2), lanes=lanes, **{**TRAIN, **kw})


OTHER_BLOCKS_P16 = 7  # the 784-320-10 P16 training build's DP16KD beyond its weights (176 + 6) and the link (2)


def other_blocks(spec) -> int:
    """Estimated DP16KD beside the weight memories: the link's, and the core's other memories as measured at
    P = 16, scaled by P/16 (their words are P lanes wide)."""
    return LINK_BLOCKS + -(-OTHER_BLOCKS_P16 * spec.lanes // 16)


def fits(spec, with_room: bool, board: str = "ulx3s") -> bool:
    from boards.fit import BOARD_BRAM, check_fits, weight_blocks

    try:
        check_fits(board, "ep", spec)
    except ValueError:
        return False
    return not with_room or weight_blocks(board, spec)["need"] + other_blocks(spec) <= BOARD_BRAM[board][1]


def largest_n(lanes: int, with_room: bool, hi: int = 4096, **kw) -> int:
    """The largest N whose 784-N-10 core fits (binary search; fitting is monotone in N)."""
    lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(spec_for(mid, lanes, **kw), with_room):
            lo = mid
        else:
            hi = mid - 1
    return lo


def row(lanes: int, simulate: bool, mhz: float, stages: int = 0, **kw) -> dict:
    from boards.fit import lane_dsps, weight_blocks

    n_bound = largest_n(lanes, False, **kw)
    n = largest_n(lanes, True, **kw)
    spec = spec_for(n, lanes, **kw)
    roof = spec.roofline(True)
    mul = spec.multiplies(True)
    dsp = lane_dsps("ulx3s", spec)
    out = {"lanes": lanes, "N": n, "N_bound": n_bound, "layers": list(spec.layers),
           "weight_dp16kd": weight_blocks("ulx3s", spec)["need"], "other_dp16kd_estimate": other_blocks(spec),
           "mult18x18d": dsp["need"], "roofline_cycles": roof["cycles"], "multiplies": mul["total"],
           "dsp_bound_samples_per_s": dsp["need"] * mhz * 1e6 / mul["total"], "mhz": mhz,
           "weight_read_stages": stages}
    if simulate:
        from ep_core_cycles import measure_spec

        c = measure_spec(spec, True, True, stages)
        per = c["cycles"] + c["input_beats"]
        out.update(cycles=c["cycles"], input_beats=c["input_beats"], cycles_per_sample=per,
                   ratio_to_roofline=c["ratio"], sim_seconds=c["sim_seconds"])
    else:
        per = roof["cycles"] + spec.tiles(0)
        out["cycles_per_sample_roofline"] = per
    out["samples_per_s"] = mhz * 1e6 / per
    out["mhz_for_5000_per_s"] = 5000 * per / 1e6  # the clock at which this core trains 5,000 samples/s
    out["ratio_to_dsp_bound"] = out["samples_per_s"] / out["dsp_bound_samples_per_s"]
    return out


from golden.clierr import ArgumentParser, cli_main  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lanes", type=int, nargs="+", default=[16, 32, 64, 96, 128], help="P values")
    p.add_argument("--weight-bits", type=int, default=12, help="weight width (default 12, frac = bits - 2)")
    p.add_argument("--mhz", type=float, default=90.0, help="clock for samples/s (default 90)")
    p.add_argument("--weight-read-stages", type=int, default=0, metavar="K",
                   help="simulate the core with K weight read stages (the fast-clock builds use 2; default 0)")
    p.add_argument("--simulate", action="store_true", help="simulate one training sample per P (exact cycles)")
    p.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    a = p.parse_args(argv)
    if any(x < 1 for x in a.lanes) or a.weight_bits < 3 or a.mhz <= 0 or not 0 <= a.weight_read_stages <= 4:
        raise SystemExit("error: --lanes must be positive, --weight-bits at least 3, --mhz positive, "
                         "--weight-read-stages 0 to 4")
    kw = {"weight_bits": (a.weight_bits,), "weight_frac": (a.weight_bits - 2,)}
    rows = []
    print("| P | N | N (bound: weights only) | weight DP16KD | MULT18X18D | cycles/sample | "
          f"samples/s at {a.mhz:g} MHz | DSP bound | ratio | MHz for 5,000/s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for lanes in a.lanes:
        r = row(lanes, a.simulate, a.mhz, a.weight_read_stages, **kw)
        rows.append(r)
        cyc = r.get("cycles_per_sample", r.get("cycles_per_sample_roofline"))
        mark = "" if a.simulate else " (roofline)"
        print(f"| {lanes} | {r['N']} | {r['N_bound']} | {r['weight_dp16kd']} | {r['mult18x18d']} | "
              f"{cyc:,.0f}{mark} | {r['samples_per_s']:,.0f} | {r['dsp_bound_samples_per_s']:,.0f} | "
              f"{r['ratio_to_dsp_bound']:.2f} | {r['mhz_for_5000_per_s']:.1f} |", flush=True)
    if a.json:
        from golden.train import atomic_write_bytes

        a.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(a.json, json.dumps({"bench": "ep_core_wide", "rows": rows}, indent=2).encode())
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
