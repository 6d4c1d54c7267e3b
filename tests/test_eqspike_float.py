"""Float EqSpike (golden/eqspike): encoders, spike-driven dynamics and updates, training, resume, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from golden.eqspike import EqSpikeConfig, EqSpikeNet, sigma_delta_
from golden.eqspike.__main__ import build_parser
from golden.eqspike.__main__ import main as cli_main
from golden.eqspike.train import load_eqspike_checkpoint, train


def quiet(*_a, **_k):
    pass


def tiny_cfg(**kw) -> EqSpikeConfig:
    base = dict(layers=(784, 32, 10), dataset="mnist-subset", T1=32, T2=16, beta=0.5, lrs=(0.2, 0.1),
                batch_size=20, epochs=2, train_limit=200, test_limit=100)
    base.update(kw)
    return EqSpikeConfig(**base)


def subset_batch(n: int, dtype=torch.float64):
    from golden.data import load_dataset

    ds = load_dataset("mnist-subset", "train")
    x = torch.from_numpy(ds.images[:n]).to(dtype).div(255).reshape(n, -1)
    return x, torch.from_numpy(ds.labels[:n]).long()


# --- encoders ------------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["zero", "random"])
def test_sigma_delta_bound_over_every_window(phase):
    """|Σ_t e − Σ_t s| ≤ 1 over every window [a, b), for many random sequences (float64).

    With D(t) = Σ_{u<t} (e − s), every window's error is D(b) − D(a), so the bound over all windows
    is max D − min D ≤ 1 (D(0) = 0 included). The fixed-point twin will check it exhaustively.
    """
    g = torch.Generator().manual_seed(1)
    n, T = 2000, 300
    kinds = [torch.rand(n, T, generator=g, dtype=torch.float64),  # white
             torch.rand(n, 1, generator=g, dtype=torch.float64).expand(n, T).clone(),  # constant
             (torch.rand(n, T, generator=g, dtype=torch.float64) < 0.5).to(torch.float64),  # extremes 0/1
             torch.rand(n, T, generator=g, dtype=torch.float64).cumsum(1).remainder(1.0)]  # ramps
    for s in kinds:
        phi = torch.zeros(n, dtype=torch.float64)
        if phase == "random":
            phi = torch.rand(n, generator=g, dtype=torch.float64) - 0.5
        e = torch.stack([sigma_delta_(s[:, t], phi) for t in range(T)], 1)
        assert set(e.unique().tolist()) <= {0.0, 1.0}
        D = torch.cat([torch.zeros(n, 1, dtype=torch.float64), (e - s).cumsum(1)], 1)
        spread = D.max(1).values - D.min(1).values
        assert spread.max().item() <= 1.0 + 1e-9
        assert phi.abs().max().item() <= 0.5 + 1e-12  # the residue stays in [−½, ½]


def test_stochastic_encoder_is_unbiased():
    cfg = tiny_cfg(encoder="stochastic")
    net = EqSpikeNet(cfg, dtype=torch.float64)
    v = torch.linspace(0, 1, 11, dtype=torch.float64).repeat(4000, 1)
    e = net.encode(v, None, torch.Generator().manual_seed(0))
    p = v[0]
    sigma = (p * (1 - p) / 4000).sqrt()
    assert ((e.mean(0) - p).abs() <= 5 * sigma + 1e-12).all()
    assert e[:, 0].sum() == 0 and e[:, -1].sum() == 4000  # s = 0 never spikes, s = 1 always


# --- dynamics ------------------------------------------------------------------------------------
def test_a_spike_adds_its_weight_column():
    """One step from rest with one input spike: s_1 = clip(ε (W[:, j] + b)) — an add, no multiply by a state."""
    cfg = tiny_cfg(layers=(784, 16, 10), eps_shift=0)
    net = EqSpikeNet(cfg, dtype=torch.float64)
    x = torch.zeros(1, 784, dtype=torch.float64)
    x[0, 123] = 1.0
    st = net.init_spike_state(x)
    net.run(x, st, 1)
    assert st.e[0][0].nonzero().flatten().tolist() == [123]
    assert torch.equal(st.s[0][0], (net.w0[:, 123] + net.b0).clamp(0, 1))
    assert torch.equal(st.s[1][0], net.b1.clamp(0, 1))  # hidden neurons had not spiked yet


def test_rate_dynamics_settle_on_the_ep_fixed_point():
    """Without spikes (e = s) the leaky dynamics converge to s = clip(W s_below + b + Wᵀ s_above): EP's."""
    net = EqSpikeNet(tiny_cfg(layers=(784, 24, 10)), dtype=torch.float64)
    x, _ = subset_batch(8)
    st = net.free_phase(x, 400, spiking=False)
    h, o = st.s
    assert torch.allclose(h, (x @ net.w0.t() + net.b0 + o @ net.w1).clamp(0, 1), atol=1e-9)
    assert torch.allclose(o, (h @ net.w1.t() + net.b1).clamp(0, 1), atol=1e-9)


