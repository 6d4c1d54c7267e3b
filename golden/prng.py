"""numpy twin of :mod:`spec.prng`: many xorshift lanes stepped together, bit-identical to the RTL."""

from __future__ import annotations

import numpy as np

from spec.prng import TRIPLES, PRNGSpec, apply, jump_matrix

LANE_WIDTH = 32  # LaneStream's lane width


class XorshiftBank:
    """All lanes of a :class:`spec.prng.PRNGSpec`, advanced in lockstep.

    ``next()`` returns the lanes' new states (the outputs of one cycle of the hardware bank).
    """

    def __init__(self, spec: PRNGSpec, seed: int | None = None):
        self.spec = spec
        self.state = np.array(spec.lane_states(seed), dtype=np.uint64)

    def next(self) -> np.ndarray:
        w = self.spec.width
        a, b, c = TRIPLES[w]
        x = self.state
        if w == 64:
            x = x ^ (x << np.uint64(a))
            x = x ^ (x >> np.uint64(b))
            x = x ^ (x << np.uint64(c))
        else:
            m = np.uint64((1 << w) - 1)
            x = x ^ ((x << np.uint64(a)) & m)
            x = x ^ (x >> np.uint64(b))
            x = x ^ ((x << np.uint64(c)) & m)
        self.state = x
        return x.copy()

    def stream(self, n: int) -> np.ndarray:
        """The next ``n`` cycles' outputs, shape (n, lanes)."""
        out = np.empty((n, self.spec.lanes), dtype=np.uint64)
        for i in range(n):
            out[i] = self.next()
        return out


class LaneStream:
    """A 32-bit :class:`spec.prng.PRNGSpec` bank as a stream of draws, bit-identical to stepping
    :class:`golden.prng.XorshiftBank` once per draw (tests check it), but computed ahead in blocks:
    block starts come from GF(2) jump matrices (:mod:`spec.prng`), then all blocks step in lockstep.

    ``take(n)`` returns the next n draws, shape (n, lanes), uint64: row d holds every lane's state
    after the draw (the hardware's output word). ``reseed(seed)`` restarts from a seed, as a write
    of ``REG_SEED`` does.
    """

    BLOCK = 64  # steps per block
    BLOCKS = 256  # blocks computed per refill (a power of two)

    def __init__(self, spec: PRNGSpec):
        if spec.width != LANE_WIDTH:
            raise ValueError(f"LaneStream supports {LANE_WIDTH}-bit lanes, not {spec.width}")
        self.spec = spec
        self.reseed(spec.seed)

    def reseed(self, seed: int) -> None:
        self._end = np.array(self.spec.lane_states(seed), dtype=np.uint32)  # state after the last buffered draw
        self._buf = np.empty((0, self.spec.lanes), np.uint32)
        self._pos = 0
        self.draws = 0  # draws taken since the last seeding

    def take(self, n: int) -> np.ndarray:
        parts = []
        while n > 0:
            if self._pos == len(self._buf):
                self._refill()
            k = min(n, len(self._buf) - self._pos)
            parts.append(self._buf[self._pos:self._pos + k])
            self._pos += k
            n -= k
            self.draws += k
        if not parts:
            return np.empty((0, self.spec.lanes), np.uint64)
        return np.concatenate(parts).astype(np.uint64)

    def skip(self, n: int) -> None:
        """Advance past the next ``n`` draws without computing them (one GF(2) jump)."""
        if n < 0:
            raise ValueError(f"n must be non-negative, not {n}")
        k = min(n, len(self._buf) - self._pos)
        self._pos += k
        self.draws += k
        n -= k
        if n:
            cols = jump_matrix(LANE_WIDTH, n)
            self._end = np.array([apply(cols, int(x)) for x in self._end], np.uint32)
            self._buf = np.empty((0, self.spec.lanes), np.uint32)
            self._pos = 0
            self.draws += n

    def _refill(self) -> None:
        m, nb = self.BLOCK, self.BLOCKS
        starts = np.empty((nb, self.spec.lanes), np.uint32)
        starts[0] = self._end
        have = 1
        while have < nb:  # starts[b] = M^(b·m) · end, by doubling
            starts[have:2 * have] = _gf2_apply(_byte_tables(m * have), starts[:have])
            have *= 2
        a, b, c = (np.uint32(v) for v in TRIPLES[LANE_WIDTH])
        out = np.empty((nb, m, self.spec.lanes), np.uint32)
        x = starts
        for t in range(m):
            x = x ^ (x << a)
            x = x ^ (x >> b)
            x = x ^ (x << c)
            out[:, t] = x
        self._buf = out.reshape(nb * m, self.spec.lanes)
        self._pos = 0
        self._end = self._buf[-1].copy()


_TABLES: dict[int, np.ndarray] = {}


def _byte_tables(distance: int) -> np.ndarray:
    """M^distance of the 32-bit xorshift as four 256-entry tables (one per input byte)."""
    if distance not in _TABLES:
        cols = jump_matrix(LANE_WIDTH, distance)
        tables = np.zeros((4, 256), np.uint32)
        for byte in range(4):
            for j in range(8):
                tables[byte, 1 << j:2 << j] = tables[byte, :1 << j] ^ np.uint32(cols[8 * byte + j])
        _TABLES[distance] = tables
    return _TABLES[distance]


def _gf2_apply(tables: np.ndarray, x: np.ndarray) -> np.ndarray:
    """M·x over GF(2) for every element of the uint32 array ``x``."""
    return (tables[0][x & 0xFF] ^ tables[1][(x >> 8) & 0xFF] ^ tables[2][(x >> 16) & 0xFF]
            ^ tables[3][x >> 24])
