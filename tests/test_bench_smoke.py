"""Smoke tests of the benches in bench/ (tiny settings, the embedded MNIST subset, no reference code).

The benches' figures are not checked here (benches are not pass/fail); only that they run end to
end and write the JSON they document.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    """Import bench/<name>.py from its file (bench/ is a folder of scripts, not a package)."""
    mod_name = f"epforge_bench_{name}"
    if mod_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(mod_name, REPO / "bench" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[mod_name]


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


@pytest.fixture
def no_mnist(tmp_path, monkeypatch) -> Path:
    """An empty data root (so the subset is used) and no reference from the environment."""
    monkeypatch.delenv("EPFORGE_REFERENCE", raising=False)
    monkeypatch.delenv("EPFORGE_DATA", raising=False)
    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    d = tmp_path / "data"
    d.mkdir()
    return d


def test_ep_speed_mlp_without_reference(tmp_path, no_mnist, capsys):
    ep_speed = _load("ep_speed")
    out = tmp_path / "speed.json"
    assert ep_speed.main(["--skip-conv", "--mlp-samples", "100", "--threads", "1", "--warmup-batches", "1",
                          "--data-dir", str(no_mnist), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert {"bench", "machine", "timing", "options", "reference", "data", "rows"} <= res.keys()
    assert res["reference"]["used"] is False and "no reference" in res["reference"]["note"]
    assert res["data"]["dataset"] == "mnist-subset"
    m = res["machine"]
    assert m["torch"] and m["threads"] == 1 and m["date"]
    configs = [r["config"] for r in res["rows"]]
    assert configs == ["mlp train b50 one-sided", "mlp train b50 symmetric", "mlp train b256 one-sided",
                       "mlp train b256 symmetric", "mlp infer b200"]
    for r in res["rows"]:
        assert _positive(r["ours"]["samples_per_s"]) and _positive(r["ours"]["seconds"])
        assert r["ours"]["samples"] >= 100 and r["ours"]["samples"] % r["batch"] == 0
        assert r["reference"] is None and r["ratio"] is None
    printed = capsys.readouterr().out
    assert "config" in printed and "ours samples/s" in printed and "reference samples/s" in printed
    assert "mlp infer b200" in printed and "reference skipped" in printed


def test_ep_speed_broken_reference_is_reported_not_fatal(tmp_path, no_mnist):
    ep_speed = _load("ep_speed")
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "model_utils.py").write_text("raise ImportError('not the reference')\n")
    out = tmp_path / "speed.json"
    assert ep_speed.main(["--skip-mlp", "--skip-conv", "--threads", "1", "--data-dir", str(no_mnist),
                          "--reference", str(ref), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["reference"]["used"] is False
    assert "could not be imported" in res["reference"]["note"]
    assert res["rows"] == []


def test_ep_speed_conv_step_tiny():
    """The ConvNet path (exact and early-settling free phase) on a tiny schedule."""
    import torch

    from golden.ep import mnist_conv

    ep_speed = _load("ep_speed")
    x, y, _ = ep_speed.load_images(None, 8)
    p = dict(ep_speed.CONV, T1=4, T2=2)
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exact = ep_speed.ours_training(mnist_conv(), p, "symmetric", 4, None, x, y, 1, 0)
        settled = ep_speed.ours_training(mnist_conv(), p, "one-sided", 4, 1e-5, x, y, 1, 0)
    finally:
        torch.set_num_threads(prev)
    assert _positive(exact["samples_per_s"]) and exact["samples"] == 8 and "mean_free_steps" not in exact
    assert _positive(settled["samples_per_s"]) and 0 < settled["mean_free_steps"] <= 4


def test_mnist_accuracy_refuses_subset(tmp_path, no_mnist, capsys):
    acc = _load("mnist_accuracy")
    assert acc.main(["--data-dir", str(no_mnist), "--epochs", "1", "--out", str(tmp_path / "run"),
                     "--json", str(tmp_path / "acc.json")]) == 2  # an expected error: one line, exit 2
    assert "allow-subset" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "acc.json").exists()


def test_mnist_accuracy_one_epoch_on_subset(tmp_path, no_mnist):
    acc = _load("mnist_accuracy")
    out = tmp_path / "acc.json"
    run = tmp_path / "run"
    args = ["--allow-subset", "--data-dir", str(no_mnist), "--epochs", "1", "--train-limit", "100",
            "--test-limit", "50", "--threads", "1", "--no-progress", "--out", str(run), "--json", str(out)]
    assert acc.main(args) == 0
    res = json.loads(out.read_text())
    assert {"bench", "preset", "config", "data", "epochs", "test_acc", "best_test_acc", "best_epoch",
            "final_test_acc", "wall_s", "machine"} <= res.keys()
    assert res["preset"] == "mnist-mlp" and res["data"]["dataset"] == "mnist-subset"
    assert res["config"]["dataset"] == "mnist-subset" and res["config"]["epochs"] == 1
    assert len(res["epochs"]) == 1 and res["epochs"][0]["epoch"] == 1
    assert 0 <= res["final_test_acc"] <= 1 and res["best_test_acc"] == res["test_acc"][0]
    assert _positive(res["wall_s"]) and _positive(res["epochs"][0]["train_samples_per_s"])
    assert (run / "checkpoint.pt").exists() and (run / "metrics.json").exists()
    # a second start into the same run directory is refused (the trainer's rule), --resume is not
    assert acc.main(args) == 2
    assert acc.main(args + ["--resume"]) == 0


def test_ternary_onchip_training_tiny(tmp_path, no_mnist):
    """On-chip training of a tiny ternary core in the twin: both conditions, faults injected, --include."""
    import json

    ob = _load("ternary_onchip")
    common = ["--from-scratch", "--layers", "784", "12", "10", "--data-dir", str(no_mnist), "--lanes", "4",
              "--train-samples", "24", "--eval-every", "12", "--test-limit", "40", "--T1", "4", "--T2", "2",
              "--lr-shift", "4"]
    assert ob.main(common + ["--conditions", "clean", "--out", str(tmp_path / "a")]) == 0
    assert ob.main(common + ["--conditions", "faults", "--p", "0.2", "--include", str(tmp_path / "a" /
                             "ternary_onchip.json"), "--out", str(tmp_path / "b")]) == 0
    res = json.loads((tmp_path / "b" / "ternary_onchip.json").read_text())
    assert res["data"]["train"] == "mnist-subset" and (tmp_path / "b" / "ternary_onchip.png").is_file()
    faults, clean = res["conditions"]
    assert [r["samples"] for r in faults["history"]] == [0, 12, 24] and faults["faults"]["p"] == 0.2
    assert faults["history"][-1]["injected"] > faults["history"][0]["injected"] > 0  # the update drew faults too
    assert clean["faults"] is None and clean["history"][-1]["injected"] == 0
    assert all(0.0 <= r["test_acc"] <= 1.0 for c in (faults, clean) for r in c["history"])


def test_eqspike_rtl_check_refuses_an_image_of_another_shape(tmp_path, capsys):
    """bench/eqspike_rtl_check.py: a weight image whose core is not 784-input is refused in one line before
    the (slow) RTL build and the data load."""
    from golden.eqspike.image import write_image
    from golden.eqspike.twin import init_weights
    from spec.eqspike import EqSpikeSpec

    spec = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=False)
    write_image(tmp_path / "img", spec, init_weights(spec))
    rc = _load("eqspike_rtl_check").main(["--image", str(tmp_path / "img"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc != 0 and "16 inputs (16-8-4)" in err and "784" in err
    assert not (tmp_path / "out").exists()


def test_eqspike_rtl_check_refuses_faults_on_a_fixed_core(tmp_path, capsys):
    """bench/eqspike_rtl_check.py: --fault-rate needs a ternary core with fault_injection (refused in one line
    before the data load and the RTL build)."""
    rc = _load("eqspike_rtl_check").main(["--fault-rate", "0.1", "--train-steps", "0", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc != 0 and "--fault-rate needs a ternary core" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, match", [
    (["--lr-shift", "33"], "--lr-shift: lr_shift[0]"),
    (["--lr-shift", "4", "5", "6"], "--lr-shift: lr_shift must have 1 or 2 entries"),
    (["--lr-shift", "4", "--train-steps", "0"], "--lr-shift sets the training core's η registers"),
])
def test_eqspike_rtl_check_refuses_bad_lr_shift(tmp_path, capsys, argv, match):
    """bench/eqspike_rtl_check.py --lr-shift: values the twin refuses (EqSpikeSpec.check_lr_shift), and the
    option without training steps, refused in one line before the data load and the RTL build."""
    rc = _load("eqspike_rtl_check").main([*argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc != 0 and match in err, err
    assert not (tmp_path / "out").exists()


def _fake_synth(path: Path, spec, dsps: dict[str, int], fmax_mhz: float = 50.0) -> Path:
    """A synth.json as ``python -m boards synth --design ep`` writes it, for a core that was never built."""
    res = {"LUT4": {"used": 1000, "available": 83640, "percent": 1},
           "DP16KD": {"used": 3, "available": 208, "percent": 1}}
    res.update({k: {"used": v, "available": 156, "percent": 1} for k, v in dsps.items()})
    path.mkdir(parents=True)
    (path / "synth.json").write_text(json.dumps({
        "format": "epforge-synth-report/1", "design": "ep", "board": "ulx3s", "device": "LFE5U-85F",
        "spec": spec.to_dict(), "spec_digest": spec.digest(), "clock_mhz": 25.0,
        "fmax": {"clk": {"mhz": fmax_mhz, "pass": True}}, "resources": res}))
    return path


def test_ep_core_report_dsp_bound_and_best_golden_batch(tmp_path, capsys):
    """bench/ep_core_report.py on synthetic synth.json files (no synthesis): cycles/sample from simulation,
    the DSP bound DSPs × Fmax / multiplies (EPCoreSpec.multiplies) and the ratio to it, the golden model at
    batch 1 and its best batch, in JSON and markdown; a build without multipliers has no DSP bound."""
    from spec.ep_core import EPCoreSpec

    rep = _load("ep_core_report")
    spec = EPCoreSpec(layers=(20, 7, 3), lanes=4, weight_bits=(16,), weight_frac=(12,), bias_bits=20, T1=4, T2=2)
    a = _fake_synth(tmp_path / "a", spec, {"MULT18X18D": 5})
    b = _fake_synth(tmp_path / "b", spec, {"MULT18X18D": 0}, fmax_mhz=40.0)
    out = tmp_path / "r.json"
    assert rep.main(["--synth", str(a), str(b), "--golden-batches", "4", "2", "--golden-samples", "8",
                     "--threads", "1", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    row = r["rows"][0]
    assert set(row["modes"]) == {"inference", "training"}
    for mode, e in row["modes"].items():
        mul = spec.multiplies(mode == "training")["total"]
        assert e["dsp_bound"]["multiplies_per_sample"] == mul and e["dsp_bound"]["dsps"] == 5
        assert math.isclose(e["dsp_bound"]["samples_per_s"], 5 * 50e6 / mul)
        assert math.isclose(e["ratio_to_dsp_bound"], e["samples_per_s_at_fmax"] / e["dsp_bound"]["samples_per_s"])
        assert 0 < e["ratio_to_dsp_bound"] < 1.5  # 4 lanes, 5 DSPs: the core works near its roofline
        assert sorted(e["golden_cpu"]) == ["batch1", "batch2", "batch4"]  # batch 1 is always timed
        assert e["golden_cpu_batch1"]["batch"] == 1 and _positive(e["golden_cpu_batch1"]["samples_per_s"])
        best = e["golden_cpu_best"]
        assert best["samples_per_s"] == max(g["samples_per_s"] for g in e["golden_cpu"].values())
    assert spec.multiplies(True)["total"] > spec.multiplies(False)["total"]
    for e in r["rows"][1]["modes"].values():
        assert e["dsp_bound"]["dsps"] == 0 and e["dsp_bound"]["samples_per_s"] is None
        assert e["ratio_to_dsp_bound"] is None
    md = out.with_suffix(".md").read_text()
    assert "DSP bound (samples/s)" in md and "golden CPU best (batch)" in md
    lines = [ln for ln in md.splitlines() if ln.startswith("| 20-7-3")]
    assert len(lines) == 4 and all(ln.count("|") == 13 for ln in lines)
    assert " | 0 | — | — | " in lines[2]  # no multipliers: no bound
    assert f"| {row['modes']['training']['dsp_bound']['samples_per_s']:.0f} |" in lines[1]