def _cos(a, b):
    return float((a * b).sum() / (a.norm() * b.norm()))


def _spike_vs_rate(trace_shift, T2, stages=2, seed=0, update="spike", theta=0.01):
    cfg = tiny_cfg(layers=(784, 48, 10), trace_shift=trace_shift, trace_stages=stages, update=update, theta=theta,
                   seed=seed)
    net = EqSpikeNet(cfg, dtype=torch.float64)
    x, y = subset_batch(60)
    ref, _ = net.spike_update(x, y, 300, 150, 0.5, "symmetric", spiking=False)
    up, _ = net.spike_update(x, y, 64, T2, 0.5, "symmetric", gen=torch.Generator().manual_seed(seed))
    return {k: _cos(up[k], ref[k]) for k in ref}


def test_spike_driven_phase_sum_approaches_the_ep_update():
    """The phase sum of e·Δŝ estimates Δ(ŝ_i ŝ_j), hence EP's update, up to the encoder's quantisation
    (≤ 1 spike per window, i.e. O(1/T2) relative) and the trace's lag/ripple (two-stage λ = 2^-k:
    ripple O(λ²) per step): the cosine rises towards 1 with T2 and with a longer trace, and a
    one-stage trace (ripple O(λ)) is clearly worse. Measured values are in docs/eqspike.md."""
    short = _spike_vs_rate(3, 16)
    long = _spike_vs_rate(3, 64)
    longer_trace = _spike_vs_rate(4, 64)
    one_stage = _spike_vs_rate(3, 64, stages=1)
    for k in ("w0", "w1"):
        assert long[k] > short[k]
        assert longer_trace[k] >= 0.98, (k, longer_trace)
        assert one_stage[k] < long[k] - 0.1, (k, one_stage, long)
    for k in long:
        assert long[k] >= 0.95, (k, long)


def test_multilayer_spike_update_follows_ep():
    """Two hidden layers: every connection's spike-driven update (bottom-up and top-down terms) points along EP's."""
    cfg = tiny_cfg(layers=(784, 32, 24, 10), lrs=(0.1,), trace_shift=4)
    net = EqSpikeNet(cfg, dtype=torch.float64)
    x, y = subset_batch(60)
    ref, _ = net.spike_update(x, y, 400, 200, 0.5, "symmetric", spiking=False)
    up, _ = net.spike_update(x, y, 96, 64, 0.5, "symmetric", gen=torch.Generator().manual_seed(0))
    for k in ref:
        assert _cos(up[k], ref[k]) >= 0.9, (k, _cos(up[k], ref[k]))


def test_ternary_update_keeps_the_direction():
    tern = _spike_vs_rate(3, 64, update="ternary", theta=0.002)
    for k in ("w0", "w1", "b0", "b1"):
        assert tern[k] >= 0.8, (k, tern)


# --- training ---------------------------------------------------------------------------------------
def test_learns_on_a_tiny_subset(tmp_path):
    res = train(tiny_cfg(train_limit=600, test_limit=200, epochs=1), tmp_path / "r", device="cpu", log=quiet)
    assert res["history"][-1]["test_acc"] > 0.5  # chance is 10 %
    files = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert files == [".epforge-output.json", "checkpoint.pt", "config.json", "metrics.json", "training.png"]


