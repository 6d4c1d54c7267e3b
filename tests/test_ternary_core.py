"""Ternary EP core (weight_kind="ternary"): twin semantics, and RTL == twin in the Amaranth simulator
with the fault injector on (static and dynamic, both PCSA supplies, illegal cells), with stalls."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.ep_core import EPCoreTwin, Registers
from golden.ep_core.twin import pack_memory, unpack_memory
from hdl.ep_core import EPCore
from hdl.ep_core_host import AmaranthHost, dump_to_states
from spec.ep_core import (
    REG_SEED,
    REG_SPEC_ID,
    REG_TCTRL,
    REG_TILLEGAL,
    REG_TINJECTED,
    REG_TRATE_NONZERO,
    REG_TRATE_ZERO,
    REG_TREADS,
    EPCoreSpec,
)
from spec.ternary import RATE_MAX, ctrl_value


def tspec(layers=(30, 12, 5), lanes=4, training=False, **kw) -> EPCoreSpec:
    return EPCoreSpec(layers=layers, lanes=lanes, weight_kind="ternary", weight_bits=(2,), weight_frac=(3,),
                      training=training, fault_injection=True, beta_shift_max=2, **kw)


def ternary_weights(spec: EPCoreSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random ternary weights and biases; a training core's latent weights spread around ±Δ (many
    updates change a ternary value), with its cells the latent weights' ternary values."""
    w = {}
    for name, shape in spec.weight_shapes().items():
        if name.startswith("v"):
            l = int(name[1:])
            d = spec.latent_threshold[l]
            w[name] = rng.integers(-3 * d, 3 * d + 1, shape)
            w[f"w{l}"] = spec.ternarize_latent(l, w[name])
        elif name.startswith("w"):
            if spec.ternary_training:
                continue
            w[name] = rng.choice([-1, 0, 1], size=shape, p=[0.3, 0.4, 0.3])
        else:
            half = 1 << (spec.bias_frac[int(name[1:])] - 1)
            w[name] = rng.integers(-half, half, shape)
    return w


# --- spec and twin ---------------------------------------------------------------------------------------
def test_ternary_spec_rules():
    s = tspec()
    assert s.element_range("w0") == (-1, 1)
    assert s.ternary_memory_spec().depth == 12 * 8 + 5 * 3
    assert EPCoreSpec.from_toml(s.to_toml()) == s
    with pytest.raises(ValueError, match="no PRNG of their own: update_rounding must be"):
        EPCoreSpec(weight_kind="ternary", weight_bits=(2,), weight_frac=(4,), update_rounding="stochastic")
    with pytest.raises(ValueError, match="latent_bits applies to ternary training cores only"):
        EPCoreSpec(latent_bits=(8,))
    with pytest.raises(ValueError, match=r"latent_threshold entries must be integers in 0\.\.126, not 127"):
        EPCoreSpec(weight_kind="ternary", weight_bits=(2,), weight_frac=(4,), latent_threshold=(127,))
    with pytest.raises(ValueError, match="latent_frac=12 / bias_frac=4 are too fine"):
        EPCoreSpec(weight_kind="ternary", weight_bits=(2,), weight_frac=(4,), latent_frac=(12,), latent_threshold=(6,))
    t = EPCoreSpec(weight_kind="ternary", weight_bits=(2,), weight_frac=(5, 4), beta_shift_max=4)
    assert (t.latent_bits, t.latent_frac, t.latent_threshold) == ((8, 8), (7, 7), (6, 6))
    assert [r.name for r in t.memory_map()] == ["w0", "w1", "b0", "b1", "v0", "v1"]
    assert t.update_shift(0, 6, 1, True) == 8 + 8 + 6 - 1 + 1 - 5 - 7
    assert t.ternarize_latent(0, np.array([-7, -6, 0, 6, 7])).tolist() == [-1, 0, 0, 0, 1]
    assert EPCoreSpec.from_toml(t.to_toml()) == t and t.ternary_memory_spec().update_port
    with pytest.raises(ValueError, match="needs weight_bits 2"):
        EPCoreSpec(weight_kind="ternary", weight_bits=(3,), training=False)
    with pytest.raises(ValueError, match="fault_injection needs weight_kind='ternary'"):
        EPCoreSpec(fault_injection=True)
    with pytest.raises(ValueError, match="weight_kind must be one of"):
        EPCoreSpec(weight_kind="binary")
    c1, step = s.weight_read_schedule()
    assert len(c1) == 12 * 8 and [(d, k, l, len(a)) for d, k, l, a in step] == [("td", 1, 1, 15), ("bu", 2, 1, 15)]


