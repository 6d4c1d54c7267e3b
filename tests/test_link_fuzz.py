"""The host link (protocol version 2) fuzzed against the simulated board (boards/linkfuzz.py): mangled
frames (garbage, cut short, oversized, bad CRC, wrong sequence number, replayed, lost), a second host
session and a reset in mid-frame. Seeded; the bench (bench/link_fuzz.py) runs the same at scale."""

from __future__ import annotations

import random

import pytest

from boards.host import EPCoreHost, LinkError
from boards.linkfuzz import FUZZ_SPEC, FuzzTransport, run_fuzz
from boards.mock_core import MockEPCore, mock_prediction
from boards.protocol import CMD_WRITE_WORD, ERR_CRC, ERR_SEQ, frame
from boards.simlink import StreamSimTransport
from boards.top import LinkedCore


def test_fuzzed_link_never_hangs_strays_or_loses():
    r = run_fuzz(seed=5, min_malformed=120, p=0.2)
    assert r["malformed_frames"] >= 120 and set(r["mutations"]) >= {"garbage", "truncate", "oversize", "bitflip",
                                                                     "badseq", "replay", "drop"}
    assert (r["hangs"], r["stray_writes"], r["lost_samples"], r["repeated_samples"], r["wrong_predictions"],
            r["unrecovered"]) == (0, 0, 0, 0, 0, 0), r
    c = r["counts"]
    assert c["samples"] > 30 and c["words_written"] > 30 and c["read_backs"] >= 5
    # a host whose session was taken over or reset refuses to go on, with a clear error
    assert c.get("old_session_silent", 0) == 0 and c["old_session_errors"] == c["second_sessions"] + c["resets"] >= 2


def _host(**kw):
    dut = LinkedCore(MockEPCore(FUZZ_SPEC, delay=5), FUZZ_SPEC, rx_fifo_depth=64, timeout_cycles=120)
    sim = StreamSimTransport(dut, seed=1, max_wait_cycles=1500, lossy=True)
    return EPCoreHost(sim, FUZZ_SPEC), sim


def test_bad_crc_and_replayed_frames_are_dropped_and_resent_once():
    """A frame with one bit flipped is dropped (ERROR 3) and sent again; a replayed frame (good CRC, old
    sequence number) is dropped (ERROR 4) and does not write twice."""
    host, sim = _host()
    host.sync()
    f = host.format
    seq = host._seq
    good = frame(CMD_WRITE_WORD, seq, (3).to_bytes(f.addr_bytes, "little") + (77).to_bytes(f.word_bytes, "little"))
    bad = bytearray(good)
    bad[-3] ^= 0x10
    host._seq = (seq + 1) & 0xFF
    host._unacked.append((seq, good))
    sim.write(bytes(bad))  # the host "sent" it, but the line flipped a bit
    host.sync()
    assert (ERR_CRC, CMD_WRITE_WORD, seq) in host.error_log and host.link_stats["retransmitted"] == 1
    assert host.read_word(3) == 77
    host.write_word(3, 78)
    host.sync()
    sim.write(good)  # the old frame again: out of sequence, dropped
    host.sync()
    assert any(code == ERR_SEQ for code, _, _ in host.error_log)
    assert host.read_word(3) == 78


def test_old_session_and_reset_give_clear_errors():
    host, sim = _host()
    xs = [[random.Random(i).randrange(256) for _ in range(10)] for i in range(3)]
    want = [mock_prediction(FUZZ_SPEC, x, y, False) for x, y in zip(xs, [0, 1, 2], strict=True)]
    assert host.infer(xs, [0, 1, 2]) == want
    second = EPCoreHost(FuzzTransport(sim, random.Random(0), 0.0), FUZZ_SPEC)
    with pytest.raises(LinkError, match="another host session|not read by this session"):
        host.read_reg(0)
    sim.reset_device()
    with pytest.raises(LinkError, match=r"board was reset|error 6 \(no session open \(the device was reset\)\)"):
        second.read_reg(0)
    third = EPCoreHost(sim, FUZZ_SPEC)
    assert third.infer(xs, [0, 1, 2]) == want


