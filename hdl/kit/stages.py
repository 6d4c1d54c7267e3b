"""Kit part: the micro-op's stage registers and the pipeline's occupancy (docs/ep-core.md, "Components";
twin piece: none, timing only — the whole-core cycle counts of :class:`golden.ep_core.EPCoreTwin`'s tests)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out


class StageRegs(wiring.Component):
    """The micro-op from issue (S0) to S3, the core memories' read addresses K cycles late, and ``occupied``.

    Contract:

    * ``addr_k`` is ``addr`` (the core memories' read addresses and ``run``; any StructLayout) delayed
      by ``K`` cycles (the weight store's read stages; ``K = 0``: ``addr`` itself), so the core's words
      arrive beside the weight store's.
    * ``op`` (S0) is delayed by K cycles, then registered into ``op0r`` (the memory data's register
      stage), then ``op1`` (S1: registered again with ``register_reads``, else ``op0r`` itself — the
      read data then feeds S1 straight from the memories), ``op2`` (S2) and ``op3`` (S3), one register
      each.
    * ``occupied`` (combinational): ``run``, any valid op in those registers (``run`` of the K delayed
      addresses, the K-th delayed op, ``op0r`` … ``op3``) or any bit of ``more`` (the later paths'
      valid bits): a drain waits until it is low.

    Latency: ``op3`` = ``op`` of K + 3 cycles before (K + 4 with ``register_reads``). No back-pressure.

    Parameters
    ----------
    op_layout : the core's micro-op StructLayout (with ``valid``). addr_layout : StructLayout with a
    ``run`` field. K : int ≥ 0. register_reads : bool. more : int — width of ``more`` (≥ 1).

    Members
    -------
    op : In(op_layout's bits). addr : In(addr_layout's bits). more : In(more). addr_k : Out(addr_layout's bits).
    op0r, op1, op2, op3 : Out(op_layout's bits) (:meth:`views`: as Views). occupied : Out(1).
    """

    def __init__(self, op_layout: data.StructLayout, addr_layout: data.StructLayout, K: int, register_reads: bool,
                 more: int):
        if "valid" not in op_layout.members or "run" not in addr_layout.members:
            raise ValueError("op_layout needs a valid field and addr_layout a run field")
        if isinstance(K, bool) or not isinstance(K, int) or K < 0 or not isinstance(register_reads, bool) or more < 1:
            raise ValueError(f"K must be an int >= 0, register_reads a bool, more >= 1; not {K!r}, "
                             f"{register_reads!r}, {more!r}")
        self.K, self.register_reads, self.op_layout, self.addr_layout = K, register_reads, op_layout, addr_layout
        # plain ports (the layouts' bits): a View port would name every field again in this module's netlist
        ob, ab = op_layout.size, addr_layout.size
        super().__init__({"op": In(ob), "addr": In(ab), "more": In(more), "addr_k": Out(ab), "op0r": Out(ob),
                          "op1": Out(ob), "op2": Out(ob), "op3": Out(ob), "occupied": Out(1)})

    def views(self) -> tuple:
        """``addr_k``, ``op0r``, ``op1``, ``op2``, ``op3`` as Views of their layouts."""
        return (data.View(self.addr_layout, self.addr_k),) + tuple(
            data.View(self.op_layout, x) for x in (self.op0r, self.op1, self.op2, self.op3))

    def elaborate(self, platform):
        m = Module()
        addr, op0k = self.addr, self.op
        run, valid = self.addr_layout["run"].offset, self.op_layout["valid"].offset  # bit positions
        busy = [self.addr[run], self.more.any()]
        for i in range(self.K):
            a, r = Signal.like(self.addr, name=f"raddr_k{i + 1}"), Signal.like(self.op, name=f"op0k{i + 1}")
            m.d.sync += [a.eq(addr), r.eq(op0k)]
            addr, op0k = a, r
            busy.append(a[run])
        if self.K:
            busy.append(op0k[valid])
        m.d.comb += self.addr_k.eq(addr)
        m.d.sync += [self.op0r.eq(op0k), self.op2.eq(self.op1), self.op3.eq(self.op2)]
        m.d["sync" if self.register_reads else "comb"] += self.op1.eq(self.op0r)
        busy += [self.op0r[valid], self.op1[valid], self.op2[valid], self.op3[valid]]
        occupied = busy[0]
        for v in busy[1:]:
            occupied = occupied | v
        m.d.comb += self.occupied.eq(occupied)
        return m
