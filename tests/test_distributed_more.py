"""Data-parallel ternary and EqSpike training (issue 16 item 1): N processes == 1 process.

Two kinds of tests:

* in one process, no process group: a shard of a batch with its ``rows`` (first global row, global
  batch) gets exactly the per-sample random numbers — dynamic read errors, stochastic spikes, random
  encoder residues, CIFAR augmentation — that the same samples get in the whole batch, so the split
  over processes cannot change them;
* the CLIs with 2 spawned gloo processes (``--nproc 2``) against 1 process: the same model after an
  epoch, then the 2-process run resumed as 1 process; a crashed rank ends the run with one line and
  no checkpoint.

Why the comparisons cannot flake (both trainers have thresholds a rounding difference could cross):
everything runs in float64 and is deterministic for a given machine (fixed seeds, one thread), so a
test passes or fails the same way every run. Between 1 and 2 processes only the rounding differs
(matrix products of another batch shape, the batch sum of the update in another order: a few ulps,
~1e-16 relative). A threshold decision (a ternary weight at |w| = δ, a spike at s = u or φ = ½)
changes only if the exact value lies within that distance of the threshold: ~1e-15 of a range of
order 1, times at most ~1e6 decisions per test — a chance of ~1e-9 that a given machine's rounding
makes one of these tests fail for good, and none that it makes it flaky. Ternary values are still
compared only where the latent weight is farther than the tolerance from ±δ.
"""
from __future__ import annotations

import pytest
import torch

from golden.distributed import FAIL_ENV, RowGenerator, rand_rows

# ---------------------------------------------------------------------------------------------
# In one process: a shard's random numbers are the global batch's rows
# ---------------------------------------------------------------------------------------------


