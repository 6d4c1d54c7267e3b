# amaranth: UnusedElaboratable=no
"""Kit part: the weight store (:mod:`hdl.kit.weights`) == its twin piece, the load-port image of
:class:`golden.ep_core.EPCoreTwin` (``program`` for writes, ``memory_words`` for read-backs).

The load port gets a random stream of writes and reads over the whole address space (out-of-map
addresses too) with random gaps on ``wcmd`` and random back-pressure on ``wrsp`` (``ready`` low);
every response is ``==`` the twin's word, in order, one per read, never earlier than 2 cycles after
its command was taken; nothing is taken while ``serve`` is low, and ``pending`` is high exactly while
a command or response is in flight. Then the sweep side: random reads of every connection's bank
and of the bias words (``==`` the image, 1 cycle latency) and update writes (read back through the
load port). Fixed-point cores; a ternary core's load port (through its memory's program port) is
covered by the whole-core tests (tests/test_ternary_core.py).
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden.ep_core import EPCoreTwin
from hdl.kit.weights import WeightStore
from spec.ep_core import EPCoreSpec

SPECS = {
    "3 layers, P 3, training": dict(layers=(7, 5, 3, 2), lanes=3, training=True),
    "2 layers, P 4, wide biases": dict(layers=(9, 6, 4), lanes=4, weight_bits=(6, 10), bias_bits=12, training=False),
}


def region_of(spec, addr):
    return next((r for r in spec.memory_map() if r.base <= addr < r.base + r.words), None)


def real_lanes(spec, addr: int) -> int:
    """Lanes of load-port word ``addr`` that hold a weight or bias (the last tile's others are padding,
    which the twin keeps at zero: the host writes zeros there in this test)."""
    r = region_of(spec, addr)
    if r is None:
        return spec.lanes
    l = int(r.name[1:])
    n = spec.layers[l] if r.name.startswith("w") else spec.layers[l + 1]
    t = (addr - r.base) % r.tiles
    return min(spec.lanes, n - t * spec.lanes)


def elements(word: int, n: int, bits: int) -> list[int]:
    return [(word >> (i * bits)) & ((1 << bits) - 1) for i in range(n)]


def pack(vals: list[int], bits: int) -> int:
    return sum((v & ((1 << bits) - 1)) << (i * bits) for i, v in enumerate(vals))


STAGES = {"one memory": (0, 1024), "banks of 4, 1 stage": (1, 4), "banks of 2, 2 stages": (2, 2),
          "banks of 8, 3 stages": (3, 8)}


@pytest.mark.parametrize("stages", sorted(STAGES))
@pytest.mark.parametrize("name", sorted(SPECS))
def test_load_port_and_sweep_side_match_the_twin_image(name, stages):
    spec = EPCoreSpec(**SPECS[name])
    P, L, EB = spec.lanes, spec.n_layers, spec.word_elem_bits
    K, bank_words = STAGES[stages]
    twin = EPCoreTwin(spec)
    dut = WeightStore(spec, read_stages=K, bank_words=bank_words)
    rsp_latency = 2 if K == 0 else 4 + K  # cycles from a read command taken to its response, at the earliest
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rnd = random.Random(len(name))
    n_addr = 1 << spec.addr_bits
    assert n_addr > spec.memory_words or name.startswith("2")  # out-of-map addresses exist (first spec)

    async def bench(ctx):
        ctx.set(dut.serve, 0)
        ctx.set(dut.wcmd.valid, 1)
        ctx.set(dut.wcmd.payload.write, 1)
        for _ in range(3):  # not serving: nothing is taken
            assert not ctx.get(dut.wcmd.ready)
            await ctx.tick()
        ctx.set(dut.serve, 1)
        cmd, expected, cycle, stats = None, [], 0, {"reads": 0, "stalled": 0, "writes": 0}
        while stats["reads"] < 120 or cmd is not None or expected:
            if cmd is None and stats["reads"] < 120 and rnd.random() < 0.7:
                write = rnd.random() < 0.5
                addr = rnd.randrange(n_addr)
                cmd = (write, addr, rnd.getrandbits(real_lanes(spec, addr) * EB))
            if cmd is not None:
                ctx.set(dut.wcmd.valid, 1)
                ctx.set(dut.wcmd.payload.write, cmd[0])
                ctx.set(dut.wcmd.payload.addr, cmd[1])
                ctx.set(dut.wcmd.payload.data, cmd[2])
            else:
                ctx.set(dut.wcmd.valid, 0)
            ready = rnd.random() < 0.6
            ctx.set(dut.wrsp.ready, ready)
            if ctx.get(dut.wrsp.valid):
                assert expected, "a response without a read"
                if ready:
                    want, taken = expected.pop(0)
                    assert cycle - taken >= rsp_latency
                    assert ctx.get(dut.wrsp.payload.data) == want
                else:
                    stats["stalled"] += 1
            if cmd is not None and ctx.get(dut.wcmd.ready):
                write, addr, word = cmd
                if write:
                    stats["writes"] += 1
                    if addr < spec.memory_words:  # a write outside the map is ignored
                        twin.program(addr, [word])
                else:
                    stats["reads"] += 1
                    expected.append((twin.memory_words()[addr] if addr < spec.memory_words else 0, cycle))
                cmd = None
            await ctx.tick()
            cycle += 1
            if expected:  # a read in flight
                assert ctx.get(dut.pending)
        await ctx.tick()
        await ctx.tick()
        assert not ctx.get(dut.pending) and stats["stalled"] > 10 and stats["writes"] > 60

        # the sweep side: every bank's words and the bias words, 1 + K cycles after their address; a read
        # every cycle (random gaps without rd_en), so K reads are in flight at once
        ctx.set(dut.serve, 0)
        image = twin.memory_words()
        regions = {r.name: r for r in spec.memory_map()}
        bbase = dut.bias_base
        flight, checked = [], 0  # (cycle the data is due, address, bias connection, bias word)
        for cyc in range(180):
            if cyc < 160 and rnd.random() < 0.8:
                l = rnd.randrange(L)
                a = rnd.randrange(regions[f"w{l}"].words)
                bl = rnd.randrange(L)
                bw = rnd.randrange(spec.tiles(bl + 1))
                ctx.set(dut.rd_en, 1)
                ctx.set(dut.rd_addr, a)
                ctx.set(dut.rd_conn, l)
                ctx.set(dut.b_rd_conn, bl)
                ctx.set(dut.b_rd_word, bw)
                flight.append((cyc + 1 + K, a, bl, bw))
            else:
                ctx.set(dut.rd_en, 0)
            await ctx.tick()
            if flight and flight[0][0] == cyc + 1:
                _, a, bl, bw = flight.pop(0)
                for k in range(L):  # every bank reads the same address
                    rk = regions[f"w{k}"]
                    if a < rk.words:
                        want = pack(elements(image[rk.base + a], P, EB), spec.weight_bits[k])
                        assert ctx.get(getattr(dut, f"w{k}")) == want
                b = regions[f"b{bl}"]
                assert b.base + bw < spec.memory_words
                assert ctx.get(dut.b_data) == pack(elements(image[b.base + bw], P, EB), spec.bias_bits)
                assert bbase[bl] + bw < bbase[L]
                checked += 1
        assert not flight and checked > 100
        ctx.set(dut.rd_en, 0)
        # update writes, read back through the load port
        for _ in range(20):
            l = rnd.randrange(L)
            r = regions[f"w{l}"]
            a = rnd.randrange(r.words)
            vals = [rnd.randrange(-(1 << (spec.weight_bits[l] - 1)), 1 << (spec.weight_bits[l] - 1)) for _ in range(P)]
            ctx.set(dut.w_wen, 1)
            ctx.set(dut.w_wconn, l)
            ctx.set(dut.w_waddr, a)
            ctx.set(getattr(dut, f"w{l}_wdata"), pack(vals, spec.weight_bits[l]))
            bl = rnd.randrange(L)
            bw = rnd.randrange(spec.tiles(bl + 1))
            bvals = [rnd.randrange(-(1 << (spec.bias_bits - 1)), 1 << (spec.bias_bits - 1)) for _ in range(P)]
            ctx.set(dut.b_wen, 1)
            ctx.set(dut.b_wconn, bl)
            ctx.set(dut.b_wword, bw)
            ctx.set(dut.b_wdata, pack(bvals, spec.bias_bits))
            await ctx.tick()
            ctx.set(dut.w_wen, 0)
            ctx.set(dut.b_wen, 0)
            ctx.set(dut.serve, 1)
            for addr, want in ((r.base + a, pack(vals, EB)), (regions[f"b{bl}"].base + bw, pack(bvals, EB))):
                ctx.set(dut.wcmd.valid, 1)
                ctx.set(dut.wcmd.payload.write, 0)
                ctx.set(dut.wcmd.payload.addr, addr)
                ctx.set(dut.wrsp.ready, 1)
                while not ctx.get(dut.wcmd.ready):
                    await ctx.tick()
                await ctx.tick()
                ctx.set(dut.wcmd.valid, 0)
                while not ctx.get(dut.wrsp.valid):
                    await ctx.tick()
                assert ctx.get(dut.wrsp.payload.data) == want  # sign-extended to word_elem_bits
                await ctx.tick()
            ctx.set(dut.serve, 0)

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    spec = EPCoreSpec(layers=(4, 3, 2), lanes=2)
    with pytest.raises(TypeError, match="spec must be an EPCoreSpec"):
        WeightStore({"layers": (4, 3, 2)})
    with pytest.raises(ValueError, match="init_words must have"):
        WeightStore(spec, [0] * (spec.memory_words + 1))
    for bad in (-1, 5, 1.0, True):
        with pytest.raises(ValueError, match="read_stages must be an integer 0"):
            WeightStore(spec, read_stages=bad)
    for bad in (0, 1, 6, 1000, 2.0):
        with pytest.raises(ValueError, match="bank_words must be a power of two"):
            WeightStore(spec, read_stages=1, bank_words=bad)
