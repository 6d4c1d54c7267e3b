"""Kit part: the EP core's operand select (docs/ep-core.md, "Components"; twin piece
:func:`golden.ep_core.lanes.lane_operands`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import EPCoreSpec


def _lane(word, i, bits):
    return word[i * bits:(i + 1) * bits].as_signed()


def _lane_sel(word, idx, bits, count):
    """Element ``idx`` (a Value) of a ``count``-element word, signed."""
    return (word.word_select(idx, bits) if count > 1 else word[:bits]).as_signed()


class OperandSelect(wiring.Component):
    """S1 of the core's pipeline: the memories' words of a micro-op → the P lanes' operands and the
    values that ride along to the products' stage.

    Contract (twin piece: :func:`golden.ep_core.lanes.lane_operands`), for the micro-op ``op`` (``op_layout``:
    ``kind``, ``conn``, ``layer``, ``lane``, ``zero``) and the words read for it (``w{l}`` connection l's
    weight word, or a ternary core's ``nz``/``neg`` bits; ``x`` the input tile; ``s{k}`` layer k's
    state word, read as 0 when ``zero``; ``p{k}`` a middle layer's partial sums; ``d`` the d word;
    ``b`` the bias word — one bias, already selected, on an inference core):

    * ``left[i]``, ``right[i]`` (1 cycle later): reduce / c1 — (w_i, pre_i), broadcast — (w_i, post
      scalar), weight update — (post scalar, or lane ``lane`` of d for connection 0; pre_i), d pass /
      bias update — (1, post_i). pre_i is lane i of ``x`` (``conn`` 0) or of layer ``conn``'s state,
      post of layer ``conn + 1``'s (the scalar: its lane ``lane``); w_i is the connection's weight,
      sign-extended (ternary: −1, 0, +1 from ``nz``/``neg``).
    * ``bias``, ``part``, ``nstate`` (2 cycles later, beside the products): bias ``lane`` of ``b``,
      lane ``lane`` of layer ``layer``'s partial sums, lane ``lane`` of the top layer's state.
    * ``old`` (training, 2 cycles later): the stored word the update modifies, sign-extended (the
      biases for a bias update, else the connection's weights or a ternary core's latent weights),
      ``cword`` (ternary training) the word's cells.

    Latency: operands 1 cycle, the rest 2 cycles; one op per cycle, no back-pressure.

    Parameters
    ----------
    spec : EPCoreSpec. op_layout : the core's micro-op StructLayout. kinds : dict name → kind value
    (``reduce``, ``c1``, ``bcast``, ``upw``, ``dpass``, ``upb``).

    Members
    -------
    op : In(op_layout). w{l}, nz, neg, cells, x, s{k}, p{k}, d, b : In (as the core has them).
    left : Out(P × signed(left_bits)). right : Out(P × signed(right_bits)). bias, part, nstate, old, cword : Out.
    """

    def __init__(self, spec: EPCoreSpec, op_layout: data.StructLayout, kinds: dict[str, int]):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        need = {"kind", "conn", "layer", "lane", "zero"}
        if not need <= set(op_layout.members):
            raise ValueError(f"op_layout must have the fields {sorted(need)}, not {sorted(op_layout.members)}")
        if set(kinds) != {"reduce", "c1", "bcast", "upw", "dpass", "upb"}:
            raise ValueError(f"kinds must name reduce, c1, bcast, upw, dpass and upb, not {sorted(kinds)}")
        s, L, P, SB = spec, spec.n_layers, spec.lanes, spec.state_bits
        self.spec, self.kinds = spec, dict(kinds)
        self.ternary, self.tt = s.weight_kind == "ternary", s.ternary_training
        self.wbits = list(s.latent_bits) if self.tt else list(s.weight_bits)
        self.left_bits = max(max(s.weight_bits), SB + 2)  # weights, or a post state / difference
        self.right_bits = max(s.input_bits, SB) + 1  # pre lanes or a broadcast state, signed
        self.old_bits = max(max(self.wbits), s.bias_bits)  # the stored word an update modifies, sign-extended
        members = {"op": In(op_layout), "x": In(P * s.input_bits),
                   "b": In(P * s.bias_bits) if s.training else In(signed(s.bias_bits)),
                   "left": Out(data.ArrayLayout(signed(self.left_bits), P)),
                   "right": Out(data.ArrayLayout(signed(self.right_bits), P)),
                   "bias": Out(signed(s.bias_bits)), "part": Out(signed(s.acc_bits_max)), "nstate": Out(SB)}
        if self.ternary:
            members.update({"nz": In(P), "neg": In(P)})
        if not self.ternary or self.tt:
            members.update({f"w{l}": In(P * self.wbits[l]) for l in range(L)})
        members.update({f"s{k}": In(P * SB) for k in range(1, L + 1)})
        members.update({f"p{k}": In(P * s.acc_bits(k)) for k in range(2, L)})
        if s.training:
            members.update({"d": In(P * (SB + 1)), "old": Out(data.ArrayLayout(signed(self.old_bits), P))})
        if self.tt:
            members.update({"cells": In(2 * P), "cword": Out(2 * P)})
        super().__init__(members)

    def elaborate(self, platform):  # noqa: C901  (one multiplexer per operand)
        m = Module()
        s, L, P, SB, IB = self.spec, self.spec.n_layers, self.spec.lanes, self.spec.state_bits, self.spec.input_bits
        K = self.kinds
        c1, ternary, tt = self.op, self.ternary, self.tt
        k1 = c1.kind
        WMAX, UB = max(s.weight_bits), max(self.wbits)
        wq_w = [getattr(self, f"w{l}") for l in range(L)] if not ternary or tt else []
        bq, dq = self.b, getattr(self, "d", None)

        def wlane(i):
            """Lane i of the current connection's weight word, sign-extended to WMAX."""
            v = Signal(signed(WMAX), name=f"wl{i}")
            if ternary:  # −1, 0, +1 from the PCSA's (nonzero, negative) bits: bit 0 = nonzero, sign = negative
                m.d.comb += v.eq(Mux(self.nz[i], Mux(self.neg[i], -1, 1), 0))
                return v
            with m.Switch(c1.conn):
                for l in range(L):
                    with m.Case(l):
                        m.d.comb += v.eq(_lane(wq_w[l], i, s.weight_bits[l]))
            return v

        wl = [wlane(i) for i in range(P)]
        if s.training:  # the update path carries the stored word (weights, latent weights or biases)…
            uold1 = Signal(data.ArrayLayout(signed(self.old_bits), P))
            for i in range(P):
                wold = wl[i]
                if tt:
                    wold = Signal(signed(UB), name=f"vl{i}")
                    with m.Switch(c1.conn):
                        for l in range(L):
                            with m.Case(l):
                                m.d.comb += wold.eq(_lane(wq_w[l], i, self.wbits[l]))
                m.d.comb += uold1[i].eq(Mux(k1 == K["upb"], _lane(bq, i, s.bias_bits), wold))
            uold2 = Signal.like(uold1)
            m.d.sync += [uold2.eq(uold1), self.old.eq(uold2)]
        if tt:  # … and a ternary training core's stored cells
            cword2 = Signal(2 * P)
            m.d.sync += [cword2.eq(self.cells), self.cword.eq(cword2)]

        # state words at S1 (zeroed for the first step of the free phase)
        sdata = [None] + [Mux(c1.zero, 0, getattr(self, f"s{k}")) for k in range(1, L + 1)]

        def layer_word(kval):
            """Select, by a Value layer index, one of the layers' state words."""
            v = Signal(P * SB, name="lsel")
            with m.Switch(kval):
                for k in range(1, L + 1):
                    with m.Case(k):
                        m.d.comb += v.eq(sdata[k])
            return v

        pre_layer = Signal(range(L + 1))  # layer whose tile is the presynaptic operand
        m.d.comb += pre_layer.eq(c1.conn)
        post_layer = Signal(range(L + 2))
        m.d.comb += post_layer.eq(c1.conn + 1)
        pre_word, post_word = layer_word(pre_layer), layer_word(post_layer)  # P × SB
        post_scalar = Signal(SB)
        m.d.comb += post_scalar.eq(post_word.word_select(c1.lane, SB))
        left, right = self.left, self.right
        for i in range(P):
            pre_i = Mux(c1.conn == 0, self.x[i * IB:(i + 1) * IB], pre_word[i * SB:(i + 1) * SB])
            with m.Switch(k1):
                with m.Case(K["reduce"], K["c1"]):
                    m.d.sync += [left[i].eq(wl[i]), right[i].eq(pre_i)]
                with m.Case(K["bcast"]):
                    m.d.sync += [left[i].eq(wl[i]), right[i].eq(post_scalar)]
                with m.Case(K["upw"]):
                    if s.training:
                        dl = _lane_sel(dq, c1.lane, SB + 1, P)
                        m.d.sync += [left[i].eq(Mux(c1.conn == 0, dl, post_scalar)), right[i].eq(pre_i)]
                with m.Case(K["dpass"], K["upb"]):
                    # no product: 1 × state lane (layer conn+1 for biases, layer 1 for dpass)
                    m.d.sync += [left[i].eq(1), right[i].eq(post_word[i * SB:(i + 1) * SB])]
        # reduce extras (row end): bias of the row's neuron, middle-layer partial, top-layer state; two
        # registers so that they sit beside the products
        bias1, part1, nstate1 = Signal.like(self.bias), Signal.like(self.part), Signal.like(self.nstate)
        m.d.comb += bias1.eq(_lane_sel(bq, c1.lane, s.bias_bits, P) if s.training else bq)
        with m.Switch(c1.layer):
            for k in range(2, L):
                with m.Case(k):
                    m.d.comb += part1.eq(_lane_sel(getattr(self, f"p{k}"), c1.lane, s.acc_bits(k), P))
        m.d.comb += nstate1.eq(sdata[L].word_select(c1.lane, SB))
        bias2, part2, nstate2 = Signal.like(bias1), Signal.like(part1), Signal.like(nstate1)
        m.d.sync += [bias2.eq(bias1), part2.eq(part1), nstate2.eq(nstate1),
                     self.bias.eq(bias2), self.part.eq(part2), self.nstate.eq(nstate2)]
        return m
