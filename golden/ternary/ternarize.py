"""Ternary and binary weights and their power-of-two scale (ALGORITHMS.md §4).

A connection's effective weight is ``W_eff = α · T`` with ``T ∈ {−1, 0, +1}`` (ternary) or
``T ∈ {−1, +1}`` (binary) and ``α = 2^-a`` one power of two per connection, so the integer EP
core realises it exactly: the ternary values stored with ``weight_frac = a`` (docs/ep-core.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

KINDS = ("ternary", "binary")
DELTA = 0.05  # the ternarisation threshold of Laborieux et al. (2T2R paper)
MAX_ALPHA_SHIFT = 24  # α = 2^-24 is far below any useful scale; larger shifts are typos


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return kind


def check_delta(delta: float) -> float:
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not math.isfinite(delta) or delta < 0:
        raise ValueError(f"delta must be a non-negative finite number, not {delta!r}")
    return float(delta)


def check_alpha_shift(shifts: Sequence[int], n_connections: int) -> tuple[int, ...]:
    """One non-negative integer shift ``a_l`` per connection (α_l = 2^-a_l)."""
    try:
        items = tuple(shifts)
    except TypeError:
        raise ValueError(f"alpha_shift must be a sequence of integers, not {shifts!r}") from None
    if len(items) != n_connections:
        raise ValueError(
            f"alpha_shift must have one entry per connection ({n_connections}), not {len(items)}: {list(items)}"
        )
    for a in items:
        if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a <= MAX_ALPHA_SHIFT:
            raise ValueError(f"alpha_shift entries must be integers in [0, {MAX_ALPHA_SHIFT}], not {a!r}")
    return items


def ternarize(w: torch.Tensor, delta: float = DELTA) -> torch.Tensor:
    """``sign(w)`` where ``|w| > delta``, else 0 (same dtype as ``w``)."""
    delta = check_delta(delta)
    return torch.where(w.abs() > delta, torch.sign(w), torch.zeros_like(w))


def binarize(w: torch.Tensor) -> torch.Tensor:
    """``sign(w)`` with ``sign(0) = +1`` (same dtype as ``w``)."""
    return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))


def quantize(w: torch.Tensor, kind: str, delta: float = DELTA) -> torch.Tensor:
    """The stored values ``T`` of latent weights ``w``: :func:`ternarize` or :func:`binarize`."""
    return ternarize(w, delta) if check_kind(kind) == "ternary" else binarize(w)


def alpha(shift: int) -> float:
    """α = 2^-shift (exact in binary floating point)."""
    return math.ldexp(1.0, -int(shift))


def effective_weight(t: torch.Tensor, shift: int) -> torch.Tensor:
    """``W_eff = 2^-shift · T``: every entry an exact multiple of α (scaling by 2^-k is exact)."""
    return t * alpha(shift)
