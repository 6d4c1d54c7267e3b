"""Kit part: the EP core's sample sequencer (docs/ep-core.md, "Components"; twin piece
:func:`golden.ep_core.sequence.phase_plan`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.ep_core import PHASE_FREE, PHASE_MINUS, PHASE_PLUS, REG_BITS


class Sequencer(wiring.Component):
    """Walks one sample: the ``c1`` sweep, the phases' relaxation steps, the dumps, the update, the output.

    Contract (twin piece: :func:`golden.ep_core.sequence.phase_plan`, the phases a sample runs and
    the two phases its update compares):

    * In ``IDLE`` (``idle`` high) a ``load`` pulse (the sample's last input beat taken) latches
      ``train``, ``symmetric``, ``dump``, ``T1``, ``T2`` (and ``random_sign & ~symmetric``), clears
      ``cycles`` and starts sweep ``c1`` in the same cycle.
    * Sweeps are started with ``start``/``index`` only while the sweep engine's ``run`` is low; a
      drain (``-1`` in ``step``, the end of ``c1``, of a step, of the update, and before the update's
      second sweep) waits until ``pipe_busy`` is low.
    * The phases are :func:`phase_plan`'s: free (``T1`` steps, ``bsign`` 0, ``rd_zero`` high in its
      first step), then with ``train`` +β (``bsign`` 1) unless a random-sign draw (``draw_sign``
      high for one cycle when the free phase ends; the draw is ``sign_bit``) chose −β, then −β
      (``bsign`` 2) when ``symmetric`` or drawn; ``T2`` steps each. ``rd_bank`` is the state bank a
      step reads (the bank the previous step wrote; a nudged phase's first step reads the free
      phase's last), ``wr_bank`` the bank it writes, never a bank still needed: s_free stays intact
      through the nudged phases, s+ through −β. ``last_free`` is high during the free phase's last step.
    * After each phase, with ``dump`` latched: ``dump_start`` (one cycle; from the next cycle on
      ``dump_bank`` is the phase's last bank and ``phase`` the phase) and a wait for ``dump_done``.
    * A training sample then runs ``updates`` (``bank_a``/``bank_b``: the banks holding the update's
      a and b phases), drains, and raises ``out_valid`` until ``out_ready``; then ``cycles`` (cycles
      since ``load``, the handshake's included) and ``samples`` (+1) update and it is idle again.

    Latency: the ``c1`` sweep starts in the ``load`` cycle; one cycle per step end, per phase end and
    per dump start; each sweep starts in the cycle its predecessor's ``run`` falls (or the drain
    ends). Back-pressure: ``out_ready`` (the prediction's handshake) and ``dump_done``.

    Parameters
    ----------
    c1 : int — the table entry of the ``c1`` sweep. step : list of int — one relaxation step's
    entries, ``-1`` for a drain. updates : list of int — the update's entries (empty: inference only).
    step_bits : int — width of ``T1``/``T2``. random_sign : bool — the core has the random-sign estimator.

    Members
    -------
    load, run, pipe_busy, train, symmetric, dump, random_sign, sign_bit, dump_done, out_ready : In(1).
    T1, T2 : In(step_bits). start, busy, idle, rd_zero, last_free, draw_sign, dump_start, out_valid : Out(1).
    index : Out(entries). rd_bank, wr_bank, bank_a, bank_b, dump_bank, bsign, phase : Out(2).
    cycles, samples : Out(REG_BITS). x_train, x_sym : Out(1) — the latched ``train``/``symmetric``.
    """

    def __init__(self, c1: int, step: list[int], updates: list[int], step_bits: int, random_sign: bool = False):
        entries = [c1] + [i for i in step if i != -1] + list(updates)
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in entries):
            raise ValueError(f"sweep entries must be integers >= 0 (step: -1 for a drain), not {entries!r}")
        if isinstance(step_bits, bool) or not isinstance(step_bits, int) or step_bits < 1:
            raise ValueError(f"step_bits must be an integer >= 1, not {step_bits!r}")
        if updates and len(updates) < 2:
            raise ValueError(f"updates must be empty or have >= 2 entries (d pass first), not {updates!r}")
        self.c1, self.step, self.updates, self.has_random_sign = c1, list(step), list(updates), random_sign
        super().__init__({
            "load": In(1), "run": In(1), "pipe_busy": In(1), "train": In(1), "symmetric": In(1), "dump": In(1),
            "random_sign": In(1), "sign_bit": In(1), "dump_done": In(1), "out_ready": In(1),
            "T1": In(step_bits), "T2": In(step_bits),
            "start": Out(1), "index": Out(range(max(entries) + 1)), "busy": Out(1), "idle": Out(1),
            "rd_zero": Out(1), "last_free": Out(1), "draw_sign": Out(1), "dump_start": Out(1), "out_valid": Out(1),
            "rd_bank": Out(2), "wr_bank": Out(2), "bank_a": Out(2), "bank_b": Out(2), "dump_bank": Out(2),
            "bsign": Out(2), "phase": Out(2), "cycles": Out(REG_BITS), "samples": Out(REG_BITS),
            "x_train": Out(1), "x_sym": Out(1),
        })

    def elaborate(self, platform):  # noqa: C901  (one FSM)
        m = Module()
        step_list, upd_list, training, rng = self.step, self.updates, bool(self.updates), self.has_random_sign
        x_train, x_sym, x_dump = self.x_train, self.x_sym, Signal()
        x_T1, x_T2 = Signal.like(self.T1), Signal.like(self.T2)
        rd_bank, wr_bank, rd_zero, bsign, phase = self.rd_bank, self.wr_bank, self.rd_zero, self.bsign, self.phase
        last_free, bank_a, bank_b, busy, cycles = self.last_free, self.bank_a, self.bank_b, self.busy, Signal(REG_BITS)
        step = Signal.like(self.T1)
        entry = Signal(range(len(step_list) + 1))
        bank_f, bank_p, bank_m = Signal(2), Signal(2), Signal(2)
        upd_idx = Signal(range(len(upd_list) + 1))
        pipe_busy, run = self.pipe_busy, self.run
        if rng:
            x_rsign, x_neg = Signal(), Signal()
        m.d.comb += busy.eq(0)
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        def start_sweep(idx):
            m.d.comb += [self.start.eq(1), self.index.eq(idx)]

        with m.FSM(name="prog"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.load):
                    m.d.sync += [cycles.eq(0), x_train.eq(self.train), x_sym.eq(self.symmetric),
                                 x_dump.eq(self.dump), x_T1.eq(self.T1), x_T2.eq(self.T2)]
                    if rng:
                        m.d.sync += x_rsign.eq(self.random_sign & ~self.symmetric)  # symmetric wins over random-sign
                    start_sweep(self.c1)
                    m.next = "C1"
            with m.State("C1"):
                m.d.comb += busy.eq(1)
                with m.If(~pipe_busy):
                    m.d.sync += [phase.eq(PHASE_FREE), step.eq(0), entry.eq(0), rd_zero.eq(1), rd_bank.eq(0),
                                 wr_bank.eq(1), bsign.eq(0), last_free.eq(x_T1 == 1)]
                    m.next = "STEP"
            with m.State("STEP"):
                # issue the step's sweeps back to back; -1 entries drain the pipeline
                m.d.comb += busy.eq(1)
                with m.If(~run):
                    with m.Switch(entry):
                        for e, idx in enumerate(step_list):
                            with m.Case(e):
                                if idx < 0:
                                    with m.If(~pipe_busy):
                                        m.d.sync += entry.eq(entry + 1)
                                else:
                                    start_sweep(idx)
                                    m.d.sync += entry.eq(entry + 1)
                        with m.Case(len(step_list)):
                            with m.If(~pipe_busy):
                                m.next = "STEP_DONE"
            with m.State("STEP_DONE"):
                m.d.comb += busy.eq(1)
                last_step = step == Mux(phase == PHASE_FREE, x_T1, x_T2) - 1
                m.d.sync += [entry.eq(0), rd_zero.eq(0)]
                with m.If(~last_step):
                    m.d.sync += step.eq(step + 1)
                    # next step reads what this one wrote
                    m.d.sync += rd_bank.eq(wr_bank)
                    with m.Switch(phase):
                        with m.Case(PHASE_FREE):
                            m.d.sync += wr_bank.eq(wr_bank ^ 1)
                            m.d.sync += last_free.eq(step + 2 == x_T1)
                        with m.Case(PHASE_PLUS):
                            m.d.sync += wr_bank.eq(wr_bank ^ 1)
                        with m.Case(PHASE_MINUS):
                            m.d.sync += wr_bank.eq(Mux(wr_bank == (bank_f ^ 1), bank_p ^ 1, bank_f ^ 1))
                    m.next = "STEP"
                with m.Else():
                    m.d.sync += [last_free.eq(0), self.dump_bank.eq(wr_bank)]
                    with m.Switch(phase):
                        with m.Case(PHASE_FREE):
                            m.d.sync += bank_f.eq(wr_bank)
                        with m.Case(PHASE_PLUS):
                            m.d.sync += bank_p.eq(wr_bank)
                        with m.Case(PHASE_MINUS):
                            m.d.sync += bank_m.eq(wr_bank)
                    with m.If(x_dump):
                        m.d.comb += self.dump_start.eq(1)
                        m.next = "DUMP"
                    with m.Else():
                        m.next = "PHASE_DONE"
            with m.State("DUMP"):
                m.d.comb += busy.eq(1)
                with m.If(self.dump_done):
                    m.next = "PHASE_DONE"
            with m.State("PHASE_DONE"):
                m.d.comb += busy.eq(1)
                m.d.sync += [step.eq(0), entry.eq(0)]
                with m.If((phase == PHASE_FREE) & x_train):
                    # +β from the free state into banks 2/3
                    m.d.sync += [phase.eq(PHASE_PLUS), rd_bank.eq(bank_f), wr_bank.eq(2), bsign.eq(1)]
                    if rng:
                        # random sign: one draw; −β runs the −β phase instead (its ping-pong pairs
                        # bank_f ^ 1 with bank 3, so s_free stays intact for the update)
                        neg = Signal()
                        m.d.comb += [self.draw_sign.eq(x_rsign), neg.eq(x_rsign & self.sign_bit)]
                        m.d.sync += x_neg.eq(neg)
                        with m.If(neg):
                            m.d.sync += [phase.eq(PHASE_MINUS), wr_bank.eq(bank_f ^ 1), bsign.eq(2), bank_p.eq(2)]
                    m.next = "STEP"
                with m.Elif((phase == PHASE_PLUS) & x_sym):
                    # −β from the free state, ping-ponging between the two banks not holding s_free, s+
                    m.d.sync += [phase.eq(PHASE_MINUS), rd_bank.eq(bank_f), wr_bank.eq(bank_f ^ 1), bsign.eq(2)]
                    m.next = "STEP"
                if training:
                    with m.Elif(x_train):
                        m.d.sync += [bank_b.eq(bank_p), bank_a.eq(Mux(x_sym, bank_m, bank_f)), upd_idx.eq(0),
                                     bsign.eq(0)]
                        if rng:
                            with m.If(x_neg):  # random sign, −β: b = s^0, a = s^−β
                                m.d.sync += [bank_b.eq(bank_f), bank_a.eq(bank_m)]
                        m.next = "UPDATE"
                with m.Else():
                    m.next = "OUTPUT"
            if training:
                with m.State("UPDATE"):
                    m.d.comb += busy.eq(1)
                    with m.If(~run):
                        with m.Switch(upd_idx):
                            for e, idx in enumerate(upd_list):
                                with m.Case(e):
                                    # the d pass must land before the next sweep (W0's update) reads it;
                                    # the other sweeps are independent
                                    if e == 1:
                                        with m.If(~pipe_busy):
                                            start_sweep(idx)
                                            m.d.sync += upd_idx.eq(upd_idx + 1)
                                    else:
                                        start_sweep(idx)
                                        m.d.sync += upd_idx.eq(upd_idx + 1)
                            with m.Case(len(upd_list)):
                                with m.If(~pipe_busy):
                                    m.next = "OUTPUT"
            with m.State("OUTPUT"):
                m.d.comb += [busy.eq(1), self.out_valid.eq(1)]
                with m.If(self.out_ready):
                    m.d.sync += [self.cycles.eq(cycles + 1), self.samples.eq(self.samples + 1)]
                    m.next = "IDLE"
        return m
