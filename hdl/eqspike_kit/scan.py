"""EqSpike part: the output scan — the output layer's states and their argmax (docs/eqspike.md, "RTL
architecture", SCAN; twin piece: ``SampleRecord.pred`` = the lowest index of the largest output state, the
free phase's last states ``phases[0].s[-1]`` of :meth:`golden.eqspike.twin.EqSpikeTwin.infer`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from .common import check_spec, lanes, ubits


class OutputScan(wiring.Component):
    """The output layer's states, one word per ``valid`` cycle, and the running argmax.

    Contract: ``clear`` resets the maximum (``pred`` 0, best state 0). In a cycle with ``valid`` the word
    ``s`` (P states of layer L) of index ``word`` is taken: its neurons' states into ``states`` and the
    maximum updated, lanes in order, a larger state only replacing it (ties keep the lower index). After the
    output layer's words, ``pred`` is the argmax and ``states`` the layer's states. Words may come in any
    order; the argmax is that of the scan order (the core scans word 0 … tiles(L) − 1).

    Latency: ``pred`` and ``states`` 1 cycle after the word.
    """

    def __init__(self, spec: EqSpikeSpec):
        check_spec(spec)
        self.spec = spec
        L, P, SB = spec.n_layers, spec.lanes, spec.state_bits
        super().__init__({
            "clear": In(1), "valid": In(1), "word": In(range(max(spec.tiles(k) for k in range(L + 1)) + 1)),
            "s": In(P * SB), "pred": Out(ubits(spec.layers[-1] - 1)),
            "states": Out(data.ArrayLayout(SB, spec.layers[L])),
        })

    def elaborate(self, platform):
        s, m = self.spec, Module()
        L, P, SB, n = s.n_layers, s.lanes, s.state_bits, s.layers[-1]
        best, best_i = Signal(SB), self.pred
        with m.If(self.clear):
            m.d.sync += [best.eq(0), best_i.eq(0)]
        # The running maximum over a word's lanes is a chain of named signals: as nested expressions each
        # step's maximum would be copied into both the next comparison and the next Mux, 2^P copies in the
        # Verilog (Verilator evaluates all of them every cycle).
        st = lanes(self.s, SB, False, P)
        scan_next = []
        for w in range(s.tiles(L)):
            cb, ci = best, best_i
            for i in range(min(P, n - w * P)):
                better = Signal(name=f"scan{w}_better{i}")
                ncb, nci = Signal.like(best, name=f"scan{w}_best{i}"), Signal.like(best_i, name=f"scan{w}_best_i{i}")
                m.d.comb += [better.eq(st[i] > cb), ncb.eq(Mux(better, st[i], cb)), nci.eq(Mux(better, w * P + i, ci))]
                cb, ci = ncb, nci
            scan_next.append((cb, ci))
        with m.If(self.valid):
            with m.Switch(self.word):
                for w in range(s.tiles(L)):
                    with m.Case(w):
                        for i in range(min(P, n - w * P)):
                            m.d.sync += self.states[w * P + i].eq(st[i])
                        m.d.sync += [best.eq(scan_next[w][0]), best_i.eq(scan_next[w][1])]
        return m
