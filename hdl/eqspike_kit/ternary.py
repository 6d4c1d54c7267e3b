"""EqSpike part: the weight rows of a ternary core (``weight_kind="ternary"``; docs/eqspike.md §9; twin piece
:mod:`golden.eqspike.ternary`: ``pack_memory``, ``program``).

The cells of every ``w{l}`` live in one :class:`hdl.ternary_mem.TernaryWeightMemory` (the EP core's memory,
PCSA sensing and fault injector, reused) in the :meth:`spec.eqspike.EqSpikeSpec.ternary_base` layout: word
``base_l + j·tiles(l+1) + t`` holds w{l}[t·P + i, j] in cell i, the bottom-up row a spike of presynaptic j
reads. Its PCSA read gives per lane nonzero/negative; this part hands them on as P two-bit two's-complement
lanes (+1 = 01, −1 = 11, 0 = 00) so the accumulate stage adds α, subtracts α or skips (no multiplier).

The top-down copies ``wdn{l}`` (l ≥ 1, post-major, 2-bit lanes) are plain memories of the core; they follow
the cells *as stored*: every program write of a word of connection l ≥ 1 (after the injector) is mirrored
into them, one element per cycle (P cycles, ``tcmd`` held meanwhile), so static faults act on both
directions alike, as in the twin (one array).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from ..regport import RegSignature
from ..ternary_mem import TernaryWeightMemory
from .common import const_mul, ubits


def tcmd_fields(spec: EqSpikeSpec) -> dict[str, int]:
    """Bit widths of a ``tcmd`` beat (fields in this order from bit 0): the memory's program command
    (``data``: the word's P cells, ``addr``, ``write``; a read returns the stored cells on ``trsp``) and,
    for the mirror into the top-down copy, the word's ``j_word``/``j_lane`` (presynaptic j = j_word·P +
    j_lane) and ``t`` (its post tile): the host does the division, the core none."""
    ms = spec.ternary_memory_spec()
    L, P = spec.n_layers, spec.lanes
    tb = ubits(max(spec.tiles(k) for k in range(L + 1)) - 1)
    f = dict(ms.cmd_fields())
    return {"data": f["data"], "addr": f["addr"], "write": 1, "j_word": tb, "j_lane": ubits(P - 1), "t": tb}


def ternary_words(spec: EqSpikeSpec, weights: dict) -> list[int]:
    """The memory's words (cells packed, :func:`spec.ternary.pack_cells`) of ternary ``w{l}`` (post, pre)."""
    from golden.eqspike.ternary import pack_memory
    from spec.ternary import pack_cells

    return [pack_cells([int(c) for c in row]) for row in pack_memory(spec, weights)]


