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

    Latency: operands 1 cycle, the rest 2 + ``late_stages`` cycles (the core's product stages: they stay
    beside the products); one op per cycle, no back-pressure.

    Parameters
    ----------
    spec : EPCoreSpec. op_layout : the core's micro-op StructLayout. kinds : dict name → kind value
    (``reduce``, ``c1``, ``bcast``, ``upw``, ``dpass``, ``upb``). late_stages : int ≥ 0 (default 0) — more
    registers on the values that ride along beside the products.

    Members
    -------
    op : In(op_layout). w{l}, nz, neg, cells, x, s{k}, p{k}, d, b : In (as the core has them).
    left : Out(P × signed(left_bits)). right : Out(P × signed(right_bits)). bias, part, nstate, old, cword : Out.
    """

    def __init__(self, spec: EPCoreSpec, op_layout: data.StructLayout, kinds: dict[str, int], *, late_stages: int = 0):
        if not isinstance(late_stages, int) or isinstance(late_stages, bool) or late_stages < 0:
            raise ValueError(f"late_stages must be an integer >= 0, not {late_stages!r}")
        self.late_stages = late_stages
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
        # weights, or a post state / difference; pre lanes or a broadcast state, signed
        self.left_bits, self.right_bits = s.lane_operand_bits
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

        def late(v, n, name):
            """v through n − 1 + late_stages registers (the last register is the caller's)."""
            for i in range(n - 1 + self.late_stages):
                r = Signal.like(v, name=f"{name}{i + 2}")
                m.d.sync += r.eq(v)
                v = r
            return v

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
            m.d.sync += self.old.eq(late(uold1, 2, "uold"))
        if tt:  # … and a ternary training core's stored cells
            m.d.sync += self.cword.eq(late(self.cells, 2, "cword"))

        # state words at S1, zeroed for the first step of the free phase: the right operand's zeroing is one
        # control bit (from the op's flip-flops, beside the data) applied last, not a multiplexer in front of
        # the layer and lane selects
        sraw = [None] + [getattr(self, f"s{k}") for k in range(1, L + 1)]
        sdata = [None] + [Mux(c1.zero, 0, sraw[k]) for k in range(1, L + 1)]

        def layer_word(kval, words):
            """Select, by a Value layer index, one of the layers' state words."""
            v = Signal(P * SB, name="lsel")
            with m.Switch(kval):
                for k in range(1, L + 1):
                    with m.Case(k):
                        m.d.comb += v.eq(words[k])
            return v

        pre_layer = Signal(range(L + 1))  # layer whose tile is the presynaptic operand
        m.d.comb += pre_layer.eq(c1.conn)
        post_layer = Signal(range(L + 2))
        m.d.comb += post_layer.eq(c1.conn + 1)
        pre_word, post_word = layer_word(pre_layer, sraw), layer_word(post_layer, sraw)  # P × SB, not zeroed
        post_scalar = Signal(SB)
        m.d.comb += post_scalar.eq(post_word.word_select(c1.lane, SB))
        # zero the right operand: a state lane or scalar (every kind but a row product whose pre tile is x)
        row_kind = (k1 == K["reduce"]) | (k1 == K["c1"]) | (k1 == K["upw"])
        zr = Signal(name="zero_right")
        m.d.comb += zr.eq(c1.zero & ~(row_kind & (c1.conn == 0)))
        left, right = self.left, self.right
        r_kinds = [K[n] for n in ("reduce", "c1", "bcast", "dpass", "upb")] + ([K["upw"]] if s.training else [])
        for i in range(P):
            pre_i = Mux(c1.conn == 0, self.x[i * IB:(i + 1) * IB], pre_word[i * SB:(i + 1) * SB])
            r_i = Signal(signed(self.right_bits), name=f"r{i}")
            with m.Switch(k1):
                with m.Case(K["reduce"], K["c1"]):
                    m.d.comb += r_i.eq(pre_i)
                    m.d.sync += left[i].eq(wl[i])
                with m.Case(K["bcast"]):
                    m.d.comb += r_i.eq(post_scalar)
                    m.d.sync += left[i].eq(wl[i])
                with m.Case(K["upw"]):
                    if s.training:
                        dl = _lane_sel(dq, c1.lane, SB + 1, P)
                        m.d.comb += r_i.eq(pre_i)
                        m.d.sync += left[i].eq(Mux(c1.conn == 0, dl, Mux(c1.zero, 0, post_scalar)))
                with m.Case(K["dpass"], K["upb"]):
                    # no product: 1 × state lane (layer conn+1 for biases, layer 1 for dpass)
                    m.d.comb += r_i.eq(post_word[i * SB:(i + 1) * SB])
                    m.d.sync += left[i].eq(1)
            with m.If(k1.matches(*r_kinds)):  # (other kinds: right holds, as left does)
                m.d.sync += right[i].eq(Mux(zr, 0, r_i))
        # reduce extras (row end): bias of the row's neuron, middle-layer partial, top-layer state; two
        # registers so that they sit beside the products
        bias1, part1, nstate1 = Signal.like(self.bias), Signal.like(self.part), Signal.like(self.nstate)
        m.d.comb += bias1.eq(_lane_sel(bq, c1.lane, s.bias_bits, P) if s.training else bq)
        with m.Switch(c1.layer):
            for k in range(2, L):
                with m.Case(k):
                    m.d.comb += part1.eq(_lane_sel(getattr(self, f"p{k}"), c1.lane, s.acc_bits(k), P))
        m.d.comb += nstate1.eq(sdata[L].word_select(c1.lane, SB))
        m.d.sync += [self.bias.eq(late(bias1, 2, "bias")), self.part.eq(late(part1, 2, "part")),
                     self.nstate.eq(late(nstate1, 2, "nstate"))]
        return m
