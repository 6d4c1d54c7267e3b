"""Issue 12 item 7: runs past a lane bank's independent draws are refused (spec.prng.check_prng_limit)
unless --allow-prng-reuse is given; the limits equal bench/randomness.py ``limits``."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from spec.ep_core import EPCoreSpec
from spec.prng import ALLOW_REUSE_FLAG, check_prng_limit
from spec.ternary import TernaryMemorySpec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

EP_SPECS = [
    {"training": True, "update_rounding": "stochastic"},  # the default 784-500-10, P = 16
    {"training": True, "estimator": "random-sign"},
    {"training": True, "estimator": "random-sign", "update_rounding": "stochastic", "layers": (784, 8, 10),
     "lanes": 4},
    {"training": True, "update_rounding": "stochastic", "layers": (20, 30, 5), "lanes": 64},
]


@pytest.mark.parametrize("fields", EP_SPECS)
def test_ep_limit_equals_randomness_limits(fields):
    from randomness import limits

    from golden.randomness import ep_draws

    spec = EPCoreSpec(**fields)
    lim = limits("ep-rounding", spec)
    assert spec.prng_draws_per_sample() == ep_draws(spec).draws == lim["draws_per_sample"]
    assert spec.independent_training_samples() == lim["samples_before_lane_overlap"]
    n = spec.independent_training_samples()
    assert spec.training_limit_message(n) is None
    msg = spec.training_limit_message(n + 1)
    assert f"at most {n} training samples are independent" in msg and f"prng_jump={spec.prng_jump}" in msg


def test_ep_default_numbers_of_the_docs():
    spec = EPCoreSpec(training=True, update_rounding="stochastic")
    assert (spec.prng_draws_per_sample(), spec.independent_training_samples()) == (24853, 5400)
    assert "repeat the whole stream (beyond 172814)" in spec.training_limit_message(172815)
    assert EPCoreSpec().independent_training_samples() is None  # no PRNG: no limit
    assert EPCoreSpec().training_limit_message(10**12) is None
    # symmetric estimator: the random-sign bit is not drawn
    rs = EPCoreSpec(training=True, estimator="random-sign")
    assert rs.prng_draws_per_sample() == 1 and rs.prng_draws_per_sample(symmetric=True) == 0


@pytest.mark.parametrize("lanes", [1, 16, 32, 100])
def test_ternary_limit_equals_randomness_limits(lanes):
    from randomness import limits

    spec = TernaryMemorySpec(lanes=lanes, mode="dynamic")
    assert spec.independent_accesses == limits("ternary", spec)["prng_jump"]
    assert spec.access_limit_message(spec.independent_accesses) is None
    msg = spec.access_limit_message(spec.independent_accesses + 1)
    assert f"1 PRNG draws per access, prng_jump={spec.prng_jump}" in msg
    assert TernaryMemorySpec(fault_injection=False).access_limit_message(1 << 40) is None


def test_check_prng_limit_refuses_or_notes():
    assert check_prng_limit(None) is None
    with pytest.raises(ValueError, match=r"^why \(or pass --allow-prng-reuse to run anyway\)$"):
        check_prng_limit("why")
    buf = io.StringIO()
    note = check_prng_limit("why", True, stream=buf)
    assert note == "note: --allow-prng-reuse given, proceeding although why" and buf.getvalue() == note + "\n"
    with pytest.raises(ValueError, match="number of training samples must be an integer"):
        EPCoreSpec(training=True, update_rounding="stochastic").training_limit_message(-1)


# 784-8-10, P = 16: 404 draws per sample, prng_jump 2^27: 332,222 independent samples
TINY = ["--set", "layers=[784,8,10]", "--set", "training=true", "--set", "update_rounding=stochastic",
        "--dataset", "mnist-subset", "--train-limit", "2", "--test-limit", "2", "--epochs", "200000"]


def test_train_cli_refuses_then_allows(tmp_path, capsys):
    from golden.ep_core.__main__ import main

    assert EPCoreSpec(layers=(784, 8, 10), training=True, update_rounding="stochastic"
                      ).independent_training_samples() == 332222
    assert main(["train", *TINY, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: layers=784-8-10, lanes=16, update_rounding='stochastic'")
    assert "400000 training samples make lane i + 1 repeat lane i (beyond 332222)" in err[0]
    assert f"pass {ALLOW_REUSE_FLAG}" in err[0] and not (tmp_path / "r").exists()
    # with the flag: a one-line note, then the run goes on (and stops here at the --out check: a file)
    (tmp_path / "f.txt").write_text("x")
    assert main(["train", *TINY, ALLOW_REUSE_FLAG, "--out", str(tmp_path / "f.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"note: {ALLOW_REUSE_FLAG} given, proceeding although layers=784-8-10")
    assert len(err) == 2 and err[1].startswith("error: ") and "f.txt" in err[1]


def test_onchip_learning_bench_refuses(tmp_path, capsys, monkeypatch):
    import onchip_learning

    args = ["--hidden", "8", "--roundings", "floor", "stochastic", "--epochs", "200000", "--dataset", "mnist-subset",
            "--train-limit", "2", "--out", str(tmp_path / "o")]
    assert onchip_learning.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "update_rounding='stochastic'" in err[0] and "(beyond 332222)" in err[0]
    assert not (tmp_path / "o" / "onchip_learning.json").exists()


def test_ternary_onchip_bench_refuses(tmp_path, capsys, monkeypatch):
    """784-12-10, P = 4, T1 = 1000: 62,352 reads per free phase; 2^29 accesses last ~8,610 images."""
    import ternary_onchip

    monkeypatch.setenv("EPFORGE_OFFLINE", "1")
    monkeypatch.delenv("EPFORGE_DATA", raising=False)
    (tmp_path / "data").mkdir()
    args = ["--from-scratch", "--layers", "784", "12", "10", "--data-dir", str(tmp_path / "data"), "--lanes", "4",
            "--train-samples", "1000000", "--eval-every", "1", "--test-limit", "40", "--T1", "1000", "--T2", "2",
            "--conditions", "faults", "--out", str(tmp_path / "o")]
    assert ternary_onchip.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "62352 reads per free phase" in err[0] and "at least" in err[0]
    jump = TernaryMemorySpec(lanes=4).prng_jump
    assert jump == 1 << 29 and f"at most {jump} weight-memory accesses are independent" in err[0]
    assert not (tmp_path / "o" / "ternary_onchip.json").exists()
