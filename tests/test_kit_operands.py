# amaranth: UnusedElaboratable=no
"""Kit part: the operand select (:mod:`hdl.kit.operands`) == its twin piece
(:func:`golden.ep_core.lanes.lane_operands`).

Every cycle a random micro-op (each kind the core has, every connection, layer and lane, states
zeroed or not) with random memory words (weights over their full signed ranges or ternary bits,
inputs, states, partial sums, d and bias words); the lanes' operands equal the twin piece's, and
the bias, partial sum, top-layer state, the stored word an update modifies and its cells equal the
words' lanes (``==``). Latency asserted: operands exactly 1 cycle, the rest exactly 2 cycles after
the op (the inputs change every cycle, so a value from any other cycle would not match). No
back-pressure.
"""

from __future__ import annotations

import random

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from golden.ep_core.lanes import lane_operands
from hdl.ep_core import K_BCAST, K_C1, K_DPASS, K_REDUCE, K_UPB, K_UPW, EPCore
from hdl.kit.operands import OperandSelect
from spec.ep_core import EPCoreSpec
from spec.fixed import signed_range

KINDS = {"reduce": K_REDUCE, "c1": K_C1, "bcast": K_BCAST, "upw": K_UPW, "dpass": K_DPASS, "upb": K_UPB}
SPECS = {
    "fixed training": dict(layers=(9, 6, 5, 3), lanes=3, weight_bits=(8, 6, 7), training=True),
    "fixed inference": dict(layers=(9, 6, 5, 3), lanes=2, training=False),
    "ternary inference": dict(layers=(9, 6, 3), lanes=4, weight_kind="ternary", weight_bits=(2,), weight_frac=(5, 4),
                              training=False),
    "ternary training": dict(layers=(9, 6, 3), lanes=1, weight_kind="ternary", weight_bits=(2,), weight_frac=(5, 4),
                             training=True),
}


def pack(vals: list[int], bits: int) -> int:
    return sum((v & ((1 << bits) - 1)) << (i * bits) for i, v in enumerate(vals))


@pytest.mark.parametrize("late", [0, 1], ids=["late0", "late1"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_operands_match_the_twin_piece(name, late):
    """… and with ``late_stages`` (the core's product stages) the values beside the products come that much later."""
    s = EPCoreSpec(**SPECS[name])
    P, L, SB, IB = s.lanes, s.n_layers, s.state_bits, s.input_bits
    op_layout = EPCore(s).op_layout()
    dut = OperandSelect(s, op_layout, KINDS, late_stages=late)
    ternary, tt = s.weight_kind == "ternary", s.ternary_training
    kinds = list(KINDS) if s.training else ["reduce", "c1", "bcast"]
    rnd = random.Random(len(name))

    def rand_signed(bits):
        lo, hi = signed_range(bits)
        return rnd.choice([lo, hi, 0, rnd.randint(lo, hi)])

    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        queue = []
        for cyc in range(120):
            kind = rnd.choice(kinds)
            conn, layer, lane, zero = rnd.randrange(L), rnd.randint(1, L), rnd.randrange(P), rnd.random() < 0.2
            op = {n: 0 for n in op_layout.members} | {"kind": KINDS[kind], "conn": conn, "layer": layer,
                                                       "lane": lane, "zero": int(zero), "valid": 1}
            ctx.set(dut.op, op)
            w = {l: [rand_signed(dut.wbits[l]) for _ in range(P)] for l in range(L)}
            nz, neg = [rnd.randrange(2) for _ in range(P)], [rnd.randrange(2) for _ in range(P)]
            x = [rnd.randrange(1 << IB) for _ in range(P)]
            st = {k: [rnd.randrange(1 << SB) for _ in range(P)] for k in range(1, L + 1)}
            part = {k: [rand_signed(s.acc_bits(k)) for _ in range(P)] for k in range(2, L)}
            d = [rand_signed(SB + 1) for _ in range(P)]
            b = [rand_signed(s.bias_bits) for _ in range(P)] if s.training else rand_signed(s.bias_bits)
            cells = [rnd.choice([0, 1, 2]) for _ in range(P)]
            ctx.set(dut.x, pack(x, IB))
            for k in range(1, L + 1):
                ctx.set(getattr(dut, f"s{k}"), pack(st[k], SB))
            for k in range(2, L):
                ctx.set(getattr(dut, f"p{k}"), pack(part[k], s.acc_bits(k)))
            ctx.set(dut.b, pack(b, s.bias_bits) if s.training else b)
            if ternary:
                ctx.set(dut.nz, pack(nz, 1))
                ctx.set(dut.neg, pack(neg, 1))
            if not ternary or tt:
                for l in range(L):
                    ctx.set(getattr(dut, f"w{l}"), pack(w[l], dut.wbits[l]))
            if s.training:
                ctx.set(dut.d, pack(d, SB + 1))
            if tt:
                ctx.set(dut.cells, pack(cells, 2))
            # the twin piece's view of the words
            sv = {k: [0] * P if zero else st[k] for k in st}
            wv = [(-1 if n_ else 1) if z else 0 for z, n_ in zip(nz, neg, strict=True)] if ternary else w[conn]
            left, right = lane_operands(kind, wv, x if conn == 0 else sv[conn], sv[conn + 1], lane, d, conn)
            later = {"bias": b[lane] if s.training else b, "part": part[layer][lane] if layer in part else 0,
                     "nstate": sv[L][lane]}
            if s.training:
                later["old"] = b if kind == "upb" else w[conn]
            if tt:
                later["cword"] = pack(cells, 2)
            queue.append((cyc, left, right, later))
            for c, lf, rt, lt in queue:
                if c == cyc - 1:
                    assert [ctx.get(dut.left[i]) for i in range(P)] == lf, f"op {c}: left"
                    assert [ctx.get(dut.right[i]) for i in range(P)] == rt, f"op {c}: right"
                if c == cyc - 2 - late:
                    got = {"bias": ctx.get(dut.bias), "part": ctx.get(dut.part), "nstate": ctx.get(dut.nstate)}
                    if s.training:
                        got["old"] = [ctx.get(dut.old[i]) for i in range(P)]
                    if tt:
                        got["cword"] = ctx.get(dut.cword)
                    assert got == lt, f"op {c}"
            queue = [q for q in queue if q[0] > cyc - 2 - late]
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    s = EPCoreSpec(layers=(9, 6, 3), lanes=2)
    with pytest.raises(ValueError, match="op_layout must have"):
        OperandSelect(s, data.StructLayout({"valid": 1}), KINDS)
    with pytest.raises(ValueError, match="kinds must name"):
        OperandSelect(s, data.StructLayout({"kind": 3, "conn": 1, "layer": 2, "lane": 1, "zero": 1}), {"reduce": 0})
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError, match="late_stages must be an integer"):
            OperandSelect(s, EPCore(s).op_layout(), KINDS, late_stages=bad)
