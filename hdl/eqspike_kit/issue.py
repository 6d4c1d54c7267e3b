"""EqSpike part: the event engine's row issue — each spike event's weight-row words, one per cycle
(docs/eqspike.md, "RTL architecture", EVT/WUPD and "Cycle model": the roofline of one weight word per cycle
per event; twin pieces :meth:`spec.eqspike.EqSpikeSpec.fan_out`, the word counts of
``words_read`` in tests/test_eqspike_core.py)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from .common import check_spec, const_mul


class EventIssue(wiring.Component):
    """One event at a time: the words of its bottom-up row (``wup{l}``, into layer l + 1; l < L), then of its
    top-down row (``wdn{l-1}``, into layer l − 1; l ≥ 2), one word per cycle.

    Contract: while ``run``, ``pop`` asks the event queue for the next event when none is active or the
    current one issues its last word in this cycle; the event (``take``, ``lay``, ``j``, ``jw``, ``jl``,
    ``dj``) is taken in that cycle (combinationally from the queue). ``stop`` (a pass's end) drops it.
    ``issue`` marks a cycle that issues word ``k`` of the active event's row (``lay``, ``dn``: the top-down
    row): ``addr`` is the row word's address in its memory (row j, ``j·tiles(target) + k``). The next cycle
    is the word's stage 1: accumulation (``e1_v``, target ``e1_tgt``, ``e1_dn``, ``e1_k``), or with
    ``upd_mode`` a weight update (``u1_v`` with the event's ``u1_*`` fields, ``u1_addr`` the word's address,
    ``u1_n`` its neurons); a word of a connection with a transposed copy then holds the next issue for
    ``u1_n`` cycles (its scatter). ``busy``: an update word or its hold is in flight.

    Latency: an event's first word issues the cycle after it is taken; the event's words back to back, the
    next event's first word right after the last (no gap), so a pass takes one cycle per word + 1.
    """

    def __init__(self, spec: EqSpikeSpec):
        check_spec(spec)
        self.spec = spec
        L, P, N, DB = spec.n_layers, spec.lanes, spec.layers, spec.trace_frac + 2
        T = max(spec.tiles(k) for k in range(L + 1))
        depth = max([N[l] * spec.tiles(l + 1) for l in range(L)] + [N[l + 1] * spec.tiles(l) for l in range(1, L)])
        ev = {"lay": Out(range(L + 1)), "jw": Out(range(T + 1)), "jl": Out(range(P)), "dj": Out(signed(DB)),
              "k": Out(range(T + 1)), "dn": Out(1)}
        super().__init__({
            "run": In(1), "upd_mode": In(1), "stop": In(1), "pop": Out(1), "take": In(1), "ev_lay": In(range(L + 1)),
            "ev_j": In(range(max(N) + 1)), "ev_jw": In(range(T + 1)), "ev_jl": In(range(P)), "ev_dj": In(signed(DB)),
            "issue": Out(1), "addr": Out(range(depth + 1)), **ev, "e1_v": Out(1), "e1_dn": Out(1),
            "e1_k": Out(range(T + 1)), "e1_tgt": Out(range(L + 2)), "u1_v": Out(1),
            **{f"u1_{k}": v for k, v in ev.items()}, "u1_addr": Out(range(depth + 1)), "u1_n": Out(range(P + 1)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        s, m = self.spec, Module()
        L, P, N = s.n_layers, s.lanes, list(s.layers)
        T = [s.tiles(k) for k in range(L + 1)]
        act, j, hold = Signal(), Signal.like(self.ev_j), Signal(range(P + 1))
        lay, dn, k = self.lay, self.dn, self.k
        m.d.sync += [self.e1_v.eq(0), self.u1_v.eq(0)]
        with m.If(hold != 0):
            m.d.sync += hold.eq(hold - 1)
        nw = Signal(range(max(T) + 1))  # words of the current event's current target
        more_dn = Signal()  # the current event has a down target after its up target
        scatter = Signal()  # the current target's connection has a second (transposed) copy
        rem_sc = Signal(range(P + 1))  # neurons in the current target's last word

        def rem(layer):
            return N[layer] - (T[layer] - 1) * P
        with m.Switch(lay):
            for l in range(L + 1):
                with m.Case(l):
                    m.d.comb += [nw.eq(Mux(dn, T[l - 1] if l >= 1 else 0, T[l + 1] if l < L else 0)),
                                 more_dn.eq(~dn & int(l >= 2)), scatter.eq(dn | int(l >= 1)),
                                 rem_sc.eq(Mux(dn, rem(l - 1) if l >= 1 else P, rem(l + 1) if l < L else P))]
        issue = Signal()
        m.d.comb += [issue.eq(act & (hold == 0)), self.busy.eq(self.u1_v | (hold != 0))]
        finishing = Signal()
        m.d.comb += finishing.eq(issue & (k == nw - 1) & ~more_dn)
        n_sc = Signal(range(P + 1))  # scatter writes of the issued word (its neurons)
        m.d.comb += n_sc.eq(Mux(k == nw - 1, rem_sc, P))
        with m.If(self.stop):
            m.d.sync += act.eq(0)
        with m.If(self.run):
            m.d.comb += self.issue.eq(issue)
            with m.If(issue):
                for l in range(L):  # bottom-up rows: wup{l}, into layer l + 1
                    with m.If((lay == l) & ~dn):
                        m.d.comb += self.addr.eq(const_mul(j, T[l + 1]) + k)
                for l in range(2, L + 1):  # top-down rows: wdn{l-1}, into layer l - 1
                    with m.If((lay == l) & dn):
                        m.d.comb += self.addr.eq(const_mul(j, T[l - 1]) + k)
                with m.If(self.upd_mode):
                    m.d.sync += [self.u1_v.eq(1), self.u1_dn.eq(dn), self.u1_k.eq(k), self.u1_lay.eq(lay),
                                 self.u1_jw.eq(self.jw), self.u1_jl.eq(self.jl), self.u1_dj.eq(self.dj),
                                 self.u1_addr.eq(self.addr), self.u1_n.eq(n_sc)]
                    with m.If(scatter):
                        m.d.sync += hold.eq(n_sc)
                with m.Else():
                    m.d.sync += [self.e1_v.eq(1), self.e1_dn.eq(dn), self.e1_k.eq(k),
                                 self.e1_tgt.eq(Mux(dn, lay - 1, lay + 1))]
                with m.If(k == nw - 1):
                    with m.If(more_dn):
                        m.d.sync += [dn.eq(1), k.eq(0)]
                with m.Else():
                    m.d.sync += k.eq(k + 1)
            with m.If(~act | finishing):
                m.d.comb += self.pop.eq(1)
                m.d.sync += [act.eq(self.take), lay.eq(self.ev_lay), j.eq(self.ev_j), dn.eq(self.ev_lay == L),
                             k.eq(0), self.jw.eq(self.ev_jw), self.jl.eq(self.ev_jl)]
                if s.training:
                    m.d.sync += self.dj.eq(self.ev_dj)
        return m
