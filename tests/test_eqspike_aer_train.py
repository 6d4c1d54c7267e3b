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


# ---- RTL (Amaranth simulator) ----------------------------------------------------------------------------------

RTL_CASES = {
    # name: spec kwargs (training=True, T1=8, T2=4); lr_shift small so that a few samples change many weights
    "16-8-4-P4-symmetric": dict(layers=(16, 8, 4), lanes=4, lr_shift=(1,)),
    "3layer-P3-one-sided": dict(layers=(13, 7, 5, 3), lanes=3, lr_shift=(2, 1, 1), estimator="one-sided"),
    "stochastic-P2-symmetric": dict(layers=(13, 7, 5, 3), lanes=2, encoder="stochastic", state_rounding="stochastic",
                                    encoder_phase="zero", lr_shift=(1, 1, 1)),
}


def rtl_spec(name: str) -> EqSpikeSpec:
    return EqSpikeSpec(**{"training": True, "T1": 8, "T2": 4, **RTL_CASES[name]})


def n_steps(spec: EqSpikeSpec) -> int:
    return spec.T1 + spec.T2 * (2 if spec.symmetric else 1)


def run_core(spec, weights, samples, *, seed=0, idle=0.0, stall=0.0, dump_every=True):
    """Train a core on ``samples``: ("aer", sent steps, label) or ("pixel", x, label); after each: the result,
    SPIKES, SYN, WORDS, CYCLES and every weight read back. Then STATUS and AER_BAD."""
    from amaranth.sim import Simulator

    from hdl.eqspike import (
        CTRL_AER,
        CTRL_LABEL_SHIFT,
        CTRL_TRAIN,
        REG_AER_BAD,
        REG_CTRL,
        REG_CYCLES,
        REG_SPIKES,
        REG_STATUS,
        REG_SYN,
        REG_WORDS,
        EqSpikeCore,
    )
    from hdl.eqspike_host import EqSpikeHost

    dut = EqSpikeCore(spec)
    res: dict = {"samples": []}

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        await host.load_weights(ctx, weights)
        for kind, data, y in samples:
            if kind == "aer":
                await host.write_reg(ctx, REG_CTRL, CTRL_AER | CTRL_TRAIN | y << CTRL_LABEL_SHIFT)
                res.setdefault("ctrl", await host.read_reg(ctx, REG_CTRL))
                await host.send_events(ctx, data)
            else:
                await host.write_reg(ctx, REG_CTRL, CTRL_TRAIN)
                await host.send_pixels(ctx, data.tolist(), y)
            pred, states = await host.recv_result(ctx)
            regs = {k: await host.read_reg(ctx, a) for k, a in (("spikes", REG_SPIKES), ("syn", REG_SYN),
                                                                 ("words", REG_WORDS), ("cycles", REG_CYCLES))}
            res["samples"].append({"pred": pred, "states": states, **regs,
                                   "weights": await host.read_weights(ctx) if dump_every else None})
        res["status"] = await host.read_reg(ctx, REG_STATUS)
        res["bad"] = await host.read_reg(ctx, REG_AER_BAD)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res


def words_read(spec: EqSpikeSpec, spikes: list[int]) -> int:
    L = spec.n_layers
    return sum(n * ((spec.tiles(l + 1) if l < L else 0) + (spec.tiles(l - 1) if l >= 2 else 0))
               for l, n in enumerate(spikes))


def check_against_twin(spec, twin, steps, y, got, i) -> None:
    rec = twin.train_events(steps, y)
    assert got["pred"] == rec.pred, f"sample {i}: prediction"
    assert got["states"] == rec.phases[0].s[-1][0].tolist(), f"sample {i}: free-phase output states"
    spikes = [sum(p.spikes[l] for p in rec.phases) for l in range(spec.n_layers + 1)]
    assert got["spikes"] == sum(spikes), f"sample {i}: spikes"
    assert got["syn"] == sum(p.synaptic_events for p in rec.phases), f"sample {i}: synaptic events"
    assert got["words"] == words_read(spec, spikes), f"sample {i}: weight words"
    for k, v in twin.weights.items():
        assert np.array_equal(got["weights"][k], v), f"sample {i}: {k} after the update"


