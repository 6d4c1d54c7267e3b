"""Speed of the EP core twin (golden.ep_core.EPCoreTwin): on-chip training and inference samples per
CPU second, for each weight kind, best of ``--repeats`` (CPU time, so that other jobs on a shared
machine disturb it less than wall time).

    python bench/ep_core_twin_speed.py [--samples 300] [--repeats 5]

Random pixels and random weights (``random_weights``), 784-32-10, P = 16: the speed, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from golden.ep_core.twin import EPCoreTwin, Registers, init_weights, random_weights
from spec.ep_core import EPCoreSpec
from spec.ternary import RATE_BITS

SPECS = {
    "fixed": dict(layers=(784, 32, 10)),
    "ternary-training": dict(layers=(784, 32, 10), weight_kind="ternary", weight_bits=(2, 2), weight_frac=(5, 5),
                             fault_injection=True),
    "ternary-inference": dict(layers=(784, 32, 10), weight_kind="ternary", weight_bits=(2, 2), weight_frac=(5, 5),
                              fault_injection=True, training=False),
}


def measure(kind: str, samples: int, repeats: int) -> dict:
    spec = EPCoreSpec(**SPECS[kind])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (samples, 784))
    labels = rng.integers(0, 10, samples)
    out = {}
    best_train = best_infer = best_dyn = float("inf")
    for _ in range(repeats):
        if spec.training:
            twin = EPCoreTwin(spec, init_weights(spec, 0))
            regs = Registers.from_spec(spec, train=True)
            t = time.process_time()
            for i in range(samples):
                twin.train_sample(x[i], int(labels[i]), regs)
            best_train = min(best_train, time.process_time() - t)
        w = random_weights(spec, np.random.default_rng(1))
        if spec.weight_kind == "ternary":
            w.update({k: np.clip(v, -1, 1) for k, v in w.items() if k.startswith("w")})
        twin = EPCoreTwin(spec, w)
        t = time.process_time()
        twin.predict(x)
        best_infer = min(best_infer, time.process_time() - t)
        if twin.memory is not None:  # every read sensed on its own (dynamic faults)
            rate = 1 << (RATE_BITS - 6)
            twin.memory.configure("dynamic", "adjacent", rate_zero=rate, rate_nonzero=rate)
            n = max(1, samples // 10)
            t = time.process_time()
            twin.predict(x[:n])
            best_dyn = min(best_dyn, (time.process_time() - t) * samples / n)
    if spec.training:
        out["train_samples_per_cpu_s"] = round(samples / best_train, 1)
    out["infer_samples_per_cpu_s"] = round(samples / best_infer, 1)
    if best_dyn < float("inf"):
        out["infer_dynamic_faults_samples_per_cpu_s"] = round(samples / best_dyn, 1)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kinds", nargs="*", default=list(SPECS), choices=list(SPECS))
    args = ap.parse_args(argv)
    if args.samples < 10 or args.repeats < 1:
        raise SystemExit(f"error: --samples must be >= 10 (not {args.samples}) and --repeats >= 1 "
                         f"(not {args.repeats})")
    print(json.dumps({k: measure(k, args.samples, args.repeats) for k in args.kinds}))


if __name__ == "__main__":
    main()
