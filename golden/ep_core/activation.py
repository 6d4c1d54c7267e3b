"""Twin piece of the activation ρ (:mod:`hdl.kit.activation`): rounding shift, then clip to the states."""

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
