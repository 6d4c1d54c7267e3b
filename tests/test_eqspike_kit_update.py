# amaranth: UnusedElaboratable=no
"""EqSpike part: the spike-driven update of one word (:mod:`hdl.eqspike_kit.update`) == the ``online``
fixed-weight branch of the twin's :meth:`golden.eqspike.twin.EqSpikeTwin._apply_update`
(``clip(w + shift_round(σ·D, shift), lo, hi)``, D = Δŝ_i (+ e_i·Δŝ_j for a presynaptic row)): random words,
Δŝ, σ and run-time shifts 0 … 12, floor and half_up, with and without the presynaptic term;
combinational (checked in the instant the inputs change)."""

from __future__ import annotations

import numpy as np
import pytest
from eqspike_kit_util import pack, run_comb, unpack  # noqa: I001  (tests/ is on sys.path)

from golden.fixed import shift_round
from hdl.eqspike_kit.update import SpikeUpdate


@pytest.mark.parametrize("pre_term", [False, True])
@pytest.mark.parametrize("rounding", ["floor", "half_up"])
def test_spike_update_matches_the_twin(rounding, pre_term):
    P, bits, d_bits, lo, hi = 3, 6, 9, -32, 31
    dut = SpikeUpdate(P, bits, d_bits, lo, hi, rounding, pre_term=pre_term)
    rng = np.random.default_rng(int(pre_term))
    dmax = 1 << (d_bits - 2)
    seen = {"lo": 0, "hi": 0, "moved": 0}

    def check(ctx):
        w = rng.integers(lo, hi + 1, P)
        d = rng.integers(-dmax, dmax + 1, P)
        neg, shift = bool(rng.integers(0, 2)), int(rng.integers(0, 13))
        for port, v in ((dut.w, pack(w, bits)), (dut.d, pack(d, d_bits)), (dut.neg, neg), (dut.shift, shift)):
            ctx.set(port, v)
        D = d
        if pre_term:
            e, dj = rng.integers(0, 2, P), int(rng.integers(-dmax, dmax + 1))
            ctx.set(dut.e, pack(e, 1))
            ctx.set(dut.dj, dj & ((1 << d_bits) - 1))
            D = d + e * dj
        new = np.clip(w + shift_round((-1 if neg else 1) * D, shift, rounding), lo, hi)
        assert unpack(ctx.get(dut.new), bits, P, True) == new.tolist()
        seen["lo"] += int((new == lo).sum())
        seen["hi"] += int((new == hi).sum())
        seen["moved"] += int((new != w).sum())

    run_comb(dut, check, 120)
    assert all(seen.values())  # not vacuous: both bounds reached, weights moved
