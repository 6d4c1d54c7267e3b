"""Kit part: the EP core's update path (docs/ep-core.md, "Components"; twin pieces
:func:`golden.ep_core.update.update_delta`, :func:`~golden.ep_core.update.apply_update`,
:func:`~golden.ep_core.update.reprogram_cells`, :meth:`spec.ep_core.EPCoreSpec.update_shift`)."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import PRNG_WIDTH, EPCoreSpec

from .update import UpdateUnit


class UpdatePath(wiring.Component):
    """A training core's weight/bias update around :class:`~hdl.kit.update.UpdateUnit`: shifts, d pass,
    write-back (and a ternary training core's cell reprogramming).

    Contract (twin pieces: ``update_delta``, ``apply_update``, ``reprogram_cells``, ``update_shift``):

    * ``load`` latches the sample's shifts: ``k_w[l]`` = ``spec.update_shift(l, lr_shift, beta_shift,
      symmetric)``, ``k_b[l]`` = ``spec.bias_update_shift(…)`` (from the next cycle on).
    * Every cycle takes one micro-op ``op`` (``op_layout``: at least ``valid``, ``kind``, ``conn``, ``sub``,
      ``word``, ``waddr``) with its P products ``prod`` and the stored word's elements ``old`` (and, on a
      ternary training core, its cells ``cells``). Ops of the kinds ``dpass``, ``upw``, ``upb`` come
      in pairs (``sub`` 0: the b product, 1: the a product; ``diff = b − a``), except ``upw`` of
      connection 0, which is one op whose product is the difference.
    * One cycle after the completing op: a ``dpass`` difference is written to the d memory
      (``d_wen``, ``d_addr`` = ``word``, ``d_data`` P × (SB + 1) bits).
    * Two cycles after it: ``upw`` writes connection ``conn``'s word ``waddr`` (``w_wen``, ``w_wconn``,
      ``w_waddr``, ``w{l}_wdata``) with ``apply_update(old, update_delta(diff, k_w[conn]))`` in the
      connection's format; ``upb`` writes bias word ``word`` of ``conn`` (``b_wen``, …) with
      ``update_delta(diff, k_b[conn], scale = SB)`` added to the biases. A ternary training core's
      ``up_cells``/``up_mask`` are ``reprogram_cells`` of the old and new latent weights.
      ``draw`` (stochastic rounding) is high when a weight or bias word takes its PRNG words ``rnd``.

    Latency: d 1 cycle, weights and biases 2 cycles after the completing op; one op per cycle, no
    back-pressure. ``diff_valid``/``valid_out`` say a difference / a word is in the stages (the core's
    drain waits for them).

    Parameters
    ----------
    spec : EPCoreSpec (training). op_layout : the core's micro-op StructLayout. prod_bits, old_bits : int.
    kinds : (dpass, upw, upb) — the micro-op kinds.

    Members
    -------
    load, symmetric : In(1). lr_shift, beta_shift : In(range). op : In(op_layout). prod, old : In(P lanes).
    cells : In(2P) (ternary training). rnd : In(P × PRNG word) (stochastic). draw, diff_valid, valid_out,
    diff_en : Out(1) (``diff_en``: an op that completes a difference, for the formal harness).
    d_wen, d_addr, d_data; w_wen, w_wconn, w_waddr, ``w{l}_wdata``; b_wen, b_wconn, b_wword, b_wdata;
    up_cells, up_mask (ternary training) : Out — the writes (named like the weight store's inputs).
    ``unit``: the update unit (the formal harness's taps).
    """

    def __init__(self, spec: EPCoreSpec, op_layout: data.StructLayout, prod_bits: int, old_bits: int,
                 kinds: tuple[int, int, int]):
        if not isinstance(spec, EPCoreSpec) or not spec.training:
            raise ValueError(f"spec must be a training EPCoreSpec, not {spec!r}")
        need = {"valid", "kind", "conn", "sub", "word", "waddr"}
        if not need <= set(op_layout.members):
            raise ValueError(f"op_layout must have the fields {sorted(need)}, not {sorted(op_layout.members)}")
        s, L, P, SB = spec, spec.n_layers, spec.lanes, spec.state_bits
        self.spec, self.kinds = spec, tuple(kinds)
        self.tt = s.ternary_training
        self.wbits = list(s.latent_bits) if self.tt else list(s.weight_bits)
        self.kmax = max([s.update_shift(l, s.lr_shift_max, 0, True) for l in range(L)]
                        + [s.bias_update_shift(l, s.lr_shift_max, 0, True) for l in range(L)] + [1])
        side_bits = op_layout.size + (2 * P if self.tt else 0)
        self.unit = UpdateUnit(P, prod_bits, old_bits, self.wbits + [s.bias_bits], SB, self.kmax,
                               s.update_rounding, side_bits, PRNG_WIDTH)
        members = {
            "load": In(1), "symmetric": In(1), "lr_shift": In(range(s.lr_shift_max + 1)),
            "beta_shift": In(range(s.beta_shift_max + 1)), "op": In(op_layout),
            "prod": In(data.ArrayLayout(signed(prod_bits), P)), "old": In(data.ArrayLayout(signed(old_bits), P)),
            "draw": Out(1), "diff_valid": Out(1), "valid_out": Out(1), "diff_en": Out(1),
            "d_wen": Out(1), "d_addr": Out(op_layout.members["word"]), "d_data": Out(P * (SB + 1)),
            "w_wen": Out(1), "w_wconn": Out(op_layout.members["conn"]), "w_waddr": Out(op_layout.members["waddr"]),
            "b_wen": Out(1), "b_wconn": Out(op_layout.members["conn"]), "b_wword": Out(op_layout.members["word"]),
            "b_wdata": Out(P * s.bias_bits),
        }
        for l in range(L):
            members[f"w{l}_wdata"] = Out(P * self.wbits[l])
        if self.tt:
            members.update({"cells": In(2 * P), "up_cells": Out(2 * P), "up_mask": Out(P)})
        if s.update_rounding == "stochastic":
            members["rnd"] = In(data.ArrayLayout(PRNG_WIDTH, P))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        s, L, P, SB = self.spec, self.spec.n_layers, self.spec.lanes, self.spec.state_bits
        K_DPASS, K_UPW, K_UPB = self.kinds
        op, tt, wbits = self.op, self.tt, self.wbits
        # the sample's shifts (spec.update_shift / bias_update_shift at lr_shift, beta_shift, symmetric)
        kb = Shape.cast(range(self.kmax + 1)).width
        k_w = [Signal(kb, name=f"k_w{l}") for l in range(L)]
        k_b = [Signal(kb, name=f"k_b{l}") for l in range(L)]
        with m.If(self.load):
            var = self.lr_shift - self.beta_shift + self.symmetric
            for l in range(L):
                m.d.sync += [k_w[l].eq(s.update_shift(l, 0, 0, False) + var),
                             k_b[l].eq(s.bias_update_shift(l, 0, 0, False) + var)]
        upd_kind = (op.kind == K_UPW) | (op.kind == K_UPB) | (op.kind == K_DPASS)
        single = (op.kind == K_UPW) & (op.conn == 0)  # W0: one product per weight, d = s1_b − s1_a
        side = Cat(op, self.cells) if tt else op.as_value()
        m.submodules.unit = upd = self.unit
        m.d.comb += [upd.valid.eq(op.valid & upd_kind), upd.sub.eq(op.sub), upd.single.eq(single), upd.side.eq(side),
                     upd.old.eq(self.old), self.diff_en.eq(op.valid & upd_kind & (op.sub | single))]
        m.d.comb += [upd.prod[i].eq(self.prod[i]) for i in range(P)]
        u_op, v_op = Signal.like(op, name="u_op"), Signal.like(op, name="v_op")
        m.d.comb += [u_op.eq(upd.diff_side), v_op.eq(upd.side_out)]
        # S4: the d pass writes its difference to dmem; weights and biases go on to the rounding shift
        # (weights: k_w; biases: k_b applied to diff << SB)
        with m.If(upd.diff_valid & (u_op.kind == K_DPASS)):
            m.d.comb += [self.d_wen.eq(1), self.d_addr.eq(u_op.word)]
            for i in range(P):
                m.d.comb += self.d_data[i * (SB + 1):(i + 1) * (SB + 1)].eq(upd.diff[i])
        with m.Switch(u_op.conn):
            for l in range(L):
                with m.Case(l):
                    m.d.comb += upd.shift.eq(Mux(u_op.kind == K_UPB, k_b[l], k_w[l]))
        m.d.comb += [upd.apply.eq(u_op.kind != K_DPASS), upd.scale.eq(u_op.kind == K_UPB),
                     self.diff_valid.eq(upd.diff_valid), self.valid_out.eq(upd.valid_out)]
        if s.update_rounding == "stochastic":  # one PRNG draw per weight/bias micro-op
            m.d.comb += [self.draw.eq(upd.draw), upd.rnd.eq(self.rnd)]
        # S5: write-back of the saturated sums
        m.d.comb += [self.w_wen.eq(upd.valid_out & (v_op.kind == K_UPW)), self.w_wconn.eq(v_op.conn),
                     self.w_waddr.eq(v_op.waddr)]
        vc = upd.side_out[len(op.as_value()):]
        for l in range(L):
            wb = wbits[l]
            m.d.comb += getattr(self, f"w{l}_wdata").eq(upd.new[wb])
            if tt:
                # reprogram the cell where the ternary value of the latent weight changed
                # (spec.ternarize_latent: +1 above Δ, −1 below −Δ); others are written back as stored
                cells, mask = [], []
                d = s.latent_threshold[l]
                for i in range(P):
                    old, new = upd.old_out[i], upd.new[wb][i]
                    up_new, dn_new = Signal(name=f"tp{l}_{i}"), Signal(name=f"tn{l}_{i}")
                    m.d.comb += [up_new.eq(new > d), dn_new.eq(new < -d)]
                    changed = (up_new != (old > d)) | (dn_new != (old < -d))
                    mask.append(changed)
                    cells.append(Mux(changed, Cat(up_new, dn_new), vc[2 * i:2 * i + 2]))
                with m.If(v_op.conn == l):
                    m.d.comb += [self.up_cells.eq(Cat(*cells)), self.up_mask.eq(Cat(*mask))]
        # biases: one memory and one format for every layer, so one write path at the layer's base
        m.d.comb += [self.b_wen.eq(upd.valid_out & (v_op.kind == K_UPB)), self.b_wconn.eq(v_op.conn),
                     self.b_wword.eq(v_op.word), self.b_wdata.eq(upd.new[s.bias_bits])]
        return m