@pytest.mark.parametrize("kw", [dict(), dict(encoder="stochastic", estimator="random-sign", optimizer="adam",
                                             lrs=(1e-3,), encoder_phase="random", lr_decay="cosine")])
def test_resume_is_bit_identical(tmp_path, kw):
    cfg = tiny_cfg(**kw)
    full = train(cfg, tmp_path / "full", device="cpu", log=quiet)
    train(cfg, tmp_path / "part", device="cpu", stop_after=1, log=quiet)
    resumed = train(cfg, tmp_path / "part", device="cpu", resume=True, log=quiet)
    a = load_eqspike_checkpoint(tmp_path / "full")
    b = load_eqspike_checkpoint(tmp_path / "part")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    drop = ("train_samples_per_s", "eval_s")
    assert [{k: v for k, v in r.items() if k not in drop} for r in full["history"]] == \
        [{k: v for k, v in r.items() if k not in drop} for r in resumed["history"]]


@pytest.mark.parametrize("kw, match", [
    (dict(beta=float("nan")), "beta must be a finite positive number"),
    (dict(beta=-0.1), "beta must be a finite positive number"),
    (dict(T1=0), "T1 must be a positive integer"),
    (dict(T2=-3), "T2 must be a positive integer"),
    (dict(lrs=(float("inf"),)), "lrs entries must be finite positive"),
    (dict(eps_shift=9), r"eps_shift must be an integer in \[0, 8\]"),
    (dict(trace_stages=3), "trace_stages must be 1 or 2"),
    (dict(encoder="poisson"), "encoder must be one of"),
    (dict(layers=(784, 10, 3)), "end with 10 classes"),
    (dict(theta=0.0), "theta must be a finite positive number"),
])
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny_cfg(**kw)


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_help_documents_every_option():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    assert {"train", "evaluate", "export"} <= set(sub.choices)
    for name, p in sub.choices.items():
        for a in p._actions:
            if a.dest != "help":
                assert a.help, f"{name} {a.option_strings} has no help"


