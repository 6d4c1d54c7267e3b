"""Kit part: the EP core's column (broadcast) path (docs/ep-core.md, "Components"; twin pieces
:func:`golden.ep_core.lanes.accumulate_lanes`, :func:`golden.ep_core.activation.activation`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import EPCoreSpec

from .activation import Activation
from .lanes import LaneAccumulators


class ColumnPath(wiring.Component):
    """The top-down (column) half of the datapath: P lane accumulators, then ρ of layer 1's lanes.

    Contract (twin pieces: ``accumulate_lanes``, ``activation``):

    * Every cycle takes one micro-op ``op`` (``op_layout``: at least ``valid``, ``kind``, ``conn``,
      ``layer``, ``first``, ``last``, ``word``, ``wr_bank``) with its P lane products ``prod``. An op of
      kind ``kind`` belongs to a column tile: ``first`` … ``last`` (one op per row j of connection
      ``conn``); lane i accumulates ``init_i + Σ_j (prod_i << top_down_shift(conn))``, ``init_i`` being
      lane i of ``c1`` (``spec.c1_bits`` per lane, signed; the c1 word of the tile, given with the
      tile's ``first`` op) for layer 1 and 0 for a middle layer.
    * The cycle after a tile's last op: ``valid`` for one cycle, ``acc`` the P sums (signed
      ``acc_bits_max``), ``state`` their ρ with layer 1's shift, ``layer``/``word``/``bank`` the
      tile's, and ``mask`` its state word's write enables (the padding lanes of layer 1's last tile
      off).

    Latency: 1 cycle after the tile's last op. One op per cycle, no back-pressure.

    Parameters
    ----------
    spec : EPCoreSpec. op_layout : the core's micro-op StructLayout. prod_bits : int — lane product
    width. kind : the broadcast micro-op's kind.

    Members
    -------
    op : In(op_layout). prod : In(P × signed(prod_bits)). c1 : In(P × c1_bits).
    valid : Out(1). acc : Out(P × signed(acc)). state : Out(P × SB). layer, word, bank, mask : Out.
    ``laccs``: the accumulators, for the formal harness's taps (``sum_full``).
    """

    def __init__(self, spec: EPCoreSpec, op_layout: data.StructLayout, prod_bits: int, kind: int):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        need = {"valid", "kind", "conn", "layer", "first", "last", "word", "wr_bank"}
        if not need <= set(op_layout.members):
            raise ValueError(f"op_layout must have the fields {sorted(need)}, not {sorted(op_layout.members)}")
        s, L, P = spec, spec.n_layers, spec.lanes
        self.spec, self.kind = spec, kind
        acc = s.acc_bits_max
        self.laccs = LaneAccumulators(P, acc, prod_bits, max([s.top_down_shift(k) for k in range(1, L)] + [0]))
        super().__init__({
            "op": In(op_layout), "prod": In(data.ArrayLayout(signed(prod_bits), P)), "c1": In(P * s.c1_bits),
            "valid": Out(1), "acc": Out(data.ArrayLayout(signed(acc), P)),
            "state": Out(data.ArrayLayout(s.state_bits, P)),
            "layer": Out(op_layout.members["layer"]), "word": Out(op_layout.members["word"]), "bank": Out(2),
            "mask": Out(P),
        })

    def elaborate(self, platform):
        m = Module()
        s, L, P, op = self.spec, self.spec.n_layers, self.spec.lanes, self.op
        c1b, T1 = s.c1_bits, s.tiles(1)
        m.submodules.laccs = laccs = self.laccs
        with m.Switch(op.conn):
            for k in range(1, L):
                with m.Case(k):
                    m.d.comb += laccs.shift.eq(s.top_down_shift(k))
        m.d.comb += [laccs.first.eq(op.first), laccs.en.eq(op.valid & (op.kind == self.kind))]
        for i in range(P):
            m.d.comb += [laccs.prod[i].eq(self.prod[i]),
                         laccs.init[i].eq(Mux(op.layer == 1, self.c1[i * c1b:(i + 1) * c1b].as_signed(), 0))]
        m.d.sync += [self.valid.eq(op.valid & (op.kind == self.kind) & op.last), self.layer.eq(op.layer),
                     self.word.eq(op.word), self.bank.eq(op.wr_bank)]
        # the finished sums are read from the lane accumulators themselves: in valid's cycle they hold the
        # tile's last sum (a following tile's first op overwrites them only at the end of that cycle)
        for i in range(P):
            m.submodules[f"act{i}"] = act = Activation({1: s.activation_shift(1)}, s.activation_rounding,
                                                       s.acc_bits_max, s.state_bits)
            m.d.comb += [self.acc[i].eq(laccs.acc[i]), act.pre.eq(laccs.acc[i]), self.state[i].eq(act.state)]
        # write enables of a layer-1 state word: padding lanes of the last tile stay zero
        m.d.comb += self.mask.eq(Mux(self.word == T1 - 1, (1 << (s.layers[1] - (T1 - 1) * P)) - 1, (1 << P) - 1))
        return m
