"""Ternary weights of the EqSpike core (``weight_kind="ternary"``): the 2T2R memory in the twin, faults, quantisation.

The weights ``w{l}`` ∈ {−1, 0, +1} (value ·2^-weight_frac[l]) live as cells in one
:class:`golden.ternary.memory.TernaryMemoryTwin` (the EP core's memory model and fault injector, not a
copy) laid out as :meth:`spec.eqspike.EqSpikeSpec.ternary_base` says. A spike of presynaptic j then
adds α, subtracts α or skips per target (the twin's integer accumulator, shifts by weight_frac: no
multiplier).

Faults: ``off`` and ``static`` (the injector acts while the cells are programmed, word by word in
address order, one PRNG draw per word; the twin then computes with the stored, possibly faulty cells)
at near-threshold supply. ``dynamic`` faults and nominal supply draw on every PCSA read, so their
stream depends on the RTL's read order, which is not specified yet: refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from golden.ternary.memory import TernaryMemoryTwin
from spec.eqspike import EqSpikeSpec
from spec.ternary import CELL_ILLEGAL, CELL_MINUS, CELL_PLUS, CELL_ZERO, rate_thresholds

DELTA_FACTOR = 0.7  # Δ_l = 0.7·mean|W_l| (ternary weight networks, Li & Liu 2016)


def pack_memory(spec: EqSpikeSpec, weights: dict[str, np.ndarray]) -> np.ndarray:
    """The memory's cells (depth, P) uint8 of ternary ``w{l}`` (post, pre) arrays (padding cells 00)."""
    P = spec.lanes
    out = []
    for l in range(spec.n_layers):
        w = np.asarray(weights[f"w{l}"], np.int64)
        n_post, n_pre = w.shape
        T = spec.tiles(l + 1)
        pad = np.zeros((n_pre, T * P), np.int64)
        pad[:, :n_post] = w.T
        cells = np.where(pad > 0, CELL_PLUS, np.where(pad < 0, CELL_MINUS, CELL_ZERO)).astype(np.uint8)
        out.append(cells.reshape(n_pre * T, P))
    return np.concatenate(out)


def unpack_memory(spec: EqSpikeSpec, values: np.ndarray) -> list[np.ndarray]:
    """Per connection the transposed weights (pre, post) int64 of the memory's (depth, P) values."""
    P = spec.lanes
    out = []
    for l in range(spec.n_layers):
        T, n_pre = spec.tiles(l + 1), spec.layers[l]
        base = spec.ternary_base(l)
        v = np.asarray(values[base:base + n_pre * T], np.int64).reshape(n_pre, T * P)
        out.append(np.ascontiguousarray(v[:, :spec.layers[l + 1]]))
    return out


def attach_memory(twin, weights: dict[str, np.ndarray]) -> None:
    """Give an :class:`~golden.eqspike.twin.EqSpikeTwin` of a ternary spec its memory, programmed with
    the twin's weights (reset registers: faults off), and compute from the stored cells."""
    sp = twin.spec
    twin.memory = TernaryMemoryTwin(sp.ternary_memory_spec())
    if sp.ternary_training:
        twin.v = [np.ascontiguousarray(np.asarray(weights[f"v{l}"], np.int64).T) for l in range(sp.n_layers)]
        for l in range(sp.n_layers):
            if (sp.ternarize_latent(l, twin.v[l]) != twin.wt[l]).any():
                raise ValueError(f"w{l} must equal the ternary value of v{l} (+1 where v > {sp.latent_threshold[l]}, "
                                 f"-1 where v < -{sp.latent_threshold[l]}, else 0): cells follow latents")
    program(twin, twin.weights)


def program(twin, weights: dict[str, np.ndarray]) -> None:
    """Program every word in address order (one draw each; static faults act here) and load the
    stored cells' values into the twin's accumulating weights."""
    twin.memory.program(0, pack_memory(twin.spec, weights))
    _check_readable(twin.memory)
    twin.wt = unpack_memory(twin.spec, twin.memory.values())
    twin._t = [np.ascontiguousarray(np.asarray(weights[f"w{l}"], np.int64).T) for l in range(twin.spec.n_layers)]


def _check_readable(mem: TernaryMemoryTwin) -> None:
    if mem.mode == "dynamic" or mem.supply != "near-threshold":
        raise ValueError(f"the EqSpike twin supports fault mode 'off'/'static' at supply 'near-threshold', not "
                         f"mode={mem.mode!r}, supply={mem.supply!r} (dynamic faults and nominal PCSA draw on every "
                         "read, whose order the EqSpike RTL does not yet fix)")
    if (mem.cells == CELL_ILLEGAL).any():
        raise ValueError("the memory holds illegal (LRS, LRS) cells: their reads resolve at random, not modelled "
                         "by the EqSpike twin")


