# amaranth: UnusedElaboratable=no
"""EqSpike part: the register file (:mod:`hdl.eqspike_kit.regs`) == a model of the register map: random
writes (in and out of range, read-only and unmapped addresses, while busy) against a dict of the registers'
values and the sticky refused-write flag; every register read back in the same cycle (combinational); the
strobes (SEED load, STATUS clear, DIGEST/DUMP start) exactly in the cycle a write is taken; REG_LR against
the twin's rule (:meth:`spec.eqspike.EqSpikeSpec.check_lr_shift`)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.eqspike_kit.regs import (
    LR_ALL,
    REG_CTRL,
    REG_CYCLES,
    REG_DIGEST,
    REG_DUMP,
    REG_LR,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    REG_T1,
    REG_T2,
    STATUS_REG_ERROR,
    EqSpikeRegisters,
)
from spec.eqspike import EqSpikeSpec


def lr_ok(spec, conn, val):
    try:
        spec.check_lr_shift(tuple(val if c == conn or conn == LR_ALL else spec.lr_shift[c]
                                  for c in range(spec.n_layers)))
    except ValueError:
        return False
    return conn == LR_ALL or conn < spec.n_layers


@pytest.mark.parametrize("training,dump", [(True, True), (False, False)])
def test_registers_match_the_map(training, dump):
    s = EqSpikeSpec(layers=(9, 7, 5), lanes=3, training=training, T1=5, T2=3)
    dut = EqSpikeRegisters(s, dump=dump)
    rng = np.random.default_rng(int(training))
    model = {"ctrl": 0, "T1": s.T1, "T2": s.T2, "seed": s.seed, "err": 0, "lr": list(s.lr_shift)}
    seen = {"refused": 0, "lr": 0}

    async def bench(ctx):
        ctx.set(dut.cycles, 1234)
        for _ in range(400):
            busy = rng.random() < 0.15
            addr = int(rng.choice([REG_CTRL, REG_T1, REG_T2, REG_SEED, REG_STATUS, REG_DIGEST, REG_DUMP, REG_LR,
                                   REG_CYCLES, REG_SPEC_ID, 15]))
            if addr == REG_LR:
                conn = int(rng.choice([0, 1, 2, LR_ALL]))
                value = int(rng.integers(0, 40)) | conn << 8
            else:
                value = int(rng.choice([0, 1, 2, 3, 4, 7, 1 << s.step_bits, int(rng.integers(0, 1 << 32)),
                                        int(rng.integers(0, 4)) | int(rng.integers(0, 7)) << 8]))
            ctx.set(dut.busy, busy)
            ctx.set(dut.bus.addr, addr)
            ctx.set(dut.bus.wdata, value)
            ctx.set(dut.bus.we, 1)
            taken = not busy
            strobes = [(dut.seed_load, REG_SEED), (dut.status_clear, REG_STATUS), (dut.digest_start, REG_DIGEST)]
            for sig, a in strobes + ([(dut.dump_start, REG_DUMP)] if dump else []):
                assert ctx.get(sig) == (taken and addr == a), (addr, sig)
            if taken:
                ok = True
                if addr == REG_CTRL:
                    if training:  # bits 0, 1 in any combination, bits 8 …: an AER training sample's label
                        ok = (value >> 2) & 0x3F == 0 and value >> 8 < s.layers[-1]
                    else:
                        ok = value < 4 and not value & 2
                    model["ctrl"] = value if ok else model["ctrl"]
                elif addr in (REG_T1, REG_T2):
                    ok = 0 < value < 1 << s.step_bits
                    if ok:
                        model["T1" if addr == REG_T1 else "T2"] = value
                elif addr == REG_SEED:
                    model["seed"] = value
                elif addr == REG_STATUS:
                    model["err"] = 0
                elif addr == REG_DUMP:
                    ok = dump
                elif addr == REG_LR and training:
                    conn, val = value >> 8, value & 0xFF
                    ok = lr_ok(s, conn, val)
                    for c in range(s.n_layers):
                        if ok and (c == conn or conn == LR_ALL):
                            model["lr"][c] = val
                            seen["lr"] += 1
                elif addr != REG_DIGEST:
                    ok = False
                if not ok:
                    model["err"] = 1
                    seen["refused"] += 1
            await ctx.tick()
            ctx.set(dut.bus.we, 0)
            reads = {REG_CTRL: model["ctrl"], REG_T1: model["T1"], REG_T2: model["T2"], REG_SEED: model["seed"],
                     REG_STATUS: model["err"] * STATUS_REG_ERROR, REG_CYCLES: 1234, REG_SPEC_ID: s.spec_id}
            if training:
                reads[REG_LR] = sum(v << (6 * c) for c, v in enumerate(model["lr"]))
            ctx.set(dut.busy, 0)
            for a, want in reads.items():
                ctx.set(dut.bus.addr, a)
                assert ctx.get(dut.bus.rdata) == want, (a, want)
        assert seen["refused"] > 20 and (seen["lr"] > 5 or not training)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
