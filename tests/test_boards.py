# amaranth: UnusedElaboratable=no
"""Board layer: UART, host link + host driver against the mock core (and the real core when present),
report parsers, CLI, and one real synthesis run (``-m synth``; skipped without YoWASP or with
EPFORGE_SYNTH=0)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from boards.host import EPCoreHost, LinkTimeout, SpecMismatchError
from boards.hostlink import HostLink
from boards.mock_core import MockEPCore, mock_dump_beats, mock_phases, mock_prediction
from boards.protocol import CMD_SYNC, CMD_WRITE_WORD, MSG_ERROR, LinkFormat, crc16, frame, zero_run_encode
from boards.simlink import StreamSimTransport, UARTSimTransport
from boards.synth import parse_nextpnr_log, parse_yosys_stat, render_markdown, yowasp_available
from boards.top import LinkedCore, UARTLinkedCore
from boards.uart import UARTRx, UARTTx, uart_divisor
from spec.ep_core import (
    REG_BETA_SHIFT,
    REG_CTRL,
    REG_CYCLES,
    REG_LR_SHIFT,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    REG_T1,
    REG_T2,
    EPCoreSpec,
)

SPEC = EPCoreSpec(layers=(10, 6, 3), lanes=4)  # 3 input beats, 27 words of 64 bits
ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- UART
def run_sim(dut, *benches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for b in benches:
        sim.add_testbench(b)
    for b in background:
        sim.add_testbench(b, background=True)
    sim.run()


async def drive_line(ctx, line, byte: int, bit_cycles: int, stop: int = 1):
    for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [stop]:
        ctx.set(line, bit)
        await ctx.tick().repeat(bit_cycles)
    ctx.set(line, 1)


def test_uart_divisor():
    assert uart_divisor(25e6, 115200) == 217
    assert uart_divisor(12e6, 115200) == 104
    with pytest.raises(ValueError, match="too fast"):
        uart_divisor(12e6, 4_000_000)
    with pytest.raises(ValueError, match=r"off, more than 2%"):
        uart_divisor(25e6, 2_000_000)  # divisor 12 → 2.083 Mbaud, 4 % off
    with pytest.raises(ValueError, match="divisor must be an integer >= 4"):
        UARTRx(divisor=3)
    with pytest.raises(ValueError, match="divisor must be an integer >= 4"):
        UARTTx(divisor=True)


def test_baud_from_the_board_clock_and_bridge():
    """Rates both the FPGA divisor and the board's FTDI bridge make exactly; --baud checked against both."""
    from boards.uart import FT231X, FT2232H, default_baud, exact_bauds

    assert default_baud(25e6, FT231X) == 1_000_000  # ULX3S oscillator: 25 MHz / 25 = 3 MHz / 3
    assert default_baud(50e6, FT231X) == 2_000_000  # ULX3S PLL at 50 MHz: the FT231X's special 2 Mbaud
    assert default_baud(48e6, FT231X) == 3_000_000
    assert default_baud(12e6, FT2232H) == 3_000_000  # iCEBreaker: divisor 4, the UART's minimum
    assert exact_bauds(48e6, FT2232H)[:3] == [12_000_000, 8_000_000, 6_000_000]
    assert all(float(FT231X.nearest(b)) == b for b in exact_bauds(25e6, FT231X))
    assert float(FT231X.nearest(2_200_000)) == 2_000_000 and float(FT231X.nearest(1_450_000)) == 3e6 / 2.125
    assert uart_divisor(25e6, 1_000_000, bridge=FT231X) == 25
    with pytest.raises(ValueError, match=r"FPGA's UART makes 2083333 baud \(divisor 12\), the FT231X 2000000 baud: "
                       r"4\.2% apart, more than 2%"):
        uart_divisor(25e6, 2_000_000, bridge=FT231X)
    with pytest.raises(ValueError, match=r"baud 4000000 is above the FT231X USB-UART bridge's maximum of 3000000"):
        uart_divisor(48e6, 4_000_000, bridge=FT231X)
    # 50 MHz / 17 = 2.94 Mbaud against the bridge's 3 Mbaud: 2.0 % apart, still accepted
    assert uart_divisor(50e6, 3_000_000, bridge=FT231X) == 17


def test_board_top_default_baud():
    from boards.synth import board_platform, core_factory
    from boards.top import BoardTop

    for board, clock, want in (("ulx3s", None, 1_000_000), ("ulx3s", 50, 2_000_000), ("icebreaker", None, 3_000_000)):
        top = BoardTop(core_factory("mock"), SPEC, clock_mhz=clock)
        board_platform(board).prepare(top, name="top")
        assert top.baud == want, (board, clock)
    with pytest.raises(ValueError, match="the FT231X 2000000 baud"):
        board_platform("ulx3s").prepare(BoardTop(core_factory("mock"), SPEC, baud=2_000_000), name="top")


