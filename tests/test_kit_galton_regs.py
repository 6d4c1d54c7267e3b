# amaranth: UnusedElaboratable=no
"""Galton part: the registers and the run (:class:`hdl.kit.galton_regs.GaltonRegisters`) == the twin's.

Random register writes (in range, refused by ``spec.register_write_error`` — the twin's
``write_reg`` — read-only and unmapped addresses, START/STOP/CLEAR), generated balls (``commit``,
only while running), refused threshold writes and random status inputs are applied cycle by cycle;
a model of the contract (refusals from the twin's check, writes taken only while idle, STOP over
START and over a ball, DONE saturating, a limited run ending with its last ball) is compared with
every register read (combinational) and with ``reseed``/``clear`` in the write's own cycle.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hdl.kit.galton_regs import GaltonRegisters
from spec.galton import (
    CMD_CLEAR,
    CMD_START,
    CMD_STOP,
    REG_BALLS,
    REG_CMD,
    REG_CTRL,
    REG_DONE,
    REG_REMAINING,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    GaltonSpec,
)

ADDRS = [REG_CTRL, REG_SEED, REG_BALLS, REG_STATUS, REG_CMD, REG_DONE, REG_REMAINING, REG_SPEC_ID]


@pytest.mark.parametrize("count_bits", [3, 32])
def test_registers_match_the_model(count_bits):
    spec = GaltonSpec(rows=4, boards=1, prob_bits=4, prng_width=16, bin_bits=3, count_bits=count_bits)
    dut = GaltonRegisters(spec)
    rnd = random.Random(count_bits)
    dmax = (1 << count_bits) - 1
    st = {"ctrl": int(spec.correlated), "seed": spec.seed, "balls": 0, "running": 0, "limited": 0, "remaining": 0,
          "done": 0, "refused": 0}
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    def value(v):
        return rnd.choice([v, rnd.randrange(1 << 32), rnd.randrange(8), dmax, min(dmax + 1, (1 << 32) - 1)])

    async def bench(ctx):
        for c in range(3000):
            ins = {"clearing": rnd.random() < 0.1, "tinit": rnd.random() < 0.05, "ready": rnd.random() < 0.9,
                   "out_valid": rnd.random() < 0.5, "thr_refused": rnd.random() < 0.03}
            commit = st["running"] and rnd.random() < 0.6
            we = rnd.random() < 0.3
            addr = rnd.choice(ADDRS + [rnd.randrange(16)])
            if addr == REG_CMD and rnd.random() < 0.7:
                wd = rnd.choice([CMD_START, CMD_STOP, CMD_CLEAR, CMD_START | CMD_STOP, 8])
            else:
                wd = value(rnd.randrange(4))
            for n, v in ins.items():
                ctx.set(getattr(dut, n), v)
            ctx.set(dut.commit, commit)
            ctx.set(dut.bus.we, we)
            ctx.set(dut.bus.addr, addr)
            ctx.set(dut.bus.wdata, wd)
            status = st["running"] | (ins["clearing"] | ins["tinit"]) << 1 | (not ins["ready"]) << 2 \
                | ins["out_valid"] << 3 | st["refused"] << 4
            want = {REG_CTRL: st["ctrl"], REG_SEED: st["seed"], REG_BALLS: st["balls"], REG_STATUS: status,
                    REG_DONE: st["done"], REG_REMAINING: st["remaining"], REG_SPEC_ID: spec.spec_id}.get(addr, 0)
            assert ctx.get(dut.bus.rdata) == want, f"cycle {c}: read of {addr:#x}"
            # the model's next state (the contract's order: ball, write, refused threshold write)
            nxt = dict(st)
            if commit:
                nxt["done"] = min(st["done"] + 1, dmax)
                if st["limited"]:
                    nxt["remaining"] = st["remaining"] - 1
                    if st["remaining"] == 1:
                        nxt["running"] = 0
            idle = not st["running"] and not ins["clearing"]
            err = spec.register_write_error(addr, wd) if we else None
            reseed = clear = False
            if we and err is not None:
                nxt["refused"] = 1
            elif we:
                if addr == REG_CTRL and idle:
                    nxt["ctrl"] = wd
                elif addr == REG_SEED and idle:
                    nxt["seed"], reseed = wd, True
                elif addr == REG_BALLS and idle:
                    nxt["balls"] = wd
                elif addr == REG_STATUS:
                    nxt["refused"] = 0
                elif addr == REG_CMD:
                    if wd & CMD_START and not st["running"]:
                        nxt.update(running=1, limited=int(st["balls"] != 0), remaining=st["balls"])
                    if wd & CMD_STOP:
                        nxt.update(running=0, remaining=0)
                    if wd & CMD_CLEAR and not st["running"]:
                        nxt["done"], clear = 0, True
            if ins["thr_refused"]:
                nxt["refused"] = 1
            assert (ctx.get(dut.reseed), ctx.get(dut.clear)) == (reseed, clear), f"cycle {c}"
            st.update(nxt)
            await ctx.tick()
            assert (ctx.get(dut.running), ctx.get(dut.done), ctx.get(dut.write_refused)) == (
                st["running"], st["done"], st["refused"])
            assert (ctx.get(dut.corr), ctx.get(dut.hist_only)) == (st["ctrl"] & 1, st["ctrl"] >> 1 & 1)

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        GaltonRegisters(None)
