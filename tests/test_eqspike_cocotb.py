"""EqSpike core: the generated Verilog == the twin, on Icarus and on Verilator (cocotb), with random stalls.

Weights loaded and read back through the weight port; pixel and AER inference (predictions, output
states, spike / synaptic-event / weight-word counters, events for neurons that do not exist counted);
on-chip training with every weight and bias read back as a block (REG_DUMP, ``wdump``) after the load
and every step, element by element (``wcmd``/``wrsp``) after the load and every other step, and the
REG_DIGEST weight digest compared with the twin's (symmetric and one-sided estimators); SEED and T1
register writes; a block read-back with one word changed is reported. The
broad sweep runs in the Amaranth simulator
(tests/test_eqspike_core.py); this tier runs small nets through both real simulators.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from golden.eqspike.twin import EqSpikeTwin, init_weights
from sim.eqspike import Item, compare_with_twin, run_eqspike
from sim.runner import sim_available
from spec.eqspike import EqSpikeSpec

SIMS = [pytest.param(s, marks=pytest.mark.skipif(not sim_available(s), reason=f"{s} not installed"))
        for s in ("icarus", "verilator")]

CASES = {
    "16-8-4-P4-symmetric": dict(layers=(16, 8, 4), lanes=4, lr_shift=(1,)),
    "3layer-P3-one-sided-stochastic": dict(layers=(13, 7, 5, 3), lanes=3, estimator="one-sided", encoder="stochastic",
                                           state_rounding="stochastic", lr_shift=(1,)),
}


def scenario(spec: EqSpikeSpec, seed: int) -> list[Item]:
    rng = np.random.default_rng(seed)
    n0 = spec.layers[0]

    def x():
        return rng.integers(0, spec.input_scale + 1, size=n0)

    def aer(T):
        steps = [sorted(rng.choice(n0, size=int(rng.integers(0, n0 // 2 + 1)), replace=False).tolist())
                 for _ in range(T)]
        return Item("aer", steps=steps, bad=[rng.integers(n0, 1 << 16, size=int(rng.integers(0, 2))).tolist()
                                             for _ in range(T)])

    items = [Item("infer", x()), Item("infer", x(), T=5), aer(spec.T1), aer(6)]
    items += [Item("train", x(), label=int(rng.integers(0, spec.layers[-1])), readback=k % 2 == 0, dump=True,
                   reseed=0x1234ABCD if k == 2 else None,
                   # η registers: every connection, then one value per connection (REG_LR)
                   lr_shift={1: 2, 3: tuple(range(3, 3 + spec.n_layers))}.get(k)) for k in range(4)]
    items += [Item("infer", x()), aer(spec.T1)]  # inference on the trained weights
    return items


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_verilog_matches_twin(name, simulator):
    spec = EqSpikeSpec(**{"training": True, "T1": 8, "T2": 4, **CASES[name]})
    seed = zlib.crc32(name.encode()) % 1000
    weights = init_weights(spec, seed=seed, scale=3.0)
    items = scenario(spec, seed)
    result = run_eqspike(spec, weights, items, simulator, seed=seed, idle_prob=0.3, stall_prob=0.3,
                         timeout_ns=200_000_000, dump_initial=True)
    rep = compare_with_twin(spec, weights, items, result, simulator)
    assert rep.mismatches == []
    # element read-backs after the load and steps 0, 2; block read-backs after the load and every step
    assert rep.training_steps == 4 and rep.compared["weight_arrays"] == (3 + 5) * 2 * spec.n_layers
    assert rep.compared["dumps"] == 5
    assert rep.compared["digests"] == 5  # REG_DIGEST (left by the dump sweep) after the load and every step
    assert result["end"]["AER_BAD"] > 0  # events for neurons that do not exist were sent (and counted)
    # not vacuous: training moved weights (the read-back after the last step differs from the load)
    twin = EqSpikeTwin(spec, weights)
    for it in items:
        if it.kind == "train":
            twin.train_sample(it.x, it.label)
    assert any((twin.weights[k] != weights[k]).any() for k in weights)
    # a mismatch is detected: the twin with one weight changed in the last layer (the output states differ)
    bad = {k: v.copy() for k, v in weights.items()}
    lo, hi = spec.element_range(f"w{spec.n_layers - 1}")
    wl = bad[f"w{spec.n_layers - 1}"]
    wl[:, :] = np.where(wl > 0, lo, hi)
    rep_bad = compare_with_twin(spec, weights, items, result, simulator, twin=EqSpikeTwin(spec, bad))
    assert rep_bad.mismatches != []
    # a block read-back with one word changed (after the last training step, which has no element read-back)
    n_last = max(n for n, it in enumerate(items) if it.kind == "train")
    beats = result["items"][n_last]["dump"]
    beats[len(beats) // 2] ^= 1
    rep_dump = compare_with_twin(spec, weights, items, result, simulator)
    assert any(f"item {n_last} (train): block read-back" in m for m in rep_dump.mismatches), rep_dump.mismatches


TERNARY_CASES = {
    # static adjacent faults while programming (stored cells differ from the written ones), P dividing no layer
    "20-12-5-P4-static-adjacent": (dict(layers=(20, 12, 5), lanes=4, weight_frac=(3, 2)), "adjacent"),
    # three connections (two top-down copies), odd P, no faults
    "24-9-7-4-P3-no-faults": (dict(layers=(24, 9, 7, 4), lanes=3, weight_frac=(1, 1, 1)), None),
}


def ternary_scenario(spec: EqSpikeSpec, seed: int) -> list[Item]:
    rng = np.random.default_rng(seed)
    n0 = spec.layers[0]

    def x():
        return rng.integers(0, spec.input_scale + 1, size=n0)

    def aer(T, **kw):
        steps = [sorted(rng.choice(n0, size=int(rng.integers(0, n0 // 2 + 1)), replace=False).tolist())
                 for _ in range(T)]
        return Item("aer", steps=steps, bad=[rng.integers(n0, 1 << 16, size=int(rng.integers(0, 2))).tolist()
                                             for _ in range(T)], **kw)

    return [Item("infer", x(), readback=True), Item("infer", x(), T=5, dump=True), aer(spec.T1, digest=True),
            aer(6), Item("infer", x(), reseed=0x1234ABCD), Item("infer", x(), readback=True, dump=True)]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
@pytest.mark.parametrize("name", sorted(TERNARY_CASES))
def test_ternary_verilog_matches_twin(name, simulator):
    """weight_kind="ternary": the cells programmed on ``tcmd`` (random idle cycles) after the fault registers
    written through ``REG_TMEM``, the biases on ``wcmd``; the raw cells read on ``tcmd``/``trsp`` (random
    stalls), REG_TMEM's INJECTED / SPEC_ID / READS, predictions, output states, counters, element and block
    read-backs and digests == the ternary twin with the same static faults."""
    from test_eqspike_core_ternary import ternary_weights  # tests/ is on sys.path

    from golden.eqspike.ternary import configure_faults
    from spec.ternary import ctrl_value

    kw, kind = TERNARY_CASES[name]
    spec = EqSpikeSpec(training=False, T1=8, weight_kind="ternary", weight_bits=(2,),
                       fault_injection=kind is not None, **kw)
    seed = zlib.crc32(name.encode()) % 1000
    w = ternary_weights(spec, seed)
    items = ternary_scenario(spec, seed)
    twin, faults = EqSpikeTwin(spec, w), None
    if kind is not None:
        info = configure_faults(twin, w, 0.2, "static", kind, seed=7)
        assert info["injected"] > 0
        faults = (ctrl_value("static", kind), info["rate_zero"], info["rate_nonzero"], 7)
        assert any(not np.array_equal(twin.weights[k], w[k]) for k in w if k.startswith("w"))  # faults stored
    result = run_eqspike(spec, w, items, simulator, seed=seed, idle_prob=0.3, stall_prob=0.3,
                         timeout_ns=200_000_000, dump_initial=True, faults=faults)
    rep = compare_with_twin(spec, w, items, result, simulator, twin=twin)
    assert rep.mismatches == []
    assert rep.samples == len(items) and rep.compared["cells"] == 1
    assert rep.compared["dumps"] == 3 and rep.compared["digests"] == 4
    assert rep.compared["weight_arrays"] == (3 + 3) * 2 * spec.n_layers  # element: load + 2 items, block: 3
    # events for neurons that do not exist (STATUS bit 2); no weight element write refused (bit 3: the
    # load wrote only biases on wcmd)
    assert result["end"]["AER_BAD"] > 0 and result["end"]["STATUS"] == 4
    depth = spec.ternary_memory_spec().depth
    assert len(result["dump_reads"]) == 3 and all(v >= depth for v in result["dump_reads"])
    # not vacuous: the faults changed cells (the fixed twin without them disagrees) and a corrupted twin fails
    if kind is not None:
        rep_clean = compare_with_twin(spec, w, items, result, simulator)
        assert any("cells" in m or "INJECTED" in m for m in rep_clean.mismatches), rep_clean.mismatches
    cells = list(result["cells"])
    result["cells"][0] ^= 0b11
    rep_bad = compare_with_twin(spec, w, items, result, simulator, twin=_replay_twin(spec, w, kind))
    result["cells"] = cells
    assert any("cells read on tcmd" in m for m in rep_bad.mismatches), rep_bad.mismatches


def _replay_twin(spec, w, kind):
    from golden.eqspike.ternary import configure_faults

    twin = EqSpikeTwin(spec, w)
    if kind is not None:
        configure_faults(twin, w, 0.2, "static", kind, seed=7)
    return twin


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
def test_ternary_training_verilog_matches_twin(simulator):
    """A ternary training core (latents v{l}, REPROG after every nudged step; docs/eqspike.md §9) with static
    adjacent faults (p = 0.2, through REG_TMEM before programming): cells on ``tcmd``, biases and latents on
    ``wcmd``; after each of 3 training steps every stored weight, bias and latent read back (element by element
    and as a block), the digest, SPIKES, predictions and output states == the ternary twin; INJECTED at the end
    (the reprogrammed words' faults included) == the twin's; no PCSA read counted (raw reads)."""
    from test_eqspike_core_ternary_train import latent_weights, make_spec  # tests/ is on sys.path

    from golden.eqspike.ternary import configure_faults
    from spec.ternary import ctrl_value

    spec = make_spec("20-12-5-P4", fault_injection=True)
    seed = 31
    w = latent_weights(spec, seed)
    rng = np.random.default_rng(seed)

    def x():
        return rng.integers(0, spec.input_scale + 1, size=spec.layers[0])

    items = [Item("train", x(), label=int(rng.integers(0, spec.layers[-1])), readback=True, dump=True)
             for _ in range(3)] + [Item("infer", x(), digest=True)]
    twin = EqSpikeTwin(spec, w)
    info = configure_faults(twin, w, 0.2, "static", "adjacent", seed=7)
    faults = (ctrl_value("static", "adjacent"), info["rate_zero"], info["rate_nonzero"], 7)
    stored0 = twin.weights
    result = run_eqspike(spec, w, items, simulator, seed=seed, idle_prob=0.3, stall_prob=0.3,
                         timeout_ns=200_000_000, faults=faults)
    rep = compare_with_twin(spec, w, items, result, simulator, twin=twin)
    assert rep.mismatches == []
    assert rep.training_steps == 3 and rep.compared["dumps"] == 3
    assert rep.compared["weight_arrays"] == 4 * 3 * spec.n_layers + 3 * 2 * spec.n_layers  # element: w, b, v
    assert result["tmem_end"]["READS"] == 0 and twin.memory.injected > info["injected"]
    assert any((twin.weights[f"w{l}"] != stored0[f"w{l}"]).any() for l in range(spec.n_layers))  # cells moved
    # not vacuous: the same job against a twin without the faults is reported
    rep_clean = compare_with_twin(spec, w, items, result, simulator)
    assert rep_clean.mismatches, "a twin without the static faults should disagree"
