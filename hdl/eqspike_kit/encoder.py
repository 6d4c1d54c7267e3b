"""EqSpike part: the P spike encoders of one layer (docs/eqspike.md, "RTL architecture"; twin pieces
:func:`golden.eqspike.twin.sigma_delta`, :func:`golden.eqspike.twin.stochastic_spikes`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import PRNG_WIDTH, EqSpikeSpec

from .common import check_spec, const_mul, lanes, named, one_net, ubits, valid_lane


class Encoders(wiring.Component):
    """The encoders of one word (P neurons) of layer ``layer``.

    Contract: ``v`` holds the word's P values (pixels of ``input_bits`` for layer 0, states of ``state_bits``
    otherwise), ``phi`` their residues (signed ``residue_bits(layer)``), ``rnd`` (stochastic encoder only) P
    PRNG words of 32 bits; ``word`` is the word's index (a padding lane of the layer's last word never spikes).
    Sigma-delta: ``p = φ + v``, spike ``e = p > M/2``, ``phi_next = p − e·M`` (M = ``full_scale(layer)``);
    stochastic: ``e = u·M < v·2^b`` (u the word's top b = ``encoder_bits(layer)`` bits) and the residues stay
    (``phi_next = phi``). ``mask`` is the P spikes (bit i: lane i).

    Latency: combinational (0 cycles).
    """

    def __init__(self, spec: EqSpikeSpec, layer: int):
        check_spec(spec)
        if not 0 <= layer <= spec.n_layers:
            raise ValueError(f"layer must be in 0 … {spec.n_layers}, not {layer}")
        self.spec, self.layer = spec, layer
        P, rb = spec.lanes, spec.residue_bits(layer)
        vb = spec.input_bits if layer == 0 else spec.state_bits
        members = {"v": In(P * vb), "phi": In(P * rb), "word": In(ubits(max(spec.tiles(k) for k in range(
            spec.n_layers + 1)))), "mask": Out(P), "phi_next": Out(P * rb)}
        if spec.encoder == "stochastic":
            members["rnd"] = In(P * PRNG_WIDTH)
        super().__init__(members)

    def elaborate(self, platform):
        s, l = self.spec, self.layer
        P, M, rbits = s.lanes, s.full_scale(l), s.residue_bits(l)
        m = Module()
        v = lanes(self.v, s.input_bits if l == 0 else s.state_bits, False, P)
        phi = lanes(self.phi, rbits, True, P)
        spk, nphi = [], []
        for i in range(P):
            if s.encoder == "stochastic":
                b = s.encoder_bits(l)
                u = self.rnd[i * PRNG_WIDTH:(i + 1) * PRNG_WIDTH][PRNG_WIDTH - b:]
                e = const_mul(u, M) < (v[i] << b)
                nphi.append(phi[i])
            else:
                p2 = named(m, phi[i] + v[i], f"p{i}")
                e = named(m, p2 > (M // 2), f"e{i}")  # (read twice: the spike and the residue)
                nphi.append(Mux(e, p2 - M, p2)[:rbits])
            spk.append(e & valid_lane(self.word, s.layers[l], s.tiles(l), P, i))
        m.d.comb += [self.mask.eq(one_net(Cat(*spk))), self.phi_next.eq(one_net(Cat(*nphi)))]
        return m
