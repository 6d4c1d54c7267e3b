"""Twin pieces of the EP core's sample flow: which phases a sample runs (:mod:`hdl.kit.sequencer`),
the input words a sample's beats fill (:mod:`hdl.kit.loader`) and the beats of a phase's state
dump (:mod:`hdl.kit.dump`).

:meth:`golden.ep_core.EPCoreTwin.train_sample` runs the phases of :func:`phase_plan` and updates
with its (a, b) pair; the RTL's sequencer walks the same plan.
"""

from __future__ import annotations

from spec.ep_core import PHASE_FREE, PHASE_MINUS, PHASE_PLUS, EPCoreSpec

BETA_SIGN = {PHASE_FREE: 0, PHASE_PLUS: +1, PHASE_MINUS: -1}


def phase_plan(train: bool, symmetric: bool, negative: bool = False) -> tuple[list[int], tuple[int, int] | None]:
    """The phases of one sample in order, and the (a, b) phases its update compares (None: no update).

    Inference runs the free phase only. Training runs +β after it, or −β instead when a random-sign
    draw said so (``negative``; the symmetric estimator never draws), and −β after +β when
    ``symmetric``. The update compares (a, b) = (−β, +β) symmetric, (−β, free) after a negative
    draw, else (free, +β). A phase's β sign is ``BETA_SIGN[phase]``."""
    if not train:
        return [PHASE_FREE], None
    if symmetric and negative:
        raise ValueError("negative=True needs the random-sign estimator (symmetric=False)")
    if negative:
        return [PHASE_FREE, PHASE_MINUS], (PHASE_MINUS, PHASE_FREE)
    if symmetric:
        return [PHASE_FREE, PHASE_PLUS, PHASE_MINUS], (PHASE_MINUS, PHASE_PLUS)
    return [PHASE_FREE, PHASE_PLUS], (PHASE_FREE, PHASE_PLUS)


def input_tiles(spec: EPCoreSpec, x: list[int]) -> list[list[int]]:
    """The input memory's words for sample ``x`` (``layers[0]`` codes): tile t holds pixels
    t·P … t·P + P − 1, padding lanes of the last tile 0."""
    P, n = spec.lanes, spec.layers[0]
    if len(x) != n:
        raise ValueError(f"x must have {n} input codes (layers[0]), not {len(x)}")
    return [[int(x[t * P + i]) if t * P + i < n else 0 for i in range(P)] for t in range(spec.tiles(0))]


def dump_beats(spec: EPCoreSpec, states: list[list[int]], phase: int) -> list[dict]:
    """The beats of one phase's state dump: layer 1 … L, each tile by tile (P states a beat,
    padding lanes as stored), with the phase number; ``states[k − 1]`` is layer k's padded list."""
    beats = []
    for k in range(1, spec.n_layers + 1):
        for t in range(spec.tiles(k)):
            beats.append({"layer": k, "tile": t, "phase": phase,
                          "states": [int(v) for v in states[k - 1][t * spec.lanes:(t + 1) * spec.lanes]]})
    return beats


def state_reads(spec: EPCoreSpec, kind: str, conn: int, outer: int, inner: int, sub: int, rd_bank: int,
                bank_a: int, bank_b: int) -> dict[int, int] | None:
    """The state word (address ``bank·tiles(k) + word``) each layer k's memory reads at one sweep position
    (:class:`hdl.kit.sweep.SweepEngine`'s ``outer``, ``inner``, ``sub``; None for the c1 sweep, which
    reads no state).

    Relaxation reads bank ``rd_bank``: a reduce (outer = row j, inner = tile t) reads the pre tile t of
    layer ``conn`` and word j // P of the others (the top layer's state for the nudge); a broadcast
    (outer = tile, inner = row j) word j // P (the post scalar). The update reads bank ``bank_b``
    (``sub`` 0) or ``bank_a`` (``sub`` 1): the d pass and a bias update word ``outer`` (a tile), a
    weight update the pre tile ``inner`` of layer ``conn`` and word j // P of the others."""
    P = spec.lanes
    if kind == "c1":
        return None
    if kind not in ("reduce", "bcast", "dpass", "upb", "upw"):
        raise ValueError(f"kind must be one of c1, reduce, bcast, dpass, upb, upw, not {kind!r}")
    bank = rd_bank if kind in ("reduce", "bcast") else (bank_a if sub else bank_b)
    out = {}
    for k in range(1, spec.n_layers + 1):
        if kind == "bcast":
            word = inner // P
        elif kind in ("dpass", "upb"):
            word = outer
        else:
            word = inner if conn == k else outer // P
        out[k] = bank * spec.tiles(k) + word
    return out
