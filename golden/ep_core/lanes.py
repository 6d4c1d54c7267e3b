"""Twin piece of the lane datapath (:mod:`hdl.kit.lanes`): lane products and their reduction.

The core's lanes form P products per cycle and reduce them in an adder tree (a row of W·s) or add
them into P lane accumulators (a column, Wᵀ·s); every sum is exact, so a whole sweep is the integer
matrix product :func:`dot`, which :class:`golden.ep_core.EPCoreTwin` uses for every sweep.
"""

from __future__ import annotations

import numpy as np

LANE_MODES = ("multiply", "addsub", "addsub+multiply")


def ternary_lane(left: np.ndarray) -> np.ndarray:
    """The weight an add/subtract/skip lane reads from its operand's bits: bit 0 set → non-zero, the
    sign → negative (−1, 0, +1; the ternary memory's PCSA gives these bits)."""
    left = np.asarray(left, np.int64)
    return np.where(left & 1, np.where(left < 0, -1, 1), 0)


def lane_products(left: np.ndarray, right: np.ndarray, mode: str = "multiply",
                  mul: np.ndarray | bool = False) -> np.ndarray:
    """Lane products of integer operands (any matching shapes): ``left · right`` (``"multiply"``), the
    add/subtract/skip of ``right`` by :func:`ternary_lane` of ``left`` (``"addsub"``), or either by ``mul``
    (``"addsub+multiply"``)."""
    if mode not in LANE_MODES:
        raise ValueError(f"mode must be one of {LANE_MODES}, not {mode!r}")
    left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
    prod = left * right
    if mode == "multiply":
        return prod
    addsub = ternary_lane(left) * right
    return addsub if mode == "addsub" else np.where(mul, prod, addsub)


def reduce_lanes(products: np.ndarray) -> np.ndarray:
    """The adder tree: the exact sum over the last axis (the P lanes)."""
    return np.asarray(products, np.int64).sum(axis=-1)


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A sweep of lane products and sums over whole matrices: the integer product ``a @ b``, through
    float64 BLAS (exact: the spec bounds every sum below 2^48)."""
    return (a.astype(np.float64) @ b).astype(np.int64)


def accumulate_lanes(init: np.ndarray, products: np.ndarray, shift: int) -> np.ndarray:
    """Broadcast (column) sums of the lane accumulators: ``init + Σ_rows (products << shift)``
    (``products``: rows × lanes) — one column tile of the twin's ``dot(s, W) << shift``."""
    products = np.asarray(products, np.int64)
    return np.asarray(init, np.int64) + (products << shift).sum(axis=0)


def accumulate_row(tile_sums: np.ndarray, shift: int, addend: np.ndarray) -> np.ndarray:
    """The row path's scalar accumulator: ``Σ_tiles (tile_sums << shift) + addend`` over the last axis
    (``tile_sums``: the adder tree's sums of one row's tiles) — one row of the twin's
    ``(dot(s, Wᵀ) << shift) + bias/nudge/partial``."""
    tile_sums = np.asarray(tile_sums, np.int64)
    return (tile_sums << shift).sum(axis=-1) + np.asarray(addend, np.int64)
