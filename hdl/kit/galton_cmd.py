"""Galton part: the ``cmd``/``rsp`` memory port (docs/galton.md, "Components"; twin pieces
:meth:`golden.domainwall.twin.GaltonTwin.write` / :meth:`~golden.domainwall.twin.GaltonTwin.read`)."""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.galton import GaltonSpec


def cmd_layout(spec: GaltonSpec) -> data.StructLayout:
    """The ``cmd`` payload (``spec.cmd_fields()``)."""
    return data.StructLayout({"data": unsigned(spec.data_bits), "addr": unsigned(spec.addr_bits), "write": unsigned(1)})


def rsp_layout(spec: GaltonSpec) -> data.StructLayout:
    """The ``rsp`` payload."""
    return data.StructLayout({"data": unsigned(spec.data_bits)})


class GaltonCommands(wiring.Component):
    """Threshold writes and reads, histogram reads: the command port, with a copy of the thresholds.

    Contract (twin pieces: ``GaltonTwin.write`` / ``read``; ``spec.memory_write_error``):

    * ``cmd.ready`` only while ``idle``, not ``tinit``, no threshold write pending (``t_we``), no
      histogram update (``hist_busy``) and no response pending or waiting.
    * A write of a threshold above 2^k raises ``refused`` in the accepting cycle and changes nothing;
      another threshold write is registered and applied the cycle after (``t_we``/``t_off``/``t_data``,
      for the threshold registers; the copy memory is written then too); histogram and unused
      addresses are ignored.
    * A read: the response (``rsp``, held until taken) comes 2 cycles after acceptance: a threshold from
      the copy memory, board b's counter from ``hist_data`` (addressed on ``hist_addr`` in the accepting
      cycle), 0 for an unused address.
    * ``tinit`` (after reset): the copy is rewritten with the reset values, one word per cycle,
      2^(2·row_bits+1) cycles.

    Latency: writes applied 1 cycle after acceptance; read responses 2 cycles. One command at a time.

    Members
    -------
    cmd : In(stream). rsp : Out(stream). idle, hist_busy : In(1). hist_data : In(ArrayLayout(bin_bits, B)).
    hist_addr : Out(bin_index_bits). t_we, refused : Out(1). t_off : Out(region_bits). t_data : Out(k + 1).
    tinit : Out(1, init 1).
    """

    def __init__(self, spec: GaltonSpec):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.spec = spec
        super().__init__({
            "cmd": In(stream.Signature(cmd_layout(spec))), "rsp": Out(stream.Signature(rsp_layout(spec))),
            "idle": In(1), "hist_busy": In(1), "hist_data": In(data.ArrayLayout(unsigned(spec.bin_bits), spec.boards)),
            "hist_addr": Out(spec.bin_index_bits), "t_we": Out(1), "t_off": Out(spec.region_bits),
            "t_data": Out(spec.threshold_bits), "refused": Out(1), "tinit": Out(1, init=1),
        })

    def elaborate(self, platform):
        s, m = self.spec, Module()
        N, B, k, TB, TMAX, IB, RB = s.rows, s.boards, s.prob_bits, s.threshold_bits, s.threshold_max, \
            s.bin_index_bits, s.row_bits
        # a copy of the thresholds in a memory at their own addresses serves the host's reads; it has
        # no reset, so every reset rewrites it with the reset values (2^TA cycles, shown as tinit)
        TA = 2 * RB + 1

        def t_used(a):  # a threshold address that holds one (j <= i < N)
            row, j = a[RB : 2 * RB], a[:RB]
            in_map = (a[TA:] == 0) if len(a) > TA else 1
            return in_map & (row < N) & (j <= row)

        def t_reset(a: int) -> int:
            row, j = (a >> RB) & ((1 << RB) - 1), a & ((1 << RB) - 1)
            return 1 << (k - 1) if j <= row < N else 0

        m.submodules.thr_copy = t_mem = memory.Memory(shape=unsigned(TB), depth=1 << TA,
                                                      init=[t_reset(a) for a in range(1 << TA)])
        t_wr, t_rd = t_mem.write_port(), t_mem.read_port()
        tinit, tinit_addr, w_pending = self.tinit, Signal(TA), self.t_we
        rsp_pending, rsp_valid, rsp_word = Signal(), Signal(), Signal(s.data_bits)
        rsp_hist, rsp_board, rsp_hist_ok, rsp_thr_ok = Signal(), Signal(max(1, s.board_bits)), Signal(), Signal()
        m.d.comb += [
            self.cmd.ready.eq(self.idle & ~tinit & ~w_pending & ~self.hist_busy & ~rsp_pending & ~rsp_valid),
            self.rsp.valid.eq(rsp_valid), self.rsp.payload.data.eq(rsp_word),
        ]
        accept = self.cmd.valid & self.cmd.ready
        cmd_addr = self.cmd.payload.addr
        is_hist, offset, wdata = cmd_addr[s.region_bits], cmd_addr[: s.region_bits], self.cmd.payload.data
        m.d.comb += self.hist_addr.eq(cmd_addr[:IB])
        thr_wr, thr_we = Signal(TB), Signal()
        m.d.comb += thr_wr.eq(Mux(wdata > TMAX, TMAX, wdata))
        thr_bad = t_used(offset) & (wdata > TMAX)  # spec.memory_write_error: refused and flagged, not clamped
        m.d.comb += [thr_we.eq(accept & self.cmd.payload.write & ~is_hist & ~thr_bad),
                     self.refused.eq(accept & self.cmd.payload.write & ~is_hist & thr_bad)]
        # a write is registered, then decoded the next cycle (t_we holds cmd and generation):
        # the decode for N(N+1) registers starts at a flip-flop, not behind the command's source
        w_off, w_data = Signal(s.region_bits, reset_less=True), Signal(TB, reset_less=True)
        m.d.sync += w_pending.eq(thr_we)
        with m.If(thr_we):
            m.d.sync += [w_off.eq(offset), w_data.eq(thr_wr)]
        # reads come from the copy (no N(N+1)-way multiplexer): written with the registers
        m.d.comb += [self.t_off.eq(w_off), self.t_data.eq(w_data), t_rd.addr.eq(offset[:TA]),
                     t_wr.addr.eq(w_off[:TA]), t_wr.data.eq(w_data), t_wr.en.eq(w_pending & t_used(w_off))]
        with m.If(tinit):  # after a reset: the copy back to the registers' reset values
            m.d.comb += [t_wr.addr.eq(tinit_addr), t_wr.data.eq(Mux(t_used(tinit_addr), 1 << (k - 1), 0)),
                         t_wr.en.eq(1)]
            m.d.sync += tinit_addr.eq(tinit_addr + 1)
            with m.If(tinit_addr == (1 << TA) - 1):
                m.d.sync += tinit.eq(0)
        hist_board, hist_bin = cmd_addr[IB : s.region_bits], cmd_addr[:IB]
        with m.If(accept & ~self.cmd.payload.write):
            m.d.sync += [rsp_pending.eq(1), rsp_hist.eq(is_hist), rsp_thr_ok.eq(t_used(offset)),
                         rsp_board.eq(hist_board), rsp_hist_ok.eq((hist_board < B) & (hist_bin <= N))]
        with m.If(rsp_pending):
            hist_word = Array(self.hist_data[b] for b in range(B))[rsp_board] if B > 1 else self.hist_data[0]
            m.d.sync += [rsp_pending.eq(0), rsp_valid.eq(1),
                         rsp_word.eq(Mux(rsp_hist, Mux(rsp_hist_ok, hist_word, 0), Mux(rsp_thr_ok, t_rd.data, 0)))]
        with m.If(self.rsp.valid & self.rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        return m