@pytest.mark.parametrize("bit_cycles", [31, 32, 33], ids=["fast", "exact", "slow"])
def test_uart_rx_bytes_and_baud_tolerance(bit_cycles):
    """Receive bytes sent ±3 % off the nominal rate; the sink takes them with random stalls."""
    dut = UARTRx(divisor=32)
    rng = random.Random(bit_cycles)
    sent = [rng.randrange(256) for _ in range(24)] + [0x00, 0xFF, 0x55, 0xAA]
    got, flags = [], []

    async def line(ctx):
        await ctx.tick().repeat(5)
        for b in sent:
            await drive_line(ctx, dut.rx, b, bit_cycles)
            await ctx.tick().repeat(rng.randrange(1, 20))
        await ctx.tick().repeat(40)

    async def sink(ctx):
        while True:
            stall = rng.random() < 0.5
            ctx.set(dut.data.ready, not stall)
            _, _, valid, payload, ovr, ferr = await ctx.tick().sample(dut.data.valid, dut.data.payload,
                                                                     dut.overrun, dut.frame_error)
            flags.append(ovr or ferr)
            if valid and not stall:
                got.append(payload)

    run_sim(dut, line, background=[sink])
    assert got == sent
    assert not any(flags)


def test_uart_rx_framing_error_and_overrun():
    dut = UARTRx(divisor=8)
    events = {"ferr": 0, "ovr": 0}
    got = []

    async def bench(ctx):
        ctx.set(dut.data.ready, 0)
        await drive_line(ctx, dut.rx, 0x12, 8, stop=0)  # bad stop bit: dropped, frame_error pulses
        await ctx.tick().repeat(20)
        await drive_line(ctx, dut.rx, 0x34, 8)  # held in the output register (not taken)
        await drive_line(ctx, dut.rx, 0x56, 8)  # → overrun: dropped
        await ctx.tick().repeat(10)
        ctx.set(dut.data.ready, 1)
        (payload,) = await ctx.tick().sample(dut.data.payload).until(dut.data.valid)
        got.append(payload)
        ctx.set(dut.data.ready, 0)
        await ctx.tick().repeat(10)
        assert not ctx.get(dut.data.valid)

    async def watch(ctx):
        while True:
            _, _, ferr, ovr = await ctx.tick().sample(dut.frame_error, dut.overrun)
            events["ferr"] += ferr
            events["ovr"] += ovr

    run_sim(dut, bench, background=[watch])
    assert got == [0x34]
    assert events == {"ferr": 1, "ovr": 1}


def test_uart_loopback_with_stalls():
    """UARTTx → line → UARTRx: every byte arrives once and in order, with idle source and stalled sink."""
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor=5)
    m.submodules.rx = rx = UARTRx(divisor=5)
    m.d.comb += rx.rx.eq(tx.tx)
    rng = random.Random(7)
    sent = [rng.randrange(256) for _ in range(40)]
    got, overruns = [], []

    async def source(ctx):
        for b in sent:
            while rng.random() < 0.3:
                await ctx.tick()
            ctx.set(tx.data.payload, b)
            ctx.set(tx.data.valid, 1)
            await ctx.tick().until(tx.data.ready)
            ctx.set(tx.data.valid, 0)
        while len(got) < len(sent):
            await ctx.tick()

    async def sink(ctx):
        while True:
            stall = rng.random() < 0.6
            ctx.set(rx.data.ready, not stall)
            _, _, valid, payload, ovr = await ctx.tick().sample(rx.data.valid, rx.data.payload, rx.overrun)
            overruns.append(ovr)
            if valid and not stall:
                got.append(payload)

    async def line_idles_high(ctx):
        assert ctx.get(tx.tx) == 1
        assert ctx.get(tx.data.ready) == 1

    run_sim(m, line_idles_high, source, background=[sink])
    assert got == sent
    assert not any(overruns)


def test_uart_tx_frame_timing():
    """Start bit, 8 data bits LSB first, stop bit, each exactly `divisor` cycles; busy while sending."""
    d = 6
    dut = UARTTx(divisor=d)
    line = []

    async def bench(ctx):
        ctx.set(dut.data.payload, 0xA5)
        ctx.set(dut.data.valid, 1)
        await ctx.tick()
        ctx.set(dut.data.valid, 0)
        for _ in range(10 * d):
            _, _, v, rdy = await ctx.tick().sample(dut.tx, dut.data.ready)
            line.append(v)
            assert not rdy
        assert ctx.get(dut.data.ready)

    run_sim(dut, bench)
    bits = [0] + [(0xA5 >> i) & 1 for i in range(8)] + [1]
    assert line == [b for b in bits for _ in range(d)]


# ---------------------------------------------------------------- host link + driver vs the mock core
def make_host(spec=SPEC, *, depth=64, seed=0, idle=0.0, stall=0.0, delay=5, timeout=None, host_spec=None):
    dut = LinkedCore(MockEPCore(spec, delay=delay), spec, rx_fifo_depth=depth, timeout_cycles=timeout)
    t = StreamSimTransport(dut, seed=seed, idle_prob=idle, stall_prob=stall)
    return EPCoreHost(t, host_spec or spec), t


