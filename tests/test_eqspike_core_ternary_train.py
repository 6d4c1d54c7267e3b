"""On-chip training of the EqSpike core's ternary weight kind in RTL (hdl/eqspike.py, hdl/eqspike_kit/reprog.py)
== the twin (golden/eqspike/ternary.py, docs/eqspike.md §9) in the Amaranth simulator: the latent weights
``v{l}`` in the fixed training core's ``wup``/``wdn`` layouts (WUPD updates them), then after every nudged step
the REPROG sweep writes the words whose cells' ternary values changed through the memory's update port in
address order (one draw each; static faults persist until a weight's value changes)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator
from test_eqspike_core import (  # noqa: I001  (tests/ is on sys.path)
    infer_with_counters,
    sample_inputs,
    signal_products,
    sweep_cycles,
    words_read,
)
from test_eqspike_core_ternary import CASES, TernaryHost, ternary_weights

import golden.eqspike.ternary as gt
from golden.eqspike.ternary import configure_faults
from golden.eqspike.twin import EqSpikeTwin
from hdl.eqspike import (
    CTRL_AER,
    CTRL_LABEL_SHIFT,
    CTRL_TRAIN,
    REG_CTRL,
    REG_CYCLES,
    REG_SPIKES,
    REG_STATUS,
    REG_SYN,
    REG_WORDS,
    STATUS_AER_ERROR,
    EqSpikeCore,
    memory_images,
)
from spec import ternary as tm
from spec.eqspike import EqSpikeSpec
from spec.ternary import ctrl_value

TRAIN = dict(training=True, T1=8, T2=3, weight_kind="ternary", weight_bits=(2,), latent_bits=(10,), latent_frac=(6,),
             latent_threshold=(2,), lr_shift=(0,))


def make_spec(name: str, **kw) -> EqSpikeSpec:
    return EqSpikeSpec(**{**TRAIN, **CASES[name], **kw})


def latent_weights(spec: EqSpikeSpec, seed: int) -> dict[str, np.ndarray]:
    """Ternary weights and latents whose ternary values they are (|v| in (Δ, Δ + 4] where t ≠ 0, else [−Δ, Δ])."""
    w = ternary_weights(EqSpikeSpec(**{**spec.to_dict(), "training": False, "latent_bits": None, "latent_frac": None,
                                       "latent_threshold": None}), seed)
    rng = np.random.default_rng(seed + 1)
    for l in range(spec.n_layers):
        d, t = spec.latent_threshold[l], w[f"w{l}"]
        w[f"v{l}"] = np.where(t != 0, t * (d + 1 + rng.integers(0, 4, t.shape)), rng.integers(-d, d + 1, t.shape))
    return w


def cell_words(spec, cells) -> list[int]:
    return [int(sum(int(c) << (2 * i) for i, c in enumerate(row))) for row in cells]


def run_rtl(spec, weights, xs, ys, *, seed=0, idle=0.0, stall=0.0, faults=None, infer=(), built_in=False):
    dut = EqSpikeCore(spec, weights=weights if built_in else None)
    L, depth = spec.n_layers, spec.ternary_memory_spec().depth
    res: dict = {"samples": [], "infer": []}
    busy = [0, 0]  # cycles with the REPROG sweep running, words it issued

    async def count(ctx):
        async for _clk, _rst, b, i in ctx.tick().sample(dut.reprog.busy, dut.reprog.issue):
            busy[0] += b
            busy[1] += i

    async def read_state(host, ctx):
        out = {"cells": [await host.read_cells(ctx, a) for a in range(depth)]}
        for l in range(L):
            n_post, n_pre = spec.layers[l + 1], spec.layers[l]
            out[f"v{l}"] = np.array([[await host.read_element(ctx, 2 * L + l, i, j) for j in range(n_pre)]
                                     for i in range(n_post)])
            out[f"b{l}"] = np.array([await host.read_element(ctx, L + l, i, 0) for i in range(n_post)])
        out["injected"] = await host.read_tmem(ctx, tm.REG_INJECTED)
        return out

    async def bench(ctx):
        host = TernaryHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        if faults is not None:  # as configure_faults: registers, seed last, counter cleared
            ctrl, rz, rnz, fseed = faults
            for a, v in ((tm.REG_CTRL, ctrl), (tm.REG_RATE_ZERO, rz), (tm.REG_RATE_NONZERO, rnz), (tm.REG_SEED, fseed),
                         (tm.REG_INJECTED, 0)):
                await host.write_tmem(ctx, a, v)
        if not built_in:
            await host.program(ctx, weights)
            for l in range(L):  # the latents on wcmd (arrays 2L + l)
                for i in range(spec.layers[l + 1]):
                    for j in range(spec.layers[l]):
                        await host.write_element(ctx, 2 * L + l, i, j, int(weights[f"v{l}"][i, j]))
        res["start"] = await read_state(host, ctx)
        await host.write_reg(ctx, REG_CTRL, CTRL_TRAIN)
        for x, y in zip(xs, ys, strict=True):
            b0, i0 = busy
            if isinstance(x, list):  # AER training: the events of every step of every phase, label in CTRL
                await host.write_reg(ctx, REG_CTRL, CTRL_AER | CTRL_TRAIN | int(y) << CTRL_LABEL_SHIFT)
                await host.send_events(ctx, x)
            else:
                await host.send_pixels(ctx, x.tolist(), int(y))
            pred, states = await host.recv_result(ctx)
            r = {"pred": pred, "states": states, "reprog": busy[0] - b0, "issued": busy[1] - i0}
            for k, a in (("cycles", REG_CYCLES), ("spikes", REG_SPIKES), ("words", REG_WORDS), ("syn", REG_SYN)):
                r[k] = await host.read_reg(ctx, a)
            r |= await read_state(host, ctx)
            res["samples"].append(r)
        await host.write_reg(ctx, REG_CTRL, 0)  # inference on the trained cells
        for x in infer:
            res["infer"].append(await infer_with_counters(host, ctx, x))
        res["status"] = await host.read_reg(ctx, REG_STATUS)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(count)
    sim.run()
    return res


def twin_state(spec, twin) -> dict:
    w = twin.weights
    return {"cells": cell_words(spec, twin.memory.cells), "injected": twin.memory.injected,
            **{k: w[k] for k in w if k[0] in "vb"}}


def compare(spec, got, want, where):
    for k, v in want.items():
        if isinstance(v, np.ndarray):
            assert np.array_equal(got[k], v), f"{where}: {k}"
        else:
            assert got[k] == v, f"{where}: {k}"


def reprog_words(monkeypatch) -> list:
    """Record, per call of the twin's reprogram (one per nudged step), the words it writes of upper connections."""
    calls: list = []
    orig = gt.reprogram

    def spy(twin):
        sp = twin.spec
        before = twin.memory.cells.copy(), [t.copy() for t in twin._t]
        new_t = {f"w{l}": sp.ternarize_latent(l, twin.v[l]).T for l in range(sp.n_layers)}
        old_t = {f"w{l}": np.ascontiguousarray(before[1][l].T) for l in range(sp.n_layers)}
        changed = np.flatnonzero((gt.pack_memory(sp, new_t) != gt.pack_memory(sp, old_t)).any(1))
        upper = changed >= (sp.ternary_base(1) if sp.n_layers > 1 else 1 << 30)
        last = bool(len(changed)) and changed[-1] == sp.ternary_memory_spec().depth - 1 and bool(upper[-1])
        calls.append((len(changed), int(upper.sum()), last))
        orig(twin)

    monkeypatch.setattr(gt, "reprogram", spy)
    return calls