def tcmd_beats(spec: EqSpikeSpec, weights: dict) -> list[dict[str, int]]:
    """The ``tcmd`` write beats programming every word in address order (the twin's ``program``)."""
    P, out = spec.lanes, []
    words = ternary_words(spec, weights)
    for l in range(spec.n_layers):
        T, base = spec.tiles(l + 1), spec.ternary_base(l)
        for j in range(spec.layers[l]):
            for t in range(T):
                a = base + j * T + t
                out.append({"data": words[a], "addr": a, "write": 1, "j_word": j // P, "j_lane": j % P, "t": t})
    return out


class TernaryRows(wiring.Component):
    """The ternary weight memory of :class:`hdl.eqspike.EqSpikeCore` and its mirror into ``wdn{l}``.

    Contract: ``ren`` with ``raddr`` (a memory address) is a PCSA read; ``rdata`` (P 2-bit signed lanes) is
    its word one cycle later and holds until the next read. Reads only while ``busy`` is low. A ``tcmd``
    beat is taken when ``allow`` is high, no mirror runs and the memory takes commands; a write programs the
    word (static injection), a read answers the stored cells on ``trsp``. A write of a word of connection
    l ≥ 1 then gives P mirror cycles: ``mir_v`` (the element exists), ``mir_lay`` = l, ``mir_addr`` (the
    ``wdn{l}`` word), ``mir_lane``, ``mir_val`` (its stored value, 2-bit signed; an illegal cell gives 0).
    ``idle``: no mirror runs. ``reg``: the memory's registers (``spec.ternary.REG_*``).

    A training core's memory has the update port (``spec.update_port``): every read is then a *raw* read
    (the stored cells decoded, +1 = 01, −1 = 10, else 0; no PCSA draw, not counted in ``REG_READS``), so the
    memory's PRNG steps only on programmed and updated words — the twin's draw order (one draw per written word),
    whatever the read traffic; ``cells`` is the read word's raw cells. ``up_en`` with ``up_addr``/``up_data``/
    ``up_mask`` is an update write (one draw, static injection on the masked cells); of a word of connection
    l ≥ 1 it gives the P mirror cycles too, with ``up_jw``/``up_jl``/``up_t`` (its presynaptic j and post tile)
    in the roles of the ``tcmd`` fields. Not while ``busy`` or while a mirror runs.
    """

    def __init__(self, spec: EqSpikeSpec, init: list[int] | None = None):
        if not isinstance(spec, EqSpikeSpec) or spec.weight_kind != "ternary":
            raise ValueError("TernaryRows needs an EqSpikeSpec with weight_kind='ternary'")
        self.spec, self.init = spec, init
        self.mspec = ms = spec.ternary_memory_spec()
        L, P = spec.n_layers, spec.lanes
        T = [spec.tiles(k) for k in range(L + 1)]
        wdn_depth = max([spec.layers[l + 1] * T[l] for l in range(1, L)] + [2])
        f = tcmd_fields(spec)
        super().__init__({
            "raddr": In(ms.addr_bits), "ren": In(1), "rdata": Out(2 * P), "busy": Out(1),
            "allow": In(1), "idle": Out(1),
            "tcmd": In(stream.Signature(data.StructLayout({k: unsigned(v) for k, v in f.items()}))),
            "trsp": Out(stream.Signature(data.StructLayout({"data": unsigned(ms.word_bits)}))),
            "reg": In(RegSignature()),
            "mir_v": Out(1), "mir_lay": Out(range(max(2, L))), "mir_addr": Out(range(wdn_depth)),
            "mir_lane": Out(range(max(2, P))), "mir_val": Out(2),
        } | ({"cells": Out(2 * P), "up_en": In(1), "up_addr": In(ms.addr_bits), "up_data": In(2 * P),
              "up_mask": In(P), "up_jw": In(f["j_word"]), "up_jl": In(f["j_lane"]), "up_t": In(f["t"])}
             if spec.training else {}))

    def elaborate(self, platform):
        s, m = self.spec, Module()
        L, P, N = s.n_layers, s.lanes, list(s.layers)
        T = [s.tiles(k) for k in range(L + 1)]
        m.submodules.mem = mem = TernaryWeightMemory(self.mspec, self.init)
        wiring.connect(m, wiring.flipped(self.reg), mem.reg)
        m.d.comb += [self.busy.eq(mem.busy), mem.rd_addr.eq(self.raddr), mem.rd_en.eq(self.ren)]
        if s.training:  # raw reads: the stored cells decoded (01 → +1, 10 → −1, else 0), no PCSA draw
            rc = mem.rd_cells
            m.d.comb += [mem.rd_raw.eq(1), self.cells.eq(rc), mem.up_en.eq(self.up_en), mem.up_addr.eq(self.up_addr),
                         mem.up_data.eq(self.up_data), mem.up_mask.eq(self.up_mask),
                         self.rdata.eq(Cat(*[Cat(rc[2 * i] ^ rc[2 * i + 1], rc[2 * i + 1] & ~rc[2 * i])
                                             for i in range(P)]))]
        else:
            m.d.comb += self.rdata.eq(Cat(*[Cat(mem.rd_nz[i], mem.rd_nz[i] & mem.rd_neg[i]) for i in range(P)]))
        wiring.connect(m, mem.rsp, wiring.flipped(self.trsp))
        # the mirror: the stored word of a program write of connection l >= 1, one element per cycle
        act, q = Signal(), Signal(range(max(2, P)))
        cells, lay = Signal(2 * P), Signal(range(max(2, L)))
        jw, jl, t = Signal.like(self.tcmd.payload.j_word), Signal.like(self.tcmd.payload.j_lane), \
            Signal.like(self.tcmd.payload.t)
        cmd = self.tcmd.payload
        go = self.allow & ~act
        m.d.comb += [mem.cmd.payload.data.eq(cmd.data), mem.cmd.payload.addr.eq(cmd.addr),
                     mem.cmd.payload.write.eq(cmd.write), mem.cmd.valid.eq(self.tcmd.valid & go),
                     self.tcmd.ready.eq(mem.cmd.ready & go), self.idle.eq(~act)]
        taken = self.tcmd.valid & self.tcmd.ready & cmd.write
        if L >= 2:
            waddr, wjw, wjl, wt = cmd.addr, cmd.j_word, cmd.j_lane, cmd.t
            if s.training:  # an update write (never in a program command's cycle) mirrors too
                taken = taken | self.up_en
                waddr, wjw, wjl, wt = (Mux(self.up_en, a, b) for a, b in (
                    (self.up_addr, waddr), (self.up_jw, wjw), (self.up_jl, wjl), (self.up_t, wt)))
            upper = Const(0, 1)
            for l in range(1, L):
                upper = upper | (waddr >= s.ternary_base(l))
            with m.If(taken & upper):
                clay = Const(1, lay.shape())
                for l in range(2, L):
                    clay = Mux(waddr >= s.ternary_base(l), l, clay)
                m.d.sync += [act.eq(1), q.eq(0), cells.eq(mem.wr_cells), lay.eq(clay), jw.eq(wjw),
                             jl.eq(wjl), t.eq(wt)]
            with m.If(act):
                m.d.sync += q.eq(q + 1)
                with m.If(q == P - 1):
                    m.d.sync += act.eq(0)
            row = const_mul(t, P) + q  # the post neuron i = t·P + q: wdn{l} word i·tiles(l) + j_word
            cell = cells.word_select(q, 2)
            m.d.comb += [self.mir_lay.eq(lay), self.mir_lane.eq(jl),
                         self.mir_val.eq(Mux(cell == 0b01, 0b01, Mux(cell == 0b10, 0b11, 0)))]
            for l in range(1, L):
                with m.If(lay == l):
                    m.d.comb += [self.mir_v.eq(act & (row < N[l + 1])), self.mir_addr.eq(const_mul(row, T[l]) + jw)]
        return m
