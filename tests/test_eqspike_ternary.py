"""The EqSpike core's ternary weight kind (weight_kind="ternary", golden/eqspike/ternary.py): integer ==."""

from __future__ import annotations

import numpy as np
import pytest

from golden.eqspike.ternary import configure_faults, pack_memory, ternarize_arrays, unpack_memory
from golden.eqspike.twin import EqSpikeTwin, init_weights
from golden.ternary.memory import TernaryMemoryTwin
from spec.eqspike import EqSpikeSpec
from spec.ternary import CELL_MINUS, CELL_PLUS, ctrl_value


@pytest.fixture(scope="module")
def subset_small():
    from golden.data import load_dataset

    tr = load_dataset("mnist-subset", "train")
    x = tr.images.reshape(len(tr), -1)[:40, ::40][:, :20].astype(np.int64)
    return x, tr.labels[:40] % 5


SMALL = dict(layers=(20, 12, 5), lanes=4, training=False, encoder_phase="random", T1=24)


def _specs(**kw):
    tern = EqSpikeSpec(**{**SMALL, "weight_kind": "ternary", "weight_bits": (2,), "weight_frac": (3, 2), **kw})
    fixed = EqSpikeSpec(**{**SMALL, "weight_bits": (2,), "weight_frac": (3, 2)})
    return tern, fixed


def _weights(spec, seed=0):
    rng = np.random.default_rng(seed)
    w = init_weights(EqSpikeSpec(**{**SMALL, "weight_frac": (6,)}), seed, 4.0)
    out = {k: v for k, v in w.items() if k.startswith("b")}
    for l in range(spec.n_layers):
        out[f"w{l}"] = rng.choice([-1, 0, 1], size=spec.weight_shapes()[f"w{l}"], p=[0.3, 0.3, 0.4]).astype(np.int64)
    return out


def test_ternary_twin_equals_fixed_twin_with_the_same_values():
    tern, fixed = _specs()
    w = _weights(tern)
    a, b = EqSpikeTwin(tern, w), EqSpikeTwin(fixed, w)
    x = np.random.default_rng(1).integers(0, 256, (6, 20))
    assert (a.predict(x) == b.predict(x)).all()
    for xx in x:
        ra, rb = a.infer(xx), b.infer(xx)
        assert ra.pred == rb.pred and ra.counts() == rb.counts()
        assert all((u == v).all() for u, v in zip(ra.phases[0].s, rb.phases[0].s, strict=True))
    assert all((a.weights[k] == w[k]).all() for k in w)


def test_memory_layout_round_trips():
    tern, _ = _specs()
    w = _weights(tern, 3)
    cells = pack_memory(tern, w)
    assert cells.shape == (tern.ternary_memory_spec().depth, tern.lanes)
    vals = np.where(cells == CELL_PLUS, 1, np.where(cells == CELL_MINUS, -1, 0))
    back = unpack_memory(tern, vals)
    assert all((back[l].T == w[f"w{l}"]).all() for l in range(tern.n_layers))


def test_static_faults_match_the_memory_model_and_never_flip_a_sign():
    tern, fixed = _specs(fault_injection=True)
    w = _weights(tern, 2)
    twin = EqSpikeTwin(tern, w)
    info = configure_faults(twin, w, 0.2, "static", seed=7)
    assert info["injected"] > 0
    # reference: the EP core's memory model programmed directly
    ref = TernaryMemoryTwin(tern.ternary_memory_spec())
    ref.configure("static", "adjacent", "near-threshold", info["rate_zero"], info["rate_nonzero"], 7)
    ref.program(0, pack_memory(tern, w))
    assert ref.injected == info["injected"] == twin.memory.injected
    faulty = unpack_memory(tern, ref.values())
    changed = 0
    for l in range(tern.n_layers):
        got = twin.weights[f"w{l}"]
        assert (got == faulty[l].T).all()
        orig = w[f"w{l}"]
        assert not ((orig != 0) & (got == -orig)).any()  # adjacent errors: never a sign flip
        changed += int((got != orig).sum())
    assert 0 < changed <= info["injected"]  # padding cells may be hit too
    x = np.random.default_rng(4).integers(0, 256, (5, 20))
    assert (twin.predict(x) == EqSpikeTwin(fixed, twin.weights).predict(x)).all()
    # the same seed gives the same faults; faults off restores the weights
    again = EqSpikeTwin(tern, w)
    configure_faults(again, w, 0.2, "static", seed=7)
    assert all((again.weights[k] == twin.weights[k]).all() for k in w)
    configure_faults(again, w, 0.2, "off", seed=7)
    assert all((again.weights[k] == w[k]).all() for k in w)