def random_samples(spec, n, rng):
    xs = [[rng.randrange(1 << spec.input_bits) for _ in range(spec.layers[0])] for _ in range(n)]
    ys = [rng.randrange(spec.n_classes) for _ in range(n)]
    return xs, ys


def expected_dumps(spec, x, train, symmetric):
    from boards.host import dump_beats_to_states

    return dump_beats_to_states(spec, mock_dump_beats(spec, x, train, symmetric))


STALLS = {"no-stalls": (0.0, 0.0), "random-stalls": (0.4, 0.4)}


@pytest.mark.parametrize("depth", [32, 512], ids=["fifo32", "fifo512"])
@pytest.mark.parametrize("stalls", sorted(STALLS))
def test_host_driver_against_mock(stalls, depth):
    """The host API end to end: spec check, registers, weight load/read-back, inference, training
    with dumps; a 32-byte FIFO makes the flow control throttle every few commands."""
    idle, stall = STALLS[stalls]
    rng = random.Random(zlib.crc32(f"{stalls}/{depth}".encode()) % 1000)  # stable across runs
    host, t = make_host(depth=depth, seed=rng.randrange(1000), idle=idle, stall=stall)
    assert host.info.rx_fifo_depth == depth and host.info.spec_id == SPEC.spec_id
    assert host.read_reg(REG_SPEC_ID) == SPEC.spec_id
    host.configure(T1=17, T2=5, seed=0xDEADBEEF)
    assert [host.read_reg(a) for a in (REG_T1, REG_T2, REG_SEED)] == [17, 5, 0xDEADBEEF]

    words = [rng.getrandbits(host.format.word_bits) for _ in range(SPEC.memory_words)]
    host.load_weights(words)
    assert host.read_weights() == words
    assert host.read_weights(3, 4) == words[3:7]

    xs, ys = random_samples(SPEC, 12, rng)
    assert host.infer(xs, ys) == [mock_prediction(SPEC, x, y, False) for x, y in zip(xs, ys, strict=True)]
    assert len(set(host.infer(xs, ys))) > 1  # the predictions are not all alike

    for sym in (True, False):
        res = host.run(xs[:4], ys[:4], train=True, dump=True, symmetric=sym)
        assert res.preds == ys[:4]
        assert res.dumps == [expected_dumps(SPEC, x, True, sym) for x in xs[:4]]
        assert sorted(res.dumps[0]) == mock_phases(SPEC, True, sym)
    res = host.run(xs[:3], ys[:3], dump=True)
    assert res.dumps == [expected_dumps(SPEC, x, False, True) for x in xs[:3]]
    st = host.status()
    assert st["samples"] == 12 * 2 + 4 + 4 + 3 and st["busy"] == 0 and st["cycles"] > 0
    assert host.read_reg(REG_CTRL) == 0b110  # last run: inference, symmetric, dump
    host.sync()  # the last SYNC echo (v2: the host syncs before blocking on an answer) is read
    assert not t.to_device and not t.from_device  # nothing left over on either side
    assert host.link_stats["retransmitted"] == 0 and host.link_stats["device_errors"] == 0


def test_refused_register_writes_are_flagged_like_the_core():
    """The mock core refuses an out-of-range register write as the real core does (one rule:
    EPCoreSpec.register_write_error; the twin's Registers.write): the register keeps its value and
    status()["write_refused"] is set, sticky, until a write of REG_STATUS clears it."""
    from golden.ep_core.twin import Registers

    host, _ = make_host()
    twin = Registers.from_spec(SPEC)
    writes = [(REG_BETA_SHIFT, SPEC.beta_shift_max), (REG_BETA_SHIFT, SPEC.beta_shift_max + 1),
              (REG_LR_SHIFT, 3), (REG_LR_SHIFT, SPEC.lr_shift_max + 9), (REG_T1, 0), (REG_T1, 12),
              (REG_T2, 1 << SPEC.step_bits), (REG_CTRL, 0x10), (REG_CTRL, 0b011), (REG_CYCLES, 5)]
    refused = 0
    assert host.status()["write_refused"] == 0
    for addr, value in writes:
        before = host.read_reg(addr)
        err = twin.write(SPEC, addr, value)
        assert (err is None) == (SPEC.register_write_error(addr, value) is None)
        host.write_reg(addr, value)
        st = host.status()
        if err is None:
            assert host.read_reg(addr) == value, (addr, value)
            assert st["write_refused"] == int(twin.reg_error)
        else:
            refused += 1
            assert host.read_reg(addr) == before, (addr, value, err)
            assert st["write_refused"] == 1 and twin.reg_error, (addr, value, err)
            host.clear_write_refused()
            twin.write(SPEC, REG_STATUS, 0)
            assert host.status()["write_refused"] == 0
    assert refused == 6
    assert [host.read_reg(a) for a in (REG_BETA_SHIFT, REG_LR_SHIFT, REG_T1, REG_T2)] == [
        twin.beta_shift, twin.lr_shift, twin.T1, twin.T2]


