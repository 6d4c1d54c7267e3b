"""EqSpike part Reprogram (hdl/eqspike_kit/reprog.py) on its own against its twin piece
(golden.eqspike.ternary.reprogram): the update writes of a sweep — addresses in order, new cells where the latent's
ternary value changed, the stored cells elsewhere, the masks — with memory models around it (1-cycle reads, a
mirror of P cycles after a write of an upper connection); only marked rows are swept; a sweep without marks
writes nothing."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from golden.eqspike.ternary import pack_memory
from hdl.eqspike_kit.reprog import Reprogram
from spec.eqspike import EqSpikeSpec
from spec.ternary import pack_cells


def test_reprogram_writes_the_changed_words_of_the_marked_rows_in_address_order():
    spec = EqSpikeSpec(layers=(10, 7, 5), lanes=3, training=True, weight_kind="ternary", weight_bits=(2,),
                       weight_frac=(2,), latent_bits=(6,), latent_frac=(4,), latent_threshold=(2,))
    L, P = spec.n_layers, spec.lanes
    T = [spec.tiles(k) for k in range(L + 1)]
    depth = spec.ternary_memory_spec().depth
    rng = np.random.default_rng(5)
    lo, hi = spec.element_range("v0")
    v_old = {f"w{l}": rng.integers(lo, hi + 1, size=spec.weight_shapes()[f"w{l}"]) for l in range(L)}
    t_old = {k: spec.ternarize_latent(int(k[1:]), v) for k, v in v_old.items()}
    # new latents: some presynaptic rows (columns j of w{l}) moved; the marks cover them and a few more
    v_new, marked = {}, {}
    for l in range(L):
        v = v_old[f"w{l}"].copy()
        rows = rng.choice(spec.layers[l], size=spec.layers[l] // 2, replace=False)
        v[:, rows] = rng.integers(lo, hi + 1, size=(v.shape[0], len(rows)))
        v_new[f"w{l}"] = v
        marked[l] = sorted(set(rows.tolist()) | set(rng.choice(spec.layers[l], size=2).tolist()))
    old_cells = pack_memory(spec, t_old)
    new_cells = pack_memory(spec, {k: spec.ternarize_latent(int(k[1:]), v) for k, v in v_new.items()})
    stored = old_cells.copy()  # the memory's cells: some "faults" (stored != intended)
    flip = rng.random(stored.shape) < 0.15
    stored[flip] = np.where(stored[flip] == 0, 1, 0)
    mask = new_cells != old_cells
    want = [(int(a), pack_cells(np.where(mask[a], new_cells[a], stored[a]).tolist()), int(sum(1 << i for i in
             range(P) if mask[a, i]))) for a in np.flatnonzero(mask.any(1))]
    assert len(want) > 3 and any(a >= spec.ternary_base(1) for a, *_ in want)

    def vup_words(l):
        n_post, n_pre = spec.layers[l + 1], spec.layers[l]
        pad = np.zeros((n_pre, T[l + 1] * P), np.int64)
        pad[:, :n_post] = v_new[f"w{l}"].T
        b = spec.latent_bits[l]
        return [sum((int(x) & ((1 << b) - 1)) << (b * i) for i, x in enumerate(row)) for row in
                pad.reshape(-1, P)]

    vmem = [vup_words(l) for l in range(L)]
    cmem = [pack_cells(r.tolist()) for r in stored]
    dut = Reprogram(spec, init=[pack_cells(r.tolist()) for r in old_cells])
    got: dict = {"writes": [], "issued": 0, "cycles": 0}

    async def bench(ctx):
        for l in range(L):  # the marks, one row at a time
            for j in marked[l]:
                ctx.set(getattr(dut, f"mark{l}_en"), 1 << (j % P))
                ctx.set(getattr(dut, f"mark{l}_jw"), j // P)
                await ctx.tick()
            ctx.set(getattr(dut, f"mark{l}_en"), 0)
        for sweep in ("marked", "clean"):
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            mir, n0, c0 = 0, len(got["writes"]), got["cycles"]
            i0 = got["issued"]
            while True:  # memory models: data one cycle after the address
                vc, va, ca = ctx.get(dut.v_conn), ctx.get(dut.v_addr), ctx.get(dut.c_addr)
                done = ctx.get(dut.done)
                got["issued"] += ctx.get(dut.issue)
                got["cycles"] += 1
                if ctx.get(dut.up_en):
                    a = ctx.get(dut.up_addr)
                    got["writes"].append((a, ctx.get(dut.up_data), ctx.get(dut.up_mask)))
                    if a >= spec.ternary_base(1):
                        mir = P
                elif mir:
                    mir -= 1
                await ctx.tick()
                if done:
                    break
                ctx.set(dut.mir_busy, 1 if mir else 0)
                if vc < L:
                    ctx.set(getattr(dut, f"v{vc}"), vmem[vc][va])
                ctx.set(dut.cells, cmem[ca] if ca < depth else 0)
            got[sweep] = (len(got["writes"]) - n0, got["cycles"] - c0, got["issued"] - i0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got["writes"] == want
    assert got["marked"][2] == sum(len(marked[l]) * T[l + 1] for l in range(L))  # the marked rows' words
    sweep0 = 2 * sum(T[l] for l in range(L))  # the dirty bits: 2 cycles per row word
    assert got["clean"] == (0, sweep0 + 1, 0)  # cleared by the first sweep: nothing issued, nothing written
