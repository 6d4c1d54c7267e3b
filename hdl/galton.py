"""Domain-wall Galton-board emulator (Amaranth 0.5): B boards of N rows, one ball per board per cycle.

Behaviour is defined by the twin :class:`golden.domainwall.GaltonTwin`; numbers, random-bit use,
registers and the memory map by :mod:`spec.galton`. The rows are pipelined (a register stage
every ``rows_per_stage`` rows, default every row); that changes the latency, nothing else: the
ball stream, the histograms and every register read are the twin's. Structure:

* **Random bits.** Ball n uses every lane's (n+1)-th output (:mod:`spec.galton`); board b, row i
  reads field ``i mod F`` of lane ``b·Lb + ⌊i/F⌋``. Two copies of the lane states keep that fixed
  whatever the stalls, STOPs and ball limits:

  - the *committed* bank (:class:`hdl.prng.XorshiftBank`, seeded through its jump network) steps
    once per ball that leaves the last row (a *generated* ball: counted, histogrammed, sent), so
    it always holds the words of the next ball to be generated;
  - the *lead* state steps once per ball that enters row 0. With no ball in flight it reads as
    the committed bank's states; a ball in flight carries the fields its later rows still need.
    The entering ball's words are the lanes' output words of those states (the "**" scrambler of
    :mod:`spec.prng`, combinational before row 0: no extra cycle).

  After reset or a reseed the committed bank is stepped once ("primed") before the first ball,
  so the seeded state itself is never used as random bits.
* **Boards.** Per board, N rows: row i takes the threshold of the junction at the current
  position (and, with chirality memory, of the table named by the previous turn) and turns right
  iff ``r < t``. Between stages a register carries, per ball, a valid bit and per board the
  position, the threshold of the next row and the random fields of the rows still ahead. The
  next row's threshold is chosen in the stage before, beside its compare: both candidates (after
  a left turn junction ``pos`` of table 0, after a right turn junction ``pos + 1`` of the table
  the chirality memory names) are multiplexed from the registered position, and the turn picks
  one. So a one-row stage is a compare, an increment and a 2-way select after the register. The
  whole pipeline advances together, and only when a ball may be generated: when the ``out``
  register is empty or being emptied (``valid & ready``), or always in histogram-only mode
  (``REG_CTRL`` bit 1). So at full rate one beat per cycle, and under back-pressure nothing
  moves: no ball is lost or repeated and no random field shifts.
* **Runs.** Balls enter while running; they are generated (``REG_DONE`` +1, ``REG_REMAINING`` −1,
  the run ends at 0) only when they leave the last row, still running. Balls in flight when a run
  ends (STOP, or its ball limit reached) were never generated: they are dropped, and the lead
  state falls back to the committed bank, so the next run's first ball takes exactly the words
  the twin gives it. Registers, commands and STATUS therefore behave as with no pipeline; the
  first beat of a run comes ``latency`` cycles after its first ball enters.
* **Thresholds** are registers (k + 1 bits, reset ``2^(k−1)``), written through the
  ``cmd``/``rsp`` port only while idle (so never under a ball in flight that is kept). A copy in
  a memory at the thresholds' own addresses, written with them, serves the read-back (no
  N(N+1)-way multiplexer); after every reset it is rewritten with the reset values in
  ``2^(2·row_bits+1)`` cycles, during which ``REG_STATUS`` shows clearing and ``cmd`` waits.
* **Output.** A registered ``out`` beat carries all B bins of a generated ball; in histogram-only
  mode balls are only counted.
* **Histograms.** One :class:`amaranth.lib.memory.Memory` per board (N + 1 counters of
  ``bin_bits``, saturating), updated read-modify-write: the generated ball's bin is registered,
  its counter read, then written back +1 (the carry out of the increment saturates it); the
  update read port is transparent to the write port, so back-to-back balls in one bin count
  correctly. CLEAR (and every reset) zeroes them in N + 1 cycles. A second read port serves host
  reads.

Ports: ``out`` (bins per beat), ``cmd``/``rsp`` (threshold writes/reads, histogram reads; served
only while idle), ``reg`` (control/status registers: the same signature as the EP core's).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, unsigned
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

from .prng import XorshiftBank, output_word, xorshift_step
from .regport import RegSignature


def _bit(mask: int) -> int:
    return mask.bit_length() - 1


def pipeline_stages(spec: GaltonSpec, rows_per_stage: int = 1) -> int:
    """Pipeline registers between row 0 and the ``out`` register: ``⌈N / rows_per_stage⌉ − 1``.

    Raises
    ------
    ValueError
        If ``rows_per_stage`` is not an integer in 1 … N.
    """
    if isinstance(rows_per_stage, bool) or not isinstance(rows_per_stage, int) or not 1 <= rows_per_stage <= spec.rows:
        raise ValueError(f"rows_per_stage must be an integer in 1..{spec.rows} (rows), not {rows_per_stage!r}")
    return -(-spec.rows // rows_per_stage) - 1


class GaltonBoard(wiring.Component):
    """B Galton boards with programmable junction probabilities, chirality memory and histograms.

    Parameters
    ----------
    spec : GaltonSpec
    rows_per_stage : int
        Rows of combinational logic between pipeline registers (1 … N; default 1, a register
        after every row but the last). Changes latency and resources, never a number: the ball
        stream is the twin's for every value. ``rows_per_stage = N`` is the unpipelined chain.

    Attributes
    ----------
    stages : int
        Pipeline registers between row 0 and the ``out`` register: ``⌈N / rows_per_stage⌉ − 1``.
    latency : int
        Cycles from a ball entering row 0 to its beat on ``out``: ``stages + 1`` (also the cycles
        from a START to the first beat).

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
    ValueError
        If ``rows_per_stage`` is not an integer in 1 … N.
    """

    def __init__(self, spec: GaltonSpec, *, rows_per_stage: int = 1):
        if not isinstance(spec, GaltonSpec):
            raise TypeError(f"spec must be a GaltonSpec, not {type(spec).__name__}")
        self.stages = pipeline_stages(spec, rows_per_stage)
        self.spec = spec
        self.rows_per_stage = rows_per_stage
        self.latency = self.stages + 1
        self.out_layout = data.StructLayout({"bins": data.ArrayLayout(unsigned(spec.bin_index_bits), spec.boards)})
        self.cmd_layout = data.StructLayout(
            {"data": unsigned(spec.data_bits), "addr": unsigned(spec.addr_bits), "write": unsigned(1)}
        )
        self.rsp_layout = data.StructLayout({"data": unsigned(spec.data_bits)})
        super().__init__(
            {
                "out": Out(stream.Signature(self.out_layout)),
                "cmd": In(stream.Signature(self.cmd_layout)),
                "rsp": Out(stream.Signature(self.rsp_layout)),
                "reg": In(RegSignature()),
            }
        )

    def elaborate(self, platform):  # noqa: C901  (one datapath, kept in one place)
        s = self.spec
        m = Module()
        N, B, k, w = s.rows, s.boards, s.prob_bits, s.prng_width
        F, Lb = s.fields_per_word, s.lanes_per_board
        TB, TMAX = s.threshold_bits, s.threshold_max
        HB, HMAX = s.bin_bits, s.counter_max
        IB = s.bin_index_bits

        m.submodules.prng = prng = XorshiftBank(s.prng_spec())

        # ---------------- registers ----------------
        r_corr = Signal(init=int(s.correlated))
        r_hist_only = Signal()
        r_seed = Signal(REG_BITS, init=s.seed)
        r_balls = Signal(s.count_bits)
        write_refused = Signal()  # REG_STATUS bit 4 (sticky): a write was refused (spec.register_write_error)
        running = Signal()
        limited = Signal()
        remaining = Signal(s.count_bits)
        done = Signal(s.count_bits)
        primed = Signal()
        clearing = Signal(init=1)  # every reset clears the histograms (memories have no reset)
        clr_addr = Signal(range(N + 1))
        thr = [
            [[Signal(TB, init=1 << (k - 1), name=f"thr{c}_{i}_{j}") for j in range(i + 1)] for i in range(N)]
            for c in range(2)
        ]
        # a copy of the thresholds in a memory at their own addresses serves the host's reads; it has
        # no reset, so every reset rewrites it with the reset values (2^TA cycles, shown as clearing)
        RB = s.row_bits
        TA = 2 * RB + 1

        def t_used(a):  # a threshold address that holds one (j <= i < N)
            row, j = a[RB : 2 * RB], a[:RB]
            in_map = (a[TA:] == 0) if len(a) > TA else 1
            return in_map & (row < N) & (j <= row)

        def t_reset(a: int) -> int:
            row, j = (a >> RB) & ((1 << RB) - 1), a & ((1 << RB) - 1)
            return 1 << (k - 1) if j <= row < N else 0

        m.submodules.thr_copy = t_mem = memory.Memory(
            shape=unsigned(TB), depth=1 << TA, init=[t_reset(a) for a in range(1 << TA)]
        )
        t_wr = t_mem.write_port()
        t_rd = t_mem.read_port()
        tinit = Signal(init=1)
        tinit_addr = Signal(TA)

        # ---------------- random bits: committed bank and lead state ----------------
        P, R = self.stages, self.rows_per_stage
        w_pending = Signal()  # a threshold write is being applied
        # the bank's control from flip-flops: a SEED write loads it the next cycle, and its ready is
        # registered (so priming and generation start a cycle after the fill, off the bank's paths)
        seed_load = Signal()
        bank_ready = Signal()
        gen_ok = running & ~clearing & ~w_pending & bank_ready & primed  # a ball may enter row 0
        out_valid = Signal()
        adv = Signal()  # the pipeline (and the ball leaving it) moves this cycle
        m.d.comb += adv.eq(r_hist_only | ~out_valid | self.out.ready)
        inject = Signal()
        m.d.comb += inject.eq(adv & gen_ok)
        if P:
            empty = Signal(init=1)  # no ball in flight: the lead state is the committed bank's
            lead = Signal(len(prng.state), reset_less=True)  # datapath: meaningful only with a ball in flight
            cur = Signal(len(prng.state))  # the lane states of the ball entering row 0
            m.d.comb += cur.eq(Mux(empty, prng.state, lead))
            with m.If(inject):
                m.d.sync += lead.eq(Cat(*(xorshift_step(cur[ln * w : (ln + 1) * w], w) for ln in range(s.lanes))))
            words = Signal(len(prng.out))  # its random words: the lanes' output words (spec.prng.scramble)
            m.d.comb += words.eq(Cat(*(output_word(cur[ln * w : (ln + 1) * w], w, prng.spec.output)
                                       for ln in range(s.lanes))))
        else:
            words = prng.out

        def field(src, b: int, i: int):
            lane = b * Lb + i // F
            lo = lane * w + (i % F) * k
            return src[lo : lo + k]

        # ---------------- the boards: rows in stages of R, a register between stages ----------------
        valid = [Signal(name=f"valid{st}") for st in range(P)]  # a ball in the register after stage st
        nvalid = [Signal(name=f"nvalid{st}") for st in range(P)]
        bins_now = []
        for b in range(B):
            pos = Signal(1, name=f"b{b}_pos0")  # always 0: the entry
            last = Signal(name=f"b{b}_last0")  # row 0 uses table 0
            t_ready = None  # the row's threshold, already selected in the stage before
            fields = {i: field(words, b, i) for i in range(N)}
            for i in range(N):
                t = Signal(TB, name=f"b{b}_t{i}")
                if t_ready is not None:
                    m.d.comb += t.eq(t_ready)
                elif i:
                    m.d.comb += t.eq(Mux(r_corr & last, Array(thr[1][i])[pos], Array(thr[0][i])[pos]))
                else:
                    m.d.comb += t.eq(thr[0][0][0])
                right = Signal(name=f"b{b}_right{i}")
                m.d.comb += right.eq(fields[i] < t)
                nxt = Signal(range(i + 2), name=f"b{b}_pos{i + 1}")
                m.d.comb += nxt.eq(pos + right)
                st = i // R
                if (i + 1) % R == 0 and st < P:  # a stage ends after row i: register what goes on
                    # row i + 1's threshold is selected here, both candidates beside row i's compare:
                    # after a LEFT turn junction pos of table 0, after a RIGHT turn junction pos + 1
                    # of the table the chirality memory names
                    t_left = Array(thr[0][i + 1][: i + 1])[pos]
                    t_right = Mux(r_corr, Array(thr[1][i + 1][1:])[pos], Array(thr[0][i + 1][1:])[pos])
                    r_pos = Signal(range(i + 2), name=f"b{b}_s{st}_pos", reset_less=True)
                    r_t = Signal(TB, name=f"b{b}_s{st}_t", reset_less=True)
                    ahead = list(range(i + 1, N))
                    r_fields = Signal(k * len(ahead), name=f"b{b}_s{st}_fields", reset_less=True)
                    with m.If(adv):
                        m.d.sync += [
                            r_pos.eq(nxt),
                            r_t.eq(Mux(right, t_right, t_left)),
                            r_fields.eq(Cat(*(fields[j] for j in ahead))),
                        ]
                    fields = {j: r_fields[n * k : (n + 1) * k] for n, j in enumerate(ahead)}
                    pos, t_ready = r_pos, r_t
                else:
                    pos, last, t_ready = nxt, right, None
            bins_now.append(pos)

        # ---------------- generation control ----------------
        # a ball is generated when it leaves the last row while running (and the output may take it);
        # a run's end drops the balls still in flight (the lead state then reads the committed bank)
        arriving = valid[P - 1] if P else gen_ok
        commit = Signal()
        m.d.comb += commit.eq(adv & running & arriving)
        if P:
            with m.If(~running):
                m.d.comb += [nv.eq(0) for nv in nvalid]
            with m.Elif(adv):
                m.d.comb += [nvalid[0].eq(gen_ok)] + [nvalid[st].eq(valid[st - 1]) for st in range(1, P)]
            with m.Else():
                m.d.comb += [nv.eq(v) for nv, v in zip(nvalid, valid, strict=True)]
            m.d.sync += [v.eq(nv) for v, nv in zip(valid, nvalid, strict=True)]
            m.d.sync += empty.eq(~Cat(*nvalid).any())
        out_bins = Signal(self.out_layout, reset_less=True)  # meaningful only while out.valid
        m.d.comb += [self.out.valid.eq(out_valid), self.out.payload.eq(out_bins)]
        idle = ~running & ~clearing
        prime = bank_ready & ~primed & ~seed_load
        m.d.sync += [seed_load.eq(0), bank_ready.eq(prng.ready & ~seed_load)]
        m.d.comb += [prng.en.eq(commit | prime), prng.seed.eq(r_seed), prng.load.eq(seed_load)]
        with m.If(prime):
            m.d.sync += primed.eq(1)
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(commit & ~r_hist_only):
            m.d.sync += [out_valid.eq(1)] + [out_bins.bins[b].eq(bins_now[b]) for b in range(B)]
        done_inc = Signal(s.count_bits + 1)  # the carry out says DONE is at its maximum
        m.d.comb += done_inc.eq(done + 1)
        with m.If(commit):
            m.d.sync += done.eq(Mux(done_inc[-1], done, done_inc[:-1]))
            with m.If(limited):
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(remaining == 1):
                    m.d.sync += running.eq(0)

        # ---------------- registers: writes ----------------
        # an out-of-range write (spec.register_write_error) changes nothing and sets the sticky
        # write_refused (REG_STATUS bit 4); a write of REG_STATUS clears it
        wd = self.reg.wdata
        with m.If(self.reg.we):
            with m.Switch(self.reg.addr):
                with m.Case(REG_CTRL):
                    with m.If(wd[2:] != 0):
                        m.d.sync += write_refused.eq(1)
                    with m.Elif(idle):
                        m.d.sync += [
                            r_corr.eq(wd[_bit(CTRL_CORRELATED)]),
                            r_hist_only.eq(wd[_bit(CTRL_HIST_ONLY)]),
                        ]
                with m.Case(REG_SEED):
                    with m.If(idle):
                        m.d.sync += [r_seed.eq(wd), primed.eq(0), seed_load.eq(1)]
                with m.Case(REG_BALLS):
                    if s.count_bits < REG_BITS:
                        with m.If(wd[s.count_bits:] != 0):
                            m.d.sync += write_refused.eq(1)
                        with m.Elif(idle):
                            m.d.sync += r_balls.eq(wd)
                    else:
                        with m.If(idle):
                            m.d.sync += r_balls.eq(wd)
                with m.Case(REG_STATUS):
                    m.d.sync += write_refused.eq(0)
                with m.Case(REG_CMD):
                    with m.If(wd[3:] != 0):
                        m.d.sync += write_refused.eq(1)
                    with m.Elif(self.reg.wdata[_bit(CMD_START)] & ~running):
                        m.d.sync += [running.eq(1), limited.eq(r_balls != 0), remaining.eq(r_balls)]
                    with m.If((wd[3:] == 0) & self.reg.wdata[_bit(CMD_STOP)]):
                        m.d.sync += [running.eq(0), remaining.eq(0)]
                    with m.If((wd[3:] == 0) & self.reg.wdata[_bit(CMD_CLEAR)] & ~running):
                        m.d.sync += [clearing.eq(1), clr_addr.eq(0), done.eq(0)]
                with m.Default():  # read-only or unmapped
                    m.d.sync += write_refused.eq(1)

        # ---------------- registers: reads (combinational) ----------------
        seeding = ~(bank_ready & primed)
        with m.Switch(self.reg.addr):
            with m.Case(REG_CTRL):
                m.d.comb += self.reg.rdata.eq(r_corr * CTRL_CORRELATED | r_hist_only * CTRL_HIST_ONLY)
            with m.Case(REG_SEED):
                m.d.comb += self.reg.rdata.eq(r_seed)
            with m.Case(REG_BALLS):
                m.d.comb += self.reg.rdata.eq(r_balls)
            with m.Case(REG_STATUS):
                m.d.comb += self.reg.rdata.eq(running | ((clearing | tinit) << 1) | (seeding << 2) | (out_valid << 3)
                                              | (write_refused << 4))
            with m.Case(REG_DONE):
                m.d.comb += self.reg.rdata.eq(done)
            with m.Case(REG_REMAINING):
                m.d.comb += self.reg.rdata.eq(remaining)
            with m.Case(REG_SPEC_ID):
                m.d.comb += self.reg.rdata.eq(s.spec_id)

        # ---------------- histograms ----------------
        # a generated ball's bin is registered (h_rd: its counter is read), then written back +1 (h_wr)
        h_rd = Signal()
        h_wr = Signal()
        h_bin_rd = [Signal(range(N + 1), name=f"h_bin_rd{b}", reset_less=True) for b in range(B)]
        h_bin_wr = [Signal(range(N + 1), name=f"h_bin_wr{b}", reset_less=True) for b in range(B)]
        m.d.sync += [h_rd.eq(commit), h_wr.eq(h_rd)] + [h_bin_wr[b].eq(h_bin_rd[b]) for b in range(B)]
        with m.If(commit):
            m.d.sync += [h_bin_rd[b].eq(bins_now[b]) for b in range(B)]
        host_rd = []
        cmd_addr = self.cmd.payload.addr
        self.formal_taps = {"commit": commit, "hist_only": r_hist_only, "done": done, "running": running,
                            "clearing": clearing, "h_wr": h_wr, "hist": [], "write_refused": write_refused,
                            "balls": r_balls, "ctrl": Cat(r_corr, r_hist_only)}  # read by hdl/formal
        for b in range(B):
            mem = memory.Memory(shape=unsigned(HB), depth=N + 1, init=[])
            m.submodules[f"hist{b}"] = mem
            wp = mem.write_port()
            rmw = mem.read_port(transparent_for=(wp,))
            host = mem.read_port()
            m.d.comb += [rmw.addr.eq(h_bin_rd[b]), host.addr.eq(cmd_addr[:IB])]
            inc = Signal(HB + 1, name=f"h_inc{b}")  # the carry out says the counter was at its maximum
            m.d.comb += inc.eq(rmw.data + 1)
            self.formal_taps["hist"].append((rmw.data, wp.data))
            with m.If(h_wr):
                m.d.comb += [wp.addr.eq(h_bin_wr[b]), wp.data.eq(Mux(inc[HB], HMAX, inc[:HB])), wp.en.eq(1)]
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
        rsp_thr_ok = Signal()
        m.d.comb += [
            self.cmd.ready.eq(idle & ~tinit & ~w_pending & ~h_rd & ~h_wr & ~rsp_pending & ~rsp_valid),
            self.rsp.valid.eq(rsp_valid),
            self.rsp.payload.data.eq(rsp_word),
        ]
        accept = self.cmd.valid & self.cmd.ready
        is_hist = cmd_addr[s.region_bits]
        offset = cmd_addr[: s.region_bits]
        wdata = self.cmd.payload.data
        thr_wr = Signal(TB)
        m.d.comb += thr_wr.eq(Mux(wdata > TMAX, TMAX, wdata))
        thr_we = Signal()
        thr_bad = t_used(offset) & (wdata > TMAX)  # spec.memory_write_error: refused and flagged, not clamped
        m.d.comb += thr_we.eq(accept & self.cmd.payload.write & ~is_hist & ~thr_bad)
        thr_refused = Signal()
        m.d.comb += thr_refused.eq(accept & self.cmd.payload.write & ~is_hist & thr_bad)
        self.formal_taps["thr_refused"] = thr_refused
        with m.If(thr_refused):
            m.d.sync += write_refused.eq(1)
        # a write is registered, then decoded the next cycle (w_pending holds cmd and generation):
        # the decode for N(N+1) registers starts at a flip-flop, not behind the command's source
        w_off = Signal(s.region_bits, reset_less=True)
        w_data = Signal(TB, reset_less=True)
        m.d.sync += w_pending.eq(thr_we)
        with m.If(thr_we):
            m.d.sync += [w_off.eq(offset), w_data.eq(thr_wr)]
        # one comparator per register, not one switch per register (keeps the Verilog linear in N²)
        for c in range(2):
            for i in range(N):
                for j in range(i + 1):
                    with m.If(w_pending & (w_off == s.threshold_addr(c, i, j))):
                        m.d.sync += thr[c][i][j].eq(w_data)
        # reads come from the copy (no N(N+1)-way multiplexer): written with the registers
        m.d.comb += [
            t_rd.addr.eq(offset[:TA]),
            t_wr.addr.eq(w_off[:TA]),
            t_wr.data.eq(w_data),
            t_wr.en.eq(w_pending & t_used(w_off)),
        ]
        with m.If(tinit):  # after a reset: the copy back to the registers' reset values
            m.d.comb += [
                t_wr.addr.eq(tinit_addr),
                t_wr.data.eq(Mux(t_used(tinit_addr), 1 << (k - 1), 0)),
                t_wr.en.eq(1),
            ]
            m.d.sync += tinit_addr.eq(tinit_addr + 1)
            with m.If(tinit_addr == (1 << TA) - 1):
                m.d.sync += tinit.eq(0)
        hist_board = cmd_addr[IB : s.region_bits]
        hist_bin = cmd_addr[:IB]
        with m.If(accept & ~self.cmd.payload.write):
            m.d.sync += [
                rsp_pending.eq(1),
                rsp_hist.eq(is_hist),
                rsp_thr_ok.eq(t_used(offset)),
                rsp_board.eq(hist_board),
                rsp_hist_ok.eq((hist_board < B) & (hist_bin <= N)),
            ]
        with m.If(rsp_pending):
            hist_word = Array(host_rd)[rsp_board] if B > 1 else host_rd[0]
            m.d.sync += [
                rsp_pending.eq(0),
                rsp_valid.eq(1),
                rsp_word.eq(Mux(rsp_hist, Mux(rsp_hist_ok, hist_word, 0), Mux(rsp_thr_ok, t_rd.data, 0))),
            ]
        with m.If(self.rsp.valid & self.rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        return m
