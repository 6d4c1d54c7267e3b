"""numpy twin of :mod:`spec.prng`: many xorshift lanes stepped together, bit-identical to the RTL."""

from __future__ import annotations

import numpy as np

from spec.prng import TRIPLES, PRNGSpec


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
