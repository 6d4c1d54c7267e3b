"""Galton-board emulator on generated Verilog (cocotb, Icarus or Verilator) against its twin, with ``==``.

A scenario is a list of :class:`Segment` runs. :func:`segment_job` turns them into the JSON job both
host drivers execute — the cocotb bench :mod:`sim.galton_bench` and the Amaranth-simulator host
of ``tests/test_galton_amsim.py`` — and :func:`compare_with_twin` replays the same scenario on
:class:`golden.domainwall.GaltonTwin` and lists every difference: each ball of each board on
``out``, the ball counter, every histogram counter and threshold read back through ``rsp``.

What one segment does (the host's order): memory writes (thresholds) → optional reseed →
``REG_CTRL`` → ``REG_BALLS`` → ``START`` (with ``CLEAR`` when asked) → collect the balls (all of
them; or, for an unlimited run, ``stop_after`` beats, then ``STOP`` and the ball left in the
output register) → wait until not running → read ``REG_DONE``/``REG_REMAINING`` and the
requested memory words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.domainwall import GaltonTwin
from spec.ep_core import unpack_fields
from spec.galton import CTRL_CORRELATED, CTRL_HIST_ONLY, GaltonSpec

from .runner import run_cocotb, verilog_of


@dataclass
class Segment:
    """One run of the emulator.

    balls : balls per board of a limited run (``REG_BALLS``); ignored when ``stop_after`` is set.
    thresholds : ``[2, N, N]`` table written (entries j ≤ i) before the run, or ``None``.
    writes : extra raw ``(addr, data)`` memory writes after the thresholds (saturation, unused
        addresses …).
    seed : reseed before the run (``REG_SEED``), or ``None`` to continue the stream.
    correlated, hist_only : ``REG_CTRL`` bits.
    clear : ``CLEAR`` the histograms and the ball counter with the ``START``.
    stop_after : run unlimited (``REG_BALLS = 0``), take this many beats, then ``STOP``.
    reads : memory addresses read back after the run; ``None``: every threshold and every
        histogram counter.
    """

    balls: int = 0
    thresholds: np.ndarray | None = None
    writes: list[tuple[int, int]] = field(default_factory=list)
    seed: int | None = None
    correlated: bool = False
    hist_only: bool = False
    clear: bool = False
    stop_after: int | None = None
    reads: list[int] | None = None


def all_read_addrs(spec: GaltonSpec) -> list[int]:
    """Every threshold (both tables) and every histogram counter."""
    thr = [spec.threshold_addr(c, i, j) for c in range(2) for i in range(spec.rows) for j in range(i + 1)]
    hist = [spec.hist_addr(b, n) for b in range(spec.boards) for n in range(spec.n_bins)]
    return thr + hist


def segment_job(spec: GaltonSpec, segments: list[Segment]) -> list[dict]:
    """The JSON-able description of each segment that the host drivers execute."""
    out = []
    for seg in segments:
        if seg.stop_after is not None and seg.hist_only:
            raise ValueError("stop_after needs the out stream: it cannot be combined with hist_only")
        if seg.stop_after is None and not (isinstance(seg.balls, int) and 0 < seg.balls < (1 << spec.count_bits)):
            raise ValueError(f"balls must be in 1..{(1 << spec.count_bits) - 1} for a limited run, not {seg.balls!r}")
        writes = []
        if seg.thresholds is not None:
            t = np.asarray(seg.thresholds)
            writes += [(spec.threshold_addr(c, i, j), int(t[c, i, j]))
                       for c in range(2) for i in range(spec.rows) for j in range(i + 1)]
        writes += [(int(a), int(d)) for a, d in seg.writes]
        out.append({
            "writes": writes, "seed": seg.seed,
            "ctrl": CTRL_CORRELATED * int(seg.correlated) | CTRL_HIST_ONLY * int(seg.hist_only),
            "balls": 0 if seg.stop_after is not None else int(seg.balls), "stop_after": seg.stop_after,
            "clear": bool(seg.clear), "hist_only": bool(seg.hist_only),
            "reads": all_read_addrs(spec) if seg.reads is None else [int(a) for a in seg.reads],
        })
    return out


@dataclass
class Report:
    simulator: str
    balls_compared: int = 0  # balls × boards compared on the out stream
    balls_generated: int = 0  # per board, all segments (hist-only included)
    words_compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    histograms: list[np.ndarray] = field(default_factory=list)  # per segment, (B, N+1) as read back


def decode_balls(spec: GaltonSpec, words: list[int]) -> np.ndarray:
    """``out`` payload words → ``(n, B)`` bin indices."""
    f = spec.out_fields()
    return np.array([[d[name] for name, _ in f] for d in (unpack_fields(f, w) for w in words)],
                    dtype=np.int64).reshape(len(words), spec.boards)


def compare_with_twin(spec: GaltonSpec, segments: list[Segment], result: dict, simulator: str = "",
                      max_report: int = 20) -> Report:
    """Replay the scenario on the twin and collect every difference (exact equality)."""
    rep = Report(simulator, wall_s=result.get("wall_s", 0.0))
    jobs = segment_job(spec, segments)

    def bad(msg: str) -> None:
        rep.mismatches.append(msg if len(rep.mismatches) < max_report else "…")

    if result.get("spec_id") != spec.spec_id:
        bad(f"SPEC_ID register {result.get('spec_id')!r} != {spec.spec_id:#x}")
    twin = GaltonTwin(spec)
    for si, (job, res) in enumerate(zip(jobs, result["segments"], strict=True)):
        for a, d in job["writes"]:
            twin.write(a, d)
        if job["seed"] is not None:
            twin.reseed(job["seed"])
        twin.correlated = bool(job["ctrl"] & CTRL_CORRELATED)
        if job["clear"]:
            twin.clear()
        before = twin.done
        n = job["balls"] if job["stop_after"] is None else res["done"] - before
        if n < 0:
            bad(f"segment {si}: ball counter went back from {before} to {res['done']}")
            continue
        want = twin.balls(n)
        rep.balls_generated += n
        if res["done"] != twin.done:
            bad(f"segment {si}: REG_DONE {res['done']} != twin {twin.done}")
        if res["remaining"] != 0:
            bad(f"segment {si}: REG_REMAINING {res['remaining']} != 0 after the run")
        if not job["hist_only"]:
            got = decode_balls(spec, res["balls"])
            if got.shape != want.shape:
                bad(f"segment {si}: {got.shape[0]} balls on out, twin generated {want.shape[0]}")
            else:
                diff = np.argwhere(got != want)
                rep.balls_compared += got.size
                for n_, b in diff[:5]:
                    bad(f"segment {si} ball {n_} board {b}: RTL bin {got[n_, b]} != twin {want[n_, b]}")
                if len(diff) > 5:
                    bad(f"segment {si}: {len(diff)} differing bins in all")
        expect = [twin.read(a) for a in job["reads"]]
        rep.words_compared += len(expect)
        for a, g, e in zip(job["reads"], res["reads"], expect, strict=True):
            if g != e:
                bad(f"segment {si}: memory word {a:#x} reads {g}, twin {e}")
        if len(res["reads"]) != len(expect):
            bad(f"segment {si}: {len(res['reads'])} words read back, {len(expect)} requested")
        rep.histograms.append(twin.hist.copy())
    return rep


def run_galton(spec: GaltonSpec, segments: list[Segment], simulator: str, *, build_root: Path | None = None,
               seed: int = 1, idle_prob: float = 0.0, stall_prob: float = 0.0, timeout_s: float | None = None,
               timeout_ns: int | None = None) -> dict:
    """Run the scenario on the generated Verilog (top ``galton``); returns the bench's raw result."""
    from hdl.galton import GaltonBoard

    verilog = verilog_of(GaltonBoard(spec), "galton")
    job = {"spec": spec.to_dict(), "segments": segment_job(spec, segments), "seed": seed, "idle_prob": idle_prob,
           "stall_prob": stall_prob, "timeout_ns": timeout_ns}
    return run_cocotb(verilog, "galton", "sim.galton_bench", simulator, build_root, job=job, seed=seed,
                      timeout_s=timeout_s)
