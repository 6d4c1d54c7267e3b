"""Kit part: the update unit of the EP core (docs/ep-core.md, "Components"; twin piece :mod:`golden.ep_core.update`)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..fixed import saturate, shift_round

UPDATE_ROUNDINGS = ("floor", "half_up", "stochastic")


def _check_int(name: str, value, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {value!r}")


class UpdateUnit(wiring.Component):
    """P lanes of ``new = saturate(old + shift_round(diff << scale, shift, rounding), format)``.

    Contract (twin piece: :func:`golden.ep_core.update.update_delta` then
    :func:`~golden.ep_core.update.apply_update`, as :meth:`golden.ep_core.EPCoreTwin.update` uses them):

    * **Difference** (input cycle n, ``valid``): a *pair* is two cycles of products, the b product
      (``sub`` 0) then the a product (``sub`` 1): ``diff = b − a``; a *single* cycle (``single``) is
      the difference itself (``diff = prod``). ``old`` (the stored word's elements, sign-extended)
      and ``side`` (any payload: the core's micro-op) are taken with the product that completes the
      difference. ``diff_full`` is the difference before narrowing (for the formal harness).
    * **Rounding** (cycle n + 1: ``diff_valid``, ``diff``, ``diff_side`` out): with ``apply`` high
      the difference is scaled by ``2^scale_shift`` when ``scale`` is high (a bias: presynaptic
      state 1.0), then shifted right by ``shift`` with the rounding; ``"stochastic"`` adds the low
      ``shift`` bits of lane i's ``rnd`` word first and floors, and ``draw`` is high in that cycle
      (one PRNG draw per word). With ``apply`` low the difference only leaves on ``diff`` (the EP
      core's d pass writes it to its own memory). ``delta_full`` is the rounded value before
      narrowing.
    * **Saturating add** (cycle n + 2: ``valid_out``, ``delta``, ``old_out``, ``side_out``): for
      every element width ``b`` of ``widths``, ``new[b]`` is ``old + delta`` saturated to
      ``[−2^(b−1), 2^(b−1) − 1]`` (the core writes the one of the word's format back: the
      read-modify-write's write).

    Latency: ``diff`` 1 cycle after the completing product, ``new`` 2 cycles; one word per cycle, no
    back-pressure (pipeline stages).

    Parameters
    ----------
    lanes : int — P. prod_bits : int — signed product width. old_bits : int — signed width of
    ``old``. widths : the element widths of the formats written back (each ≥ 2).
    scale_shift : int — the bias scale (``state_bits``). max_shift : int — the largest ``shift``.
    rounding : str — one of ``UPDATE_ROUNDINGS``. side_bits : int — payload width. rnd_bits : int —
    width of a PRNG word (stochastic rounding; ``shift`` must not exceed it).

    Members
    -------
    valid, sub, single : In(1). prod : In(ArrayLayout(signed(prod_bits), P)).
    old : In(ArrayLayout(signed(old_bits), P)). side : In(side_bits).
    diff_valid : Out(1). diff : Out(ArrayLayout(signed(prod_bits + 1), P)). diff_side : Out(side_bits).
    apply, scale : In(1). shift : In(range(max_shift + 1)). rnd : In(ArrayLayout(rnd_bits, P)) and
    draw : Out(1) — stochastic only.
    valid_out : Out(1). delta : Out(ArrayLayout(signed(delta_bits), P)). old_out, side_out : the
    carried ``old`` and ``side``. ``new{b}`` : Out(ArrayLayout(signed(b), P)) for b in ``widths``
    (also as ``self.new[b]``). diff_full, delta_full : Out — the unnarrowed values.
    """

    def __init__(self, lanes: int, prod_bits: int, old_bits: int, widths, scale_shift: int, max_shift: int,
                 rounding: str, side_bits: int = 1, rnd_bits: int = 32):
        _check_int("lanes", lanes, 1)
        _check_int("prod_bits", prod_bits, 2)
        _check_int("old_bits", old_bits, 2)
        _check_int("scale_shift", scale_shift, 0)
        _check_int("max_shift", max_shift, 0)
        _check_int("side_bits", side_bits, 1)
        _check_int("rnd_bits", rnd_bits, 1)
        widths = sorted(set(widths))
        if not widths:
            raise ValueError("widths must name at least one element width, not []")
        for b in widths:
            _check_int("each of widths", b, 2)
        if rounding not in UPDATE_ROUNDINGS:
            raise ValueError(f"rounding must be one of {UPDATE_ROUNDINGS}, not {rounding!r}")
        if rounding == "stochastic" and max_shift > rnd_bits:
            raise ValueError(f"max_shift must be <= rnd_bits ({rnd_bits}) for stochastic rounding, not {max_shift}")
        self.lanes, self.prod_bits, self.old_bits, self.widths = lanes, prod_bits, old_bits, widths
        self.scale_shift, self.max_shift, self.rounding, self.rnd_bits = scale_shift, max_shift, rounding, rnd_bits
        self.diff_bits = prod_bits + 1
        self.delta_bits = self.diff_bits + scale_shift + 1
        self.delta_full_bits = self.delta_bits + rnd_bits + 2
        P = lanes
        members = {
            "valid": In(1), "sub": In(1), "single": In(1),
            "prod": In(data.ArrayLayout(signed(prod_bits), P)), "old": In(data.ArrayLayout(signed(old_bits), P)),
            "side": In(side_bits),
            "diff_valid": Out(1), "diff": Out(data.ArrayLayout(signed(self.diff_bits), P)),
            "diff_side": Out(side_bits), "apply": In(1), "scale": In(1), "shift": In(range(max_shift + 1)),
            "valid_out": Out(1), "delta": Out(data.ArrayLayout(signed(self.delta_bits), P)),
            "old_out": Out(data.ArrayLayout(signed(old_bits), P)), "side_out": Out(side_bits),
            "diff_full": Out(data.ArrayLayout(signed(self.diff_bits), P)),
            "delta_full": Out(data.ArrayLayout(signed(self.delta_full_bits), P)),
        }
        if rounding == "stochastic":
            members["rnd"] = In(data.ArrayLayout(rnd_bits, P))
            members["draw"] = Out(1)
        for b in widths:
            members[f"new{b}"] = Out(data.ArrayLayout(signed(b), P))
        super().__init__(members)
        self.new = {b: getattr(self, f"new{b}") for b in widths}

    def elaborate(self, platform):
        m = Module()
        P = self.lanes
        # cycle n: the b product waits in `hold`; the a product (or a single one) completes the difference
        hold = [Signal(signed(self.prod_bits), name=f"hold{i}") for i in range(P)]
        with m.If(self.valid & ~self.single & ~self.sub):
            m.d.sync += [hold[i].eq(self.prod[i]) for i in range(P)]
        done = self.valid & (self.sub | self.single)
        old1 = Signal.like(self.old)
        m.d.sync += [self.diff_valid.eq(done), self.diff_side.eq(self.side), old1.eq(self.old)]
        for i in range(P):
            full = Mux(self.single, self.prod[i], hold[i] - self.prod[i])
            m.d.comb += self.diff_full[i].eq(full)
            m.d.sync += self.diff[i].eq(full)
        # cycle n + 1: the rounding shift
        if self.rounding == "stochastic":
            m.d.comb += self.draw.eq(self.diff_valid & self.apply)
            rmask = Signal(self.rnd_bits)
            ones = Const((1 << self.rnd_bits) - 1, self.rnd_bits)
            m.d.comb += rmask.eq(~((ones << self.shift)[:self.rnd_bits]))
        for i in range(P):
            val = Mux(self.scale, self.diff[i] << self.scale_shift, self.diff[i])
            if self.rounding == "stochastic":
                args = (val + (self.rnd[i] & rmask), self.shift, "floor")
            else:
                args = (val, self.shift, self.rounding)
            m.d.sync += self.delta[i].eq(shift_round(*args, self.delta_bits))
            m.d.comb += self.delta_full[i].eq(shift_round(*args, self.delta_full_bits))
        m.d.sync += [self.valid_out.eq(self.diff_valid & self.apply), self.side_out.eq(self.diff_side),
                     self.old_out.eq(old1)]
        # cycle n + 2: the saturating add, one result per written format
        for b in self.widths:
            lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
            for i in range(P):
                m.d.comb += self.new[b][i].eq(saturate(self.old_out[i] + self.delta[i], lo, hi, b))
        return m