def _bench(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"epforge_bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_link_benches_run(tmp_path):
    """bench/link_throughput.py and bench/link_fuzz.py run end to end with tiny settings and write JSON."""
    import json

    out = tmp_path / "lt.json"
    assert _bench("link_throughput").main(["--samples", "3", "--uart-samples", "2", "--ram-samples", "3",
                                           "--core-cycles", "3000", "--clock-mhz", "12", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["baud"] == 3_000_000 and r["divisor"] == 4 and r["protocol_version"] == 2
    raw, z = (r["bytes"][k]["host_to_device_bytes_per_sample"] for k in ("INPUT (raw)", "INPUT_Z (zero runs)"))
    assert z < raw and raw >= 784  # MNIST: most pixels are zero
    assert r["uart_sim"]["cycles_per_sample_steady"] > 0
    # streamed from the store: the core's 3,000 cycles and the release of the next sample (49 beats of 16 bytes)
    assert 3000 <= r["ram_sim"]["cycles_per_sample_steady"] < r["uart_sim"]["cycles_per_sample_steady"]
    out = tmp_path / "fz.json"
    assert _bench("link_fuzz").main(["--min-malformed", "5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["malformed_frames"] >= 5



class _NoisyReturn:
    """The line from the board to the host corrupted once: the ``at``-th ``read`` chunk (counted while
    ``active``) loses a byte, gains a garbage byte or has one bit flipped."""

    def __init__(self, inner, rng: random.Random, at: int):
        self.inner, self.rng, self.at, self.active, self.reads, self.mangled = inner, rng, at, False, 0, 0

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def read(self, n: int) -> bytes:
        data = self.inner.read(n)
        if not (self.active and data):
            return data
        self.reads += 1
        if self.reads != self.at:
            return data
        self.mangled += 1
        b, i = bytearray(data), self.rng.randrange(len(data))
        kind = self.rng.randrange(4)
        if kind == 0:
            del b[i]
        elif kind == 1:
            b.insert(i, self.rng.randrange(256))
        else:  # a bit flip, the likeliest line error (half of the cases)
            b[i] ^= 1 << self.rng.randrange(8)
        return bytes(b)

    def reset_input_buffer(self) -> None:
        self.inner.reset_input_buffer()

    def wait_device_timeout(self) -> None:
        self.inner.wait_device_timeout()


def test_corrupted_answers_give_a_clear_error_or_the_right_result():
    """Device -> host fuzzing: one answer of the board corrupted (a byte lost, inserted or a bit flipped) at
    a random point of a session: every host call either returns exactly what the board computed or raises
    LinkError (LinkTimeout included) with a message; never another exception, never a wrong prediction or
    weight. Seeded; the corrupted read is drawn over the session's reads, so payload bytes are hit too."""
    spec = FUZZ_SPEC
    rng = random.Random(7)
    trials, outcomes = 40, {"ok": 0, "link_error": 0}
    mangled = 0
    for trial in range(trials):
        dut = LinkedCore(MockEPCore(spec, delay=5), spec, rx_fifo_depth=64, timeout_cycles=120)
        sim = StreamSimTransport(dut, seed=trial, max_wait_cycles=1500, lossy=True)
        noisy = _NoisyReturn(sim, rng, at=rng.randrange(1, 90))
        host = EPCoreHost(noisy, spec)
        words = [rng.getrandbits(host.format.word_bits) for _ in range(spec.memory_words)]
        host.load_weights(words)
        noisy.active = True
        xs = [[rng.randrange(1 << spec.input_bits) for _ in range(spec.layers[0])] for _ in range(4)]
        ys = [rng.randrange(spec.n_classes) for _ in xs]
        try:
            assert host.infer(xs, ys) == [mock_prediction(spec, x, y, False) for x, y in zip(xs, ys, strict=True)]
            assert host.read_weights() == words
            outcomes["ok"] += 1
        except LinkError as e:  # LinkTimeout is a LinkError
            assert str(e).strip(), "a LinkError without a message"
            outcomes["link_error"] += 1
        mangled += noisy.mangled
    assert outcomes["ok"] + outcomes["link_error"] == trials
    assert outcomes["link_error"] >= 10 and outcomes["link_error"] <= mangled, (outcomes, mangled)
