"""EqSpike part: the spike-driven update of one word of weights or biases (docs/eqspike.md, "RTL
architecture"; twin piece: the ``online`` fixed-weight branch of
:meth:`golden.eqspike.twin.EqSpikeTwin._apply_update`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..fixed import saturate
from .common import lanes, named, one_net, round_shift

SHIFT_BITS = 7  # a run-time update shift: an η register (6 bits) + the spec's offset, 0 … 127


class SpikeUpdate(wiring.Component):
    """``new = sat(w + round(σ·D, shift), lo, hi)`` for the P elements of one memory word.

    Contract: ``w`` is the word's P elements (signed ``bits``), ``d`` P values of Δŝ (signed ``d_bits``),
    ``neg`` makes σ = −1 (else +1), ``shift`` is the run-time rounding shift (unsigned, ``rounding``
    ``floor`` or ``half_up``). ``D = d_i``, or, with ``pre_term`` (a bottom-up row of a presynaptic spike),
    ``D = d_i + e_i·dj`` (``e``: the post word's spike mask, ``dj``: the presynaptic neuron's Δŝ).
    ``new`` is the P results (signed ``bits``, in [lo, hi]).

    Latency: combinational (0 cycles).
    """

    def __init__(self, lanes_: int, bits: int, d_bits: int, lo: int, hi: int, rounding: str, *,
                 pre_term: bool = False):
        for name, v in (("lanes_", lanes_), ("bits", bits), ("d_bits", d_bits)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, not {v!r}")
        if not lo <= 0 <= hi:
            raise ValueError(f"the range [{lo}, {hi}] must hold 0")
        self.P, self.bits, self.d_bits, self.lo, self.hi, self.rounding = lanes_, bits, d_bits, lo, hi, rounding
        self.pre_term = bool(pre_term)
        members = {"w": In(lanes_ * bits), "d": In(lanes_ * d_bits), "neg": In(1), "shift": In(SHIFT_BITS),
                   "new": Out(lanes_ * bits)}
        if self.pre_term:
            members |= {"e": In(lanes_), "dj": In(d_bits)}
        super().__init__(members)

    def elaborate(self, platform):
        P = self.P
        m = Module()
        w = lanes(self.w, self.bits, True, P)
        dd = lanes(self.d, self.d_bits, True, P)
        new = []
        for i in range(P):
            if self.pre_term:  # (each sum is read four times by the saturation, each Δ twice by the sign select)
                dd[i] = named(m, dd[i] + Mux(self.e[i], self.dj.as_signed(), 0), f"dsum{i}")
            sd = named(m, Mux(self.neg, -dd[i], dd[i]), f"sd{i}")
            x = named(m, w[i] + round_shift(sd, self.shift, self.rounding), f"sum{i}")
            new.append(named(m, saturate(x, self.lo, self.hi, self.bits), f"new{i}"))
        m.d.comb += self.new.eq(one_net(Cat(*new)))
        return m
