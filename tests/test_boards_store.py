# amaranth: UnusedElaboratable=no
"""The link's sample store (a test set in the board's block RAM, run back to back with no host in
the loop): against the mock core with stalls, the real EP core == the twin, a corrupted load, an
oversize set, ranges outside the store, and the block-RAM fit check."""
from __future__ import annotations

import random

import pytest

from boards.host import EPCoreHost, LinkError
from boards.mock_core import MockEPCore, mock_prediction
from boards.protocol import (
    CMD_RUN_STORED,
    CMD_STORE,
    ERR_CRC,
    ERR_STORE,
    LinkFormat,
    store_blocks,
    store_frame,
    store_memory_bytes,
)
from boards.simlink import StreamSimTransport
from boards.top import LinkedCore
from spec.ep_core import REG_SAMPLES, EPCoreSpec

SPEC = EPCoreSpec(layers=(10, 6, 3), lanes=4)  # 3 input beats of 4 bytes: 12-byte slots


def make(spec=SPEC, *, store=6, depth=64, idle=0.0, stall=0.0, seed=0, transport=None):
    dut = LinkedCore(MockEPCore(spec, delay=5), spec, rx_fifo_depth=depth, store_samples=store)
    t = StreamSimTransport(dut, seed=seed, idle_prob=idle, stall_prob=stall)
    return EPCoreHost(t if transport is None else transport(t), spec), t


def samples(spec, n, seed):
    rng = random.Random(seed)
    xs = [[rng.randrange(1 << spec.input_bits) for _ in range(spec.layers[0])] for _ in range(n)]
    # zero runs, so that the zero-run coding of STORE frames is exercised
    for x in xs[::2]:
        x[2:9] = [0] * 7
    return xs, [rng.randrange(spec.n_classes) for _ in range(n)]


def want(spec, xs, ys, train=False):
    return [mock_prediction(spec, x, y, train) for x, y in zip(xs, ys, strict=True)]


@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.4, 0.4)], ids=["no-stalls", "random-stalls"])
def test_store_then_run_back_to_back(stalls):
    """Samples loaded into the store, then run from it (all, a sub-range, again, and as training
    steps) give the mock's predictions; live INPUT samples and register traffic keep working around
    a stored run, and every stored sample reached the core once per run (REG_SAMPLES)."""
    host, _ = make(idle=stalls[0], stall=stalls[1], seed=3)
    info = host.store_info()
    assert (info.samples, info.slot_bytes) == (6, LinkFormat(SPEC).sample_bytes)
    xs, ys = samples(SPEC, 6, 1)
    host.store_samples(xs, ys)
    n0 = host.read_reg(REG_SAMPLES)
    assert host.run_stored(0, 6) == want(SPEC, xs, ys)
    assert host.run_stored(2, 3) == want(SPEC, xs[2:5], ys[2:5])
    live_x, live_y = samples(SPEC, 2, 9)
    assert host.infer(live_x, live_y) == want(SPEC, live_x, live_y)  # the live buffer is not a slot
    assert host.run_stored(5, 1) == want(SPEC, xs[5:], ys[5:])
    assert host.read_reg(REG_SAMPLES) - n0 == 6 + 3 + 2 + 1
    assert host.run_stored(0, 6, train=True) == want(SPEC, xs, ys, train=True)  # labels kept per slot
    host.store_samples(live_x, live_y, first=4)  # reloading part of the set
    assert host.run_stored(3, 3) == want(SPEC, xs[3:4] + live_x, ys[3:4] + live_y)
    assert host.link_stats["device_errors"] == 0


def test_a_command_behind_a_stored_run_waits_for_it():
    """INPUT samples sent right behind a run, without waiting for it: they keep their place (their
    predictions come after the run's four)."""
    host, _ = make(store=4)
    xs, ys = samples(SPEC, 4, 5)
    host.store_samples(xs, ys)
    n0 = host.read_reg(REG_SAMPLES)
    host._send(store_frame(CMD_RUN_STORED, (0, 2), (4, 2)))
    lx, ly = samples(SPEC, 2, 6)
    res = host.run(lx, ly)  # queued behind the run: its predictions follow the run's four
    assert res.preds == want(SPEC, xs[:2], ys[:2])  # the first two PRED messages are the run's
    rest = [int.from_bytes(host._wait(0x90), "little") for _ in range(4)]
    assert rest == want(SPEC, xs[2:], ys[2:]) + want(SPEC, lx, ly)
    assert host.read_reg(REG_SAMPLES) - n0 == 6


def test_corrupted_store_frame_is_resent():
    """A bit flipped in the first STORE frame on the line: the device drops it (bad CRC), the host
    sends it again, and the stored set runs as sent."""

    class FlipFirstStore:
        def __init__(self, inner):
            self.inner, self.done = inner, False

        def write(self, data: bytes) -> None:
            data = bytearray(data)
            if not self.done:
                i = data.find(bytes((CMD_STORE,)))
                if i >= 0 and len(data) > i + 8:
                    data[i + 7] ^= 0x10  # a data byte of the first STORE frame
                    self.done = True
            self.inner.write(bytes(data))

        def read(self, n: int) -> bytes:
            return self.inner.read(n)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    host, _ = make(transport=FlipFirstStore, stall=0.3, seed=8)
    xs, ys = samples(SPEC, 5, 7)
    host.store_samples(xs, ys)
    assert host.transport.done
    assert any(code == ERR_CRC and op == CMD_STORE for code, op, _ in host.error_log)
    assert host.link_stats["retransmitted"] >= 1
    assert host.run_stored(0, 5) == want(SPEC, xs, ys)


