"""Random sources as the hardware consumes them: the fast extractors (golden.randomness) == the twins,
the statistics helpers (chi-square law, KS, dispersion test) and the Galton board's limits.

The dispersion test must pass for independent balls and fail for a generator past its period or a
correlated stream (so it can fail). dieharder itself is a bench (bench/randomness.py), not a test.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden import randomness as R
from golden.domainwall import GaltonTwin
from golden.domainwall.model import binomial_pmf
from golden.domainwall.stats import chi2_cdf, chi2_sf, dispersion_test, kolmogorov_sf, ks_test
from golden.domainwall.twin import default_thresholds
from spec.galton import GaltonSpec

REPO = Path(__file__).resolve().parents[1]


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")


def _values(data: bytes, width: int, n: int) -> np.ndarray:
    """The first n fields of ``width`` bits of an LSB-first bit stream."""
    b = _bits(data)[: n * width].reshape(n, width).astype(np.uint64)
    return (b << np.arange(width, dtype=np.uint64)).sum(axis=1)


def _prefix(gen, nbytes: int) -> bytes:
    out = b""
    while len(out) < nbytes:
        out += next(gen)
    return out[:nbytes]


# --- statistics helpers -------------------------------------------------------------------------------
def test_chi2_cdf_known_values():
    for x in (0.01, 0.5, 2.0, 7.5, 40.0):  # dof 2: 1 − exp(−x/2); dof 1: erf(sqrt(x/2))
        assert chi2_cdf(x, 2) == pytest.approx(1 - math.exp(-x / 2), rel=1e-12, abs=1e-15)
        assert chi2_cdf(x, 1) == pytest.approx(math.erf(math.sqrt(x / 2)), rel=1e-12, abs=1e-15)
        assert chi2_cdf(x, 4) + chi2_sf(x, 4) == pytest.approx(1.0, abs=1e-14)
    # tabulated quantiles (Abramowitz & Stegun 26.4): the 5 % and 95 % points
    assert chi2_cdf(1.145476, 5) == pytest.approx(0.05, abs=1e-6)
    assert chi2_cdf(11.070498, 5) == pytest.approx(0.95, abs=1e-6)
    assert chi2_cdf(23.684791, 14) == pytest.approx(0.95, abs=1e-6)
    # tiny lower tail stays accurate (a too-good fit's p-value): P(chi2_5 <= 0.01) ≈ (0.005^2.5)/Γ(3.5)
    assert chi2_cdf(0.01, 5) == pytest.approx(0.005 ** 2.5 / math.gamma(3.5) * math.exp(-0.005), rel=1e-2)
    assert chi2_cdf(0.0, 3) == 0.0
    with pytest.raises(ValueError, match="dof must be a positive integer"):
        chi2_cdf(1.0, 0)


def test_kolmogorov_and_ks():
    assert kolmogorov_sf(1.3581) == pytest.approx(0.05, abs=2e-4)  # the 5 % critical value
    assert kolmogorov_sf(1.6276) == pytest.approx(0.01, abs=1e-4)
    assert kolmogorov_sf(0.1) == 1.0
    rng = np.random.default_rng(7)
    good = ks_test(rng.random(2000), lambda v: min(max(v, 0.0), 1.0))
    bad = ks_test(rng.random(2000) ** 1.2, lambda v: min(max(v, 0.0), 1.0))
    assert good.p_value > 1e-3 and bad.p_value < 1e-6
    with pytest.raises(ValueError, match="samples"):
        ks_test([], lambda v: v)


def test_dispersion_test_on_a_known_sampler():
    """Multinomial histograms pass; duplicated balls (each drawn twice: correlated) and pooled
    without-replacement draws (a finite population, the w = 16 failure) fail."""
    rng = np.random.default_rng(1)
    p = binomial_pmf(8, 0.5)
    good = dispersion_test(rng.multinomial(4000, p, size=300), p)
    assert good.dof == 8 and good.ks.p_value > 1e-3
    doubled = dispersion_test(2 * rng.multinomial(2000, p, size=300), p)  # every ball counted twice
    assert doubled.mean_statistic > 1.6 * doubled.dof and doubled.ks.p_value < 1e-10
    population = np.repeat(np.arange(9), np.round(p * 5000).astype(int))
    nowr = np.array([np.bincount(rng.permutation(population)[:4000], minlength=9) for _ in range(300)])
    fit = dispersion_test(nowr, p)  # 80 % of a finite population: chi-square ~0.2·dof
    assert fit.mean_statistic < 0.4 * fit.dof and fit.ks.p_value < 1e-10
    with pytest.raises(ValueError, match="different degrees of freedom"):
        dispersion_test(np.array([[50, 50, 0], [8, 8, 4]]), [0.45, 0.45, 0.1])


# --- the Galton board ---------------------------------------------------------------------------------
def _twin_histograms(spec: GaltonSpec, balls: int, count: int) -> np.ndarray:
    """``count`` consecutive windows of ``balls`` balls of the symmetric board (all boards)."""
    twin = GaltonTwin(spec)
    out = []
    for _ in range(count):
        twin.clear()
        twin.balls(balls)
        out.append(twin.hist.sum(axis=0))
    return np.array(out)


def test_dispersion_passes_for_the_default_width():
    """Twin histograms (disjoint windows of one stream) of the default width follow the chi-square law."""
    good = GaltonSpec(rows=8, boards=2, prob_bits=8)  # default w = 64
    assert good.prng_width == 64
    good.check_balls(1500 * 150)
    res = dispersion_test(_twin_histograms(good, 1500, 150), binomial_pmf(8, 0.5))
    assert res.ks.p_value > 1e-3, res.as_dict()


def test_dispersion_fails_past_the_period_of_w16():
    """w = 16 (period 65535 balls): windows of 60000 balls are 92 % of the period, so every window's
    histogram is nearly the whole period's and the statistics barely vary (chi2(8) has standard
    deviation 4): the KS test fails. (Raw xorshift lanes made the period's histogram exactly binomial,
    so the statistics were also far too small — the issue's finding; scrambled lanes make it a fixed
    random-looking histogram, so they concentrate near one value instead.) The same windows at w = 64
    pass. (Histograms from the fast extractor, == the twin: tests below.)"""
    p = binomial_pmf(8, 0.5)
    bad = GaltonSpec(rows=8, prob_bits=8, prng_width=16, seed=7)
    res = dispersion_test(R.galton_histograms(bad, 60_000, 60), p)
    assert np.std(res.statistics) < 0.5 * np.sqrt(2 * res.dof) and res.ks.p_value < 1e-6, res.as_dict()
    with pytest.raises(ValueError, match="period 2\\^16-1 = 65535"):
        bad.check_balls(60_000)
    good = GaltonSpec(rows=8, prob_bits=8, seed=7)
    res = dispersion_test(R.galton_histograms(good, 60_000, 60), p)
    assert res.ks.p_value > 1e-3, res.as_dict()


def test_galton_histograms_equal_the_twin():
    spec = GaltonSpec(rows=6, boards=2, prob_bits=5, prng_width=32, seed=11)
    got = R.galton_histograms(spec, 300, 4, board=1)
    twin = GaltonTwin(spec)
    for h in got:
        twin.clear()
        twin.balls(300)
        assert np.array_equal(h, twin.hist[1])


def test_limits_and_the_refusal_message():
    s16 = GaltonSpec(prng_width=16)
    assert s16.ball_period == 65535 and s16.lanes == 8 and s16.prng_jump == 4096
    assert s16.independent_balls == 64
    s16.check_balls(64)
    with pytest.raises(ValueError) as e:
        s16.check_balls(60_000)
    msg = str(e.value)
    for part in ("prng_width=16", "period 2^16-1 = 65535 balls", "8 lanes", "prng_jump=4096",
                 "128 bits (1 board × 16 rows × 8 bits)", "at most 64 balls per board", "use prng_width=64"):
        assert part in msg, (part, msg)
    assert "repeat the stream" in s16.randomness_limit_message(70_000)
    s32 = GaltonSpec(prng_width=32)
    assert s32.independent_balls == 1 << 22
    assert "cover 0.098 % of the period" in s32.randomness_limit_message((1 << 22) + 1)
    GaltonSpec().check_balls(1 << 40)  # the default (w = 64): 2^54 balls
    assert GaltonSpec().independent_balls == 1 << 54
    with pytest.raises(ValueError, match="balls must be a non-negative integer"):
        s16.check_balls(-1)


def test_histogram_cli_refuses_a_run_past_the_limit(tmp_path):
    out = tmp_path / "h"
    r = subprocess.run([sys.executable, "-m", "golden.domainwall", "histogram", "--set", "prng_width=16",
                        "--balls", "60000", "--fields", "0", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--balls 60000 × 1 fields: prng_width=16" in r.stderr and "use prng_width=64" in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("spec", [GaltonSpec(), GaltonSpec(prng_width=16, seed=9),
                                  GaltonSpec(rows=5, boards=3, prob_bits=5, prng_width=16, seed=999),
                                  GaltonSpec(rows=7, boards=2, prob_bits=3, prng_width=32, seed=5)],
                         ids=["default", "w16", "5x3-k5-w16", "7x2-k3-w32"])
def test_galton_extractor_equals_the_twin(spec):
    n = 700
    twin = GaltonTwin(spec)
    words = twin.words(n)
    # fields: the spec's (lane, offset) of every (board, row), from the twin's words
    want = np.array([[[(int(words[t, lane]) >> off) & ((1 << spec.prob_bits) - 1)
                       for lane, off in (spec.random_field(b, i) for i in range(spec.rows))]
                      for b in range(spec.boards)] for t in range(n)], np.uint64)
    per_ball = spec.boards * spec.rows * spec.prob_bits
    data = _prefix(R.galton_stream(spec, what="fields", chunks=4, steps=64), n * per_ball // 8)
    got = _values(data, spec.prob_bits, n * per_ball // 8 * 8 // spec.prob_bits)
    assert np.array_equal(got, want.reshape(-1)[: len(got)])
    # decisions: the twin's balls on the symmetric board are the number of RIGHT decisions per board
    bins = GaltonTwin(spec, default_thresholds(spec)).balls(n)
    dec = _bits(_prefix(R.galton_stream(spec, what="decisions", chunks=4, steps=64), n * spec.boards * spec.rows // 8))
    m = len(dec) // (spec.boards * spec.rows)
    assert np.array_equal(dec[: m * spec.boards * spec.rows].reshape(m, spec.boards, spec.rows).sum(axis=2), bins[:m])


def test_orbit_skip_and_jump_equal_stepping():
    spec = GaltonSpec(rows=5, boards=2, prob_bits=5, prng_width=32, seed=3)
    o1, o2 = R.galton_orbit(spec, chunks=2, steps=8), R.galton_orbit(spec, chunks=2, steps=8)
    first = np.concatenate([o1.block() for _ in range(4)])
    o2.skip(16)
    assert np.array_equal(o2.block(), first[16:32])
    raw = R.Orbit(32, spec.prng_spec().lane_states(), chunks=2, steps=8, output="raw")  # the states
    states = np.concatenate([raw.block() for _ in range(4)])
    assert np.array_equal(R.jump(states[:1], 32, 10), states[10:11])  # jumps act on states
    assert np.array_equal(R.scramble_words(states, 32), first)  # the outputs are their scrambled words


# --- the EP core --------------------------------------------------------------------------------------
EP_FMT = dict(weight_bits=(16,), weight_frac=(12,), bias_bits=20, bias_frac=(12,))


@pytest.mark.parametrize("kw", [dict(layers=(13, 6, 4), lanes=4, update_rounding="stochastic", estimator="random-sign"),
                                dict(layers=(13, 6, 5, 3), lanes=3, update_rounding="stochastic", seed=0xC0FFEE),
                                dict(layers=(9, 5, 3), lanes=2, estimator="random-sign")],
                         ids=["stochastic-random-sign", "stochastic-3layer", "random-sign-floor"])
def test_ep_extractor_equals_the_twin(kw):
    from golden.ep_core.twin import EPCoreTwin, Registers, random_weights
    from spec.ep_core import EPCoreSpec

    spec = EPCoreSpec(training=True, **EP_FMT, **kw)
    twin = EPCoreTwin(spec, random_weights(spec, np.random.default_rng(0)))
    regs = Registers.from_spec(spec, train=True)
    d = R.ep_draws(spec)
    samples = 3
    signs, rounding = [], []
    for _ in range(samples):  # the twin's draws of a training sample, in the core's order
        if regs.random_sign and not regs.symmetric:
            signs.append(int(twin.prng.take(1)[0, spec.sign_lane]) >> 31)
        if spec.update_rounding == "stochastic":
            rnd = twin._update_random_bits()
            for name, _ in spec.update_draws():
                l = int(name[1:])
                k = (spec.update_shift(l, regs.lr_shift, regs.beta_shift, regs.symmetric) if name[0] == "w"
                     else spec.bias_update_shift(l, regs.lr_shift, regs.beta_shift, regs.symmetric))
                rounding += [(int(v) & ((1 << k) - 1), k) for v in rnd[name].ravel()]
    assert d.sign == len(signs) // samples
    if rounding:
        nbits = sum(k for _, k in rounding)
        bits = _bits(_prefix(R.ep_stream(spec, "rounding", chunks=4, steps=16), nbits // 8))
        want = np.concatenate([(v >> np.arange(k)) & 1 for v, k in rounding]).astype(np.uint8)
        assert np.array_equal(bits, want[: len(bits)])
    if signs:
        got = _bits(_prefix(R.ep_stream(spec, "sign", chunks=4, steps=16), 1))[:samples]
        assert got.tolist() == signs


# --- the ternary fault injector -----------------------------------------------------------------------
def test_ternary_extractor_equals_the_twin():
    from golden.ternary.memory import TernaryMemoryTwin
    from spec.ternary import PCSA_BIT, SIGN_BIT, TernaryMemorySpec

    spec = TernaryMemorySpec(depth=16, lanes=5, fault_injection=True, mode="dynamic", seed=77)
    mem = TernaryMemoryTwin(spec)
    n = 40
    words = mem.prng.take(n)  # the words draws 0..n-1 give the lanes (spec.ternary)
    r = words & np.uint64(0xFFFFFF)
    want = r | (((words >> np.uint64(PCSA_BIT)) & np.uint64(1)) << np.uint64(24)) \
        | (((words >> np.uint64(SIGN_BIT)) & np.uint64(1)) << np.uint64(25))
    data = _prefix(R.ternary_stream(spec, chunks=4, steps=16), n * spec.lanes * R.TERNARY_BITS // 8)
    got = _values(data, R.TERNARY_BITS, n * spec.lanes)
    assert np.array_equal(got, want.reshape(-1))


def test_pack_bits():
    v = np.array([1, 2, 3, 0xFF], np.uint64)
    data, carry = R.pack_bits(v, 8)
    assert data == bytes([1, 2, 3, 0xFF]) and carry.size == 0
    assert R.pack_bits(v, 2)[0] == bytes([0b11_11_10_01])
    assert R.pack_bits(v, np.array([4, 0, 4, 0]))[0] == bytes([0x31])
    assert R.pack_bits(np.array([0x1234], np.uint64), 16)[0] == bytes([0x34, 0x12])
    # a partial byte is carried into the next call, not dropped
    data, carry = R.pack_bits(np.array([0b101], np.uint64), 3)
    assert data == b"" and carry.tolist() == [1, 0, 1]
    data, carry = R.pack_bits(np.array([0b11111], np.uint64), 5, carry)
    assert data == bytes([0b11111101]) and carry.size == 0


# --- bench/randomness.py (dieharder itself is not run here) ----------------------------------------------
def _bench(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(REPO / "bench" / "randomness.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_bench_commands(tmp_path):
    for cmd in ([], ["limits"], ["stream"], ["dieharder"], ["summary"], ["dispersion"]):
        r = _bench(*cmd, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout, (cmd, r.stderr)
    r = _bench("limits", "--all")
    assert r.returncode == 0 and "galton: prng_width 64" in r.stdout and "ternary:" in r.stdout, r.stderr
    out = tmp_path / "g.bin"
    r = _bench("stream", "--source", "galton", "--set", "rows=5", "--bytes", "1000", "--out", str(out))
    assert r.returncode == 0 and out.stat().st_size == 1000, r.stderr
    spec = GaltonSpec(rows=5)
    want = _prefix(R.galton_stream(spec, what="fields"), 1000)
    assert out.read_bytes() == want
    r = _bench("stream", "--source", "galton", "--bytes", "10", "--out", str(out))  # never overwrites
    assert r.returncode == 2 and str(out) in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert out.read_bytes() == want
    r = _bench("dispersion", "--set", "rows=4", "--balls", "500", "--histograms", "30",
               "--json", str(tmp_path / "d.json"))
    assert r.returncode == 0 and "KS D =" in r.stdout, r.stderr
    log = tmp_path / "dh.log"
    log.write_text("   diehard_birthdays|   0|       100|     100|0.99538195|   WEAK   \n"
                   "      diehard_operm5|   0|   1000000|     100|0.96909663|  PASSED  \n"
                   "  diehard_rank_32x32|   0|     40000|     100|0.00000000|  FAILED  \n")
    r = _bench("summary", str(log))
    assert r.returncode == 0 and "PASSED 1, WEAK 1, FAILED 1 (3 p-values)" in r.stdout, r.stderr


@pytest.mark.parametrize("args,message", [
    (["stream", "--bytes", "0", "--out", "x"], "--bytes must be a positive integer, not 0"),
    (["stream", "--set", "prng_width=24", "--bytes", "8", "--out", "x"], "prng_width must be one of [16, 32, 64]"),
    (["limits", "--seed", "-1"], "--seed must be in 0..2^32-1, not -1"),
    (["dispersion", "--balls", "0"], "--balls must be a positive integer, not 0"),
    (["limits", "--source", "ep-rounding", "--set", "update_rounding=\"floor\""], "has no PRNG"),
    (["summary", "no/such.log"], "no/such.log"),
])
def test_bench_bad_inputs(args, message, tmp_path):
    r = _bench(*args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("width", [1, 3, 5, 12, 26, 31])
def test_pack_bits_groups_equal_the_bit_path(width):
    v = np.random.default_rng(width).integers(0, 1 << 40, 64, dtype=np.uint64)  # high bits are ignored
    data, carry = R.pack_bits(v, width)
    want = np.concatenate([(int(x) >> np.arange(width)) & 1 for x in v]).astype(np.uint8)
    assert carry.size == 0 and np.array_equal(_bits(data), want)

