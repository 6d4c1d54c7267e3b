"""GaltonTwin: bit-exact against a one-ball-at-a-time reference written from spec.galton's definition,
and statistically right: chi-square acceptance (fixed seeds, ≥ 1e5 balls) against the exact
distribution of its thresholds for several fields, a site-edited and a correlated board; rejection
of deliberately wrong distributions; mean/variance; over-dispersion with sticky chirality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from golden.domainwall import (
    DomainWallBoard,
    GaltonTwin,
    binomial_pmf,
    check_thresholds,
    chi_square_test,
    default_thresholds,
    moments,
    threshold_distribution,
)
from golden.prng import XorshiftBank
from spec.galton import REG_STATUS, GaltonSpec
from spec.prng import scramble, step

BALLS = 50_000  # per board; two boards → 1e5 balls per statistical check


def reference_balls(spec: GaltonSpec, thresholds, seed: int, n: int, correlated: bool) -> np.ndarray:
    """Ball by ball, straight from the spec's words: step every lane (spec.prng.step), ball n uses
    the (n+1)-th output words (spec.prng.scramble of the states), row i of board b takes the k-bit
    field ``spec.random_field(b, i)``."""
    states = spec.prng_spec(seed).lane_states()
    k, mask = spec.prob_bits, (1 << spec.prob_bits) - 1
    out = []
    for _ in range(n):
        states = [step(x, spec.prng_width) for x in states]
        row = []
        for b in range(spec.boards):
            pos = last = 0
            for i in range(spec.rows):
                lane, off = spec.random_field(b, i)
                r = (scramble(states[lane], spec.prng_width) >> off) & mask
                table = last if (correlated and i > 0) else 0
                right = int(r < thresholds[table][i][pos])
                pos += right
                last = right
            row.append(pos)
        out.append(row)
    assert k == spec.prob_bits
    return np.array(out, dtype=np.int64).reshape(n, spec.boards)


def random_thresholds(spec: GaltonSpec, rng) -> np.ndarray:
    t = rng.integers(0, spec.threshold_max + 1, size=(2, spec.rows, spec.rows))
    t[:, 0, 0] = [0, spec.threshold_max]  # include both extremes
    return check_thresholds(spec, t)


SPECS = {
    "8x2-k8-w32": GaltonSpec(rows=8, boards=2),
    "5x3-k5-w16": GaltonSpec(rows=5, boards=3, prob_bits=5, prng_width=16, seed=999),
    "3x1-k16-w64": GaltonSpec(rows=3, boards=1, prob_bits=16, prng_width=64, seed=0xFFFFFFFF),
    "1x2-k1-w32": GaltonSpec(rows=1, boards=2, prob_bits=1),
    "13x1-k3-w32": GaltonSpec(rows=13, boards=1, prob_bits=3, seed=5),  # 10 fields per word, 2 lanes
}


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("correlated", [False, True])
def test_twin_equals_reference(name, correlated):
    spec = SPECS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    thr = random_thresholds(spec, rng)
    twin = GaltonTwin(spec, thr, correlated=correlated)
    n = 600
    want = reference_balls(spec, thr, spec.seed, n, correlated)
    got = np.concatenate([twin.balls(100), twin.balls(500)])  # the stream continues across calls
    assert np.array_equal(got, want)
    assert twin.done == n
    for b in range(spec.boards):
        assert np.array_equal(twin.hist[b], np.bincount(want[:, b], minlength=spec.n_bins))


@pytest.mark.parametrize("w", [16, 32, 64])
def test_chunked_prng_words_equal_stepping(w):
    spec = GaltonSpec(rows=9, boards=2, prob_bits=7, prng_width=w, seed=77)
    twin = GaltonTwin(spec)
    got = np.concatenate([twin.words(1700), twin.words(3), twin.words(2600)])
    want = XorshiftBank(spec.prng_spec()).stream(4303)
    assert np.array_equal(got, want)


def test_reseed_restarts_the_stream_and_extremes_are_deterministic():
    spec = GaltonSpec(rows=6, boards=2)
    twin = GaltonTwin(spec)
    first = twin.balls(300)
    twin.reseed(spec.seed)
    assert np.array_equal(twin.balls(300), first)
    twin.reseed(1234)
    assert np.array_equal(twin.balls(300), reference_balls(spec, twin.thresholds, 1234, 300, False))
    thr = np.zeros((2, 6, 6), dtype=np.int64)
    twin.set_thresholds(thr)
    assert (twin.balls(200) == 0).all()  # t = 0: never right
    twin.set_thresholds(check_thresholds(spec, np.full((2, 6, 6), spec.threshold_max)))
    assert (twin.balls(200) == 6).all()  # t = 2^k: always right
    with pytest.raises(ValueError, match=r"seed must be an integer in 0..4294967295 \(the seed register\)"):
        twin.reseed(1 << 32)


def test_saturating_counters():
    spec = GaltonSpec(rows=2, boards=1, bin_bits=3, count_bits=4)
    twin = GaltonTwin(spec)
    bins = twin.balls(40)
    full = np.bincount(bins[:, 0], minlength=3)
    assert np.array_equal(twin.hist[0], np.minimum(full, 7)) and full.max() > 7
    assert twin.done == 15
    twin.clear()
    assert twin.done == 0 and not twin.hist.any()


def test_memory_port_semantics():
    spec = GaltonSpec(rows=4, boards=2, prob_bits=6)
    twin = GaltonTwin(spec)
    assert np.array_equal(twin.thresholds, default_thresholds(spec))
    a = spec.threshold_addr(1, 3, 2)
    twin.write(a, 50)
    assert twin.read(a) == 50 and twin.thresholds[1, 3, 2] == 50
    assert twin.write(a, 100) == f"threshold 100 at address {a} above 2^prob_bits = 64"  # refused, not clamped
    assert twin.read(a) == 50 and twin.write_refused
    assert twin.write_reg(REG_STATUS, 0) is None and not twin.write_refused  # a STATUS write clears the flag
    unused = spec.threshold_addr(0, 1, 0) | 3  # row 1, junction 3 > row
    twin.write(unused, 5)
    assert twin.read(unused) == 0
    twin.write(spec.hist_addr(1, 2), 9)  # the histogram is read-only
    assert twin.read(spec.hist_addr(1, 2)) == 0
    twin.balls(100)
    assert [twin.read(spec.hist_addr(1, n)) for n in range(5)] == twin.hist[1].tolist()
    assert twin.read(spec.hist_base | (3 << spec.bin_index_bits)) == 0  # board 3 does not exist
    with pytest.raises(ValueError, match="addr/data must fit"):
        twin.write(1 << spec.addr_bits, 0)


def test_threshold_validation():
    spec = GaltonSpec(rows=3)
    with pytest.raises(ValueError, match=r"must have shape \(2, 3, 3\) \(table, row, junction\), not \(3, 3\)"):
        check_thresholds(spec, np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match="thresholds must be integers"):
        check_thresholds(spec, np.zeros((2, 3, 3)))
    t = np.zeros((2, 3, 3), dtype=int)
    t[1, 2, 1] = 257
    with pytest.raises(ValueError, match=r"thresholds\[1, 2, 1\] must be in 0..256 \(2\^prob_bits\), not 257"):
        check_thresholds(spec, t)
    t[1, 2, 1], t[0, 0, 2] = 0, 999  # j > i: ignored and zeroed
    assert check_thresholds(spec, t)[0, 0, 2] == 0
    with pytest.raises(TypeError, match="spec must be a GaltonSpec, not dict"):
        GaltonTwin({})


# --- statistics ---------------------------------------------------------------------------------------
STAT_SPEC = GaltonSpec(rows=12, boards=2, prob_bits=8, prng_width=32, seed=2024)


def _run(board: DomainWallBoard, H: float, seed: int):
    thr = board.thresholds(H, STAT_SPEC.prob_bits)
    twin = GaltonTwin(STAT_SPEC, thr, seed=seed, correlated=board.correlated)
    bins = twin.balls(BALLS)
    assert np.array_equal(twin.hist.sum(axis=0), np.bincount(bins.ravel(), minlength=STAT_SPEC.n_bins))
    return bins.ravel(), threshold_distribution(thr, STAT_SPEC.prob_bits, board.correlated), thr


def _check_moments(bins: np.ndarray, pmf: np.ndarray) -> None:
    n = len(bins)
    mean, var = moments(pmf)
    k = np.arange(len(pmf))
    mu4 = float(((k - mean) ** 4 * pmf).sum())
    assert abs(bins.mean() - mean) < 4 * math.sqrt(var / n)
    assert abs(bins.var(ddof=1) - var) < 4 * math.sqrt((mu4 - var**2) / n)


@pytest.mark.parametrize("H", [-1.5, 0.0, 0.8, 2.5])
def test_chi_square_accepts_field_tuned_boards(H):
    board = DomainWallBoard(12, H0=0.0, width=1.0)
    bins, pmf, _ = _run(board, H, seed=100 + int(10 * H))
    assert len(bins) == 2 * BALLS
    res = chi_square_test(np.bincount(bins, minlength=13), pmf)
    assert res.p_value > 0.01, res
    assert res.dof >= 5
    _check_moments(bins, pmf)


def test_chi_square_accepts_a_site_edited_board():
    off = np.zeros((12, 12))
    off[4, 2], off[7, 3], off[9, 5] = 3.0, -2.5, 1.5  # three modified junctions
    off += np.tril(np.random.default_rng(1).normal(0, 0.3, (12, 12)))  # and lattice disorder
    board = DomainWallBoard(12, H0=0.2, width=0.7, offsets=off)
    bins, pmf, _ = _run(board, 0.4, seed=7)
    counts = np.bincount(bins, minlength=13)
    assert chi_square_test(counts, pmf).p_value > 0.01
    _check_moments(bins, pmf)
    # the edits matter: the unedited board's distribution is rejected
    plain = DomainWallBoard(12, H0=0.2, width=0.7)
    assert chi_square_test(counts, threshold_distribution(plain.thresholds(0.4, 8), 8, False)).p_value < 1e-6


def test_chi_square_rejects_a_one_lsb_shift():
    """Counts from thresholds t are tested against thresholds t + 1 (p off by 1/256 at every
    junction): the test must reject, while it accepts the right distribution."""
    board = DomainWallBoard(12)
    bins, pmf, thr = _run(board, 0.8, seed=31)
    counts = np.bincount(bins, minlength=13)
    assert chi_square_test(counts, pmf).p_value > 0.01
    shifted = threshold_distribution(np.minimum(thr + 1, 256) * np.tril(np.ones((12, 12), dtype=np.int64)), 8, False)
    assert chi_square_test(counts, shifted).p_value < 1e-4
    far = threshold_distribution(board.thresholds(1.3, 8), 8, False)  # a visibly shifted bell
    assert chi_square_test(counts, far).p_value < 1e-100


def test_half_field_is_exactly_binomial_half():
    board = DomainWallBoard(12, H0=0.7, width=0.3)
    thr = board.thresholds(0.7, 8)
    assert (thr[:, np.tril_indices(12)[0], np.tril_indices(12)[1]] == 128).all()
    pmf = threshold_distribution(thr, 8, False)
    assert np.array_equal(pmf, binomial_pmf(12, 0.5))  # exact: multiples of 2^-12
    bins, _, _ = _run(board, 0.7, seed=3)
    assert chi_square_test(np.bincount(bins, minlength=13), pmf).p_value > 0.01


def test_mean_is_monotone_in_the_field():
    board = DomainWallBoard(12, H0=0.0, width=1.0)
    means = [moments(threshold_distribution(board.thresholds(H, 8), 8, False))[0] for H in np.linspace(-4, 4, 41)]
    assert all(a <= b for a, b in zip(means, means[1:], strict=False)) and means[0] < 1 and means[-1] > 11
    assert means[20] == 6.0


def test_sticky_chirality_over_disperses():
    sticky = DomainWallBoard(12, stickiness=0.6)
    bins, pmf, thr = _run(sticky, 0.0, seed=55)
    counts = np.bincount(bins, minlength=13)
    assert chi_square_test(counts, pmf).p_value > 0.01
    _check_moments(bins, pmf)
    binom_var = 12 * 0.25
    mean, var = moments(pmf)
    assert mean == 6.0 and var > 2.5 * binom_var
    # the sample variance exceeds the binomial one by far more than its standard error
    assert bins.var(ddof=1) > binom_var + 50 * math.sqrt(2 * binom_var**2 / len(bins))
    # with the switch off only table 0 ("after left") is used, for every row
    twin = GaltonTwin(STAT_SPEC, thr, seed=55, correlated=False)
    off_bins = twin.balls(BALLS).ravel()
    assert chi_square_test(np.bincount(off_bins, minlength=13),
                           threshold_distribution(thr, 8, False)).p_value > 0.01
    assert chi_square_test(counts, threshold_distribution(thr, 8, False)).p_value < 1e-100