def test_register_write_waits_for_the_sample_in_flight():
    """The core ignores writes while busy; the link holds a write until the core is idle, so a write
    right after a sample is applied (not dropped) and in order."""
    host, _ = make_host(delay=200)
    xs, ys = random_samples(SPEC, 1, random.Random(1))
    host._send_sample(xs[0], ys[0])
    host.write_reg(REG_T1, 33)
    assert host.read_reg(REG_T1) == 33
    assert host._wait(0x90)[0] == mock_prediction(SPEC, xs[0], ys[0], False)
    assert host.read_reg(REG_STATUS) == 0
    assert host.read_reg(REG_CYCLES) >= 200


def test_spec_mismatch_is_refused():
    other = EPCoreSpec(layers=(10, 6, 3), lanes=4, T1=31)
    with pytest.raises(SpecMismatchError, match=r"host link was built for spec id 0x[0-9a-f]{8}, but the host's "
                       r"spec has id 0x[0-9a-f]{8}"):
        make_host(host_spec=other)
    # the core's own REG_SPEC_ID is checked too (a link built for one spec in front of another core)
    dut = LinkedCore(MockEPCore(other), SPEC, rx_fifo_depth=64)
    with pytest.raises(SpecMismatchError, match="the core was built for spec id"):
        EPCoreHost(StreamSimTransport(dut), SPEC)


def read_message(t, fmt):
    """One device → host message off a simulated transport: (tag, payload), its CRC checked."""
    tag = t.read(1)[0]
    rest = t.read(1 + fmt.payload_bytes(tag) + 2)
    assert crc16(bytes((tag,)) + rest) == 0
    return tag, rest[1:-2]


def test_unknown_opcode_is_reported():
    """An unknown opcode is answered with ERROR 1 (and the expected seq); the host notes it, checks
    with a SYNC that nothing was lost, and goes on."""
    host, t = make_host()
    host.sync()  # the constructor's last SYNC echo is read
    t.write(bytes((0x42,)))
    seq = host._seq
    assert host.read_reg(REG_SPEC_ID) == SPEC.spec_id
    assert list(host.error_log) == [(1, 0x42, seq)]  # nothing was lost: the device expects the next frame
    assert host.link_stats["retransmitted"] == 0


def test_command_cut_short_times_out():
    """A host that stops mid-frame: the parser answers ERROR 2 (timeout) and is back in step."""
    host, t = make_host(timeout=300)
    host.sync()
    t.write(bytes((CMD_WRITE_WORD, host._seq, 2)))
    t.run_cycles(400)
    assert read_message(t, host.format) == (MSG_ERROR, bytes((2, CMD_WRITE_WORD, host._seq)))
    host._rx_seq = None  # the test read that message behind the host's back
    assert host.read_reg(REG_SPEC_ID) == SPEC.spec_id
    host.write_word(1, 1234)
    assert host.read_word(1) == 1234


def test_no_answer_raises_timeout():
    host, t = make_host()
    t.max_wait_cycles = 200
    with pytest.raises(LinkTimeout, match="no answer"):
        host._wait(0x84)


def test_host_argument_checks():
    host, _ = make_host()
    with pytest.raises(ValueError, match="register address must be in"):
        host.read_reg(16)
    with pytest.raises(ValueError, match="weight word address must be in"):
        host.write_word(SPEC.memory_words, 0)
    with pytest.raises(ValueError, match="a sample has 10 pixels, not 9"):
        host.infer([[0] * 9])
    with pytest.raises(ValueError, match="does not fit input_bits"):
        host.infer([[256] + [0] * 9])
    with pytest.raises(ValueError, match="unknown register 'T3'"):
        host.configure(T3=1)


def test_link_parameter_checks():
    with pytest.raises(ValueError, match=r"rx_fifo_depth must be an integer in \[\d+, 65535\]"):
        HostLink(SPEC, rx_fifo_depth=8)
    with pytest.raises(ValueError, match="timeout_cycles must be a positive integer or None"):
        HostLink(SPEC, timeout_cycles=0)
    with pytest.raises(TypeError, match="spec must be an EPCoreSpec"):
        HostLink({"layers": [1, 2, 3]})
    with pytest.raises(ValueError, match="delay must be a positive integer"):
        MockEPCore(SPEC, delay=0)


