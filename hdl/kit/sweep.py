"""Kit part: the sweep engine of the EP core (docs/ep-core.md, "Components"; twin piece
:meth:`spec.ep_core.EPCoreSpec.weight_read_schedule`)."""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


@dataclass(frozen=True)
class Sweep:
    """Static description of one sweep (one table entry of the sequencer).

    ``outer`` × ``inner`` positions (× 2 cycles each when ``two_cycle``); ``columns``: the weight
    address walks a connection's words column by column (tile t, row j: ``j·T_conn + t``), else
    row by row (``0, 1, 2, …``)."""

    kind: int
    conn: int  # weight connection (or the layer-bias connection of a bias update)
    layer: int  # layer written, or 1 for the d pass
    outer: int
    inner: int
    two_cycle: bool = False
    columns: bool = False


class SweepEngine(wiring.Component):
    """Walks one sweep of a static table, one position per cycle.

    Contract (twin piece: :meth:`spec.ep_core.EPCoreSpec.weight_read_schedule`, the weight words a
    sample's sweeps read in issue order — ``rows(l)`` for a row sweep, ``cols(l)`` for a column sweep):

    * ``start`` with ``index`` (a table entry) in cycle n: from cycle n + 1 on ``run`` is high and
      every cycle issues one position: ``outer`` 0 … ``outer − 1`` (slow), ``inner`` 0 … ``inner − 1``
      (fast), each position twice with ``sub`` 0 then 1 for a ``two_cycle`` sweep. ``o_w``/``o_l``
      and ``i_w``/``i_l`` are ``outer``/``inner`` split as ``word·P + lane``; ``waddr`` is the weight
      word: ``outer·T + inner`` in row order (the core's row sweeps have ``inner`` = T tiles), or
      ``inner·T + outer`` in column order (T = ``tiles[conn]``). ``done`` marks the last position;
      ``run`` is low from the next cycle on, and the counters are 0 again.
    * ``kind``, ``conn``, ``layer`` are the running entry's; ``first``/``last`` say ``inner`` is
      0 / its last value.
    * A ``start`` while ``run`` is high restarts (the core starts only when ``run`` is low).

    Latency: the first position 1 cycle after ``start``; a sweep takes ``outer·inner·(1 + two_cycle)``
    cycles, back to back with the next ``start`` in its ``done`` cycle. No back-pressure.

    Parameters
    ----------
    table : list of :class:`Sweep`. lanes : int — P. tiles : list — T per connection (words per row).
    words : int — the largest connection's words (``waddr`` is ``range(words + 1)``).

    Members
    -------
    start : In(1). index : In(range(len(table))). run, sub, done, first, last : Out(1).
    outer, inner, o_w, o_l, i_w, i_l, waddr, kind, conn, layer : Out(unsigned).
    """

    def __init__(self, table: list[Sweep], lanes: int, tiles: list[int], words: int):
        if not table or not all(isinstance(d, Sweep) for d in table):
            raise ValueError(f"table must be a non-empty list of Sweep, not {table!r}")
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be an integer >= 1, not {lanes!r}")
        for d in table:
            if d.outer < 1 or d.inner < 1 or not 0 <= d.conn < len(tiles):
                raise ValueError(f"sweep {d} needs outer, inner >= 1 and a connection in 0..{len(tiles) - 1}")
        if isinstance(words, bool) or not isinstance(words, int) or words < max(d.outer * d.inner for d in table):
            raise ValueError(f"words must be an integer >= every sweep's outer·inner, not {words!r}")
        self.table, self.lanes, self.tiles = list(table), lanes, list(tiles)
        span = max(tiles) + 1

        def rng(name):
            return range(max(2, max(getattr(d, name) for d in table) + 1))

        super().__init__({
            "start": In(1), "index": In(range(len(table))),
            "run": Out(1), "sub": Out(1), "done": Out(1), "first": Out(1), "last": Out(1),
            "outer": Out(range(max(d.outer for d in table) + 1)), "inner": Out(range(max(d.inner for d in table) + 1)),
            "o_w": Out(range(span)), "o_l": Out(range(lanes)), "i_w": Out(range(span)), "i_l": Out(range(lanes)),
            "waddr": Out(range(words + 1)), "kind": Out(3), "conn": Out(rng("conn")), "layer": Out(rng("layer")),
        })

    def elaborate(self, platform):
        m = Module()
        P, table = self.lanes, self.table
        sw = Signal(range(len(table)))  # the running entry
        outer_max, inner_max = Signal.like(self.outer), Signal.like(self.inner)
        two, columns = Signal(), Signal()
        tstride = Signal(range(max(self.tiles) + 1))  # column order: the step from row j to j + 1
        with m.Switch(sw):
            for idx, d in enumerate(table):
                with m.Case(idx):
                    m.d.comb += [self.kind.eq(d.kind), self.conn.eq(d.conn), self.layer.eq(d.layer),
                                 outer_max.eq(d.outer - 1), inner_max.eq(d.inner - 1), two.eq(int(d.two_cycle)),
                                 columns.eq(int(d.columns)), tstride.eq(self.tiles[d.conn])]
        inner_last = (self.inner == inner_max) & (~two | self.sub)
        outer_last = self.outer == outer_max
        m.d.comb += [self.done.eq(self.run & inner_last & outer_last), self.first.eq(self.inner == 0),
                     self.last.eq(self.inner == inner_max)]
        outer, inner, waddr = self.outer, self.inner, self.waddr
        o_w, o_l, i_w, i_l = self.o_w, self.o_l, self.i_w, self.i_l
        with m.If(self.run):
            with m.If(two & ~self.sub):
                m.d.sync += self.sub.eq(1)
            with m.Else():
                m.d.sync += self.sub.eq(0)
                with m.If(inner_last):
                    m.d.sync += [inner.eq(0), i_w.eq(0), i_l.eq(0)]
                    with m.If(outer_last):
                        m.d.sync += [self.run.eq(0), outer.eq(0), o_w.eq(0), o_l.eq(0), waddr.eq(0)]
                    with m.Else():
                        m.d.sync += outer.eq(outer + 1)
                        _advance_split(m, o_w, o_l, P)
                        with m.If(columns):
                            m.d.sync += waddr.eq(outer + 1)
                        with m.Else():
                            m.d.sync += waddr.eq(waddr + 1)
                with m.Else():
                    m.d.sync += inner.eq(inner + 1)
                    _advance_split(m, i_w, i_l, P)
                    with m.If(columns):
                        m.d.sync += waddr.eq(waddr + tstride)
                    with m.Else():
                        m.d.sync += waddr.eq(waddr + 1)
        with m.If(self.start):
            m.d.sync += [sw.eq(self.index), self.run.eq(1), outer.eq(0), inner.eq(0), o_w.eq(0), o_l.eq(0),
                         i_w.eq(0), i_l.eq(0), self.sub.eq(0), waddr.eq(0)]
        return m


def _advance_split(m: Module, word: Signal, lane: Signal, P: int) -> None:
    """Step a position's (word, lane) split by one: lane wraps at P into the next word."""
    with m.If(lane == P - 1):
        m.d.sync += [lane.eq(0), word.eq(word + 1)]
    with m.Else():
        m.d.sync += lane.eq(lane + 1)
