"""Helpers shared by the EqSpike core's parts (no state, no ports): the constructors' spec check, the core's rounding,
constant products, the lowest set bit of a mask, lane slices and named signals."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value

from spec.eqspike import EqSpikeSpec
from spec.fixed import ROUNDINGS


def check_spec(spec, k: int | None = None) -> None:
    """A part's constructor check: ``spec`` an :class:`EqSpikeSpec` and, when given, ``k`` a layer 1 … L."""
    if not isinstance(spec, EqSpikeSpec):
        raise TypeError(f"spec must be an EqSpikeSpec, not {type(spec).__name__}")
    if k is not None and not 1 <= k <= spec.n_layers:
        raise ValueError(f"k must be in 1 … {spec.n_layers}, not {k}")


def ubits(n: int) -> int:
    """Unsigned bits that hold 0 … n (at least 1)."""
    return max(1, int(n).bit_length())


def round_shift(x, shift: int, mode: str, rnd=None):
    """``x · 2^-shift`` rounded like :func:`golden.fixed.shift_round` for every mode of
    :data:`spec.fixed.ROUNDINGS` (``rnd``: the random word whose low ``shift`` bits round a
    ``stochastic`` shift). One place for the core's rounding: a new mode is added here."""
    if mode not in ROUNDINGS:
        raise ValueError(f"rounding mode must be one of {ROUNDINGS}, not {mode!r}")
    x = x.as_signed()
    if isinstance(shift, Value):  # a run-time shift (unsigned): a barrel shifter; x is read twice (name it)
        if mode == "floor":
            return x >> shift
        if mode == "half_up":
            return Mux(shift == 0, x, ((x >> (shift - 1)[:len(shift)]) + 1) >> 1)
        raise ValueError(f"a run-time shift supports 'floor' and 'half_up' rounding, not {mode!r}")
    if shift <= 0:
        return x << -shift
    if mode == "floor":
        return x >> shift
    if mode == "half_up":
        return ((x >> (shift - 1)) + 1) >> 1
    if mode == "half_even":
        q, r = x >> shift, x[:shift]
        half = 1 << (shift - 1)
        return q + ((r > half) | ((r == half) & q[0]))
    if mode == "stochastic":
        if rnd is None:
            raise ValueError("stochastic rounding needs random bits (rnd)")
        return (x + rnd[:shift]) >> shift
    raise ValueError(f"rounding mode {mode!r} of spec.fixed.ROUNDINGS has no hardware form in hdl.eqspike.round_shift")


def const_mul(u, k: int):
    """``u · k`` for a constant ``k ≥ 0`` as shifts and adds (no multiplier in the netlist)."""
    acc = Const(0, 1)
    for b in range(k.bit_length()):
        if (k >> b) & 1:
            acc = acc + (u << b)
    return acc


def lowest_bit(mask, n: int):
    """Index of the lowest set bit of an n-bit mask (0 when none)."""
    idx = Const(0, ubits(max(n - 1, 1)))
    for b in reversed(range(n)):
        idx = Mux(mask[b], b, idx)
    return idx


def lanes(word, bits: int, sgn: bool, P: int) -> list:
    """The P lanes of ``bits`` bits of a memory word (signed when ``sgn``), lane 0 in the low bits."""
    return [(word[i * bits:(i + 1) * bits].as_signed() if sgn else word[i * bits:(i + 1) * bits]) for i in range(P)]


def named(m: Module, value, name: str) -> Signal:
    """``value`` as a signal driven unconditionally (a Value used several times is otherwise copied into the
    netlist at every use: commit 4878406 took the training core's Verilog from 45,752 to 19,872 lines)."""
    sig = Signal(value.shape(), name=name)
    m.d.comb += sig.eq(value)
    return sig


def valid_lane(word, n: int, T: int, P: int, i: int):
    """Lane i of word ``word`` of a layer of ``n`` neurons in ``T`` words of P lanes holds a neuron (the last
    word may be padded)."""
    rem = n - (T - 1) * P
    return Const(1) if i < rem else (word != T - 1)


def one_net(value):
    """``value`` (a concatenation of per-lane results) as the output of one cell, so that the Verilog module
    of the part that drives it has one port for it instead of one per lane (Amaranth's netlist cuts a
    submodule's ports at every driving cell; an identity xor costs one assignment and no logic)."""
    return value ^ 0


def popcount(bits):
    """The number of set bits of ``bits`` (an adder chain)."""
    total = Const(0, 1)
    for b in range(len(bits)):
        total = total + bits[b]
    return total
