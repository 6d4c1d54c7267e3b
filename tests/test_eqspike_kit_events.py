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


def test_replay_list_takes_each_input_event_once():
    """Training cores (AER training): with ``track`` each good AER event's neuron enters the step's replay list
    once (duplicates, back to back or apart, and bad addresses left out); a pass rewound with ``rewind_replay``
    gives the list's neurons (layer 0, first-seen order, word and lane, Δŝ 0) before the mask list's events;
    ``clear`` empties it, and the seen bits are clear again for the next step (a neuron of step t is listed in
    step t + 1 too); a step without ``track`` lists nothing."""
    s = EqSpikeSpec(layers=(13, 7, 5, 3), lanes=3, training=True)
    P, n0 = s.lanes, s.layers[0]
    dut = EventQueue(s)
    rng = np.random.default_rng(5)
    listed = 0

    async def pass_(ctx, aer):
        beats, events, aer_open = list(aer), [], bool(aer)
        while True:
            ctx.set(dut.pop, rng.random() < 0.8)
            if beats and rng.random() < 0.8:
                ctx.set(dut.aer.payload.addr, beats[0][0])
                ctx.set(dut.aer.payload.last, beats[0][1])
                ctx.set(dut.aer.valid, 1)
            else:
                ctx.set(dut.aer.valid, 0)
            take, done, ready = ctx.get(dut.take), ctx.get(dut.done), ctx.get(dut.aer.ready)
            if take:
                events.append((ctx.get(dut.lay), ctx.get(dut.j)) + (() if aer_open else (
                    ctx.get(dut.jw), ctx.get(dut.jl), ctx.get(dut.dj))))
            if ready and ctx.get(dut.aer.valid):
                aer_open = not beats.pop(0)[1]
            await ctx.tick()
            if done:
                ctx.set(dut.pop, 0)
                return events

    async def bench(ctx):
        nonlocal listed
        prev: list[int] = []
        for step in range(8):
            track = step != 3
            ctx.set(dut.clear, 1)
            await ctx.tick()
            ctx.set(dut.clear, 0)
            mask = int(rng.integers(1, 1 << P))  # one mask-list entry of layer 1
            ctx.set(dut.push, 1)
            ctx.set(dut.push_lay, 1)
            ctx.set(dut.push_wrd, 1)
            ctx.set(dut.push_mask, mask)
            for i in range(P):
                ctx.set(dut.push_d[i], i + 1)
            await ctx.tick()
            ctx.set(dut.push, 0)
            want_list = [(1, P + b, 1, b, b + 1) for b in range(P) if mask >> b & 1]
            good = rng.choice(n0, int(rng.integers(0, n0 + 1)), replace=False).tolist() + prev[:2]
            sent = [int(a) for a in good + (rng.choice(good, min(len(good), 4)).tolist() if good else [])]
            sent += [n0 + 3, 1 << 15]  # neurons that do not exist
            rng.shuffle(sent)
            k = int(rng.integers(0, len(sent)))
            sent.insert(k + 1, sent[k])  # a duplicate (or a bad address again) right behind its first
            ctx.set(dut.track, track)
            ctx.set(dut.rewind, 1)
            ctx.set(dut.rewind_aer, 1)
            await ctx.tick()
            ctx.set(dut.rewind, 0)
            ctx.set(dut.rewind_aer, 0)
            events = await pass_(ctx, [(a, 0) for a in sent] + [(0, 1)])
            assert events == [(0, a) for a in sent if a < n0] + want_list  # (duplicates are events here)
            ctx.set(dut.track, 0)
            ctx.set(dut.rewind, 1)
            ctx.set(dut.rewind_replay, 1)
            await ctx.tick()
            ctx.set(dut.rewind, 0)
            ctx.set(dut.rewind_replay, 0)
            first_seen = list(dict.fromkeys(a for a in sent if a < n0)) if track else []
            events = await pass_(ctx, [])
            assert events == [(0, a, a // P, a % P, 0) for a in first_seen] + want_list, step
            listed += len(first_seen)
            prev = first_seen

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert listed > 20  # not vacuous
