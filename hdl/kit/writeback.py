"""Kit part: the state write-back (docs/ep-core.md, "Components"; twin pieces: the state, c1 and
partial-sum lists of :class:`golden.ep_core.EPCoreTwin`, c1 saturated to ``EPCoreSpec.c1_range``)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from spec.ep_core import EPCoreSpec

from ..fixed import saturate
from . import bank_base


class StateWriteback(wiring.Component):
    """The column and row paths' results → the write ports of the core memories (:class:`CoreMemories`).

    Contract (combinational; every output 0 unless a write happens):

    * Column path (``col_valid``): layer 1 writes the P states ``col_state`` to ``s1`` word
      ``col_bank·tiles(1) + col_word`` with the lane enables ``col_mask``; a middle layer k writes the P
      sums ``col_acc`` (each truncated to ``acc_bits(k)``) to the partial-sum memory ``p{k}`` word ``col_word``.
    * Row path (``row_valid``, micro-op ``row_op``): kind ``k_c1`` writes ``row_value`` saturated to
      ``spec.c1_range()`` to lane ``row_op.lane`` of ``c1`` word ``row_op.word``; kind ``k_reduce`` of
      layer k ≥ 2 writes ``row_state`` to lane ``row_op.lane`` of ``s{k}`` word
      ``row_op.wr_bank·tiles(k) + row_op.word``.

    Latency: 0 (combinational); a memory takes the write at the end of the cycle. No back-pressure.

    Parameters
    ----------
    spec : EPCoreSpec. op_layout : the core's micro-op (``kind``, ``layer``, ``lane``, ``word``,
    ``wr_bank``). k_c1, k_reduce : the micro-op kinds.

    Members
    -------
    col_valid : In(1). col_layer, col_word, col_bank : In. col_mask : In(P). col_state : In(P × SB bits).
    col_acc : In(P × acc_bits_max bits). row_valid : In(1). row_op : In(op_layout's bits). row_value :
    In(signed(acc_bits_max)). row_state : In(SB). Out: ``{name}_waddr``, ``{name}_wen``, ``{name}_wdata``
    for every name in ``names`` (s1 … sL, p2 … p(L−1), c1), shaped as the core memories' inputs.
    """

    def __init__(self, spec: EPCoreSpec, op_layout: data.StructLayout, k_c1: int, k_reduce: int):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        s, L, P = spec, spec.n_layers, spec.lanes
        self.spec, self.k_c1, self.k_reduce = spec, k_c1, k_reduce
        T = [s.tiles(k) for k in range(L + 1)]
        mems = {"c1": (T[1], P, P * s.c1_bits), **{f"s{k}": (4 * T[k], P, P * s.state_bits) for k in range(1, L + 1)},
                **{f"p{k}": (T[k], 1, P * s.acc_bits(k)) for k in range(2, L)}}
        self.names = list(mems)
        self.op_layout = op_layout
        # plain ports for the words and the micro-op (a View port would name every field again in the netlist)
        members = {"col_valid": In(1), "col_layer": In(op_layout.members["layer"]),
                   "col_word": In(op_layout.members["word"]), "col_bank": In(2), "col_mask": In(P),
                   "col_state": In(P * s.state_bits), "col_acc": In(P * s.acc_bits_max), "row_valid": In(1),
                   "row_op": In(op_layout.size), "row_value": In(signed(s.acc_bits_max)), "row_state": In(s.state_bits)}
        for name, (depth, en, width) in mems.items():
            members |= {f"{name}_waddr": Out(ceil_log2(depth)), f"{name}_wen": Out(en), f"{name}_wdata": Out(width)}
        super().__init__(members)

    def elaborate(self, platform):
        s, m = self.spec, Module()
        L, P, op, A = s.n_layers, s.lanes, data.View(self.op_layout, self.row_op), s.acc_bits_max
        T = [s.tiles(k) for k in range(L + 1)]
        with m.If(self.col_valid & (self.col_layer == 1)):
            m.d.comb += [self.s1_waddr.eq(bank_base(self.col_bank, T[1]) + self.col_word),
                         self.s1_wen.eq(self.col_mask), self.s1_wdata.eq(self.col_state)]
        for k in range(2, L):
            with m.If(self.col_valid & (self.col_layer == k)):
                m.d.comb += [getattr(self, f"p{k}_waddr").eq(self.col_word), getattr(self, f"p{k}_wen").eq(1)]
                for i in range(P):
                    m.d.comb += getattr(self, f"p{k}_wdata")[i * s.acc_bits(k):(i + 1) * s.acc_bits(k)].eq(
                        self.col_acc[i * A:(i + 1) * A])
        # write: c1 (no activation; saturated once, then replicated) or the state lane of layer k
        c1 = Signal(s.c1_bits)
        m.d.comb += c1.eq(saturate(self.row_value, *s.c1_range(), s.c1_bits))
        with m.If(self.row_valid & (op.kind == self.k_c1)):
            m.d.comb += [self.c1_waddr.eq(op.word), self.c1_wen.eq(1 << op.lane), self.c1_wdata.eq(c1.replicate(P))]
        for k in range(2, L + 1):
            with m.If(self.row_valid & (op.kind == self.k_reduce) & (op.layer == k)):
                m.d.comb += [getattr(self, f"s{k}_waddr").eq(bank_base(op.wr_bank, T[k]) + op.word),
                             getattr(self, f"s{k}_wen").eq(1 << op.lane),
                             getattr(self, f"s{k}_wdata").eq(self.row_state.replicate(P))]
        return m
