"""Amaranth versions of :mod:`spec.fixed`'s narrowing steps (tests check them against it exhaustively)."""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Value


def shift_round(x: Value, shift: int | Value, mode: str, width: int) -> Value:
    """``x · 2^-shift`` rounded (``floor`` or ``half_up``), as a signed value of ``width`` bits.

    ``shift`` is a constant (≤ 0 means an exact left shift) or a non-negative Value (a barrel
    shifter). The caller sizes ``width`` to hold every result; nothing saturates here.
    """
    if mode not in ("floor", "half_up"):
        raise ValueError(f"rounding mode must be 'floor' or 'half_up', not {mode!r}")
    x = x.as_signed()
    if isinstance(shift, int):
        if shift <= 0:
            return (x << -shift)[:width].as_signed()
        if mode == "half_up":
            # floor((x + 2^(s-1)) / 2^s) == floor((floor(x / 2^(s-1)) + 1) / 2): the adder only spans
            # the bits above s - 1 (narrower carry chain, same value)
            x = (x >> (shift - 1)) + 1
            return (x >> 1)[:width].as_signed()
        return (x >> shift)[:width].as_signed()
    if mode == "half_up":
        # 2^(shift-1), and 0 when shift == 0
        half = (Const(1, 1 << len(shift)) << shift) >> 1
        x = x + half
    return (x >> shift)[:width].as_signed()


def saturate(x: Value, lo: int, hi: int, width: int) -> Value:
    """Clamp to [lo, hi] and return ``width`` bits (signed when lo < 0): saturate, never wrap."""
    x = x.as_signed()
    n = len(x)
    if lo == 0 and hi > 0 and hi & (hi + 1) == 0 and hi.bit_length() < n:
        # [0, 2^k - 1]: the sign bit says "below", any other bit at or above k says "above"
        k = hi.bit_length()
        r = Mux(x[-1], 0, Mux(x[k:n - 1].any(), hi, x[:k]))
        return r[:width]
    if lo < 0 and lo == -hi - 1 and hi & (hi + 1) == 0 and hi.bit_length() + 1 < n:
        # [-2^(k-1), 2^(k-1) - 1]: in range when the bits at and above k - 1 all equal the sign bit
        k = hi.bit_length() + 1
        top = x[k - 1:]
        fits = (top == 0) | (top == (1 << len(top)) - 1)
        r = Mux(fits, x[:k], Mux(x[-1], lo, hi))
        return r[:width].as_signed()
    r = Mux(x < lo, lo, Mux(x > hi, hi, x))
    return r[:width].as_signed() if lo < 0 else r[:width]