def test_ternarize_rule():
    w = np.array([[0.5, -0.05, 0.0, -0.3], [0.02, 0.26, -0.7, 0.01]])
    t, shifts, info = ternarize_arrays({"w0": w}, 1)
    delta = 0.7 * np.abs(w).mean()
    assert (t["w0"] == np.sign(w) * (np.abs(w) > delta)).all()
    assert shifts == [round(-np.log2(np.abs(w)[np.abs(w) > delta].mean()))]


def test_default_spec_digest_unchanged_by_the_new_field():
    assert "fault_injection" not in EqSpikeSpec().to_dict()
    assert EqSpikeSpec(**{**SMALL, "weight_kind": "ternary", "weight_bits": (2,), "fault_injection": True}
                       ).to_dict()["fault_injection"] is True


@pytest.mark.parametrize("kw, msg", [
    (dict(weight_kind="ternary", weight_bits=(2,), latent_bits=(8,)), "latent_bits applies to ternary training"),
    (dict(weight_kind="ternary", weight_bits=(2,), training=True, latent_bits=(4,), latent_threshold=(7,)),
     r"latent_threshold\[0\]=7 must be at most 6"),
    (dict(weight_kind="ternary", weight_bits=(16,)), "needs weight_bits 2"),
    (dict(fault_injection=True), "needs weight_kind='ternary'"),
    (dict(weight_kind="ternary", weight_bits=(2,), fault_injection="yes"), "fault_injection must be true or false"),
])
def test_bad_specs(kw, msg):
    with pytest.raises(ValueError, match=msg):
        EqSpikeSpec(**{**SMALL, **kw})


def test_bad_twin_inputs():
    tern, _ = _specs(fault_injection=True)
    w = _weights(tern)
    with pytest.raises(ValueError, match=r"w0 has values in \[-2"):
        EqSpikeTwin(tern, {**w, "w0": w["w0"] * 2})
    twin = EqSpikeTwin(tern, w)
    with pytest.raises(ValueError, match="mode must be 'off' or 'static'"):
        configure_faults(twin, w, 0.1, "dynamic")
    twin.memory.write_reg(0, ctrl_value("dynamic"))
    with pytest.raises(ValueError, match="mode='dynamic'"):
        from golden.eqspike.ternary import program
        program(twin, w)
    with pytest.raises(ValueError, match="fault_injection=true"):
        configure_faults(EqSpikeTwin(_specs()[0], w), w, 0.1)


def test_ternary_digests_differ():
    base = {**SMALL, "weight_bits": (2,)}
    ds = {EqSpikeSpec(**base).digest(), EqSpikeSpec(**base, weight_kind="ternary").digest(),
          EqSpikeSpec(**base, weight_kind="ternary", fault_injection=True).digest()}
    assert len(ds) == 3
    t = EqSpikeSpec(**base, weight_kind="ternary", fault_injection=True)
    assert EqSpikeSpec.from_toml(t.to_toml()) == t


def _float_export(path):
    """A fresh (untrained) 784-16-10 float EqSpike export, written as ``python -m golden.eqspike export`` does."""
    from golden.eqspike.__main__ import EXPORT_KEYS
    from golden.eqspike.config import EqSpikeConfig
    from golden.eqspike.network import EqSpikeNet
    from golden.export import write_export

    cfg = EqSpikeConfig(layers=(784, 16, 10))
    net = EqSpikeNet(cfg)
    arrays = {k: v.detach().cpu().numpy() for k, v in net.named_parameters()}
    d = cfg.to_dict()
    write_export(path, net.spec, arrays, preprocessing={"dataset": "mnist-subset", "input": "pixel/255"},
                 extra={"eqspike": {k: d[k] for k in EXPORT_KEYS}})
    return arrays


