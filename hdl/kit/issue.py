"""Kit part: the EP core's issue stage (docs/ep-core.md, "Components"; twin piece
:func:`golden.ep_core.sequence.state_reads`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import EPCoreSpec

from . import bank_base

ENGINE_PORTS = ("run", "kind", "conn", "layer", "sub", "waddr", "outer", "inner", "o_w", "o_l", "i_w", "i_l",
                "first", "last")
SEQ_PORTS = ("rd_bank", "wr_bank", "rd_zero", "bsign", "last_free", "bank_a", "bank_b")


class Issue(wiring.Component):
    """S0 of the core's pipeline: the sweep engine's position and the sequencer's banks → the micro-op
    and the read addresses of the core's own memories.

    Contract (twin piece: :func:`golden.ep_core.sequence.state_reads`, the state words a position reads):

    * ``op`` (combinational): ``valid`` = ``run``, the engine's ``kind``/``conn``/``layer``/``sub``/
      ``waddr``/``first``/``last``, the sequencer's ``wr_bank``/``rd_zero``/``bsign``; for a row
      sweep (reduce, c1, weight update: outer = row j, inner = tile) ``j`` = outer and ``lane``/``word``
      its split, ``argmax`` in the last free step's top-layer reduce; otherwise (broadcast: outer =
      tile, inner = row j; d pass, bias update: outer = tile) ``j`` = inner, ``lane`` its lane,
      ``word`` = outer.
    * ``s_addr[k − 1]``: layer k's state word, ``bank·tiles(k) + word`` with the bank ``rd_bank``
      (relaxation) or ``bank_b``/``bank_a`` (update, ``sub`` 0/1) and the word of :func:`state_reads`;
      ``x_addr`` the input tile (inner); ``row_word`` the row's word (o_w: partial sums, d);
      ``b_word`` the bias word (outer for a bias update, else o_w).

    Latency: 0 (combinational). No back-pressure.

    Parameters
    ----------
    spec : EPCoreSpec. op_layout : the core's micro-op StructLayout. kinds : dict name → kind value
    (``reduce``, ``c1``, ``bcast``, ``upw``, ``dpass``, ``upb``). engine : the core's
    :class:`~hdl.kit.sweep.SweepEngine` (its port shapes).

    Members
    -------
    ``ENGINE_PORTS`` : In (the engine's outputs, same names). ``SEQ_PORTS`` : In (the sequencer's).
    op : Out(op_layout). s_addr : Out(L addresses). x_addr, row_word, b_word : Out.
    """

    def __init__(self, spec: EPCoreSpec, op_layout: data.StructLayout, kinds: dict[str, int], engine):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        if set(kinds) != {"reduce", "c1", "bcast", "upw", "dpass", "upb"}:
            raise ValueError(f"kinds must name reduce, c1, bcast, upw, dpass and upb, not {sorted(kinds)}")
        self.spec, self.kinds = spec, dict(kinds)
        T = [spec.tiles(k) for k in range(spec.n_layers + 1)]
        members = {n: In(getattr(engine, n).shape()) for n in ENGINE_PORTS}
        members.update({n: In(1 if n in ("rd_zero", "last_free") else 2) for n in SEQ_PORTS})
        members.update({"op": Out(op_layout), "s_addr": Out(data.ArrayLayout(range(4 * max(T[1:])), spec.n_layers)),
                        "x_addr": Out(engine.inner.shape()), "row_word": Out(engine.o_w.shape()),
                        "b_word": Out(engine.outer.shape())})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        s, L, K, op = self.spec, self.spec.n_layers, self.kinds, self.op
        kind, conn, outer, inner, sub = self.kind, self.conn, self.outer, self.inner, self.sub
        o_w, o_l, i_w, i_l = self.o_w, self.o_l, self.i_w, self.i_l
        m.d.comb += [op.valid.eq(self.run), op.kind.eq(kind), op.conn.eq(conn), op.layer.eq(self.layer),
                     op.sub.eq(sub), op.waddr.eq(self.waddr), op.wr_bank.eq(self.wr_bank), op.zero.eq(self.rd_zero),
                     op.bsign.eq(self.bsign), op.first.eq(self.first), op.last.eq(self.last)]
        with m.If((kind == K["reduce"]) | (kind == K["c1"]) | (kind == K["upw"])):  # outer = row j, inner = tile t
            m.d.comb += [op.j.eq(outer), op.lane.eq(o_l), op.word.eq(o_w),
                         op.argmax.eq(self.last_free & (self.layer == L) & (kind == K["reduce"]))]
        with m.Else():  # broadcast: outer = tile t, inner = j; dpass/upb: outer = tile t
            m.d.comb += [op.j.eq(inner), op.lane.eq(i_l), op.word.eq(outer)]
        m.d.comb += [self.x_addr.eq(inner), self.row_word.eq(o_w),
                     self.b_word.eq(Mux(kind == K["upb"], outer, o_w))]
        for k in range(1, L + 1):
            Tk = s.tiles(k)
            addr = self.s_addr[k - 1]
            upd_bank = Mux(sub, self.bank_a, self.bank_b)
            rd_base, upd_base = bank_base(self.rd_bank, Tk), bank_base(upd_bank, Tk)
            with m.Switch(kind):
                with m.Case(K["reduce"]):
                    # pre tile of layer k (= conn) or the nudge state of the top layer
                    with m.If(conn == k):
                        m.d.comb += addr.eq(rd_base + inner)
                    with m.Else():
                        m.d.comb += addr.eq(rd_base + o_w)
                with m.Case(K["bcast"]):
                    m.d.comb += addr.eq(rd_base + i_w)  # post scalar (k = conn + 1)
                with m.Case(K["dpass"], K["upb"]):
                    m.d.comb += addr.eq(upd_base + outer)
                with m.Case(K["upw"]):
                    with m.If(conn == k):
                        m.d.comb += addr.eq(upd_base + inner)  # pre tile
                    with m.Else():
                        m.d.comb += addr.eq(upd_base + o_w)  # post scalar
        return m
