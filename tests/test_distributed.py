"""Data-parallel EP (golden/distributed.py): the all-reduced update of N processes == the one-process update."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from golden.distributed import allreduce_update, check_nproc, shard
from golden.ep import NetSpec
from golden.ep.estimators import EPSchedule, ep_step
from golden.ep.network import EPNet

SPEC = NetSpec(kind="mlp", layers=(20, 16, 5))
B = 8


def _data():
    g = torch.Generator().manual_seed(3)
    return torch.rand(B, 20, generator=g, dtype=torch.float64), torch.randint(0, 5, (B,), generator=g)


def _sched(estimator):
    return EPSchedule(T1=15, T2=5, beta=0.3, estimator=estimator)


def _worker(rank, world, port, estimator, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        x, y = _data()
        idx = shard(torch.arange(B), rank, world)
        net = EPNet(SPEC, dtype=torch.float64, seed=1)
        upd = ep_step(net, x[idx], y[idx], _sched(estimator), torch.Generator().manual_seed(5)).update
        allreduce_update(upd)
        if rank == 0:
            torch.save(upd, out)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("estimator", ["symmetric", "one-sided"])
def test_two_process_update_equals_one_process(tmp_path, estimator):
    """The 2-process all-reduced EP update equals the 1-process update on the same global batch.

    Derivation of the tolerance: each sample's relaxation depends only on that sample (the dynamics
    are per-sample, no batch coupling), so the per-sample states are identical up to the rounding of
    batched matmuls of a different shape (float64, ~1e-16 relative per op). The update is
    Σ_i g_i / B on one process and (Σ_{i∈r0} g_i / (B/2) + Σ_{i∈r1} g_i / (B/2)) / 2 on two: the same
    sum with a different summation order and a division by B/2 then 2 — a few ulps of the terms'
    magnitude. Relaxation over T=15+5 steps of this small net can amplify a rounding difference by
    at most a modest factor per step, so the expected difference is ~1e-14; 1e-10 absolute on
    updates of order 1e-3..1 leaves a wide margin over rounding, while a wrong reduction (sum instead
    of mean: factor 2; one shard only) differs by O(update) and fails it.
    """
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    out = tmp_path / "upd.pt"
    mp.spawn(_worker, args=(2, _free_port(), estimator, str(out)), nprocs=2, join=True)
    two = torch.load(out)
    x, y = _data()
    net = EPNet(SPEC, dtype=torch.float64, seed=1)
    one = ep_step(net, x, y, _sched(estimator), torch.Generator().manual_seed(5)).update
    assert set(two) == set(one)
    for k in one:
        assert one[k].abs().max() > 1e-6, k  # the comparison is not vacuous
        torch.testing.assert_close(two[k], one[k], rtol=0, atol=1e-10, msg=k)


def test_shard_covers_the_batch_once():
    idx = torch.arange(12)
    parts = [shard(idx, r, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), idx)
    assert [len(p) for p in parts] == [4, 4, 4]


@pytest.mark.parametrize("nproc,batch,msg", [
    (0, 8, "--nproc must be a positive integer, not 0"),
    (-1, 8, "--nproc must be a positive integer, not -1"),
    ("two", 8, "--nproc must be a positive integer, not 'two'"),
    (16, 8, "--nproc 16 exceeds --batch-size 8"),
    (3, 8, "--batch-size 8 is not divisible by --nproc 3"),
])
def test_check_nproc_refuses_bad_values(nproc, batch, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")) as e:
        check_nproc(nproc, batch)
    assert "\n" not in str(e.value)


def test_check_nproc_accepts():
    assert check_nproc("2", 8) == 2
    assert check_nproc(1, 1) == 1


# ---------------------------------------------------------------------------------------------
# The CLI: python -m golden train --nproc N (spawned gloo processes)
# ---------------------------------------------------------------------------------------------
def _argv(out, *extra):
    return ["train", "--layers", "784", "16", "10", "--dataset", "mnist-subset", "--train-limit", "80",
            "--test-limit", "40", "--batch-size", "20", "--T1", "8", "--T2", "3", "--dtype", "float64",
            "--threads", "1", "--out", str(out), *extra]


def test_cli_two_processes_then_resume_as_one(tmp_path):
    """Epoch 1 on 2 processes == epoch 1 on 1 process (same global batches; float64, 4 SGD steps of
    updates equal to ~1e-15 each, so 1e-9 is a wide margin); then the 2-process run resumes as one
    process (the checkpoint is rank-independent) and finishes epoch 2 like the 1-process run."""
    from golden.cli import main as cli_main
    from golden.train import load_checkpoint

    two, one = tmp_path / "two", tmp_path / "one"
    cli_main(_argv(two, "--epochs", "2", "--stop-after", "1", "--nproc", "2"))
    cli_main(_argv(one, "--epochs", "2", "--stop-after", "1"))
    a, b = load_checkpoint(two), load_checkpoint(one)
    assert a["epoch"] == b["epoch"] == 1
    for k in b["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-9, msg=k)
    assert a["history"][0]["train_acc"] == b["history"][0]["train_acc"]
    cli_main(_argv(two, "--epochs", "2", "--resume"))
    cli_main(_argv(one, "--epochs", "2", "--resume"))
    a, b = load_checkpoint(two), load_checkpoint(one)
    assert a["epoch"] == b["epoch"] == 2 and len(a["history"]) == 2
    for k in b["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-9, msg=k)


def _error(cli_main, argv, capsys) -> str:
    rc = cli_main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err
    return err[-1]


def test_cli_crashed_rank_ends_the_run_without_a_checkpoint(tmp_path, monkeypatch, capsys):
    from golden.cli import main as cli_main
    from golden.distributed import FAIL_ENV

    monkeypatch.setenv(FAIL_ENV, "1")
    out = tmp_path / "run"
    err = _error(cli_main, _argv(out, "--epochs", "1", "--nproc", "2"), capsys)
    assert err == f"error: a training process failed: RuntimeError: rank 1: injected failure ({FAIL_ENV})"
    assert not (out / "checkpoint.pt").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # no partial write left
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize("nproc,msg", [("0", "--nproc must be a positive integer, not 0"),
                                       ("-1", "--nproc must be a positive integer, not -1"),
                                       ("x", "--nproc must be a positive integer, not 'x'"),
                                       ("40", "--nproc 40 exceeds --batch-size 20"),
                                       ("3", "--batch-size 20 is not divisible by --nproc 3")])
def test_cli_refuses_bad_nproc(tmp_path, nproc, msg, capsys):
    from golden.cli import main as cli_main

    err = _error(cli_main, _argv(tmp_path / "run", "--epochs", "1", "--nproc", nproc), capsys)
    assert err.startswith("error: " + msg)
    assert not (tmp_path / "run").exists()
