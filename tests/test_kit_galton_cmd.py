# amaranth: UnusedElaboratable=no
"""Galton part: the command port (:class:`hdl.kit.galton_cmd.GaltonCommands`) == ``GaltonTwin.write``/``read``.

After the copy's reset rewrite (``tinit``, 2^(2·row_bits+1) cycles, ``cmd.ready`` low), random commands
(threshold writes in and out of range, writes to unused and histogram addresses, reads of every kind)
are offered with random gaps while ``idle``/``hist_busy`` and ``rsp.ready`` change at random. Checked
every cycle: ``cmd.ready`` (idle, not busy, nothing pending), ``refused`` in the accepting cycle exactly
when the twin refuses the write, the registered write (``t_we``/``t_off``/``t_data``) the cycle after,
and every response: 2 cycles after acceptance, held under back-pressure, equal to the twin's ``read``
(histogram words from a memory model on ``hist_addr``/``hist_data``).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.domainwall import GaltonTwin
from hdl.kit.galton_cmd import GaltonCommands
from spec.galton import GaltonSpec


@pytest.mark.parametrize("boards", [1, 3])
def test_commands_match_the_twin(boards):
    spec = GaltonSpec(rows=5, boards=boards, prob_bits=4, prng_width=16, bin_bits=6, count_bits=3)
    dut = GaltonCommands(spec)
    rnd = random.Random(boards)
    twin = GaltonTwin(spec)
    twin.hist = np.array([[rnd.randrange(1 << spec.bin_bits) for _ in range(spec.rows + 1)] for _ in range(boards)])
    H = [[int(x) for x in row] + [0] * ((1 << spec.bin_index_bits) - spec.rows - 1) for row in twin.hist]
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    def command():
        kind = rnd.random()
        if kind < 0.5:  # a threshold (used or not), in or out of range
            addr, data = rnd.randrange(spec.hist_base), rnd.choice([rnd.randrange(spec.threshold_max + 1),
                                                                    rnd.randrange(1 << spec.data_bits)])
        else:  # a histogram address
            addr, data = spec.hist_base + rnd.randrange(spec.hist_base), rnd.randrange(1 << spec.data_bits)
        return addr, data, int(rnd.random() < 0.5)

    async def bench(ctx):
        ctx.set(dut.idle, 1)
        cycles = 0
        while ctx.get(dut.tinit):
            ctx.set(dut.cmd.valid, 1)
            assert not ctx.get(dut.cmd.ready)
            await ctx.tick()
            cycles += 1
        assert cycles == 1 << (2 * spec.row_bits + 1)
        ctx.set(dut.cmd.valid, 0)
        cmd, pending_w, pending_r, rsp_q, host_addr = None, None, [], [], 0
        reads = writes = 0
        for c in range(3000):
            idle, busy, rsp_ready = rnd.random() < 0.9, rnd.random() < 0.1, rnd.random() < 0.6
            if cmd is None and rnd.random() < 0.5:
                cmd = command()
            ctx.set(dut.idle, idle)
            ctx.set(dut.hist_busy, busy)
            ctx.set(dut.rsp.ready, rsp_ready)
            ctx.set(dut.hist_data, [H[b][host_addr] for b in range(boards)])  # the memories' read port
            ctx.set(dut.cmd.valid, cmd is not None)
            if cmd is not None:
                ctx.set(dut.cmd.payload, {"addr": cmd[0], "data": cmd[1], "write": cmd[2]})
            # the registered write of the cycle before
            assert ctx.get(dut.t_we) == (pending_w is not None)
            if pending_w is not None:
                assert (ctx.get(dut.t_off), ctx.get(dut.t_data)) == pending_w
            # a response: 2 cycles after acceptance, held until taken
            due = [r for r in pending_r if r[0] <= c]
            assert ctx.get(dut.rsp.valid) == bool(due or rsp_q)
            rsp_q += [r[1] for r in due]
            pending_r = [r for r in pending_r if r[0] > c]
            if rsp_q:
                assert ctx.get(dut.rsp.payload.data) == rsp_q[0], f"cycle {c}"
            free = idle and not busy and pending_w is None and not pending_r and not rsp_q
            assert ctx.get(dut.cmd.ready) == free, f"cycle {c}"
            pending_w = None
            refused = False
            if cmd is not None and free:
                addr, data, write = cmd
                host_addr = addr & ((1 << spec.bin_index_bits) - 1)
                if write:
                    refused = twin.write(addr, data) is not None
                    writes += 1
                    if not refused and not addr & spec.hist_base:
                        pending_w = (addr, min(data, spec.threshold_max))
                else:
                    pending_r.append((c + 2, twin.read(addr)))
                    reads += 1
                cmd = None
            assert ctx.get(dut.refused) == refused
            if rsp_q and rsp_ready:
                rsp_q.pop(0)
            await ctx.tick()
        assert reads > 200 and writes > 200

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        GaltonCommands(None)
