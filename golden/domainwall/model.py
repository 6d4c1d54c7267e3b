"""Float model of the domain-wall Galton board (ALGORITHMS.md §5) and its exact output distributions.

Board geometry (as :mod:`spec.galton`): N rows; junction ``j`` of row ``i`` (``j ≤ i``) is reached
after ``j`` right turns; the output bin is the number of right turns (0 … N). Probabilities are
``[N, N]`` matrices ``p[i, j]`` = P(right) at junction ``(i, j)``; entries with ``j > i`` are never
reached and are ignored.

* Field: ``p(H) = 1/(1 + exp(−(H − H0)/w))`` — the external field tilts the board.
* Local lattice edits (peg spacing, Sanz-Hernández et al. 2021): a per-junction shift of the
  switching field, ``p[i, j] = p(H − offsets[i, j])``.
* Chirality memory: the probability at a junction depends on the previous turn. With stickiness
  ``s`` the turns form a Markov chain whose stationary P(right) is ``p``:
  ``P(R | previous R) = p + s·(1 − p)``, ``P(R | previous L) = p·(1 − s)`` (lag-1 correlation
  ``s``), clipped to [0, 1]; row 0 has no previous turn and uses ``p`` itself. ``s > 0`` widens the
  distribution beyond the binomial (over-dispersion), ``s < 0`` narrows it.

Exact distributions: :func:`binomial_pmf` (uniform p), :func:`poisson_binomial_pmf` (p per row),
and :func:`exact_distribution` — a dynamic programme over the position (and, with chirality
memory, the last turn) that is exact for any site-dependent ``p``; :func:`threshold_distribution`
applies it to the hardware's k-bit thresholds, i.e. the distribution the RTL/twin must produce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spec.galton import probability, quantize_probability


def logistic(H, H0: float = 0.0, w: float = 1.0) -> np.ndarray:
    """``p(H) = 1/(1 + exp(−(H − H0)/w))`` elementwise: :func:`spec.galton.probability` (the one
    definition, plain Python, so the float model and the quantiser see the same bits); 0.5
    exactly where ``H == H0``."""
    H = np.asarray(H, dtype=np.float64)
    return np.array([probability(float(h), H0, w) for h in H.ravel()], dtype=np.float64).reshape(H.shape)


def _check_p(name: str, p, rows: int | None = None) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"{name} must be a square [N rows, N junctions] matrix, not of shape {a.shape}")
    if rows is not None and a.shape[0] != rows:
        raise ValueError(f"{name} must have shape ({rows}, {rows}), not {a.shape}")
    used = np.tril(np.ones(a.shape, dtype=bool))
    bad = used & ~((a >= 0) & (a <= 1))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{name}[{i}, {j}] must be a probability in [0, 1], not {float(a[i, j])!r}")
    return a


def binomial_pmf(n: int, p: float) -> np.ndarray:
    """Binomial(n, p) pmf over 0 … n (exact float evaluation)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, not {n!r}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], not {p!r}")
    return np.array([math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)])


def poisson_binomial_pmf(ps) -> np.ndarray:
    """Number of successes of independent trials with probabilities ``ps`` (DP over the count)."""
    ps = np.asarray(ps, dtype=np.float64).ravel()
    if ((ps < 0) | (ps > 1) | ~np.isfinite(ps)).any():
        raise ValueError(f"ps must be probabilities in [0, 1], not {ps.tolist()!r}")
    pmf = np.zeros(len(ps) + 1)
    pmf[0] = 1.0
    for i, p in enumerate(ps):
        pmf[1:i + 2] = pmf[1:i + 2] * (1 - p) + pmf[:i + 1] * p
        pmf[0] *= 1 - p
    return pmf


def exact_distribution(p_left, p_right=None) -> np.ndarray:
    """Exact output distribution (N + 1 bins) of a board with site-dependent probabilities.

    ``p_left[i, j]``: P(right) at junction (i, j) — used by row 0 and, without chirality memory,
    by every row. ``p_right`` (optional, same shape): with chirality memory, rows ``i ≥ 1`` use
    ``p_left`` after a LEFT turn and ``p_right`` after a RIGHT turn. Dynamic programme over
    (position, last turn): O(N²).
    """
    pl = _check_p("p_left", p_left)
    n = pl.shape[0]
    if p_right is None:
        dist = np.zeros(n + 1)
        dist[0] = 1.0
        for i in range(n):
            pr = pl[i, :i + 1]
            new = np.zeros(n + 1)
            new[:i + 1] += dist[:i + 1] * (1 - pr)
            new[1:i + 2] += dist[:i + 1] * pr
            dist = new
        return dist
    prr = _check_p("p_right", p_right, n)
    # after_l[pos], after_r[pos]: probability of being at pos with the last turn L / R
    after_l, after_r = np.zeros(n + 1), np.zeros(n + 1)
    after_l[0] = 1.0  # row 0 uses the 'after-left' table
    for i in range(n):
        a, b = pl[i, :i + 1], prr[i, :i + 1]
        new_l, new_r = np.zeros(n + 1), np.zeros(n + 1)
        new_l[:i + 1] = after_l[:i + 1] * (1 - a) + after_r[:i + 1] * (1 - b)
        new_r[1:i + 2] = after_l[:i + 1] * a + after_r[:i + 1] * b
        after_l, after_r = new_l, new_r
    return after_l + after_r


