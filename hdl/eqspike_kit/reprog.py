"""EqSpike part: the cell reprogramming of a ternary training core (docs/eqspike.md §9, "RTL"; twin piece
:func:`golden.eqspike.ternary.reprogram`).

After each nudged step's weight update (WUPD, which updates the latent weights ``v{l}``) one sweep of the cell
memory in address order (the :meth:`spec.eqspike.EqSpikeSpec.ternary_base` layout: the ``vup{l}`` words of every
connection, one after the other) over the *touched rows* — the presynaptic rows j whose latents were written since
the last sweep (a dirty bit per row, set by WUPD's row writes and scatters, by ``wcmd`` latent writes and by ``tcmd``
program writes; a clean row holds no latent whose ternary value can differ from its intended cells): per word the
latents' ternary values (+1 above Δ_l, −1 below −Δ_l, else 0) are compared with the *intended* cells (``tval``,
a memory of the cells as written, before the injector: the twin's ``_t``); a word with a difference is written
through the memory's update port (one PRNG draw; the changed cells, ``up_mask``, reprogrammed, the others written
back as stored, so a static fault stays until its weight's ternary value changes) and its intended cells rewritten.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec
from spec.ternary import CELL_MINUS, CELL_PLUS, CELL_ZERO

from .common import const_mul, lanes, lowest_bit, ubits


class Reprogram(wiring.Component):
    """The REPROG sweep of :class:`hdl.eqspike.EqSpikeCore` (ternary training cores).

    Contract: ``mark{l}_en`` (P bits, lanes jl) with ``mark{l}_jw`` marks rows j = jw·P + jl of connection l dirty
    (one write per cycle per connection, never during a sweep). ``start`` (a pulse, while idle) starts a sweep:
    per connection l and row word jw (``tiles(l)`` of them) the dirty bits are read (2 cycles) and cleared; for each
    dirty row j in increasing order its words t = 0 … tiles(l+1) − 1 (memory word a = base_l + j·tiles(l+1) + t) are
    issued one per cycle. Issue cycle of word a (``issue``): ``v_conn`` = l, ``v_addr`` its ``vup{l}`` word,
    ``c_addr`` = a (the core drives those memories' read addresses with them); one cycle later (stage 1) ``v{l}``
    holds the latent word and ``cells`` the stored cells (a raw read). Stage 1 compares ``ternarize(v)`` with the
    intended cells and, if a lane differs, drives the update write (``up_en``, ``up_addr`` = a, ``up_data``: the new
    cells where changed, the stored ones elsewhere, ``up_mask``: the changed lanes, ``up_jw``/``up_jl``/``up_t``: the
    word's presynaptic j = jw·P + jl and post tile, for the top-down mirror). A write of a word of connection l ≥ 1
    starts the mirror (``mir_busy`` from the next cycle): the sweep issues nothing until it ends and issues the word
    after the written one again. ``done`` pulses (comb) in the sweep's last cycle; ``busy`` from ``start`` to
    ``done``. ``prog_en``/``prog_addr``/``prog_data``: a program write of the cell memory (``tcmd``, between
    samples) sets the intended cells of its word (the core marks its row too).

    Latency: 2 cycles per row word jw of every connection (Σ_l tiles(l)), one per issued word (tiles(l+1) per dirty
    row), P + 1 per written word of an upper connection (mirror and re-issue; less where the mirror overlaps the
    next row word's dirty-bit read), + 2.
    """

    def __init__(self, spec: EqSpikeSpec, init: list[int] | None = None):
        if not isinstance(spec, EqSpikeSpec) or not spec.ternary_training:
            raise ValueError("Reprogram needs an EqSpikeSpec with weight_kind='ternary' and training=true")
        self.spec, self.init = spec, list(init or [])
        ms = spec.ternary_memory_spec()
        L, P = spec.n_layers, spec.lanes
        T = [spec.tiles(k) for k in range(L + 1)]
        self.depth = ms.depth
        self.words = [spec.layers[l] * T[l + 1] for l in range(L)]
        tb = ubits(max(T) - 1)
        super().__init__({
            "start": In(1), "done": Out(1), "busy": Out(1), "mir_busy": In(1), "issue": Out(1),
            "v_conn": Out(range(L + 1)), "v_addr": Out(range(max(self.words) + 1)), "c_addr": Out(ms.addr_bits),
            **{f"v{l}": In(P * spec.latent_bits[l]) for l in range(L)}, "cells": In(2 * P),
            "up_en": Out(1), "up_addr": Out(ms.addr_bits), "up_data": Out(2 * P), "up_mask": Out(P),
            "up_jw": Out(tb), "up_jl": Out(ubits(P - 1)), "up_t": Out(tb),
            "prog_en": In(1), "prog_addr": In(ms.addr_bits), "prog_data": In(2 * P),
            **{f"mark{l}_{k}": In(P if k == "en" else tb) for l in range(L) for k in ("en", "jw")},
        })

    def elaborate(self, platform):  # noqa: C901 - one small FSM
        s, m = self.spec, Module()
        L, P = s.n_layers, s.lanes
        T = [s.tiles(k) for k in range(L + 1)]
        m.submodules.tval = tval = memory.Memory(shape=2 * P, depth=self.depth, init=self.init)
        trd, twr = tval.read_port(), tval.write_port()
        dirty = []
        for l in range(L):  # a dirty bit per presynaptic row j of connection l: word jw, lane jl
            m.submodules[f"dirty{l}"] = dm = memory.Memory(shape=P, depth=max(2, T[l]), init=[])
            dirty.append((dm.read_port(), dm.write_port(granularity=1)))
        run = Signal()
        lay, jw = Signal.like(self.v_conn), Signal.like(self.up_jw)
        jl, t = Signal.like(self.up_jl), Signal.like(self.up_t)
        pend = Signal(P)  # the dirty rows of word jw not yet swept
        v1, a1, lay1 = Signal(), Signal.like(self.c_addr), Signal.like(lay)
        jw1, jl1, t1 = Signal.like(jw), Signal.like(jl), Signal.like(t)
        # the issued word: row j = jw·P + jl of connection lay, post tile t
        w = Signal.like(self.v_addr)
        a = Signal.like(self.c_addr)
        for l in range(L):
            with m.If(lay == l):
                m.d.comb += [w.eq(const_mul(const_mul(jw, P) + jl, T[l + 1]) + t), a.eq(w + s.ternary_base(l))]
        m.d.comb += [self.v_conn.eq(lay), self.v_addr.eq(w), self.c_addr.eq(a), trd.addr.eq(a), self.busy.eq(run)]
        # stage 1: the new cells of word a1 and the lanes that changed
        new = Signal(2 * P)
        for l in range(L):
            d = s.latent_threshold[l]
            code = [Mux(v > d, CELL_PLUS, Mux(v < -d, CELL_MINUS, CELL_ZERO))
                    for v in lanes(getattr(self, f"v{l}"), s.latent_bits[l], True, P)]
            with m.If(lay1 == l):
                m.d.comb += new.eq(Cat(*code))
        old = trd.data
        mask = Signal(P)
        m.d.comb += mask.eq(Cat(*[new[2 * i:2 * i + 2] != old[2 * i:2 * i + 2] for i in range(P)]))
        write = Signal()
        m.d.comb += write.eq(v1 & mask.any())
        stop = Signal()  # the write starts a mirror: a word issued in this cycle is issued again after it
        m.d.comb += stop.eq(write & (lay1 >= 1) if L >= 2 else 0)
        m.d.comb += [self.up_en.eq(write), self.up_addr.eq(a1), self.up_mask.eq(mask),
                     self.up_data.eq(Cat(*[Mux(mask[i], new[2 * i:2 * i + 2], self.cells[2 * i:2 * i + 2])
                                           for i in range(P)])),
                     self.up_jw.eq(jw1), self.up_jl.eq(jl1), self.up_t.eq(t1)]
        with m.If(write):
            m.d.comb += [twr.addr.eq(a1), twr.data.eq(new), twr.en.eq(1)]
        with m.Elif(self.prog_en):
            m.d.comb += [twr.addr.eq(self.prog_addr), twr.data.eq(self.prog_data), twr.en.eq(1)]
        # dirty bits: marks (outside sweeps), or the sweep's read and clear of word jw
        for l, (drd, dwr) in enumerate(dirty):
            en, mjw = getattr(self, f"mark{l}_en"), getattr(self, f"mark{l}_jw")
            m.d.comb += drd.addr.eq(jw)
            with m.If(en.any()):
                m.d.comb += [dwr.addr.eq(mjw), dwr.data.eq(-1), dwr.en.eq(en)]
        rdirty = Signal(P)
        for l, (drd, _dwr) in enumerate(dirty):
            with m.If(lay == l):
                m.d.comb += rdirty.eq(drd.data)
        low = Signal(P)  # the lowest pending row's lane, one-hot, and its index
        m.d.comb += low.eq(pend & -pend)
        low_i = Signal.like(jl)
        m.d.comb += low_i.eq(lowest_bit(pend, P))
        issue = Signal()
        m.d.comb += self.issue.eq(issue)
        m.d.sync += v1.eq(issue)
        with m.If(issue):
            m.d.sync += [a1.eq(a), lay1.eq(lay), jw1.eq(jw), jl1.eq(jl), t1.eq(t)]

        def next_word():  # the next row word jw of this connection, or the next connection, or the end
            last_jw = Signal.like(jw)
            for l in range(L):
                with m.If(lay == l):
                    m.d.comb += last_jw.eq(T[l] - 1)
            with m.If(jw == last_jw):
                m.d.sync += [jw.eq(0), lay.eq(lay + 1)]
                with m.If(lay == L - 1):
                    m.next = "FIN"
                with m.Else():
                    m.next = "READ"
            with m.Else():
                m.d.sync += jw.eq(jw + 1)
                m.next = "READ"

        with m.FSM(name="reprog"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [run.eq(1), lay.eq(0), jw.eq(0)]
                    m.next = "READ"
            with m.State("READ"):  # the dirty bits of (lay, jw) are read
                m.next = "LATCH"
            with m.State("LATCH"):  # ... and cleared; the first dirty row next
                for l, (_drd, dwr) in enumerate(dirty):
                    with m.If(lay == l):
                        m.d.comb += [dwr.addr.eq(jw), dwr.data.eq(0), dwr.en.eq(-1)]
                m.d.sync += [pend.eq(rdirty), t.eq(0), jl.eq(lowest_bit(rdirty, P))]
                with m.If(rdirty == 0):
                    next_word()
                with m.Else():
                    m.next = "ROWS"
            with m.State("ROWS"):  # row jl of word jw, word t, one per cycle
                m.d.comb += issue.eq(~self.mir_busy & ~stop)
                with m.If(issue):
                    last_t = Signal.like(t)
                    for l in range(L):
                        with m.If(lay == l):
                            m.d.comb += last_t.eq(T[l + 1] - 1)
                    with m.If(t == last_t):
                        rest = pend & ~low
                        m.d.sync += [t.eq(0), pend.eq(rest), jl.eq(lowest_bit(rest, P))]
                        with m.If(rest == 0):
                            next_word()
                    with m.Else():
                        m.d.sync += t.eq(t + 1)
            with m.State("FIN"):  # the last word's stage 1 and mirror
                with m.If(~v1 & ~self.mir_busy):
                    m.d.comb += self.done.eq(1)
                    m.d.sync += run.eq(0)
                    m.next = "IDLE"
        return m
