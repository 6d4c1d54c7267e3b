"""Kit part: the EP core's register file (:class:`hdl.kit.regfile.EPRegisterFile`) == its twin piece.

The twin piece is :class:`golden.ep_core.twin.Registers` (``write`` / ``read``), the one the core's
twin and its host use. Random writes (in-range, refused, read-only, unmapped, the ternary memory's
registers) with ``busy`` high at random are compared value by value, and the latency is asserted:
a write is visible on ``rdata`` and the register outputs one cycle later (not in its own cycle),
``seed_load`` in the write's own cycle, reads are combinational.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Array, Module, Signal
from amaranth.sim import Simulator

from golden.ep_core import Registers
from hdl.kit.regfile import EPRegisterFile
from spec.ep_core import (
    REG_BETA_SHIFT,
    REG_BITS,
    REG_CTRL,
    REG_LR_SHIFT,
    REG_SEED,
    REG_STATUS,
    REG_T1,
    REG_T2,
    TERNARY_REGS,
    EPCoreSpec,
)

FMT = dict(weight_bits=(16,), weight_frac=(12,), bias_bits=20, bias_frac=(12,))
SPECS = {
    "inference": dict(layers=(5, 3, 2), lanes=2, training=False, step_bits=6),
    "training": dict(layers=(5, 3, 2), lanes=2, **FMT, beta_shift_max=3, lr_shift_max=9),
    "prng": dict(layers=(5, 3, 2), lanes=2, **FMT, update_rounding="stochastic", estimator="random-sign"),
    "ternary": dict(layers=(5, 3, 2), lanes=2, weight_kind="ternary", weight_bits=(2,), weight_frac=(3,),
                    training=False, beta_shift=1, beta_shift_max=3),
    "ternary-training": dict(layers=(6, 4, 3), lanes=2, weight_kind="ternary", weight_bits=(2,), weight_frac=(3,),
                             beta_shift_max=2),
}
OUTPUTS = {"train": "train", "symmetric": "symmetric", "dump": "dump", "T1": "T1", "T2": "T2",
           "beta_shift": "beta_shift", "lr_shift": "lr_shift", "seed": "seed", "reg_error": "reg_error"}


def edges(spec: EPCoreSpec) -> dict[int, list[int]]:
    """Per register, the values at the edges of what the core takes."""
    tmax = (1 << spec.step_bits) - 1
    return {REG_T1: [0, 1, tmax, tmax + 1], REG_T2: [0, 1, tmax, tmax + 1],
            REG_BETA_SHIFT: [0, spec.beta_shift_max, spec.beta_shift_max + 1],
            REG_LR_SHIFT: [0, spec.lr_shift_max, spec.lr_shift_max + 1], REG_CTRL: list(range(16)) + [16, 0x31]}


def write_sequence(spec: EPCoreSpec, rnd: random.Random, n: int) -> list[tuple[int, int, bool]]:
    """(addr, value, busy): every address with each of its edge values (and a random word) while idle, with a
    STATUS clear after each, then ``n`` random writes with ``busy`` high a quarter of the time."""
    seq = []
    for addr in range(16):
        for value in edges(spec).get(addr, []) + [rnd.getrandbits(REG_BITS), 0xFFFF_FFFF]:
            seq += [(addr, value, False), (REG_STATUS, 0, False)]
    for _ in range(n):
        addr = rnd.randrange(16)
        value = rnd.choice(edges(spec).get(addr, []) + [rnd.getrandbits(REG_BITS), rnd.getrandbits(3)])
        seq.append((addr, value, rnd.random() < 0.25))
    return seq


def run(name: str, n: int = 400, seed: int = 1) -> int:
    spec = EPCoreSpec(**SPECS[name])
    dut = EPRegisterFile(spec)
    m = Module()
    m.submodules.dut = dut
    mock = None
    if dut.ternary:  # a stand-in for the ternary memory's registers: 16 plain registers
        mock = Array(Signal(REG_BITS, name=f"mreg{i}", init=0x100 + i) for i in range(16))
        with m.If(dut.mem.we):
            m.d.sync += mock[dut.mem.addr].eq(dut.mem.wdata)
        m.d.comb += dut.mem.rdata.eq(mock[dut.mem.addr])
    sim = Simulator(m)
    sim.add_clock(1e-6)
    twin = Registers.from_spec(spec)
    mem = {i: 0x100 + i for i in range(16)}
    rnd = random.Random(seed)
    seq = write_sequence(spec, rnd, n)
    checked = [0]

    async def expect_all(ctx, busy, cycles, samples):
        for addr in range(16):
            ctx.set(dut.bus.addr, addr)
            want = twin.read(spec, addr, busy=busy, cycles=cycles, samples=samples, memory_reg=mem.__getitem__)
            assert ctx.get(dut.bus.rdata) == want, f"{name}: register {addr}"
            checked[0] += 1
        for port, field in OUTPUTS.items():
            assert ctx.get(getattr(dut, port)) == int(getattr(twin, field)), f"{name}: {port}"
        assert ctx.get(dut.random_sign) == int(twin.random_sign and spec.uses_prng)

    async def bench(ctx):
        for addr, value, busy in seq:
            cycles, samples = rnd.getrandbits(REG_BITS), rnd.getrandbits(REG_BITS)
            ctx.set(dut.busy, busy)
            ctx.set(dut.cycles, cycles)
            ctx.set(dut.samples, samples)
            await expect_all(ctx, busy, cycles, samples)
            ctx.set(dut.bus.addr, addr)
            ctx.set(dut.bus.wdata, value)
            ctx.set(dut.bus.we, 1)
            # the write's own cycle: the old value on rdata, seed_load combinational
            old = twin.read(spec, addr, busy=busy, cycles=cycles, samples=samples, memory_reg=mem.__getitem__)
            assert ctx.get(dut.bus.rdata) == old
            assert ctx.get(dut.seed_load) == int(addr == REG_SEED and not busy)
            if dut.ternary:
                assert ctx.get(dut.mem.we) == int(addr in TERNARY_REGS and not busy)
            await ctx.tick()
            ctx.set(dut.bus.we, 0)
            if not busy:  # a write while busy is ignored without a flag
                twin.write(spec, addr, value)
                if dut.ternary and addr in TERNARY_REGS:
                    mem[TERNARY_REGS[addr]] = value
            await expect_all(ctx, busy, cycles, samples)
            assert ctx.get(dut.seed_load) == 0

    sim.add_testbench(bench)
    sim.run()
    return checked[0], len(seq)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_register_file_matches_the_twin_piece(name):
    checked, writes = run(name)
    assert checked == 2 * writes * 16


def test_refused_write_sets_the_sticky_flag_one_cycle_later():
    spec = EPCoreSpec(**SPECS["training"])
    dut = EPRegisterFile(spec)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        ctx.set(dut.bus.addr, REG_T1)
        ctx.set(dut.bus.wdata, 0)  # refused
        ctx.set(dut.bus.we, 1)
        assert ctx.get(dut.reg_error) == 0
        await ctx.tick()
        ctx.set(dut.bus.we, 0)
        assert ctx.get(dut.reg_error) == 1 and ctx.get(dut.T1) == spec.T1
        for _ in range(3):  # sticky
            await ctx.tick()
            assert ctx.get(dut.reg_error) == 1
        ctx.set(dut.bus.addr, REG_STATUS)
        ctx.set(dut.busy, 1)
        ctx.set(dut.bus.we, 1)  # ignored while busy
        await ctx.tick()
        assert ctx.get(dut.reg_error) == 1 and ctx.get(dut.bus.rdata) == 3
        ctx.set(dut.busy, 0)
        await ctx.tick()
        ctx.set(dut.bus.we, 0)
        assert ctx.get(dut.reg_error) == 0 and ctx.get(dut.bus.rdata) == 0

    sim.add_testbench(bench)
    sim.run()

