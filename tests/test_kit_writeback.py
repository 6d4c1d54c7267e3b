# amaranth: UnusedElaboratable=no
"""Kit part: the state write-back (:class:`hdl.kit.writeback.StateWriteback`) == the twin's memory writes.

Random column-path results (layer 1 and every middle layer) and row-path results (c1 values across
and beyond ``spec.c1_range()``, every layer's state) are applied, with the two paths valid at once
and apart; every memory's write port must be what the twin's lists take: the state word
``bank·tiles(k) + word`` with the lane (or layer 1's mask) enabled and the value replicated, the c1
lane saturated to ``c1_range`` (``np.clip``), a middle layer's P sums truncated to ``acc_bits(k)``;
every other port 0. Combinational (latency 0), checked in the same cycle.
"""

from __future__ import annotations

import random

import pytest
from amaranth.lib import data
from amaranth.sim import Simulator

from hdl.kit.writeback import StateWriteback
from spec.ep_core import EPCoreSpec

K_C1, K_REDUCE, K_OTHER = 2, 0, 5
OP = data.StructLayout({"valid": 1, "kind": 3, "layer": 3, "lane": 2, "word": 3, "wr_bank": 2})


@pytest.mark.parametrize("lanes", [4, 1])
def test_writeback_matches_the_twin_writes(lanes):
    s = EPCoreSpec(layers=(12, 7, 6, 5), lanes=lanes, training=True)
    dut = StateWriteback(s, OP, K_C1, K_REDUCE)
    rnd = random.Random(lanes)
    L, P, SB, ACC = s.n_layers, lanes, s.state_bits, s.acc_bits_max
    T = [s.tiles(k) for k in range(L + 1)]
    lo, hi = s.c1_range()
    sim = Simulator(dut)

    def mask(bits):
        return (1 << bits) - 1

    async def bench(ctx):
        for c in range(400):
            col = {"valid": rnd.random() < 0.5, "layer": rnd.randrange(1, L), "bank": rnd.randrange(4),
                   "mask": rnd.randrange(1 << P), "state": [rnd.randrange(1 << SB) for _ in range(P)],
                   "acc": [rnd.randint(-(1 << (ACC - 1)), (1 << (ACC - 1)) - 1) for _ in range(P)]}
            col["word"] = rnd.randrange(T[col["layer"]])
            kind = rnd.choice([K_C1, K_REDUCE, K_OTHER])
            layer = rnd.randrange(1, L + 1) if kind != K_C1 else 1
            row = {"valid": rnd.random() < 0.5, "op": {"valid": 1, "kind": kind, "layer": layer,
                                                       "lane": rnd.randrange(P), "wr_bank": rnd.randrange(4),
                                                       "word": rnd.randrange(T[layer])},
                   "value": rnd.choice([rnd.randint(lo, hi), rnd.randint(-(1 << (ACC - 1)), (1 << (ACC - 1)) - 1),
                                        lo - 1, hi + 1]),
                   "state": rnd.randrange(1 << SB)}
            for n in ("valid", "layer", "word", "bank", "mask"):
                ctx.set(getattr(dut, f"col_{n}"), col[n])
            ctx.set(dut.col_state, sum(x << (i * SB) for i, x in enumerate(col["state"])))
            ctx.set(dut.col_acc, sum((x & mask(ACC)) << (i * ACC) for i, x in enumerate(col["acc"])))
            for n in ("valid", "value", "state"):
                ctx.set(getattr(dut, f"row_{n}"), row[n])
            ctx.set(data.View(OP, dut.row_op), row["op"])
            want = {f"{n}_{p}": 0 for n in dut.names for p in ("waddr", "wen", "wdata")}
            if col["valid"] and col["layer"] == 1:
                want.update(s1_waddr=col["bank"] * T[1] + col["word"], s1_wen=col["mask"],
                            s1_wdata=sum(x << (i * SB) for i, x in enumerate(col["state"])))
            elif col["valid"]:
                k, ab = col["layer"], s.acc_bits(col["layer"])
                want.update({f"p{k}_waddr": col["word"], f"p{k}_wen": 1,
                             f"p{k}_wdata": sum((x & mask(ab)) << (i * ab) for i, x in enumerate(col["acc"]))})
            op = row["op"]
            if row["valid"] and kind == K_C1:
                v = min(max(row["value"], lo), hi) & mask(s.c1_bits)
                want.update(c1_waddr=op["word"], c1_wen=1 << op["lane"],
                            c1_wdata=sum(v << (i * s.c1_bits) for i in range(P)))
            elif row["valid"] and kind == K_REDUCE and layer >= 2:
                want.update({f"s{layer}_waddr": op["wr_bank"] * T[layer] + op["word"], f"s{layer}_wen": 1 << op["lane"],
                             f"s{layer}_wdata": sum(row["state"] << (i * SB) for i in range(P))})
            got = {n: ctx.get(getattr(dut, n)) for n in want}
            assert got == want, f"cycle {c}"
            await ctx.delay(1e-6)

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    with pytest.raises(TypeError, match="spec must be an EPCoreSpec"):
        StateWriteback(None, OP, K_C1, K_REDUCE)
