"""Twin piece of the update unit (:mod:`hdl.kit.update`): the rounding shift of an update and its
saturating add to the stored value.

:meth:`golden.ep_core.EPCoreTwin.update` forms every weight's difference of state products
(``post_b·pre_b − post_a·pre_a``; a bias's presynaptic state is 1.0, i.e. the difference of post
states scaled by ``2^state_bits``), rounds it with :func:`update_delta` and adds it with
:func:`apply_update`; the RTL's update unit does the same per P-element word.
"""

from __future__ import annotations

import numpy as np

from golden.fixed import saturate, shift_round
from spec.ternary import CELL_MINUS, CELL_PLUS, CELL_ZERO


def update_delta(diff: np.ndarray, shift: int, rounding: str, random_bits: np.ndarray | None = None,
                 scale: int = 0) -> np.ndarray:
    """The update of one element: ``shift_round(diff << scale, shift, rounding)`` (int64 in and out).

    ``rounding`` is the spec's ``update_rounding``; ``"stochastic"`` adds the low ``shift`` bits of
    ``random_bits`` (one PRNG word per element) before the floor shift."""
    return shift_round(np.asarray(diff, np.int64) << scale, shift, rounding, random_bits)


def apply_update(old: np.ndarray, delta: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The stored value after an update: ``old + delta`` saturated to ``[lo, hi]`` (never wrapped)."""
    return saturate(np.asarray(old, np.int64) + np.asarray(delta, np.int64), lo, hi)


def reprogram_cells(ternarize, old: np.ndarray, new: np.ndarray, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A ternary training core's cells after its latent weights moved from ``old`` to ``new``: where the
    ternary value (``ternarize``, e.g. ``lambda v: spec.ternarize_latent(l, v)``) changed the cell is
    reprogrammed (+1 → ``CELL_PLUS``, −1 → ``CELL_MINUS``, 0 → ``CELL_ZERO``), elsewhere ``cells`` is
    kept as stored. Returns the cells and the mask of the reprogrammed ones."""
    t_new = ternarize(new)
    changed = ternarize(old) != t_new
    codes = np.select([t_new > 0, t_new < 0], [CELL_PLUS, CELL_MINUS], CELL_ZERO)
    return np.where(changed, codes, cells).astype(np.uint8), changed
