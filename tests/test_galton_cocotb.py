"""Galton-board emulator: the generated Verilog == the twin on Icarus and on Verilator (cocotb), with
random idle cycles and stalls on every stream.

Every ball of every board on ``out``, the ball counter, every histogram counter and every
threshold read back are compared with ``==`` (:func:`sim.galton.compare_with_twin`). The broad
scenario sweep runs in the Amaranth simulator (tests/test_galton_amsim.py); the ≥ 1e5-ball check on
both simulators is ``bench/galton_rtl_check.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden.domainwall import DomainWallBoard, chi_square_test, threshold_distribution
from sim.galton import Segment, compare_with_twin, decode_balls, run_galton
from sim.runner import sim_available
from spec.galton import GaltonSpec

SIMS = [pytest.param(s, marks=pytest.mark.skipif(not sim_available(s), reason=f"{s} not installed"))
        for s in ("icarus", "verilator")]


def scenario(spec: GaltonSpec, balls: int) -> list[Segment]:
    n = spec.rows
    off = np.tril(np.random.default_rng(n).normal(0, 1.0, (n, n)))
    sticky = DomainWallBoard(n, offsets=off, stickiness=0.5)
    return [
        Segment(balls=balls, thresholds=DomainWallBoard(n).thresholds(0.5, spec.prob_bits)),
        Segment(balls=balls * 3 // 5, thresholds=sticky.thresholds(-0.4, spec.prob_bits), correlated=True,
                clear=True, writes=[(spec.threshold_addr(1, n - 1, n - 1), (1 << spec.data_bits) - 1)]),
        Segment(balls=balls, seed=0xBADC0DE, hist_only=True, clear=True),
        Segment(stop_after=balls * 3 // 10, reads=[]),
    ]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
def test_verilog_matches_twin(simulator):
    spec = GaltonSpec(rows=8, boards=2)
    balls = 10_000
    segments = scenario(spec, balls)
    result = run_galton(spec, segments, simulator, seed=11, idle_prob=0.3, stall_prob=0.3, timeout_s=300,
                        timeout_ns=100_000_000)
    rep = compare_with_twin(spec, segments, result, simulator)
    assert rep.mismatches == []
    assert rep.balls_generated >= 2 * balls + balls * 3 // 5 + balls * 3 // 10
    assert rep.balls_compared >= 2 * (balls + balls * 3 // 5 + balls * 3 // 10)
    # the RTL's own balls fit the exact distribution of the thresholds they ran with
    got = decode_balls(spec, result["segments"][0]["balls"]).ravel()
    pmf = threshold_distribution(segments[0].thresholds, spec.prob_bits, False)
    assert chi_square_test(np.bincount(got, minlength=spec.n_bins), pmf).p_value > 0.01


@pytest.mark.cocotb
@pytest.mark.skipif(not sim_available("icarus"), reason="icarus not installed")
def test_odd_widths_on_icarus():
    """k = 5 over 16-bit words (3 fields and a discarded bit per word), 3 boards, correlated out of reset."""
    spec = GaltonSpec(rows=5, boards=3, prob_bits=5, prng_width=16, seed=4321, correlated=True, bin_bits=9)
    segments = scenario(spec, 1000)
    result = run_galton(spec, segments, "icarus", seed=5, idle_prob=0.4, stall_prob=0.4, timeout_s=300)
    rep = compare_with_twin(spec, segments, result, "icarus")
    assert rep.mismatches == [] and rep.balls_compared >= 3 * 1900


@pytest.mark.cocotb
@pytest.mark.skipif(not sim_available("icarus"), reason="icarus not installed")
def test_rtl_check_bench_smoke(tmp_path):
    """bench/galton_rtl_check.py runs end to end with tiny settings and writes its JSON."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "galton_rtl_check.py"
    mod_spec = importlib.util.spec_from_file_location("epforge_bench_galton_rtl_check", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    assert mod.main(["--balls", "300", "--rows", "4", "--simulators", "icarus", "--json", str(out)]) == 0
    r = json.loads(out.read_text())["results"]["icarus"]
    assert r["mismatches"] == [] and r["balls_generated_per_board"] == 300 + 150 + 600 + 61
    assert len(r["chi_square"]) == 4
