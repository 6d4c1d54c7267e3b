"""Kit part: the EP core's own memories and their read stage (docs/ep-core.md, "Components"; the
twin keeps the same data as lists: the input tiles, ``c1``, four state banks per layer, the middle
layers' partial sums and the d pass's differences)."""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from spec.ep_core import EPCoreSpec


class CoreMemories(wiring.Component):
    """The core's own memories (input ``x``, ``c1``, the states ``s1`` … ``sL``, the partial sums
    ``p2`` … ``p{L-1}``, the d pass's ``d``) and the read stage of every word S1 selects operands from
    (these memories' and the weight store's).

    Contract:

    * Memories (P elements per word): ``x`` ``tiles(0)`` words of P × ``input_bits``; ``c1`` ``tiles(1)``
      words of P × ``c1_bits``, lane-granular writes (``c1_wen`` one bit per lane); ``s{k}`` four banks
      of ``tiles(k)`` words (bank b's word t at ``b·tiles(k) + t``) of P × ``state_bits``, lane-granular;
      ``p{k}`` (1 < k < L) ``tiles(k)`` words of P × ``acc_bits(k)``; ``d`` (training) ``tiles(1)`` words
      of P × (``state_bits`` + 1). A write (``*_waddr``, ``*_wen``, ``*_wdata``) takes effect at the
      clock edge; a read of the word being written in that cycle sees the old word.
    * Reads: while ``run``, ``x`` at ``x_raddr``, ``p{k}`` and ``d`` at ``row_raddr``, ``s{k}`` at
      ``s{k}_raddr``; ``c1`` at ``c1_raddr`` always; ``s{k}_dump_en`` takes ``s{k}``'s read port for
      the state dump (``s{k}_dump_addr``; it wins over ``run``), its word on ``s{k}_rdata``. Without a
      read (``run`` low) the ports keep reading (their enables are 1 unless driven).
    * Read stage (``register_reads``): every read word ``*_q`` (the memories' and the weight store's
      ``w{l}``, ``b``, ``nz``/``neg`` for ternary weights, ``cells`` for a ternary training core) is
      registered; without it ``*_q`` is the word itself. ``b_q`` is the whole bias word in a training
      core, else the bias of lane ``b_lane`` (signed ``bias_bits``), selected before the register.

    Latency: a memory's ``*_q`` 2 cycles after its address with the read stage, 1 without; the
    weight store's words 1 cycle later than they arrive with the read stage, 0 without;
    ``s{k}_rdata`` 1 cycle after its address. One read and one write per memory and cycle.

    Parameters
    ----------
    spec : EPCoreSpec. register_reads : bool. w_bits : list[int] — the weight store's read words'
    widths (one per bank; none for a ternary inference core). b_bits : int — the store's bias word width.
    """

    def __init__(self, spec: EPCoreSpec, register_reads: bool, w_bits: list[int], b_bits: int):
        if not isinstance(spec, EPCoreSpec):
            raise TypeError(f"spec must be an EPCoreSpec, not {type(spec).__name__}")
        if not isinstance(register_reads, bool):
            raise TypeError(f"register_reads must be a bool, not {register_reads!r}")
        if not isinstance(w_bits, list | tuple) or any(not isinstance(w, int) or w < 1 for w in w_bits):
            raise ValueError(f"w_bits must be a list of widths >= 1 (empty for ternary inference), not {w_bits!r}")
        s, L, P = spec, spec.n_layers, spec.lanes
        self.spec, self.register_reads, self.n_banks = spec, register_reads, len(w_bits)
        T = [s.tiles(k) for k in range(L + 1)]
        self.widths = {"x": P * s.input_bits, "c1": P * s.c1_bits,
                       **{f"s{k}": P * s.state_bits for k in range(1, L + 1)},
                       **{f"p{k}": P * s.acc_bits(k) for k in range(2, L)}}
        self.depths = {"x": T[0], "c1": T[1], **{f"s{k}": 4 * T[k] for k in range(1, L + 1)},
                       **{f"p{k}": T[k] for k in range(2, L)}}
        if s.training:
            self.widths["d"], self.depths["d"] = P * (s.state_bits + 1), T[1]
        lane_en = {"c1"} | {f"s{k}" for k in range(1, L + 1)}
        members = {"run": In(1), "x_raddr": In(ceil_log2(T[0])), "row_raddr": In(max(1, ceil_log2(max(T[1:L] or [1])))),
                   "c1_raddr": In(ceil_log2(T[1]))}
        for name, width in self.widths.items():
            abits = ceil_log2(self.depths[name])
            members |= {f"{name}_waddr": In(abits), f"{name}_wen": In(P if name in lane_en else 1),
                        f"{name}_wdata": In(width), f"{name}_q": Out(width)}
        for k in range(1, L + 1):
            abits = ceil_log2(4 * T[k])
            members |= {f"s{k}_raddr": In(abits), f"s{k}_dump_en": In(1), f"s{k}_dump_addr": In(abits),
                        f"s{k}_rdata": Out(P * s.state_bits)}
        for l, wb in enumerate(w_bits):
            members |= {f"w{l}": In(wb), f"w{l}_q": Out(wb)}
        members |= {"b": In(b_bits), "b_lane": In(max(1, ceil_log2(P))),
                    "b_q": Out(b_bits if s.training else signed(s.bias_bits))}
        if s.weight_kind == "ternary":
            members |= {"nz": In(P), "neg": In(P), "nz_q": Out(P), "neg_q": Out(P)}
        if s.ternary_training:
            members |= {"cells": In(2 * P), "cells_q": Out(2 * P)}
        super().__init__(members)

    def elaborate(self, platform):
        s, L, P = self.spec, self.spec.n_layers, self.spec.lanes
        m = Module()
        rdom = "sync" if self.register_reads else "comb"
        rd = {}
        for name, width in self.widths.items():
            mem = memory.Memory(shape=unsigned(width), depth=self.depths[name], init=[])
            m.submodules[f"{name}mem"] = mem
            rd[name] = mem.read_port()
            gran = {"granularity": width // P} if len(getattr(self, f"{name}_wen")) == P and P > 1 else {}
            wp = mem.write_port(**gran)
            m.d.comb += [wp.addr.eq(getattr(self, f"{name}_waddr")), wp.en.eq(getattr(self, f"{name}_wen")),
                         wp.data.eq(getattr(self, f"{name}_wdata"))]
            m.d[rdom] += getattr(self, f"{name}_q").eq(rd[name].data)
        # the engine's reads (while run), then the dump's (they win), c1 always
        with m.If(self.run):
            m.d.comb += [rd["x"].addr.eq(self.x_raddr), rd["x"].en.eq(1)]
            for name in [n for n in rd if n[0] in "pd"]:
                m.d.comb += [rd[name].addr.eq(self.row_raddr), rd[name].en.eq(1)]
            for k in range(1, L + 1):
                m.d.comb += [rd[f"s{k}"].addr.eq(getattr(self, f"s{k}_raddr")), rd[f"s{k}"].en.eq(1)]
        for k in range(1, L + 1):
            m.d.comb += getattr(self, f"s{k}_rdata").eq(rd[f"s{k}"].data)
            with m.If(getattr(self, f"s{k}_dump_en")):
                m.d.comb += [rd[f"s{k}"].addr.eq(getattr(self, f"s{k}_dump_addr")), rd[f"s{k}"].en.eq(1)]
        m.d.comb += [rd["c1"].addr.eq(self.c1_raddr), rd["c1"].en.eq(1)]
        # the weight store's words
        m.d[rdom] += [getattr(self, f"w{l}_q").eq(getattr(self, f"w{l}")) for l in range(self.n_banks)]
        if s.training:  # the update reads whole bias words
            m.d[rdom] += self.b_q.eq(self.b)
        else:  # inference needs one bias per row: the lane selected before the register (P−1 lanes fewer FFs)
            lane = self.b.word_select(self.b_lane, s.bias_bits) if P > 1 else self.b[:s.bias_bits]
            m.d[rdom] += self.b_q.eq(lane.as_signed())
        if s.weight_kind == "ternary":
            m.d[rdom] += [self.nz_q.eq(self.nz), self.neg_q.eq(self.neg)]
        if s.ternary_training:
            m.d[rdom] += self.cells_q.eq(self.cells)
        return m
