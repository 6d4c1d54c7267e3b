"""Amaranth bank of xorshift generators: jump-ahead lane seeding, "**" output scrambler (:mod:`spec.prng`)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.prng import SCRAMBLER, TRIPLES, PRNGSpec, jump_matrix


def xorshift_step(x, w: int):
    """One xorshift update as logic (three shift-XORs, truncated to w bits)."""
    a, b, c = TRIPLES[w]
    x = (x ^ (x << a))[:w]
    x = x ^ (x >> b)
    return (x ^ (x << c))[:w]


def scramble(x, w: int):
    """:func:`spec.prng.scramble` as logic: rotl(x·5, 7)·9 mod 2^w with ·5 and ·9 as shift-adds (two
    w-bit adders, no multiplier)."""
    s, r, t = SCRAMBLER
    if (s, t) != (5, 9):
        raise ValueError(f"the shift-add scrambler is built for ·5 and ·9, not {SCRAMBLER}")
    y = (x + (x << 2))[:w]
    y = y.rotate_left(r)
    return (y + (y << 3))[:w]


def output_word(x, w: int, kind: str = "scrambled"):
    """A lane's output word for state ``x`` (spec.prng.output): scrambled, or ``x`` itself ("raw")."""
    return scramble(x, w) if kind == "scrambled" else x


def gf2_apply(columns: list[int], x, w: int):
    """M·x over GF(2) as a fixed XOR network: output bit i = XOR of x_j where column j has bit i."""
    bits = []
    for i in range(w):
        terms = [x[j] for j in range(w) if (columns[j] >> i) & 1]
        acc = 0
        for t in terms:
            acc = acc ^ t
        bits.append(acc if terms else 0)
    out = Signal(w)
    return out, [out[i].eq(bits[i]) for i in range(w)]


class XorshiftBank(wiring.Component):
    """``spec.lanes`` xorshift generators; lane i starts i·``spec.jump`` steps after lane 0.

    Members
    -------
    seed : In(32) — seed value, taken when ``load`` is high (folded to a non-zero w-bit state).
    load : In(1) — (re)seed: lane states are then filled one per cycle through the jump network.
    en : In(1) — advance every lane by one step (ignored while seeding).
    ready : Out(1) — high once every lane is seeded.
    out : Out(lanes × width) — the lanes' output words (:func:`scramble` of the current states,
        combinational from the state registers: no extra cycle; the states themselves with
        ``spec.output == "raw"``), lane i in bits [i·w, (i+1)·w).
    state : Out(lanes × width) — the lanes' current states (the registers), same layout.
    """

    def __init__(self, spec: PRNGSpec):
        if not isinstance(spec, PRNGSpec):
            raise TypeError(f"spec must be a PRNGSpec, not {type(spec).__name__}")
        self.spec = spec
        super().__init__({"seed": In(32), "load": In(1), "en": In(1), "ready": Out(1),
                          "out": Out(spec.lanes * spec.width), "state": Out(spec.lanes * spec.width)})

    def elaborate(self, platform):
        m = Module()
        s = self.spec
        w, n = s.width, s.lanes
        init = s.lane_states()
        lanes = [Signal(w, init=init[i], name=f"lane{i}") for i in range(n)]
        for i in range(n):
            m.d.comb += [self.state[i * w:(i + 1) * w].eq(lanes[i]),
                         self.out[i * w:(i + 1) * w].eq(output_word(lanes[i], w, s.output))]
        # fold the 32-bit seed to w bits (XOR of w-bit chunks), 0 → 1: spec.prng.seed_state
        folded = 0
        for lo in range(0, 32, w):
            folded = folded ^ self.seed[lo:min(32, lo + w)]
        seed_w = Signal(w)
        m.d.comb += seed_w.eq(folded)
        filling = Signal(range(n + 1), init=n)  # next lane to fill; n = done
        m.d.comb += self.ready.eq(filling == n)
        prev = Signal(w)
        jumped, stmts = gf2_apply(jump_matrix(w, s.jump), prev, w)
        m.d.comb += stmts
        with m.If(self.load):
            m.d.sync += [lanes[0].eq(seed_w | (seed_w == 0)), filling.eq(1 if n > 1 else n)]
        with m.Elif(filling != n):
            with m.Switch(filling):
                for i in range(1, n):
                    with m.Case(i):
                        m.d.comb += prev.eq(lanes[i - 1])
                        m.d.sync += lanes[i].eq(jumped)
            m.d.sync += filling.eq(filling + 1)
        with m.Elif(self.en):
            m.d.sync += [lane.eq(xorshift_step(lane, w)) for lane in lanes]
        return m
