"""EqSpike part: the trace filters of one word and the step's Δŝ (docs/eqspike.md, "RTL architecture"; twin
piece: step 3 of :meth:`golden.eqspike.twin.EqSpikeTwin._step`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from ..fixed import saturate
from .common import check_spec, lanes, named, one_net, round_shift


class TraceFilter(wiring.Component):
    """The ``trace_stages`` cascaded trace filters of one word (P neurons) of a training core.

    Contract: ``mask`` is the word's P spikes, ``old{st}`` stage st's P traces (unsigned ``trace_frac + 1``
    bits, in [0, 2^trace_frac]). Stage 0 filters the spike (source ``e·2^trace_frac``), stage st > 0 stage
    st − 1's new value: ``new = sat(old + round(src − old, trace_shift, trace_rounding), 0, 2^trace_frac)``
    into ``new{st}``. ``d`` is Δŝ = the last stage's new − old value (P lanes, signed ``trace_frac + 2``).

    Latency: combinational (0 cycles).
    """

    def __init__(self, spec: EqSpikeSpec):
        check_spec(spec)
        self.spec = spec
        P, TRB, DB = spec.lanes, spec.trace_frac + 1, spec.trace_frac + 2
        members = {"mask": In(P), "d": Out(P * DB)}
        for st in range(spec.trace_stages):
            members |= {f"old{st}": In(P * TRB), f"new{st}": Out(P * TRB)}
        super().__init__(members)
        self.d_shape = signed(DB)

    def elaborate(self, platform):
        s = self.spec
        P, TF, TRB, DB = s.lanes, s.trace_frac, s.trace_frac + 1, s.trace_frac + 2
        m = Module()
        olds = [lanes(getattr(self, f"old{st}"), TRB, False, P) for st in range(s.trace_stages)]
        srcs = [self.mask[i] << TF for i in range(P)]
        for st in range(s.trace_stages):
            new = []
            for i in range(P):
                x = named(m, olds[st][i] + round_shift(srcs[i] - olds[st][i], s.trace_shift, s.trace_rounding),
                          f"sum{st}_{i}")
                new.append(named(m, saturate(x, 0, 1 << TF, TRB), f"new{st}_{i}"))
            m.d.comb += getattr(self, f"new{st}").eq(one_net(Cat(*new)))
            srcs = new
        m.d.comb += self.d.eq(one_net(Cat(*[(srcs[i] - olds[-1][i])[:DB] for i in range(P)])))
        return m
