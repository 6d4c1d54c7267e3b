# amaranth: UnusedElaboratable=no
"""Kit part: the issue stage (:mod:`hdl.kit.issue`) == its twin piece
(:func:`golden.ep_core.sequence.state_reads`).

For random positions of every sweep of the EP core's own table (:meth:`hdl.ep_core.EPCore.sweeps`)
and random sequencer banks, the state addresses of every layer equal the twin piece's, and the
micro-op's fields (row j, its lane and word, argmax only in the last free step's top-layer reduce,
the engine's and sequencer's fields passed on), the input, row and bias words are as the
contract says (``==``). Latency asserted: 0 (combinational; no clock edge between inputs and
outputs). No back-pressure.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from golden.ep_core.sequence import state_reads
from hdl.ep_core import K_BCAST, K_C1, K_DPASS, K_REDUCE, K_UPB, K_UPW, EPCore
from hdl.kit.issue import Issue
from hdl.kit.sweep import SweepEngine
from spec.ep_core import EPCoreSpec

KINDS = {"reduce": K_REDUCE, "c1": K_C1, "bcast": K_BCAST, "upw": K_UPW, "dpass": K_DPASS, "upb": K_UPB}
NAMES = {v: k for k, v in KINDS.items()}


@pytest.mark.parametrize("layers,lanes", [((20, 12, 7, 5), 4), ((6, 3, 2), 1)])
def test_issue_matches_the_twin_piece(layers, lanes):
    s = EPCoreSpec(layers=layers, lanes=lanes, training=True)
    P, L = lanes, s.n_layers
    core = EPCore(s)
    table, _, _ = core.sweeps()
    T = [s.tiles(l) for l in range(L + 1)]
    eng = SweepEngine(table, P, T[:L], max(s.layers[l + 1] * T[l] for l in range(L)))
    dut = Issue(s, core.op_layout(), KINDS, eng)
    rnd = random.Random(len(layers) + lanes)
    sim = Simulator(dut)

    async def bench(ctx):
        for _ in range(300):
            d = rnd.choice(table)
            outer, inner, sub = rnd.randrange(d.outer), rnd.randrange(d.inner), rnd.randrange(2)
            run, lf, zero = rnd.randrange(2), rnd.randrange(2), rnd.randrange(2)
            banks = {n: rnd.randrange(4) for n in ("rd_bank", "wr_bank", "bank_a", "bank_b", "bsign")}
            waddr = rnd.randrange(len(range(2 ** len(eng.waddr))))
            vals = {"run": run, "kind": d.kind, "conn": d.conn, "layer": d.layer, "sub": sub, "waddr": waddr,
                    "outer": outer, "inner": inner, "o_w": outer // P, "o_l": outer % P, "i_w": inner // P,
                    "i_l": inner % P, "first": int(inner == 0), "last": int(inner == d.inner - 1),
                    "last_free": lf, "rd_zero": zero, **banks}
            for n, v in vals.items():
                ctx.set(getattr(dut, n), v)
            kind = NAMES[d.kind]
            want = state_reads(s, kind, d.conn, outer, inner, sub, banks["rd_bank"], banks["bank_a"], banks["bank_b"])
            if want is not None:
                assert {k: ctx.get(dut.s_addr[k - 1]) for k in range(1, L + 1)} == want, (kind, vals)
            op = ctx.get(dut.op)
            row = kind in ("reduce", "c1", "upw")
            j = outer if row else inner
            assert (op.valid, op.kind, op.conn, op.layer, op.sub, op.waddr, op.first, op.last) == (
                run, d.kind, d.conn, d.layer, sub, waddr, vals["first"], vals["last"])
            assert (op.wr_bank, op.zero, op.bsign) == (banks["wr_bank"], zero, banks["bsign"])
            assert (op.j, op.lane, op.word) == (j, j % P, outer // P if row else outer), (kind, vals)
            assert op.argmax == int(bool(lf) and kind == "reduce" and d.layer == L)
            assert (ctx.get(dut.x_addr), ctx.get(dut.row_word)) == (inner, outer // P)
            assert ctx.get(dut.b_word) == (outer if kind == "upb" else outer // P)

    sim.add_testbench(bench)
    sim.run()


def test_bad_parameters_are_refused():
    s = EPCoreSpec(layers=(6, 3, 2), lanes=1, training=True)
    core = EPCore(s)
    table, _, _ = core.sweeps()
    eng = SweepEngine(table, 1, [6, 3], 18)
    with pytest.raises(ValueError, match="kinds must name"):
        Issue(s, core.op_layout(), {"reduce": 0}, eng)
    with pytest.raises(ValueError, match="kind must be one of"):
        state_reads(s, "other", 0, 0, 0, 0, 0, 0, 0)
