# amaranth: UnusedElaboratable=no
"""Kit part: the state dump (:mod:`hdl.kit.dump`) == its twin piece
(:func:`golden.ep_core.sequence.dump_beats`).

The reader streams one bank of a model of the per-layer state memories (a one-cycle read: the
data is the word asked for in the previous cycle) under random back-pressure; the beats equal the
twin piece's, in order, ``==``. Stream rules and latency asserted: the first beat valid 2 cycles
after ``start``, the next 2 cycles after a beat is taken, ``valid`` and the payload stable while
``ready`` is low, ``done`` exactly in the last beat's handshake, nothing valid before or after.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden.ep_core.sequence import dump_beats
from hdl.kit import layout_from_fields
from hdl.kit.dump import DumpReader
from spec.ep_core import EPCoreSpec


@pytest.mark.parametrize("layers,lanes", [((6, 9, 5, 3), 4), ((4, 3, 2), 1)])
def test_dump_streams_the_twin_beats(layers, lanes):
    spec = EPCoreSpec(layers=layers, lanes=lanes)
    P, L, SB = lanes, spec.n_layers, spec.state_bits
    T = [spec.tiles(k) for k in range(1, L + 1)]
    dut = DumpReader(layout_from_fields(spec.dump_fields()), T)
    rnd = random.Random(len(layers) * 10 + lanes)
    # four banks of every layer's states (padded to whole words)
    banks = [[[rnd.randrange(1 << SB) for _ in range(T[k] * P)] for k in range(L)] for _ in range(4)]
    mem = [[sum(v << (i * SB) for i, v in enumerate(banks[b][k][t * P:(t + 1) * P]))
            for b in range(4) for t in range(T[k])] for k in range(L)]
    runs = [(rnd.randrange(4), rnd.randrange(3)) for _ in range(3)]
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        rdata = [0] * L
        for bank, phase in runs:
            ctx.set(dut.start, 1)
            assert not ctx.get(dut.dump.valid)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.bank, bank)
            ctx.set(dut.phase, phase)
            want = dump_beats(spec, banks[bank], phase)
            got, since, held = [], 0, None
            while len(got) < len(want):
                for k in range(L):
                    ctx.set(dut.data[k], rdata[k])
                ready = rnd.random() < 0.5
                ctx.set(dut.dump.ready, ready)
                since += 1
                if ctx.get(dut.dump.valid):
                    assert since == 2 or held is not None, f"beat {len(got)} valid {since} cycles after its start"
                    p = ctx.get(dut.dump.payload)
                    beat = {"layer": p.layer, "tile": p.tile, "phase": p.phase,
                            "states": [p.states[i] for i in range(P)]}
                    assert held is None or beat == held, "payload changed while waiting for ready"
                    last = len(got) == len(want) - 1
                    assert ctx.get(dut.done) == (ready and last)
                    if ready:
                        got.append(beat)
                        since, held = 0, None
                    else:
                        held = beat
                else:
                    assert not ctx.get(dut.done)
                # the model memory: a one-cycle read of the addresses asked for
                for k in range(L):
                    if ctx.get(dut.rd_en) >> k & 1:
                        rdata[k] = mem[k][ctx.get(dut.rd_addr[k])]
                await ctx.tick()
            assert got == want
            for _ in range(3):  # idle again
                assert not ctx.get(dut.dump.valid) and not ctx.get(dut.done) and ctx.get(dut.rd_en) == 0
                await ctx.tick()

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    spec = EPCoreSpec(layers=(6, 9, 3), lanes=4)
    with pytest.raises(ValueError, match="tiles must be"):
        DumpReader(layout_from_fields(spec.dump_fields()), [3, 0])
    with pytest.raises(ValueError, match="layout must have"):
        DumpReader(layout_from_fields(spec.input_fields()), [3, 1])
