"""EP core: the generated Verilog == the twin, on Icarus and on Verilator (cocotb), with random stalls.

Predictions and the states after every phase for inference and training samples, and every
weight and bias after every training step (read back through the weight port), are compared with
``==``. The broad scenario sweep runs in the Amaranth simulator (tests/test_ep_core_amsim.py); this
tier runs a few specs through both real simulators.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden.ep_core import Registers, unpack_memory
from golden.ep_core import random_weights as scaled_weights
from sim.ep_core import Segment, compare_with_twin, run_ep_core
from sim.runner import sim_available
from spec.ep_core import EPCoreSpec

SIMS = [pytest.param(s, marks=pytest.mark.skipif(not sim_available(s), reason=f"{s} not installed"))
        for s in ("icarus", "verilator")]

CASES = {
    "2layer-P4": (dict(layers=(20, 7, 3), lanes=4, weight_bits=(16,), weight_frac=(12,), bias_bits=20), 1.0, True),
    "3layer-P3-odd-one-sided": (dict(layers=(13, 6, 5, 3), lanes=3, weight_bits=(16,), weight_frac=(12,),
                                     bias_bits=20, update_rounding="half_up", activation_rounding="floor"), 1.0, False),
    "narrow-saturating": (dict(layers=(16, 8, 4), lanes=4, weight_bits=(6,), weight_frac=(7,), bias_bits=6,
                               bias_frac=(7,), beta_shift_max=2), 1.5, True),
    # shared randomness (issue 5): the PRNG's random sign and stochastic update rounding; the training
    # segment starts with a reseed through REG_SEED
    "stochastic-random-sign": (dict(layers=(13, 6, 4), lanes=4, weight_bits=(16,), weight_frac=(12,), bias_bits=20,
                                    update_rounding="stochastic", estimator="random-sign", seed=0x1234), 1.0, False),
}


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_verilog_matches_twin(name, simulator):
    kwargs, gain, symmetric = CASES[name]
    spec = EPCoreSpec(**kwargs)
    seed = sum(map(ord, name))
    rng = np.random.default_rng(seed)
    weights = scaled_weights(spec, rng, gain)
    x = rng.integers(0, 1 << spec.input_bits, size=(8, spec.layers[0]))
    y = rng.integers(0, spec.n_classes, size=8)
    beta = 2 if name.startswith("narrow") else 0
    segments = [
        Segment(Registers.from_spec(spec, T1=9, dump=True, beta_shift=beta), x, y),
        Segment(Registers.from_spec(spec, T1=9, T2=4, train=True, dump=True, symmetric=symmetric, beta_shift=beta,
                                    lr_shift=0), x[:5], y[:5], readback_each=True,
                reseed=0x9E3779B9 if spec.uses_prng else None),
        # after training, inference runs on the updated weights (streamed, no dump)
        Segment(Registers.from_spec(spec, T1=9, beta_shift=beta), x, y),
    ]
    result = run_ep_core(spec, weights, segments, simulator, seed=seed, idle_prob=0.3, stall_prob=0.3,
                         timeout_ns=50_000_000)
    rep = compare_with_twin(spec, weights, segments, result, simulator)
    assert rep.mismatches == []
    assert rep.compared["preds"] == 21 and rep.training_steps == 5
    assert rep.compared["weight_arrays"] == 5 * 2 * spec.n_layers
    if spec.estimator == "random-sign":  # both signs of β were drawn (phase 1: +β, phase 2: −β)
        phases = [{b["phase"] for b in sample} for sample in result["segments"][1]["dumps"]]
        assert {0, 1} in phases and {0, 2} in phases, phases


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
def test_weights_baked_into_the_bitstream(simulator):
    """A core built with --weights infers from reset without a load (memories initialised)."""
    spec = EPCoreSpec(layers=(20, 7, 3), lanes=4, training=False)
    rng = np.random.default_rng(5)
    weights = scaled_weights(spec, rng, 1.0)
    x, y = rng.integers(0, 256, size=(6, 20)), rng.integers(0, 3, size=6)
    segments = [Segment(Registers.from_spec(spec, T1=12, dump=True), x, y)]
    result = run_ep_core(spec, weights, segments, simulator, bake_weights=True, readback_initial=True,
                         timeout_ns=20_000_000)
    rep = compare_with_twin(spec, weights, segments, result, simulator)
    assert rep.mismatches == [] and rep.compared["preds"] == 6


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
@pytest.mark.parametrize("baked,style", [(False, "amaranth"), (True, "amaranth"), (False, "netlist")])
def test_ternary_core_with_fault_injection(simulator, baked, style):
    """Ternary core (issue 4): static faults drawn while programming, dynamic faults and nominal-supply
    PCSA reads drawn per read, a reseed — predictions, free states and the memory's counters == twin.
    ``style="netlist"``: the same core written through yosys ``proc`` with multiplexers (sim.runner.verilog_of)."""
    from spec.ep_core import REG_SEED, REG_TCTRL, REG_TRATE_NONZERO, REG_TRATE_ZERO
    from spec.ternary import RATE_MAX, ctrl_value

    spec = EPCoreSpec(layers=(24, 9, 4), lanes=4, weight_kind="ternary", weight_bits=(2,), weight_frac=(3,),
                      training=False, fault_injection=True, beta_shift_max=2, seed=21)
    rng = np.random.default_rng(44)
    weights = {n: (rng.choice([-1, 0, 1], size=sh) if n.startswith("w") else rng.integers(-4, 4, sh))
               for n, sh in spec.weight_shapes().items()}
    x = rng.integers(0, 256, size=(12, 24))
    y = rng.integers(0, 4, size=12)
    segments = [
        Segment(Registers.from_spec(spec, T1=6, dump=True), x[:3], y[:3],
                mem_regs=[(REG_TCTRL, ctrl_value("static")), (REG_TRATE_ZERO, RATE_MAX // 5),
                          (REG_TRATE_NONZERO, RATE_MAX // 6)], program=True),
        Segment(Registers.from_spec(spec, T1=6, dump=True), x[3:7], y[3:7],
                mem_regs=[(REG_TCTRL, ctrl_value("dynamic", "adjacent", "nominal")), (REG_SEED, 0xBEEF)]),
        Segment(Registers.from_spec(spec, T1=5), x[7:], y[7:],  # streamed back to back
                mem_regs=[(REG_TCTRL, ctrl_value("dynamic", "flip")), (REG_TRATE_NONZERO, RATE_MAX // 4)]),
    ]
    result = run_ep_core(spec, weights, segments, simulator, seed=7, idle_prob=0.3, stall_prob=0.3,
                         bake_weights=baked, timeout_ns=50_000_000, verilog_style=style)
    rep = compare_with_twin(spec, weights, segments, result, simulator)
    assert rep.mismatches == []
    assert rep.compared["preds"] == 12
    assert all(seg["mem_counters"][0] > 0 for seg in result["segments"])  # faults were injected each time


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
def test_ternary_core_on_chip_training(simulator):
    """Ternary core with latent weights (issue 4): training under static faults (reprogrammed cells drawn
    anew) and dynamic faults, then inference — predictions, states of every phase, cells, latent weights
    and biases after every update, and the memory's counters == twin, with random stalls."""
    from spec.ep_core import REG_SEED, REG_TCTRL, REG_TRATE_NONZERO, REG_TRATE_ZERO
    from spec.ternary import RATE_MAX, ctrl_value

    spec = EPCoreSpec(layers=(24, 9, 4), lanes=4, weight_kind="ternary", weight_bits=(2,), weight_frac=(3,),
                      training=True, fault_injection=True, beta_shift_max=2, update_rounding="half_up", seed=21)
    rng = np.random.default_rng(45)
    weights = {}
    for n, sh in spec.weight_shapes().items():
        if n.startswith("v"):
            weights[n] = rng.integers(-18, 19, sh)
            weights["w" + n[1:]] = spec.ternarize_latent(int(n[1:]), weights[n])
        elif n.startswith("b"):
            weights[n] = rng.integers(-40, 40, sh)
    x = rng.integers(0, 256, size=(9, 24))
    y = rng.integers(0, 4, size=9)
    tr = {"train": True, "T1": 5, "T2": 3, "lr_shift": 3, "dump": True}
    segments = [
        Segment(Registers.from_spec(spec, **tr), x[:3], y[:3], readback_each=True,
                mem_regs=[(REG_TCTRL, ctrl_value("static")), (REG_TRATE_ZERO, RATE_MAX // 5),
                          (REG_TRATE_NONZERO, RATE_MAX // 6)], program=True),
        Segment(Registers.from_spec(spec, **{**tr, "symmetric": False}), x[3:6], y[3:6], readback_each=True,
                mem_regs=[(REG_TCTRL, ctrl_value("dynamic", "adjacent", "nominal")), (REG_SEED, 0xBEEF)]),
        Segment(Registers.from_spec(spec, T1=5, dump=True), x[6:], y[6:], mem_regs=[(REG_TCTRL, ctrl_value("off"))]),
    ]
    result = run_ep_core(spec, weights, segments, simulator, seed=8, idle_prob=0.3, stall_prob=0.3,
                         timeout_ns=50_000_000)
    rep = compare_with_twin(spec, weights, segments, result, simulator)
    assert rep.mismatches == []
    assert rep.training_steps == 6 and rep.compared["weight_arrays"] == 6 * 6
    first, last = unpack_memory(spec, result["segments"][0]["readbacks"][0]), unpack_memory(
        spec, result["segments"][1]["readbacks"][-1])
    assert (first["v0"] != last["v0"]).any() and (first["w0"] != last["w0"]).any()  # the cells were reprogrammed


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", SIMS)
def test_verilog_with_weight_read_stages_matches_twin(simulator):
    """Weight read stages (EPCore weight_read_stages=2, banks of 4 words: every memory spans several banks)
    in the generated Verilog: inference and training with stalls, weights read back after every step."""
    kwargs, gain, symmetric = CASES["3layer-P3-odd-one-sided"]
    spec = EPCoreSpec(**kwargs)
    rng = np.random.default_rng(14)
    weights = scaled_weights(spec, rng, gain)
    x = rng.integers(0, 1 << spec.input_bits, size=(6, spec.layers[0]))
    y = rng.integers(0, spec.n_classes, size=6)
    segments = [
        Segment(Registers.from_spec(spec, T1=9, dump=True), x, y),
        Segment(Registers.from_spec(spec, T1=9, T2=4, train=True, dump=True, symmetric=symmetric, lr_shift=0),
                x[:4], y[:4], readback_each=True),
    ]
    result = run_ep_core(spec, weights, segments, simulator, seed=14, idle_prob=0.3, stall_prob=0.3,
                         timeout_ns=50_000_000, core_kw={"weight_read_stages": 2, "weight_bank_words": 4})
    rep = compare_with_twin(spec, weights, segments, result, simulator)
    assert rep.mismatches == []
    assert rep.compared["preds"] == 10 and rep.training_steps == 4 and rep.compared["weight_arrays"] > 0
