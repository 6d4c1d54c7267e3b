"""EqSpike board top: EqSpikeCore behind the EP core's host link (boards/eqspike_top.py), driven through
the simulated byte link (boards/simlink.py) by boards.eqspike_top.EqSpikeHost, against the twin."""

from __future__ import annotations

import numpy as np
import pytest

from boards.eqspike_top import EqSpikeHost, EqSpikeLinkSpec, eqspike_core_factory, storage_bits
from boards.fit import check_fits
from boards.simlink import StreamSimTransport
from boards.top import LinkedCore
from golden.eqspike.twin import EqSpikeTwin, init_weights
from spec.eqspike import EqSpikeSpec


def _board(spec, seed=0):
    view = EqSpikeLinkSpec(spec)
    dut = LinkedCore(eqspike_core_factory()(view), view, rx_fifo_depth=64)
    return EqSpikeHost(StreamSimTransport(dut, seed=seed, idle_prob=0.2, stall_prob=0.2), spec)


def _samples(spec, n, seed):
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, 1 << spec.input_bits, size=(n, spec.layers[0]))
    return xs, rng.integers(0, spec.layers[-1], size=n)


def test_infer_and_train_through_link_equal_twin():
    spec = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=True, T1=8, T2=4)
    weights = init_weights(spec, seed=2, scale=3.0)
    host = _board(spec)
    host.load_weights(weights)
    back = host.read_weights()
    for k, v in weights.items():
        assert np.array_equal(back[k], np.asarray(v)), k
    twin = EqSpikeTwin(spec, weights)
    xs, ys = _samples(spec, 3, 1)
    preds = host.infer(xs, ys)
    assert preds == [int(twin.infer(x).pred) for x in xs]
    c = host.counters()
    assert c["samples"] == 3 and c["spikes"] > 0 and c["syn"] > 0 and c["words"] > 0
    # two on-chip training steps, weights read back after each == the twin's
    for i in range(2):
        rec = twin.train_sample(xs[i], int(ys[i]))
        assert host.train([xs[i]], [ys[i]]) == [int(rec.pred)]
        got = host.read_weights()
        for k, v in twin.weights.items():
            assert np.array_equal(got[k], np.asarray(v)), (i, k)


def test_spec_mismatch_refused():
    spec = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=False, T1=8)
    other = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=False, T1=9)
    view = EqSpikeLinkSpec(spec)
    dut = LinkedCore(eqspike_core_factory()(view), view, rx_fifo_depth=64)
    from boards.host import SpecMismatchError

    with pytest.raises(SpecMismatchError, match="spec id"):
        EqSpikeHost(StreamSimTransport(dut), other)


def test_fit_check_refuses_too_big_spec():
    big = EqSpikeSpec(layers=(784, 2000, 10), lanes=8, training=True)
    need = sum(storage_bits(big).values())
    with pytest.raises(ValueError, match=r"^the 784-2000-10 EqSpike core .*does not fit the icebreaker.*bits"):
        check_fits("icebreaker", "eqspike", big)
    assert need > 30 * 4096 + 4 * 256 * 1024
    check_fits("ulx3s", "eqspike", EqSpikeSpec(layers=(16, 8, 4), lanes=4))  # fits: no error


