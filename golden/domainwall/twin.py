"""Bit-exact integer twin of the Galton-board emulator (:class:`hdl.galton.GaltonBoard`).

Given a :class:`spec.galton.GaltonSpec`, the thresholds and the seed, :class:`GaltonTwin` produces
the exact ball stream (bin index per ball per board), histograms and counters the RTL produces,
following :mod:`spec.galton`'s definition of which PRNG bit decides which turn. The PRNG words (the
lanes' scrambled output words) come from :class:`golden.prng.XorshiftBank`; long streams are
generated in parallel chunks (chunk starts found with the GF(2) jump matrix of :mod:`spec.prng`),
identical to stepping one by one.
"""

from __future__ import annotations

import functools

import numpy as np

from golden.prng import XorshiftBank, output_words
from spec.galton import (
    CMD_CLEAR,
    CTRL_CORRELATED,
    CTRL_HIST_ONLY,
    REG_BALLS,
    REG_BITS,
    REG_CMD,
    REG_CTRL,
    REG_SEED,
    REG_STATUS,
    GaltonSpec,
)
from spec.prng import PRNGSpec, jump_matrix

_CHUNK = 512  # steps per parallel chunk of PRNG words
_BLOCK = 1 << 16  # balls per block (bounds the memory of one call)


@functools.lru_cache(maxsize=64)
def _lane_states(prng: PRNGSpec) -> tuple[int, ...]:
    return tuple(prng.lane_states())


@functools.lru_cache(maxsize=8)
def _jump_columns(width: int, distance: int) -> np.ndarray:
    return np.array(jump_matrix(width, distance), dtype=np.uint64)


def _gf2_apply(columns: np.ndarray, x: np.ndarray) -> np.ndarray:
    """M·x over GF(2) for every element of ``x`` (M by its columns)."""
    out = np.zeros_like(x)
    one = np.uint64(1)
    for j, col in enumerate(columns):
        out ^= np.where((x >> np.uint64(j)) & one, col, np.uint64(0))
    return out


def default_thresholds(spec: GaltonSpec) -> np.ndarray:
    """Reset contents of the threshold tables: 2^(k−1) (p = ½) at every junction; 0 where j > i."""
    t = np.zeros((2, spec.rows, spec.rows), dtype=np.int64)
    t[:, np.tril_indices(spec.rows)[0], np.tril_indices(spec.rows)[1]] = 1 << (spec.prob_bits - 1)
    return t


