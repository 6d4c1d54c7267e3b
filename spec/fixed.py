"""Fixed-point primitives shared by every block: the one definition of each narrowing step.

These scalar functions are the specification. The golden twins apply them to numpy arrays
(:mod:`golden.fixed`), the Amaranth generators build the same operation in logic
(:mod:`hdl.fixed`), and tests check both against these definitions exhaustively for small widths.
Nothing here imports numpy, torch or amaranth.
"""

from __future__ import annotations

ROUNDINGS = ("floor", "half_up", "stochastic")


def signed_range(bits: int) -> tuple[int, int]:
    """Two's-complement range of a ``bits``-wide signed value."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def unsigned_range(bits: int) -> tuple[int, int]:
    return 0, (1 << bits) - 1


def saturate(x: int, lo: int, hi: int) -> int:
    """Clamp to [lo, hi]: every narrowing step saturates instead of wrapping."""
    return lo if x < lo else hi if x > hi else x


def shift_round(x: int, shift: int, mode: str = "floor", random_bits: int = 0) -> int:
    """``x · 2^-shift`` rounded to an integer (``shift`` may be ≤ 0: then an exact left shift).

    * ``floor``: arithmetic shift right (truncation towards −∞), what a bare ``>>`` does.
    * ``half_up``: ``floor(x / 2^s + 1/2)`` (ties towards +∞).
    * ``stochastic``: ``floor((x + r) / 2^s)`` with ``r`` the low ``s`` bits of ``random_bits``,
      i.e. rounds up with probability equal to the discarded fraction (unbiased).
    """
    if shift <= 0:
        return x << (-shift)
    if mode == "floor":
        return x >> shift
    if mode == "half_up":
        return (x + (1 << (shift - 1))) >> shift
    if mode == "stochastic":
        return (x + (random_bits & ((1 << shift) - 1))) >> shift
    raise ValueError(f"rounding mode must be one of {ROUNDINGS}, not {mode!r}")


def bits_for_signed(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every value in [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits
