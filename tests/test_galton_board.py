# amaranth: UnusedElaboratable=no
"""The Galton-board emulator on a board (boards/galton_top.py), behind the EP core's host link (protocol
version 2): end to end against the bit-exact twin in the Amaranth simulator (with and without random
stalls on the byte streams, and with mangled frames: garbage, bad CRC, cut short, replayed, lost), the
error answers, the board tops, the synthesis report's throughput fields, the CLI, and one real tiny
build (``-m synth``; skipped without YoWASP or with EPFORGE_SYNTH=0)."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from boards.galton_top import (
    LINK_RUNNING,
    LINK_UNLIMITED,
    LINK_WAIT,
    REG_LINK_STATUS,
    GaltonBoardTop,
    GaltonHost,
    GaltonLinkError,
    GaltonLinkSpec,
    LinkedGalton,
    UARTLinkedGalton,
)
from boards.host import FramedLinkHost, LinkError, SpecMismatchError
from boards.hostlink import HostLink
from boards.linkfuzz import FuzzTransport
from boards.protocol import (
    CMD_INPUT,
    CMD_READ_WORD,
    CMD_RUN_STORED,
    CMD_WRITE_REG,
    CMD_WRITE_WORD,
    ERR_BUSY,
    ERR_TIMEOUT,
    ERR_UNKNOWN_OPCODE,
    MSG_ERROR,
    MSG_INFO,
    MSG_WORD,
    LinkFormat,
    crc16,
    frame,
)
from boards.simlink import StreamSimTransport, UARTSimTransport
from boards.synth import galton_throughput, render_markdown, yowasp_available
from golden.domainwall import GaltonTwin
from spec.galton import (
    CMD_START,
    CTRL_CORRELATED,
    CTRL_HIST_ONLY,
    REG_BALLS,
    REG_CMD,
    REG_CTRL,
    REG_DONE,
    REG_REMAINING,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    STATUS_RUNNING,
    STATUS_WRITE_REFUSED,
    GaltonSpec,
)

# 6 rows, 3 boards, k = 5 on 16-bit lanes (2 lanes per board), 16-bit counters: A = 1, D = 2 bytes
SPEC = GaltonSpec(rows=6, boards=3, prob_bits=5, prng_width=16, bin_bits=16)
STALLS = {"no-stalls": (0.0, 0.0), "random-stalls": (0.4, 0.4)}


def make_host(spec=SPEC, *, depth=64, seed=0, idle=0.0, stall=0.0, timeout=None, watch=None, rows_per_stage=1):
    dut = LinkedGalton(spec, rx_fifo_depth=depth, timeout_cycles=timeout, rows_per_stage=rows_per_stage)
    t = StreamSimTransport(dut, seed=seed, idle_prob=idle, stall_prob=stall)
    if watch is not None:
        t.sim.add_testbench(watch(dut), background=True)
    return GaltonHost(t, spec), t, dut


def random_thresholds(spec, rng):
    return rng.integers(0, spec.threshold_max + 1, size=(2, spec.rows, spec.rows))


def test_link_format_sizes():
    """The link's field sizes from the Galton view: a memory word and its address, one-byte samples."""
    f = LinkFormat(GaltonLinkSpec(SPEC))
    assert (f.addr_bytes, f.word_bytes, f.sample_bytes) == (1, 2, 1)
    big = LinkFormat(GaltonLinkSpec(GaltonSpec(rows=16, boards=16)))
    assert (big.addr_bytes, big.word_bytes) == (2, 4)
    assert f.payload_bytes(MSG_WORD) == 2 and f.payload_bytes(MSG_INFO) == 10
    with pytest.raises(ValueError, match="unknown message tag 0x05"):
        f.payload_bytes(0x05)
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        GaltonLinkSpec({"rows": 4})


@pytest.mark.parametrize("stalls", sorted(STALLS))
def test_protocol_end_to_end_against_twin(stalls):
    """Thresholds programmed over the link, runs in histogram-only and streaming mode (always-ready
    sink), histograms, DONE and every threshold read back over the link == GaltonTwin."""
    idle, stall = STALLS[stalls]
    rng = np.random.default_rng(len(stalls))
    host, t, _ = make_host(depth=32 if stall else 512, seed=5, idle=idle, stall=stall)
    thr = random_thresholds(SPEC, rng)
    thr[1, 4, :3] = [0, SPEC.threshold_max, 1]  # p = 0, p = 1 and the smallest p
    host.write_thresholds(thr.tolist())
    twin = GaltonTwin(SPEC, thr, seed=0xC0FFEE, correlated=True)
    # raw memory writes: a threshold above 2^k (refused) and an unused address are handled as the twin does
    for addr, data in (
        (SPEC.threshold_addr(0, 3, 2), 1000),
        (SPEC.threshold_addr(0, 2, 1) + 3, 7),
        (SPEC.hist_addr(1, 2), 99),
    ):
        host.write_mem(addr, data)
        twin.write(addr, data)
    assert host.read_thresholds() == twin.thresholds.tolist()
    assert twin.thresholds[0, 3, 2] == thr[0, 3, 2] and twin.write_refused  # refused, not clamped

    host.start(1500, correlated=True, hist_only=True, seed=0xC0FFEE)
    twin.balls(1500)
    assert np.array_equal(np.array(host.read_histograms()), twin.hist)  # the reads wait for the run
    assert host.read_reg(REG_DONE) == twin.done == 1500

    # streaming mode (hist_only off): the always-ready sink takes every beat; no CLEAR: counts add up
    host.start(700, correlated=False, hist_only=False, clear=False)
    twin.balls(700, correlated=False)
    hist = np.array(host.read_histograms())
    assert np.array_equal(hist, twin.hist)
    assert (hist.sum(axis=1) == 2200).all() and host.read_reg(REG_DONE) == twin.done == 2200
    assert len(np.unique(hist[:, 1:-1])) > 5  # not a degenerate histogram
    st = host.status()  # the threshold of 1000 above was refused: flagged until cleared
    assert st == {"status": STATUS_WRITE_REFUSED, "write_refused": 1, "done": 2200, "remaining": 0}
    host.clear_write_refused()
    assert host.status() == {"status": 0, "write_refused": 0, "done": 2200, "remaining": 0}
    host.sync()
    assert not t.to_device and not t.from_device and not host._unacked


def test_register_read_back():
    host, _, _ = make_host()
    assert host.read_reg(REG_SPEC_ID) == SPEC.spec_id
    host.write_reg(REG_CTRL, CTRL_CORRELATED | CTRL_HIST_ONLY | 0xF0)  # unused bits set: refused, flagged
    assert host.read_reg(REG_CTRL) == 0 and host.status()["write_refused"] == 1
    host.clear_write_refused()
    host.write_reg(REG_CTRL, CTRL_CORRELATED | CTRL_HIST_ONLY)
    host.write_reg(REG_SEED, 0x89ABCDEF)
    host.write_reg(REG_BALLS, 123456)
    assert [host.read_reg(a) for a in (REG_CTRL, REG_SEED, REG_BALLS)] == [3, 0x89ABCDEF, 123456]
    assert host.status()["write_refused"] == 0
    assert host.read_reg(REG_CMD) == 0 and host.read_reg(REG_LINK_STATUS) == 0  # idle: the link would not wait
    host.write_reg(REG_CTRL, 0)
    assert host.read_reg(REG_CTRL) == 0


def test_writes_queue_behind_a_limited_run():
    """A write while a limited run goes on is applied after it (not dropped by the busy board)."""
    host, _, _ = make_host(seed=2, idle=0.3, stall=0.3)
    host.start(3000, seed=9)
    host.write_reg(REG_BALLS, 5)  # would be ignored while running: the link holds it back
    assert host.read_reg(REG_BALLS) == 5
    assert host.read_reg(REG_DONE) == 3000 and host.read_reg(REG_STATUS) == 0
    host.write_reg(REG_CMD, CMD_START)  # a second run of 5 balls, no clear
    twin = GaltonTwin(SPEC, seed=9)
    twin.balls(3005)
    assert np.array_equal(np.array(host.read_histograms()), twin.hist)


def test_unlimited_run_refuses_waiting_commands_until_stop():
    """BALLS = 0 runs until STOP: a command that would wait is answered with ERROR 8 (busy) and dropped;
    the host's multi-frame calls refuse before sending; STOP goes through at once; the balls counted so
    far match the twin."""
    host, t, _ = make_host(seed=3, idle=0.2, stall=0.2)
    host.start(0, seed=4)
    assert host.read_reg(REG_STATUS) & STATUS_RUNNING and host.read_reg(REG_REMAINING) == 0
    assert host.read_reg(REG_LINK_STATUS) == LINK_WAIT | LINK_UNLIMITED | LINK_RUNNING
    host.write_mem(SPEC.threshold_addr(0, 0, 0), 3)
    with pytest.raises(GaltonLinkError, match=r"error 8 \(busy.*for opcode 0x03") as e:
        host.sync()
    assert (e.value.code, e.value.opcode) == (ERR_BUSY, CMD_WRITE_WORD)
    with pytest.raises(GaltonLinkError, match=r"error 8 .* for opcode 0x04") as e:
        host.read_mem(SPEC.hist_addr(0, 3))
    assert (e.value.code, e.value.opcode) == (ERR_BUSY, CMD_READ_WORD)
    with pytest.raises(GaltonLinkError, match=r"error 8 .* for opcode 0x01"):
        host.write_reg(REG_CTRL, 1)  # a register the board would ignore while running
        host.sync()
    for call in (lambda: host.start(10), host.read_histograms, lambda: host.write_thresholds([])):
        with pytest.raises(GaltonLinkError, match="runs without a ball limit; stop"):
            call()
    host.sync()  # the earlier SYNC echoes come in: the link is in step
    assert host.read_reg(REG_STATUS) & STATUS_RUNNING and host.read_reg(REG_CTRL) == CTRL_HIST_ONLY
    assert all(code == ERR_BUSY for code, _, _ in host.error_log) and host.link_stats["retransmitted"] == 0
    host.stop()
    done = host.read_reg(REG_DONE)
    assert host.read_reg(REG_STATUS) & STATUS_RUNNING == 0 and done > 50
    assert host.read_reg(REG_LINK_STATUS) == 0
    assert host.read_mem(SPEC.threshold_addr(0, 0, 0)) == 16  # the refused write did nothing
    twin = GaltonTwin(SPEC, seed=4)
    twin.balls(done)
    assert np.array_equal(np.array(host.read_histograms()), twin.hist)


@pytest.mark.parametrize("rows_per_stage", [2, 6])
def test_pipeline_depth_does_not_show_over_the_link(rows_per_stage):
    """Two pipelines other than the default (2 and 0 stage registers): a limited run, then an unlimited
    one stopped by the host, then another limited run: histograms and DONE == the twin's."""
    host, _, dut = make_host(seed=rows_per_stage, rows_per_stage=rows_per_stage)
    assert dut.board.stages == {2: 2, 6: 0}[rows_per_stage]
    host.start(700, correlated=True, seed=123)
    host.start(0, clear=False, hist_only=False)
    host.stop()
    done = host.read_reg(REG_DONE)
    host.start(5, clear=False)
    twin = GaltonTwin(SPEC, seed=123, correlated=True)
    twin.balls(700)
    twin.balls(done - 700, correlated=False)
    twin.balls(5, correlated=False)
    assert np.array_equal(np.array(host.read_histograms()), twin.hist)
    assert host.read_reg(REG_DONE) == twin.done == done + 5 and done > 700


def test_synthesize_checks_rows_per_stage(tmp_path):
    from boards.synth import synthesize
    from spec.ep_core import EPCoreSpec

    with pytest.raises(ValueError, match="rows_per_stage is for design 'galton', not 'mock'"):
        synthesize("ulx3s", "mock", EPCoreSpec(layers=(4, 3, 2), lanes=2), tmp_path, rows_per_stage=2)


def test_full_rate_with_the_always_ready_sink():
    """Streaming mode, nobody reading `out` over the link: one ball per cycle, 400 beats in 400 cycles."""
    beats = []

    def watch(dut):
        async def bench(ctx):
            n = 0
            while True:
                _clk, _rst, valid, ready = await ctx.tick().sample(dut.board.out.valid, dut.board.out.ready)
                n += 1
                if valid:
                    assert ready
                    beats.append(n)

        return bench

    host, _, _ = make_host(watch=watch)
    host.start(400, hist_only=False)
    assert sum(host.read_histograms()[0]) == 400  # the reads wait for the run to end
    assert host.read_reg(REG_DONE) == 400
    assert len(beats) == 400 and beats[-1] - beats[0] == 399


def read_message(t, fmt):
    tag = t.read(1)[0]
    rest = t.read(1 + fmt.payload_bytes(tag) + 2)
    assert crc16(bytes((tag,)) + rest) == 0
    return tag, rest[1:-2]


def test_sample_opcodes_are_refused_and_the_link_goes_on():
    """No samples go over the Galton link: INPUT, RUN_STORED (and any unknown byte) are answered with
    ERROR 1 and the expected sequence number; nothing is lost, the host goes on."""
    host, t, _ = make_host()
    host.sync()
    for op, body in ((CMD_INPUT, bytes((1, 0, 1))), (CMD_RUN_STORED, bytes(4)), (0x42, b"")):
        seq = host._seq
        t.write(frame(op, seq, body) if body else bytes((op,)))
        assert host.read_reg(REG_SPEC_ID) == SPEC.spec_id
        assert (ERR_UNKNOWN_OPCODE, op, seq) in host.error_log
    host.write_mem(SPEC.threshold_addr(1, 2, 1), 9)
    assert host.read_mem(SPEC.threshold_addr(1, 2, 1)) == 9
    # a threshold that fits the link's data bits but not 2^k: refused by the emulator, flagged
    odd = GaltonSpec(rows=4, boards=3, prob_bits=5, prng_width=16, bin_bits=12)  # fields narrower than their bytes
    assert (odd.addr_bits, odd.data_bits) == (6, 12)
    h2, _, _ = make_host(odd)
    h2.write_mem(0, 0xFFF)
    assert h2.read_mem(0) == 16 and h2.status()["write_refused"] == 1


def test_command_cut_short_times_out():
    host, t, _ = make_host(timeout=300)
    host.sync()
    seq = host._seq
    t.write(bytes((CMD_WRITE_REG, seq, REG_SEED, 1)))
    t.run_cycles(400)
    assert read_message(t, host.format) == (MSG_ERROR, bytes((ERR_TIMEOUT, CMD_WRITE_REG, seq)))
    host._rx_seq = None  # the test read that message behind the host's back
    assert host.read_reg(REG_SEED) == SPEC.seed
    host.write_reg(REG_SEED, 77)
    assert host.read_reg(REG_SEED) == 77


def test_fuzzed_link_against_the_galton_top():
    """A fifth of the frames mangled (garbage, cut short, oversized, a flipped bit, another sequence
    number, replayed, lost) under random stalls: every run's histograms still == the twin's, bit for bit;
    a host that gives up raises LinkError, and a new session repeats the round."""
    spec = GaltonSpec(rows=4, boards=2, prob_bits=4, prng_width=16, bin_bits=12)
    rng = random.Random(11)
    FramedLinkHost.seq_rng = random.Random(12)
    dut = LinkedGalton(spec, rx_fifo_depth=48, timeout_cycles=120)
    sim = StreamSimTransport(dut, seed=13, idle_prob=0.1, stall_prob=0.1, max_wait_cycles=3000, lossy=True)
    ft = FuzzTransport(sim, rng, 0.2)

    def open_host():
        ft.active = False
        h = GaltonHost(ft, spec)
        h.session_attempts = 12
        return h

    host = open_host()
    compared = errors = 0
    for r in range(8):
        thr = np.array([[[rng.randrange(spec.threshold_max + 1) for _ in range(spec.rows)] for _ in range(spec.rows)]
                        for _ in range(2)])
        for _attempt in range(4):
            try:
                ft.active = True
                host.write_thresholds(thr.tolist())
                host.start(60 + 7 * r, seed=r, correlated=bool(r % 2))
                hist = np.array(host.read_histograms())
                done = host.read_reg(REG_DONE)
                break
            except LinkError:
                errors += 1
                host = open_host()
        else:
            pytest.fail(f"round {r}: no session got through")
        twin = GaltonTwin(spec, thr, seed=r, correlated=bool(r % 2))
        twin.balls(60 + 7 * r)
        assert np.array_equal(hist, twin.hist) and done == twin.done, r
        compared += 1
    ft.active = False
    assert compared == 8 and ft.malformed >= 40, (ft.malformed, errors)
    assert {"garbage", "bitflip", "drop"} <= set(ft.counts)
    assert host.read_reg(REG_LINK_STATUS) == 0


def test_uart_level_end_to_end():
    """The same host over simulated serial lines (4 cycles per bit): histograms == twin, no fault."""
    spec = GaltonSpec(rows=4, boards=2, prob_bits=3, prng_width=16, bin_bits=8)
    dut = UARTLinkedGalton(spec, divisor=4, rx_fifo_depth=32)
    t = UARTSimTransport(dut, seed=3, gap_prob=0.3)
    host = GaltonHost(t, spec)
    thr = random_thresholds(spec, np.random.default_rng(1))
    host.write_thresholds(thr.tolist())
    host.start(300, correlated=True, seed=21)
    twin = GaltonTwin(spec, thr, seed=21, correlated=True)
    twin.balls(300)
    assert np.array_equal(np.array(host.read_histograms()), twin.hist)
    assert t.cycles > 5_000 and not t.fault


def test_host_refuses_another_spec():
    dut = LinkedGalton(SPEC, rx_fifo_depth=64)
    other = GaltonSpec(rows=6, boards=3, prob_bits=5, prng_width=16, bin_bits=16, seed=2)
    with pytest.raises(SpecMismatchError, match=r"the link was built for spec id 0x[0-9a-f]{8}, but the host's spec"):
        GaltonHost(StreamSimTransport(dut), other)


def test_argument_checks():
    host, _, _ = make_host()
    with pytest.raises(ValueError, match=r"register address must be in 0..15, not 16"):
        host.read_reg(16)
    with pytest.raises(ValueError, match=r"memory address must be in 0..255 \(addr_bits=8\), not 256"):
        host.read_mem(256)
    with pytest.raises(ValueError, match=r"memory data must be in 0..65535 \(data_bits=16\), not 65536"):
        host.write_mem(0, 1 << 16)
    with pytest.raises(ValueError, match="balls must be in"):
        host.start(-1)
    with pytest.raises(ValueError, match=r"rx_fifo_depth must be an integer in \[16, 65535\]"):
        LinkedGalton(SPEC, rx_fifo_depth=8)
    with pytest.raises(ValueError, match="timeout_cycles must be a positive integer or None"):
        LinkedGalton(SPEC, timeout_cycles=0)
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        LinkedGalton({"rows": 4})
    with pytest.raises(ValueError, match="store_samples must be 0 for a galton core"):
        HostLink(GaltonLinkSpec(SPEC), store_samples=2)
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        GaltonHost(None, {"rows": 4})
    with pytest.raises(ValueError, match="clock_mhz must be a positive number"):
        GaltonBoardTop(SPEC, clock_mhz=0)
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        GaltonBoardTop(object())
    with pytest.raises(ValueError, match=r"rx_fifo_depth must be an integer in \[16, 65535\] \(bytes\), not 4"):
        GaltonBoardTop(SPEC, rx_fifo_depth=4)
    with pytest.raises(ValueError, match="timeout_s must be a positive number of seconds or None"):
        GaltonBoardTop(SPEC, timeout_s=-1)
    with pytest.raises(ValueError, match=r"rows_per_stage must be an integer in 1..6 \(rows\), not 7"):
        GaltonBoardTop(SPEC, rows_per_stage=7)


def test_board_tops_elaborate():
    """The top elaborates to RTLIL for both boards (no toolchain); the ULX3S one also with a PLL."""
    from boards.synth import board_platform

    spec = GaltonSpec(rows=16, boards=4)
    for board in ("ulx3s", "icebreaker"):
        top = GaltonBoardTop(spec)
        il = board_platform(board).prepare(top, name="top").files["top.il"]
        assert "EHXPLLL" not in il and top.pll_config is None
        assert il.count("hist") > 0 and "uart_rx" in il
    top = GaltonBoardTop(spec, clock_mhz=40)
    il = board_platform("ulx3s").prepare(top, name="top").files["top.il"]
    assert "EHXPLLL" in il and top.pll_config.f_out_mhz == 40
    with pytest.raises(ValueError, match="clock_mhz: PLL clocking is implemented for ECP5"):
        board_platform("icebreaker").prepare(GaltonBoardTop(spec, clock_mhz=40), name="top")
    with pytest.raises(ValueError, match="baud 4000000 is too fast for a 12 MHz clock"):
        board_platform("icebreaker").prepare(GaltonBoardTop(spec, baud=4_000_000), name="top")


def test_throughput_report_fields():
    spec = GaltonSpec(rows=16, boards=4, prob_bits=8, prng_width=32)
    fmax = {"$glbnet$cd_sync.clk": {"mhz": 41.5, "constraint_mhz": 25.0, "pass": True}}
    g = galton_throughput(spec, fmax, 25.0)
    assert g["balls_per_s_at_fmax"] == 4 * 41_500_000 and g["balls_per_s_at_clock"] == 100_000_000
    assert (g["rows_per_stage"], g["pipeline_stages"], g["latency_cycles"]) == (1, 15, 16)
    g3 = galton_throughput(spec, fmax, 25.0, rows_per_stage=3)
    assert (g3["pipeline_stages"], g3["latency_cycles"]) == (5, 6) and g3["balls_per_s_at_fmax"] == 4 * 41_500_000
    assert g["random_bits_per_ball"] == 128 == spec.random_bits_per_ball
    assert g["generated_bits_per_ball"] == 128 and g["prng_bits_per_cycle"] == 4 * 4 * 32
    assert g["random_bits_used_per_cycle"] == 512 and g["threshold_register_bits"] == 16 * 17 * 9
    fail = {
        "a": {"mhz": 30.0, "constraint_mhz": 50.0, "pass": False},
        "b": {"mhz": 80.0, "constraint_mhz": 25.0, "pass": True},
    }
    g2 = galton_throughput(spec, fail, 50.0)
    assert g2["fmax_mhz"] == 30.0 and g2["balls_per_s_at_clock"] is None
    r = {
        "board": "ulx3s",
        "device": "LFE5U-85F-BG381-6",
        "design": "galton",
        "spec": spec.to_dict(),
        "spec_digest": spec.digest(),
        "spec_id": f"0x{spec.spec_id:08x}",
        "clock_mhz": 25.0,
        "baud": 115200,
        "rx_fifo_depth": 512,
        "seed": 1,
        "resources": {},
        "fmax": fmax,
        "yosys_stat": {},
        "tools": {"amaranth": "0.5.10"},
        "wall_time_s": {"elaborate": 1.0, "yosys_nextpnr_pack": 30.0},
        "galton": g,
    }
    md = render_markdown(r)
    assert md.startswith("# Synthesis: galton on ulx3s")
    assert "N = 16 rows, B = 4 boards, k = 8, w = 32" in md
    assert "| balls/s at Fmax (4 × 41.5 MHz) | 166.0 M balls/s |" in md
    assert "| random bits per ball (N·k, per board) | 128 |" in md
    assert "| pipeline: a register every 1 row(s) | 15 stages, latency 16 cycles |" in md


def test_cli_galton_options(tmp_path, capsys):
    from boards.__main__ import main

    assert main(["synth", "--board", "ulx3s", "--design", "galton", "--spec", "x.toml", "--out", str(tmp_path)]) == 2
    assert "--design galton takes --galton-spec" in capsys.readouterr().err
    assert (
        main(["synth", "--board", "ulx3s", "--design", "mock", "--galton-spec", "x.toml", "--out", str(tmp_path)]) == 2
    )
    assert "--galton-spec is for --design galton, not --design mock" in capsys.readouterr().err
    assert main(["synth", "--board", "ulx3s", "--design", "mock", "--rows-per-stage", "2", "--out", str(tmp_path)]) == 2
    assert "--rows-per-stage is for --design galton, not --design mock" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('format = "epforge-galton-spec/1"\nrows = 0\n')
    assert (
        main(
            ["synth", "--board", "ulx3s", "--design", "galton", "--galton-spec", str(bad), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "rows must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["synth", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal width
    assert "--galton-spec GALTON.toml" in out and "galton: the Galton-board emulator" in out
    assert "--rows-per-stage R" in out


@pytest.mark.synth
@pytest.mark.skipif(not yowasp_available("ulx3s"), reason="YoWASP yosys/nextpnr-ecp5 not installed")
@pytest.mark.skipif(os.environ.get("EPFORGE_SYNTH") == "0", reason="EPFORGE_SYNTH=0 skips real synthesis")
def test_synthesize_tiny_galton_on_ulx3s(tmp_path):
    """One real yosys + nextpnr-ecp5 build of a tiny emulator (4 rows, 2 boards) with its throughput report."""
    from boards.synth import synthesize

    spec = GaltonSpec(rows=4, boards=2, prob_bits=4, prng_width=16, bin_bits=8)
    r = synthesize("ulx3s", "galton", spec, tmp_path, seed=1, rx_fifo_depth=32, rows_per_stage=2)
    saved = json.loads((tmp_path / "synth.json").read_text())
    assert saved == json.loads(json.dumps(r))
    assert saved["design"] == "galton" and saved["spec"] == spec.to_dict()
    assert saved["resources"]["TRELLIS_FF"]["used"] > 100
    (fmax,) = saved["fmax"].values()
    assert fmax["constraint_mhz"] == 25 and fmax["pass"]
    g = saved["galton"]
    assert g["fmax_mhz"] == fmax["mhz"] and g["balls_per_s_at_fmax"] == round(2 * fmax["mhz"] * 1e6)
    assert g["balls_per_s_at_clock"] == 50_000_000
    assert g["random_bits_per_ball"] == 16 and g["prng_bits_per_cycle"] == 2 * 16
    assert (g["rows_per_stage"], g["pipeline_stages"], g["latency_cycles"]) == (2, 1, 2)
    md = (tmp_path / "synth.md").read_text()
    assert md.startswith("# Synthesis: galton on ulx3s") and "balls/s at Fmax" in md
    assert not list(tmp_path.glob(".synth.*"))
