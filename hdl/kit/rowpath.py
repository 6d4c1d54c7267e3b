"""Kit part: the EP core's row path (docs/ep-core.md, "Components"; twin pieces
:func:`golden.ep_core.lanes.accumulate_row`, :func:`golden.ep_core.activation.activation`,
:func:`golden.ep_core.activation.nudge`, :meth:`golden.ep_core.EPCoreTwin.argmax`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import EPCoreSpec

from .activation import Activation, Nudge
from .lanes import AdderTree, RowAccumulator


class RowPath(wiring.Component):
    """The bottom-up (row) half of the datapath: adder tree, row accumulator, row addend, ρ, argmax.

    Contract (twin pieces: ``accumulate_row``, ``activation``, ``nudge``, ``EPCoreTwin.argmax``):

    * Every cycle takes one micro-op ``op`` (``op_layout``: at least ``valid``, ``kind``, ``layer``,
      ``first``, ``last``, ``j``, ``bsign``, ``argmax``) with its P lane products ``prod``; the adder
      tree sums them (every valid op occupies it: ``occupied``).
    * An op whose ``kind`` is in ``row_kinds`` belongs to a row: ``first`` … ``last`` (one op per
      tile). With the row's last op come its addend's parts: ``bias``, ``part`` (a middle layer's
      partial sum) and ``nstate`` (the top layer's state for the nudge). The addend is
      ``bias << bias_shift(layer)`` + (``layer`` = L ? ``nudge`` : ``part``), the nudge
      ``±((j == label ? 2^SB : 0) − nstate) << nudge_shift(beta_shift)`` by ``bsign`` (1: +β,
      2: −β; training cores only, else 0).
    * At the row's end: ``valid`` for one cycle with ``value`` = Σ_tiles (tile sum <<
      ``bottom_up_shift(layer)``) + addend (``signed(acc_bits_max)``), ``state`` = ρ of it with
      ``layer``'s shift, and ``op_out`` the row's last op. Rows of ops with ``argmax`` set keep the
      first largest ``state`` over ``j`` = 0, 1, …: ``pred`` is its ``j`` from 2 cycles after ``valid`` on.

    Latency: ``valid`` 1 + ⌈log2 P⌉ cycles after the row's last op (the adder tree's levels, then
    the accumulator's register). One op per cycle, no back-pressure.

    Parameters
    ----------
    spec : EPCoreSpec. op_layout : the core's micro-op StructLayout. prod_bits : int — lane product
    width. row_kinds : kinds that accumulate a row. addend_kind : the kind whose addend the formal
    harness checks (``addend_full``, ``nudge.full``).

    Members
    -------
    op : In(op_layout). prod : In(P × signed(prod_bits)). bias, part, nstate, label, beta_shift : In.
    occupied, valid : Out(1). op_out : Out(op_layout). value : Out(signed(acc)). state : Out(SB).
    pred : Out(label_bits). addend_full : Out — the addend before its register; acc_en, acc_layer : Out — a
    row op at the row accumulator's input, and its layer (the formal harness's taps).
    ``tree``, ``racc``, ``nudge`` (training cores): the parts, for the harness's taps.
    """

    def __init__(self, spec: EPCoreSpec, op_layout: data.StructLayout, prod_bits: int, row_kinds: tuple[int, ...],
                 addend_kind: int):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        need = {"valid", "kind", "layer", "first", "last", "j", "bsign", "argmax"}
        if not need <= set(op_layout.members):
            raise ValueError(f"op_layout must have the fields {sorted(need)}, not {sorted(op_layout.members)}")
        s, L = spec, spec.n_layers
        self.spec, self.row_kinds, self.addend_kind = spec, tuple(row_kinds), addend_kind
        acc, sb, beta_bits = s.acc_bits_max, s.state_bits, Shape.cast(range(s.beta_shift_max + 1)).width
        self.b_shift_max = max(s.bias_shift(k) for k in range(1, L + 1))
        self.tree = AdderTree(s.lanes, prod_bits, op_layout.size + acc)
        self.racc = RowAccumulator(acc, len(self.tree.sum), {k: s.bottom_up_shift(k) for k in range(1, L + 1)},
                                   op_layout.size)
        self.nudge = Nudge(sb, s.nudge_shift(0), beta_bits, acc) if s.training else None
        super().__init__({
            "op": In(op_layout), "prod": In(data.ArrayLayout(signed(prod_bits), s.lanes)),
            "bias": In(signed(s.bias_bits)), "part": In(signed(acc)), "nstate": In(sb),
            "label": In(s.label_bits), "beta_shift": In(beta_bits),
            "occupied": Out(1), "valid": Out(1), "op_out": Out(op_layout), "value": Out(signed(acc)),
            "state": Out(sb), "pred": Out(s.label_bits),
            "addend_full": Out(signed(max(s.bias_bits + self.b_shift_max, acc) + 1)),
            "acc_en": Out(1), "acc_layer": Out(op_layout.members["layer"]),
        })

    def elaborate(self, platform):
        m = Module()
        s, L, op = self.spec, self.spec.n_layers, self.op
        acc, sb = s.acc_bits_max, s.state_bits
        # The row-end addend (bias << b_shift, plus the middle layer's partial sum or the top layer's
        # nudge ±(y − s_L) << (acc_frac(L) − SB − β)) is formed beside the first tree level and rides
        # along, so the finish stage adds just two terms.
        b_shift = Signal(range(self.b_shift_max + 1), name="b_shift")
        with m.Switch(op.layer):
            for k in range(1, L + 1):
                with m.Case(k):
                    m.d.comb += b_shift.eq(s.bias_shift(k))
        nudge = Signal(signed(acc), name="nudge")
        if self.nudge is not None:  # nudged phases run only on training cores
            m.submodules.nudge = nu = self.nudge
            m.d.comb += [nu.match.eq(op.j == self.label), nu.state.eq(self.nstate), nu.bsign.eq(op.bsign),
                         nu.beta_shift.eq(self.beta_shift), nudge.eq(nu.nudge)]
        addend = Signal(signed(acc), name="addend")
        m.d.comb += [self.addend_full.eq((self.bias << b_shift) + Mux(op.layer == L, nudge, self.part)),
                     addend.eq(self.addend_full)]
        # adder tree (one register per level); the micro-op and the row addend ride along
        m.submodules.tree = tree = self.tree
        op_t, addend_t = Signal.like(self.op, name="op_t"), Signal.like(addend, name="addend_t")
        m.d.comb += [tree.valid_in.eq(op.valid), tree.side_in.eq(Cat(op, addend)),
                     Cat(op_t, addend_t).eq(tree.side_out), self.occupied.eq(tree.occupied)]
        m.d.comb += [tree.inp[i].eq(self.prod[i]) for i in range(s.lanes)]
        # scalar (row) accumulator: the tiles' sums aligned and added, at the row's end + the addend, registered
        row = 0
        for kd in self.row_kinds:
            row = row | (op_t.kind == kd)
        m.submodules.racc = racc = self.racc
        m.d.comb += [self.acc_en.eq(op_t.valid & row), self.acc_layer.eq(op_t.layer)]
        m.d.comb += [racc.sum.eq(tree.sum), racc.en.eq(self.acc_en), racc.first.eq(op_t.first),
                     racc.last.eq(op_t.last), racc.layer.eq(op_t.layer), racc.addend.eq(addend_t), racc.side.eq(op_t),
                     self.valid.eq(racc.valid), self.value.eq(racc.value), self.op_out.eq(racc.side_out)]
        m.submodules.act = act = Activation({k: s.activation_shift(k) for k in range(1, L + 1)},
                                            s.activation_rounding, acc, sb)
        m.d.comb += [act.pre.eq(racc.value), act.layer.eq(self.op_out.layer), self.state.eq(act.state)]
        # argmax over the output layer during the last free step (ties: lowest index), a cycle after the row's
        # end: ρ's output and the row's j are registered first, so the compare starts from flip-flops
        am_valid, am_j, am_state = Signal(), Signal.like(self.op_out.j, name="am_j"), Signal(sb, name="am_state")
        m.d.sync += [am_valid.eq(self.valid & self.op_out.argmax), am_j.eq(self.op_out.j), am_state.eq(self.state)]
        best = Signal(sb)
        with m.If(am_valid):
            with m.If((am_j == 0) | (am_state > best)):
                m.d.sync += [best.eq(am_state), self.pred.eq(am_j)]
        return m
