"""numpy twin of :mod:`spec.prng`: many xorshift lanes stepped together, bit-identical to the RTL.

The banks keep the lanes' *states* and return their *output words* (:func:`scramble_words` of the
states, :func:`spec.prng.scramble`, unless the spec's ``output`` is ``"raw"``).
"""

from __future__ import annotations

import numpy as np

from spec.prng import SCRAMBLER, TRIPLES, PRNGSpec, apply, jump_matrix


def scramble_words(x: np.ndarray, w: int) -> np.ndarray:
    """:func:`spec.prng.scramble` of every w-bit state in ``x`` (a uint32 or uint64 array; w ≤ its bits)."""
    x = np.asarray(x)
    dt = x.dtype.type
    s, r, t = (dt(v) for v in SCRAMBLER)
    m = dt((1 << w) - 1)
    y = (x * s) & m  # numpy arrays wrap mod 2^bits
    y = ((y << r) & m) | (y >> dt(w - SCRAMBLER[1]))
    return (y * t) & m


def output_words(spec: PRNGSpec, states: np.ndarray) -> np.ndarray:
    """The output words of lanes in ``states`` (scrambled unless ``spec.output == "raw"``; a copy)."""
    return scramble_words(states, spec.width) if spec.scrambled else np.array(states, copy=True)

LANE_WIDTH = 32  # LaneStream's lane width


class XorshiftBank:
    """All lanes of a :class:`spec.prng.PRNGSpec`, advanced in lockstep.

    ``next()`` steps every lane and returns the lanes' output words (one cycle of the hardware
    bank: :func:`output_words` of the new states); ``state`` holds the states.
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
        return output_words(self.spec, x)

    def stream(self, n: int) -> np.ndarray:
        """The next ``n`` cycles' output words, shape (n, lanes)."""
        out = np.empty((n, self.spec.lanes), dtype=np.uint64)
        for i in range(n):
            out[i] = self.next()
        return out


class LaneStream:
    """A 32-bit :class:`spec.prng.PRNGSpec` bank as a stream of draws, bit-identical to stepping
    :class:`golden.prng.XorshiftBank` once per draw (tests check it), but computed ahead in blocks:
    block starts come from GF(2) jump matrices (:mod:`spec.prng`), then all blocks step in lockstep.

    ``take(n)`` returns the next n draws, shape (n, lanes), uint64: row d holds every lane's output
    word after the draw (:func:`output_words` of the state, as the hardware's ``out``).
    ``reseed(seed)`` restarts from a seed, as a write of ``REG_SEED`` does.
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
        states = out.reshape(nb * m, self.spec.lanes)
        self._end = states[-1].copy()
        self._buf = output_words(self.spec, states)
        self._pos = 0


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
