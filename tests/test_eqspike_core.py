"""EqSpike core RTL (hdl/eqspike.py) == the twin (golden/eqspike/twin.py) in the Amaranth simulator:
predictions, output states, spike / synaptic-event / weight-word counters per sample, with and without
random stalls on every stream; weights written and read back through the weight port; a twin with one
weight changed is told apart."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.eqspike.twin import EqSpikeTwin, init_weights
from hdl.eqspike import (
    REG_AER_BAD,
    REG_CTRL,
    REG_CYCLES,
    REG_SAMPLES,
    REG_SPEC_ID,
    REG_SPIKES,
    REG_STATUS,
    REG_SYN,
    REG_T1,
    REG_WORDS,
    STATUS_REG_ERROR,
    STATUS_WCMD_ERROR,
    EqSpikeCore,
    round_shift,
)
from hdl.eqspike_host import EqSpikeHost
from spec.eqspike import EqSpikeSpec
from spec.fixed import ROUNDINGS

CASES = {
    # the spec's default options (sigma-delta, random initial residues, half_up) on a small net
    "16-8-4-P4": dict(layers=(16, 8, 4), lanes=4),
    "3layer-P3-odd": dict(layers=(13, 7, 5, 3), lanes=3),
    "4layer-floor-zero": dict(layers=(9, 5, 6, 4, 3), lanes=4, state_rounding="floor", encoder_phase="zero"),
    "stochastic-P2": dict(layers=(13, 7, 5, 3), lanes=2, encoder="stochastic", state_rounding="stochastic",
                          encoder_phase="zero"),
    "P-wider-than-layers": dict(layers=(6, 5, 3), lanes=8, weight_bits=(10,), weight_frac=(8,), bias_bits=10),
}


def make_spec(name: str, **kw) -> EqSpikeSpec:
    return EqSpikeSpec(**{"training": False, "T1": 8, **CASES[name], **kw})


def words_read(spec: EqSpikeSpec, spikes: list[int]) -> int:
    """Weight words the event engine reads for a sample with these spikes per layer (the roofline)."""
    L = spec.n_layers
    return sum(n * ((spec.tiles(l + 1) if l < L else 0) + (spec.tiles(l - 1) if l >= 2 else 0))
               for l, n in enumerate(spikes))


def sweep_cycles(spec: EqSpikeSpec, T: int) -> int:
    """Cycles of an inference sample beyond its weight words (docs/eqspike.md, cycle model): per step ENC over
    layers 0..L and UPD over layers 1..L, one word per cycle, + 4 pass changes; per sample INIT over layers
    0..L and the output scan (tiles(L) + 1)."""
    L = spec.n_layers
    t_all = sum(spec.tiles(k) for k in range(L + 1))
    return T * (t_all + (t_all - spec.tiles(0)) + 4) + t_all + spec.tiles(L) + 1


async def infer_with_counters(host, ctx, x) -> dict:
    """One pixel sample through the core: its prediction and output states, then the sample's counters."""
    await host.send_pixels(ctx, x.tolist())
    pred, states = await host.recv_result(ctx)
    counters = (("cycles", REG_CYCLES), ("spikes", REG_SPIKES), ("words", REG_WORDS), ("syn", REG_SYN))
    return {"pred": pred, "states": states, **{k: await host.read_reg(ctx, a) for k, a in counters}}


def infer_all(dut, make_host, xs) -> list:
    """(prediction, output states) of every sample of ``xs``, sent through ``make_host(dut)``."""
    got: list = []

    async def bench(ctx):
        host = make_host(dut)
        for x in xs:
            await host.send_pixels(ctx, x.tolist())
            got.append(await host.recv_result(ctx))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


def run_rtl(spec, weights, xs, *, seed=0, idle=0.0, stall=0.0, T1=None, readback=False):
    dut = EqSpikeCore(spec)
    res: dict = {"samples": []}

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        res["spec_id"] = await host.read_reg(ctx, REG_SPEC_ID)
        await host.load_weights(ctx, weights)
        if readback:
            res["readback"] = await host.read_weights(ctx)
        if T1 is not None:
            await host.write_reg(ctx, REG_T1, T1)
        for x in xs:
            res["samples"].append(await infer_with_counters(host, ctx, x))
        res["n"] = await host.read_reg(ctx, REG_SAMPLES)
        res["status"] = await host.read_reg(ctx, REG_STATUS)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res