def test_protocol_sizes_follow_the_spec():
    big = EPCoreSpec(layers=(784, 500, 10), lanes=16)
    f = LinkFormat(big)
    assert (f.addr_bytes, f.word_bytes, f.label_bytes, f.beat_bytes, f.sample_bytes) == (2, 32, 1, 16, 784)
    assert f.dump_bytes == -(-sum(w for _, w in big.dump_fields()) // 8)
    wide = LinkFormat(EPCoreSpec(layers=(10, 6, 300), lanes=4, input_bits=12))
    assert (wide.label_bytes, wide.beat_bytes) == (2, 6)  # 4 × 12 bits packed into 6 bytes
    four = LinkFormat(EPCoreSpec(layers=(784, 500, 10), lanes=16, input_bits=4, training=False))
    assert (four.beat_bytes, four.sample_bytes) == (8, 392)  # two pixels a byte
    three = LinkFormat(EPCoreSpec(layers=(10, 6, 3), lanes=3, input_bits=3, training=False))
    assert three.pack_beat([5, 1, 7]) == bytes((0b11_001_101, 0b1))  # pixel i at bits [3i, 3i + 3)
    assert frame(0x02, 7, b"\x05") == bytes((2, 7, 5)) + crc16(bytes((2, 7, 5))).to_bytes(2, "big")
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
    assert zero_run_encode(bytes(300) + b"\x07\x00") == bytes((0, 255, 0, 43, 7, 0, 0))


@pytest.mark.parametrize("input_bits", [1, 3, 4, 8])
def test_packed_pixels_through_the_link(input_bits):
    """Pixels narrower than a byte are packed (several a byte) and unpacked into the same beats."""
    spec = EPCoreSpec(layers=(11, 6, 3), lanes=4, input_bits=input_bits, training=False)
    host, t = make_host(spec, depth=64, idle=0.3, stall=0.3, seed=input_bits)
    rng = random.Random(input_bits)
    xs, ys = random_samples(spec, 6, rng)
    xs[0] = [0] * 11  # an all-zero sample: one zero run
    assert host.infer(xs, ys) == [mock_prediction(spec, x, y, False) for x, y in zip(xs, ys, strict=True)]
    assert host.link_stats["device_errors"] == 0


def test_zero_run_coding_is_shorter_and_equal():
    """INPUT_Z (zero runs) gives the same beats as INPUT with fewer bytes on a sparse sample."""
    rng = random.Random(3)
    xs = [[rng.randrange(1, 256) if rng.random() < 0.2 else 0 for _ in range(10)] for _ in range(6)]
    ys = [rng.randrange(3) for _ in range(6)]
    sent = {}
    for compress in (False, True):
        host, _ = make_host(depth=64, idle=0.2, stall=0.2, seed=7)
        host.compress = compress
        before = host.link_stats["bytes_sent"]
        assert host.infer(xs, ys) == [mock_prediction(SPEC, x, y, False) for x, y in zip(xs, ys, strict=True)]
        sent[compress] = host.link_stats["bytes_sent"] - before
    assert sent[True] < sent[False]


def test_wide_pixels_and_labels_through_the_link():
    """Two-byte pixels and labels (input_bits 12, 300 classes) assemble into beats correctly."""
    spec = EPCoreSpec(layers=(7, 5, 300), lanes=3, input_bits=12)
    host, _ = make_host(spec, depth=64, idle=0.3, stall=0.3, seed=4)
    xs, ys = random_samples(spec, 5, random.Random(5))
    assert host.infer(xs, ys) == [mock_prediction(spec, x, y, False) for x, y in zip(xs, ys, strict=True)]
    assert host.train(xs, ys) == ys


def test_uart_level_end_to_end():
    """The same host API over simulated serial lines (UARTRx/Tx at 4 cycles per bit): no fault."""
    dut = UARTLinkedCore(MockEPCore(SPEC, delay=5), SPEC, divisor=4, rx_fifo_depth=32)
    t = UARTSimTransport(dut, seed=3, gap_prob=0.3)
    host = EPCoreHost(t, SPEC)
    rng = random.Random(9)
    words = [rng.getrandbits(host.format.word_bits) for _ in range(6)]
    host.load_weights(words)
    assert host.read_weights(0, 6) == words
    xs, ys = random_samples(SPEC, 3, rng)
    assert host.infer(xs, ys) == [mock_prediction(SPEC, x, y, False) for x, y in zip(xs, ys, strict=True)]

    assert t.cycles > 5_000 and not t.fault


def test_sync_token_is_echoed_with_the_expected_seq():
    host, t = make_host()
    host.sync()
    t.write(frame(CMD_SYNC, 0, bytes((0x5A,))))
    assert read_message(t, host.format) == (0x80, bytes((0x5A, host._seq, host._session_id)))


# ---------------------------------------------------------------- the real core, if present
def test_mock_has_the_core_signature():
    ep_core = pytest.importorskip("hdl.ep_core")
    for spec in (SPEC, EPCoreSpec(layers=(20, 7, 3), lanes=4, training=False)):
        def ports(sig):
            return [(path, m.flow, m.shape) for path, m in sig.members.flatten() if m.is_port]

        assert ports(MockEPCore(spec).signature) == ports(ep_core.EPCore(spec).signature)


def test_real_core_through_the_link_matches_twin():
    """hdl.ep_core.EPCore behind the link, driven by the host driver, == the golden twin (inference with
    dumps, one training step, weights read back)."""
    ep_core = pytest.importorskip("hdl.ep_core")
    np = pytest.importorskip("numpy")
    twin_mod = pytest.importorskip("golden.ep_core")
    spec = EPCoreSpec(layers=(20, 7, 3), lanes=4, weight_bits=(16,), weight_frac=(12,), bias_bits=20,
                      bias_frac=(12,))
    rng = np.random.default_rng(11)
    weights = twin_mod.random_weights(spec, rng, 1.0)
    twin = twin_mod.EPCoreTwin(spec, weights)
    dut = LinkedCore(ep_core.EPCore(spec), spec, rx_fifo_depth=64)
    host = EPCoreHost(StreamSimTransport(dut, seed=2, idle_prob=0.3, stall_prob=0.3, max_wait_cycles=400_000), spec)
    host.load_weights(twin.memory_words())
    assert host.read_weights() == twin.memory_words()
    host.configure(T1=7, T2=3, beta_shift=0, lr_shift=0)
    xs = rng.integers(0, 256, size=(3, 20))
    ys = rng.integers(0, 3, size=3)
    regs = twin_mod.Registers.from_spec(spec, T1=7, T2=3, beta_shift=0, lr_shift=0, dump=True)
    res = host.run(xs.tolist(), ys.tolist(), dump=True)
    preds, free = twin.infer(xs, regs)
    assert res.preds == preds.tolist()
    assert [d[0] for d in res.dumps] == [[f[i].tolist() for f in free] for i in range(3)]
    regs_tr = twin_mod.Registers.from_spec(spec, T1=7, T2=3, beta_shift=0, lr_shift=0, train=True)
    rec = twin.train_sample(xs[0], int(ys[0]), regs_tr)
    assert host.train(xs[:1].tolist(), ys[:1].tolist()) == [rec.pred]
    got = twin_mod.unpack_memory(spec, host.read_weights())
    assert all(np.array_equal(got[k], twin.weights[k]) for k in got)


# ---------------------------------------------------------------- reports and CLI
# captured from `python -m boards synth --board ulx3s --design mock` (nextpnr-ecp5 0.11 via YoWASP)
NEXTPNR_ECP5_LOG = """\
Info: constraining clock net 'clk25_0__io' to 25.00 MHz

Info: Logic utilisation before packing:
Info:     Total LUT4s:      1474/83640     1%
Info:         logic LUTs:   1168/83640     1%
Info:         carry LUTs:    306/83640     0%
Info:           RAM LUTs:      0/10455     0%
Info:          RAMW LUTs:      0/20910     0%

Info:      Total DFFs:      1056/83640     1%

Info: Packing IOs..
Info: Device utilisation:
Info: 	          TRELLIS_IO:       9/    365     2%
Info: 	                DCCA:       1/     56     1%
Info: 	              DP16KD:       5/    208     2%
Info: 	          MULT18X18D:       0/    156     0%
Info: 	                 GSR:       1/      1   100%
Info: 	          TRELLIS_FF:    1056/  83640     1%
Info: 	        TRELLIS_COMB:    1576/  83640     1%
Info: 	        TRELLIS_RAMW:       0/  10455     0%

Info: Placed 9 cells based on constraints.
Info: Max frequency for clock '$glbnet$cd_sync.clk': 73.61 MHz (PASS at 25.00 MHz)
Info: Routing..
Info: Max frequency for clock '$glbnet$cd_sync.clk': 74.45 MHz (PASS at 25.00 MHz)
"""

# captured from `python -m boards synth --board icebreaker --design mock` (nextpnr-ice40 0.11)
NEXTPNR_ICE40_LOG = """\
Info: Device utilisation:
Info: 	         ICESTORM_LC:    1978/   5280    37%
Info: 	        ICESTORM_RAM:      17/     30    56%
Info: 	               SB_IO:       6/     39    15%
Info: 	               SB_GB:       6/      8    75%
Info: 	        ICESTORM_DSP:       0/      8     0%
Info: 	      ICESTORM_SPRAM:       0/      4     0%

Info: Max frequency for clock 'cd_sync.clk': 29.67 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock 'cd_sync.clk': 30.30 MHz (PASS at 12.00 MHz)
"""


def test_parse_nextpnr_log():
    r = parse_nextpnr_log(NEXTPNR_ECP5_LOG)
    u = r["utilisation"]
    assert u["DP16KD"] == {"used": 5, "available": 208, "percent": 2}
    assert u["TRELLIS_FF"]["used"] == 1056 and u["TRELLIS_COMB"]["used"] == 1576 and u["GSR"]["percent"] == 100
    assert u["LUT4"] == {"used": 1474, "available": 83640, "percent": 1}
    assert (u["LUT4 (logic)"]["used"], u["LUT4 (carry)"]["used"], u["DFF"]["used"]) == (1168, 306, 1056)
    assert r["fmax"] == {"$glbnet$cd_sync.clk": {"mhz": 74.45, "constraint_mhz": 25.0, "pass": True}}  # post-route
    r = parse_nextpnr_log(NEXTPNR_ICE40_LOG)
    assert r["utilisation"]["ICESTORM_LC"] == {"used": 1978, "available": 5280, "percent": 37}
    assert r["utilisation"]["ICESTORM_RAM"]["used"] == 17 and r["utilisation"]["ICESTORM_SPRAM"]["used"] == 0
    assert r["fmax"]["cd_sync.clk"]["mhz"] == 30.30
    assert parse_nextpnr_log("Info: Max frequency for clock 'clk': 9.50 MHz (FAIL at 12.00 MHz)\n")["fmax"] == {
        "clk": {"mhz": 9.5, "constraint_mhz": 12.0, "pass": False}}
    assert parse_nextpnr_log("nothing here") == {"utilisation": {}, "fmax": {}}


# the tail of yosys 0.70's log (top.rpt) for the ULX3S mock build: library cells count as submodules
YOSYS_STAT_NEW = """\
2.51. Printing statistics.

=== top ===

        +----------Local Count, excluding submodules.
        |
       47 cells
       34   $scopeinfo
        5   DP16KD
     2594 submodules
      153   CCU2C
     1168   LUT4

=== design hierarchy ===

        +----------Count including submodules.
        |
       47 top

        +----------Count including submodules.
        |
     2041 wires
        9 ports
        - memories
       47 cells
       34   $scopeinfo
        5   DP16KD
        1   SGSR
        7   TRELLIS_IO
     2594 submodules
      153   CCU2C
       30   L6MUX21
     1168   LUT4
      187   PFUMX
     1056   TRELLIS_FF

2.52. Executing CHECK pass (checking for obvious problems).
Found and reported 0 problems.

End of script. Logfile hash: ac3563ab0a, time: 6.27s, user: 6.27s, system: 0.00s
Yosys 0.70 (git sha1 28ba3cb92, Release, Clang 22.1.0)
"""

YOSYS_STAT_OLD = """\
2.50. Printing statistics.

=== top ===

   Number of wires:               1234
   Number of cells:               1500
     $scopeinfo                      3
     CCU2C                         120
     DP16KD                          3
     LUT4                          800
     TRELLIS_FF                    574

End of script.
"""


def test_parse_yosys_stat():
    r = parse_yosys_stat(YOSYS_STAT_NEW)
    assert r["cells"] == 47 + 2594 and r["yosys"] == "0.70 (28ba3cb92)"
    assert r["cell_types"] == {"$scopeinfo": 34, "DP16KD": 5, "SGSR": 1, "TRELLIS_IO": 7, "CCU2C": 153,
                               "L6MUX21": 30, "LUT4": 1168, "PFUMX": 187, "TRELLIS_FF": 1056}
    r = parse_yosys_stat("junk\n" + YOSYS_STAT_OLD)
    assert r["cells"] == 1500 and r["cell_types"]["LUT4"] == 800 and r["cell_types"]["DP16KD"] == 3
    assert parse_yosys_stat("no statistics") == {}


def test_render_markdown():
    pnr = parse_nextpnr_log(NEXTPNR_ECP5_LOG)
    r = {"board": "ulx3s", "device": "LFE5U-85F-BG381-6", "design": "mock", "spec": SPEC.to_dict(),
         "spec_digest": SPEC.digest(), "spec_id": f"0x{SPEC.spec_id:08x}", "clock_mhz": 25.0, "baud": 115200,
         "rx_fifo_depth": 512, "seed": None, "resources": pnr["utilisation"], "fmax": pnr["fmax"],
         "yosys_stat": parse_yosys_stat(YOSYS_STAT_NEW), "tools": {"amaranth": "0.5.10"},
         "wall_time_s": {"elaborate": 1.0, "yosys_nextpnr_pack": 30.0}}
    md = render_markdown(r)
    assert "| DP16KD | 5 | 208 | 2 |" in md and "| LUT4 | 1474 | 83640 | 1 |" in md
    assert "| `$glbnet$cd_sync.clk` | 74.45 | 25.00 | yes |" in md
    assert md.index("TRELLIS_FF") < md.index("DCCA")  # key resources first
    assert "TRELLIS_RAMW" not in md  # unused and not a key resource


def test_cli_help():
    env = dict(os.environ, PYTHONWARNINGS="error")
    top = subprocess.run([sys.executable, "-m", "boards", "--help"], capture_output=True, text=True, cwd=ROOT,
                         env=env)
    assert top.returncode == 0 and "synth" in top.stdout
    r = subprocess.run([sys.executable, "-m", "boards", "synth", "--help"], capture_output=True, text=True,
                       cwd=ROOT, env=env)
    assert r.returncode == 0
    for opt in ("--board", "--design", "--spec", "--out", "--seed", "--baud", "--rx-fifo-depth", "--mock-delay"):
        assert opt in r.stdout


def test_ep_design_without_core_says_so(monkeypatch):
    from boards import synth

    monkeypatch.setitem(sys.modules, "hdl.ep_core", None)  # import fails as if the module did not exist
    with pytest.raises(RuntimeError, match="design 'ep' needs hdl.ep_core.EPCore"):
        synth.core_factory("ep")
    with pytest.raises(ValueError, match="design must be 'mock' or 'ep'"):
        synth.core_factory("other")
    with pytest.raises(ValueError, match="board must be one of"):
        synth.board_platform("de10")


def test_board_tops_elaborate():
    """Both board tops elaborate to RTLIL (no toolchain needed)."""
    from amaranth.back import rtlil

    from boards.synth import board_platform, core_factory
    from boards.top import BoardTop

    for board in ("ulx3s", "icebreaker"):
        plat = board_platform(board)
        plan = plat.prepare(BoardTop(core_factory("mock"), SPEC), name="top")
        assert "top.il" in plan.files
    assert rtlil.convert(UARTLinkedCore(MockEPCore(SPEC), SPEC, divisor=8, rx_fifo_depth=32))


def test_ecp5_pll_config():
    """Dividers within the data-sheet ranges, exact where possible; unreachable targets refused."""
    from boards.pll import OUT_MHZ, PFD_MHZ, VCO_MHZ, ecp5_pll_config

    for f in (12.5, 50, 60, 62.5, 65, 75, 100, 125, 200):
        c = ecp5_pll_config(25, f)
        assert c.f_out_mhz == pytest.approx(25 * c.clkfb_div / c.clki_div, rel=1e-12)
        assert c.f_out_mhz == pytest.approx(f, rel=1e-12)  # all of these are exact from 25 MHz
        assert PFD_MHZ[0] <= 25 / c.clki_div <= PFD_MHZ[1]
        assert VCO_MHZ[0] <= c.vco_mhz <= VCO_MHZ[1] and OUT_MHZ[0] <= c.f_out_mhz <= OUT_MHZ[1]
    with pytest.raises(ValueError, match="clock_mhz must be within"):
        ecp5_pll_config(25, 500)
    with pytest.raises(ValueError, match="f_in_mhz must be within"):
        ecp5_pll_config(2, 50)
    with pytest.raises(ValueError, match=r"cannot be made from 25 MHz.*closest"):
        ecp5_pll_config(25, 61.13)


def test_board_top_with_pll():
    """--clock-mhz puts an EHXPLLL in the ULX3S top; boards without PLL support refuse it by name."""
    from boards.synth import board_platform, core_factory
    from boards.top import BoardTop

    top = BoardTop(core_factory("mock"), SPEC, clock_mhz=60)
    plan = board_platform("ulx3s").prepare(top, name="top")
    il = plan.files["top.il"]
    assert "EHXPLLL" in il and top.pll_config.f_out_mhz == 60
    assert f"parameter \\CLKFB_DIV {top.pll_config.clkfb_div}" in il
    with pytest.raises(ValueError, match="clock_mhz: PLL clocking is implemented for ECP5"):
        board_platform("icebreaker").prepare(BoardTop(core_factory("mock"), SPEC, clock_mhz=60), name="top")
    with pytest.raises(ValueError, match="clock_mhz must be a positive number"):
        BoardTop(core_factory("mock"), SPEC, clock_mhz=0)


@pytest.mark.synth
@pytest.mark.skipif(not yowasp_available("ulx3s"), reason="YoWASP yosys/nextpnr-ecp5 not installed")
@pytest.mark.skipif(os.environ.get("EPFORGE_SYNTH") == "0", reason="EPFORGE_SYNTH=0 skips real synthesis")
def test_synthesize_tiny_mock_on_ulx3s(tmp_path):
    """One real yosys + nextpnr-ecp5 build (~20 s once YoWASP has compiled its WebAssembly; the very
    first YoWASP run on a machine takes minutes longer)."""
    from boards.synth import synthesize

    spec = EPCoreSpec(layers=(8, 4, 2), lanes=2)
    r = synthesize("ulx3s", "mock", spec, tmp_path, seed=1, rx_fifo_depth=32, clock_mhz=50)
    saved = json.loads((tmp_path / "synth.json").read_text())
    assert saved == json.loads(json.dumps(r))
    assert saved["resources"]["TRELLIS_FF"]["used"] > 50
    assert saved["resources"]["TRELLIS_FF"]["available"] == 83640
    (fmax,) = saved["fmax"].values()  # the PLL's output: nextpnr derived its 50 MHz constraint
    assert fmax["constraint_mhz"] == 50 and fmax["pass"] and fmax["mhz"] > 50
    assert saved["pll"]["clkfb_div"] * 25 / saved["pll"]["clki_div"] == 50 == saved["clock_mhz"]
    assert saved["yosys_stat"]["cells"] > 0
    assert (tmp_path / "synth.md").read_text().startswith("# Synthesis: mock on ulx3s")
    assert not list(tmp_path.glob(".synth.*"))  # no temporary files left behind
