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

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.galton import GaltonSpec

from .kit.galton_cmd import GaltonCommands, cmd_layout, rsp_layout
from .kit.galton_hist import Histograms
from .kit.galton_regs import GaltonRegisters
from .kit.galton_rows import GaltonRows
from .kit.galton_source import BallSource
from .regport import RegSignature


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
        self.cmd_layout, self.rsp_layout = cmd_layout(spec), rsp_layout(spec)
        super().__init__(
            {
                "out": Out(stream.Signature(self.out_layout)),
                "cmd": In(stream.Signature(self.cmd_layout)),
                "rsp": Out(stream.Signature(self.rsp_layout)),
                "reg": In(RegSignature()),
            }
        )

    def elaborate(self, platform):
        s, m = self.spec, Module()
        # the parts (hdl/kit/galton_*.py; docs/galton.md, "Components")
        m.submodules.regs = regs = GaltonRegisters(s)  # REG_*, the run (START/STOP/limit), DONE
        m.submodules.source = src = BallSource(s, self.stages)  # random words, balls in flight, commit
        m.submodules.rows = rows = GaltonRows(s, self.rows_per_stage, self.stages)  # thresholds and rows
        m.submodules.hist = hist = Histograms(s)  # counters: read-modify-write, CLEAR, host reads
        m.submodules.cmds = cmds = GaltonCommands(s)  # cmd/rsp: threshold writes, reads, the copy
        wiring.connect(m, wiring.flipped(self.reg), regs.bus)
        wiring.connect(m, wiring.flipped(self.cmd), cmds.cmd)
        wiring.connect(m, cmds.rsp, wiring.flipped(self.rsp))
        # the out register; the pipeline (and the ball leaving it) moves when it may take a ball
        out_valid, adv, commit = Signal(), Signal(), src.commit
        out_bins = Signal(self.out_layout, reset_less=True)  # meaningful only while out.valid
        m.d.comb += [
            adv.eq(regs.hist_only | ~out_valid | self.out.ready),
            self.out.valid.eq(out_valid), self.out.payload.eq(out_bins),
            src.seed.eq(regs.seed), src.reseed.eq(regs.reseed), src.running.eq(regs.running),
            src.enter.eq(~hist.clearing & ~cmds.t_we), src.adv.eq(adv),
            rows.words.eq(src.words), rows.corr.eq(regs.corr), rows.adv.eq(adv),
            rows.t_we.eq(cmds.t_we), rows.t_off.eq(cmds.t_off), rows.t_data.eq(cmds.t_data),
            hist.commit.eq(commit), hist.clear.eq(regs.clear), hist.bins.eq(rows.bins),
            hist.host_addr.eq(cmds.hist_addr),
            cmds.idle.eq(~regs.running & ~hist.clearing), cmds.hist_busy.eq(hist.busy),
            cmds.hist_data.eq(hist.host_data),
            regs.commit.eq(commit), regs.clearing.eq(hist.clearing), regs.tinit.eq(cmds.tinit),
            regs.ready.eq(src.ready), regs.out_valid.eq(out_valid), regs.thr_refused.eq(cmds.refused),
        ]
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(commit & ~regs.hist_only):
            m.d.sync += [out_valid.eq(1), out_bins.bins.eq(rows.bins)]
        self.formal_taps = {  # read by hdl/formal/galton.py
            "commit": commit, "hist_only": regs.hist_only, "done": regs.done, "running": regs.running,
            "clearing": hist.clearing, "h_wr": hist.h_wr, "hist": hist.taps, "write_refused": regs.write_refused,
            "balls": regs.balls, "ctrl": Cat(regs.corr, regs.hist_only), "thr_refused": cmds.refused}
        return m
