"""Cycles per sample of the EP core, measured in simulation, beside DESIGN.md's roofline bound.

The core's schedule does not depend on the data, so one simulated sample per configuration gives
its exact cycle count (read from the core's REG_CYCLES: last input beat → prediction handshake;
the ceil(N0/P) input beats are reported separately). Simulator: Amaranth's (no toolchain needed).

    python bench/ep_core_cycles.py                      # 784-500-10, P = 16 and 64, T1 30, T2 10
    python bench/ep_core_cycles.py --layers 784 128 10 --lanes 8 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def measure(layers, lanes: int, train: bool, T1: int, T2: int, symmetric: bool, ternary: bool = False,
            register_reads: bool = True) -> dict:
    from spec.ep_core import EPCoreSpec

    if ternary:  # ternary core with fault injection (docs/ternary.md): inference-only, or training (latent weights)
        spec = EPCoreSpec(layers=tuple(layers), lanes=lanes, weight_kind="ternary", weight_bits=(2,),
                          weight_frac=(5,) + (4,) * (len(layers) - 2), training=train, fault_injection=True,
                          T1=T1, T2=T2,
                          update_rounding="half_up", estimator="symmetric" if symmetric else "one-sided")
    else:
        spec = EPCoreSpec(layers=tuple(layers), lanes=lanes, weight_bits=(16,), weight_frac=(12,), bias_bits=20,
                          training=True, T1=T1, T2=T2, estimator="symmetric" if symmetric else "one-sided")
    return {**measure_spec(spec, train, register_reads), "weight_kind": spec.weight_kind}


def measure_spec(spec, train: bool, register_reads: bool = True, weight_read_stages: int = 0) -> dict:
    """Cycles of one sample of ``spec``'s core (its T1, T2 and estimator) in inference or training
    (``register_reads``, ``weight_read_stages``: the :class:`hdl.ep_core.EPCore` options the core is built with)."""
    from amaranth.sim import Simulator

    from golden.ep_core import Registers
    from hdl.ep_core import EPCore
    from hdl.ep_core_host import AmaranthHost
    from spec.ep_core import REG_CYCLES

    if train and not spec.training:
        raise ValueError("train: this spec's core has no training mode (training = false)")
    layers, lanes, T1, T2 = list(spec.layers), spec.lanes, spec.T1, spec.T2
    dut = EPCore(spec, register_reads=register_reads, weight_read_stages=weight_read_stages)
    res = {}
    # Amaranth's Python simulator compiles a memory write of a word wider than ≈ 2,500 bits (P = 156 × 16-bit
    # weights) into one expression deeper than Python's default recursion limit allows
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))

    async def bench(ctx):
        host = AmaranthHost(dut, spec)
        await host.set_regs(ctx, Registers.from_spec(spec, train=train))
        await host.send_sample(ctx, [0] * layers[0], 0)
        await host.recv_pred(ctx)
        res["cycles"] = await host.read_reg(ctx, REG_CYCLES)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    t0 = time.time()
    sim.run()
    roof = spec.roofline(train)
    return {"layers": list(layers), "lanes": lanes, "mode": "training" if train else "inference", "T1": T1,
            "T2": T2, "estimator": spec.estimator, "register_reads": register_reads,
            "weight_read_stages": weight_read_stages, "cycles": res["cycles"],
            "input_beats": spec.tiles(0),
            "roofline_cycles": roof["cycles"], "roofline_ops": roof["ops"],
            "ratio": res["cycles"] / roof["cycles"], "sim_seconds": time.time() - t0}


from golden.clierr import ArgumentParser, cli_main  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, nargs="+", default=[784, 500, 10], help="layer sizes (default 784 500 10)")
    p.add_argument("--lanes", type=int, nargs="+", default=[16, 64], help="P values (default 16 64)")
    p.add_argument("--T1", type=int, default=30, help="free-phase steps (default 30)")
    p.add_argument("--T2", type=int, default=10, help="nudged-phase steps (default 10)")
    p.add_argument("--one-sided", action="store_true", help="one-sided estimator (default symmetric)")
    p.add_argument("--modes", nargs="+", default=["inference", "training"], choices=["inference", "training"])
    p.add_argument("--ternary", action="store_true",
                   help="the ternary-weight core (weight_kind ternary): inference-only for --modes inference, "
                   "the core with latent weights (on-chip training) for --modes training")
    p.add_argument("--no-read-stage", action="store_true",
                   help="the core without its memory read stage (EPCore register_reads=False: the iCE40 build)")
    p.add_argument("--json", type=Path, default=REPO / "bench/results/ep_core_cycles.json",
                   help="JSON output (default bench/results/ep_core_cycles.json)")
    args = p.parse_args(argv)
    rows = []
    for lanes in args.lanes:
        for mode in args.modes:
            r = measure(args.layers, lanes, mode == "training", args.T1, args.T2, not args.one_sided, args.ternary,
                        not args.no_read_stage)
            rows.append(r)
            print(f"{'-'.join(map(str, r['layers']))} P={lanes:<3d} {mode:9s} {r['cycles']:8d} cycles  "
                  f"roofline {r['roofline_cycles']:9.1f}  ratio {r['ratio']:.3f}  (+{r['input_beats']} input beats; "
                  f"simulated in {r['sim_seconds']:.0f} s)", flush=True)
    from golden.train import atomic_write_bytes

    atomic_write_bytes(args.json, json.dumps({"bench": "ep_core_cycles", "results": rows}, indent=2).encode())
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
