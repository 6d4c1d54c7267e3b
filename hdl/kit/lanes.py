"""The lane datapath: P lane products (multiply, or add/subtract/skip for ternary weights) and the
adder tree that reduces them (twin piece: :mod:`golden.ep_core.lanes`)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

LANE_MODES = ("multiply", "addsub", "addsub+multiply")


def _check_int(name: str, value, lo: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {value!r}")


class LaneProducts(wiring.Component):
    """P products ``left[i] · right[i]``, registered: latency 1 cycle, one result per cycle.

    Contract (twin piece: :func:`golden.ep_core.lanes.lane_products`): ``prod[i]`` in cycle n + 1 is
    the product of lane i's operands in cycle n, exact in ``left_bits + right_bits`` signed bits.
    ``mode``:

    * ``"multiply"`` — P multipliers (the fixed-point core: weight × state, or state × state for
      an update).
    * ``"addsub"`` — no multipliers: ``left[i]`` is a ternary weight, read from its bits as the
      ternary memory's PCSA gives them (bit 0: non-zero, sign bit: negative), so the lane adds,
      subtracts or skips ``right[i]`` (the ternary core's relaxation; the EqSpike core's add lanes).
    * ``"addsub+multiply"`` — both: ``mul`` (same cycle as the operands) selects the multiplier
      (a ternary training core's weight update multiplies states).

    No back-pressure: the lanes take operands every cycle (a pipeline stage of the core).

    Parameters
    ----------
    lanes : int — P (≥ 1). left_bits, right_bits : int — signed operand widths (≥ 2).
    mode : str — one of ``LANE_MODES``.

    Members
    -------
    left : In(ArrayLayout(signed(left_bits), P)); right : In(ArrayLayout(signed(right_bits), P)).
    mul : In(1) — only in ``"addsub+multiply"`` mode.
    prod : Out(ArrayLayout(signed(left_bits + right_bits), P)).
    """

    def __init__(self, lanes: int, left_bits: int, right_bits: int, *, mode: str = "multiply"):
        _check_int("lanes", lanes, 1)
        _check_int("left_bits", left_bits, 2)
        _check_int("right_bits", right_bits, 2)
        if mode not in LANE_MODES:
            raise ValueError(f"mode must be one of {LANE_MODES}, not {mode!r}")
        self.lanes, self.left_bits, self.right_bits, self.mode = lanes, left_bits, right_bits, mode
        members = {"left": In(data.ArrayLayout(signed(left_bits), lanes)),
                   "right": In(data.ArrayLayout(signed(right_bits), lanes)),
                   "prod": Out(data.ArrayLayout(signed(left_bits + right_bits), lanes))}
        if mode == "addsub+multiply":
            members["mul"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            left, right = self.left[i], self.right[i]
            addsub = Mux(left[0], Mux(left[-1], -right, right), 0)
            if self.mode == "multiply":
                m.d.sync += self.prod[i].eq(left * right)
            elif self.mode == "addsub":
                m.d.sync += self.prod[i].eq(addsub)
            else:
                m.d.sync += self.prod[i].eq(Mux(self.mul, left * right, addsub))
        return m


class AdderTree(wiring.Component):
    """The sum of P signed inputs through a balanced binary tree with one register per level.

    Contract (twin piece: :func:`golden.ep_core.lanes.reduce_lanes`): ``sum`` = Σ ``inp[i]`` of the
    cycle ``latency`` cycles earlier, exact in ``width + latency`` signed bits, where
    ``latency = ceil(log2 P)`` (0 for P = 1: a wire). One sum per cycle, no back-pressure.
    ``side_in`` (any payload, e.g. the core's micro-op) comes out on ``side_out`` with the same
    latency, ``valid_in`` on ``valid_out``; ``occupied`` is high while a level holds a valid input
    (the core waits for it to clear before it drains).

    Parameters
    ----------
    lanes : int — P (≥ 1). width : int — signed input width (≥ 1). side_bits : int — payload width (≥ 1).

    Members
    -------
    inp : In(ArrayLayout(signed(width), P)). valid_in : In(1). side_in : In(side_bits).
    sum : Out(signed(width + latency)). valid_out : Out(1). side_out : Out(side_bits). occupied : Out(1).
    """

    def __init__(self, lanes: int, width: int, side_bits: int = 1):
        _check_int("lanes", lanes, 1)
        _check_int("width", width, 1)
        _check_int("side_bits", side_bits, 1)
        self.lanes, self.width, self.side_bits = lanes, width, side_bits
        self.latency = (lanes - 1).bit_length()
        super().__init__({"inp": In(data.ArrayLayout(signed(width), lanes)), "valid_in": In(1),
                          "side_in": In(side_bits), "sum": Out(signed(width + self.latency)),
                          "valid_out": Out(1), "side_out": Out(side_bits), "occupied": Out(1)})

    def elaborate(self, platform):
        m = Module()
        P = self.lanes
        width_p = 1 << self.latency
        level = [self.inp[i] for i in range(P)] + [Const(0, signed(2))] * (width_p - P)
        valid, side = self.valid_in, self.side_in
        occupied = Const(0)
        depth = 0
        while len(level) > 1:
            nxt = []
            for a in range(0, len(level), 2):
                r = Signal(signed(max(len(level[a]), len(level[a + 1])) + 1), name=f"tree{depth}_{a // 2}")
                m.d.sync += r.eq(level[a] + level[a + 1])
                nxt.append(r)
            level = nxt
            valid_n, side_n = Signal(name=f"valid{depth}"), Signal(self.side_bits, name=f"side{depth}")
            m.d.sync += [valid_n.eq(valid), side_n.eq(side)]
            valid, side = valid_n, side_n
            occupied = occupied | valid_n
            depth += 1
        m.d.comb += [self.sum.eq(level[0]), self.valid_out.eq(valid), self.side_out.eq(side),
                     self.occupied.eq(occupied)]
        return m


class LaneAccumulators(wiring.Component):
    """P lane accumulators for a broadcast (column) sweep: ``acc[i] ← (first ? init[i] : acc[i]) + (prod[i] << shift)``.

    Contract (twin piece: :func:`golden.ep_core.lanes.accumulate_lanes`): in a cycle with ``en`` high
    ``acc`` takes ``sum`` (wrapped to ``width`` bits: the spec sizes ``width`` so that no sum overflows,
    which the formal harness proves on ``sum_full``); ``acc`` holds otherwise. ``first`` starts a new
    column from ``init`` (the EP core's c1 word for layer 1, zero for a middle layer).

    Latency: ``acc`` 1 cycle after its last ``en`` (the core's S4 reads it in that cycle); ``sum``
    and ``sum_full`` combinational. No back-pressure.

    Parameters
    ----------
    lanes : int — P (≥ 1). width : int — accumulator width, signed (≥ 2).
    prod_bits : int — signed product width (≥ 2). max_shift : int — the largest ``shift`` (≥ 0).

    Members
    -------
    prod : In(ArrayLayout(signed(prod_bits), P)). init : In(ArrayLayout(signed(width), P)).
    first, en : In(1). shift : In(range(max_shift + 1)).
    acc : Out(ArrayLayout(signed(width), P)). sum : Out(ArrayLayout(signed(width), P)).
    sum_full : Out(ArrayLayout(signed(full_bits), P)) — the sums before wrapping.
    """

    def __init__(self, lanes: int, width: int, prod_bits: int, max_shift: int):
        _check_int("lanes", lanes, 1)
        _check_int("width", width, 2)
        _check_int("prod_bits", prod_bits, 2)
        _check_int("max_shift", max_shift, 0)
        self.lanes, self.width, self.prod_bits, self.max_shift = lanes, width, prod_bits, max_shift
        shift = Signal(range(max_shift + 1))
        self.full_bits = len(Mux(Signal(), Signal(signed(width)), Signal(signed(width)))
                             + (Signal(signed(prod_bits)) << shift))
        super().__init__({"prod": In(data.ArrayLayout(signed(prod_bits), lanes)),
                          "init": In(data.ArrayLayout(signed(width), lanes)),
                          "first": In(1), "en": In(1), "shift": In(range(max_shift + 1)),
                          "acc": Out(data.ArrayLayout(signed(width), lanes)),
                          "sum": Out(data.ArrayLayout(signed(width), lanes)),
                          "sum_full": Out(data.ArrayLayout(signed(self.full_bits), lanes))})

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            full = Mux(self.first, self.init[i], self.acc[i]) + (self.prod[i] << self.shift)
            assert len(full) == self.full_bits
            m.d.comb += [self.sum_full[i].eq(full), self.sum[i].eq(full)]
        with m.If(self.en):
            m.d.sync += [self.acc[i].eq(self.sum[i]) for i in range(self.lanes)]
        return m


class RowAccumulator(wiring.Component):
    """The row path's scalar accumulator: ``acc ← (first ? 0 : acc) + (sum << shift[layer])`` while ``en``;
    at the row's ``last`` input ``value = acc_new + addend`` is registered.

    Contract (twin piece: :func:`golden.ep_core.lanes.accumulate_row`, one row of the twin's
    ``(dot(s, Wᵀ) << shift) + addend``): ``sum`` is the adder tree's sum of one tile, ``shift``
    maps a layer to its alignment shift (``spec.bottom_up_shift``; a layer not in it: 0),
    ``addend`` the row-end term (bias, nudge or partial sum). Sums are wrapped to ``width`` bits (the
    spec sizes it so that none overflows; ``rsum_full``/``final_full`` are the unwrapped values for the
    formal harness). ``side`` (the micro-op) is registered beside ``value``.

    Latency: ``valid``/``value``/``side_out`` 1 cycle after the row's last input; one input per
    cycle, no back-pressure.

    Members
    -------
    sum : In(signed(sum_bits)). en, first, last : In(1). layer : In(range(max(shifts) + 1)).
    addend : In(signed(width)). side : In(side_bits). valid : Out(1). value : Out(signed(width)).
    side_out : Out(side_bits). rsum_full, final_full : Out(signed) — unwrapped sums.
    """

    def __init__(self, width: int, sum_bits: int, shifts: dict[int, int], side_bits: int = 1):
        _check_int("width", width, 2)
        _check_int("sum_bits", sum_bits, 1)
        _check_int("side_bits", side_bits, 1)
        if not shifts or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in shifts.values()):
            raise ValueError(f"shifts must map layers to shifts >= 0, not {shifts!r}")
        self.width, self.sum_bits, self.shifts, self.side_bits = width, sum_bits, dict(shifts), side_bits
        shift = Signal(range(max(shifts.values()) + 1))
        acc = Signal(signed(width))
        self.rsum_bits = len(Mux(Signal(), 0, acc) + (Signal(signed(sum_bits)) << shift))
        super().__init__({"sum": In(signed(sum_bits)), "en": In(1), "first": In(1), "last": In(1),
                          "layer": In(range(max(shifts) + 1)), "addend": In(signed(width)), "side": In(side_bits),
                          "valid": Out(1), "value": Out(signed(width)), "side_out": Out(side_bits),
                          "rsum_full": Out(signed(self.rsum_bits)), "final_full": Out(signed(width + 1))})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(range(max(self.shifts.values()) + 1), name="bu_shift")
        with m.Switch(self.layer):
            for k, v in self.shifts.items():
                with m.Case(k):
                    m.d.comb += shift.eq(v)
        acc = Signal(signed(self.width), name="racc")
        rsum = Signal(signed(self.width), name="rsum")
        full = Mux(self.first, 0, acc) + (self.sum << shift)
        assert len(full) == self.rsum_bits
        m.d.comb += [self.rsum_full.eq(full), rsum.eq(full), self.final_full.eq(rsum + self.addend)]
        with m.If(self.en):
            m.d.sync += acc.eq(rsum)
        m.d.sync += [self.valid.eq(self.en & self.last), self.side_out.eq(self.side),
                     self.value.eq(rsum + self.addend)]
        return m
