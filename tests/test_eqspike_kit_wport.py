# amaranth: UnusedElaboratable=no
"""EqSpike part: the weight port (:mod:`hdl.eqspike_kit.wport`) with the weight and bias memories attached ==
a model of them: every element written through ``wcmd`` (random idle cycles) lands in both copies of its
weight (``wup``/``wdn`` layouts of :func:`hdl.eqspike.memory_images`); element reads (random ``wrsp``
stalls) answer 2 cycles after the command is taken; a command for an element that does not exist writes
nothing, pulses ``cmd_error`` and reads 0; no command is taken while ``seq_idle`` is low; the digest sweep
== :func:`spec.eqspike.weight_digest`; the block read-back (random ``wdump`` back-pressure) ==
:func:`spec.eqspike.digest_words`, padding lanes 0."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Mux
from amaranth.lib import memory
from amaranth.sim import Simulator
from eqspike_kit_util import pack, unpack  # noqa: I001  (tests/ is on sys.path)

from golden.eqspike.twin import init_weights
from hdl.eqspike import dump_word_count, memory_images
from hdl.eqspike_kit.wport import WeightPort, dump_bits, wcmd_fields
from spec.eqspike import EqSpikeSpec, digest_words, weight_digest


class Harness(Elaboratable):
    """The port and the memories it reaches (read address: the port's while it selects, else word 0)."""

    def __init__(self, spec, dump):
        self.wp = WeightPort(spec, dump=dump)
        self.mems = {}
        depths = {n: len(words) for n, words in memory_images(spec, init_weights(spec)).items()}
        for name, mp in self.wp.mem.items():
            self.mems[name] = memory.Memory(shape=len(mp.wdata), depth=depths[name], init=[])

    def elaborate(self, platform):
        m = Module()
        m.submodules.wp = self.wp
        for name, mem in self.mems.items():
            m.submodules[name] = mem
            mp = self.wp.mem[name]
            w = mem.write_port(granularity=len(mp.wdata) // len(mp.wen))
            m.d.comb += [w.addr.eq(mp.waddr), w.data.eq(mp.wdata), w.en.eq(mp.wen)]
            if hasattr(mp, "rsel"):
                r = mem.read_port()
                m.d.comb += [r.addr.eq(Mux(mp.rsel, mp.raddr, 0)), mp.rdata.eq(r.data)]
        return m


def beat(spec, read, array, i, j, value):
    wf, P = wcmd_fields(spec), spec.lanes
    fields = [(read, wf["read"]), (array, wf["array"]), (i // P, wf["i_word"]), (i % P, wf["i_lane"]),
              (j // P, wf["j_word"]), (j % P, wf["j_lane"]), (value, wf["data"])]
    word, at = 0, 0
    for v, b in fields:
        word |= (v & ((1 << b) - 1)) << at
        at += b
    return word


@pytest.mark.parametrize("dump", [True, False])
def test_weight_port_matches_the_model(dump):
    spec = EqSpikeSpec(layers=(7, 5, 4), lanes=3, training=True)
    L, P = spec.n_layers, spec.lanes
    weights = init_weights(spec, seed=4, scale=3.0)
    h = Harness(spec, dump)
    wp = h.wp
    rng = np.random.default_rng(int(dump))
    elements = [(f"w{l}", l, i, j) for l in range(L) for i in range(spec.layers[l + 1]) for j in range(spec.layers[l])]
    elements += [(f"b{l}", L + l, i, 0) for l in range(L) for i in range(spec.layers[l + 1])]
    bad = [(0, spec.layers[1], 0), (L, 0, 1), (L + 1, spec.layers[2], 0)]  # beyond a layer, j of a bias
    res = {"errors": 0, "reads": 0, "stalls": 0}

    async def put(ctx, word):
        while rng.random() < 0.3:
            await ctx.tick()
        ctx.set(wp.wcmd.payload.as_value(), word)
        ctx.set(wp.wcmd.valid, 1)
        while True:
            _, _, ready, err = await ctx.tick().sample(wp.wcmd.ready, wp.cmd_error)
            if ready:
                res["errors"] += err
                break
        ctx.set(wp.wcmd.valid, 0)

    async def read(ctx, array, i, j):
        await put(ctx, beat(spec, 1, array, i, j, 0))
        waited = held = 0  # cycles from the command's to the answer's handshake; of them, stalled with valid
        while True:
            stall = rng.random() < 0.4
            ctx.set(wp.wrsp.ready, not stall)
            _, _, valid, data = await ctx.tick().sample(wp.wrsp.valid, wp.wrsp.payload.data)
            waited += 1
            if valid and waited < 2:
                raise AssertionError("wrsp valid before its 2-cycle latency")
            if valid and not stall:
                ctx.set(wp.wrsp.ready, 0)
                return data, waited - held
            held += bool(valid and stall)
            res["stalls"] += bool(valid and stall)

    async def bench(ctx):
        ctx.set(wp.seq_idle, 0)  # a sample runs: no command taken
        ctx.set(wp.wcmd.valid, 1)
        for _ in range(3):
            _, _, ready = await ctx.tick().sample(wp.wcmd.ready)
            assert not ready
        ctx.set(wp.wcmd.valid, 0)
        ctx.set(wp.seq_idle, 1)
        for name, array, i, j in elements:
            a = weights[name]
            await put(ctx, beat(spec, 0, array, i, j, int(a[i, j] if a.ndim == 2 else a[i])))
        for array, i, j in bad:
            await put(ctx, beat(spec, 0, array, i, j, 1))
            assert (await read(ctx, array, i, j))[0] == 0
        assert res["errors"] == 2 * len(bad)
        for k in rng.permutation(len(elements))[:25]:
            name, array, i, j = elements[k]
            a = weights[name]
            data, waited = await read(ctx, array, i, j)
            assert data == (a[i, j] if a.ndim == 2 else a[i]), (name, i, j)
            assert waited == 2  # the answer 2 cycles after the command, however long wrsp stalls
            res["reads"] += 1
        # the memories' words: both weight copies
        for name, words in memory_images(spec, weights).items():
            bits = len(wp.mem[name].wdata) // P
            for t, want in enumerate(words):
                assert unpack(ctx.get(h.mems[name].data[t]), bits, P, True) == unpack(want, bits, P, True), (name, t)
        # digest sweep
        ctx.set(wp.digest_start, 1)
        await ctx.tick()
        ctx.set(wp.digest_start, 0)
        while ctx.get(wp.active):
            await ctx.tick()
        assert ctx.get(wp.digest) == weight_digest(spec, weights)
        if dump:  # block read-back under back-pressure
            ctx.set(wp.dump_start, 1)
            await ctx.tick()
            ctx.set(wp.dump_start, 0)
            got = []
            while len(got) < dump_word_count(spec):
                stall = rng.random() < 0.4
                ctx.set(wp.wdump.ready, not stall)
                _, _, valid, data = await ctx.tick().sample(wp.wdump.valid, wp.wdump.payload.as_value())
                if valid and not stall:
                    got.append(unpack(data, dump_bits(spec), P, True))
            ctx.set(wp.wdump.ready, 0)
            want = [unpack(pack(row, 64), 64, P, False) for rows in digest_words(spec, weights) for row in rows]
            bits = {l: spec.weight_bits[l] for l in range(L)}
            sizes = [len(list(rows)) for rows in digest_words(spec, weights)]
            assert len(got) == len(want) == sum(sizes)
            at = 0
            for a, n in enumerate(sizes):  # lanes are two's-complement patterns of the memory's width
                b = bits[a] if a < L else spec.bias_bits
                for row in want[at:at + n]:
                    assert got[at] == [v - (1 << b) if v >> (b - 1) else v for v in row]
                    at += 1
            while ctx.get(wp.active):
                await ctx.tick()
            assert ctx.get(wp.digest) == weight_digest(spec, weights)

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert res["reads"] == 25 and res["stalls"] > 0  # not vacuous: back-pressure on wrsp