@pytest.mark.parametrize("layers", [(30, 12, 5), (20, 9, 7, 4)])
def test_ternary_twin_equals_the_fixed_point_twin_without_faults(layers):
    """With faults off, a ternary core computes what the fixed-point core with the same {−1, 0, 1} weights
    computes, on the fast path and on the per-read path alike; every read is counted."""
    s = tspec(layers)
    f = EPCoreSpec(layers=layers, lanes=4, weight_bits=(2,), weight_frac=(3,), training=False, beta_shift_max=2)
    rng = np.random.default_rng(1)
    w = ternary_weights(s, rng)
    x = rng.integers(0, 256, (40, layers[0]))
    pa, fa = EPCoreTwin(s, w).infer(x)
    pb, fb = EPCoreTwin(f, w).infer(x)
    slow = EPCoreTwin(s, w)
    pc, fc = slow._infer_per_read(slow.check_input(x), Registers.from_spec(s))
    assert (pa == pb).all() and (pa == pc).all()
    assert all((a == b).all() and (a == c).all() for a, b, c in zip(fa, fb, fc, strict=True))
    c1, step = s.weight_read_schedule()
    assert slow.read_memory_reg(REG_TREADS) == 40 * (len(c1) + s.T1 * sum(len(a) for *_, a in step))
    assert unpack_memory(s, pack_memory(s, w))["w0"].tolist() == w["w0"].tolist()


