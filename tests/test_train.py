"""Training loop, checkpoints/resume, export, CLI and the CIFAR-10 configuration end to end."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import cifar_files, write_cifar_dir

import golden.data
from golden.cli import main as cli_main
from golden.ep import NetSpec
from golden.export import ExportError, load_export, manifest_digest, write_export
from golden.train import TrainConfig, augment, epoch_generator, load_checkpoint, model_from_checkpoint, train

REPO = Path(__file__).resolve().parents[1]


def small_cfg(**kw) -> TrainConfig:
    base = dict(net=NetSpec(kind="mlp", layers=(784, 32, 10)), dataset="mnist-subset", T1=12, T2=4, beta=0.2,
                lrs=(0.1, 0.05), batch_size=25, epochs=2, train_limit=300, test_limit=100)
    base.update(kw)
    return TrainConfig(**base)


def quiet(*_a, **_k):
    pass


def _states_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, dict):
            if not _states_equal(x, y):
                return False
        elif isinstance(x, torch.Tensor):
            if not torch.equal(x, y):
                return False
        elif isinstance(x, list) and x and isinstance(x[0], dict):
            if len(x) != len(y) or not all(_states_equal(u, v) for u, v in zip(x, y, strict=True)):
                return False
        elif x != y:
            return False
    return True


@pytest.mark.parametrize("kw", [
    dict(estimator="symmetric", optimizer="sgd", momentum=0.9, lr_decay="cosine"),
    dict(estimator="random-sign", optimizer="adam", lrs=(1e-3,)),
    dict(alg="cep", estimator="one-sided", lrs=(0.01, 0.005)),
])
def test_resume_is_bit_identical(tmp_path, kw):
    cfg = small_cfg(**kw)
    full = train(cfg, tmp_path / "full", log=quiet)
    train(cfg, tmp_path / "part", stop_after=1, log=quiet)  # an interrupted run
    resumed = train(cfg, tmp_path / "part", resume=True, log=quiet)
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "part" / "checkpoint.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert _states_equal(a["optimizer"], b["optimizer"])
    assert a["scheduler"] == b["scheduler"]
    strip = [{k: v for k, v in r.items() if k not in ("train_samples_per_s", "eval_s")} for r in full["history"]]
    strip_r = [{k: v for k, v in r.items() if k not in ("train_samples_per_s", "eval_s")} for r in resumed["history"]]
    assert strip == strip_r


def test_resume_refuses_a_changed_configuration(tmp_path):
    train(small_cfg(epochs=1), tmp_path / "r", log=quiet)
    with pytest.raises(ValueError, match=r"differs from the checkpoint's in \['beta'\]"):
        train(small_cfg(beta=0.3), tmp_path / "r", resume=True, log=quiet)
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(small_cfg(), tmp_path / "r", log=quiet)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(small_cfg(), tmp_path / "nothing", resume=True, log=quiet)
    # extending a run is allowed, but not when it would silently change a cosine schedule
    train(small_cfg(epochs=2), tmp_path / "r", resume=True, log=quiet)
    train(small_cfg(epochs=1, lr_decay="cosine"), tmp_path / "c", log=quiet)
    with pytest.raises(ValueError, match="pass --lr-decay-epochs 1 to extend the run"):
        train(small_cfg(epochs=2, lr_decay="cosine"), tmp_path / "c", resume=True, log=quiet)


def test_training_writes_atomic_outputs_and_learns(tmp_path):
    cfg = small_cfg(train_limit=2000, test_limit=500, epochs=2)
    res = train(cfg, tmp_path / "run", log=quiet)
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == [".epforge-output.json", "checkpoint.pt", "config.json", "metrics.json", "training.png"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["epochs"]] == [1, 2]
    assert metrics["final_test_acc"] == res["history"][-1]["test_acc"]
    # a 784-32-10 net after two passes over 2,000 images is far above chance (10 %)
    assert res["history"][-1]["test_acc"] > 0.6
    assert (tmp_path / "run" / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bptt_training_learns(tmp_path):
    cfg = small_cfg(alg="bptt", estimator="one-sided", train_limit=1000, test_limit=300, epochs=1, lrs=(0.2, 0.1))
    res = train(cfg, tmp_path / "bptt", log=quiet)
    assert res["history"][-1]["test_acc"] > 0.4


def test_cep_approaches_ep_as_learning_rate_vanishes():
    """One C-EP mini-batch moves θ like one EP step with the same learning rate, up to O(η²)."""
    from golden.ep import EPNet
    from golden.ep.estimators import EPSchedule, apply_update, cep_step, ep_step

    spec = NetSpec(kind="mlp", layers=(784, 32, 10))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(10, 784, generator=g, dtype=torch.float64), torch.randint(0, 10, (10,), generator=g)
    sched = EPSchedule(30, 8, 0.2, "one-sided")
    errs = []
    for lr in (1e-4, 1e-5):  # the small-η regime is η‖x‖²/β ≪ 1
        ep_net, cep_net = (EPNet(spec, dtype=torch.float64, seed=1) for _ in range(2))
        apply_update(ep_net, ep_step(ep_net, x, y, sched).update, torch.optim.SGD(ep_net.parameters(), lr=lr))
        cep_step(cep_net, x, y, sched, torch.optim.SGD(cep_net.parameters(), lr=lr))
        start = EPNet(spec, dtype=torch.float64, seed=1)
        d_ep = torch.cat([(p - q).flatten() for p, q in zip(ep_net.parameters(), start.parameters(), strict=True)])
        d_cep = torch.cat([(p - q).flatten() for p, q in zip(cep_net.parameters(), start.parameters(), strict=True)])
        errs.append(((d_cep - d_ep).norm() / d_ep.norm()).item())
    assert errs[1] < 0.02 and errs[1] < errs[0] / 5, errs


@pytest.mark.parametrize("kw, match", [
    (dict(dataset="svhn"), "dataset must be one of"),
    (dict(alg="hebb"), "alg must be one of"),
    (dict(optimizer="rmsprop"), "optimizer must be one of"),
    (dict(batch_size=0), "batch_size must be a positive integer, not 0"),
    (dict(lrs=(0.1, 0.1, 0.1)), r"lrs must have 1 or 2 entries .* not 3"),
    (dict(lrs=(-0.1,)), "lrs entries must be positive"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\)"),
    (dict(settle_tol=0.0), "settle_tol must be a positive number or None"),
    (dict(data_aug=True), "data_aug is for dataset='cifar10' only"),
    (dict(dataset="cifar10"), r"the network's input \(784,\) does not fit dataset 'cifar10'"),
    (dict(alg="bptt", T1=4, T2=6), "T2=6 > T1=4"),
    (dict(seed=-1), "seed must be a non-negative integer"),
])
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        small_cfg(**kw)


def test_config_round_trip():
    cfg = small_cfg(settle_tol=1e-4, weight_decay=(1e-4, 0.0))
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).to_dict() == cfg.to_dict()
    with pytest.raises(ValueError, match=r"unknown training options \['epochz'\]"):
        TrainConfig.from_dict({"epochz": 3})


def test_augment_is_reproducible_and_a_crop_of_the_padded_image():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    a = augment(x, epoch_generator(0, 0, 2))
    b = augment(x, epoch_generator(0, 0, 2))
    assert torch.equal(a, b) and a.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="replicate")
    for i in range(2):
        found = any(torch.equal(a[i], v[:, dy:dy + 32, dx:dx + 32])
                    for v in (padded[i], padded[i].flip(2)) for dy in range(9) for dx in range(9))
        assert found


# ---------------------------------------------------------------------------------------------- export
def test_export_round_trip_and_refusals(tmp_path):
    cfg = small_cfg(epochs=1)
    train(cfg, tmp_path / "run", log=quiet)
    assert cli_main(["export", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "exp")]) == 0
    spec, arrays, manifest = load_export(tmp_path / "exp")
    net, _ = model_from_checkpoint(load_checkpoint(tmp_path / "run" / "checkpoint.pt"))
    assert spec == net.spec
    for name, p in net.named_parameters():
        assert np.array_equal(arrays[name], p.detach().numpy())
    assert manifest["preprocessing"]["input"] == "pixel/255" and manifest["schedule"]["T1"] == 12
    # evaluating the export gives exactly the checkpoint's accuracy
    r1, r2 = tmp_path / "a.json", tmp_path / "b.json"
    assert cli_main(["evaluate", "--export", str(tmp_path / "exp"), "--limit", "100", "--json", str(r1)]) == 0
    assert cli_main(["evaluate", "--checkpoint", str(tmp_path / "run"), "--limit", "100", "--json", str(r2)]) == 0
    assert json.loads(r1.read_text())["accuracy"] == json.loads(r2.read_text())["accuracy"]

    # a changed array is refused
    b0 = np.load(tmp_path / "exp" / "b0.npy")
    b0[3] += 1e-3
    np.save(tmp_path / "exp" / "b0.npy", b0)
    with pytest.raises(ExportError, match="array b0: sha256 of b0.npy is .* manifest says"):
        load_export(tmp_path / "exp")
    # a manifest that declares another network is refused
    write_export(tmp_path / "exp2", spec, arrays, preprocessing={"dataset": "mnist-subset", "input": "pixel/255"})
    m = json.loads((tmp_path / "exp2" / "manifest.json").read_text())
    m["net"]["layers"] = [784, 33, 10]
    (tmp_path / "exp2" / "manifest.json").write_text(json.dumps(m))
    # an edited field is refused by the manifest's digest, like an edited array
    with pytest.raises(ExportError, match="manifest_sha256 .* does not match its fields"):
        load_export(tmp_path / "exp2")
    # a consistent manifest (digest recomputed) is still checked against the arrays
    m["manifest_sha256"] = manifest_digest(m)
    (tmp_path / "exp2" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExportError, match=r"array b0: shape \(32,\) .* the network needs \(33,\)"):
        load_export(tmp_path / "exp2")
    m["net"]["layers"] = [784, 32, 10]
    m["arrays"].pop("w1")
    m["manifest_sha256"] = manifest_digest(m)
    (tmp_path / "exp2" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ExportError, match="do not match the declared network's parameters"):
        load_export(tmp_path / "exp2")
    with pytest.raises(ExportError, match="manifest.json is missing"):
        load_export(tmp_path / "run")
    # writing is atomic: no temporary directories remain
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_export_rejects_wrong_arrays(tmp_path):
    spec = NetSpec(kind="mlp", layers=(4, 3, 2))
    good = {"w0": np.zeros((3, 4), np.float32), "b0": np.zeros(3, np.float32),
            "w1": np.zeros((2, 3), np.float32), "b1": np.zeros(2, np.float32)}
    with pytest.raises(ExportError, match="do not match the network's parameters"):
        write_export(tmp_path / "e", spec, {k: v for k, v in good.items() if k != "b1"}, preprocessing={})
    with pytest.raises(ExportError, match=r"array w1 has shape \(3, 2\), the network needs \(2, 3\)"):
        write_export(tmp_path / "e", spec, {**good, "w1": np.zeros((3, 2), np.float32)}, preprocessing={})
    assert not (tmp_path / "e").exists()


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_help_documents_every_command(capsys):
    out = subprocess.run([sys.executable, "-m", "golden", "--help"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0
    for cmd in ("train", "evaluate", "gdu", "export"):
        assert cmd in out.stdout
    from golden.cli import build_parser

    helps = {}
    for cmd in ("train", "evaluate", "gdu", "export"):
        with pytest.raises(SystemExit) as e:
            build_parser().parse_args([cmd, "--help"])
        assert e.value.code == 0
        helps[cmd] = capsys.readouterr().out
    for flag in ("--preset", "--estimator", "--settle-tol", "--resume", "--stop-after", "--config", "--lrs",
                 "--data-aug"):
        assert flag in helps["train"]
    # every option of every command carries a help text
    for cmd in helps:
        parser = build_parser()._subparsers._group_actions[0].choices[cmd]
        for action in parser._actions:
            assert action.help, (cmd, action.option_strings)


def test_cli_errors_are_clear(tmp_path, capsys):
    assert cli_main(["train", "--dataset", "mnist-subset", "--lrs", "1", "2", "3", "--out", str(tmp_path / "x")]) == 2
    assert "lrs must have 1 or 2 entries" in capsys.readouterr().err


def test_cli_train_with_config_file(tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text('dataset = "mnist-subset"\nT1 = 8\nT2 = 3\nepochs = 1\nlrs = [0.1]\ntrain_limit = 100\n'
                    'test_limit = 50\n[net]\nkind = "mlp"\nlayers = [784, 16, 10]\n')
    assert cli_main(["train", "--config", str(conf), "--beta", "0.3", "--out", str(tmp_path / "r"),
                     "--no-progress"]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["T1"] == 8 and saved["beta"] == 0.3 and saved["net"]["layers"] == [784, 16, 10]


def test_gdu_cli_writes_json_and_plot(tmp_path):
    assert cli_main(["gdu", "--dataset", "mnist-subset", "--layers", "784", "24", "10", "--batch", "6",
                     "--T1", "20", "--T2", "5", "--betas", "0.01", "0.1", "--out", str(tmp_path)]) == 0
    rep = json.loads((tmp_path / "gdu.json").read_text())
    assert set(rep["results"]) >= {"one-sided", "symmetric", "random-sign"}
    one, sym = rep["results"]["one-sided"]["0.1"], rep["results"]["symmetric"]["0.1"]
    assert sym["min_cosine"] > 0.99 and sym["max_rel_error"] < one["max_rel_error"]
    assert (tmp_path / "gdu.png").stat().st_size > 1000



def test_default_learning_rates_extend_to_any_depth(tmp_path):
    """Without lrs, a net of any depth gets 0.05 at the input connection, halved at each layer above
    (powers of two: exact), so gdu and train run on a 3-weight-layer net without a config file."""
    from golden.train import default_lrs

    assert TrainConfig(net=NetSpec(kind="mlp", layers=(784, 10)), dataset="mnist-subset").lrs == (0.05,)
    assert TrainConfig(net=NetSpec(kind="mlp", layers=(784, 24, 10)), dataset="mnist-subset").lrs == (0.05, 0.025)
    assert default_lrs(4) == (0.05, 0.025, 0.0125, 0.00625)
    assert cli_main(["gdu", "--dataset", "mnist-subset", "--layers", "784", "16", "12", "10", "--batch", "4",
                     "--T1", "8", "--T2", "3", "--betas", "0.1", "--estimators", "symmetric",
                     "--out", str(tmp_path / "gdu")]) == 0
    rep = json.loads((tmp_path / "gdu" / "gdu.json").read_text())
    assert set(rep["results"]["symmetric"]["0.1"]["params"]) >= {"w0", "w1", "w2"}
    assert cli_main(["train", "--dataset", "mnist-subset", "--layers", "784", "16", "12", "10", "--T1", "5",
                     "--T2", "2", "--epochs", "1", "--train-limit", "50", "--test-limit", "20",
                     "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lrs"] == [0.05, 0.025, 0.0125]

# ---------------------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_configuration_end_to_end(tmp_path, monkeypatch):
    """Laborieux et al.'s CIFAR-10 net (3-128-256-512-512, CE read-out, augmentation) trains and exports
    on data written in the CIFAR-10 pickle format, read by the real loader with verified checksums."""
    sums = write_cifar_dir(tmp_path / "data" / "cifar-10-batches-py", cifar_files())
    monkeypatch.setattr(golden.data, "load_dataset", functools.partial(golden.data.load_dataset, checksums=sums))
    out = tmp_path / "run"
    args = ["train", "--preset", "cifar10-conv", "--data-dir", str(tmp_path / "data"), "--T1", "3", "--T2", "2",
            "--epochs", "1", "--batch-size", "4", "--train-limit", "8", "--test-limit", "4", "--out", str(out),
            "--no-progress"]
    assert cli_main(args) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["net"]["channels"] == [128, 256, 512, 512] and cfg["data_aug"] and cfg["net"]["loss"] == "ce"
    assert cli_main(["export", "--checkpoint", str(out), "--out", str(tmp_path / "exp")]) == 0
    spec, arrays, manifest = load_export(tmp_path / "exp")
    assert arrays["w0"].shape == (128, 3, 3, 3) and arrays["wo"].shape == (10, 512)
    assert manifest["preprocessing"]["mean"] == [0.4914, 0.4822, 0.4465]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_training_runs(tmp_path):
    train(small_cfg(epochs=1), tmp_path / "cuda", device="cuda", log=quiet)
