"""EqSpike part: the add-only accumulate of one weight row word into P accumulators (docs/eqspike.md, "RTL
architecture", EVT; twin piece: the sparse branch of step 2 of :meth:`golden.eqspike.twin.EqSpikeTwin._step`,
``acc = Σ_rows w << bu (+ Σ_cols w << td)``)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from .common import check_spec, lanes, one_net


class Accumulate(wiring.Component):
    """``acc_next = acc + (up << bottom_up_shift(k))``, or with ``dn_sel`` (k < L only)
    ``acc + (dn << top_down_shift(k))``, per lane, wrapped to ``acc_bits(k)`` (the spec's width derivation
    bounds a step's sum: it never wraps).

    Contract: ``acc`` is a word of P accumulators of layer ``k`` (signed ``acc_bits(k)``), ``up`` a word of
    the bottom-up row (P weights of ``w{k-1}``, signed ``weight_bits[k-1]``), ``dn`` (k < L) of the top-down
    row (P weights of ``w{k}``). No multiplier: exact left shifts.

    Latency: combinational (0 cycles).
    """

    def __init__(self, spec: EqSpikeSpec, k: int):
        check_spec(spec, k)
        self.spec, self.k, self.has_dn = spec, k, k < spec.n_layers
        P, ab = spec.lanes, spec.acc_bits(k)
        members = {"acc": In(P * ab), "up": In(P * spec.weight_bits[k - 1]), "acc_next": Out(P * ab)}
        if self.has_dn:
            members |= {"dn": In(P * spec.weight_bits[k]), "dn_sel": In(1)}
        super().__init__(members)

    def elaborate(self, platform):
        s, k = self.spec, self.k
        P, ab = s.lanes, s.acc_bits(k)
        m = Module()
        acc = lanes(self.acc, ab, True, P)
        up = lanes(self.up, s.weight_bits[k - 1], True, P)
        dn = lanes(self.dn, s.weight_bits[k], True, P) if self.has_dn else None
        total = []
        for i in range(P):
            add = up[i] << s.bottom_up_shift(k)
            if dn is not None:
                add = Mux(self.dn_sel, dn[i] << s.top_down_shift(k), add)
            total.append((acc[i] + add)[:ab])
        m.d.comb += self.acc_next.eq(one_net(Cat(*total)))
        return m