def test_dynamic_faults_change_the_result_and_static_faults_are_stored():
    s = tspec()
    rng = np.random.default_rng(2)
    w = ternary_weights(s, rng)
    x = rng.integers(0, 256, (30, 30))
    clean = EPCoreTwin(s, w).infer(x)[1]
    dyn = EPCoreTwin(s, w)
    dyn.write_memory_reg(REG_TCTRL, ctrl_value("dynamic"))
    dyn.write_memory_reg(REG_TRATE_ZERO, RATE_MAX // 4)
    dyn.write_memory_reg(REG_TRATE_NONZERO, RATE_MAX // 8)
    noisy = dyn.infer(x)[1]
    assert any((a != b).any() for a, b in zip(clean, noisy, strict=True))
    assert dyn.read_memory_reg(REG_TINJECTED) > 0
    assert (dyn.memory.values() == EPCoreTwin(s, w).memory.values()).all()  # nothing stored changed
    st = EPCoreTwin(s, w)
    st.write_memory_reg(REG_TCTRL, ctrl_value("static"))
    st.write_memory_reg(REG_TRATE_NONZERO, RATE_MAX // 4)
    st.program(0, pack_memory(s, w))
    changed = int((st.weights["w0"] != w["w0"]).sum() + (st.weights["w1"] != w["w1"]).sum())
    assert changed == st.read_memory_reg(REG_TINJECTED) > 0
    assert (st.weights["b0"] == w["b0"]).all()


# --- RTL == twin ----------------------------------------------------------------------------------------------
def session(spec, rng):
    """Host actions: (memory registers, program?, T1, samples) segments covering every fault setting."""
    return [
        ({REG_TCTRL: ctrl_value("static"), REG_TRATE_ZERO: RATE_MAX // 5, REG_TRATE_NONZERO: RATE_MAX // 6,
          REG_SEED: 77}, True, 3, 2),
        ({REG_TCTRL: ctrl_value("off")}, False, 4, 1),
        ({REG_TCTRL: ctrl_value("dynamic", "adjacent", "nominal"), REG_TRATE_ZERO: RATE_MAX // 3,
          REG_TRATE_NONZERO: RATE_MAX // 7}, False, 3, 2),
        ({REG_TCTRL: ctrl_value("dynamic", "flip"), REG_TRATE_NONZERO: RATE_MAX // 4, REG_SEED: 0xC0FFEE,
          REG_TINJECTED: 0}, False, 2, 2),
        ({REG_TCTRL: ctrl_value("static", "flip", "nominal"), REG_TRATE_NONZERO: RATE_MAX // 9}, True, 2, 1),
    ]


COUNTERS = (REG_TCTRL, REG_TRATE_ZERO, REG_TRATE_NONZERO, REG_TINJECTED, REG_TILLEGAL, REG_TREADS)


def run_rtl(spec, words, segments, xs, ys, *, seed=0, idle=0.0, stall=0.0, register_reads=True, stages=0):
    # stages: weight read stages (banks of 4 words, so that the small net's memories span several banks)
    dut = EPCore(spec, register_reads=register_reads, weight_read_stages=stages, weight_bank_words=4)
    res: dict = {"segments": []}

    async def bench(ctx):
        host = AmaranthHost(dut, spec, seed=seed, idle_prob=idle, stall_prob=stall)
        res["spec_id"] = await host.read_reg(ctx, REG_SPEC_ID)
        n = 0
        for regs, program, T1, count, *extra in segments:
            for a, v in regs.items():
                await host.write_reg(ctx, a, v)
            if program:
                await host.load_words(ctx, words)
            r = Registers.from_spec(spec, T1=T1, dump=True, **(extra[0] if extra else {}))
            await host.set_regs(ctx, r)
            out = []
            for _ in range(count):
                await host.send_sample(ctx, xs[n].tolist(), int(ys[n]))
                n += 1
                phases = 1 + (2 if r.symmetric else 1) * int(r.train)
                dumps = [await host.recv_dump(ctx) for _ in range(phases)]
                out.append((await host.recv_pred(ctx), [(d["phase"], dump_to_states(spec, d)) for d in dumps]))
            res["segments"].append({"samples": out, "regs": [await host.read_reg(ctx, r) for r in COUNTERS],
                                    "readback": await host.read_words(ctx)})

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res


def run_twin(spec, words, segments, xs, ys):
    twin = EPCoreTwin(spec)  # the RTL starts with an empty memory too
    res = {"spec_id": spec.spec_id, "segments": []}
    n = 0
    for regs, program, T1, count, *extra in segments:
        r = Registers.from_spec(spec, T1=T1, dump=True, **(extra[0] if extra else {}))
        for a, v in regs.items():
            if a == REG_SEED:
                twin.reseed(v)
            else:
                twin.write_memory_reg(a, v)
        if program:
            twin.program(0, words)
        out = []
        for _ in range(count):
            if r.train:
                rec = twin.train_sample(xs[n], int(ys[n]), r)
                out.append((rec.pred, [(ph, [f[0].tolist() for f in st]) for ph, st in rec.phases.items()]))
            else:
                pred, free = twin.infer(xs[n:n + 1], r)
                out.append((int(pred[0]), [(0, [f[0].tolist() for f in free])]))
            n += 1
        res["segments"].append({"samples": out, "regs": [twin.read_memory_reg(r) for r in COUNTERS],
                                "readback": twin.memory_words()})
    return res


@pytest.mark.parametrize("stalls,register_reads,stages", [(False, True, 0), (True, True, 0), (True, False, 0),
                                                          (True, True, 2)],
                         ids=["no-stalls", "stalls", "stalls-no-read-stage", "stalls-weight-read-stages"])
def test_rtl_matches_twin_with_fault_injection(stalls, register_reads, stages):
    spec = tspec(layers=(30, 12, 5), lanes=4, seed=5)
    rng = np.random.default_rng(11)
    w = ternary_weights(spec, rng)
    words = pack_memory(spec, w)
    words[3] |= 3 << (2 * spec.word_elem_bits)  # one (LRS, LRS) cell: lane 2 of word 3
    segments = session(spec, rng)
    n = sum(c for *_, c in segments)
    xs = rng.integers(0, 256, (n, spec.layers[0]))
    ys = rng.integers(0, spec.n_classes, n)
    kw = {"seed": 3, "idle": 0.3, "stall": 0.4} if stalls else {}
    kw["register_reads"], kw["stages"] = register_reads, stages
    rtl, twin = run_rtl(spec, words, segments, xs, ys, **kw), run_twin(spec, words, segments, xs, ys)
    assert_same_session(rtl, twin)
    injected = [seg["regs"][3] for seg in twin["segments"]]
    assert max(injected) > 0 and twin["segments"][-1]["regs"][4] > 0  # faults and illegal reads happened


def assert_same_session(rtl, twin):
    assert rtl["spec_id"] == twin["spec_id"]
    for i, (a, b) in enumerate(zip(rtl["segments"], twin["segments"], strict=True)):
        for j, (sa, sb) in enumerate(zip(a["samples"], b["samples"], strict=True)):
            assert sa == sb, f"segment {i} sample {j}: prediction and states of every phase"
        assert a["readback"] == b["readback"], f"segment {i}: stored cells, biases, latent weights"
        assert a["regs"] == b["regs"], f"segment {i}: memory registers"


# --- on-chip training (latent weights) ------------------------------------------------------------------------
def training_session():
    """Training under every fault setting, then inference with what was learnt."""
    tr = {"train": True, "T2": 2, "lr_shift": 3}
    return [
        ({REG_TCTRL: ctrl_value("static"), REG_TRATE_ZERO: RATE_MAX // 5, REG_TRATE_NONZERO: RATE_MAX // 6,
          REG_SEED: 77}, True, 3, 2, tr),
        ({REG_TCTRL: ctrl_value("dynamic", "adjacent", "nominal"), REG_TRATE_ZERO: RATE_MAX // 3,
          REG_TINJECTED: 0}, False, 3, 2, {**tr, "symmetric": False, "T2": 3, "lr_shift": 4}),
        ({REG_TCTRL: ctrl_value("off")}, False, 2, 1, {**tr, "lr_shift": 0, "beta_shift": 2}),  # saturates
        ({REG_TCTRL: ctrl_value("static", "flip"), REG_TRATE_NONZERO: RATE_MAX // 2, REG_TINJECTED: 0}, False, 3, 2,
         {**tr, "lr_shift": 1}),
        ({REG_TCTRL: ctrl_value("off")}, False, 3, 2),
    ]


@pytest.mark.parametrize("stalls,register_reads,stages", [(False, True, 0), (True, True, 0), (True, False, 0),
                                                          (True, True, 2)],
                         ids=["no-stalls", "stalls", "stalls-no-read-stage", "stalls-weight-read-stages"])
def test_rtl_matches_twin_training_latent_weights(stalls, register_reads, stages):
    spec = tspec(layers=(30, 12, 5), lanes=4, seed=9, training=True, update_rounding="half_up")
    rng = np.random.default_rng(12)
    w = ternary_weights(spec, rng)
    lo, hi = spec.element_range("v0")
    w["v0"][:, :8] = rng.choice([lo + 2, hi - 2], (spec.layers[1], 8))  # near the range: the update saturates
    w["w0"] = spec.ternarize_latent(0, w["v0"])
    words = pack_memory(spec, w)
    segments = training_session()
    n = sum(seg[3] for seg in segments)
    xs = rng.integers(0, 256, (n, spec.layers[0]))
    ys = rng.integers(0, spec.n_classes, n)
    kw = {"seed": 4, "idle": 0.3, "stall": 0.4} if stalls else {}
    rtl = run_rtl(spec, words, segments, xs, ys, register_reads=register_reads, stages=stages, **kw)
    twin = run_twin(spec, words, segments, xs, ys)
    assert_same_session(rtl, twin)
    # the session exercised what it claims: cells reprogrammed by the updates, static faults injected into
    # reprogrammed cells (segments without a load), latent weights saturated
    seg = twin["segments"]
    assert seg[3]["regs"][3] > 0  # static flips during training alone (REG_TINJECTED cleared before)
    after = unpack_memory(spec, seg[-1]["readback"])
    assert (after["w0"] != w["w0"]).sum() > 10 and (after["v1"] != w["v1"]).any()
    assert ((after["v0"] == lo) | (after["v0"] == hi)).any()


def test_twin_training_reprograms_only_changed_cells():
    """The update rewrites a word's unchanged cells as stored: a static fault stays until its weight's
    ternary value changes (write-verify-free programming of the changed cells only)."""
    spec = tspec(layers=(30, 12, 5), lanes=4, training=True)
    rng = np.random.default_rng(3)
    w = ternary_weights(spec, rng)
    twin = EPCoreTwin(spec, w)
    twin.memory.cells[0, 0] ^= 0b11  # a stored fault: lane 0 of word 0 swapped (w0[0, 0])
    faulty = twin.memory.cells[0, 0]
    # a sample whose update cannot move w0[0, 0]: pixel 0 is 0 (its presynaptic state)
    x = rng.integers(0, 256, spec.layers[0])
    x[0] = 0
    before_v = twin.weights["v0"].copy()
    twin.train_sample(x, 1, Registers.from_spec(spec, train=True, T1=3, T2=2, lr_shift=3))
    assert twin.weights["v0"][0, 0] == before_v[0, 0] and twin.memory.cells[0, 0] == faulty
    changed = spec.ternarize_latent(0, twin.weights["v0"]) != spec.ternarize_latent(0, before_v)
    assert changed.any()
    assert (twin.weights["w0"][changed] == spec.ternarize_latent(0, twin.weights["v0"])[changed]).all()


# --- the hardware flow: ternary export → image → twin evaluation with faults ------------------------------
def _fake_ternary_export(path, layers=(784, 24, 10), seed=0):
    """An export in golden.ternary's format (random ternary weights), written with the real writer."""
    from golden.export import write_array_dir

    rng = np.random.default_rng(seed)
    arrays = {}
    for l in range(len(layers) - 1):
        arrays[f"t{l}"] = rng.choice([-1, 0, 1], size=(layers[l + 1], layers[l])).astype(np.int8)
        arrays[f"b{l}"] = rng.normal(0, 0.1, layers[l + 1]).astype(np.float32)
    manifest = {"format": "epforge-ternary-export/1", "kind": "ternary", "delta": 0.05, "alpha_shift": [5, 5],
                "layers": list(layers), "preprocessing": {"dataset": "mnist", "input": "pixel/255"},
                "schedule": {"T1": 8, "T2": 4, "beta": 0.5, "estimator": "symmetric"}}
    return write_array_dir(path, arrays, manifest), arrays


def test_ternary_export_to_image_and_fault_evaluation(tmp_path):
    import json

    from golden.ep_core.__main__ import main
    from golden.ep_core.image import load_image

    exp, arrays = _fake_ternary_export(tmp_path / "export")
    base = tmp_path / "base.toml"
    assert main(["spec", "--set", "layers=[784, 24, 10]", "--set", "lanes=8", "--set", "training=false",
                 "--set", "weight_kind=ternary", "--set", "weight_bits=[2]", "--set", "fault_injection=true",
                 "--out", str(base)]) == 0
    assert main(["quantize", "--spec", str(base), "--export", str(exp), "--out", str(tmp_path / "image")]) == 0
    spec, weights, manifest = load_image(tmp_path / "image")
    assert spec.weight_kind == "ternary" and spec.weight_frac == (5, 5) and spec.fault_injection
    assert (weights["w0"] == arrays["t0"]).all() and (weights["w1"] == arrays["t1"]).all()
    out = {}
    for mode in ("off", "static", "dynamic"):
        js = tmp_path / f"{mode}.json"
        rate = ["--error-rate", "0.05"] if mode != "off" else []  # a rate without faults is refused
        assert main(["evaluate", "--image", str(tmp_path / "image"), "--dataset", "mnist-subset", "--limit", "20",
                     "--T1", "6", "--fault-mode", mode, *rate, "--json", str(js)]) == 0
        out[mode] = json.loads(js.read_text())
    assert out["off"]["memory_counters"]["injected"] == 0
    assert out["static"]["memory_counters"]["injected"] > 0 and out["dynamic"]["memory_counters"]["injected"] > 0
    assert out["static"]["faults"]["p0"] == pytest.approx(float(np.mean(np.concatenate(
        [arrays["t0"].ravel(), arrays["t1"].ravel()]) == 0)))


def test_ternary_training_image_and_on_chip_training_cli(tmp_path):
    """quantize with a training spec gives a training core's image (latent weights t·2Δ when the export
    holds none, cells = their ternary values = t); ``train`` trains it on chip in the twin."""
    import json

    from golden.ep_core.__main__ import main
    from golden.ep_core.image import load_image

    exp, arrays = _fake_ternary_export(tmp_path / "export")
    base = tmp_path / "base.toml"
    assert main(["spec", "--set", "layers=[784, 24, 10]", "--set", "lanes=8", "--set", "training=true",
                 "--set", "weight_kind=ternary", "--set", "weight_bits=[2]", "--set", "weight_frac=[4]",
                 "--set", "fault_injection=true", "--set", "update_rounding=half_up", "--out", str(base)]) == 0
    assert main(["quantize", "--spec", str(base), "--export", str(exp), "--out", str(tmp_path / "image")]) == 0
    spec, w, manifest = load_image(tmp_path / "image")
    assert spec.ternary_training and spec.weight_frac == (5, 5) and spec.beta_shift_max == 4
    assert (w["v0"] == arrays["t0"] * 2 * spec.latent_threshold[0]).all() and (w["w0"] == arrays["t0"]).all()
    assert manifest["source"]["ternary_values_moved_by_rounding"] == {"w0": 0, "w1": 0}
    assert main(["train", "--image", str(tmp_path / "image"), "--dataset", "mnist-subset", "--train-limit", "6",
                 "--test-limit", "10", "--epochs", "1", "--T1", "6", "--T2", "3", "--lr-shift", "2",
                 "--out", str(tmp_path / "trained")]) == 0
    _, w2, _ = load_image(tmp_path / "trained" / "image")
    assert (w2["v0"] != w["v0"]).any()
    assert (w2["w0"] == spec.ternarize_latent(0, w2["v0"])).all()  # no faults: the cells follow the latent weights
    assert json.loads((tmp_path / "trained" / "metrics.json").read_text())["epochs"][0]["epoch"] == 1


def signal_products(verilog_text: str) -> list[str]:
    """Lines of generated Verilog that multiply two non-constant operands."""
    const = re.compile(r"^\d+'[hdb][0-9a-fA-F]+$")
    out = []
    for line in verilog_text.splitlines():
        if " * " in line and "=" in line:
            a, b = (x.strip() for x in line.split("=", 1)[1].rstrip(";").split(" * ", 1))
            if not (const.match(a) or const.match(b)):
                out.append(line.strip())
    return out


def test_signal_products_finds_the_fixed_point_cores_multipliers():
    from amaranth.back import verilog

    fixed = EPCoreSpec(layers=(20, 7, 3), lanes=4, training=False)
    assert len(signal_products(verilog.convert(EPCore(fixed), name="x", emit_src=False))) == 4  # P multipliers
    tern = tspec(layers=(20, 7, 3))
    assert signal_products(verilog.convert(EPCore(tern), name="x", emit_src=False)) == []
    # a ternary core that trains on chip multiplies states in its update path only: P multipliers
    train = tspec(layers=(20, 7, 3), training=True)
    assert len(signal_products(verilog.convert(EPCore(train), name="x", emit_src=False))) == 4


@pytest.mark.parametrize("board,lanes", [("icebreaker", 8), ("ulx3s", 32)])
def test_hdl_build_ternary_board_core(tmp_path, board, lanes):
    """python -m hdl.build ternary writes the board-sized 784-500-10 ternary core (no multipliers)."""
    import json

    from hdl.build import main

    assert main(["ternary", "--board", board, "--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "manifest.json").read_text())
    spec = EPCoreSpec.from_dict(m["spec"])
    assert spec.lanes == lanes and spec.layers == (784, 500, 10) and spec.weight_kind == "ternary"
    text = (tmp_path / "ternary_core.v").read_text()
    assert signal_products(text) == []  # add/subtract/skip lanes; only address arithmetic multiplies by constants
    assert main(["ternary", "--board", "icebreaker", "--spec", str(tmp_path / "nope.toml"),
                 "--out", str(tmp_path / "x")]) == 2