@pytest.mark.parametrize("name,stalls", [("16-8-4-P4-symmetric", False), ("3layer-P3-one-sided", True),
                                         ("stochastic-P2-symmetric", True)])
def test_aer_training_matches_twin(name, stalls):
    """AER training samples (random input events in every step of every phase, duplicates and addresses of
    neurons that do not exist mixed in) == EqSpikeTwin.train_events: after every sample all weights and
    biases, the free-phase prediction and output states, SPIKES, SYN and WORDS; bad events flagged and
    counted, never used."""
    import zlib

    from hdl.eqspike import CTRL_AER, CTRL_TRAIN, STATUS_AER_ERROR

    spec = rtl_spec(name)
    seed = zlib.crc32(f"aer-train/{name}/{stalls}".encode()) % 1000
    rng = np.random.default_rng(seed)
    weights = init_weights(spec, seed=seed, scale=3.0)
    n0 = spec.layers[0]
    samples, goods, bad_total, dups = [], [], 0, 0
    for _ in range(3):
        steps, sent = [], []
        for _t in range(n_steps(spec)):
            good = rng.choice(n0, size=int(rng.integers(0, n0 // 2 + 1)), replace=False).tolist()
            dup = rng.choice(good, size=min(len(good), int(rng.integers(0, 3))), replace=False).tolist() if good else []
            bad = rng.integers(n0, 1 << 16, size=int(rng.integers(0, 2))).tolist()
            mixed = good + dup + bad
            rng.shuffle(mixed)
            steps.append(good + dup)
            sent.append(mixed)
            bad_total, dups = bad_total + len(bad), dups + len(dup)
        y = int(rng.integers(0, spec.layers[-1]))
        samples.append(("aer", sent, y))
        goods.append((steps, y))
    res = run_core(spec, weights, samples, seed=seed, idle=0.3 if stalls else 0.0, stall=0.3 if stalls else 0.0)
    twin = EqSpikeTwin(spec, weights)
    changed = 0
    for i, ((steps, y), got) in enumerate(zip(goods, res["samples"], strict=True)):
        before = twin.weights
        check_against_twin(spec, twin, steps, y, got, i)
        changed += sum(int((v != before[k]).sum()) for k, v in twin.weights.items())
    assert changed > 10 and dups > 0 and bad_total > 0  # not vacuous
    assert res["bad"] == bad_total and res["status"] & STATUS_AER_ERROR
    assert res["ctrl"] == CTRL_AER | CTRL_TRAIN | goods[0][1] << 8


@pytest.mark.parametrize("name", ["16-8-4-P4-symmetric", "3layer-P3-one-sided"])
def test_aer_training_equals_pixel_training_and_its_cycles(name):
    """A core trained on AER samples carrying the input spikes a pixel training sample makes (plus events for
    neurons that do not exist) == a core trained on those pixel samples: predictions, states, counters and
    every weight after every sample; cycles (no stalls) = the pixel sample's − tiles(0)·steps (every ENC
    skips the input encoders; INIT does not) + steps (each step's end-of-step beat) + the bad events (a cycle
    each)."""
    spec = rtl_spec(name)
    rng = np.random.default_rng(11)
    weights = init_weights(spec, seed=11, scale=3.0)
    twin = EqSpikeTwin(spec, weights)
    pix, aer, bads = [], [], []
    for _ in range(3):
        x = rng.integers(0, spec.input_scale + 1, size=spec.layers[0])
        y = int(rng.integers(0, spec.layers[-1]))
        steps = pixel_events(twin.train_sample(x, y, record_events=True), spec)
        nb = 0
        for evs in steps:
            if rng.random() < 0.3:
                evs.insert(int(rng.integers(0, len(evs) + 1)), int(rng.integers(spec.layers[0], 1 << 16)))
                nb += 1
        pix.append(("pixel", x, y))
        aer.append(("aer", steps, y))
        bads.append(nb)
    rp = run_core(spec, weights, pix)
    ra = run_core(spec, weights, aer)
    T = n_steps(spec)
    for i, (gp, ga) in enumerate(zip(rp["samples"], ra["samples"], strict=True)):
        for k in ("pred", "states", "spikes", "syn", "words"):
            assert ga[k] == gp[k], f"sample {i}: {k}"
        for k, v in gp["weights"].items():
            assert np.array_equal(ga["weights"][k], v), f"sample {i}: {k}"
        assert ga["cycles"] == gp["cycles"] - spec.tiles(0) * T + T + bads[i], f"sample {i}: cycles"
    for k, v in twin.weights.items():
        assert np.array_equal(ra["samples"][-1]["weights"][k], v), k
    assert ra["bad"] == sum(bads) > 0


def test_ternary_aer_training_matches_twin():
    """A ternary training core (latents v{l}, REPROG after every nudged step; built with its weights) trained on
    AER samples (duplicates included, stalls 0.2) == EqSpikeTwin.train_events: after every sample the latents read
    back on ``wcmd``, REG_DIGEST (the stored cells and biases), prediction, output states and SPIKES. The replay
    list's events carry their word and lane like the mask list's (what marks the rows REPROG rewrites)."""
    from amaranth.sim import Simulator

    from hdl.eqspike import CTRL_AER, CTRL_LABEL_SHIFT, CTRL_TRAIN, REG_CTRL, REG_SPIKES, EqSpikeCore
    from hdl.eqspike_host import EqSpikeHost

    spec = EqSpikeSpec(layers=(20, 12, 5), lanes=4, training=True, T1=8, T2=3, weight_kind="ternary",
                       weight_bits=(2,), weight_frac=(3, 2), latent_bits=(10,), latent_frac=(6,), latent_threshold=(2,),
                       lr_shift=(0,))
    rng = np.random.default_rng(4)
    fixed = EqSpikeSpec(layers=spec.layers, lanes=4, training=False, weight_bits=(8,), weight_frac=(6,))
    w = {k: v for k, v in init_weights(fixed, 4, 4.0).items() if k.startswith("b")}
    for l in range(spec.n_layers):
        d, shape = spec.latent_threshold[l], spec.weight_shapes()[f"w{l}"]
        t = rng.choice([-1, 0, 1], size=shape, p=[0.35, 0.3, 0.35]).astype(np.int64)
        w[f"w{l}"] = t
        w[f"v{l}"] = np.where(t != 0, t * (d + 1 + rng.integers(0, 4, shape)), rng.integers(-d, d + 1, shape))
    n0, L = spec.layers[0], spec.n_layers
    samples = []
    for _ in range(3):
        steps = []
        for _t in range(n_steps(spec)):
            good = rng.choice(n0, int(rng.integers(0, n0 // 2)), replace=False).tolist()
            steps.append(good + good[:1])
        samples.append((steps, int(rng.integers(0, spec.layers[-1]))))
    dut = EqSpikeCore(spec, weights=w)
    got: list = []

    async def bench(ctx):
        host = EqSpikeHost(dut, spec, seed=3, idle_prob=0.2, stall_prob=0.2)
        for steps, y in samples:
            await host.write_reg(ctx, REG_CTRL, CTRL_AER | CTRL_TRAIN | y << CTRL_LABEL_SHIFT)
            await host.send_events(ctx, steps)
            pred, states = await host.recv_result(ctx)
            v = {f"v{l}": np.array([[await host.read_element(ctx, 2 * L + l, i, j) for j in range(spec.layers[l])]
                                    for i in range(spec.layers[l + 1])]) for l in range(L)}
            got.append((pred, states, await host.read_reg(ctx, REG_SPIKES), await host.read_digest(ctx), v))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    twin = EqSpikeTwin(spec, w)
    moved = 0
    for i, ((steps, y), (pred, states, spikes, digest, v)) in enumerate(zip(samples, got, strict=True)):
        before = twin.weights
        rec = twin.train_events(steps, y)
        tw = twin.weights
        assert pred == rec.pred and states == rec.phases[0].s[-1][0].tolist(), f"sample {i}"
        assert spikes == sum(sum(p.spikes) for p in rec.phases), f"sample {i}: spikes"
        assert digest == twin.digest(), f"sample {i}: digest (stored cells, biases)"
        for k in v:
            assert np.array_equal(v[k], tw[k]), f"sample {i}: {k}"
        moved += sum(int((tw[k] != before[k]).sum()) for k in ("w0", "w1"))
    assert moved > 0  # cells were reprogrammed


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_aer_training_verilog_matches_twin(simulator):
    """The generated Verilog on Icarus and Verilator (cocotb, idle/stall probability 0.3): a pixel training
    step, three AER training steps (duplicates and addresses of neurons that do not exist mixed in; a reseed
    and η writes before two of them), then AER and pixel inference == the twin; weights read back as a block
    and element by element, digests, SPIKES/SYN/WORDS, AER_BAD."""
    import zlib

    from sim.eqspike import Item, compare_with_twin, run_eqspike
    from sim.runner import sim_available

    if not sim_available(simulator):
        pytest.skip(f"{simulator} not installed")
    spec = rtl_spec("3layer-P3-one-sided")
    seed = zlib.crc32(b"aer-train-cocotb") % 1000
    rng = np.random.default_rng(seed)
    weights = init_weights(spec, seed=seed, scale=3.0)
    n0 = spec.layers[0]

    def x():
        return rng.integers(0, spec.input_scale + 1, size=n0)

    def events(T):
        steps = []
        for _ in range(T):
            good = rng.choice(n0, size=int(rng.integers(0, n0 // 2 + 1)), replace=False).tolist()
            steps.append(good + (good[:1] if good and rng.random() < 0.3 else []))  # a duplicate now and then
        bad = [rng.integers(n0, 1 << 16, size=int(rng.integers(0, 2))).tolist() for _ in range(T)]
        return steps, bad

    def aer_train(**kw):
        steps, bad = events(n_steps(spec))
        return Item("aer_train", steps=steps, bad=bad, label=int(rng.integers(0, spec.layers[-1])), dump=True, **kw)

    steps, bad = events(spec.T1)
    items = [Item("train", x(), label=1, dump=True), aer_train(readback=True), aer_train(reseed=0x5EED),
             aer_train(lr_shift=(3, 2, 2), readback=True), Item("aer", steps=[sorted(set(s)) for s in steps], bad=bad),
             Item("infer", x())]
    result = run_eqspike(spec, weights, items, simulator, seed=seed, idle_prob=0.3, stall_prob=0.3,
                         timeout_ns=200_000_000)
    rep = compare_with_twin(spec, weights, items, result, simulator)
    assert rep.mismatches == []
    assert rep.training_steps == 4 and rep.compared["dumps"] == 4
    assert result["end"]["AER_BAD"] > 0
    assert any(len(s) != len(set(s)) for it in items if it.kind == "aer_train" for s in it.steps)
    # not vacuous: a twin with the last layer's weights flipped is reported
    bad_w = {k: v.copy() for k, v in weights.items()}
    lo, hi = spec.element_range(f"w{spec.n_layers - 1}")
    wl = bad_w[f"w{spec.n_layers - 1}"]
    wl[:, :] = np.where(wl > 0, lo, hi)
    assert compare_with_twin(spec, weights, items, result, simulator, twin=EqSpikeTwin(spec, bad_w)).mismatches