def mismatches(spec, twin, xs, res, T=None) -> list[str]:
    out = []
    for n, (x, got) in enumerate(zip(xs, res["samples"], strict=True)):
        rec = twin.infer(x, T=T)
        ph = rec.phases[0]
        want = {"pred": rec.pred, "states": ph.s[-1][0].tolist(), "spikes": sum(ph.spikes),
                "syn": ph.synaptic_events, "words": words_read(spec, ph.spikes)}
        for k, v in want.items():
            if got[k] != v:
                out.append(f"sample {n}: {k} {got[k]} != twin {v}")
    return out


def sample_inputs(spec, n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, spec.input_scale + 1, size=(n, spec.layers[0]))


@pytest.mark.parametrize("stalls", [False, True], ids=["no-stalls", "random-stalls"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rtl_matches_twin(name, stalls):
    spec = make_spec(name)
    seed = zlib.crc32(f"{name}/{stalls}".encode()) % 1000
    weights = init_weights(spec, seed=seed, scale=3.0)
    xs = sample_inputs(spec, 8, seed)
    res = run_rtl(spec, weights, xs, seed=seed, idle=0.3 if stalls else 0.0, stall=0.3 if stalls else 0.0)
    twin = EqSpikeTwin(spec, weights)
    assert res["spec_id"] == spec.spec_id
    assert mismatches(spec, twin, xs, res) == []
    assert res["n"] == len(xs) and res["status"] == 0
    # not vacuous: the output states differ between samples and from 0, and spikes flowed through every layer
    states = np.array([r["states"] for r in res["samples"]])
    assert (states != 0).any() and len({tuple(r) for r in states}) > 1
    for r in res["samples"]:
        # the cycle model of docs/eqspike.md: the roofline (one weight word per event and target word) plus
        # the per-step word sweeps, exactly (stalls on the streams do not count)
        assert r["cycles"] == r["words"] + sweep_cycles(spec, spec.T1)


def test_t1_register_and_weight_readback():
    spec = make_spec("3layer-P3-odd")
    weights = init_weights(spec, seed=5, scale=3.0)
    xs = sample_inputs(spec, 3, 5)
    res = run_rtl(spec, weights, xs, T1=5, readback=True)
    for k, v in weights.items():
        assert np.array_equal(res["readback"][k], v), k
    assert mismatches(spec, EqSpikeTwin(spec, weights), xs, res, T=5) == []


def test_a_broken_core_is_caught():
    """Compare the RTL against a twin with one weight changed: the comparison must report a mismatch."""
    spec = make_spec("16-8-4-P4")
    weights = init_weights(spec, seed=3, scale=3.0)
    xs = sample_inputs(spec, 4, 3)
    res = run_rtl(spec, weights, xs)
    assert mismatches(spec, EqSpikeTwin(spec, weights), xs, res) == []
    # the hidden neuron that spikes most, its weight to output 0 flipped to the other extreme
    ev = EqSpikeTwin(spec, weights).infer(xs[0], record_events=True).phases[0].events
    hidden = ev[ev[:, 1] == 1, 2]
    j = int(np.bincount(hidden).argmax())
    bad = {k: v.copy() for k, v in weights.items()}
    lo, hi = spec.element_range("w1")
    bad["w1"][0, j] = lo if bad["w1"][0, j] > 0 else hi
    assert mismatches(spec, EqSpikeTwin(spec, bad), xs, res) != []


def test_bad_commands_are_flagged_not_written():
    spec = make_spec("16-8-4-P4")
    weights = init_weights(spec, seed=4, scale=3.0)
    dut = EqSpikeCore(spec)
    got = {}

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=1)
        await host.load_weights(ctx, weights)
        got["status0"] = await host.read_reg(ctx, REG_STATUS)
        # w0 row 8 does not exist (layer 1 has 8 neurons); lane beyond P via a raw command; bias with j != 0
        await host.write_element(ctx, 0, 8, 0, 5)
        got["status1"] = await host.read_reg(ctx, REG_STATUS)
        await host.write_reg(ctx, REG_STATUS, 0)
        await host.write_element(ctx, 2, 1, 3, 5)  # b0[1] with j = 3
        got["read_bad"] = await host.read_element(ctx, 0, 9, 0)
        got["status2"] = await host.read_reg(ctx, REG_STATUS)
        await host.write_reg(ctx, REG_T1, 0)  # refused: T1 must be >= 1
        await host.write_reg(ctx, REG_CTRL, 4)  # refused: only bits 0 and 1 exist
        await host.write_reg(ctx, REG_CTRL, 2)  # refused: train on an inference-only core
        await host.write_reg(ctx, REG_AER_BAD, 1)  # read-only
        got["status3"] = await host.read_reg(ctx, REG_STATUS)
        got["T1"] = await host.read_reg(ctx, REG_T1)
        got["ctrl"] = await host.read_reg(ctx, REG_CTRL)
        got["weights"] = await host.read_weights(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got["status0"] == 0
    assert got["status1"] == STATUS_WCMD_ERROR
    assert got["status2"] == STATUS_WCMD_ERROR and got["read_bad"] == 0
    assert got["status3"] == STATUS_WCMD_ERROR | STATUS_REG_ERROR
    assert got["T1"] == spec.T1 and got["ctrl"] == 0
    for k, v in weights.items():
        assert np.array_equal(got["weights"][k], v), k


@pytest.mark.parametrize("mode", ROUNDINGS)
def test_round_shift_matches_the_twin(mode):
    """hdl.eqspike.round_shift == golden.fixed.shift_round for every mode of spec.fixed.ROUNDINGS, exhaustively
    over 8-bit signed x, shifts 0..4 and 4-bit random words."""
    from amaranth.hdl import Module, Signal, signed

    from golden.fixed import shift_round

    m = Module()
    x, r = Signal(signed(8)), Signal(4)
    outs = []
    for shift in range(5):
        v = round_shift(x, shift, mode, r)
        o = Signal(v.shape(), name=f"o{shift}")
        m.d.comb += o.eq(v)
        outs.append(o)
    xs = np.arange(-128, 128)
    got = np.zeros((5, 16, len(xs)), np.int64)

    async def tb(ctx):
        for ri in range(16):
            ctx.set(r, ri)
            for n, xv in enumerate(xs):
                ctx.set(x, int(xv))
                for shift in range(5):
                    got[shift, ri, n] = ctx.get(outs[shift])

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    for shift in range(5):
        for ri in range(16):
            want = shift_round(xs, shift, mode, np.full_like(xs, ri))
            assert got[shift, ri].tolist() == want.tolist(), (mode, shift, ri)


TRAIN_CASES = {
    # name: spec kwargs (training=True); lr_shift small so that a few samples change many weights
    "16-8-4-P4-symmetric": dict(layers=(16, 8, 4), lanes=4, lr_shift=(1,)),
    "16-8-4-P4-one-sided": dict(layers=(16, 8, 4), lanes=4, lr_shift=(1,), estimator="one-sided"),
    "3layer-P3-symmetric": dict(layers=(13, 7, 5, 3), lanes=3, lr_shift=(2, 1, 1)),
    "4layer-P2-one-sided-floor": dict(layers=(9, 5, 6, 4, 3), lanes=2, estimator="one-sided", update_rounding="floor",
                                      trace_stages=1, encoder_phase="zero"),
    "stochastic-saturating": dict(layers=(13, 7, 5, 3), lanes=4, encoder="stochastic", state_rounding="stochastic",
                                  weight_bits=(6,), weight_frac=(5,), bias_bits=6, bias_frac=(5,), lr_shift=(0,),
                                  trace_frac=8, update_theta=10),
}


def run_training(spec, weights, xs, ys, *, seed=0, idle=0.0, stall=0.0):
    from hdl.eqspike import CTRL_TRAIN

    dut = EqSpikeCore(spec)
    res: list = []

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        await host.load_weights(ctx, weights)
        await host.write_reg(ctx, REG_CTRL, CTRL_TRAIN)
        for x, y in zip(xs, ys, strict=True):
            await host.send_pixels(ctx, x.tolist(), int(y))
            pred, states = await host.recv_result(ctx)
            res.append((pred, states, await host.read_reg(ctx, REG_SPIKES), await host.read_weights(ctx)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res


@pytest.mark.parametrize("name,stalls", [(n, False) for n in sorted(TRAIN_CASES)]
                         + [("3layer-P3-symmetric", True), ("stochastic-saturating", True)])
def test_on_chip_learning_matches_twin(name, stalls):
    """After every training sample all weights and biases read back == the twin's; free-phase prediction and
    output states and the sample's spikes (all phases) == the twin's."""
    spec = EqSpikeSpec(**{"training": True, "T1": 8, "T2": 4, **TRAIN_CASES[name]})
    seed = zlib.crc32(f"train/{name}/{stalls}".encode()) % 1000
    weights = init_weights(spec, seed=seed, scale=3.0)
    n = 4
    xs = sample_inputs(spec, n, seed)
    ys = np.random.default_rng(seed).integers(0, spec.layers[-1], size=n)
    res = run_training(spec, weights, xs, ys, seed=seed, idle=0.2 if stalls else 0.0, stall=0.2 if stalls else 0.0)
    twin = EqSpikeTwin(spec, weights)
    changed = saturated = 0
    for i, (pred, states, spikes, got) in enumerate(res):
        before = twin.weights
        rec = twin.train_sample(xs[i], int(ys[i]))
        assert pred == rec.pred, f"sample {i}: prediction"
        assert states == rec.phases[0].s[-1][0].tolist(), f"sample {i}: free-phase output states"
        assert spikes == sum(sum(p.spikes) for p in rec.phases), f"sample {i}: spikes"
        for k, v in twin.weights.items():
            assert np.array_equal(got[k], v), f"sample {i}: {k} after the update"
            changed += int((v != before[k]).sum())
            lo, hi = spec.element_range(k)
            saturated += int(((v == lo) | (v == hi)).sum())
    assert changed > 10  # not vacuous: the updates moved many weights (and the check compares them all)
    if name == "stochastic-saturating":
        assert saturated > 0


def test_twin_infer_events_reproduces_pixel_inference():
    """The twin's AER entry point fed with the input spikes a pixel sample makes == the pixel sample."""
    for name in ("16-8-4-P4", "stochastic-P2"):
        spec = make_spec(name)
        weights = init_weights(spec, seed=7, scale=3.0)
        xs = sample_inputs(spec, 3, 7)
        a, b = EqSpikeTwin(spec, weights), EqSpikeTwin(spec, weights)
        for x in xs:
            ra = a.infer(x, record_events=True)
            ev = ra.phases[0].events
            steps = [ev[(ev[:, 0] == t) & (ev[:, 1] == 0), 2].tolist() for t in range(spec.T1)]
            rb = b.infer_events(steps)
            assert rb.pred == ra.pred and rb.phases[0].s[-1].tolist() == ra.phases[0].s[-1].tolist()
            assert rb.phases[0].spikes == ra.phases[0].spikes
    spec16 = make_spec("16-8-4-P4")
    twin16 = EqSpikeTwin(spec16, init_weights(spec16))
    with pytest.raises(ValueError, match=r"input neurons 0\.\.15"):
        twin16.infer_events([[16]])
    with pytest.raises(ValueError, match="more than once"):
        twin16.infer_events([[1, 1]])


@pytest.mark.parametrize("name,stalls", [("16-8-4-P4", False), ("3layer-P3-odd", True), ("stochastic-P2", True)])
def test_aer_input_matches_twin(name, stalls):
    """Samples as address events: per step a list of input-neuron addresses and an end-of-step beat. Events for
    neurons that do not exist are flagged (STATUS bit 2) and counted (REG_AER_BAD), never used."""
    from hdl.eqspike import CTRL_AER, STATUS_AER_ERROR

    spec = make_spec(name)
    seed = zlib.crc32(f"aer/{name}".encode()) % 1000
    rng = np.random.default_rng(seed)
    weights = init_weights(spec, seed=seed, scale=3.0)
    n0, T = spec.layers[0], spec.T1
    samples, bad_total = [], 0
    for _ in range(5):
        steps, sent = [], []
        for _t in range(T):
            good = rng.choice(n0, size=int(rng.integers(0, n0 // 2 + 1)), replace=False).tolist()
            bad = rng.integers(n0, 1 << 16, size=int(rng.integers(0, 2))).tolist()
            mixed = good + bad
            rng.shuffle(mixed)
            steps.append(good)
            sent.append(mixed)
            bad_total += len(bad)
        samples.append((steps, sent))
    dut = EqSpikeCore(spec)
    res: list = []
    regs: dict = {}

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=seed, idle_prob=0.3 if stalls else 0.0, stall_prob=0.3 if stalls else 0.0)
        await host.load_weights(ctx, weights)
        await host.write_reg(ctx, REG_CTRL, CTRL_AER)
        for _steps, sent in samples:
            await host.send_events(ctx, sent)
            pred, states = await host.recv_result(ctx)
            res.append((pred, states, await host.read_reg(ctx, REG_SPIKES), await host.read_reg(ctx, REG_SYN)))
        regs["status"] = await host.read_reg(ctx, REG_STATUS)
        regs["bad"] = await host.read_reg(ctx, REG_AER_BAD)
        await host.write_reg(ctx, REG_STATUS, 0)
        regs["status_after"] = await host.read_reg(ctx, REG_STATUS)
        regs["bad_after"] = await host.read_reg(ctx, REG_AER_BAD)
        regs["weights"] = await host.read_weights(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    twin = EqSpikeTwin(spec, weights)
    for i, ((steps, _sent), (pred, states, spikes, syn)) in enumerate(zip(samples, res, strict=True)):
        rec = twin.infer_events(steps)
        assert pred == rec.pred, f"sample {i}: prediction"
        assert states == rec.phases[0].s[-1][0].tolist(), f"sample {i}: output states"
        assert spikes == sum(rec.phases[0].spikes) and syn == rec.phases[0].synaptic_events, f"sample {i}: counters"
    assert bad_total > 0 and regs["bad"] == bad_total
    assert regs["status"] & STATUS_AER_ERROR and regs["status_after"] == 0 and regs["bad_after"] == 0
    for k, v in weights.items():  # nothing was written out of range (or anywhere)
        assert np.array_equal(regs["weights"][k], v), k


def signal_products(verilog_text: str) -> list[str]:
    """Lines of generated Verilog that multiply two non-constant operands (as tests/test_ternary_core.py checks)."""
    import re

    const = re.compile(r"^\d+'[hdb][0-9a-fA-F]+$")
    out = []
    for line in verilog_text.splitlines():
        if " * " in line and "=" in line:
            a, b = (x.strip() for x in line.split("=", 1)[1].rstrip(";").split(" * ", 1))
            if not (const.match(a) or const.match(b)):
                out.append(line.strip())
    return out


def test_hdl_build_eqspike(tmp_path):
    """python -m hdl.build eqspike writes the Verilog and a manifest; no multipliers (inference, or training with
    stochastic options); a weight image initialises the memories (the core then infers == twin without a load);
    an image of another spec is refused."""
    import json

    from amaranth.back import verilog

    from golden.eqspike.image import write_image
    from hdl.build import load_build_manifest, main

    spec = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=True, T1=8, T2=4)
    (tmp_path / "spec.toml").write_text(spec.to_toml())
    weights = init_weights(spec, seed=2, scale=3.0)
    write_image(tmp_path / "img", spec, weights)
    assert main(["eqspike", "--spec", str(tmp_path / "spec.toml"), "--weights", str(tmp_path / "img"),
                 "--out", str(tmp_path / "build")]) == 0
    m = load_build_manifest(tmp_path / "build")
    assert m["design"] == "eqspike" and m["spec_digest"] == spec.digest() and "weights" in m["inputs"]
    text = (tmp_path / "build" / "eqspike_core.v").read_text()
    assert "module eqspike_core" in text and signal_products(text) == []
    assert m["roofline"]["words_per_spike"] == {"0": 2, "1": 1, "2": 2}
    # the fixed kind's memories; no ternary section or tcmd payload (tests/test_eqspike_core_ternary.py: ternary)
    assert set(m["weight_memories"]) == {"wup0", "wup1", "wdn1"} and "ternary" not in m and "tcmd" not in m["payloads"]
    assert json.loads((tmp_path / "build" / "manifest.json").read_text())["registers"]["REG_AER_BAD"] == REG_AER_BAD
    stoch = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=True, encoder="stochastic", state_rounding="stochastic")
    assert signal_products(verilog.convert(EqSpikeCore(stoch), name="x", emit_src=False)) == []
    # the detector finds a multiplier when there is one (the fixed-point EP core has P of them)
    from hdl.ep_core import EPCore
    from spec.ep_core import EPCoreSpec

    assert len(signal_products(verilog.convert(EPCore(EPCoreSpec(layers=(20, 7, 3), lanes=4, training=False)),
                                               name="x", emit_src=False))) == 4
    # another spec's image is refused (exit 2, nothing written)
    other = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=True, T1=9)
    (tmp_path / "other.toml").write_text(other.to_toml())
    assert main(["eqspike", "--spec", str(tmp_path / "other.toml"), "--weights", str(tmp_path / "img"),
                 "--out", str(tmp_path / "b2")]) == 2
    assert not (tmp_path / "b2").exists()


def test_weights_built_in_infer_without_loading():
    spec = make_spec("3layer-P3-odd")
    weights = init_weights(spec, seed=9, scale=3.0)
    xs = sample_inputs(spec, 3, 9)
    got = infer_all(EqSpikeCore(spec, weights=weights), lambda dut: EqSpikeHost(dut, spec), xs)
    twin = EqSpikeTwin(spec, weights)
    for x, (pred, states) in zip(xs, got, strict=True):
        rec = twin.infer(x)
        assert (pred, states) == (rec.pred, rec.phases[0].s[-1][0].tolist())


def test_seed_register_reseeds_like_the_twin():
    """A SEED write reseeds the lane bank (refill, one priming step); samples then == a reseeded twin."""
    from hdl.eqspike import REG_SEED

    spec = make_spec("stochastic-P2", encoder_phase="random")
    weights = init_weights(spec, seed=11, scale=3.0)
    xs = sample_inputs(spec, 4, 11)
    dut = EqSpikeCore(spec, weights=weights)
    got: list = []

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=3, idle_prob=0.2, stall_prob=0.2)
        await host.send_pixels(ctx, xs[0].tolist())
        got.append(await host.recv_result(ctx))
        await host.write_reg(ctx, REG_SEED, 0xDEADBEEF)
        for x in xs[1:]:
            await host.send_pixels(ctx, x.tolist())
            got.append(await host.recv_result(ctx))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    twin = EqSpikeTwin(spec, weights)
    want = [twin.infer(xs[0])]
    twin.reseed(0xDEADBEEF)
    want += [twin.infer(x) for x in xs[1:]]
    assert [g[1] for g in got] == [w.phases[0].s[-1][0].tolist() for w in want]
    stale = EqSpikeTwin(spec, weights)  # without the reseed the stream would differ
    assert [stale.infer(x).phases[0].s[-1][0].tolist() for x in xs] != [g[1] for g in got]


def test_core_refuses_the_twin_only_sample_update_apply():
    """``update_apply = "sample"`` (pending sums written at the sample's end) is a twin rule the RTL does not
    implement: a training core refuses it with a message naming the field; an inference core does not update."""
    with pytest.raises(ValueError, match=r"update_apply='online' only .* not 'sample'"):
        EqSpikeCore(EqSpikeSpec(layers=(16, 8, 4), lanes=4, update_apply="sample"))
    from amaranth.hdl import Fragment

    Fragment.get(EqSpikeCore(EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=False, update_apply="sample")), None)


@pytest.mark.parametrize("name", ["3layer-P3-symmetric", "stochastic-saturating"])
def test_digest_register_matches_twin(name):
    """REG_DIGEST after a sweep == spec.eqspike.weight_digest of the twin's weights: after the load and after
    every training sample (stalls on); a single weight written by one LSB changes it, and the RTL's digest
    follows the write. The padding lanes of a layer's last word (P = 3, 4 over 7/5/3 neurons) are masked."""
    from hdl.eqspike import CTRL_TRAIN, REG_DIGEST

    spec = EqSpikeSpec(**{"training": True, "T1": 8, "T2": 4, **TRAIN_CASES[name]})
    seed = zlib.crc32(f"digest/{name}".encode()) % 1000
    weights = init_weights(spec, seed=seed, scale=3.0)
    xs = sample_inputs(spec, 3, seed)
    ys = np.random.default_rng(seed).integers(0, spec.layers[-1], size=3)
    dut = EqSpikeCore(spec)
    got: list = []

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=seed, idle_prob=0.2, stall_prob=0.2)
        got.append(await host.read_reg(ctx, REG_DIGEST))  # reset value
        await host.load_weights(ctx, weights)
        got.append(await host.read_digest(ctx))
        await host.write_reg(ctx, REG_CTRL, CTRL_TRAIN)
        for x, y in zip(xs, ys, strict=True):
            await host.send_pixels(ctx, x.tolist(), int(y))
            await host.recv_result(ctx)
            got.append(await host.read_digest(ctx))
        v = int(weights["w1"][2, 3])
        await host.write_element(ctx, 1, 2, 3, v + 1 if v < 0 else v - 1)  # one LSB
        got.append(await host.read_digest(ctx))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    twin = EqSpikeTwin(spec, weights)
    want = [0, twin.digest()]
    for x, y in zip(xs, ys, strict=True):
        twin.train_sample(x, int(y))
        want.append(twin.digest())
    w = twin.weights
    w["w1"][2, 3] = v = int(weights["w1"][2, 3])
    w["w1"][2, 3] = v + 1 if v < 0 else v - 1
    want.append(EqSpikeTwin(spec, {k: a for k, a in w.items()}).digest())
    assert got == want
    assert len(set(want[1:])) == len(want) - 1  # training changed the weights, the LSB write changed the digest


@pytest.mark.parametrize("name", ["3layer-P3-symmetric", "stochastic-saturating"])
def test_block_readback_matches_twin(name):
    """REG_DUMP on a core built with dump=True: one ``wdump`` beat per memory word (stalls on) == the twin's
    weights and biases after the load and after every training sample, padding lanes 0, and the sweep leaves
    the twin's digest in REG_DIGEST; a one-LSB element write shows in the next dump. A dump whose one word
    is changed is told apart (the check can fail). A core built without dump refuses a REG_DUMP write."""
    from hdl.eqspike import CTRL_TRAIN, REG_DIGEST, REG_DUMP, dump_word_count
    from hdl.eqspike_host import dump_to_weights

    spec = EqSpikeSpec(**{"training": True, "T1": 8, "T2": 4, **TRAIN_CASES[name]})
    seed = zlib.crc32(f"dump/{name}".encode()) % 1000
    weights = init_weights(spec, seed=seed, scale=3.0)
    xs = sample_inputs(spec, 3, seed)
    ys = np.random.default_rng(seed).integers(0, spec.layers[-1], size=3)
    dut = EqSpikeCore(spec, dump=True)
    dumps, digests = [], []
    v = int(weights["w1"][2, 3])

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=seed, idle_prob=0.2, stall_prob=0.3)
        await host.load_weights(ctx, weights)
        dumps.append(await host.read_dump(ctx))
        digests.append(await host.read_reg(ctx, REG_DIGEST))
        await host.write_reg(ctx, REG_CTRL, CTRL_TRAIN)
        for x, y in zip(xs, ys, strict=True):
            await host.send_pixels(ctx, x.tolist(), int(y))
            await host.recv_result(ctx)
            dumps.append(await host.read_dump(ctx))
            digests.append(await host.read_reg(ctx, REG_DIGEST))
        await host.write_element(ctx, 1, 2, 3, v + 1 if v < 0 else v - 1)  # one LSB
        dumps.append(await host.read_dump(ctx))
        assert await host.read_reg(ctx, REG_STATUS) == 0  # no refused write, not busy

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    twin = EqSpikeTwin(spec, weights)
    want = [{k: a.copy() for k, a in twin.weights.items()}]
    want_dg = [twin.digest()]
    for x, y in zip(xs, ys, strict=True):
        twin.train_sample(x, int(y))
        want.append({k: a.copy() for k, a in twin.weights.items()})
        want_dg.append(twin.digest())
    last = {k: a.copy() for k, a in twin.weights.items()}
    last["w1"][2, 3] = v + 1 if v < 0 else v - 1
    want.append(last)
    assert all(len(d) == dump_word_count(spec) for d in dumps)
    for d, w in zip(dumps, want, strict=True):
        got, pad = dump_to_weights(spec, d)
        assert pad == 0
        assert sorted(got) == sorted(w)
        for k in w:
            assert np.array_equal(got[k], w[k]), k
    assert digests == want_dg
    assert not all(np.array_equal(dump_to_weights(spec, dumps[0])[0][k], want[-1][k]) for k in want[-1])
    bad = [list(r) for r in dumps[-1]]
    bad[len(bad) // 2][0] += 1  # one word of the last dump changed: the comparison must see it
    got, pad = dump_to_weights(spec, bad)
    assert pad > 0 or any(not np.array_equal(got[k], want[-1][k]) for k in got)

    plain = EqSpikeCore(spec)  # no wdump port: REG_DUMP is unmapped
    flags = []

    async def refuse(ctx):
        host = EqSpikeHost(plain, spec)
        await host.write_reg(ctx, REG_DUMP, 0)
        flags.append(await host.read_reg(ctx, REG_STATUS))

    assert not hasattr(plain, "wdump")
    sim = Simulator(plain)
    sim.add_clock(1e-6)
    sim.add_testbench(refuse)
    sim.run()
    assert flags == [STATUS_REG_ERROR]


@pytest.mark.parametrize("mode", ["floor", "half_up"])
def test_round_shift_with_a_runtime_shift_matches_the_twin(mode):
    """round_shift with a run-time (Value) shift, the η register's update path, == golden.fixed.shift_round,
    exhaustively over 8-bit signed x and shifts 0..15 (beyond x's width too)."""
    from amaranth.hdl import Module, Signal, signed

    from golden.fixed import shift_round

    m = Module()
    x, sh = Signal(signed(8)), Signal(4)
    o = Signal(signed(9))
    m.d.comb += o.eq(round_shift(x, sh, mode))
    xs = np.arange(-128, 128)
    got = np.zeros((16, len(xs)), np.int64)

    async def tb(ctx):
        for k in range(16):
            ctx.set(sh, k)
            for n, xv in enumerate(xs):
                ctx.set(x, int(xv))
                got[k, n] = ctx.get(o)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    for k in range(16):
        assert got[k].tolist() == shift_round(xs, k, mode).tolist(), (mode, k)
    with pytest.raises(ValueError, match="run-time shift"):
        round_shift(x, sh, "stochastic", Signal(4))


def test_lr_register_matches_the_twin():
    """REG_LR (the η registers) == EqSpikeTwin.set_lr_shift: a write for every connection, then one for a single
    connection, change the update shifts of the following training steps (every weight and bias after every step
    == the twin's, and != a twin without the writes); writes out of range (below lr_shift_min, above 32, a
    connection that does not exist, bits above 15) are refused (STATUS bit 1, values kept) as check_lr_shift
    refuses them; the read-back packs each connection's value in 6 bits; an inference core has no REG_LR."""
    from hdl.eqspike import CTRL_TRAIN, LR_ALL, REG_LR, EqSpikeRegisters, lr_shift_min

    spec = EqSpikeSpec(layers=(13, 7, 5, 3), lanes=3, training=True, T1=8, T2=4, trace_frac=12, lr_shift=(3, 2, 2))
    lo = [lr_shift_min(spec, c) for c in range(spec.n_layers)]
    assert lo == [2, 2, 2]  # the case exercises the lower bound
    weights = init_weights(spec, seed=5, scale=3.0)
    n = 4
    xs = sample_inputs(spec, n, 5)
    ys = np.random.default_rng(5).integers(0, spec.layers[-1], size=n)
    # before sample k: the (connection, shift) writes; the accepted ones as the twin's lr_shift afterwards
    good = {0: [(LR_ALL, 2)], 2: [(1, 5)]}
    bad = [(0, lo[0] - 1), (0, 33), (spec.n_layers, 4), (LR_ALL, 1), (0, 4 | (1 << 16))]
    for _, v in bad[:2] + bad[3:4]:
        with pytest.raises(ValueError):
            spec.check_lr_shift(v)
    dut = EqSpikeCore(spec)
    res: list = []

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=5, idle_prob=0.2, stall_prob=0.2)
        await host.load_weights(ctx, weights)
        res.append(("reset", await host.read_reg(ctx, REG_LR)))
        await host.write_reg(ctx, REG_CTRL, CTRL_TRAIN)
        for k in range(n):
            for c, v in good.get(k, []):
                await host.write_reg(ctx, REG_LR, v | (c << 8))
                res.append(("lr", await host.read_reg(ctx, REG_LR), await host.read_reg(ctx, REG_STATUS)))
            if k == 3:
                for c, v in bad:
                    await host.write_reg(ctx, REG_LR, v | (c << 8))
                    res.append(("bad", await host.read_reg(ctx, REG_LR), await host.read_reg(ctx, REG_STATUS)))
                    await host.write_reg(ctx, REG_STATUS, 0)
            await host.send_pixels(ctx, xs[k].tolist(), int(ys[k]))
            await host.recv_result(ctx)
            res.append(("w", await host.read_weights(ctx)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    def packed(lrs):
        return sum(v << (6 * c) for c, v in enumerate(lrs))

    twin, plain = EqSpikeTwin(spec, weights), EqSpikeTwin(spec, weights)
    it = iter(res)
    assert next(it) == ("reset", packed(spec.lr_shift))
    lrs = list(spec.lr_shift)
    differs = False
    for k in range(n):
        for c, v in good.get(k, []):
            lrs = [v] * spec.n_layers if c == LR_ALL else [v if i == c else x for i, x in enumerate(lrs)]
            twin.set_lr_shift(tuple(lrs))
            assert next(it) == ("lr", packed(lrs), 0), f"before sample {k}: REG_LR / STATUS after writing {v} to {c}"
        if k == 3:
            for c, v in bad:
                tag, got_lr, status = next(it)
                assert (tag, got_lr) == ("bad", packed(lrs)), f"refused write {v} to {c} changed REG_LR"
                assert status & STATUS_REG_ERROR, f"write {v} to connection {c} not flagged"
        twin.train_sample(xs[k], int(ys[k]))
        plain.train_sample(xs[k], int(ys[k]))
        tag, got = next(it)
        for name, want in twin.weights.items():
            assert np.array_equal(got[name], want), f"sample {k}: {name}"
            differs |= not np.array_equal(want, plain.weights[name])
    assert differs  # the writes changed the learning (the check is not vacuous)
    assert lrs == [2, 5, 2]
    # an inference core has no η registers (REG_LR unmapped)
    regs = EqSpikeRegisters(EqSpikeSpec(layers=(13, 7, 5, 3), lanes=3, training=False, T1=8))
    regs._MustUse__silence = True  # only its signature is looked at, never elaborated
    assert "lr" not in regs.signature.members
