"""Domain-wall Galton-board emulator (Amaranth 0.5): B boards of N rows, one ball per board per cycle.

Behaviour is defined by the twin :class:`golden.domainwall.GaltonTwin`; numbers, random-bit use,
registers and the memory map by :mod:`spec.galton`. Structure:

* **Random bits.** A :class:`hdl.prng.XorshiftBank` of ``B·Lb`` lanes; every lane word is cut into
  k-bit fields, one per row (board b, row i: lane ``b·Lb + ⌊i/F⌋``, field ``i mod F``). All lanes
  step once per generated ball — and only then — so ball n always sees the PRNG's (n+1)-th
  outputs, whatever the stalls. After reset or a reseed the bank is stepped once ("primed")
  before the first ball, so the seeded state itself is never used as random bits.
* **Boards.** Per board a combinational chain of N rows: row i selects the threshold of the
  junction at the current position (and, with chirality memory, of the table named by the
  previous turn) and turns right iff ``r < t``. Thresholds are registers (k + 1 bits, reset
  ``2^(k−1)``), written and read back through the ``cmd``/``rsp`` port.
* **Output.** A registered ``out`` beat carries all B bins; a new ball is generated when the
  register is empty or is being emptied (``valid & ready``), so at full rate one beat per cycle
  and under back-pressure no ball is lost or repeated. In *histogram-only* mode (``REG_CTRL``
  bit 1) balls are generated every cycle and only counted.
* **Histograms.** One :class:`amaranth.lib.memory.Memory` per board (N + 1 counters of
  ``bin_bits``, saturating), updated read-modify-write in two cycles; the update read port is
  transparent to the write port, so back-to-back balls in one bin count correctly. CLEAR (and
  every reset) zeroes them in N + 1 cycles. A second read port serves host reads.

Ports: ``out`` (bins per beat), ``cmd``/``rsp`` (threshold writes/reads, histogram reads; served
only while idle), ``reg`` (control/status registers: the same signature as the EP core's).
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.galton import (
    CMD_CLEAR,
    CMD_START,
    CMD_STOP,
    CTRL_CORRELATED,
    CTRL_HIST_ONLY,
    REG_BALLS,
    REG_BITS,
    REG_CMD,
    REG_CTRL,
    REG_DONE,
    REG_REMAINING,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    GaltonSpec,
)

from .prng import XorshiftBank
from .regport import RegSignature


def _bit(mask: int) -> int:
    return mask.bit_length() - 1


class GaltonBoard(wiring.Component):
    """B Galton boards with programmable junction probabilities, chirality memory and histograms.

    Parameters
    ----------
    spec : GaltonSpec

    Members
    -------
    out : Out(stream.Signature(StructLayout({"bins": ArrayLayout(bin_index_bits, B)})))
        One beat per ball slot: board b's bin index in ``bins[b]`` (``spec.out_fields()``).
    cmd : In(stream.Signature(StructLayout({"data", "addr", "write"})))
        Memory command (``spec.cmd_fields()``): write a threshold, or read a threshold or a
        histogram counter (``spec.memory_map()``). Accepted only while idle (not running, not
        clearing) with no response outstanding.
    rsp : Out(stream.Signature(StructLayout({"data"})))
        One response per read command.
    reg : In(RegSignature())
        ``REG_*`` of :mod:`spec.galton`. CTRL, SEED and BALLS are written only while idle; CMD
        START/STOP at any time (STOP wins over START in one write), CLEAR only while not running.

    Raises
    ------
    TypeError
        If ``spec`` is not a :class:`spec.galton.GaltonSpec`.
    """

    def __init__(self, spec: GaltonSpec):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.spec = spec
        self.out_layout = data.StructLayout({"bins": data.ArrayLayout(unsigned(spec.bin_index_bits), spec.boards)})
        self.cmd_layout = data.StructLayout({"data": unsigned(spec.data_bits), "addr": unsigned(spec.addr_bits),
                                             "write": unsigned(1)})
        self.rsp_layout = data.StructLayout({"data": unsigned(spec.data_bits)})
        super().__init__({
            "out": Out(stream.Signature(self.out_layout)),
            "cmd": In(stream.Signature(self.cmd_layout)),
            "rsp": Out(stream.Signature(self.rsp_layout)),
            "reg": In(RegSignature()),
        })

    def elaborate(self, platform):  # noqa: C901  (one datapath, kept in one place)
        s = self.spec
        m = Module()
        N, B, k, w = s.rows, s.boards, s.prob_bits, s.prng_width
        F, Lb = s.fields_per_word, s.lanes_per_board
        TB, TMAX = s.threshold_bits, s.threshold_max
        HB, HMAX = s.bin_bits, s.counter_max
        IB = s.bin_index_bits
        CMAX = (1 << s.count_bits) - 1

        m.submodules.prng = prng = XorshiftBank(s.prng_spec())

        # ---------------- registers ----------------
        r_corr = Signal(init=int(s.correlated))
        r_hist_only = Signal()
        r_seed = Signal(REG_BITS, init=s.seed)
        r_balls = Signal(s.count_bits)
        running = Signal()
        limited = Signal()
        remaining = Signal(s.count_bits)
        done = Signal(s.count_bits)
        primed = Signal()
        clearing = Signal(init=1)  # every reset clears the histograms (memories have no reset)
        clr_addr = Signal(range(N + 1))
        thr = [[[Signal(TB, init=1 << (k - 1), name=f"thr{c}_{i}_{j}") for j in range(i + 1)] for i in range(N)]
               for c in range(2)]

        # ---------------- the boards (combinational) ----------------
        def field(b: int, i: int):
            lane = b * Lb + i // F
            lo = lane * w + (i % F) * k
            return prng.out[lo:lo + k]

        bins_now = []
        for b in range(B):
            pos = Signal(1, name=f"b{b}_pos0")  # always 0: the entry
            last = Signal(name=f"b{b}_last0")  # row 0 uses table 0
            for i in range(N):
                t_left = Array(thr[0][i])[pos]
                t_right = Array(thr[1][i])[pos]
                t = Signal(TB, name=f"b{b}_t{i}")
                m.d.comb += t.eq(Mux(r_corr & last, t_right, t_left) if i else t_left)
                right = Signal(name=f"b{b}_right{i}")
                m.d.comb += right.eq(field(b, i) < t)
                nxt = Signal(range(i + 2), name=f"b{b}_pos{i + 1}")
                m.d.comb += nxt.eq(pos + right)
                pos, last = nxt, right
            bins_now.append(pos)

        # ---------------- generation control ----------------
        out_valid = Signal()
        out_bins = Signal(self.out_layout)
        m.d.comb += [self.out.valid.eq(out_valid), self.out.payload.eq(out_bins)]
        idle = ~running & ~clearing
        gen_ok = running & ~clearing & prng.ready & primed
        load = Signal()
        m.d.comb += load.eq(gen_ok & (r_hist_only | ~out_valid | self.out.ready))
        prime = prng.ready & ~primed
        m.d.comb += [prng.en.eq(load | prime), prng.seed.eq(self.reg.wdata)]
        with m.If(prime):
            m.d.sync += primed.eq(1)
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(load & ~r_hist_only):
            m.d.sync += [out_valid.eq(1)] + [out_bins.bins[b].eq(bins_now[b]) for b in range(B)]
        with m.If(load):
            m.d.sync += done.eq(Mux(done == CMAX, done, done + 1))
            with m.If(limited):
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(remaining == 1):
                    m.d.sync += running.eq(0)

        # ---------------- registers: writes ----------------
        with m.If(self.reg.we):
            with m.Switch(self.reg.addr):
                with m.Case(REG_CTRL):
                    with m.If(idle):
                        m.d.sync += [r_corr.eq(self.reg.wdata[_bit(CTRL_CORRELATED)]),
                                     r_hist_only.eq(self.reg.wdata[_bit(CTRL_HIST_ONLY)])]
                with m.Case(REG_SEED):
                    with m.If(idle):
                        m.d.comb += prng.load.eq(1)
                        m.d.sync += [r_seed.eq(self.reg.wdata), primed.eq(0)]
                with m.Case(REG_BALLS):
                    with m.If(idle):
                        m.d.sync += r_balls.eq(self.reg.wdata)
                with m.Case(REG_CMD):
                    with m.If(self.reg.wdata[_bit(CMD_START)] & ~running):
                        m.d.sync += [running.eq(1), limited.eq(r_balls != 0), remaining.eq(r_balls)]
                    with m.If(self.reg.wdata[_bit(CMD_STOP)]):
                        m.d.sync += [running.eq(0), remaining.eq(0)]
                    with m.If(self.reg.wdata[_bit(CMD_CLEAR)] & ~running):
                        m.d.sync += [clearing.eq(1), clr_addr.eq(0), done.eq(0)]

        # ---------------- registers: reads (combinational) ----------------
        seeding = ~(prng.ready & primed)
        with m.Switch(self.reg.addr):
            with m.Case(REG_CTRL):
                m.d.comb += self.reg.rdata.eq(r_corr * CTRL_CORRELATED | r_hist_only * CTRL_HIST_ONLY)
            with m.Case(REG_SEED):
                m.d.comb += self.reg.rdata.eq(r_seed)
            with m.Case(REG_BALLS):
                m.d.comb += self.reg.rdata.eq(r_balls)
            with m.Case(REG_STATUS):
                m.d.comb += self.reg.rdata.eq(running | (clearing << 1) | (seeding << 2) | (out_valid << 3))
            with m.Case(REG_DONE):
                m.d.comb += self.reg.rdata.eq(done)
            with m.Case(REG_REMAINING):
                m.d.comb += self.reg.rdata.eq(remaining)
            with m.Case(REG_SPEC_ID):
                m.d.comb += self.reg.rdata.eq(s.spec_id)

        # ---------------- histograms ----------------
        h_valid = Signal()
        h_bin = [Signal(range(N + 1), name=f"h_bin{b}") for b in range(B)]
        m.d.sync += h_valid.eq(load)
        with m.If(load):
            m.d.sync += [h_bin[b].eq(bins_now[b]) for b in range(B)]
        host_rd = []
        cmd_addr = self.cmd.payload.addr
        for b in range(B):
            mem = memory.Memory(shape=unsigned(HB), depth=N + 1, init=[])
            m.submodules[f"hist{b}"] = mem
            wp = mem.write_port()
            rmw = mem.read_port(transparent_for=(wp,))
            host = mem.read_port()
            m.d.comb += [rmw.addr.eq(bins_now[b]), host.addr.eq(cmd_addr[:IB])]
            with m.If(h_valid):
                m.d.comb += [wp.addr.eq(h_bin[b]), wp.data.eq(Mux(rmw.data == HMAX, HMAX, rmw.data + 1)),
                             wp.en.eq(1)]
            with m.If(clearing):
                m.d.comb += [wp.addr.eq(clr_addr), wp.data.eq(0), wp.en.eq(1)]
            host_rd.append(host.data)
        with m.If(clearing):
            m.d.sync += clr_addr.eq(clr_addr + 1)
            with m.If(clr_addr == N):
                m.d.sync += [clearing.eq(0), clr_addr.eq(0)]

        # ---------------- cmd / rsp: thresholds and histogram read-back ----------------
        rsp_pending = Signal()
        rsp_valid = Signal()
        rsp_word = Signal(s.data_bits)
        rsp_hist = Signal()
        rsp_board = Signal(max(1, s.board_bits))
        rsp_hist_ok = Signal()
        rsp_thr = Signal(TB)
        m.d.comb += [self.cmd.ready.eq(idle & ~h_valid & ~rsp_pending & ~rsp_valid),
                     self.rsp.valid.eq(rsp_valid), self.rsp.payload.data.eq(rsp_word)]
        accept = self.cmd.valid & self.cmd.ready
        is_hist = cmd_addr[s.region_bits]
        offset = cmd_addr[:s.region_bits]
        wdata = self.cmd.payload.data
        thr_wr = Signal(TB)
        m.d.comb += thr_wr.eq(Mux(wdata > TMAX, TMAX, wdata))
        thr_rd = Signal(TB)
        thr_we = Signal()
        m.d.comb += thr_we.eq(accept & self.cmd.payload.write & ~is_hist)
        with m.Switch(offset):
            for c in range(2):
                for i in range(N):
                    for j in range(i + 1):
                        with m.Case(s.threshold_addr(c, i, j)):
                            m.d.comb += thr_rd.eq(thr[c][i][j])
        # one comparator per register, not one switch per register (keeps the Verilog linear in N²)
        for c in range(2):
            for i in range(N):
                for j in range(i + 1):
                    with m.If(thr_we & (offset == s.threshold_addr(c, i, j))):
                        m.d.sync += thr[c][i][j].eq(thr_wr)
        hist_board = cmd_addr[IB:s.region_bits]
        hist_bin = cmd_addr[:IB]
        with m.If(accept & ~self.cmd.payload.write):
            m.d.sync += [rsp_pending.eq(1), rsp_hist.eq(is_hist), rsp_thr.eq(thr_rd),
                         rsp_board.eq(hist_board), rsp_hist_ok.eq((hist_board < B) & (hist_bin <= N))]
        with m.If(rsp_pending):
            hist_word = Array(host_rd)[rsp_board] if B > 1 else host_rd[0]
            m.d.sync += [rsp_pending.eq(0), rsp_valid.eq(1),
                         rsp_word.eq(Mux(rsp_hist, Mux(rsp_hist_ok, hist_word, 0), rsp_thr))]
        with m.If(self.rsp.valid & self.rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        return m
