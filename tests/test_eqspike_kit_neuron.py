# amaranth: UnusedElaboratable=no
"""EqSpike part: the state update of one word (:mod:`hdl.eqspike_kit.neuron`) == step 2 of the twin's
:meth:`golden.eqspike.twin.EqSpikeTwin._step` after the accumulation (``s ← clip(s + shift_round(acc +
b·2^bs − s·2^ls [+ σ·(y − s)·2^ns], ss), 0, one)``): random accumulators within the layer's bound, states,
biases, every rounding (stochastic with random words), the output layer's ±β nudge of a training core;
combinational (checked in the instant the inputs change)."""

from __future__ import annotations

import numpy as np
import pytest
from eqspike_kit_util import pack, run_comb, unpack  # noqa: I001  (tests/ is on sys.path)

from golden.fixed import shift_round
from hdl.eqspike_kit.neuron import NeuronUpdate
from spec.eqspike import EqSpikeSpec

SPECS = {"half_up": dict(), "floor": dict(state_rounding="floor"),
         "stochastic": dict(state_rounding="stochastic", encoder_phase="zero"),
         "training": dict(training=True), "training-stochastic": dict(training=True, state_rounding="stochastic")}


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_neuron_update_matches_the_twin(name, k):
    s = EqSpikeSpec(layers=(9, 7, 5), lanes=3, **{"training": False, **SPECS[name]})
    dut = NeuronUpdate(s, k)
    P, one, bound = s.lanes, s.state_one, s.acc_bound(k)
    blo, bhi = s.element_range(f"b{k - 1}")
    rng = np.random.default_rng(k)
    seen = {"clip0": 0, "clip1": 0, "nudged": 0}

    def check(ctx):
        acc = rng.integers(-bound, bound + 1, P) >> int(rng.integers(0, 8))
        st = rng.integers(0, one + 1, P)
        b = rng.integers(blo, bhi + 1, P)
        ctx.set(dut.acc, pack(acc, s.acc_bits(k)))
        ctx.set(dut.s, pack(st, s.state_bits))
        ctx.set(dut.b, pack(b, s.bias_bits))
        tot = acc + (b << s.bias_shift(k)) - (st << s.leak_shift(k))
        words = None
        if s.state_rounding == "stochastic":
            words = rng.integers(0, 1 << 32, P, dtype=np.uint64).astype(np.int64)
            ctx.set(dut.rnd, pack(words, 32))
        if dut.nudge:
            word, label = int(rng.integers(0, s.tiles(k))), int(rng.integers(0, s.layers[k]))
            nudged, neg = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
            for port, v in ((dut.word, word), (dut.label, label), (dut.nudged, nudged), (dut.neg, neg)):
                ctx.set(port, v)
            y = (np.arange(P) + word * P == label).astype(np.int64)
            if nudged:
                tot = tot + (-1 if neg else 1) * ((y * one - st) << s.nudge_shift)
                seen["nudged"] += 1
        new = np.clip(st + shift_round(tot, s.state_shift(k), s.state_rounding, words), 0, one)
        assert unpack(ctx.get(dut.s_next), s.state_bits, P, False) == new.tolist()
        seen["clip0"] += int((new == 0).sum())
        seen["clip1"] += int((new == one).sum())

    run_comb(dut, check, 80)
    assert seen["clip0"] and seen["clip1"]  # not vacuous: both saturation bounds reached
    assert seen["nudged"] or not dut.nudge
