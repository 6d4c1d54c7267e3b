"""Fuzz the host link (protocol v2) against the simulated board at scale (boards/linkfuzz.py).

Garbage bytes, frames cut short, oversized frames, bad CRCs, wrong sequence numbers, replays and lost
frames on the host → device line, plus second host sessions and resets in mid-frame, against
``LinkedCore(MockEPCore)`` with a shadow of every weight written. Reports hangs, stray weight writes,
lost/repeated samples and unrecovered errors (all must be 0) as JSON.

    nice -n 10 python bench/link_fuzz.py --min-malformed 10000 --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from boards.linkfuzz import run_fuzz  # noqa: E402
from golden.fileio import atomic_write_bytes  # noqa: E402

FAILURES = ("hangs", "stray_writes", "lost_samples", "repeated_samples", "wrong_predictions", "unrecovered")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-malformed", type=int, default=10_000, help="mangled frames to reach (default 10,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--p", type=float, default=0.2, help="fraction of the host's frames mangled (default 0.2)")
    ap.add_argument("--events-every", type=int, default=12, help="rounds between a second session / reset (12)")
    ap.add_argument("--check-every", type=int, default=4, help="rounds between full weight read-backs (4)")
    ap.add_argument("--stalls", type=float, default=0.1, help="chance of an idle/stall cycle on each stream (0.1)")
    ap.add_argument("--max-wait-cycles", type=int, default=1500, help="cycles a read waits for a byte (1500)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "link_fuzz.json"))
    a = ap.parse_args(argv)
    if a.min_malformed < 1:
        ap.error(f"--min-malformed must be at least 1, not {a.min_malformed}")
    if not 0 < a.p < 1:
        ap.error(f"--p must be in (0, 1), not {a.p}")
    for name in ("events_every", "check_every", "max_wait_cycles"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1, not {getattr(a, name)}")
    if not 0 <= a.stalls < 1:
        ap.error(f"--stalls must be in [0, 1), not {a.stalls}")
    r = run_fuzz(seed=a.seed, min_malformed=a.min_malformed, p=a.p, events_every=a.events_every,
                 check_every=a.check_every, idle_prob=a.stalls, stall_prob=a.stalls, max_wait_cycles=a.max_wait_cycles,
                 log=lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(r, indent=1) + "\n").encode())
    print(json.dumps({k: r[k] for k in ("seed", "p", "settings", "rounds", "malformed_frames", "mutations",
                                        "frames_written",
                                        "cycles", "max_cycles_per_round", *FAILURES, "wall_s")}, indent=1))
    print(f"wrote {out}", file=sys.stderr)
    return 1 if any(r[k] for k in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