@pytest.mark.parametrize("argv, match", [
    (["--beta", "nan"], "error: beta must be a finite positive number, not nan"),
    (["--T1", "0"], "error: T1 must be a positive integer, not 0"),
    (["--lrs", "inf"], "error: lrs entries must be finite positive numbers, not inf"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, argv, match):
    assert cli_main(["train", "--preset", "subset-eqspike", "--out", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.strip() == match


def test_cli_train_export_evaluate(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"preset": "subset-eqspike", "layers": [784, 16, 10], "epochs": 1,
                               "train_limit": 100, "test_limit": 50, "T1": 16, "T2": 8}))
    run = tmp_path / "run"
    assert cli_main(["train", "--config", str(cfg), "--out", str(run), "--device", "cpu"]) == 0
    assert cli_main(["export", "--checkpoint", str(run), "--out", str(tmp_path / "x")]) == 0
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert manifest["eqspike"]["trace_shift"] == 3 and set(manifest["arrays"]) == {"w0", "b0", "w1", "b1"}
    capsys.readouterr()
    assert cli_main(["evaluate", "--checkpoint", str(run), "--limit", "50"]) == 0
    a = capsys.readouterr().out
    assert cli_main(["evaluate", "--export", str(tmp_path / "x"), "--limit", "50"]) == 0
    b = capsys.readouterr().out
    assert a == b and "% of 50" in a
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{100 * metrics['final_test_acc']:.2f}%" in a


# --- STDP, events ------------------------------------------------------------------------------
def test_stdp_pair_protocol_sign_structure():
    """A presynaptic spike on a rising postsynaptic trace potentiates, on a falling one depresses (Σ e_pre·Δŝ_post);
    a presynaptic spike *before* the change reads nothing (causality) and the symmetric term Σ e_post·Δŝ_pre
    gives the opposite sign (the postsynaptic neuron fires more while the presynaptic trace decays)."""
    from golden.eqspike.stdp import pair_protocol

    dts = list(range(-20, 21))
    r = pair_protocol(dts, repeats=32)
    i = {dt: k for k, dt in enumerate(dts)}
    for dt in range(1, 21):
        assert r["rise_pre_term"][i[dt]] == 0 and r["fall_pre_term"][i[dt]] == 0  # exact: no future slope
    for dt in range(-12, 0):
        assert r["rise"][i[dt]] > 0.005 and r["fall"][i[dt]] < -0.005, dt
    for dt in range(1, 21):
        assert r["rise"][i[dt]] < -0.005 and r["fall"][i[dt]] > 0.005, dt
    peak = max(abs(v) for v in r["rise"].tolist())
    assert 0.02 < peak < 2 ** -3  # a two-stage trace moves by at most λ per step


def test_event_counts_are_consistent():
    from golden.eqspike.events import count_events, energy_report

    cfg = tiny_cfg(layers=(784, 20, 12, 10), lrs=(0.1,), T1=16, T2=8)
    net = EqSpikeNet(cfg)
    x, y = subset_batch(10, torch.float32)
    ev = count_events(net, x, y)
    assert set(ev) == {"free", "nudged+", "nudged-"}
    fan = [20, 12, 20 + 10, 12]  # targets per spike: input → h1; h1 → h2 only (the input is clamped); h2 → h1, out; …
    for ph, d in ev.items():
        assert d["synaptic_events"] == pytest.approx(sum(s * f for s, f in zip(d["spikes_per_layer"], fan,
                                                                                strict=True)))
        assert d["neuron_updates"] == d["steps"] * (20 + 12 + 10)
        assert (d["update_events"] == 0) == (ph == "free")
    # the input spikes follow the sigma-delta bound: Σ_t e = Σ_t x ± 1 per pixel
    assert abs(ev["free"]["spikes_per_layer"][0] - 16 * float(x.sum()) / 10) <= 784
    tern = EqSpikeNet(dataclasses_replace(cfg, update="ternary", theta=1.0))
    assert count_events(tern, x, y)["nudged+"]["update_events"] == 0  # |Δŝ| ≤ λ < θ: no comparator fires
    e = energy_report(ev, cfg.layers, cfg.T1, cfg.T2, cfg.estimator)
    assert e["truenorth"]["energy_j"]["training"] is None  # no on-chip learning there
    assert e["loihi"]["gpu_over_chip_rate_ep_w0x_every_step"]["inference"] > \
        e["loihi"]["gpu_over_chip_rate_ep_w0x_once"]["inference"]


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_cli_stdp_and_events(tmp_path, capsys):
    assert cli_main(["stdp", "--dt-max", "10", "--repeats", "4", "--out", str(tmp_path / "s")]) == 0
    rep = json.loads((tmp_path / "s" / "stdp.json").read_text())
    assert rep["dt"] == list(range(-10, 11)) and (tmp_path / "s" / "stdp.png").is_file()
    assert cli_main(["events", "--layers", "784", "16", "10", "--T1", "8", "--T2", "4", "--dataset", "mnist-subset",
                     "--samples", "5", "--out", str(tmp_path / "e")]) == 0
    rep = json.loads((tmp_path / "e" / "events.json").read_text())
    assert rep["samples"] == 5 and rep["per_sample"]["free"]["steps"] == 8
    assert cli_main(["stdp", "--trace-shift", "11", "--out", str(tmp_path / "s2")]) == 2
    assert "trace_shift must be an integer in [0, 10]" in capsys.readouterr().err


def test_bench_eqspike_vs_ep_smoke(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "eqspike_vs_ep.py"
    spec = importlib.util.spec_from_file_location("epforge_bench_eqspike_vs_ep", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "b.json"
    assert mod.main(["--hidden", "8", "--batch", "10", "--T1", "16", "--T2s", "8", "16", "--trace-shifts", "3",
                     "--stages", "2", "--seeds", "0", "--T1-ref", "60", "--T2-ref", "30", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [r["T2"] for r in res["rows"]] == [8, 16]
    assert all(-1 <= c <= 1 for r in res["rows"] for c in r["cosine"].values())
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