def test_row_generator_draws_the_global_batch_rows():
    full = torch.rand((6, 5), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    for lo in (0, 2, 4):
        gen = RowGenerator(torch.Generator().manual_seed(9), lo, 6)
        assert torch.equal(rand_rows((2, 5), gen, dtype=torch.float64), full[lo:lo + 2])
    plain = rand_rows((6, 5), torch.Generator().manual_seed(9), dtype=torch.float64)
    assert torch.equal(plain, full)


def test_cifar_augmentation_of_a_shard_is_the_global_batch_s():
    from golden.train import augment

    x = torch.rand((6, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    full = augment(x, torch.Generator().manual_seed(4))
    for lo in (0, 3):
        part = augment(x[lo:lo + 3], torch.Generator().manual_seed(4), rows=(lo, 6))
        assert torch.equal(part, full[lo:lo + 3])
    assert not torch.equal(augment(x[3:], torch.Generator().manual_seed(4)), full[3:])  # rows matter


def _ternary_relax(x, rows, seed=7, p=0.1):
    """Free phase of a small ternary net whose every read has dynamic errors (rate p)."""
    from golden.ternary.network import TernaryEPNet, init_states, relax

    net = TernaryEPNet((12, 9, 4), "ternary", 0.05, (2, 1), (0.1,), seed=3, dtype=torch.float64)
    stored = net.program(p, "dynamic", torch.Generator().manual_seed(seed), block=4, rows=rows)
    b = net.biases()
    return relax(stored, b, stored.input_term(x, b[0]), init_states(net.layers, len(x), x.dtype), 6)


def test_dynamic_read_errors_of_a_shard_are_the_global_batch_s():
    """Each sample of a shard (``rows``) reads the weights with the errors it gets in the whole batch.

    The errors are integer changes of the stored values, drawn from the same generator; only the
    matrix products' batch shape differs (float64: a few ulps over 6 steps of states in [0, 1]), so
    1e-12 is a wide margin, while a shard drawing its own errors differs by α·(an error) ≥ 2^-2.
    """
    x = torch.rand((6, 12), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    full = _ternary_relax(x, None)
    clean = _ternary_relax(x, None, p=0.0)
    assert any((a - c).abs().max() > 0.01 for a, c in zip(full, clean, strict=True))  # errors do act
    for lo in (0, 3):
        part = _ternary_relax(x[lo:lo + 3], (lo, 6))
        for a, b in zip(part, full, strict=True):
            torch.testing.assert_close(a, b[lo:lo + 3], rtol=0, atol=1e-12)
    own = _ternary_relax(x[3:], None)  # the shard's own draws: not the global batch's
    assert any((a - b[3:]).abs().max() > 1e-3 for a, b in zip(own, full, strict=True))


def _eqspike(**kw):
    from golden.eqspike.config import EqSpikeConfig
    from golden.eqspike.network import EqSpikeNet

    cfg = EqSpikeConfig(layers=(784, 12, 10), encoder="stochastic", encoder_phase="random", dtype="float64",
                        **kw)
    return EqSpikeNet(cfg)


def test_eqspike_update_of_shards_averages_to_the_global_batch_s():
    """The spike-driven update of the global batch == the mean of its two shards' updates.

    The shards draw their spikes' random numbers through a :class:`RowGenerator` (the global batch's
    draws, their rows), so every sample spikes as in the whole batch; the update is a batch mean, so
    the mean of equal shards' updates is the global one, up to the order of the float64 sums (a few
    ulps of terms of order 1/β: 1e-12 is wide; a shard with its own draws differs by O(update)).
    """
    net = _eqspike()
    g = torch.Generator().manual_seed(5)
    x = torch.rand((6, 784), generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (6,), generator=g)

    def update(rows, lo=0, n=6, own=False):
        gen = torch.Generator().manual_seed(11)
        if not own and rows is not None:
            gen = RowGenerator(gen, *rows)
        return net.spike_update(x[lo:lo + n], y[lo:lo + n], 8, 4, 0.5, "symmetric", gen=gen)

    whole, free = update(None)
    halves = [update((lo, 6), lo, 3) for lo in (0, 3)]
    for k in whole:
        assert whole[k].abs().max() > 1e-3, k  # not vacuous
        mean = (halves[0][0][k] + halves[1][0][k]) / 2
        torch.testing.assert_close(mean, whole[k], rtol=0, atol=1e-12, msg=k)
    for lo, (_, f) in zip((0, 3), halves, strict=True):
        for a, b in zip(f.s, free.s, strict=True):
            torch.testing.assert_close(a, b[lo:lo + 3], rtol=0, atol=1e-12)
    own = [update(None, lo, 3, own=True)[0] for lo in (0, 3)]
    assert max(((own[0][k] + own[1][k]) / 2 - whole[k]).abs().max() for k in whole) > 1e-3


# ---------------------------------------------------------------------------------------------
# The CLIs with 2 gloo processes
# ---------------------------------------------------------------------------------------------
def _ternary_argv(out, *extra):
    # dynamic read errors at p = 0.02 so that the error draws are split over the ranks too; plain SGD
    return ["train", "--layers", "784", "16", "10", "--dataset", "mnist-subset", "--train-limit", "40",
            "--test-limit", "20", "--batch-size", "20", "--T1", "6", "--T2", "2", "--dtype", "float64",
            "--optimizer", "sgd", "--lrs", "0.05", "--train-error-rate", "0.02", "--threads", "1",
            "--out", str(out), *extra]


def _eqspike_argv(out, *extra):
    # stochastic spikes, random residues and a random-sign β: every random draw of the trainer
    return ["train", "--layers", "784", "16", "10", "--dataset", "mnist-subset", "--train-limit", "40",
            "--test-limit", "20", "--batch-size", "20", "--T1", "8", "--T2", "4", "--dtype", "float64",
            "--encoder", "stochastic", "--encoder-phase", "random", "--estimator", "random-sign",
            "--device", "cpu", "--threads", "1", "--out", str(out), *extra]


def _trainer(name):
    if name == "ternary":
        from golden.ternary.__main__ import main
        from golden.ternary.train import load_checkpoint

        return main, _ternary_argv, load_checkpoint
    from golden.eqspike.__main__ import main
    from golden.eqspike.train import load_eqspike_checkpoint

    return main, _eqspike_argv, load_eqspike_checkpoint


def _same_model(a, b, init, name):  # init: the weights before training
    """Float parameters within 1e-10 (float64, 2 SGD steps: the runs differ by ~1e-16, see the module
    notes; a sum instead of a mean, one shard only or rank-drawn randomness move them by ≥ 1e-4); the
    ternary values == wherever the latent weight is farther than that from ±δ."""
    for k in b:
        assert (b[k] - init[k]).abs().max() > 1e-4, k  # training moved it: the comparison is not vacuous
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-10, msg=k)
        if name == "ternary" and k.startswith("w"):
            from golden.ternary.ternarize import quantize

            far = ((b[k].abs() - 0.05).abs() > 1e-10)
            assert far.float().mean() > 0.999
            assert torch.equal(quantize(a[k], "ternary", 0.05)[far], quantize(b[k], "ternary", 0.05)[far])


@pytest.mark.parametrize("name", ["ternary", "eqspike"])
def test_two_processes_equal_one_then_resume_as_one(tmp_path, name):
    """Epoch 1 (2 batches of 20) on 2 processes == on 1 process; the 2-process run then resumes as 1
    process (the checkpoint does not depend on N) and finishes epoch 2 as the 1-process run does."""
    main, argv, load = _trainer(name)
    two, one = tmp_path / "two", tmp_path / "one"
    assert main(argv(two, "--epochs", "2", "--stop-after", "1", "--nproc", "2")) == 0
    assert main(argv(one, "--epochs", "2", "--stop-after", "1")) == 0
    a, b = load(two), load(one)
    assert a["epoch"] == b["epoch"] == 1
    if name == "ternary":
        from golden.ternary.train import TernaryConfig, build

        start = build(TernaryConfig.from_dict(b["config"]))[0].state_dict()
    else:
        from golden.eqspike.config import EqSpikeConfig
        from golden.eqspike.train import build

        start = build(EqSpikeConfig.from_dict(b["config"]))[0].state_dict()
    _same_model(a["model"], b["model"], start, name)
    assert a["history"][0]["train_acc"] == b["history"][0]["train_acc"]
    assert main(argv(two, "--epochs", "2", "--resume")) == 0
    assert main(argv(one, "--epochs", "2", "--resume")) == 0
    a, b = load(two), load(one)
    assert a["epoch"] == b["epoch"] == 2 and len(a["history"]) == 2
    _same_model(a["model"], b["model"], start, name)


def test_crashed_rank_ends_the_run_without_a_checkpoint(tmp_path, monkeypatch, capsys):
    """One trainer suffices: the failure path is golden.train.run_epochs and golden.distributed.cli_launch,
    the same for the float, ternary and EqSpike trainers (the float one is tests/test_distributed.py's)."""
    main, argv, _ = _trainer("ternary")
    monkeypatch.setenv(FAIL_ENV, "1")
    out = tmp_path / "run"
    rc = main(argv(out, "--epochs", "1", "--nproc", "2"))
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and err
    assert err[-1] == f"error: a training process failed: RuntimeError: rank 1: injected failure ({FAIL_ENV})"
    assert not (out / "checkpoint.pt").exists() and not (out / "metrics.json").exists()
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # no partial write left


@pytest.mark.parametrize("name", ["ternary", "eqspike"])
@pytest.mark.parametrize("nproc,msg", [("0", "--nproc must be a positive integer, not 0"),
                                       ("x", "--nproc must be a positive integer, not 'x'"),
                                       ("3", "--batch-size 20 is not divisible by --nproc 3")])
def test_bad_nproc_is_one_line(tmp_path, capsys, name, nproc, msg):
    main, argv, _ = _trainer(name)
    assert main(argv(tmp_path / "run", "--epochs", "1", "--nproc", nproc)) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: " + msg)
    assert not (tmp_path / "run").exists()
