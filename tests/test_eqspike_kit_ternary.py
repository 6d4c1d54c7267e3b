"""EqSpike part: the ternary weight rows (:mod:`hdl.eqspike_kit.ternary`) == the twin's memory
(:mod:`golden.eqspike.ternary`): words programmed on ``tcmd`` in address order (static faults on), then
every word's PCSA read as 2-bit lanes == the twin's stored values, and the mirror's elements (``mir_*``) ==
the stored weights transposed (the ``wdn{l}`` copy), exactly one per existing element; ``tcmd`` held while
a mirror runs."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator
from eqspike_kit_util import unpack  # noqa: I001  (tests/ is on sys.path)

from golden.eqspike.ternary import configure_faults, unpack_memory
from golden.eqspike.twin import EqSpikeTwin, init_weights
from hdl.eqspike_host import pack
from hdl.eqspike_kit.ternary import TernaryRows, tcmd_beats, tcmd_fields
from spec import ternary as tm
from spec.eqspike import EqSpikeSpec
from spec.ternary import ctrl_value


def test_ternary_rows_program_read_and_mirror_match_the_twin():
    spec = EqSpikeSpec(layers=(10, 7, 5, 3), lanes=3, training=False, weight_kind="ternary", weight_bits=(2,),
                       weight_frac=(2,), fault_injection=True)
    rng = np.random.default_rng(1)
    w = {k: v for k, v in init_weights(EqSpikeSpec(layers=(10, 7, 5, 3), lanes=3, training=False), 1, 3.0).items()
         if k.startswith("b")}
    for l in range(spec.n_layers):
        w[f"w{l}"] = rng.choice([-1, 0, 1], size=spec.weight_shapes()[f"w{l}"]).astype(np.int64)
    twin = EqSpikeTwin(spec, w)
    info = configure_faults(twin, w, 0.2, "static", "adjacent", seed=9)
    stored = twin.weights
    dut = TernaryRows(spec)
    P, L, tf = spec.lanes, spec.n_layers, tcmd_fields(spec)
    depth = spec.ternary_memory_spec().depth
    got = {"mirror": {}, "reads": [], "held": 0}

    async def reg_write(ctx, a, v):
        ctx.set(dut.reg.addr, a)
        ctx.set(dut.reg.wdata, v)
        ctx.set(dut.reg.we, 1)
        await ctx.tick()
        ctx.set(dut.reg.we, 0)

    async def bench(ctx):
        ctx.set(dut.allow, 1)
        for a, v in ((tm.REG_CTRL, ctrl_value("static", "adjacent")), (tm.REG_RATE_ZERO, info["rate_zero"]),
                     (tm.REG_RATE_NONZERO, info["rate_nonzero"]), (tm.REG_SEED, 9), (tm.REG_INJECTED, 0)):
            await reg_write(ctx, a, v)
        for b in tcmd_beats(spec, w):
            ctx.set(dut.tcmd.payload.as_value(), pack([(b[k], wd) for k, wd in tf.items()]))
            ctx.set(dut.tcmd.valid, 1)
            while True:
                _, _, ready, mv, ml, ma, mn, mval = await ctx.tick().sample(
                    dut.tcmd.ready, dut.mir_v, dut.mir_lay, dut.mir_addr, dut.mir_lane, dut.mir_val)
                if mv:
                    key = (ml, ma, mn)
                    assert key not in got["mirror"]
                    got["mirror"][key] = mval - 4 if mval >= 2 else mval
                    assert not ready
                if ready:
                    break
                got["held"] += 1
            ctx.set(dut.tcmd.valid, 0)
        while not ctx.get(dut.idle):  # the last word's mirror
            _, _, mv, ml, ma, mn, mval = await ctx.tick().sample(dut.mir_v, dut.mir_lay, dut.mir_addr, dut.mir_lane,
                                                                   dut.mir_val)
            if mv:
                got["mirror"][(ml, ma, mn)] = mval - 4 if mval >= 2 else mval
        ctx.set(dut.reg.addr, tm.REG_INJECTED)
        got["injected"] = ctx.get(dut.reg.rdata)
        for a in range(depth):
            ctx.set(dut.raddr, a)
            ctx.set(dut.ren, 1)
            await ctx.tick()
            ctx.set(dut.ren, 0)
            got["reads"].append(unpack(ctx.get(dut.rdata), 2, P, True))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got["injected"] == info["injected"] > 0
    vals = np.array(got["reads"])
    for l, wt in enumerate(unpack_memory(spec, vals)):
        assert np.array_equal(wt.T, stored[f"w{l}"]), l
    assert any(not np.array_equal(stored[f"w{l}"], w[f"w{l}"]) for l in range(L))
    want = {}
    for l in range(1, L):
        T = spec.tiles(l)
        for i in range(spec.layers[l + 1]):
            for j in range(spec.layers[l]):
                want[(l, i * T + j // P, j % P)] = int(stored[f"w{l}"][i, j])
    assert got["mirror"] == want
    # P mirror cycles after every upper-connection word (the last one after the last beat)
    assert got["held"] >= P * (sum(spec.layers[l] * spec.tiles(l + 1) for l in range(1, L)) - 1)
