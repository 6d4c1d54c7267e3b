"""EqSpike part: the scatter of a weight-update word into the transposed copy of its connection, one element
per cycle (docs/eqspike.md, "RTL architecture", WUPD; twin piece: the copies of a weight are one array in
:meth:`golden.eqspike.twin.EqSpikeTwin._apply_update`, the two memory layouts :func:`hdl.eqspike.memory_images`)."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from .common import check_spec, const_mul, named


class Scatter(wiring.Component):
    """The P new values of a row word, written one element per cycle into the other copy.

    Contract: ``start`` takes a word: its P new values ``vals`` (signed, the widest weight; a ternary training
    core's: the widest latent weight), ``en`` (the
    lanes to write), ``n`` (its neurons, 1 … P), the word's index ``k`` and direction ``dn``, the layer
    ``lay`` and the event's neuron ``j = jw·P + jl``. From the next cycle, for q = 0 … n − 1, one cycle each:
    ``act`` = 1, ``row`` = k·P + q (the row of the other copy), ``val`` = vals[q], ``we`` = 1 << jl when
    lane q is enabled (else 0); ``dn``, ``lay``, ``jw`` hold the word's. ``busy`` while elements are left.
    A ``start`` while busy is not allowed (the engine holds its issue for n cycles).

    Latency: the first element 1 cycle after ``start``; n cycles per word.
    """

    def __init__(self, spec: EqSpikeSpec):
        check_spec(spec)
        self.spec = spec
        L, P = spec.n_layers, spec.lanes
        T = max(spec.tiles(k) for k in range(L + 1))
        self.vbits = vb = max(spec.latent_bits if spec.ternary_training else spec.weight_bits)
        super().__init__({
            "start": In(1), "vals": In(data.ArrayLayout(signed(vb), P)), "en": In(P),
            "n": In(range(P + 1)), "k_in": In(range(T + 1)), "dn_in": In(1), "lay_in": In(range(L + 1)),
            "jw_in": In(range(T + 1)), "jl_in": In(range(P)),
            "act": Out(1), "busy": Out(1), "row": Out(range(T * P + P)), "val": Out(signed(vb)),
            "we": Out(P), "dn": Out(1), "lay": Out(range(L + 1)), "jw": Out(range(T + 1)),
        })

    def elaborate(self, platform):
        P = self.spec.lanes
        m = Module()
        q, n, k, jl = Signal(range(P)), Signal(range(P + 1)), Signal.like(self.k_in), Signal.like(self.jl_in)
        vals = [Signal(signed(self.vbits), name=f"val{i}") for i in range(P)]
        en = Signal(P)
        with m.If(self.start):
            m.d.sync += [self.act.eq(1), self.dn.eq(self.dn_in), self.lay.eq(self.lay_in), k.eq(self.k_in),
                         self.jw.eq(self.jw_in), jl.eq(self.jl_in), q.eq(0), n.eq(self.n), en.eq(self.en)]
            m.d.sync += [vals[i].eq(self.vals[i]) for i in range(P)]
        with m.If(self.act):
            m.d.sync += q.eq(q + 1)
            with m.If(q == n - 1):
                m.d.sync += self.act.eq(0)
        m.d.comb += [self.busy.eq(self.act), self.row.eq(const_mul(k, P) + q), self.val.eq(Array(vals)[q]),
                     self.we.eq(Mux(named(m, en.bit_select(q, 1), "lane_en"), Const(1, P) << jl, 0))]
        return m
