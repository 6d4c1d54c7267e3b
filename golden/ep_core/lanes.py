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


def lane_operands(kind: str, w: list[int], pre: list[int], post: list[int], lane: int,
                  d: list[int] | None = None, conn: int = 1) -> tuple[list[int], list[int]]:
    """The P lanes' (left, right) operands of one micro-op (docs/ep-core.md, "Dataflow"), as the core's
    operand select forms them from the words it read: ``w`` the connection's weights, ``pre`` the
    presynaptic tile (the input for connection 0), ``post`` the postsynaptic word, ``lane`` the
    postsynaptic neuron's lane in it, ``d`` the d word (connection 0's weight update).

    ``reduce``/``c1``: (w, pre) — a row's products; ``bcast``: (w, post[lane] broadcast) — a column's;
    ``upw``: (post[lane], or d[lane] for connection 0; pre) — the state products of a weight update;
    ``dpass``/``upb``: (1, post) — the states themselves."""
    P = len(pre)
    if kind in ("reduce", "c1"):
        return list(w), list(pre)
    if kind == "bcast":
        return list(w), [post[lane]] * P
    if kind == "upw":
        return [d[lane] if conn == 0 else post[lane]] * P, list(pre)
    if kind in ("dpass", "upb"):
        return [1] * P, list(post)
    raise ValueError(f"kind must be one of reduce, c1, bcast, upw, dpass, upb, not {kind!r}")