def test_cli_refuses_spec_that_does_not_fit(tmp_path, capsys):
    from boards.__main__ import main

    spec_file = tmp_path / "big.toml"
    spec_file.write_text(EqSpikeSpec(layers=(784, 300, 10), lanes=8, training=True).to_toml())
    out = tmp_path / "out"
    rc = main(["synth", "--board", "ulx3s", "--design", "eqspike", "--spec", str(spec_file), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "784-300-10 EqSpike core" in err[0] and "does not fit the ulx3s" in err[0]
    assert not out.exists()  # refused before any tool ran or any directory was made
    rc = main(["synth", "--board", "ulx3s", "--design", "eqspike", "--out", str(out)])
    assert rc == 2 and "--design eqspike needs --spec" in capsys.readouterr().err


def test_lr_shift_through_link_equals_twin():
    """EqSpikeHost.set_lr_shift writes REG_LR through the link: two training steps with per-connection η (the
    second after another write for all connections) == the twin with the same set_lr_shift calls, and != a
    twin without them; values the twin refuses are refused before anything is sent (REG_LR unchanged); an
    inference core has no η registers."""
    from hdl.eqspike import REG_LR

    spec = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=True, T1=8, T2=4, lr_shift=(3,))
    weights = init_weights(spec, seed=4, scale=3.0)
    host = _board(spec, seed=1)
    host.load_weights(weights)
    twin, plain = EqSpikeTwin(spec, weights), EqSpikeTwin(spec, weights)
    xs, ys = _samples(spec, 2, 5)
    for i, lr in enumerate(([1, 2], 2)):
        assert host.set_lr_shift(lr) == twin.spec.check_lr_shift(lr)
        twin.set_lr_shift(lr)
        rec = twin.train_sample(xs[i], int(ys[i]))
        plain.train_sample(xs[i], int(ys[i]))
        assert host.train([xs[i]], [ys[i]]) == [int(rec.pred)]
    got = host.read_weights()
    for k, v in twin.weights.items():
        assert np.array_equal(got[k], np.asarray(v)), k
    assert any(not np.array_equal(got[k], v) for k, v in plain.weights.items())
    before = host.read_reg(REG_LR)
    lo = max(0, spec.weight_frac[0] - spec.trace_frac - 1 + spec.beta_shift,
             spec.bias_frac[0] - spec.trace_frac - 1 + spec.beta_shift)
    for bad in (33, [1, 2, 3], lo - 1 if lo > 0 else -1, 2.5):
        with pytest.raises(ValueError, match="lr_shift"):
            host.set_lr_shift(bad)
    assert host.read_reg(REG_LR) == before == 2 | 2 << 6
    inf = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=False, T1=8)
    with pytest.raises(ValueError, match="η registers"):
        _board(inf).set_lr_shift(4)


def test_boards_run_eqspike_lr_shift_session_and_compare(tmp_path, capsys):
    """``python -m boards run --design eqspike --lr-shift S``: the session writes the η registers after the load
    (EqSpikeHost.set_lr_shift) and the comparison's twin the same: two training steps on a 16-8-4 board with
    read-backs == twin, and the same result against a job without the η write differs; a bad value or one
    without --train is refused in one line."""
    from boards.__main__ import main
    from boards.run import CountingTransport, compare_eqspike, eqspike_session

    spec = EqSpikeSpec(layers=(16, 8, 4), lanes=4, training=True, T1=8, T2=4, lr_shift=(4,))
    weights = init_weights(spec, seed=6, scale=3.0)
    xs, ys = _samples(spec, 2, 7)
    job = {"design": "eqspike", "lr_shift": 1, "spec": spec.to_dict(),
           "weights": {k: np.asarray(v).tolist() for k, v in weights.items()}, "x": xs.tolist(),
           "y": [int(v) for v in ys], "train": True, "readback_every": 2, "chunk": 4, "corrupt": None}
    view = EqSpikeLinkSpec(spec)
    dut = LinkedCore(eqspike_core_factory()(view), view, rx_fifo_depth=64)
    res = eqspike_session(CountingTransport(StreamSimTransport(dut, seed=2, idle_prob=0.2, stall_prob=0.2)), job)
    assert res["lr_shift"] == [1, 1]
    cmp = compare_eqspike(job, res)
    assert cmp["mismatches"] == 0 and cmp["compared"]["weight_readbacks"] == 2
    assert compare_eqspike({**job, "lr_shift": None}, res)["mismatches"] > 0
    toml = tmp_path / "s.toml"
    toml.write_text(EqSpikeSpec(layers=(784, 4, 10), lanes=4, training=True, T1=8, T2=4).to_toml())
    for extra, match in ((["--train", "--lr-shift", "40"], "--lr-shift: lr_shift"),
                         (["--lr-shift", "2"], "needs --train")):
        rc = main(["run", "--board", "icebreaker", "--dataset", "mnist-subset", "--no-progress", "--design", "eqspike",
                   "--sim", "amaranth", "--spec", str(toml), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and match in err and len(err.strip().splitlines()) == 1, err
