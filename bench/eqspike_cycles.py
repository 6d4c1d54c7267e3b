"""Cycles per sample of the EqSpike core RTL (hdl/eqspike.py) against its event roofline, in the Amaranth simulator.

Runs ``--images`` MNIST test images through the core built with a weight image (``--image``, e.g. the
quantised 784-500-10 net of docs/eqspike.md), checks every prediction, output state and counter
against the twin (``==``), and reports per sample: cycles (``REG_CYCLES``: from the sample's start to
its prediction), the weight words the event engine read (``REG_WORDS``: one word per spike event and
target word, the roofline), the ratio, spikes per layer and how sparse they are (spikes per neuron
and step). ``--train`` runs on-chip training samples instead (a training core of the image's layers,
from its weights): cycles against the words read by the accumulation pass plus those rewritten by
the update pass. JSON to ``--json``.

    python bench/eqspike_cycles.py --image runs/eqs_b500_image --data-dir ../shared/data --images 3
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


def words_of(spec, spikes: list[int]) -> int:
    L = spec.n_layers
    return sum(n * ((spec.tiles(l + 1) if l < L else 0) + (spec.tiles(l - 1) if l >= 2 else 0))
               for l, n in enumerate(spikes))


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", type=Path, required=True, help="EqSpike weight image (golden.eqspike.twin_cli quantize)")
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    p.add_argument("--images", type=int, default=3, help="MNIST test images (default 3)")
    p.add_argument("--train", action="store_true", help="on-chip training samples (MNIST training images)")
    p.add_argument("--T2", type=int, default=None, help="nudged-phase steps for --train (default the spec's)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    if args.images < 1:
        raise CLIError(f"--images must be >= 1, not {args.images}")

    import dataclasses

    import numpy as np
    from amaranth.sim import Simulator

    from golden.data import load_dataset
    from golden.eqspike.image import load_image
    from golden.eqspike.twin import EqSpikeTwin
    from hdl.eqspike import CTRL_TRAIN, REG_CTRL, REG_CYCLES, REG_SPIKES, REG_WORDS, EqSpikeCore
    from hdl.eqspike_host import EqSpikeHost

    spec, weights, _ = load_image(args.image)
    if args.train:
        spec = dataclasses.replace(spec, training=True, **({"T2": args.T2} if args.T2 else {}))
    ds = load_dataset("mnist", "train" if args.train else "test", data_dir=args.data_dir)
    xs = ds.images.reshape(len(ds), -1)[:args.images].astype(np.int64)
    ys = ds.labels[:args.images]
    dut = EqSpikeCore(spec, weights=weights)
    got: list = []

    async def bench(ctx):
        host = EqSpikeHost(dut, spec)
        if args.train:
            await host.write_reg(ctx, REG_CTRL, CTRL_TRAIN)
        for x, y in zip(xs, ys, strict=True):
            await host.send_pixels(ctx, x.tolist(), int(y))
            pred, states = await host.recv_result(ctx)
            got.append((pred, states, *[await host.read_reg(ctx, a) for a in (REG_CYCLES, REG_WORDS, REG_SPIKES)]))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    t0 = time.time()
    sim.run()
    wall = time.time() - t0
    twin = EqSpikeTwin(spec, weights)
    rows, mismatches = [], 0
    for x, y, (pred, states, cycles, words, spikes) in zip(xs, ys, got, strict=True):
        rec = twin.train_sample(x, int(y)) if args.train else twin.infer(x)
        ph = rec.phases[0]
        ok = (pred == rec.pred and states == ph.s[-1][0].tolist()
              and spikes == sum(sum(q.spikes) for q in rec.phases)
              and words == sum(words_of(spec, q.spikes) for q in rec.phases))
        mismatches += not ok
        # training: the update pass rewrites the rows the nudged phases' events read
        upd = sum(words_of(spec, q.spikes) for q in rec.phases[1:]) if args.train else 0
        per_layer = [int(sum(q.spikes[l] for q in rec.phases)) for l in range(spec.n_layers + 1)]
        steps = sum(q.steps for q in rec.phases)
        rows.append({"label": int(y), "pred": pred, "cycles": cycles, "words_read": words, "words_updated": upd,
                     "ratio": round(cycles / (words + upd), 4), "spikes_per_layer": per_layer,
                     "spike_rate_per_neuron_step": [round(n / (spec.layers[l] * steps), 4)
                                                    for l, n in enumerate(per_layer)]})
        print(f"label {int(y)} pred {pred}: {cycles} cycles, {words} words read"
              + (f" + {upd} rewritten" if args.train else "") + f", ratio {rows[-1]['ratio']:.3f}, spikes "
              f"{per_layer} (per neuron and step {rows[-1]['spike_rate_per_neuron_step']})")
    ratio = sum(r["cycles"] for r in rows) / sum(r["words_read"] + r["words_updated"] for r in rows)
    print(f"{'-'.join(map(str, spec.layers))} P={spec.lanes} {'training' if args.train else 'inference'}, "
          f"{len(rows)} samples: cycles / roofline = {ratio:.3f}; mismatches vs twin {mismatches}; "
          f"simulated in {wall:.1f} s")
    if args.json:
        args.json.write_text(json.dumps({"spec": spec.to_dict(), "image": str(args.image), "train": args.train,
                                         "samples": rows, "ratio": ratio, "mismatches": mismatches,
                                         "sim_wall_s": wall}, indent=2))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