def check_run(spec, w, xs, ys, res, twin, calls, infer=(), loaded=True, aer=None):
    P = spec.lanes
    depth = spec.ternary_memory_spec().depth
    compare(spec, res["start"], twin_state(spec, twin), "after the load")
    moved = 0
    for n, (x, y, got) in enumerate(zip(xs, ys, res["samples"], strict=True)):
        before = twin_state(spec, twin)
        k0 = len(calls)
        rec = (twin.train_events(aer[n], int(y), record_events=True) if aer is not None else
               twin.train_sample(x, int(y), record_events=True))
        want = {"pred": rec.pred, "states": rec.phases[0].s[-1][0].tolist(),
                "spikes": sum(sum(p.spikes) for p in rec.phases),
                "words": sum(words_read(spec, p.spikes) for p in rec.phases),
                "syn": sum(p.synaptic_events for p in rec.phases)}
        compare(spec, got, want, f"sample {n}")
        compare(spec, got, twin_state(spec, twin), f"sample {n}")
        moved += sum(a != b for a, b in zip(got["cells"], before["cells"], strict=True))
        # the REPROG sweeps of the sample: per nudged step the words of the rows its WUPD wrote (the rows of the
        # connection's presynaptic spikes; every row of an upper connection whose postsynaptic layer spiked; after
        # a load on tcmd/wcmd every row); 2 cycles per row word of every connection, 1 per word, P + 1 at most per
        # written word of an upper connection (its mirror into wdn, the next word issued again), 1 or 2 to finish
        steps = calls[k0:]
        assert len(steps) == spec.T2 * (2 if spec.symmetric else 1)
        words = []
        for ph in rec.phases[1:]:
            ev = np.asarray(ph.events).reshape(-1, 3)
            for st in range(spec.T2):
                e = ev[ev[:, 0] == st]
                rows = [spec.layers[l] if (loaded and n == 0 and not words) or (l >= 1 and (e[:, 1] == l + 1).any())
                        else len(set(e[e[:, 1] == l, 2].tolist())) for l in range(spec.n_layers)]
                words.append(sum(r * spec.tiles(l + 1) for l, r in enumerate(rows)))
        assert got["issued"] == sum(words), f"sample {n}: REPROG words"
        base = len(steps) * (2 * sum(spec.tiles(l) for l in range(spec.n_layers)) + 1) + sum(words)
        top = base + sum((P + 1) * up + 1 for _, up, _last in steps)
        assert base <= got["reprog"] <= top, f"sample {n}: cycles"
        got["reprog_full"] = sum(depth + 2 + (P + 1) * up for _, up, _last in steps)  # (the full sweep's cost)
    for n, (x, got) in enumerate(zip(infer, res["infer"], strict=True)):  # inference on a training core
        rec = twin.infer(x)
        ph = rec.phases[0]
        want = {"pred": rec.pred, "states": ph.s[-1][0].tolist(), "spikes": sum(ph.spikes),
                "syn": ph.synaptic_events, "words": words_read(spec, ph.spikes)}
        compare(spec, got, want, f"inference {n}")
        assert got["cycles"] == got["words"] + sweep_cycles(spec, spec.T1)  # the inference cycle model
    assert res["status"] == (STATUS_AER_ERROR if aer is not None else 0)
    assert moved > 0  # not vacuous: cells were reprogrammed
    return moved


