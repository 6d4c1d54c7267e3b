"""Kit part: the EP core's state dump (docs/ep-core.md, "Components"; twin piece
:func:`golden.ep_core.sequence.dump_beats`)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import bank_base


class DumpReader(wiring.Component):
    """Streams one bank of every layer's state memory out, tile by tile (one phase's dump).

    Contract (twin piece: :func:`golden.ep_core.sequence.dump_beats`, the beats in order):

    * ``start`` (one cycle, while idle) begins a dump of bank ``bank`` with phase number ``phase``
      (both read from the cycle after ``start`` until ``done``). The beats are layer 1 … L, tile 0 … ``tiles[k] − 1``:
      ``states`` the word at address ``bank·tiles[k] + tile`` of layer k's memory, ``layer``,
      ``tile``, ``phase``.
    * For each beat the reader asks for the word one cycle ahead (``rd_en[k − 1]`` high, ``rd_addr[k − 1]``
      its address) and keeps asking while the beat waits, so a memory with a one-cycle read
      (``data[k − 1]`` = the word asked for in the previous cycle) feeds ``dump.payload`` directly.
    * ``done`` is high in the cycle the last beat is taken.

    Latency: the first beat is valid 2 cycles after ``start``; after a beat is taken, the next is
    valid 2 cycles later (one read cycle between beats). Back-pressure: ``dump.ready`` (``valid``
    and the payload stay until it is high).

    Parameters
    ----------
    layout : the ``dump`` payload (``states`` array of P states, ``tile``, ``layer``, ``phase``).
    tiles : list of int — words per bank of layers 1 … L.

    Members
    -------
    start : In(1). bank, phase : In(2). data : In(array of L words). dump : Out(stream). done : Out(1).
    rd_en : Out(L). rd_addr : Out(array of L addresses).
    """

    def __init__(self, layout: data.StructLayout, tiles: list[int]):
        if not tiles or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in tiles):
            raise ValueError(f"tiles must be a non-empty list of integers >= 1, not {tiles!r}")
        if not {"states", "tile", "layer", "phase"} <= set(layout.members):
            raise ValueError(f"layout must have 'states', 'tile', 'layer' and 'phase', not {layout!r}")
        self.tiles = list(tiles)
        L, states = len(tiles), layout.members["states"]
        super().__init__({
            "start": In(1), "bank": In(2), "phase": In(2),
            "data": In(data.ArrayLayout(states.length * states.elem_shape.width, L)),
            "dump": Out(stream.Signature(layout)), "done": Out(1), "rd_en": Out(L),
            "rd_addr": Out(data.ArrayLayout(range(4 * max(tiles)), L)),
        })

    def elaborate(self, platform):
        m = Module()
        T, L = self.tiles, len(self.tiles)
        P = self.dump.payload.states.shape().length
        sb = len(self.data[0]) // P
        k = Signal(range(L + 2))
        t = Signal(range(max(T) + 1))
        for j in range(L):
            m.d.comb += self.rd_addr[j].eq(bank_base(self.bank, T[j]) + t)
        with m.FSM(name="dump"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [k.eq(1), t.eq(0)]
                    m.next = "READ"
            with m.State("READ"):
                for j in range(L):
                    m.d.comb += self.rd_en[j].eq(k == j + 1)
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.dump.valid.eq(1)
                word = Signal(len(self.data[0]))
                for j in range(L):  # keep reading the same word while the beat waits for ready
                    m.d.comb += self.rd_en[j].eq(k == j + 1)
                    with m.If(k == j + 1):
                        m.d.comb += word.eq(self.data[j])
                for i in range(P):
                    m.d.comb += self.dump.payload.states[i].eq(word[i * sb:(i + 1) * sb])
                m.d.comb += [self.dump.payload.tile.eq(t), self.dump.payload.layer.eq(k),
                             self.dump.payload.phase.eq(self.phase)]
                with m.If(self.dump.ready):
                    last_t = Signal()
                    with m.Switch(k):
                        for j in range(L):
                            with m.Case(j + 1):
                                m.d.comb += last_t.eq(t == T[j] - 1)
                    with m.If(last_t):
                        m.d.sync += [t.eq(0), k.eq(k + 1)]
                        with m.If(k == L):
                            m.d.comb += self.done.eq(1)
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "READ"
                    with m.Else():
                        m.d.sync += t.eq(t + 1)
                        m.next = "READ"
        return m
