"""Ternary/binary-weight EP (golden.ternary): quantisers, the read-error model, training, export, CLI, sweep."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from golden.ep import EPNet, NetSpec
from golden.export import ExportError, write_array_dir
from golden.ternary.__main__ import main as cli_main
from golden.ternary.errors import StoredWeights, inject, transition_probabilities
from golden.ternary.export import float_predict, load_ternary_export, write_ternary_export
from golden.ternary.network import TernaryEPNet, ep_step, ep_update, init_states, relax
from golden.ternary.ternarize import alpha, binarize, effective_weight, ternarize
from golden.ternary.train import TernaryConfig, evaluate, load_checkpoint, model_from_checkpoint, train

REPO = Path(__file__).resolve().parents[1]


def quiet(*_a, **_k):
    pass


def small_cfg(**kw) -> TernaryConfig:
    base = dict(
        layers=(784, 32, 10),
        dataset="mnist-subset",
        T1=12,
        T2=4,
        beta=0.5,
        lrs=(3e-3,),
        batch_size=25,
        epochs=2,
        train_limit=300,
        test_limit=100,
    )
    base.update(kw)
    return TernaryConfig(**base)


# --- quantisers ----------------------------------------------------------------------------------
def test_ternarize_values_and_threshold():
    w = torch.tensor([-1.0, -0.0501, -0.05, -0.01, 0.0, 0.03, 0.05, 0.05001, 0.7])
    assert ternarize(w).tolist() == [-1, -1, 0, 0, 0, 0, 0, 1, 1]  # |w| > delta, the threshold itself is 0
    assert ternarize(w, delta=0.5).tolist() == [-1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert ternarize(w, delta=0).tolist() == [-1, -1, -1, -1, 0, 1, 1, 1, 1]
    assert ternarize(w.double()).dtype == torch.float64


def test_binarize_values():
    w = torch.tensor([-2.0, -1e-9, -0.0, 0.0, 1e-9, 3.0])
    assert binarize(w).tolist() == [-1, -1, 1, 1, 1, 1]  # sign(0) = +1 (also for -0.0)


def test_effective_weights_are_exact_alpha_multiples():
    for kind in ("ternary", "binary"):
        net = TernaryEPNet((784, 40, 10), kind, 0.05, (5, 4), (0.1,), seed=3)
        for l, (w_eff, t) in enumerate(zip(net.effective_weights(), net.stored_values(), strict=True)):
            a = alpha(net.alpha_shift[l])
            assert a == 2.0 ** -net.alpha_shift[l]
            assert torch.equal(w_eff / a, t)  # exact: scaling by a power of two
            assert set(torch.unique(t).tolist()) <= ({-1.0, 0.0, 1.0} if kind == "ternary" else {-1.0, 1.0})
            assert torch.equal(effective_weight(t, net.alpha_shift[l]), w_eff)
    t = net.stored_values()[0]
    assert (t == 0).sum() == 0  # binary nets have no zeros


# --- error model ---------------------------------------------------------------------------------
def _within_3sigma(count: int, n: int, q: float) -> bool:
    return abs(count - n * q) <= 3 * math.sqrt(n * q * (1 - q)) + 1e-9


def _check_transitions(before: torch.Tensor, after: torch.Tensor, p: float, kind: str) -> None:
    zero = before == 0
    nz = ~zero
    p0 = zero.double().mean().item()
    q0, q1 = transition_probabilities(p, p0, kind)
    nzero, nnz = int(zero.sum()), int(nz.sum())
    assert nzero + nnz >= 1_000_000
    if kind == "ternary":
        assert math.isclose(q0, 2 * p / (1 + p0)) and math.isclose(q1, p / (1 + p0))
        assert _within_3sigma(int(((after == 1) & zero).sum()), nzero, q0 / 2)  # 0 → +1
        assert _within_3sigma(int(((after == -1) & zero).sum()), nzero, q0 / 2)  # 0 → −1
        assert _within_3sigma(int(((after == 0) & nz).sum()), nnz, q1)  # ±1 → 0
        assert int((after * before < 0).sum()) == 0  # never a sign flip
        assert set(torch.unique(after).tolist()) <= {-1.0, 0.0, 1.0}
    else:
        assert (q0, q1) == (0.0, p)
        assert _within_3sigma(int((after == -before).sum()), nnz, p)
        assert int((after == 0).sum()) == 0


@pytest.mark.parametrize("kind", ["ternary", "binary"])
def test_static_injection_rates_within_3_sigma(kind):
    g = torch.Generator().manual_seed(11)
    shape = (1000, 1200)
    t = (
        torch.randint(-1, 2, shape, generator=g).float()
        if kind == "ternary"
        else binarize(torch.randn(shape, generator=g))
    )
    _check_transitions(t, inject(t, 0.02, kind, g), 0.02, kind)


@pytest.mark.parametrize("kind", ["ternary", "binary"])
@pytest.mark.parametrize("direction", ["bottom_up", "top_down"])
def test_dynamic_read_rates_within_3_sigma(kind, direction):
    """Through the batched per-read path: with one-hot states, sample b sees column (row) b of its own read."""
    g = torch.Generator().manual_seed(5)
    shape = (4000, 250) if direction == "bottom_up" else (250, 4000)
    t = (
        torch.randint(-1, 2, shape, generator=g).float()
        if kind == "ternary"
        else binarize(torch.randn(shape, generator=g))
    )
    stored = StoredWeights([t], (0,), kind, p=0.01, mode="dynamic", generator=g, block=1)
    if direction == "bottom_up":
        seen = stored.bottom_up(0, torch.eye(shape[1]), torch.zeros(shape[0])).t()
    else:
        seen = stored.top_down(0, torch.eye(shape[0]), torch.zeros(shape))
    _check_transitions(t, seen, 0.01, kind)


def test_static_errors_fixed_across_reads_dynamic_redrawn():
    g = torch.Generator().manual_seed(0)
    t = ternarize(torch.randn(200, 300, generator=g) * 0.1)
    s = torch.rand(8, 300, generator=g)
    post = torch.rand(8, 200, generator=g)
    static = StoredWeights([t], (3,), "ternary", p=0.05, mode="static", generator=g)
    assert not torch.equal(static.read(0), t)  # the programmed matrix has errors …
    assert torch.equal(static.read(0), static.read(0))  # … and every read sees the same ones
    base = torch.zeros(200)
    assert torch.equal(static.bottom_up(0, s, base), static.bottom_up(0, s, base))
    assert torch.equal(static.bottom_up(0, s, base), torch.addmm(base, s, static.read(0).t(), alpha=2**-3))
    assert torch.equal(static.top_down(0, post, torch.zeros(8, 300)), static.top_down(0, post, torch.zeros(8, 300)))
    dyn = StoredWeights([t], (3,), "ternary", p=0.05, mode="dynamic", generator=g)
    assert torch.equal(dyn.ts[0], t)  # the stored values never change …
    assert not torch.equal(dyn.read(0), dyn.read(0))  # … every read draws anew
    a, b = dyn.bottom_up(0, s, base), dyn.bottom_up(0, s, base)
    assert not torch.equal(a, b)
    same = torch.cat([s[:1]] * 8)  # one image in every sample: independent errors per sample
    c = dyn.bottom_up(0, same, base)
    assert not all(torch.equal(c[0], c[i]) for i in range(1, 8))
    clean = StoredWeights([t], (3,), "ternary", p=0.0, mode="dynamic", generator=g)
    assert torch.equal(clean.bottom_up(0, s, base), torch.addmm(base, s, t.t(), alpha=2**-3))


# --- the network against golden.ep ----------------------------------------------------------------
def test_relaxation_and_update_match_golden_ep_with_effective_weights():
    net = TernaryEPNet((784, 30, 20, 10), "ternary", 0.05, (4, 3, 3), (0.1,), seed=1, dtype=torch.float64)
    ref = EPNet(NetSpec(layers=(784, 30, 20, 10), activation="hard_sigmoid"), dtype=torch.float64)
    with torch.no_grad():
        for l, w in enumerate(net.effective_weights()):
            getattr(ref, f"w{l}").copy_(w)
            getattr(ref, f"b{l}").copy_(getattr(net, f"b{l}"))
    g = torch.Generator().manual_seed(2)
    x = torch.rand(16, 784, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (16,), generator=g)
    target = torch.nn.functional.one_hot(y, 10).double()
    stored = net.program()
    f0 = stored.input_term(x, net.b0)
    free = relax(stored, net.biases(), f0, init_states(net.layers, 16, torch.float64), 25)
    clamped = ref.clamp(x)
    ref_free = ref.relax(clamped, ref.init_state(16), 25)
    s_p, s_m = (relax(stored, net.biases(), f0, free, 8, b, target) for b in (0.5, -0.5))
    r_p, r_m = (ref.relax(clamped, ref_free, 8, b, target) for b in (0.5, -0.5))
    for a, b in zip(free + s_p + s_m, ref_free + r_p + r_m, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    upd, ref_upd = ep_update(x, s_m, s_p, 0.5), ref.ep_update(clamped, r_m, -0.5, r_p, 0.5, target)
    for k in ref_upd:
        torch.testing.assert_close(upd[k], ref_upd[k], rtol=0, atol=1e-12)


def test_update_moves_latent_weights_by_delta_over_alpha():
    net = TernaryEPNet((784, 20, 10), "ternary", 0.05, (5, 4), (0.1,), seed=0, dtype=torch.float64)
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    opt = torch.optim.SGD([{"params": [net.w0, net.b0], "lr": 0.01}, {"params": [net.w1, net.b1], "lr": 0.02}])
    x, y = torch.rand(10, 784, dtype=torch.float64), torch.arange(10)
    upd, _ = ep_step(net, net.program(), x, y, 10, 4, 0.5)
    net.apply_update(upd, opt)
    torch.testing.assert_close(net.w0, (before["w0"] + 0.01 * upd["w0"] * 32).clamp(-1, 1), rtol=0, atol=1e-15)
    torch.testing.assert_close(net.w1, (before["w1"] + 0.02 * upd["w1"] * 16).clamp(-1, 1), rtol=0, atol=1e-15)
    torch.testing.assert_close(net.b1, before["b1"] + 0.02 * upd["b1"], rtol=0, atol=1e-15)


# --- training ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ternary", "binary"])
def test_tiny_training_beats_chance(tmp_path, kind):
    cfg = small_cfg(kind=kind, epochs=2, train_limit=600, test_limit=200, layers=(784, 48, 10))
    hist = train(cfg, tmp_path / kind, log=quiet)["history"]
    assert hist[-1]["test_acc"] > 0.6  # chance is 0.1
    assert hist[-1]["train_acc"] > hist[0]["train_acc"] - 0.05
    metrics = json.loads((tmp_path / kind / "metrics.json").read_text())
    assert metrics["final_test_acc"] == hist[-1]["test_acc"]
    assert (tmp_path / kind / "training.png").stat().st_size > 0


def test_resume_is_bit_identical_with_error_aware_training(tmp_path):
    cfg = small_cfg(train_error_rate=0.02, train_error_mode="dynamic", train_limit=150, test_limit=50)
    full = train(cfg, tmp_path / "full", log=quiet)
    train(cfg, tmp_path / "part", stop_after=1, log=quiet)
    resumed = train(cfg, tmp_path / "part", resume=True, log=quiet)
    a, b = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k, st in a["optimizer"]["state"].items():
        for name, v in st.items():
            assert torch.equal(v, b["optimizer"]["state"][k][name]), (k, name)

    def strip(h):
        return [{k: v for k, v in r.items() if k not in ("train_samples_per_s", "eval_s")} for r in h]

    assert strip(full["history"]) == strip(resumed["history"])
    assert "test_acc_with_errors" in full["history"][-1]
    with pytest.raises(ValueError, match=r"differs from the checkpoint's in \['train_error_rate'\]"):
        train(dataclasses.replace(cfg, train_error_rate=0.03), tmp_path / "part", resume=True, log=quiet)
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(cfg, tmp_path / "full", log=quiet)


# --- export --------------------------------------------------------------------------------------
def test_export_round_trip_and_float_engine(tmp_path):
    cfg = small_cfg(epochs=1, kind="binary")
    train(cfg, tmp_path / "run", log=quiet)
    net, cfg = model_from_checkpoint(load_checkpoint(tmp_path / "run"))
    exp = load_ternary_export(write_ternary_export(tmp_path / "exp", net, cfg))
    m = json.loads((tmp_path / "exp" / "manifest.json").read_text())
    assert m["format"] == "epforge-ternary-export/1" and m["kind"] == "binary" and m["delta"] == 0.05
    assert m["alpha_shift"] == list(cfg.alpha_shift) == m["weight_frac"] and m["layers"] == [784, 32, 10]
    assert sorted(m["arrays"]) == ["b0", "b1", "t0", "t1"]
    assert m["arrays"]["t0"]["dtype"] == "int8" and m["arrays"]["b0"]["dtype"] == "float32"
    assert m["arrays"]["t0"]["shape"] == [32, 784]
    for l, t in enumerate(net.stored_values()):
        assert np.array_equal(exp.t[l], t.numpy().astype(np.int8))
    from golden.data import load_dataset

    ds = load_dataset("mnist-subset", "test")
    x = torch.from_numpy(ds.images[:100]).float().div_(255.0)
    for p, mode in ((0.0, "static"), (0.05, "static"), (0.05, "dynamic")):
        acc = float(np.mean(float_predict(exp, p, mode, "binary", 7, ds.images[:100]) == ds.labels[:100]))
        assert acc == pytest.approx(evaluate(net, x, torch.from_numpy(ds.labels[:100]), cfg.T1, p=p, mode=mode, seed=7))
    with pytest.raises(ValueError, match="does not match the export's kind"):
        float_predict(exp, 0.0, "static", "ternary", 0, ds.images[:5])


def test_export_loader_refuses_bad_values_and_changed_bytes(tmp_path):
    net = TernaryEPNet((784, 8, 10), "binary", 0.05, (5, 4), (0.1,))
    cfg = TernaryConfig(layers=(784, 8, 10), kind="binary")
    write_ternary_export(tmp_path / "e", net, cfg)
    m = json.loads((tmp_path / "e" / "manifest.json").read_text())
    arrays = {k: np.load(tmp_path / "e" / f"{k}.npy") for k in m["arrays"]}
    arrays["t1"][0, 0] = 0  # a zero is not a binary weight
    manifest = {k: v for k, v in m.items() if k != "arrays"}
    write_array_dir(tmp_path / "bad", arrays, manifest)
    with pytest.raises(ExportError, match=r"t1 holds \[0\], not allowed for kind 'binary'"):
        load_ternary_export(tmp_path / "bad")
    arrays["t1"][0, 0] = 1
    np.save(tmp_path / "e" / "t1.npy", np.where(arrays["t1"] == 1, -1, 1).astype(np.int8))
    with pytest.raises(ExportError, match="sha256"):
        load_ternary_export(tmp_path / "e")


# --- bad inputs ----------------------------------------------------------------------------------
def test_bad_inputs_give_clear_errors():
    w = torch.zeros(3)
    with pytest.raises(ValueError, match="delta must be a non-negative finite number, not -0.1"):
        ternarize(w, delta=-0.1)
    with pytest.raises(ValueError, match="delta must be a non-negative finite number, not nan"):
        ternarize(w, delta=float("nan"))
    with pytest.raises(ValueError, match=r"alpha_shift must have one entry per connection \(2\), not 1"):
        TernaryConfig(alpha_shift=(5,))
    with pytest.raises(ValueError, match=r"alpha_shift entries must be integers in \[0, 24\], not -1"):
        TernaryConfig(alpha_shift=(5, -1))
    with pytest.raises(ValueError, match="kind must be one of"):
        TernaryConfig(kind="quaternary")
    with pytest.raises(ValueError, match=r"error rate p must be a number in \[0, 1\], not 1.5"):
        TernaryConfig(train_error_rate=1.5)
    with pytest.raises(ValueError, match="error mode must be one of"):
        TernaryConfig(train_error_mode="sometimes")
    with pytest.raises(ValueError, match="latent_clip"):
        TernaryConfig(latent_clip=0.01)
    with pytest.raises(ValueError, match=r"lrs must have 1 or 2 entries"):
        TernaryConfig(lrs=(1e-3, 1e-3, 1e-3))
    with pytest.raises(ValueError, match="layers must start with 784 inputs"):
        TernaryConfig(layers=(100, 10))
    with pytest.raises(ValueError, match="a binary matrix must hold only"):
        StoredWeights([torch.zeros(2, 2)], (0,), "binary", p=0.1, mode="dynamic")
    with pytest.raises(ValueError, match="p must be at most"):
        inject(torch.ones(4, 4), 0.9, "ternary")


def test_cli_help_train_export_evaluate(tmp_path, capsys):
    for cmd in ([], ["train"], ["evaluate"], ["export"]):
        with pytest.raises(SystemExit) as e:
            cli_main([*cmd, "--help"])
        assert e.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--alpha-shift", "--train-error-rate", "--error-mode", "--error-seeds", "--resume", "--kind"):
        assert flag in out
    run = tmp_path / "run"
    assert (
        cli_main(
            [
                "train",
                "--dataset",
                "mnist-subset",
                "--layers",
                "784",
                "16",
                "10",
                "--T1",
                "8",
                "--T2",
                "3",
                "--train-limit",
                "100",
                "--test-limit",
                "50",
                "--out",
                str(run),
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert cli_main(["export", "--checkpoint", str(run), "--out", str(tmp_path / "exp")]) == 0
    assert (
        cli_main(
            [
                "evaluate",
                "--export",
                str(tmp_path / "exp"),
                "--limit",
                "50",
                "--error-rate",
                "0.01",
                "--error-seeds",
                "1",
                "2",
                "--json",
                str(tmp_path / "e.json"),
            ]
        )
        == 0
    )
    res = json.loads((tmp_path / "e.json").read_text())
    assert res["n"] == 50 and res["seeds"] == [1, 2] and len(res["accuracy"]) == 2
    capsys.readouterr()
    assert cli_main(["train", "--delta", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "error: delta must be a non-negative finite number, not -1.0" in capsys.readouterr().err


# --- the sweep bench -----------------------------------------------------------------------------
def test_sweep_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    spec = importlib.util.spec_from_file_location("epforge_bench_ternary_sweep", REPO / "bench" / "ternary_sweep.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    nets = []
    for kind in ("ternary", "binary"):
        train(small_cfg(kind=kind, epochs=1, train_limit=100, test_limit=20, T1=6, T2=2), tmp_path / kind, log=quiet)
        nets.append(str(tmp_path / kind))
    empty = tmp_path / "nodata"
    empty.mkdir()
    assert (
        mod.main(
            [
                "--nets",
                *nets,
                "--ps",
                "1e-4",
                "4e-2",
                "1e-1",
                "--static-seeds",
                "0",
                "1",
                "--limit",
                "40",
                "--data-dir",
                str(empty),
                "--allow-subset",
                "--threads",
                "1",
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    res = json.loads((tmp_path / "s" / "ternary_sweep.json").read_text())
    assert [r["kind"] for r in res["nets"]] == ["ternary", "binary"] and res["engine"] == "float"
    b = res["nets"][1]["modes"]["static"]
    assert set(b["summary"]) == {"loss_at_0.0001", "loss_at_0.04"} and len(b["rows"][0]["acc"]) == 2
    assert "p_at_1_point_loss" in res["nets"][0]["modes"]["dynamic"]["summary"]
    assert (tmp_path / "s" / "ternary_sweep.png").stat().st_size > 0
    data = ["--limit", "40", "--data-dir", str(empty), "--allow-subset"]
    include = ["--include", str(tmp_path / "s" / "ternary_sweep.json"), *data]
    assert mod.main([*include, "--ps", "1e-4", "4e-2", "1e-1", "--out", str(tmp_path / "s2")]) == 0
    res2 = json.loads((tmp_path / "s2" / "ternary_sweep.json").read_text())
    assert res2["nets"] == res["nets"]
    with pytest.raises(SystemExit):  # other p values than the included report's
        mod.main([*include, "--ps", "1e-4", "--out", str(tmp_path / "s3")])
    hit = mod.p_at_loss([1e-3, 1e-2, 1e-1], [0.0, 0.5, 1.5], 1.0)
    assert hit["p"] == pytest.approx(10**-1.5)
    assert mod.p_at_loss([1e-3, 1e-2], [2.0, 3.0], 1.0)["bound"] == "below"
    assert mod.p_at_loss([1e-3, 1e-2], [0.0, 0.1], 1.0)["bound"] == "above"


def test_sweep_bench_twin_engine(tmp_path, monkeypatch):
    """The twin engine: the ternary core's integer twin with the memory's own fault PRNG (static mode only
    here), deterministic per seed; --modes limits the sweep and the figure to the modes asked for."""
    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    spec = importlib.util.spec_from_file_location("epforge_bench_ternary_sweep2", REPO / "bench" / "ternary_sweep.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    train(small_cfg(kind="binary", epochs=1, train_limit=100, test_limit=20, T1=6, T2=2), tmp_path / "b", log=quiet)
    empty = tmp_path / "nodata"
    empty.mkdir()
    args = ["--nets", str(tmp_path / "b"), "--engine", "twin", "--modes", "static", "--ps", "0.3",
            "--static-seeds", "0", "--limit", "30", "--data-dir", str(empty), "--allow-subset", "--out"]
    assert mod.main([*args, str(tmp_path / "s")]) == 0
    res = json.loads((tmp_path / "s" / "ternary_sweep.json").read_text())
    assert res["engine"] == "twin" and list(res["nets"][0]["modes"]) == ["static"]
    assert (tmp_path / "s" / "ternary_sweep.png").stat().st_size > 0
    exp = mod.load_net(str(tmp_path / "b"))
    from golden.data import load_dataset

    images = load_dataset("mnist-subset", "test").images[:30]
    a = mod.twin_engine(exp, 0.3, "static", "binary", 0, images)
    assert np.array_equal(a, mod.twin_engine(exp, 0.3, "static", "binary", 0, images))  # same seed, same faults
    clean = mod.twin_engine(exp, 0.0, "static", "binary", 0, images)
    flips = [mod.twin_engine(exp, 0.3, "static", "binary", s, images) for s in (1, 2, 3)]
    assert any(not np.array_equal(f, clean) for f in flips)  # 30 % sign flips change some predictions
