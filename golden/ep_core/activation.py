"""Twin piece of the row path (:mod:`hdl.kit.activation`): activation ρ (rounding shift, then clip) and the ±β nudge."""

from __future__ import annotations

import numpy as np

from golden.fixed import shift_round


def activation(pre: np.ndarray, shift: int, rounding: str, state_bits: int) -> np.ndarray:
    """ρ of integer pre-activations: ``clip(shift_round(pre, shift, rounding), 0, 2^state_bits − 1)``
    (int64 in, int64 out; ``shift`` ≤ 0 is an exact left shift)."""
    a = shift_round(pre, shift, rounding)
    np.maximum(a, 0, out=a)
    np.minimum(a, (1 << state_bits) - 1, out=a)
    return a


def nudge(target: np.ndarray, state: np.ndarray, shift: int, beta_sign: int) -> np.ndarray:
    """The ±β nudge of the output layer's pre-activations: ``±(target − state) << shift`` (``shift`` =
    ``spec.nudge_shift(beta_shift)``; ``target`` 2^state_bits for the label, else 0), 0 when
    ``beta_sign`` is 0."""
    n = (np.asarray(target, np.int64) - np.asarray(state, np.int64)) << shift
    if beta_sign == 0:
        return np.zeros_like(n)
    return n if beta_sign > 0 else -n
