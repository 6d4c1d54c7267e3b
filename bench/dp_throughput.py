"""Data-parallel EP throughput on this CPU: N processes x 1 thread vs 1 process x N threads.

Times one epoch of ``python -m golden train`` (784-512-10, global batch 256 by default) both ways and
prints JSON with samples/s (the trainer's own per-epoch figure, rank 0's wall clock for the whole
epoch) and the load average before and after. Example:

    python bench/dp_throughput.py --nproc 2 --train-limit 1024 --out runs/bench-dp.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run(nproc: int, threads: int, a) -> float:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "golden", "train", "--layers", "784", "512", "10", "--dataset", a.dataset,
               "--train-limit", str(a.train_limit), "--test-limit", "100", "--batch-size", str(a.batch_size),
               "--epochs", "1", "--threads", str(threads), "--nproc", str(nproc), "--device", "cpu",
               "--no-progress", "--out", str(Path(d) / "run")]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        m = json.loads((Path(d) / "run" / "metrics.json").read_text())
        return m["epochs"][0]["train_samples_per_s"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", type=int, default=2, help="processes (and threads of the 1-process run); default 2")
    p.add_argument("--batch-size", type=int, default=256, help="global batch (default 256)")
    p.add_argument("--train-limit", type=int, default=1024, help="training images per epoch (default 1024)")
    p.add_argument("--dataset", default="mnist-subset", help="default mnist-subset (bundled)")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    a = p.parse_args(argv)
    if a.nproc < 1 or a.batch_size % a.nproc:
        p.error(f"--nproc must be >= 1 and divide --batch-size {a.batch_size}, not {a.nproc}")
    load0 = os.getloadavg()
    dp = run(a.nproc, 1, a)
    mt = run(1, a.nproc, a)
    res = {"net": "784-512-10", "batch_size": a.batch_size, "train_images": a.train_limit,
           f"{a.nproc}proc_x_1thread_samples_per_s": round(dp, 1),
           f"1proc_x_{a.nproc}threads_samples_per_s": round(mt, 1),
           "loadavg_before": load0, "loadavg_after": os.getloadavg()}
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