def reprogram(twin) -> None:
    """After a step's latent update: the words holding a cell whose ternary value changed are written
    through the memory's update port, in address order, one draw each; the changed cells are
    reprogrammed (the static injector's target), the others written back as stored (a fault stays
    until its weight's ternary value changes). The twin then computes with the stored cells."""
    sp, mem = twin.spec, twin.memory
    new_t = {f"w{l}": sp.ternarize_latent(l, twin.v[l]).T for l in range(sp.n_layers)}
    old_t = {f"w{l}": np.ascontiguousarray(twin._t[l].T) for l in range(sp.n_layers)}
    new_cells, old_cells = pack_memory(sp, new_t), pack_memory(sp, old_t)
    mask = new_cells != old_cells
    words = np.flatnonzero(mask.any(1))
    if len(words):
        cells = np.where(mask[words], new_cells[words], mem.cells[words])
        mem.update(words, cells, mask[words])
        _check_readable(mem)
        twin.wt = unpack_memory(sp, mem.values())
    twin._t = [np.asarray(new_t[f"w{l}"]).T.copy() for l in range(sp.n_layers)]


def zero_fraction(spec: EqSpikeSpec, weights: dict[str, np.ndarray]) -> float:
    """p0: the fraction of zero weights over every ``w{l}``."""
    ws = [np.asarray(weights[f"w{l}"]) for l in range(spec.n_layers)]
    return float(sum(int((w == 0).sum()) for w in ws) / sum(w.size for w in ws))


def configure_faults(twin, weights: dict[str, np.ndarray], p: float, mode: str = "static", kind: str = "adjacent",
                     seed: int = 1) -> dict[str, Any]:
    """Set the memory's fault registers as a host would (mean error rate ``p`` over the zero fraction of
    ``weights``), reseed its PRNG and, for static faults, program ``weights`` again (the faults are drawn
    then). Returns the setting and the injected-cell count."""
    sp = twin.spec
    if sp.weight_kind != "ternary" or not sp.fault_injection:
        raise ValueError("fault experiments need an EqSpike spec with weight_kind='ternary' and fault_injection=true")
    if mode not in ("off", "static"):
        raise ValueError(f"mode must be 'off' or 'static' for the EqSpike twin (dynamic faults: pending), not {mode!r}")
    p0 = zero_fraction(sp, weights)
    rz, rnz = rate_thresholds(p, p0, kind)
    mem = twin.memory
    mem.configure(mode, kind, "near-threshold", rz, rnz, seed)
    mem.write_reg(9, 0)  # spec.ternary.REG_INJECTED: clear
    program(twin, weights)
    return {"p": p, "p0": p0, "mode": mode, "kind": kind, "seed": seed, "rate_zero": rz, "rate_nonzero": rnz,
            "injected": mem.injected, "cells": int(sum(np.asarray(weights[f"w{l}"]).size for l in range(sp.n_layers)))}


def ternarize_arrays(arrays: dict[str, np.ndarray], n: int, delta_factor: float = DELTA_FACTOR
                     ) -> tuple[dict[str, np.ndarray], list[int], dict[str, Any]]:
    """Ternarise float weights per connection: Δ_l = delta_factor·mean|W_l|; t = sign(W) where |W| > Δ_l,
    else 0; α_l = 2^-a_l with a_l = round(−log2(mean |W| over the kept weights)) (the power of two nearest
    the least-squares scale of ternary weight networks). Returns (t arrays, a_l, per-connection info)."""
    if isinstance(delta_factor, bool) or not isinstance(delta_factor, (int, float)) or not 0 <= delta_factor < 10:
        raise ValueError(f"delta_factor must be a number in [0, 10), not {delta_factor!r}")
    t, shifts, info = {}, [], {}
    for l in range(n):
        w = np.asarray(arrays[f"w{l}"], np.float64)
        delta = delta_factor * float(np.abs(w).mean())
        keep = np.abs(w) > delta
        scale = float(np.abs(w[keep]).mean()) if keep.any() else 1.0
        a = int(np.clip(round(-np.log2(scale)), 0, 24))
        t[f"w{l}"] = (np.sign(w) * keep).astype(np.int64)
        shifts.append(a)
        info[f"w{l}"] = {"delta": delta, "ls_scale": scale, "alpha_shift": a, "zero_fraction": float(1 - keep.mean())}
    return t, shifts, info
