# amaranth: UnusedElaboratable=no
"""EqSpike part: the trace filters and Δŝ of one word (:mod:`hdl.eqspike_kit.trace`) == step 3 of the twin's
:meth:`golden.eqspike.twin.EqSpikeTwin._step` (``t ← sat(t + shift_round(src − t, trace_shift,
trace_rounding), 0, 2^TF)``, stage 0's source the spike, Δŝ = the last stage's change): random spikes and
traces, one and two stages, both roundings; combinational (checked in the instant the inputs change)."""

from __future__ import annotations

import numpy as np
import pytest
from eqspike_kit_util import pack, run_comb, unpack  # noqa: I001  (tests/ is on sys.path)

from golden.fixed import shift_round
from hdl.eqspike_kit.trace import TraceFilter
from spec.eqspike import EqSpikeSpec


@pytest.mark.parametrize("stages,rounding", [(2, "half_up"), (1, "floor"), (2, "floor")])
def test_trace_filter_matches_the_twin(stages, rounding):
    s = EqSpikeSpec(layers=(9, 7, 5), lanes=3, training=True, trace_stages=stages, trace_rounding=rounding)
    dut = TraceFilter(s)
    P, TF = s.lanes, s.trace_frac
    rng = np.random.default_rng(stages)
    seen = {"d>0": 0, "d<0": 0}

    def check(ctx):
        mask = rng.integers(0, 2, P)
        olds = [rng.integers(0, s.trace_one + 1, P) for _ in range(stages)]
        ctx.set(dut.mask, pack(mask, 1))
        for st in range(stages):
            ctx.set(getattr(dut, f"old{st}"), pack(olds[st], TF + 1))
        src = mask.astype(np.int64) << TF
        for st in range(stages):
            new = np.clip(olds[st] + shift_round(src - olds[st], s.trace_shift, rounding), 0, s.trace_one)
            assert unpack(ctx.get(getattr(dut, f"new{st}")), TF + 1, P, False) == new.tolist()
            src = new
        d = src - olds[-1]
        assert unpack(ctx.get(dut.d), TF + 2, P, True) == d.tolist()
        seen["d>0"] += int((d > 0).sum())
        seen["d<0"] += int((d < 0).sum())

    run_comb(dut, check, 80)
    assert seen["d>0"] and seen["d<0"]  # not vacuous
