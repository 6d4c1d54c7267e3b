# amaranth: UnusedElaboratable=no
"""EqSpike part: the event queue (:mod:`hdl.eqspike_kit.events`) == the twin's event order: a step's AER
events first (bad addresses flagged, never events; random ``aer.valid`` gaps are waited for), then every
list entry's set bits lowest first (``np.flatnonzero`` order), each with its Δŝ; a second pass (rewind
without AER) gives the list's events again; ``done`` only when nothing is left; each event in the cycle
of its ``pop`` (random pop gaps)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl.eqspike_kit.events import EventQueue
from spec.eqspike import EqSpikeSpec


@pytest.mark.parametrize("training", [True, False])
def test_event_queue_matches_the_event_order(training):
    s = EqSpikeSpec(layers=(13, 7, 5, 3), lanes=3, training=training)
    P, L, DB = s.lanes, s.n_layers, s.trace_frac + 2
    dut = EventQueue(s)
    rng = np.random.default_rng(int(training))
    got = []

    async def pass_(ctx, aer):
        """Pop until done (random gaps); AER beats (addr, last) offered with random gaps."""
        beats = list(aer)
        events, aer_open = [], bool(aer)
        while True:
            ctx.set(dut.pop, rng.random() < 0.7)
            if beats and rng.random() < 0.7:
                ctx.set(dut.aer.payload.addr, beats[0][0])
                ctx.set(dut.aer.payload.last, beats[0][1])
                ctx.set(dut.aer.valid, 1)
            else:
                ctx.set(dut.aer.valid, 0)
            pop, take, done, ready = (ctx.get(x) for x in (dut.pop, dut.take, dut.done, dut.aer.ready))
            assert not (take or done) or pop  # only in a pop cycle
            if take:  # an AER event has no word/lane/Δŝ
                ev = (ctx.get(dut.lay), ctx.get(dut.j))
                ev += (None, None, None) if aer_open else (ctx.get(dut.jw), ctx.get(dut.jl),
                                                          ctx.get(dut.dj) if training else 0)
                events.append(ev)
            if ready and ctx.get(dut.aer.valid):
                got.append(("bad", ctx.get(dut.aer_bad), "spike", ctx.get(dut.aer_spike)))
                aer_open = not beats.pop(0)[1]
            await ctx.tick()
            if done:
                ctx.set(dut.pop, 0)
                assert not beats
                return events

    async def bench(ctx):
        entries = []
        for lay in range(L):  # layers with targets
            for wrd in range(s.tiles(lay)):
                mask = int(rng.integers(1, 1 << P))
                if wrd * P + P > s.layers[lay]:
                    mask &= (1 << (s.layers[lay] - wrd * P)) - 1
                if mask and rng.random() < 0.6:
                    entries.append((lay, wrd, mask, rng.integers(-(1 << (DB - 2)), 1 << (DB - 2), P)))
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for lay, wrd, mask, d in entries:
            ctx.set(dut.push, 1)
            ctx.set(dut.push_lay, lay)
            ctx.set(dut.push_wrd, wrd)
            ctx.set(dut.push_mask, mask)
            if training:
                for i in range(P):
                    ctx.set(dut.push_d[i], int(d[i]))
            await ctx.tick()
        ctx.set(dut.push, 0)
        want = [(lay, wrd * P + b, wrd, b, int(d[b]) if training else 0)
                for lay, wrd, mask, d in entries for b in range(P) if mask >> b & 1]
        addrs = np.r_[rng.choice(s.layers[0], 6, replace=False), [s.layers[0], 40000]]  # two that do not exist
        aer = [(int(a), 0) for a in rng.permutation(addrs)] + [(0, 1)]
        want_aer = [(0, a, None, None, None) for a, _ in aer[:-1] if a < s.layers[0]]
        for with_aer in (True, False):
            ctx.set(dut.rewind, 1)
            ctx.set(dut.rewind_aer, with_aer)
            await ctx.tick()
            ctx.set(dut.rewind, 0)
            events = await pass_(ctx, aer if with_aer else [])
            assert events == (want_aer if with_aer else []) + want
        bad = sum(a >= s.layers[0] for a, last in aer if not last)
        assert sum(g[1] for g in got) == bad and sum(g[3] for g in got) == len(want_aer)
        assert len(want) > 5 and bad > 0  # not vacuous

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
