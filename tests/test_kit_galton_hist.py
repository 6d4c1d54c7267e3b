# amaranth: UnusedElaboratable=no
"""Galton part: the histograms (:class:`hdl.kit.galton_hist.Histograms`) == the twin's counters.

After the reset clear (``clearing`` exactly N + 1 cycles), balls are committed at random (bursts in
one bin included, so back-to-back read-modify-writes of one counter are exercised, and few counter
bits, so counters saturate) and host reads are made every cycle at random addresses: each read, one
cycle later, equals a model of the memories in which a ball's increment lands 2 cycles after its
``commit`` (``GaltonTwin.hist``'s counting: +1, saturating). ``busy`` is high exactly in the 2 cycles
after a commit; a ``clear`` zeroes every counter in N + 1 cycles.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.kit.galton_hist import Histograms
from spec.galton import GaltonSpec


@pytest.mark.parametrize("boards", [1, 3])
def test_histograms_match_the_counting(boards):
    spec = GaltonSpec(rows=4, boards=boards, prob_bits=4, prng_width=16, bin_bits=3, count_bits=3)
    dut = Histograms(spec)
    rnd = random.Random(boards)
    N, B = spec.rows, spec.boards
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        cycles = 0
        while ctx.get(dut.clearing):
            await ctx.tick()
            cycles += 1
        assert cycles == N + 1
        for _ in range(2):
            hist = np.zeros((B, N + 1), dtype=np.int64)
            landing = {}  # cycle -> bins of a ball whose increment lands at that cycle's edge
            reads = {}  # cycle -> expected host_data in that cycle
            commits = []
            burst = None
            for c in range(400):
                commit = rnd.random() < 0.6 and c < 380
                if commit:
                    burst = burst if burst and rnd.random() < 0.5 else [rnd.randrange(N + 1) for _ in range(B)]
                    ctx.set(dut.bins, burst)
                ctx.set(dut.commit, commit)
                addr = rnd.randrange(1 << spec.bin_index_bits)
                ctx.set(dut.host_addr, addr)
                if c in reads:
                    assert [ctx.get(dut.host_data[b]) for b in range(B)] == reads[c], f"read in cycle {c}"
                assert ctx.get(dut.busy) == ((c - 1) in commits or (c - 2) in commits)
                if addr <= N:
                    reads[c + 1] = hist[:, addr].tolist()  # the memory before this cycle's write
                if c in landing:
                    for b, x in enumerate(landing.pop(c)):
                        hist[b, x] = min(hist[b, x] + 1, spec.counter_max)
                if commit:
                    commits.append(c)
                    landing[c + 2] = list(burst)
                await ctx.tick()
            assert hist.max() == spec.counter_max  # some counters saturated
            for _ in range(3):
                await ctx.tick()
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            cycles = 0
            while ctx.get(dut.clearing):
                await ctx.tick()
                cycles += 1
            assert cycles == N + 1
            for a in range(N + 1):  # everything zero
                ctx.set(dut.host_addr, a)
                await ctx.tick()
                assert [ctx.get(dut.host_data[b]) for b in range(B)] == [0] * B

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    with pytest.raises(TypeError, match="spec must be a GaltonSpec"):
        Histograms(None)
