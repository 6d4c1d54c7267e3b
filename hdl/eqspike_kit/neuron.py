"""EqSpike part: the state update of one word of a layer (docs/eqspike.md, "RTL architecture"; twin piece:
step 2 of :meth:`golden.eqspike.twin.EqSpikeTwin._step`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import PRNG_WIDTH, EqSpikeSpec

from ..fixed import saturate
from .common import check_spec, const_mul, lanes, named, one_net, round_shift, ubits


class NeuronUpdate(wiring.Component):
    """The new states of one word (P neurons) of layer ``k`` (1 … L).

    Contract: ``acc`` is the word's P accumulators (signed ``acc_bits(k)``), ``s`` the states (unsigned
    ``state_bits``), ``b`` the biases (signed ``bias_bits``), ``rnd`` (stochastic ``state_rounding`` only) P
    PRNG words whose low bits round. ``s_next = sat(s + round(acc + b·2^bs − s·2^ls [+ σ·(y − s)·2^ns],
    state_shift(k), state_rounding), 0, state_one)`` with bs, ls, ns the spec's bias, leak and nudge shifts.
    The nudge term exists in the output layer of a training core only: ``nudged`` adds it, ``neg`` makes σ −1,
    y = state_one for the neuron ``word·P + i == label``, else 0.

    Latency: combinational (0 cycles).
    """

    def __init__(self, spec: EqSpikeSpec, k: int):
        check_spec(spec, k)
        self.spec, self.k = spec, k
        self.nudge = spec.training and k == spec.n_layers
        P = spec.lanes
        members = {"acc": In(P * spec.acc_bits(k)), "s": In(P * spec.state_bits), "b": In(P * spec.bias_bits),
                   "s_next": Out(P * spec.state_bits)}
        if spec.state_rounding == "stochastic":
            members["rnd"] = In(P * PRNG_WIDTH)
        if self.nudge:
            members |= {"word": In(ubits(spec.tiles(k))), "label": In(ubits(spec.layers[-1] - 1)),
                        "nudged": In(1), "neg": In(1)}
        super().__init__(members)

    def elaborate(self, platform):
        s, k = self.spec, self.k
        P, SB, ONE = s.lanes, s.state_bits, s.state_one
        m = Module()
        acc = lanes(self.acc, s.acc_bits(k), True, P)
        st = lanes(self.s, SB, False, P)
        bias = lanes(self.b, s.bias_bits, True, P)
        new = []
        for i in range(P):
            tot = acc[i] + (bias[i] << s.bias_shift(k)) - (st[i] << s.leak_shift(k))
            if self.nudge:
                y = Mux((const_mul(self.word, P) + i) == self.label, ONE, 0)
                nud = named(m, (y - st[i]) << s.nudge_shift, f"nudge{i}")
                tot = tot + Mux(self.nudged, Mux(self.neg, -nud, nud), 0)
            tot = named(m, tot, f"total{i}")
            rnd = self.rnd[i * PRNG_WIDTH:(i + 1) * PRNG_WIDTH] if s.state_rounding == "stochastic" else None
            x = named(m, st[i] + round_shift(tot, s.state_shift(k), s.state_rounding, rnd), f"sum{i}")
            new.append(named(m, saturate(x, 0, ONE, SB), f"new{i}"))
        m.d.comb += self.s_next.eq(one_net(Cat(*new)))
        return m