def test_oversize_set_and_ranges_outside_the_store():
    host, _ = make(store=3)
    xs, ys = samples(SPEC, 4, 2)
    with pytest.raises(ValueError, match=r"4 sample\(s\) from slot 0 do not fit the board's sample store of 3 samples"):
        host.store_samples(xs, ys)
    with pytest.raises(ValueError, match=r"2 sample\(s\) from slot 2 do not fit .* send at most 1 from slot 2"):
        host.run_stored(2, 2)
    host.store_samples(xs[:3], ys[:3])
    # past the host's checks: the device itself drops them with ERROR 7 (nothing is written or run)
    with pytest.raises(LinkError, match="past the board's sample store") as e:
        host._send(store_frame(CMD_RUN_STORED, (1, 2), (3, 2)))
        host.sync()
    assert e.value.code == ERR_STORE
    host2, t = make(store=3)
    with pytest.raises(LinkError, match="past the board's sample store"):
        for cmd in host2._sample_frames(xs[0], ys[0], store_index=3):
            host2._send(cmd)
        host2.sync()
    host3 = EPCoreHost(t, SPEC)  # a new session on the same board: the store is intact and usable
    host3.store_samples(xs[:3], ys[:3])
    assert host3.run_stored(0, 3) == want(SPEC, xs[:3], ys[:3])


def test_no_store_built():
    host, _ = make(store=0)
    assert host.store_info().samples == 0
    with pytest.raises(ValueError, match="no sample store"):
        host.store_samples(*samples(SPEC, 1, 1))
    x, y = samples(SPEC, 2, 1)
    assert host.infer(x, y) == want(SPEC, x, y)


def test_store_sizes_and_fit_check():
    from boards.fit import check_store_fits, store_plan

    big = EPCoreSpec(layers=(784, 500, 10), lanes=16, training=False)
    assert LinkFormat(big).sample_bytes == 784
    assert store_memory_bytes(big, 35) == 36 * 784
    assert store_blocks(big, 35) == 14 + 1  # 28,224 bytes in 2,048-byte DP16KD, and one for the labels
    plan = check_store_fits("ulx3s", big, 35, core_blocks=193)  # 193: the measured 784-500-10 build
    assert plan["max_store_samples"] == 35
    with pytest.raises(ValueError, match=r"store_samples=36: .* 193 DP16KD \(a real build's count\); the FPGA has "
                       r"208 DP16KD: at most 35 samples fit"):
        check_store_fits("ulx3s", big, 36, core_blocks=193)
    assert store_plan("ulx3s", big, 0)["core_blocks"] == -(-sum(big.storage_bits().values()) // (18 * 1024)) + 1
    with pytest.raises(ValueError, match="does not fit the icebreaker beside the 784-500-10 core"):
        check_store_fits("icebreaker", big, 1)
    with pytest.raises(ValueError, match="store_samples must be an integer in"):
        check_store_fits("ulx3s", big, -1)


def test_real_core_runs_the_store_equal_to_the_twin():
    """hdl.ep_core.EPCore behind the link: a set run from the store (inference, then training steps
    from the store with the weights read back) == the golden twin, with stalls."""
    ep_core = pytest.importorskip("hdl.ep_core")
    np = pytest.importorskip("numpy")
    twin_mod = pytest.importorskip("golden.ep_core")
    spec = EPCoreSpec(layers=(20, 7, 3), lanes=4, weight_bits=(16,), weight_frac=(12,), bias_bits=20,
                      bias_frac=(12,))
    rng = np.random.default_rng(12)
    twin = twin_mod.EPCoreTwin(spec, twin_mod.random_weights(spec, rng, 1.0))
    dut = LinkedCore(ep_core.EPCore(spec), spec, rx_fifo_depth=64, store_samples=5)
    host = EPCoreHost(StreamSimTransport(dut, seed=4, idle_prob=0.3, stall_prob=0.3, max_wait_cycles=400_000), spec)
    host.load_weights(twin.memory_words())
    host.configure(T1=7, T2=3, beta_shift=0, lr_shift=0)
    xs = rng.integers(0, 256, size=(5, 20))
    xs[1, 3:15] = 0
    ys = rng.integers(0, 3, size=5)
    host.store_samples(xs.tolist(), ys.tolist())
    regs = twin_mod.Registers.from_spec(spec, T1=7, T2=3, beta_shift=0, lr_shift=0)
    assert host.run_stored(0, 5) == twin.infer(xs, regs)[0].tolist()
    regs_tr = twin_mod.Registers.from_spec(spec, T1=7, T2=3, beta_shift=0, lr_shift=0, train=True)
    recs = [twin.train_sample(xs[i], int(ys[i]), regs_tr).pred for i in (1, 2)]
    assert host.run_stored(1, 2, train=True) == recs
    got = twin_mod.unpack_memory(spec, host.read_weights())
    assert all(np.array_equal(got[k], twin.weights[k]) for k in got)
    assert host.run_stored(0, 5) == twin.infer(xs, regs)[0].tolist()


def test_synth_refuses_a_store_that_does_not_fit(tmp_path, capsys):
    """python -m boards synth --store-samples: refused before any tool runs, on one line with the numbers."""
    from boards.__main__ import main

    spec = tmp_path / "big.toml"
    spec.write_text(EPCoreSpec(layers=(784, 500, 10), lanes=16, training=False).to_toml())
    rc = main(["synth", "--board", "ulx3s", "--design", "ep", "--spec", str(spec), "--store-samples", "200",
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: --store-samples 200: store_samples=200: ")
    assert "does not fit the ulx3s beside the 784-500-10 core" in err[0] and "at most 79 samples fit" in err[0]
    assert not (tmp_path / "out").exists()
