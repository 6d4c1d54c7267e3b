"""EqSpike part: the cell reprogramming of a ternary training core (docs/eqspike.md §9, "RTL"; twin piece
:func:`golden.eqspike.ternary.reprogram`).

After each nudged step's weight update (WUPD, which updates the latent weights ``v{l}``) one sweep of the cell
memory in address order (the :meth:`spec.eqspike.EqSpikeSpec.ternary_base` layout: the ``vup{l}`` words of every
connection, one after the other): per word the latents' ternary values (+1 above Δ_l, −1 below −Δ_l, else 0)
are compared with the *intended* cells (``tval``, a memory of the cells as written, before the injector: the
twin's ``_t``); a word with a difference is written through the memory's update port (one PRNG draw; the
changed cells, ``up_mask``, reprogrammed, the others written back as stored, so a static fault stays until its
weight's ternary value changes) and its intended cells rewritten.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec
from spec.ternary import CELL_MINUS, CELL_PLUS, CELL_ZERO

from .common import lanes, ubits


class Reprogram(wiring.Component):
    """The REPROG sweep of :class:`hdl.eqspike.EqSpikeCore` (ternary training cores).

    Contract: ``start`` (a pulse, while idle) starts a sweep of words a = 0 … depth − 1. Issue cycle of word a
    (``issue``): ``v_conn`` = its connection l, ``v_addr`` its ``vup{l}`` word, ``c_addr`` = a (the core drives
    those memories' read addresses with them); one cycle later (stage 1) ``v{l}`` holds the latent word and
    ``cells`` the stored cells (a raw read). Stage 1 compares ``ternarize(v)`` with the intended cells and, if a
    lane differs, drives the update write (``up_en``, ``up_addr`` = a, ``up_data``: the new cells where changed,
    the stored ones elsewhere, ``up_mask``: the changed lanes, ``up_jw``/``up_jl``/``up_t``: the word's
    presynaptic j = jw·P + jl and post tile, for the top-down mirror). A write of a word of connection l ≥ 1
    starts the mirror (``mir_busy`` from the next cycle): the sweep then issues nothing until it ends and issues
    the word after the written one again. ``done`` pulses (comb) in the sweep's last cycle; ``busy`` from
    ``start`` to ``done``. ``prog_en``/``prog_addr``/``prog_data``: a program write of the cell memory (``tcmd``,
    between samples) sets the intended cells of its word.

    Latency: depth issue cycles + 2, plus P + 1 per written word of an upper connection (mirror and re-issue).
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
        })

    def elaborate(self, platform):
        s, m = self.spec, Module()
        L, P = s.n_layers, s.lanes
        T = [s.tiles(k) for k in range(L + 1)]
        m.submodules.tval = tval = memory.Memory(shape=2 * P, depth=self.depth, init=self.init)
        trd, twr = tval.read_port(), tval.write_port()
        run = Signal()
        a, w, lay = Signal(range(self.depth + 1)), Signal.like(self.v_addr), Signal.like(self.v_conn)
        jw, jl, t = Signal.like(self.up_jw), Signal.like(self.up_jl), Signal.like(self.up_t)
        v1, a1, lay1 = Signal(), Signal.like(a), Signal.like(lay)
        jw1, jl1, t1 = Signal.like(jw), Signal.like(jl), Signal.like(t)
        m.d.comb += [self.v_conn.eq(lay), self.v_addr.eq(w), self.c_addr.eq(a), trd.addr.eq(a),
                     self.busy.eq(run)]
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
        stop = Signal()  # the write starts a mirror: the word issued in this cycle is issued again after it
        m.d.comb += stop.eq(write & (lay1 >= 1) if L >= 2 else 0)
        m.d.comb += [self.up_en.eq(write), self.up_addr.eq(a1), self.up_mask.eq(mask),
                     self.up_data.eq(Cat(*[Mux(mask[i], new[2 * i:2 * i + 2], self.cells[2 * i:2 * i + 2])
                                           for i in range(P)])),
                     self.up_jw.eq(jw1), self.up_jl.eq(jl1), self.up_t.eq(t1)]
        with m.If(write):
            m.d.comb += [twr.addr.eq(a1), twr.data.eq(new), twr.en.eq(1)]
        with m.Elif(self.prog_en):
            m.d.comb += [twr.addr.eq(self.prog_addr), twr.data.eq(self.prog_data), twr.en.eq(1)]
        issue = Signal()
        m.d.comb += [issue.eq(run & ~self.mir_busy & ~stop & (a != self.depth)), self.issue.eq(issue)]
        m.d.sync += v1.eq(issue)
        with m.If(issue):  # advance (a, lay, w, jw, jl, t); stage 1 takes this word
            m.d.sync += [a1.eq(a), lay1.eq(lay), jw1.eq(jw), jl1.eq(jl), t1.eq(t), a.eq(a + 1)]
            last_w = Signal.like(w)
            last_t = Signal.like(t)
            with m.Switch(lay):
                for l in range(L):
                    with m.Case(l):
                        m.d.comb += [last_w.eq(self.words[l] - 1), last_t.eq(T[l + 1] - 1)]
            with m.If(w == last_w):
                m.d.sync += [w.eq(0), lay.eq(lay + 1), t.eq(0), jl.eq(0), jw.eq(0)]
            with m.Else():
                m.d.sync += w.eq(w + 1)
                with m.If(t == last_t):
                    m.d.sync += t.eq(0)
                    with m.If(jl == P - 1):
                        m.d.sync += [jl.eq(0), jw.eq(jw + 1)]
                    with m.Else():
                        m.d.sync += jl.eq(jl + 1)
                with m.Else():
                    m.d.sync += t.eq(t + 1)
        with m.If(self.start):
            m.d.sync += [run.eq(1), a.eq(0), w.eq(0), lay.eq(0), jw.eq(0), jl.eq(0), t.eq(0)]
        with m.If(run & ~v1 & ~self.mir_busy & (a == self.depth)):
            m.d.comb += self.done.eq(1)
            m.d.sync += run.eq(0)
        return m