def test_cli_quantize_ternary_and_evaluate_with_faults(tmp_path, capsys):
    import json

    from golden.eqspike.image import load_image
    from golden.eqspike.twin_cli import main

    arrays = _float_export(tmp_path / "exp")
    tern = ["--set", "layers=[784,16,10]", "--set", "training=false", "--set", 'weight_kind="ternary"',
            "--set", "weight_bits=2", "--set", "fault_injection=true"]
    assert main(["quantize", "--export", str(tmp_path / "exp"), *tern, "--out", str(tmp_path / "img")]) == 0
    spec, w, man = load_image(tmp_path / "img")
    t, shifts, _ = ternarize_arrays(arrays, 2)
    assert spec.weight_kind == "ternary" and list(spec.weight_frac) == shifts
    assert all((w[f"w{l}"] == t[f"w{l}"]).all() for l in range(2))
    args = ["evaluate", "--image", str(tmp_path / "img"), "--dataset", "mnist-subset", "--limit", "10",
            "--count-samples", "1"]
    assert main([*args, "--fault-rate", "0.1", "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["faults"]["injected"] > 0
    assert main([*args, "--fault-rate", "0.9"]) == 2
    assert "--fault-rate must be a probability in [0, 0.5], not 0.9" in capsys.readouterr().err
    assert main(["quantize", "--export", str(tmp_path / "exp"), "--set", "layers=[784,16,10]", "--set",
                 "training=false", "--out", str(tmp_path / "fimg")]) == 0
    assert main(["evaluate", "--image", str(tmp_path / "fimg"), "--dataset", "mnist-subset", "--limit", "5",
                 "--fault-rate", "0.1"]) == 2
    assert "--fault-rate: fault experiments need" in capsys.readouterr().err


def test_rtl_builds_ternary_inference_and_training_cores():
    """Ternary inference (tests/test_eqspike_core_ternary.py) and training with latents
    (tests/test_eqspike_core_ternary_train.py) are in the RTL; the ternary update rule is not (refused)."""
    from amaranth.hdl import Fragment

    from hdl.eqspike import EqSpikeCore

    Fragment.get(EqSpikeCore(_specs()[0]), None)  # (elaborated: an unused core would warn)
    Fragment.get(EqSpikeCore(EqSpikeSpec(**TRAIN, weight_kind="ternary")), None)
    with pytest.raises(ValueError, match="update='spike' only"):
        EqSpikeCore(EqSpikeSpec(**TRAIN, weight_kind="ternary", update="ternary"))


TRAIN = dict(layers=(20, 12, 5), lanes=4, training=True, encoder_phase="zero", T1=12, T2=1, estimator="one-sided",
             weight_bits=(2,), weight_frac=(3, 2), bias_frac=(6,), lr_shift=(2,))


def _latent_weights(spec, seed=0, lf=7):
    w = _weights(spec, seed)
    for l in range(spec.n_layers):
        w[f"v{l}"] = w[f"w{l}"] << lf
    return w


def test_ternary_training_latent_update_equals_the_fixed_update_at_latent_scale(subset_small):
    """T2 = 1, one-sided: a sample's dynamics run with the weights of its start, so a fixed twin whose
    weights are the latent ones (v = t·2^lf, frac weight_frac + lf: the same values) must compute the same
    update: its weights == the latent weights, and the cells == their ternary values, after every sample."""
    tern = EqSpikeSpec(**TRAIN, weight_kind="ternary", latent_bits=(9,), latent_frac=(7,))
    fixed = EqSpikeSpec(**{**TRAIN, "weight_bits": (9,), "weight_frac": (10, 9)})
    assert [tern.update_shift(l) for l in range(2)] == [fixed.update_shift(l) for l in range(2)]
    w = _latent_weights(tern)
    a = EqSpikeTwin(tern, w)
    b = EqSpikeTwin(fixed, {k.replace("v", "w"): v for k, v in w.items() if not k.startswith("w")})
    x, y = subset_small
    changed = 0
    for i in range(12):
        ra, rb = a.train_sample(x[i], int(y[i])), b.train_sample(x[i], int(y[i]))
        assert ra.counts() == rb.counts()
        wa, wb = a.weights, b.weights
        for l in range(2):
            assert (wa[f"v{l}"] == wb[f"w{l}"]).all() and (wa[f"b{l}"] == wb[f"b{l}"]).all()
            assert (wa[f"w{l}"] == tern.ternarize_latent(l, wa[f"v{l}"])).all()
        # the next sample starts from the ternary cells: give the fixed twin those values again
        b = EqSpikeTwin(fixed, {**{f"w{l}": wa[f"w{l}"] << 7 for l in range(2)},
                                **{f"b{l}": wa[f"b{l}"] for l in range(2)}})
        a = EqSpikeTwin(tern, {**wa, **{f"v{l}": wa[f"w{l}"] << 7 for l in range(2)}})
        changed += sum(int((wa[f"w{l}"] != w[f"w{l}"]).sum()) for l in range(2))
    assert changed > 0


def test_ternary_training_static_faults_stay_until_the_value_changes(subset_small):
    tern = EqSpikeSpec(**{**TRAIN, "T2": 4}, weight_kind="ternary", fault_injection=True, latent_bits=(8,),
                       latent_frac=(4,), latent_threshold=(2,))
    w = _latent_weights(tern, 1, lf=3)
    twin = EqSpikeTwin(tern, w)
    info = configure_faults(twin, w, 0.2, "static", seed=3)
    assert info["injected"] > 0
    stored0 = twin.weights
    x, y = subset_small
    ever = [np.zeros(w[f"w{l}"].shape, bool) for l in range(2)]
    for i in range(10):
        twin.train_sample(x[i], int(y[i]))
        for l in range(2):
            ever[l] |= twin._t[l].T != w[f"w{l}"]  # the ternary value of the latent weight moved (per sample)
    now = twin.weights
    for l in range(2):
        # a cell whose ternary value never moved keeps what was stored at programming (its fault included)
        assert (now[f"w{l}"][~ever[l]] == stored0[f"w{l}"][~ever[l]]).all()
        # a reprogrammed cell: its new value, or an adjacent fault of it (never the opposite sign)
        t_now = tern.ternarize_latent(l, now[f"v{l}"])
        assert not ((t_now != 0) & (now[f"w{l}"] == -t_now)).any()
    assert sum(int(e.sum()) for e in ever) > 0
    assert (stored0["w0"] != w["w0"]).any()  # faults were stored
    assert twin.memory.injected >= info["injected"]


def test_latent_fields_change_the_digest_and_round_trip():
    base = {**TRAIN, "weight_kind": "ternary"}
    ds = {EqSpikeSpec(**base).digest()}
    for kw in (dict(latent_bits=(9,)), dict(latent_frac=(6,)), dict(latent_threshold=(3,))):
        t = EqSpikeSpec(**base, **kw)
        assert t.digest() not in ds and EqSpikeSpec.from_toml(t.to_toml()) == t
        ds.add(t.digest())


def test_quantize_ternary_training_image_starts_latents_at_twice_the_threshold(tmp_path):
    from golden.eqspike.image import quantize_export_ternary

    _float_export(tmp_path / "exp")
    base = EqSpikeSpec(layers=(784, 16, 10), weight_kind="ternary", weight_bits=(2,))
    spec, w, _ = quantize_export_ternary(tmp_path / "exp", base)
    assert spec.ternary_training
    for l in range(2):
        assert (w[f"v{l}"] == w[f"w{l}"] * 2 * spec.latent_threshold[l]).all()
    EqSpikeTwin(spec, w)  # a valid image: cells == ternary values of the latents
