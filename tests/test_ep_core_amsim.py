"""EP core RTL == twin in the Amaranth simulator (the fast tier): states after every phase,
predictions, and all weights and biases after every training step, with and without random stalls."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.ep_core import EPCoreTwin, Registers, unpack_memory
from golden.ep_core import random_weights as scaled_weights
from hdl.ep_core import EPCore
from hdl.ep_core_host import AmaranthHost, dump_to_states
from spec.ep_core import REG_CYCLES, REG_SAMPLES, REG_SPEC_ID, REG_STATUS, EPCoreSpec


def run_rtl(spec, weights, xs, ys, regs_inf, regs_tr, n_inf, n_train, *, seed=0, idle=0.0, stall=0.0):
    dut = EPCore(spec)
    twin = EPCoreTwin(spec, weights)
    res: dict = {}

    async def bench(ctx):
        host = AmaranthHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        res["spec_id"] = await host.read_reg(ctx, REG_SPEC_ID)
        await host.load_words(ctx, twin.memory_words())
        res["readback"] = await host.read_words(ctx)
        await host.set_regs(ctx, regs_inf)
        res["inf"] = []
        for i in range(n_inf):
            await host.send_sample(ctx, xs[i].tolist(), int(ys[i]))
            d = await host.recv_dump(ctx) if regs_inf.dump else None
            res["inf"].append((await host.recv_pred(ctx), d))
        res["cycles_inf"] = await host.read_reg(ctx, REG_CYCLES)
        await host.set_regs(ctx, regs_tr)
        res["train"] = []
        for i in range(n_train):
            await host.send_sample(ctx, xs[i].tolist(), int(ys[i]))
            dumps = [await host.recv_dump(ctx) for _ in range(3 if regs_tr.symmetric else 2)]
            pred = await host.recv_pred(ctx)
            res["train"].append((pred, dumps, await host.read_words(ctx)))
        res["samples"] = await host.read_reg(ctx, REG_SAMPLES)
        res["status"] = await host.read_reg(ctx, REG_STATUS)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res


def check_against_twin(spec, weights, n_inf=2, n_train=3, *, symmetric=True, seed=0, idle=0.0, stall=0.0,
                       T1=7, T2=3, beta_shift=0, lr_shift=0):
    """Run the RTL and the twin side by side; return counts that show the check was not vacuous."""
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, 1 << spec.input_bits, size=(max(n_inf, n_train), spec.layers[0]))
    ys = rng.integers(0, spec.n_classes, size=len(xs))
    regs_inf = Registers.from_spec(spec, T1=T1, dump=True, beta_shift=beta_shift, lr_shift=lr_shift)
    regs_tr = Registers.from_spec(spec, T1=T1, T2=T2, train=True, dump=True, symmetric=symmetric,
                                  beta_shift=beta_shift, lr_shift=lr_shift)
    res = run_rtl(spec, weights, xs, ys, regs_inf, regs_tr, n_inf, n_train, seed=seed, idle=idle, stall=stall)
    twin = EPCoreTwin(spec, weights)
    start = {k: v.copy() for k, v in twin.weights.items()}
    assert res["spec_id"] == spec.spec_id
    assert res["readback"] == twin.memory_words()
    preds, free = twin.infer(xs[:n_inf], regs_inf)
    for i, (pred, dump) in enumerate(res["inf"]):
        assert pred == preds[i], f"inference sample {i}: prediction {pred} != twin {preds[i]}"
        assert dump["phase"] == 0
        assert dump_to_states(spec, dump) == [f[i].tolist() for f in free], f"inference sample {i}: free states"
    stats = {"nonzero_states": sum(int((f != 0).sum()) for f in free),
             "clipped_states": sum(int(((f == 0) | (f == (1 << spec.state_bits) - 1)).sum()) for f in free),
             "weight_changes": 0}
    for i, (pred, dumps, words) in enumerate(res["train"]):
        before = {k: v.copy() for k, v in twin.weights.items()}
        rec = twin.train_sample(xs[i], int(ys[i]), regs_tr)
        assert pred == rec.pred, f"training sample {i}: prediction"
        for j, dump in enumerate(dumps):
            assert dump["phase"] == j
            assert dump_to_states(spec, dump) == [s[0].tolist() for s in rec.phases[j]], \
                f"training sample {i}: states after phase {j}"
        got = unpack_memory(spec, words)
        for k in got:
            assert np.array_equal(got[k], twin.weights[k]), f"training sample {i}: {k} after the update"
        stats["weight_changes"] += sum(int((twin.weights[k] != before[k]).sum()) for k in before)
    stats["saturated_weights"] = sum(int(((twin.weights[k] == spec.element_range(k)[0])
                                          | (twin.weights[k] == spec.element_range(k)[1])).sum()) for k in start)
    assert res["samples"] == n_inf + n_train and res["status"] == 0
    assert res["cycles_inf"] > 0
    return stats


TRAIN_FMT = dict(weight_bits=(16,), weight_frac=(12,), bias_bits=20, bias_frac=(12,))

CASES = {
    # name: (spec kwargs, gain)
    "2layer-P4": (dict(layers=(20, 7, 3), lanes=4, **TRAIN_FMT), 1.0),
    "3layer-P3-odd": (dict(layers=(13, 6, 5, 3), lanes=3, **TRAIN_FMT, update_rounding="half_up"), 1.0),
    "4layer-P2": (dict(layers=(9, 11, 4, 2, 5), lanes=2, **TRAIN_FMT, activation_rounding="floor"), 1.0),
    "P-wider-than-layers": (dict(layers=(5, 3, 2), lanes=8, **TRAIN_FMT), 1.0),
    "P1": (dict(layers=(6, 4, 3), lanes=1, **TRAIN_FMT), 1.0),
    "mixed-widths": (dict(layers=(11, 9, 4), lanes=4, weight_bits=(12, 16), weight_frac=(9, 10), bias_bits=14,
                          beta_shift_max=2, bias_frac=(8, 10), input_bits=6, state_bits=7), 1.0),
    # 6-bit weights/biases with large updates: the update's saturation and the clip of ρ both act
    "saturating": (dict(layers=(16, 8, 4), lanes=4, weight_bits=(6,), weight_frac=(7,), bias_bits=6,
                        bias_frac=(7,), beta_shift_max=2), 1.5),
}


@pytest.mark.parametrize("stalls", [False, True], ids=["no-stalls", "random-stalls"])
@pytest.mark.parametrize("symmetric", [True, False], ids=["symmetric", "one-sided"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rtl_matches_twin(name, symmetric, stalls):
    kwargs, gain = CASES[name]
    spec = EPCoreSpec(**kwargs)
    seed = abs(hash((name, symmetric, stalls))) % 1000
    weights = scaled_weights(spec, np.random.default_rng(seed), gain)
    stats = check_against_twin(spec, weights, symmetric=symmetric, seed=seed,
                               idle=0.3 if stalls else 0.0, stall=0.3 if stalls else 0.0,
                               beta_shift=0 if name != "saturating" else 2, lr_shift=0)
    assert stats["nonzero_states"] > 0
    if name == "saturating":
        assert stats["clipped_states"] > 0 and stats["saturated_weights"] > 0
    else:
        assert stats["weight_changes"] > 5, stats  # the weight comparison is not vacuous


def test_inference_only_core_matches_twin():
    spec = EPCoreSpec(layers=(20, 7, 3), lanes=4, training=False)
    rng = np.random.default_rng(3)
    weights = scaled_weights(spec, rng, 1.0)
    xs = rng.integers(0, 256, size=(4, 20))
    ys = rng.integers(0, 3, size=4)
    regs = Registers.from_spec(spec, T1=9, dump=True)
    res = run_rtl(spec, weights, xs, ys, regs, Registers.from_spec(spec), 4, 0)
    twin = EPCoreTwin(spec, weights)
    preds, free = twin.infer(xs, regs)
    assert [p for p, _ in res["inf"]] == preds.tolist()
    for i, (_, dump) in enumerate(res["inf"]):
        assert dump_to_states(spec, dump) == [f[i].tolist() for f in free]


def test_cycles_match_the_schedule():
    """The cycle counter reports the sample's compute latency, close to the issued micro-ops."""
    spec = EPCoreSpec(layers=(32, 16, 4), lanes=4)
    rng = np.random.default_rng(0)
    weights = scaled_weights(spec, rng, 1.0)
    xs, ys = rng.integers(0, 256, size=(1, 32)), np.array([1])
    regs = Registers.from_spec(spec, T1=10)
    res = run_rtl(spec, weights, xs, ys, regs, Registers.from_spec(spec), 1, 0)
    ops = spec.layers[1] * spec.tiles(0) + 10 * (2 * spec.layers[2] * spec.tiles(1))
    assert ops <= res["cycles_inf"] <= ops + 10 * 14 + 30, (res["cycles_inf"], ops)
