# amaranth: UnusedElaboratable=no
"""Kit part: the update path (:mod:`hdl.kit.updpath`) == its twin pieces (:mod:`golden.ep_core.update`
``update_delta``, ``apply_update``, ``reprogram_cells``; ``spec.update_shift``).

After a ``load`` with random lr/β shifts and estimator, a random stream of d-pass pairs, weight
pairs (connections ≥ 1), single weight ops (connection 0), bias pairs, ops of other kinds and idle
cycles (random products, stored words within their formats, cells, PRNG words) goes through the
path; every d, weight and bias write (and a ternary training core's reprogrammed cells and mask)
equals the twin pieces' (``==``), with the shifts ``spec.update_shift`` / ``bias_update_shift``
give. Latency asserted: a d write exactly 1 cycle and a weight/bias write exactly 2 cycles after
the op that completes the difference, and no write at any other time. No back-pressure.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.ep_core.update import apply_update, reprogram_cells, update_delta
from hdl.kit.updpath import UpdatePath
from spec.ep_core import PRNG_WIDTH, EPCoreSpec
from spec.fixed import signed_range

K_DPASS, K_UPW, K_UPB, K_OTHER = 3, 4, 5, 0
OP = data.StructLayout({"valid": 1, "kind": 3, "conn": 2, "sub": 1, "word": 3, "waddr": 6})
SPECS = {
    "fixed, half_up": dict(layers=(9, 6, 5, 3), lanes=3, training=True, update_rounding="half_up"),
    "fixed, stochastic": dict(layers=(9, 6, 5, 3), lanes=2, training=True, update_rounding="stochastic"),
    "ternary training": dict(layers=(9, 6, 3), lanes=4, weight_kind="ternary", weight_bits=(2,),
                             weight_frac=(5, 4), training=True, update_rounding="half_up"),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_update_path_matches_the_twin_pieces(name):
    s = EPCoreSpec(**SPECS[name])
    P, L, SB, prod_bits = s.lanes, s.n_layers, s.state_bits, 14
    dut = UpdatePath(s, OP, prod_bits, max(dut_bits(s)), (K_DPASS, K_UPW, K_UPB))
    tt, stoch = s.ternary_training, s.update_rounding == "stochastic"
    wbits = dut.wbits
    rnd = random.Random(len(name))
    lr, beta, sym = rnd.randint(0, 3), rnd.randint(0, s.beta_shift_max), 1
    k_w = [s.update_shift(l, lr, beta, bool(sym)) for l in range(L)]
    k_b = [s.bias_update_shift(l, lr, beta, bool(sym)) for l in range(L)]

    def ops():
        for _ in range(60):
            what = rnd.choice(["d", "w", "w0", "b", "other", "idle"])
            conn = rnd.randrange(1, L) if what == "w" else 0 if what in ("w0", "d") else rnd.randrange(L)
            word, waddr = rnd.randrange(8), rnd.randrange(64)
            if what == "idle":
                yield None, None
                continue
            kind = {"d": K_DPASS, "w": K_UPW, "w0": K_UPW, "b": K_UPB, "other": K_OTHER}[what]
            lim = (1 << SB) - 1 if what == "d" else (1 << 12)
            bits = s.bias_bits if what == "b" else wbits[conn]
            lo, hi = signed_range(bits)
            old = [rnd.choice([lo, hi, rnd.randint(lo, hi)]) for _ in range(P)]
            if tt and what != "b":  # latent weights next to ±Δ: small updates change the ternary value
                d = s.latent_threshold[conn]
                old = [rnd.choice([d, d + 1, -d, -d - 1, 0, rnd.randint(lo, hi)]) for _ in range(P)]
            cells = [rnd.choice([0, 1, 2]) for _ in range(P)]
            subs = [0] if what in ("w0", "other") else [0, 1]
            prods = [[rnd.randint(0 if what == "d" else -lim, lim) for _ in range(P)] for _ in subs]
            for sub, pr in zip(subs, prods, strict=True):
                op = {"valid": 1, "kind": kind, "conn": conn, "sub": sub, "word": word, "waddr": waddr}
                info = None
                if sub == subs[-1] and what != "other":
                    diff = list(np.array(prods[0]) - np.array(prods[1])) if len(subs) == 2 else pr
                    info = dict(what=what, conn=conn, word=word, waddr=waddr, old=old, cells=cells, diff=diff)
                yield (op, pr, old, cells), info

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    expect, got = [], []

    async def bench(ctx):
        ctx.set(dut.lr_shift, lr)
        ctx.set(dut.beta_shift, beta)
        ctx.set(dut.symmetric, sym)
        ctx.set(dut.load, 1)
        await ctx.tick()
        ctx.set(dut.load, 0)
        pending = {}
        for cyc, (item, info) in enumerate(list(ops()) + [(None, None)] * 3):
            if item is None:
                ctx.set(dut.op, {"valid": 0, "kind": K_OTHER, "conn": 0, "sub": 0, "word": 0, "waddr": 0})
            else:
                op, pr, old, cells = item
                ctx.set(dut.op, op)
                for i in range(P):
                    ctx.set(dut.prod[i], pr[i])
                    ctx.set(dut.old[i], old[i])
                if tt:
                    ctx.set(dut.cells, sum(c << (2 * i) for i, c in enumerate(cells)))
            words = [rnd.randrange(1 << PRNG_WIDTH) for _ in range(P)]
            if stoch:
                for i in range(P):
                    ctx.set(dut.rnd[i], words[i])
            if info is not None:
                pending[cyc] = info
            done = pending.pop(cyc - 1, None)
            if done is not None and done["what"] != "d":  # the rounding stage takes the PRNG words now
                done["rnd"] = words
                pending[cyc - 1, "w"] = done
            elif done is not None:
                expect.append((cyc, "d", done["word"], [int(v) for v in done["diff"]]))
            done = pending.pop((cyc - 2, "w"), None)
            if done is not None:
                expect.append((cyc, *want(s, done, k_w, k_b, wbits, stoch)))
            if ctx.get(dut.d_wen):
                got.append((cyc, "d", ctx.get(dut.d_addr), lanes(ctx.get(dut.d_data), SB + 1, P)))
            if ctx.get(dut.w_wen):
                c = ctx.get(dut.w_wconn)
                rec = [cyc, "w", c, ctx.get(dut.w_waddr), lanes(ctx.get(getattr(dut, f"w{c}_wdata")), wbits[c], P)]
                if tt:
                    rec += [[ctx.get(dut.up_cells) >> (2 * i) & 3 for i in range(P)],
                            [bool(ctx.get(dut.up_mask) >> i & 1) for i in range(P)]]
                got.append(tuple(rec))
            if ctx.get(dut.b_wen):
                got.append((cyc, "b", ctx.get(dut.b_wconn), ctx.get(dut.b_wword),
                            lanes(ctx.get(dut.b_wdata), s.bias_bits, P)))
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
    assert got == expect
    assert {e[1] for e in expect} == {"d", "w", "b"}


def dut_bits(s: EPCoreSpec) -> list[int]:
    return (list(s.latent_bits) if s.ternary_training else list(s.weight_bits)) + [s.bias_bits]


def lanes(word: int, bits: int, P: int) -> list[int]:
    out = []
    for i in range(P):
        v = word >> (i * bits) & ((1 << bits) - 1)
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


def want(s, d, k_w, k_b, wbits, stoch):
    rbits = np.array(d["rnd"], np.int64) if stoch else None
    diff, old = np.array(d["diff"], np.int64), np.array(d["old"], np.int64)
    if d["what"] == "b":
        new = apply_update(old, update_delta(diff, k_b[d["conn"]], s.update_rounding, rbits, scale=s.state_bits),
                           *signed_range(s.bias_bits))
        return ("b", d["conn"], d["word"], new.tolist())
    l = d["conn"]
    new = apply_update(old, update_delta(diff, k_w[l], s.update_rounding, rbits), *signed_range(wbits[l]))
    rec = ["w", l, d["waddr"], new.tolist()]
    if s.ternary_training:
        cells, mask = reprogram_cells(lambda x: s.ternarize_latent(l, x), old, new, np.array(d["cells"]))
        rec += [cells.tolist(), mask.tolist()]
    return tuple(rec)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="training EPCoreSpec"):
        UpdatePath(EPCoreSpec(layers=(9, 6, 3), lanes=2, training=False), OP, 14, 16, (3, 4, 5))
    with pytest.raises(ValueError, match="op_layout must have"):
        UpdatePath(EPCoreSpec(layers=(9, 6, 3), lanes=2, training=True), data.StructLayout({"valid": 1}), 14, 16,
                   (3, 4, 5))
