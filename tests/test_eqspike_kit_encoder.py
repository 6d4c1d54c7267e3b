# amaranth: UnusedElaboratable=no
"""EqSpike part: the encoders of one word (:mod:`hdl.eqspike_kit.encoder`) == the twin's
:func:`golden.eqspike.twin.sigma_delta` / :func:`~golden.eqspike.twin.stochastic_spikes`: random words of
every layer (the last word's padding lanes never spike), sigma-delta and stochastic; combinational
(checked in the instant the inputs change)."""

from __future__ import annotations

import numpy as np
import pytest
from eqspike_kit_util import pack, run_comb, unpack  # noqa: I001  (tests/ is on sys.path)

from golden.eqspike.twin import sigma_delta, stochastic_spikes
from hdl.eqspike_kit.encoder import Encoders
from spec.eqspike import EqSpikeSpec

SPECS = {"sigma-delta": dict(layers=(13, 7, 5), lanes=3),
         "stochastic": dict(layers=(13, 7, 5), lanes=4, encoder="stochastic", encoder_phase="zero")}


@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_encoders_match_the_twin(name, layer):
    s = EqSpikeSpec(training=False, T1=4, **SPECS[name])
    P = s.lanes
    rng = np.random.default_rng(layer)
    dut = Encoders(s, layer)
    M, rb, T = s.full_scale(layer), s.residue_bits(layer), s.tiles(layer)
    vb = s.input_bits if layer == 0 else s.state_bits
    seen = {"spikes": 0, "padding": 0}

    def check(ctx):
        word = int(rng.integers(0, T))
        v = rng.integers(0, M + 1, P)
        phi = rng.integers(-(M // 2), M // 2 + 1, P)
        ctx.set(dut.v, pack(v, vb))
        ctx.set(dut.phi, pack(phi, rb))
        ctx.set(dut.word, word)
        valid = np.arange(P) + word * P < s.layers[layer]
        if s.encoder == "stochastic":
            words = rng.integers(0, 1 << 32, P, dtype=np.uint64).astype(np.int64)
            ctx.set(dut.rnd, pack(words, 32))
            spk, nphi = stochastic_spikes(v, words, M, s.encoder_bits(layer)), phi
        else:
            spk, nphi = sigma_delta(phi, v, M)
        seen["padding"] += int((spk & ~valid).sum())
        spk = spk & valid
        assert unpack(ctx.get(dut.mask), 1, P, False) == spk.astype(int).tolist()
        assert unpack(ctx.get(dut.phi_next), rb, P, True) == nphi.tolist()
        seen["spikes"] += int(spk.sum())

    run_comb(dut, check, 60)
    assert seen["spikes"] > 0 and seen["padding"] > 0  # not vacuous: spikes, and padding lanes masked
