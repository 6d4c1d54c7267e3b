"""EqSpike part: the sample's program — the pass sequencer (docs/eqspike.md, "RTL architecture" and "Cycle
model"; twin piece: the phase and step loops of :meth:`golden.eqspike.twin.EqSpikeTwin.infer` /
:meth:`~golden.eqspike.twin.EqSpikeTwin.train_sample`, the cycle model ``sweep_cycles`` of
tests/test_eqspike_core.py)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import EqSpikeSpec

from .common import check_spec


class EqSpikeSequencer(wiring.Component):
    """The passes of a sample, and the word sweep (``lay``, ``wrd``) of each.

    Contract: in IDLE (``idle``) a sample starts when ``can_start``: an AER sample (``ctrl_aer``) with its
    first ``aer_valid`` (straight to INIT), a pixel sample with ``inp_valid`` (LOAD: ``load`` high, one
    word per ``inp_valid``, ``wrd`` the word, tiles(0) words); ``T1``, ``T2`` and ``train`` are latched at
    the start. Then INIT (``init``: one word of layers ``first``/0 … L per cycle), and per step of a phase
    ENC (layers 1 … L, or ``first`` … L; stage 1 ``enc_v1``), EVT (``evt`` until ``evt_done``), in a nudged
    phase WUPD (``evt``, ``upd_mode``, until ``evt_done`` and then until ``upd_busy`` clears), in a ternary
    training core then REPROG (``reprog_start`` pulses as WUPD ends; until ``reprog_done``: the cells whose latent
    weight changed its ternary value are reprogrammed), UPD (``upd_v1`` a cycle after each word).
    ``enc_end``/``evt_end`` pulse at the end of ENC/EVT; ``list_clear`` at a phase's start and each step's
    end. After the free phase SCAN sweeps the output layer (``scan_clear``
    before, ``scan_v1``); a training sample then COPYs (symmetric: save, ``copy_v1``), runs the +β phase,
    COPYs back (``restore``) and runs the −β phase. OUT (``out_valid``) ends with ``out_ready``.
    ``phase``: 0 free, 1 +β, 2 −β (``neg``). ``first`` = 1 for AER input without a stochastic encoder
    (the input layer's encoders are skipped), else 0. ``cycles_clear`` pulses when the cycle count starts.

    Latency: one word per cycle in every sweep; stage-1 strobes (``*_v1``, ``lay1``, ``wrd1``) 1 cycle after
    their word; 1 cycle between passes (the ``*_END`` states), so a sample takes Σ words + the cycle model's
    constants.
    """

    def __init__(self, spec: EqSpikeSpec):
        check_spec(spec)
        self.spec = spec
        L, sb = spec.n_layers, spec.step_bits
        T = max(spec.tiles(k) for k in range(L + 1))
        super().__init__({
            "can_start": In(1), "ctrl_aer": In(1), "aer_valid": In(1), "inp_valid": In(1), "T1": In(sb),
            "T2": In(sb), "train": In(1), "evt_done": In(1), "upd_busy": In(1), "out_ready": In(1),
            "idle": Out(1), "busy": Out(1), "aer_mode": Out(1), "first": Out(range(L + 1)), "phase": Out(2),
            "neg": Out(1), "lay": Out(range(L + 1)), "wrd": Out(range(T + 1)), "lay1": Out(range(L + 1)),
            "wrd1": Out(range(T + 1)), "load": Out(1), "init": Out(1), "evt": Out(1), "upd_mode": Out(1),
            "enc_end": Out(1), "evt_end": Out(1), "list_clear": Out(1), "scan_clear": Out(1), "restore": Out(1),
            "enc_v1": Out(1), "upd_v1": Out(1), "scan_v1": Out(1), "copy_v1": Out(1), "out_valid": Out(1),
            "cycles_clear": Out(1),
        } | ({"reprog_start": Out(1), "reprog_done": In(1)} if spec.ternary_training else {}))

    def elaborate(self, platform):
        s, m = self.spec, Module()
        L = s.n_layers
        T = [s.tiles(k) for k in range(L + 1)]
        lay, wrd, phase, first = self.lay, self.wrd, self.phase, self.first
        x_train, x_T, x_T2, step = Signal(), Signal(s.step_bits), Signal(s.step_bits), Signal(s.step_bits)
        nudged = phase != 0
        m.d.comb += [self.neg.eq(phase == 2), first.eq(Mux(self.aer_mode & (s.encoder != "stochastic"), 1, 0))]
        m.d.sync += [self.lay1.eq(lay), self.wrd1.eq(wrd)]
        m.d.sync += [self.enc_v1.eq(0), self.upd_v1.eq(0), self.scan_v1.eq(0), self.copy_v1.eq(0)]

        def next_word(first_layer, last_layer, on_done):
            """Advance (lay, wrd) over the words of the layers up to last_layer (then lay = first_layer)."""
            last_w = Signal(range(max(T) + 1))
            with m.Switch(lay):
                for l in range(L + 1):
                    with m.Case(l):
                        m.d.comb += last_w.eq(T[l] - 1)
            with m.If(wrd == last_w):
                m.d.sync += wrd.eq(0)
                with m.If(lay == last_layer):
                    m.d.sync += lay.eq(first_layer)
                    on_done()
                with m.Else():
                    m.d.sync += lay.eq(lay + 1)
            with m.Else():
                m.d.sync += wrd.eq(wrd + 1)

        def start_phase(ph, steps):
            m.d.sync += [phase.eq(ph), step.eq(0), x_T.eq(steps), lay.eq(first), wrd.eq(0)]
            m.d.comb += self.list_clear.eq(1)

        def goto(state):
            def done():
                m.next = state
            return done

        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(self.can_start):
                    with m.If(self.ctrl_aer & self.aer_valid):
                        m.d.sync += [self.aer_mode.eq(1), self.busy.eq(1)]
                        m.d.comb += self.cycles_clear.eq(1)
                        m.next = "INIT"
                    with m.Elif(~self.ctrl_aer & self.inp_valid):
                        m.d.sync += [self.aer_mode.eq(0), self.busy.eq(1)]
                        m.next = "LOAD"
                m.d.sync += [x_T.eq(self.T1), x_T2.eq(self.T2), x_train.eq(self.train), phase.eq(0), step.eq(0),
                             lay.eq(0), wrd.eq(0)]
            with m.State("LOAD"):
                m.d.comb += self.load.eq(1)
                with m.If(self.inp_valid):
                    with m.If(wrd == T[0] - 1):
                        m.d.sync += wrd.eq(0)
                        m.d.comb += self.cycles_clear.eq(1)
                        m.next = "INIT"
                    with m.Else():
                        m.d.sync += wrd.eq(wrd + 1)
            with m.State("INIT"):  # residues, states, accumulators, traces: one word per cycle (the core writes)
                m.d.comb += self.init.eq(1)

                def init_done():
                    start_phase(0, x_T)
                    m.next = "ENC"
                next_word(first, L, init_done)
            with m.State("ENC"):
                m.d.sync += self.enc_v1.eq(1)
                next_word(1, L, goto("ENC_END"))
            with m.State("ENC_END"):  # stage 1 finishes the last word
                m.d.sync += self.upd_mode.eq(0)
                m.d.comb += self.enc_end.eq(1)
                m.next = "EVT"
            with m.State("EVT"):
                m.d.comb += self.evt.eq(1)
                with m.If(self.evt_done):
                    m.next = "EVT_END"
            with m.State("EVT_END"):  # stage 1 writes the last accumulator word
                m.d.sync += self.upd_mode.eq(nudged)
                m.d.comb += self.evt_end.eq(1)
                with m.If(nudged):
                    m.next = "WUPD"
                with m.Else():
                    m.next = "UPD"
            with m.State("WUPD"):  # the step's spike events once more: weight updates
                m.d.comb += self.evt.eq(1)
                with m.If(self.evt_done):
                    m.next = "WUPD_END"
            with m.State("WUPD_END"):
                with m.If(~self.upd_busy):
                    m.d.sync += self.upd_mode.eq(0)
                    if s.ternary_training:
                        m.d.comb += self.reprog_start.eq(1)
                        m.next = "REPROG"
                    else:
                        m.next = "UPD"
            if s.ternary_training:
                with m.State("REPROG"):  # the cells whose latents' ternary value changed (the Reprogram sweep)
                    with m.If(self.reprog_done):
                        m.next = "UPD"
            with m.State("UPD"):
                m.d.sync += self.upd_v1.eq(1)
                next_word(first, L, goto("UPD_END"))
            with m.State("UPD_END"):
                m.d.sync += [wrd.eq(0), step.eq(step + 1)]
                m.d.comb += self.list_clear.eq(1)
                with m.If(step + 1 == x_T):
                    with m.If(phase == 0):
                        m.d.sync += lay.eq(L)
                        m.d.comb += self.scan_clear.eq(1)
                        m.next = "SCAN"
                    with m.Elif((phase == 1) & int(s.symmetric)):
                        m.d.sync += [lay.eq(0), self.restore.eq(1)]
                        m.next = "COPY"
                    with m.Else():
                        m.next = "OUT"
                with m.Else():
                    m.d.sync += lay.eq(first)
                    m.next = "ENC"
            with m.State("SCAN"):
                m.d.sync += self.scan_v1.eq(1)
                with m.If(wrd == T[L] - 1):
                    m.next = "SCAN_END"
                with m.Else():
                    m.d.sync += wrd.eq(wrd + 1)
            with m.State("SCAN_END"):
                m.d.sync += [wrd.eq(0), lay.eq(0), self.restore.eq(0)]
                with m.If(x_train):
                    if s.symmetric:
                        m.next = "COPY"
                    else:
                        start_phase(1, x_T2)
                        m.next = "ENC"
                with m.Else():
                    m.next = "OUT"
            with m.State("COPY"):  # save (after the free phase) or restore (before −β) residues, states, traces
                m.d.sync += self.copy_v1.eq(1)
                next_word(0, L, goto("COPY_END"))
            with m.State("COPY_END"):
                start_phase(Mux(self.restore, 2, 1), x_T2)
                m.next = "ENC"
            with m.State("OUT"):
                m.d.comb += self.out_valid.eq(1)
                with m.If(self.out_ready):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
        return m
