"""Domain-wall Galton board, float side: exact distributions (binomial, Poisson-binomial, DP over
position and last turn) against independent references, the float sampler, and the chi-square
machinery (regularised incomplete gamma without scipy) against closed forms and tables."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from golden.domainwall import (
    DomainWallBoard,
    binomial_pmf,
    chi2_sf,
    chi_square_test,
    exact_distribution,
    gammaincc,
    logistic,
    moments,
    poisson_binomial_pmf,
    sample_board,
)
from spec.galton import probability


def brute_force(p_left, p_right=None) -> np.ndarray:
    """Enumerate all 2^N turn sequences (the definition, no DP)."""
    n = p_left.shape[0]
    dist = np.zeros(n + 1)
    for turns in itertools.product((0, 1), repeat=n):
        prob, pos, last = 1.0, 0, 0
        for i, right in enumerate(turns):
            table = p_right if (p_right is not None and i > 0 and last) else p_left
            p = table[i, pos]
            prob *= p if right else 1 - p
            pos += right
            last = right
        dist[pos] += prob
    return dist


def test_logistic_is_the_spec_probability():
    H = np.linspace(-30, 30, 61)
    assert np.array_equal(logistic(H, 1.5, 2.0), np.array([probability(float(h), 1.5, 2.0) for h in H]))
    assert logistic(1.5, 1.5, 2.0) == 0.5
    with pytest.raises(ValueError, match="w must be a positive finite number, not 0"):
        logistic(0.0, 0.0, 0)


@pytest.mark.parametrize("n,p", [(1, 0.3), (12, 0.5), (20, 0.83), (7, 0.0), (7, 1.0)])
def test_uniform_board_is_binomial(n, p):
    pmf = binomial_pmf(n, p)
    assert math.isclose(pmf.sum(), 1.0, rel_tol=1e-12)
    mean, var = moments(pmf)
    assert math.isclose(mean, n * p, abs_tol=1e-12) and math.isclose(var, n * p * (1 - p), abs_tol=1e-12)
    np.testing.assert_allclose(exact_distribution(np.full((n, n), p)), pmf, rtol=1e-12, atol=1e-300)


def test_row_dependent_board_is_poisson_binomial():
    rng = np.random.default_rng(3)
    ps = rng.random(9)
    p = np.repeat(ps[:, None], 9, axis=1)  # same p at every junction of a row
    np.testing.assert_allclose(exact_distribution(p), poisson_binomial_pmf(ps), rtol=1e-12, atol=1e-300)
    # Poisson-binomial by direct convolution
    conv = np.array([1.0])
    for q in ps:
        conv = np.convolve(conv, [1 - q, q])
    np.testing.assert_allclose(poisson_binomial_pmf(ps), conv, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("correlated", [False, True])
def test_site_dependent_dp_matches_enumeration(correlated):
    rng = np.random.default_rng(11)
    pl, pr = rng.random((7, 7)), rng.random((7, 7))
    got = exact_distribution(pl, pr if correlated else None)
    want = brute_force(pl, pr if correlated else None)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    assert math.isclose(got.sum(), 1.0, rel_tol=1e-12)


@pytest.mark.parametrize("s", [0.3, 0.7, -0.4])
def test_chirality_memory_gives_the_markov_chain_variance(s):
    """Row 0 uses p and the conditional tables keep P(right) = p stationary, so the number of right
    turns is a sum of a stationary two-state Markov chain with lag-1 correlation s:
    Var = N p q [(1+s)/(1−s) − 2 s (1 − s^N) / (N (1−s)²)]."""
    n, H = 12, 0.4
    board = DomainWallBoard(n, stickiness=s)
    p = probability(H)
    mean, var = moments(board.exact(H))
    want = n * p * (1 - p) * ((1 + s) / (1 - s) - 2 * s * (1 - s**n) / (n * (1 - s) ** 2))
    assert math.isclose(mean, n * p, rel_tol=1e-12)
    assert math.isclose(var, want, rel_tol=1e-10)
    assert (var > n * p * (1 - p)) == (s > 0)  # sticky chirality over-disperses, anti-sticky narrows


def test_board_model_edits_and_thresholds():
    off = np.zeros((6, 6))
    off[3, 1] = 2.0
    board = DomainWallBoard(6, H0=0.5, width=0.8, offsets=off)
    p = board.p(1.0)
    assert p[3, 1] == probability(1.0 - 2.0, 0.5, 0.8) and p[2, 2] == probability(1.0, 0.5, 0.8)
    t = board.thresholds(1.0, 8)
    assert t.shape == (2, 6, 6) and t[0, 3, 1] == round(256 * probability(-1.0, 0.5, 0.8))
    assert (np.triu(t[0], 1) == 0).all()
    assert board.thresholds(0.5, 6)[0, 0, 0] == 32  # p(H0) = 1/2 exactly


@pytest.mark.parametrize("kwargs,message", [
    (dict(rows=0), "rows must be a positive integer, not 0"),
    (dict(rows=3, width=0.0), "width must be a positive finite number, not 0.0"),
    (dict(rows=3, stickiness=1.0), r"stickiness must be in \(-1, 1\), not 1.0"),
    (dict(rows=3, offsets=np.zeros((2, 2))), r"offsets must be a finite \(3, 3\) matrix, not of shape \(2, 2\)"),
])
def test_board_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DomainWallBoard(**kwargs)


def test_probability_matrix_errors():
    with pytest.raises(ValueError, match=r"p_left must be a square \[N rows, N junctions\] matrix, not of shape"):
        exact_distribution(np.ones(3))
    bad = np.full((3, 3), 0.5)
    bad[2, 1] = 1.2
    with pytest.raises(ValueError, match=r"p_left\[2, 1\] must be a probability in \[0, 1\], not 1.2"):
        exact_distribution(bad)
    bad[2, 1], bad[0, 2] = 0.5, 7.0  # j > i is never reached: ignored
    assert math.isclose(exact_distribution(bad).sum(), 1.0)
    with pytest.raises(ValueError, match=r"p_right must have shape \(3, 3\), not \(2, 2\)"):
        exact_distribution(bad, np.full((2, 2), 0.5))


def test_float_sampler_fits_its_exact_distribution_and_rejects_a_wrong_one():
    off = np.random.default_rng(5).normal(0, 0.8, (10, 10))
    board = DomainWallBoard(10, H0=0.2, offsets=off, stickiness=0.5)
    bins = board.sample(0.6, 100_000, np.random.default_rng(9))
    counts = np.bincount(bins, minlength=11)
    assert chi_square_test(counts, board.exact(0.6)).p_value > 0.01
    no_memory = DomainWallBoard(10, H0=0.2, offsets=off)
    assert chi_square_test(counts, no_memory.exact(0.6)).p_value < 1e-9
    with pytest.raises(ValueError, match="n must be a non-negative integer, not -1"):
        sample_board(np.full((2, 2), 0.5), None, -1, np.random.default_rng(0))


# --- chi-square machinery ---------------------------------------------------------------------------
@pytest.mark.parametrize("x", [1e-6, 0.01, 0.3, 1.0, 2.5, 4.0, 9.0, 17.0, 40.0, 120.0])
def test_chi2_sf_closed_forms(x):
    assert math.isclose(chi2_sf(x, 1), math.erfc(math.sqrt(x / 2)), rel_tol=1e-11)
    assert math.isclose(chi2_sf(x, 2), math.exp(-x / 2), rel_tol=1e-11)
    want3 = math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    assert math.isclose(chi2_sf(x, 3), want3, rel_tol=1e-11)
    assert math.isclose(chi2_sf(x, 4), math.exp(-x / 2) * (1 + x / 2), rel_tol=1e-11)


@pytest.mark.parametrize("x,dof,p", [
    (3.841458820694124, 1, 0.05), (6.6348966010212145, 1, 0.01), (18.307038053275146, 10, 0.05),
    (37.56623478662507, 20, 0.01), (124.34211340400407, 100, 0.05), (67.32756330547916, 100, 0.995),
])
def test_chi2_sf_tabulated_quantiles(x, dof, p):
    assert math.isclose(chi2_sf(x, dof), p, rel_tol=1e-9)


@pytest.mark.parametrize("n", [1, 2, 5, 13, 30])
def test_gammaincc_integer_order_is_a_poisson_tail(n):
    for x in (0.1, 1.0, n - 0.5, n + 3.0, 4.0 * n + 10):
        want = math.exp(-x) * sum(x**j / math.factorial(j) for j in range(n))
        assert math.isclose(gammaincc(n, x), want, rel_tol=1e-11)


def test_chi2_edge_cases_and_errors():
    assert chi2_sf(0.0, 3) == 1.0 and gammaincc(2.0, 0.0) == 1.0 and gammaincc(2.0, math.inf) == 0.0
    assert math.isclose(chi2_sf(200.0, 2), math.exp(-100.0), rel_tol=1e-11)
    with pytest.raises(ValueError, match="dof must be a positive integer, not 0"):
        chi2_sf(1.0, 0)
    with pytest.raises(ValueError, match="a must be a positive finite number, not -1"):
        gammaincc(-1, 1.0)
    with pytest.raises(ValueError, match="x must be a non-negative number, not -2"):
        gammaincc(1.0, -2)


def test_chi_square_test_pools_thin_tails():
    probs = binomial_pmf(12, 0.5)
    counts = np.round(probs * 1000).astype(int)
    res = chi_square_test(counts, probs)
    total = counts.sum()
    for g in res.groups:
        assert sum(probs[i] for i in g) * total >= 5.0
    assert sorted(i for g in res.groups for i in g) == list(range(13))
    assert res.dof == len(res.groups) - 1 and res.p_value > 0.99
    # a hand-checked case: counts (10, 20, 30) against (0.2, 0.3, 0.5): stat = 0.8333…, dof 2
    r = chi_square_test([10, 20, 30], [0.2, 0.3, 0.5])
    assert math.isclose(r.statistic, (2**2 / 12 + 2**2 / 18 + 0 / 30), rel_tol=1e-12) and r.dof == 2
    assert math.isclose(r.p_value, math.exp(-r.statistic / 2), rel_tol=1e-12)
    # an outcome the distribution forbids is an infinite statistic
    assert chi_square_test([50, 50, 1], [0.5, 0.5, 0.0]).p_value == 0.0
    with pytest.raises(ValueError, match="counts and probs must have the same length, not 2 and 3"):
        chi_square_test([1, 2], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="probs must be a probability distribution"):
        chi_square_test([1, 2], [0.2, 0.3])
    with pytest.raises(ValueError, match="needs at least two bins expecting >= 5.0 counts"):
        chi_square_test([3, 1], [0.5, 0.5])
