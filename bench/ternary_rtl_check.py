"""The ternary EP core's generated Verilog against its twin with fault injection on, at scale.

``--images`` MNIST test images (default 1000) per fault mode through a ternary 784-H-10 image
(``--image``, or one trained here: ``python -m golden.ternary train`` 784-64-10, one epoch, then
``golden.ep_core quantize``), on Icarus and Verilator, with random idle/stall cycles on every stream:

1. **static** faults: the fault registers are set, then the image is programmed through the weight
   port, so adjacent-level errors are drawn while programming (stored), then the images stream;
2. **dynamic** faults: errors redrawn at every weight read, and the PCSA at nominal supply (a 0 cell
   reads as a random ±1).

With ``--train-steps N`` the core is a training ternary core (latent weights; ``--image`` must be one,
or the trained net is quantised for one) and each mode first trains on chip for N MNIST training
samples — the states of every phase, the cells, latent weights and biases after every update are
compared too — before its test images run on what was learnt.

Every prediction, the memory's counters (injected errors, illegal cells, reads) and the stored cells
read back are compared with the twin (``==``). Reports mismatches (must be 0), RTL accuracy, and
wall time per simulator. JSON to --json.

    python bench/ternary_rtl_check.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_image(data_dir: str | None, work: Path, hidden: int, lanes: int, training: bool = False) -> Path:
    """Train a small ternary EP net (one epoch), export it and build the ternary core image."""
    from golden.ep_core.__main__ import main as core_main
    from golden.ternary.__main__ import main as ternary_main
    from spec.ep_core import EPCoreSpec

    run, exp, img = work / "train", work / "export", work / "image"
    args = ["train", "--layers", "784", str(hidden), "10", "--epochs", "1", "--out", str(run), "--no-progress"]
    if data_dir:
        args += ["--data-dir", data_dir]
    assert ternary_main(args) == 0
    assert ternary_main(["export", "--checkpoint", str(run), "--out", str(exp)]) == 0
    spec = EPCoreSpec(layers=(784, hidden, 10), lanes=lanes, training=training, weight_kind="ternary",
                      weight_bits=(2,), weight_frac=(4,), fault_injection=True, update_rounding="half_up")
    # (quantize replaces weight_frac by the export's alpha_shift and the bias formats by the biases')
    (work / "spec.toml").write_text(spec.to_toml())
    assert core_main(["quantize", "--spec", str(work / "spec.toml"), "--export", str(exp), "--out", str(img)]) == 0
    return img


from golden.clierr import ArgumentParser, cli_main  # noqa: E402


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", type=Path, help="ternary core image with fault_injection (default: train one)")
    p.add_argument("--data-dir", help="data root (default $EPFORGE_DATA or ~/.cache/epforge/data)")
    p.add_argument("--images", type=int, default=1000, help="test images per fault mode (default 1000)")
    p.add_argument("--error-rate", type=float, default=0.02, help="mean weight error rate p (default 0.02)")
    p.add_argument("--T1", type=int, help="free-phase steps (default: the image spec's)")
    p.add_argument("--train-steps", type=int, default=0,
                   help="on-chip training samples per mode before its test images (a training ternary core; "
                        "default 0: inference only)")
    p.add_argument("--lr-shift", type=int, default=8, help="η = 2^-SHIFT of the training steps (default 8)")
    p.add_argument("--simulators", nargs="+", default=["verilator", "icarus"], choices=["icarus", "verilator"])
    p.add_argument("--stall", type=float, default=0.2, help="idle/stall probability on every stream (default 0.2)")
    p.add_argument("--seed", type=int, default=1, help="stall seed and fault PRNG seed (default 1)")
    p.add_argument("--verilog-style", choices=["amaranth", "netlist"], default="amaranth",
                   help="amaranth: amaranth.back.verilog (what hdl.build writes); netlist: the same RTLIL through "
                        "yosys proc with multiplexers (much faster on Icarus; sim.runner.verilog_of)")
    p.add_argument("--json", type=Path, default=REPO / "bench/results/ternary_rtl_check.json",
                   help="JSON output (default bench/results/ternary_rtl_check.json)")
    args = p.parse_args(argv)
    import numpy as np

    from golden.data import load_dataset
    from golden.ep_core import Registers, load_image
    from golden.ep_core.faults import fault_writes
    from golden.train import atomic_write_bytes
    from hdl.ep_core import EPCore
    from sim.ep_core import Segment, compare_with_twin, run_ep_core
    from sim.runner import build, verilog_of

    work = Path(tempfile.mkdtemp(prefix="ternary_rtl_check_"))
    if args.train_steps < 0:
        p.error(f"--train-steps must be a non-negative integer, not {args.train_steps}")
    train = args.train_steps > 0
    image = args.image or make_image(args.data_dir, work, 64, 16, training=train)
    spec, weights, _ = load_image(image)
    if spec.weight_kind != "ternary" or not spec.fault_injection:
        raise SystemExit(f"--image {image}: needs a ternary core spec with fault_injection (weight_kind="
                         f"{spec.weight_kind!r}, fault_injection={spec.fault_injection})")
    if train and not spec.training:
        raise SystemExit(f"--train-steps {args.train_steps}: --image {image} is an inference-only core "
                         f"(training=false)")
    test = load_dataset("mnist", "test", data_dir=args.data_dir)
    n = args.images
    x = test.images.reshape(len(test), -1)[:2 * n].astype(np.int64)
    y = test.labels[:2 * n]
    regs = Registers.from_spec(spec, **({"T1": args.T1} if args.T1 else {}))
    w_static, f_static = fault_writes(spec, weights, args.error_rate, "static", seed=args.seed)
    w_dyn, f_dyn = fault_writes(spec, weights, args.error_rate, "dynamic", supply="nominal", seed=args.seed + 1)
    segments = [Segment(regs, x[:n], y[:n], mem_regs=w_static, program=True),
                Segment(regs, x[n:2 * n], y[n:2 * n], mem_regs=w_dyn)]
    if train:  # each mode trains first (dumps and a full read-back after every update), then infers
        k = args.train_steps
        tr = load_dataset("mnist", "train", data_dir=args.data_dir)
        xtr, ytr = tr.images.reshape(len(tr), -1)[:2 * k].astype(np.int64), tr.labels[:2 * k]
        tregs = Registers.from_spec(spec, train=True, dump=True, lr_shift=args.lr_shift,
                                    **({"T1": args.T1} if args.T1 else {}))
        segments = [Segment(tregs, xtr[:k], ytr[:k], readback_each=True, mem_regs=w_static, program=True),
                    Segment(regs, x[:n], y[:n]),
                    Segment(tregs, xtr[k:], ytr[k:], readback_each=True, mem_regs=w_dyn),
                    Segment(regs, x[n:2 * n], y[n:2 * n])]
    report = {"bench": "ternary_rtl_check", "image": str(image), "spec": spec.to_dict(), "T1": regs.T1,
              "verilog_style": args.verilog_style,
              "stall_prob": args.stall, "faults": {"static": f_static, "dynamic": f_dyn}, "results": {}}
    for sim in args.simulators:
        t0 = time.time()
        build(verilog_of(EPCore(spec), "ep_core", args.verilog_style), "ep_core", sim)
        build_s = time.time() - t0
        t0 = time.time()
        res = run_ep_core(spec, weights, segments, sim, seed=args.seed, idle_prob=args.stall, stall_prob=args.stall,
                          readback_initial=False, verilog_style=args.verilog_style)
        sim_s = time.time() - t0
        t0 = time.time()
        rep = compare_with_twin(spec, weights, segments, res, sim)
        twin_s = time.time() - t0
        per_mode = {}
        infer_segs = res["segments"][1::2] if train else res["segments"]
        for name, seg in zip(("static", "dynamic"), infer_segs, strict=True):
            ys = y[:n] if name == "static" else y[n:2 * n]
            per_mode[name] = {"rtl_accuracy": float((np.array(seg["preds"]) == ys).mean()),
                              "memory_counters": dict(zip(("injected", "illegal", "reads"), seg["mem_counters"],
                                                          strict=True)),
                              "cycles_per_image": (seg["cycles"] or [None])[-1]}
        report["results"][sim] = {"build_s": build_s, "simulation_s": sim_s, "twin_s": twin_s,
                                  "images": rep.samples - rep.training_steps, "training_steps": rep.training_steps,
                                  "compared": rep.compared, "mismatches": rep.mismatches, "modes": per_mode}
        st, dy = per_mode["static"], per_mode["dynamic"]
        trained = (f"after {rep.training_steps} on-chip training steps ({rep.compared['weight_arrays']} weight arrays "
                   f"compared), " if train else "")
        print(f"{sim:9s}: {trained}{rep.samples - rep.training_steps} images ({n} static + {n} dynamic, "
              f"p = {args.error_rate:g}), "
              f"{len(rep.mismatches)} mismatches; RTL accuracy static {100 * st['rtl_accuracy']:.2f}%, "
              f"dynamic/nominal {100 * dy['rtl_accuracy']:.2f}%; injected {st['memory_counters']['injected']} / "
              f"{dy['memory_counters']['injected']}; {sim_s:.1f} s simulation, {twin_s:.1f} s twin, "
              f"build {build_s:.0f} s", flush=True)
    r = report["results"]
    if "icarus" in r and "verilator" in r:
        report["verilator_speedup"] = r["icarus"]["simulation_s"] / r["verilator"]["simulation_s"]
    atomic_write_bytes(args.json, json.dumps(report, indent=2).encode())
    print(f"wrote {args.json}")
    return 1 if sum(len(v["mismatches"]) for v in r.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
