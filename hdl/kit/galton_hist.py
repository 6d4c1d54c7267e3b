"""Galton part: the boards' histogram memories (docs/galton.md, "Components"; twin piece
:attr:`golden.domainwall.twin.GaltonTwin.hist`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from spec.galton import GaltonSpec


class Histograms(wiring.Component):
    """One memory per board of N + 1 saturating ``bin_bits`` counters, updated read-modify-write.

    Contract (twin piece: ``GaltonTwin.hist``, ``balls`` and ``clear``):

    * ``commit`` (a generated ball, its bins on ``bins``): its bins are registered and their counters
      read (``busy`` from the next cycle), then written back +1 the cycle after (saturating at
      ``2^bin_bits − 1``); the read port is transparent to the write port, so back-to-back balls in one
      bin count correctly. A ball per cycle is taken.
    * ``clearing`` is high after reset and from the cycle after ``clear`` (ignored while clearing): the
      counters are zeroed one address per cycle, N + 1 cycles; a clear overrides a pending increment.
    * Host reads: ``host_data[b]`` is board b's counter at ``host_addr`` of the cycle before.

    Latency: an increment lands 2 cycles after ``commit``; host reads 1 cycle; clearing N + 1 cycles.

    Members
    -------
    commit, clear : In(1). bins : In(ArrayLayout(bin_index_bits, B)). host_addr : In(bin_index_bits).
    host_data : Out(ArrayLayout(bin_bits, B)). clearing : Out(1, init 1). busy : Out(1).
    ``h_wr`` and ``taps`` (per board: read data, write data) for the formal harness.
    """

    def __init__(self, spec: GaltonSpec):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.spec = spec
        self.h_wr = Signal()
        IB, B = spec.bin_index_bits, spec.boards
        # the memories and their ports (write, update read transparent to it, host read) exist before
        # elaboration: the formal harness elaborates only the board and reads ``taps``
        self.mems = [memory.Memory(shape=unsigned(spec.bin_bits), depth=spec.rows + 1, init=[]) for _ in range(B)]
        self.ports = []
        for mem in self.mems:
            wp = mem.write_port()
            self.ports.append((wp, mem.read_port(transparent_for=(wp,)), mem.read_port()))
        self.taps = [(rmw.data, wp.data) for wp, rmw, _ in self.ports]
        super().__init__({
            "commit": In(1), "clear": In(1), "bins": In(data.ArrayLayout(unsigned(IB), B)), "host_addr": In(IB),
            "host_data": Out(data.ArrayLayout(unsigned(spec.bin_bits), B)), "clearing": Out(1, init=1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        s, m = self.spec, Module()
        N, B, HB = s.rows, s.boards, s.bin_bits
        clearing, clr_addr = self.clearing, Signal(range(N + 1))
        # a generated ball's bin is registered (h_rd: its counter is read), then written back +1 (h_wr)
        h_rd, h_wr = Signal(), self.h_wr
        h_bin_rd = [Signal(range(N + 1), name=f"h_bin_rd{b}", reset_less=True) for b in range(B)]
        h_bin_wr = [Signal(range(N + 1), name=f"h_bin_wr{b}", reset_less=True) for b in range(B)]
        m.d.sync += [h_rd.eq(self.commit), h_wr.eq(h_rd)] + [h_bin_wr[b].eq(h_bin_rd[b]) for b in range(B)]
        m.d.comb += self.busy.eq(h_rd | h_wr)
        with m.If(self.commit):
            m.d.sync += [h_bin_rd[b].eq(self.bins[b]) for b in range(B)]
        for b, (wp, rmw, host) in enumerate(self.ports):
            m.submodules[f"hist{b}"] = self.mems[b]
            m.d.comb += [rmw.addr.eq(h_bin_rd[b]), host.addr.eq(self.host_addr), self.host_data[b].eq(host.data)]
            inc = Signal(HB + 1, name=f"h_inc{b}")  # the carry out says the counter was at its maximum
            m.d.comb += inc.eq(rmw.data + 1)
            with m.If(h_wr):
                m.d.comb += [wp.addr.eq(h_bin_wr[b]), wp.data.eq(Mux(inc[HB], s.counter_max, inc[:HB])), wp.en.eq(1)]
            with m.If(clearing):
                m.d.comb += [wp.addr.eq(clr_addr), wp.data.eq(0), wp.en.eq(1)]
        with m.If(self.clear):
            m.d.sync += [clearing.eq(1), clr_addr.eq(0)]
        with m.If(clearing):
            m.d.sync += clr_addr.eq(clr_addr + 1)
            with m.If(clr_addr == N):
                m.d.sync += [clearing.eq(0), clr_addr.eq(0)]
        return m
