# amaranth: UnusedElaboratable=no
"""EqSpike part: the accumulate of one row word (:mod:`hdl.eqspike_kit.accumulate`) == the twin's sparse
accumulation (step 2 of :meth:`golden.eqspike.twin.EqSpikeTwin._step`: a bottom-up row ``<< bu``, a top-down
row ``<< td``): random accumulators within the layer's bound and weight rows, both directions, every layer;
combinational (checked in the instant the inputs change)."""

from __future__ import annotations

import numpy as np
import pytest
from eqspike_kit_util import pack, run_comb, unpack  # noqa: I001  (tests/ is on sys.path)

from hdl.eqspike_kit.accumulate import Accumulate
from spec.eqspike import EqSpikeSpec


@pytest.mark.parametrize("k", [1, 2, 3])
def test_accumulate_matches_the_twin(k):
    s = EqSpikeSpec(layers=(13, 7, 5, 3), lanes=3, weight_bits=(8, 7, 6), weight_frac=(6, 5, 4))
    dut = Accumulate(s, k)
    P, ab, bound = s.lanes, s.acc_bits(k), s.acc_bound(k)
    rng = np.random.default_rng(k)
    seen = {"dn": 0}

    def check(ctx):
        acc = rng.integers(-bound // 2, bound // 2 + 1, P)
        wb = s.weight_bits[k - 1]
        up = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), P)
        ctx.set(dut.acc, pack(acc, ab))
        ctx.set(dut.up, pack(up, wb))
        want = acc + (up << s.bottom_up_shift(k))
        if dut.has_dn:
            wd = s.weight_bits[k]
            dn = rng.integers(-(1 << (wd - 1)), 1 << (wd - 1), P)
            sel = bool(rng.integers(0, 2))
            ctx.set(dut.dn, pack(dn, wd))
            ctx.set(dut.dn_sel, sel)
            if sel:
                want = acc + (dn << s.top_down_shift(k))
                seen["dn"] += 1
        assert unpack(ctx.get(dut.acc_next), ab, P, True) == want.tolist()

    run_comb(dut, check, 60)
    assert seen["dn"] or not dut.has_dn
