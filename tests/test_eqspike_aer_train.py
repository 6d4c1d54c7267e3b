"""On-chip training on AER input (issue 13): the twin's :meth:`golden.eqspike.twin.EqSpikeTwin.train_events`
(the input layer's spikes given as address events in every step of every phase) and the RTL
(``REG_CTRL`` AER + train, the label in CTRL bits 8 …) == that twin in the Amaranth simulator: weights after
every sample, free-phase prediction and states, counters, the cycle model; duplicates and addresses of
neurons that do not exist included (docs/eqspike.md, "AER input")."""

from __future__ import annotations

import numpy as np
import pytest

from golden.eqspike.twin import EqSpikeTwin, init_weights
from spec.eqspike import EqSpikeSpec


def pixel_events(rec, spec) -> list[list[int]]:
    """Per step of every phase of a recorded training sample: the input layer's spikes."""
    out = []
    for ph in rec.phases:
        ev = ph.events
        out += [ev[(ev[:, 0] == t) & (ev[:, 1] == 0), 2].tolist() for t in range(ph.steps)]
    return out


@pytest.mark.parametrize("kw", [dict(layers=(16, 8, 4), lanes=4),
                                dict(layers=(13, 7, 5, 3), lanes=3, estimator="one-sided"),
                                dict(layers=(13, 7, 5, 3), lanes=2, encoder="stochastic",
                                     state_rounding="stochastic", encoder_phase="zero")])
def test_twin_train_events_reproduces_pixel_training(kw):
    """train_events fed with the input spikes a pixel training sample makes (all phases) == train_sample:
    weights after every sample, states, traces and counters of every phase."""
    spec = EqSpikeSpec(training=True, T1=6, T2=3, **kw)
    weights = init_weights(spec, seed=3, scale=3.0)
    rng = np.random.default_rng(3)
    a, b = EqSpikeTwin(spec, weights), EqSpikeTwin(spec, weights)
    for _ in range(3):
        x = rng.integers(0, spec.input_scale + 1, size=spec.layers[0])
        y = int(rng.integers(0, spec.layers[-1]))
        ra = a.train_sample(x, y, record_events=True)
        rb = b.train_events(pixel_events(ra, spec), y, record_events=True)
        assert rb.pred == ra.pred and rb.counts() == ra.counts()
        for pa, pb in zip(ra.phases, rb.phases, strict=True):
            assert all(np.array_equal(u, v) for u, v in zip(pa.s, pb.s, strict=True))
            assert all(np.array_equal(u, v) for su, sv in zip(pa.traces, pb.traces, strict=True)
                       for u, v in zip(su, sv, strict=True))
            assert np.array_equal(pa.events, pb.events)
        for k, v in a.weights.items():
            assert np.array_equal(b.weights[k], v), k


def test_twin_train_events_duplicates_and_refusals():
    """A neuron listed twice in a step: its row added twice and 2 spikes (the accumulation), one presynaptic
    spike of the update (== a twin whose weights got that step's change once); bad step counts, addresses
    and labels refused."""
    spec = EqSpikeSpec(layers=(6, 4, 3), lanes=2, training=True, T1=2, T2=1, estimator="one-sided",
                       encoder_phase="zero")
    weights = init_weights(spec, seed=1, scale=3.0)
    steps = [[0, 2], [1], [3, 3, 5]]
    twin = EqSpikeTwin(spec, weights)
    rec = twin.train_events(steps, 1)
    assert rec.phases[0].spikes[0] == 3 and rec.phases[1].spikes[0] == 3
    # the update: rows 3 and 5 (the nudged step's presynaptic spikes) got the same change once, the rows
    # that spiked only in the free phase none
    d = twin.weights["w0"] - weights["w0"]
    assert np.any(d[:, 3] != 0) and np.array_equal(d[:, 3], d[:, 5])
    assert not d[:, [0, 1, 2, 4]].any()
    # the accumulation: the duplicate's row twice (a sample without it differs in the nudged step's states)
    ref = EqSpikeTwin(spec, weights)
    rref = ref.train_events([[0, 2], [1], [3, 5]], 1)
    assert rref.phases[0].spikes == rec.phases[0].spikes and rref.phases[1].spikes[0] == 2
    assert any(not np.array_equal(u, v) for u, v in zip(rref.phases[1].s, rec.phases[1].s, strict=True))
    with pytest.raises(ValueError, match="T1 \\+ T2 = 3 steps"):
        EqSpikeTwin(spec, weights).train_events(steps[:2], 0)
    with pytest.raises(ValueError, match=r"input neurons 0\.\.5"):
        EqSpikeTwin(spec, weights).train_events([[6], [], []], 0)
    with pytest.raises(ValueError, match="label"):
        EqSpikeTwin(spec, weights).train_events(steps, 3)
    inf = EqSpikeSpec(layers=(6, 4, 3), lanes=2, T1=2, training=False)
    with pytest.raises(ValueError, match="training=false"):
        EqSpikeTwin(inf, init_weights(inf)).train_events(steps, 0)