def check_thresholds(spec: GaltonSpec, thresholds) -> np.ndarray:
    """Validate a ``[2, N, N]`` table of thresholds (0 … 2^k where j ≤ i); returns an int64 copy with
    the unused entries (j > i) zeroed."""
    t = np.asarray(thresholds)
    n = spec.rows
    if t.shape != (2, n, n):
        raise ValueError(f"thresholds must have shape (2, {n}, {n}) (table, row, junction), not {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"thresholds must be integers (k-bit thresholds, 0..{spec.threshold_max}), not {t.dtype}")
    t = t.astype(np.int64) * np.tril(np.ones((n, n), dtype=np.int64))
    bad = (t < 0) | (t > spec.threshold_max)
    if bad.any():
        c, i, j = np.argwhere(bad)[0]
        raise ValueError(f"thresholds[{c}, {i}, {j}] must be in 0..{spec.threshold_max} (2^prob_bits), "
                         f"not {int(t[c, i, j])}")
    return t


def bins_from_words(spec: GaltonSpec, thresholds: np.ndarray, words: np.ndarray, correlated: bool) -> np.ndarray:
    """Bins ``(n, B)`` of the balls whose PRNG lane words are ``words`` ``(n, lanes)`` (spec.galton)."""
    n = words.shape[0]
    B, k, F, Lb = spec.boards, spec.prob_bits, spec.fields_per_word, spec.lanes_per_board
    mask = np.uint64((1 << k) - 1)
    pos = np.zeros((n, B), dtype=np.int64)
    table = np.zeros((n, B), dtype=np.int64)
    lanes0 = np.arange(B) * Lb
    for i in range(spec.rows):
        r = ((words[:, lanes0 + i // F] >> np.uint64((i % F) * k)) & mask).astype(np.int64)
        t = thresholds[table, i, pos]
        right = r < t
        pos += right
        if correlated:
            table = right.astype(np.int64)
    return pos


class GaltonTwin:
    """The emulator's behaviour, ball for ball.

    Parameters
    ----------
    spec : GaltonSpec
    thresholds : ``[2, N, N]`` ints (table 0 after left / row 0, table 1 after right), default
        the reset contents (p = ½ everywhere).
    seed : PRNG seed (default ``spec.seed``, the reset value).
    correlated : chirality-memory switch (default ``spec.correlated``, the reset value).

    Attributes
    ----------
    hist : ``(B, N + 1)`` int64 histogram counters (saturating at ``2^bin_bits − 1``).
    done : balls per board generated since the last :meth:`clear` (saturating at ``2^count_bits − 1``).
    """

    def __init__(self, spec: GaltonSpec, thresholds=None, *, seed: int | None = None, correlated: bool | None = None):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.spec = spec
        self.thresholds = default_thresholds(spec) if thresholds is None else check_thresholds(spec, thresholds)
        self.correlated = spec.correlated if correlated is None else bool(correlated)
        self.hist = np.zeros((spec.boards, spec.n_bins), dtype=np.int64)
        self.done = 0
        self.balls_reg = 0  # REG_BALLS
        self.hist_only = False  # REG_CTRL bit 1
        self.write_refused = False  # REG_STATUS bit 4 (sticky): a write was refused
        self.reseed(spec.seed if seed is None else seed)

    # --- the PRNG ---------------------------------------------------------------------------------
    def reseed(self, seed: int) -> None:
        """As writing ``REG_SEED``: lanes restart from ``seed``; the next ball is ball 0."""
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < (1 << REG_BITS):
            raise ValueError(f"seed must be an integer in 0..{(1 << REG_BITS) - 1} (the seed register), not {seed!r}")
        self.seed = seed
        # a one-lane bank steps any array of states; the lanes' start states come from the cache
        self.bank = XorshiftBank(PRNGSpec(width=self.spec.prng_width, lanes=1, jump=1))
        self.bank.state = np.array(_lane_states(self.spec.prng_spec(seed)), dtype=np.uint64)

    def words(self, n: int) -> np.ndarray:
        """The next ``n`` outputs of every lane, ``(n, lanes)`` uint64 (advances the PRNG)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative integer, not {n!r}")
        w, L = self.spec.prng_width, self.spec.lanes
        if n <= _CHUNK:
            out = np.empty((n, L), dtype=np.uint64)
            for t in range(n):
                out[t] = self.bank.next()
            return out
        chunks = -(-n // _CHUNK)
        starts = np.empty((chunks, L), dtype=np.uint64)
        starts[0] = self.bank.state
        cols = _jump_columns(w, _CHUNK)
        for q in range(1, chunks):
            starts[q] = _gf2_apply(cols, starts[q - 1])
        par = XorshiftBank(PRNGSpec(width=w, lanes=1, jump=1, output="raw"))  # states
        par.state = starts
        out = np.empty((chunks, _CHUNK, L), dtype=np.uint64)
        for t in range(_CHUNK):
            out[:, t] = par.next()
        out = out.reshape(chunks * _CHUNK, L)[:n]
        self.bank.state = out[-1].copy()
        return output_words(self.bank.spec, out)

    # --- balls ----------------------------------------------------------------------------------
    def balls(self, n: int, correlated: bool | None = None) -> np.ndarray:
        """The next ``n`` balls of every board, ``(n, B)`` bin indices; counts them into :attr:`hist`
        and :attr:`done` as the hardware does (every generated ball, whether or not sent on ``out``)."""
        corr = self.correlated if correlated is None else bool(correlated)
        parts = []
        left = n
        while True:
            m = min(left, _BLOCK)
            bins = bins_from_words(self.spec, self.thresholds, self.words(m), corr)
            parts.append(bins)
            for b in range(self.spec.boards):
                self.hist[b] = np.minimum(self.hist[b] + np.bincount(bins[:, b], minlength=self.spec.n_bins),
                                          self.spec.counter_max)
            left -= m
            if left == 0:
                break
        self.done = min(self.done + n, (1 << self.spec.count_bits) - 1)
        return np.concatenate(parts)

    def clear(self) -> None:
        """As ``CMD_CLEAR``: histograms and the ball counter to zero."""
        self.hist[:] = 0
        self.done = 0

    # --- the cmd/rsp memory port ------------------------------------------------------------------
    def set_thresholds(self, thresholds) -> None:
        self.thresholds = check_thresholds(self.spec, thresholds)

    def _decode(self, addr: int):
        s = self.spec
        if addr & s.hist_base:
            b, bin_ = (addr & (s.hist_base - 1)) >> s.bin_index_bits, addr & ((1 << s.bin_index_bits) - 1)
            return ("hist", b, bin_) if b < s.boards and bin_ <= s.rows else None
        rb = s.row_bits
        c, i, j = addr >> (2 * rb), (addr >> rb) & ((1 << rb) - 1), addr & ((1 << rb) - 1)
        return ("thr", c, i, j) if c <= 1 and i < s.rows and j <= i else None

    def write(self, addr: int, data: int) -> str | None:
        """A write command: a threshold above 2^k is refused (nothing changes, :attr:`write_refused` is
        set; the reason is returned: :meth:`spec.galton.GaltonSpec.memory_write_error`); unused and
        histogram addresses are ignored."""
        s = self.spec
        if not 0 <= addr < (1 << s.addr_bits) or not 0 <= data < (1 << s.data_bits):
            raise ValueError(f"addr/data must fit {s.addr_bits}/{s.data_bits} bits, not {addr!r}/{data!r}")
        err = s.memory_write_error(addr, data)
        if err is not None:
            self.write_refused = True
            return err
        d = self._decode(addr)
        if d is not None and d[0] == "thr":
            self.thresholds[d[1], d[2], d[3]] = data
        return None

    def write_reg(self, addr: int, value: int) -> str | None:
        """A register write while the board is idle (:meth:`spec.galton.GaltonSpec.register_write_error`):
        refused — nothing changes, :attr:`write_refused` is set, the reason returned — or taken: CTRL,
        SEED (:meth:`reseed`), BALLS (:attr:`balls_reg`), CMD's CLEAR (:meth:`clear`; START/STOP are
        :meth:`balls`' runs), STATUS (clears :attr:`write_refused`)."""
        err = self.spec.register_write_error(addr, value)
        if err is not None:
            self.write_refused = True
            return err
        if addr == REG_CTRL:
            self.correlated, self.hist_only = bool(value & CTRL_CORRELATED), bool(value & CTRL_HIST_ONLY)
        elif addr == REG_SEED:
            self.reseed(value)
        elif addr == REG_BALLS:
            self.balls_reg = value
        elif addr == REG_CMD and value & CMD_CLEAR:
            self.clear()
        elif addr == REG_STATUS:
            self.write_refused = False
        return None

    def read(self, addr: int) -> int:
        """A read command's response: a threshold, a histogram counter, or 0 for an unused address."""
        if not 0 <= addr < (1 << self.spec.addr_bits):
            raise ValueError(f"addr must fit {self.spec.addr_bits} bits, not {addr!r}")
        d = self._decode(addr)
        if d is None:
            return 0
        if d[0] == "thr":
            return int(self.thresholds[d[1], d[2], d[3]])
        return int(self.hist[d[1], d[2]])