@pytest.mark.parametrize("stalls", [False, True], ids=["no-stalls", "random-stalls"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_ternary_training_matches_twin(name, stalls, monkeypatch):
    """After the load and every training sample: latents, biases, raw cells (tcmd read-back), INJECTED; per
    sample prediction, output states, spikes, words, synaptic events == the ternary twin; static adjacent faults
    (p = 0.2) on the stall cases, so reprogrammed words draw from the memory's PRNG in the twin's order."""
    spec = make_spec(name, fault_injection=stalls)
    seed = zlib.crc32(f"tt/{name}/{stalls}".encode()) % 1000
    w = latent_weights(spec, seed)
    n = 3
    xs = sample_inputs(spec, n, seed)
    ys = np.random.default_rng(seed).integers(0, spec.layers[-1], size=n)
    twin = EqSpikeTwin(spec, w)
    faults = None
    if stalls:
        info = configure_faults(twin, w, 0.2, "static", "adjacent", seed=5)
        assert info["injected"] > 0
        faults = (ctrl_value("static", "adjacent"), info["rate_zero"], info["rate_nonzero"], 5)
    calls = reprog_words(monkeypatch)
    xi = sample_inputs(spec, 2, seed + 1)
    res = run_rtl(spec, w, xs, ys, seed=seed, idle=0.3 if stalls else 0.0, stall=0.3 if stalls else 0.0,
                  faults=faults, infer=xi)
    check_run(spec, w, xs, ys, res, twin, calls, xi)
    if stalls:
        assert twin.memory.injected > info["injected"]  # reprogrammed cells met the injector too


def test_ternary_training_core_refusals_and_images():
    spec = make_spec("20-12-5-P4")
    Fragment.get(EqSpikeCore(spec), None)
    with pytest.raises(ValueError, match="update='spike' only, not update='ternary'"):
        EqSpikeCore(make_spec("20-12-5-P4", update="ternary"))
    img = memory_images(spec, latent_weights(spec, 1))
    assert {"tmem", "tval", "vup0", "vup1", "vdn1", "wdn1", "b0", "b1"} <= set(img) and "wup0" not in img
    assert img["tval"] == img["tmem"]


def test_hdl_build_ternary_training_manifest_and_built_in_weights_train(tmp_path, monkeypatch):
    """python -m hdl.build eqspike of a ternary training spec with a weight image: the manifest lists the latent
    memories and the intended cells, the training section (wcmd arrays of v{l}, the REPROG rule); the Verilog
    multiplies no two signals; the core built with the weights (cells, mirror, latents, tval initialised) trains
    == the twin without a load."""
    from golden.eqspike.image import write_image
    from hdl.build import load_build_manifest, main

    spec = make_spec("24-9-7-4-P3")
    w = latent_weights(spec, 4)
    (tmp_path / "spec.toml").write_text(spec.to_toml())
    write_image(tmp_path / "img", spec, w)
    assert main(["eqspike", "--spec", str(tmp_path / "spec.toml"), "--weights", str(tmp_path / "img"),
                 "--out", str(tmp_path / "build")]) == 0
    m = load_build_manifest(tmp_path / "build")
    L = spec.n_layers
    assert {"tmem", "tval", "vup0", "vup1", "vup2", "vdn1", "vdn2", "wdn1", "wdn2"} == set(m["weight_memories"])
    tr = m["ternary"]["training"]
    assert {k: v["wcmd_array"] for k, v in tr["latents"].items()} == {f"v{l}": 2 * L + l for l in range(L)}
    assert m["payloads"]["wcmd"]["array"] == 4  # 0 … 3L − 1 = 8
    assert signal_products((tmp_path / "build" / "eqspike_core.v").read_text()) == []

    xs = sample_inputs(spec, 2, 4)
    ys = np.array([1, 3])
    twin = EqSpikeTwin(spec, w)
    calls = reprog_words(monkeypatch)
    res = run_rtl(spec, w, xs, ys, seed=2, idle=0.2, stall=0.2, built_in=True)
    check_run(spec, w, xs, ys, res, twin, calls, loaded=False)


def test_ternary_training_on_aer_input_matches_twin(monkeypatch):
    """AER training samples on a ternary training core (events for every step of every phase, duplicates and
    addresses of neurons that do not exist mixed in; static adjacent faults, stalls) == the twin's train_events:
    latents, biases, cells, INJECTED, prediction, states, counters and the words REPROG sweeps."""
    spec = make_spec("20-12-5-P4", fault_injection=True)
    w = latent_weights(spec, 8)
    rng = np.random.default_rng(8)
    n0, T = spec.layers[0], spec.T1 + 2 * spec.T2
    sent, goods, ys = [], [], []
    for _ in range(3):
        steps, mixed = [], []
        for _t in range(T):
            good = rng.choice(n0, size=int(rng.integers(0, n0 // 2 + 1)), replace=False).tolist()
            dup = good[:1] if good and rng.random() < 0.3 else []
            bad = rng.integers(n0, 1 << 16, size=int(rng.integers(0, 2))).tolist()
            steps.append(good + dup)
            m_ = good + dup + bad
            rng.shuffle(m_)
            mixed.append(m_)
        sent.append(mixed)
        goods.append(steps)
        ys.append(int(rng.integers(0, spec.layers[-1])))
    twin = EqSpikeTwin(spec, w)
    info = configure_faults(twin, w, 0.2, "static", "adjacent", seed=9)
    faults = (ctrl_value("static", "adjacent"), info["rate_zero"], info["rate_nonzero"], 9)
    calls = reprog_words(monkeypatch)
    res = run_rtl(spec, w, sent, ys, seed=8, idle=0.3, stall=0.3, faults=faults)
    check_run(spec, w, sent, ys, res, twin, calls, aer=goods)
