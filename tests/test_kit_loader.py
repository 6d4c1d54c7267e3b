# amaranth: UnusedElaboratable=no
"""Kit part: the input loader (:mod:`hdl.kit.loader`) == its twin piece
(:func:`golden.ep_core.sequence.input_tiles`).

Samples are sent beat by beat with random idle cycles (``valid`` low) and random back-pressure
(``ok`` low); the words written to a model of the input memory equal the twin piece's tiles
(padding lanes 0 even where the beat carries codes there), ``==``. Latency asserted: each beat is
written in its handshake's cycle, ``load`` is high exactly in the last beat's, ``label`` holds
its label from the next cycle on, and ``inp.ready`` follows ``ok``.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden.ep_core.sequence import input_tiles
from hdl.kit import layout_from_fields
from hdl.kit.loader import InputLoader
from spec.ep_core import EPCoreSpec


@pytest.mark.parametrize("layers,lanes", [((11, 4, 3), 4), ((8, 4, 3), 4), ((3, 2, 2), 1)])
def test_loader_writes_the_twin_tiles(layers, lanes):
    spec = EPCoreSpec(layers=layers, lanes=lanes)
    P, T, IB = lanes, spec.tiles(0), spec.input_bits
    dut = InputLoader(layout_from_fields(spec.input_fields()), layers[0], T)
    rnd = random.Random(sum(layers) + lanes)
    samples = [([rnd.randrange(1 << IB) for _ in range(layers[0])], rnd.randrange(spec.n_classes)) for _ in range(4)]
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for x, label in samples:
            mem = {}
            tiles = input_tiles(spec, x)
            for t in range(T):
                ctx.set(dut.inp.valid, 1)
                for i in range(P):  # garbage in the padding lanes: the loader must write 0 there
                    ctx.set(dut.inp.payload.pixels[i], x[t * P + i] if t * P + i < len(x) else (1 << IB) - 1)
                ctx.set(dut.inp.payload.label, label if t == T - 1 else rnd.randrange(spec.n_classes))
                while True:
                    ok = rnd.random() < 0.6
                    ctx.set(dut.ok, ok)
                    assert ctx.get(dut.inp.ready) == ok
                    taken = ok
                    assert ctx.get(dut.wr_en) == taken
                    assert ctx.get(dut.load) == (taken and t == T - 1)
                    if taken:
                        mem[ctx.get(dut.wr_addr)] = ctx.get(dut.wr_data)
                    await ctx.tick()
                    if taken:
                        break
                ctx.set(dut.inp.valid, 0)
                for _ in range(rnd.randint(0, 2)):  # idle: nothing written
                    ctx.set(dut.ok, rnd.random() < 0.5)
                    assert not ctx.get(dut.wr_en) and not ctx.get(dut.load)
                    await ctx.tick()
            assert ctx.get(dut.label) == label
            words = [[(mem[t] >> (i * IB)) & ((1 << IB) - 1) for i in range(P)] for t in range(T)]
            assert words == tiles

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    spec = EPCoreSpec(layers=(11, 4, 3), lanes=4)
    layout = layout_from_fields(spec.input_fields())
    with pytest.raises(ValueError, match="inputs and tiles"):
        InputLoader(layout, 11, 2)
    with pytest.raises(ValueError, match="layout must have"):
        InputLoader(layout_from_fields(spec.output_fields()), 11, 3)
    with pytest.raises(ValueError, match="x must have 11"):
        input_tiles(spec, [0] * 10)