def threshold_distribution(thresholds, prob_bits: int, correlated: bool) -> np.ndarray:
    """Exact distribution of the hardware board: thresholds ``[2, N, N]`` of ``prob_bits`` bits
    (P(right) = t / 2^k exactly), table 1 used only when ``correlated``."""
    t = np.asarray(thresholds)
    if t.ndim != 3 or t.shape[0] != 2:
        raise ValueError(f"thresholds must have shape (2, N, N), not {t.shape}")
    scale = float(1 << prob_bits)
    return exact_distribution(t[0] / scale, t[1] / scale if correlated else None)


def moments(pmf) -> tuple[float, float]:
    """Mean and variance of a distribution over 0 … len−1."""
    pmf = np.asarray(pmf, dtype=np.float64)
    k = np.arange(len(pmf))
    mean = float((k * pmf).sum())
    return mean, float(((k - mean) ** 2 * pmf).sum())


def sample_board(p_left, p_right, n: int, rng: np.random.Generator) -> np.ndarray:
    """Float sampler: ``n`` balls through the board (``p_right=None``: no chirality memory)."""
    pl = _check_p("p_left", p_left)
    pr = pl if p_right is None else _check_p("p_right", p_right, pl.shape[0])
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, not {n!r}")
    pos = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=bool)
    for i in range(pl.shape[0]):
        p = np.where(last, pr[i, pos], pl[i, pos])
        right = rng.random(n) < p
        pos += right
        last = right
    return pos


@dataclass(frozen=True)
class DomainWallBoard:
    """Physical parameters of a board: switching field ``H0``, window ``width``, per-junction
    field ``offsets`` (lattice edits, ``[N, N]``), chirality ``stickiness`` in (−1, 1)."""

    rows: int
    H0: float = 0.0
    width: float = 1.0
    offsets: np.ndarray | None = field(default=None, compare=False)
    stickiness: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.rows, bool) or not isinstance(self.rows, int) or self.rows < 1:
            raise ValueError(f"rows must be a positive integer, not {self.rows!r}")
        if not math.isfinite(self.H0):
            raise ValueError(f"H0 must be a finite number, not {self.H0!r}")
        if not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"width must be a positive finite number, not {self.width!r}")
        if not -1.0 < self.stickiness < 1.0:
            raise ValueError(f"stickiness must be in (-1, 1), not {self.stickiness!r}")
        if self.offsets is not None:
            off = np.asarray(self.offsets, dtype=np.float64)
            if off.shape != (self.rows, self.rows) or not np.isfinite(off).all():
                raise ValueError(f"offsets must be a finite ({self.rows}, {self.rows}) matrix, not of shape "
                                 f"{off.shape}")
            object.__setattr__(self, "offsets", off)

    @property
    def correlated(self) -> bool:
        return self.stickiness != 0.0

    def p(self, H: float) -> np.ndarray:
        """Unconditioned P(right) per junction at field ``H``, ``[N, N]``."""
        off = np.zeros((self.rows, self.rows)) if self.offsets is None else self.offsets
        return logistic(H - off, self.H0, self.width)

    def conditional(self, H: float) -> tuple[np.ndarray, np.ndarray]:
        """(after-left, after-right) probability tables; row 0 (no previous turn) uses ``p``."""
        p = self.p(H)
        s = self.stickiness
        pl = np.clip(p * (1 - s), 0.0, 1.0)
        pr = np.clip(p + s * (1 - p), 0.0, 1.0)
        pl[0], pr[0] = p[0], p[0]
        return pl, pr

    def exact(self, H: float) -> np.ndarray:
        pl, pr = self.conditional(H)
        return exact_distribution(pl, pr if self.correlated else None)

    def sample(self, H: float, n: int, rng: np.random.Generator) -> np.ndarray:
        pl, pr = self.conditional(H)
        return sample_board(pl, pr if self.correlated else None, n, rng)

    def thresholds(self, H: float, prob_bits: int) -> np.ndarray:
        """The hardware's thresholds ``[2, N, N]`` (int64) for field ``H``: every probability
        quantised with :func:`spec.galton.quantize_probability`; entries with j > i are 0."""
        pl, pr = self.conditional(H)
        out = np.zeros((2, self.rows, self.rows), dtype=np.int64)
        for c, tab in enumerate((pl, pr)):
            for i in range(self.rows):
                for j in range(i + 1):
                    out[c, i, j] = quantize_probability(float(tab[i, j]), prob_bits)
        return out
