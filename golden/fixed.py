"""numpy versions of :mod:`spec.fixed`'s narrowing steps, for the bit-exact twins.

Each function is the elementwise application of the scalar definition in ``spec.fixed`` (the
tests check that on every value of small widths). Integer matrix products are done in float64
BLAS and converted back: exact as long as every partial sum stays below 2^53, which
:func:`exact_matmul` asserts from the operands' ranges.
"""

from __future__ import annotations

import numpy as np

from spec.fixed import ROUNDINGS


def shift_round(x: np.ndarray, shift: int, mode: str = "floor", random_bits: np.ndarray | None = None) -> np.ndarray:
    """``x · 2^-shift`` rounded (see :func:`spec.fixed.shift_round`); int64 in, int64 out."""
    x = np.asarray(x, dtype=np.int64)
    if shift <= 0:
        return x << (-shift)
    if mode == "floor":
        return x >> shift
    if mode == "half_up":
        return (x + (1 << (shift - 1))) >> shift
    if mode == "stochastic":
        if random_bits is None:
            raise ValueError("stochastic rounding needs random_bits")
        return (x + (np.asarray(random_bits, dtype=np.int64) & ((1 << shift) - 1))) >> shift
    raise ValueError(f"rounding mode must be one of {ROUNDINGS}, not {mode!r}")


def saturate(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(x, lo, hi)


def exact_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer matrix product via float64 BLAS, exact (asserted: |partial sums| < 2^53)."""
    a = np.asarray(a)
    b = np.asarray(b)
    amax = int(np.abs(a).max(initial=0))
    bmax = int(np.abs(b).max(initial=0))
    inner = a.shape[-1]
    if amax * bmax * inner >= 1 << 53:
        raise OverflowError(f"integer product of {a.shape}·{b.shape} may exceed float64's exact range")
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
