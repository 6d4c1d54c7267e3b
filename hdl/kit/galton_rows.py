"""Galton part: the junction thresholds and the boards' rows (docs/galton.md, "Components"; twin piece
:func:`golden.domainwall.twin.bins_from_words`)."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from spec.galton import GaltonSpec


class GaltonRows(wiring.Component):
    """The threshold registers (two tables of N(N+1)/2, reset 2^(k−1)) and B boards of N pipelined rows.

    Contract (twin piece: ``bins_from_words(spec, thresholds, words, corr)``):

    * ``t_we`` (one cycle): the threshold at region offset ``t_off`` (:meth:`GaltonSpec.threshold_addr`)
      holds ``t_data`` from the next cycle on; an offset that names no threshold changes nothing.
    * The rows are cut into stages of ``rows_per_stage`` rows with a register between stages (``stages``
      registers in all); every register moves in a cycle with ``adv`` high and holds otherwise. The ball
      whose lane words are on ``words`` in a cycle with ``adv`` (row 0 is combinational from ``words``)
      has its bins on ``bins`` after ``stages`` more cycles with ``adv`` (combinational from the last
      register; ``stages = 0``: in the same cycle): ``bins_from_words`` of those words with the
      thresholds and ``corr`` of the cycles it passed the rows in.

    Latency: ``stages`` advancing cycles; no valid bits (the ball source tracks which stages hold a ball),
    no back-pressure (``adv`` is the stall).

    Members
    -------
    words : In(lanes × prng_width). corr, adv, t_we : In(1). t_off : In(region_bits). t_data : In(k + 1).
    bins : Out(ArrayLayout(bin_index_bits, B)).
    """

    def __init__(self, spec: GaltonSpec, rows_per_stage: int, stages: int):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        if stages != -(-spec.rows // rows_per_stage) - 1:
            raise ValueError(f"stages must be ceil(rows / rows_per_stage) - 1, not {stages!r}")
        self.spec, self.rows_per_stage, self.stages = spec, rows_per_stage, stages
        super().__init__({
            "words": In(spec.lanes * spec.prng_width), "corr": In(1), "adv": In(1), "t_we": In(1),
            "t_off": In(spec.region_bits), "t_data": In(spec.threshold_bits),
            "bins": Out(data.ArrayLayout(unsigned(spec.bin_index_bits), spec.boards)),
        })

    def elaborate(self, platform):
        s, m = self.spec, Module()
        N, B, k, w, TB = s.rows, s.boards, s.prob_bits, s.prng_width, s.threshold_bits
        F, Lb, P, R, r_corr = s.fields_per_word, s.lanes_per_board, self.stages, self.rows_per_stage, self.corr
        thr = [[[Signal(TB, init=1 << (k - 1), name=f"thr{c}_{i}_{j}") for j in range(i + 1)] for i in range(N)]
               for c in range(2)]
        # one comparator per register, not one switch per register (keeps the Verilog linear in N²)
        for c in range(2):
            for i in range(N):
                for j in range(i + 1):
                    with m.If(self.t_we & (self.t_off == s.threshold_addr(c, i, j))):
                        m.d.sync += thr[c][i][j].eq(self.t_data)

        def field(src, b: int, i: int):
            lo = (b * Lb + i // F) * w + (i % F) * k
            return src[lo : lo + k]

        for b in range(B):
            pos = Signal(1, name=f"b{b}_pos0")  # always 0: the entry
            last = Signal(name=f"b{b}_last0")  # row 0 uses table 0
            t_ready = None  # the row's threshold, already selected in the stage before
            fields = {i: field(self.words, b, i) for i in range(N)}
            for i in range(N):
                t = Signal(TB, name=f"b{b}_t{i}")
                if t_ready is not None:
                    m.d.comb += t.eq(t_ready)
                elif i:
                    m.d.comb += t.eq(Mux(r_corr & last, Array(thr[1][i])[pos], Array(thr[0][i])[pos]))
                else:
                    m.d.comb += t.eq(thr[0][0][0])
                right = Signal(name=f"b{b}_right{i}")
                m.d.comb += right.eq(fields[i] < t)
                nxt = Signal(range(i + 2), name=f"b{b}_pos{i + 1}")
                m.d.comb += nxt.eq(pos + right)
                st = i // R
                if (i + 1) % R == 0 and st < P:  # a stage ends after row i: register what goes on
                    # row i + 1's threshold is selected here, both candidates beside row i's compare:
                    # after a LEFT turn junction pos of table 0, after a RIGHT turn junction pos + 1
                    # of the table the chirality memory names
                    t_left = Array(thr[0][i + 1][: i + 1])[pos]
                    t_right = Mux(r_corr, Array(thr[1][i + 1][1:])[pos], Array(thr[0][i + 1][1:])[pos])
                    r_pos = Signal(range(i + 2), name=f"b{b}_s{st}_pos", reset_less=True)
                    r_t = Signal(TB, name=f"b{b}_s{st}_t", reset_less=True)
                    ahead = list(range(i + 1, N))
                    r_fields = Signal(k * len(ahead), name=f"b{b}_s{st}_fields", reset_less=True)
                    with m.If(self.adv):
                        m.d.sync += [r_pos.eq(nxt), r_t.eq(Mux(right, t_right, t_left)),
                                     r_fields.eq(Cat(*(fields[j] for j in ahead)))]
                    fields = {j: r_fields[n * k : (n + 1) * k] for n, j in enumerate(ahead)}
                    pos, t_ready = r_pos, r_t
                else:
                    pos, last, t_ready = nxt, right, None
            m.d.comb += self.bins[b].eq(pos)
        return m
