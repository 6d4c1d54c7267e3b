"""The event-driven EqSpike core (Amaranth 0.5): spiking EP inference, bit-exact with the twin.

Behaviour is defined by :class:`golden.eqspike.twin.EqSpikeTwin`, numbers by
:class:`spec.eqspike.EqSpikeSpec` (read its module docstring: formats, one time step, event order,
randomness). docs/eqspike.md, "RTL (hdl/eqspike.py)", describes the architecture, ports, registers,
the AER format and the cycle model. In short, per time step:

* **ENC** — one word of P neurons per cycle, layers 0 … L: the P encoders (sigma-delta, or
  stochastic from the PRNG) update the residues and give a P-bit spike mask; a non-zero mask of a
  layer that has targets is appended to the step's *mask list* (layer, word, mask).
* **EVT** — the event engine takes one spike event at a time (AER input events first, then the
  lowest set bit of each mask of the list) and, for each of its target layers, reads the event's
  weight row one word per cycle and adds it (exact left shift, no multiplier) to P accumulators of
  the target layer: a read-modify-write of the accumulator memory, back to back (the read port is
  transparent for the write port). Bottom-up rows come from ``wup{l}`` (w{l} stored pre-major: row
  j = presynaptic neuron j), top-down rows from ``wdn{l}`` (the same weights post-major; l ≥ 1 only).
  The cycle count of this pass is the roofline: one weight word per cycle per event.
* **UPD** — one word per cycle, layers 1 … L: ``s ← sat(s + round(acc + b·2^bs − s·2^ls, ss))`` and
  the accumulator cleared. Every weight read of the step precedes every state write (event order).

After T1 steps the output layer is scanned (argmax, lowest index on ties) and the prediction and the
output states go out on ``out``. Weights are written and read one element at a time on
``wcmd``/``wrsp`` between samples (a write goes to both copies of a weight). A ``REG_DIGEST`` write
sweeps every weight and bias memory word (one per cycle, STATUS busy meanwhile) into a 32-bit digest
(:func:`spec.eqspike.weight_digest`, the twin's :meth:`~golden.eqspike.twin.EqSpikeTwin.digest`): a
check of all weights in ≈ Σ words cycles instead of one weight-port beat per element.

**AER input** (``REG_CTRL`` bit 0): a sample starts with its first ``aer`` beat and takes T1 steps;
each step is the addresses of the input neurons that spike (one beat each, ``last`` = 0), then one
beat with ``last`` = 1 (its address ignored). EVT takes them as the input layer's events (ENC skips
the input encoders; a stochastic encoder still draws for them, as the twin's
:meth:`~golden.eqspike.twin.EqSpikeTwin.infer_events` does). An address ≥ N0 is dropped, sets STATUS
bit 2 and counts in ``REG_AER_BAD`` (both cleared by a STATUS write); it is never used as an address.
A neuron sent twice in one step adds its row twice (the twin refuses that: hosts send sets).

**On-chip learning** (``spec.training``, ``REG_CTRL`` bit 1, pixel input): ENC also filters the spikes
into the traces and keeps the step's Δŝ and masks per layer (and Δŝ in the mask list); the free phase's
end is saved (symmetric estimator) and restored for the −β phase; in a nudged phase UPD adds the nudge
and updates the biases (read-modify-write after the step's read), and a **WUPD** pass after EVT walks
the step's events once more: a spike of presynaptic j rewrites row j of ``wup{l}`` (all posts i,
``D = Δŝ_i + e_i·Δŝ_j``), a spike of postsynaptic i rewrites the lanes j of row i of ``wdn{l}`` whose
e_j = 0 (``D = Δŝ_j``); a connection with two copies then writes the word's P new values into the
other copy one element per cycle. Every changed weight is written once per step, so the pass's
order does not matter, and it follows the step's reads (W(t+1) = W(t) + ΔW(t)).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import PRNG_WIDTH, EqSpikeSpec

from .eqspike_kit.accumulate import Accumulate
from .eqspike_kit.common import const_mul, round_shift, ubits  # noqa: F401  (round_shift: public here)
from .eqspike_kit.encoder import Encoders
from .eqspike_kit.events import EventQueue, aer_addr_bits  # noqa: F401  (public here)
from .eqspike_kit.issue import EventIssue
from .eqspike_kit.neuron import NeuronUpdate
from .eqspike_kit.regs import (  # noqa: F401  (the public names of the register map stay importable from here)
    CTRL_AER,
    CTRL_TRAIN,
    LR_ALL,
    LR_MAX,
    REG_AER_BAD,
    REG_BITS,
    REG_CTRL,
    REG_CYCLES,
    REG_DIGEST,
    REG_DUMP,
    REG_LR,
    REG_SAMPLES,
    REG_SEED,
    REG_SPEC_ID,
    REG_SPIKES,
    REG_STATUS,
    REG_SYN,
    REG_T1,
    REG_T2,
    REG_WORDS,
    REGISTERS,
    STATUS_AER_ERROR,
    STATUS_BUSY,
    STATUS_REG_ERROR,
    STATUS_WCMD_ERROR,
    EqSpikeRegisters,
    lr_shift_min,
)
from .eqspike_kit.scan import OutputScan
from .eqspike_kit.scatter import Scatter
from .eqspike_kit.sequencer import EqSpikeSequencer
from .eqspike_kit.trace import TraceFilter
from .eqspike_kit.update import SpikeUpdate
from .eqspike_kit.wport import WeightPort, dump_bits, wcmd_fields  # noqa: F401  (public here)
from .prng import XorshiftBank
from .regport import RegSignature

_ubits = ubits  # (the name other modules import)


def memory_images(spec: EqSpikeSpec, weights: dict) -> dict[str, list[int]]:
    """Initial contents of the core's weight and bias memories (``wup{l}``, ``wdn{l}``, ``b{l}``) for a
    weight dict in the image's layout (``w{l}`` (post, pre), ``b{l}``), as the ``wcmd`` port would write them."""
    import numpy as np

    P = spec.lanes

    def pack(rows: np.ndarray, bits: int) -> list[int]:
        words = []
        mask = (1 << bits) - 1
        for row in rows:
            padded = np.zeros(-(-len(row) // P) * P, np.int64)
            padded[:len(row)] = row
            for t in range(len(padded) // P):
                w = 0
                for i in range(P):
                    w |= (int(padded[t * P + i]) & mask) << (i * bits)
                words.append(w)
        return words

    out = {}
    for l in range(spec.n_layers):
        w = np.asarray(weights[f"w{l}"], np.int64)
        out[f"wup{l}"] = pack(w.T, spec.weight_bits[l])
        if l >= 1:
            out[f"wdn{l}"] = pack(w, spec.weight_bits[l])
        out[f"b{l}"] = pack(np.asarray(weights[f"b{l}"], np.int64)[None, :], spec.bias_bits)
    return out


def dump_word_count(spec: EqSpikeSpec) -> int:
    """Beats of one ``wdump`` block read-back (= words of a digest sweep): Σ_l n_l·tiles(l+1) + Σ_l tiles(l+1)."""
    L = spec.n_layers
    return sum(spec.layers[l] * spec.tiles(l + 1) for l in range(L)) + sum(spec.tiles(l + 1) for l in range(L))


def _check_implemented(spec) -> None:
    """Refuse (one line) a spec the core does not implement."""
    if not isinstance(spec, EqSpikeSpec):
        raise TypeError(f"spec must be an EqSpikeSpec, not {type(spec).__name__}")
    if spec.weight_kind != "fixed":
        raise ValueError(f"EqSpikeCore implements weight_kind='fixed' only, not {spec.weight_kind!r}")
    if spec.training and spec.update_apply != "online":
        raise ValueError(f"EqSpikeCore implements update_apply='online' only (every step's weight changes written "
                         f"after the step), not {spec.update_apply!r}: the 'sample' rule's pending memory is "
                         f"twin-only (spec.eqspike)")


class EqSpikeCore(wiring.Component):
    """Event-driven EqSpike core: P add-only lanes, any layer sizes, fixed-point weights, on-chip learning.

    Parameters
    ----------
    spec : EqSpikeSpec — ``weight_kind="fixed"``; ``training`` adds the spike-driven learning datapath.
    weights : optional weight dict (image layout) used as the memories' initial contents.

    Members
    -------
    inp : In(stream) — pixel beats: P pixels (``pixels``) and ``label`` per beat, tiles(0) beats per sample.
    aer : In(stream) — AER input events (``addr``, ``last``: end of a time step) when ``REG_CTRL`` bit 0 is set.
    out : Out(stream) — ``pred`` and the output layer's ``states`` at the free phase's end.
    wcmd : In(stream) / wrsp : Out(stream) — element writes and reads of ``w{l}``/``b{l}`` between samples.
    wdump : Out(stream) — ``dump=True`` only: a block read-back, one beat per memory word (``data``: P lanes of
        :func:`dump_bits` bits, sign-extended), in :func:`spec.eqspike.digest_words` order, after a
        ``REG_DUMP`` write (the digest sweep held by ``wdump`` back-pressure; it also computes ``REG_DIGEST``).
    reg : In(RegSignature) — registers (``REG_*``).
    """

    def __init__(self, spec: EqSpikeSpec, weights: dict | None = None, *, dump: bool = False):
        try:
            _check_implemented(spec)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # a refused core is not an unused elaboratable
            raise
        self.spec, self.dump = spec, bool(dump)
        self.init = memory_images(spec, weights) if weights is not None else None
        P, L = spec.lanes, spec.n_layers
        self.label_bits = _ubits(spec.layers[-1] - 1)
        wf = wcmd_fields(spec)
        ports = {
            "inp": In(stream.Signature(data.StructLayout({
                "pixels": data.ArrayLayout(unsigned(spec.input_bits), P), "label": unsigned(self.label_bits)}))),
            "aer": In(stream.Signature(data.StructLayout({"addr": unsigned(aer_addr_bits(spec)), "last": 1}))),
            "out": Out(stream.Signature(data.StructLayout({
                "pred": unsigned(self.label_bits),
                "states": data.ArrayLayout(unsigned(spec.state_bits), spec.layers[L])}))),
            "wcmd": In(stream.Signature(data.StructLayout(
                {k: (signed(v) if k == "data" else unsigned(v)) for k, v in wf.items()}))),
            "wrsp": Out(stream.Signature(data.StructLayout({"data": signed(wf["data"])}))),
            "reg": In(RegSignature()),
        }
        if self.dump:
            ports["wdump"] = Out(stream.Signature(data.StructLayout(
                {"data": data.ArrayLayout(signed(dump_bits(spec)), P)})))
        super().__init__(ports)

    # ------------------------------------------------------------------------------------------------
    def elaborate(self, platform):  # noqa: C901  (the passes share the memories' ports)
        s = self.spec
        m = Module()
        P, L, N = s.lanes, s.n_layers, list(s.layers)
        T = [s.tiles(k) for k in range(L + 1)]
        SB, IB = s.state_bits, s.input_bits
        init = self.init or {}

        def named(value, name):
            """``value`` as a signal driven unconditionally (a Value used several times is otherwise copied
            into the netlist at every use)."""
            sig = Signal(value.shape(), name=name)
            m.d.comb += sig.eq(value)
            return sig

        targets_up = [l < L for l in range(L + 1)]
        targets_dn = [l >= 2 for l in range(L + 1)]
        has_targets = [targets_up[l] or targets_dn[l] for l in range(L + 1)]
        stoch_enc = s.encoder == "stochastic"
        stoch_round = s.state_rounding == "stochastic"

        def lanes(word, bits, sgn):
            return [(word[i * bits:(i + 1) * bits].as_signed() if sgn else word[i * bits:(i + 1) * bits])
                    for i in range(P)]

        # ---------------- memories ----------------
        def mem(name, bits, depth, granular=False, transparent=False, init_words=()):
            mm = memory.Memory(shape=unsigned(P * bits), depth=max(1, depth), init=list(init_words))
            m.submodules[name] = mm
            wp = mm.write_port(granularity=bits if granular else None)
            rp = mm.read_port(transparent_for=(wp,) if transparent else ())
            return rp, wp

        WB = list(s.weight_bits)
        BB = s.bias_bits
        rx, wx = mem("xmem", IB, T[0])
        rphi, wphi = zip(*[mem(f"phi{l}", s.residue_bits(l), T[l]) for l in range(L + 1)], strict=True)
        rs, ws = [None], [None]
        racc, wacc = [None], [None]
        rb, wb = [], []
        for k in range(1, L + 1):
            r_, w_ = mem(f"smem{k}", SB, T[k])
            rs.append(r_)
            ws.append(w_)
            r_, w_ = mem(f"acc{k}", s.acc_bits(k), T[k], transparent=True)
            racc.append(r_)
            wacc.append(w_)
            r_, w_ = mem(f"b{k - 1}", BB, T[k], granular=True, init_words=init.get(f"b{k - 1}", ()))
            rb.append(r_)
            wb.append(w_)
        rup, wup, rdn, wdn = [], [], {}, {}
        for l in range(L):
            r_, w_ = mem(f"wup{l}", WB[l], N[l] * T[l + 1], granular=True, init_words=init.get(f"wup{l}", ()))
            rup.append(r_)
            wup.append(w_)
            if l >= 1:
                rdn[l], wdn[l] = mem(f"wdn{l}", WB[l], N[l + 1] * T[l], granular=True,
                                     init_words=init.get(f"wdn{l}", ()))
        # training: traces (per stage), the step's Δŝ and spike masks of layers 1 … L, and the free phase's
        # end (residues, states, traces) kept for the −β phase of the symmetric estimator
        TRN = s.training
        TRB = s.trace_frac + 1
        DB = s.trace_frac + 2  # Δŝ ∈ [−2^trace_frac, 2^trace_frac]
        rtr, wtr, rd_, wd_, re_, we_ = {}, {}, {}, {}, {}, {}
        snap_r, snap_w = {}, {}  # name -> ports of the snapshot memories
        if TRN:
            for k in range(1, L + 1):
                for st in range(s.trace_stages):
                    rtr[k, st], wtr[k, st] = mem(f"tr{k}_{st}", TRB, T[k])
                rd_[k], wd_[k] = mem(f"dmem{k}", DB, T[k])
                re_[k], we_[k] = mem(f"emem{k}", 1, T[k])
            if s.symmetric:
                for l in range(L + 1):
                    snap_r[f"phi{l}"], snap_w[f"phi{l}"] = mem(f"snap_phi{l}", s.residue_bits(l), T[l])
                for k in range(1, L + 1):
                    snap_r[f"s{k}"], snap_w[f"s{k}"] = mem(f"snap_s{k}", SB, T[k])
                    for st in range(s.trace_stages):
                        snap_r[f"tr{k}_{st}"], snap_w[f"tr{k}_{st}"] = mem(f"snap_tr{k}_{st}", TRB, T[k])
        # the step's mask list: (layer, word, mask[, Δŝ]) of every non-zero mask of a layer with targets
        m.submodules.events = evq = EventQueue(s)
        wiring.connect(m, wiring.flipped(self.aer), evq.aer)

        # ---------------- registers, PRNG ----------------
        m.submodules.regs = regs = EqSpikeRegisters(s, dump=self.dump)
        wiring.connect(m, wiring.flipped(self.reg), regs.bus)
        m.submodules.seq = seq = EqSpikeSequencer(s)  # the sample's program (its inputs below)
        busy = seq.busy
        cycles, cycles_last = Signal(REG_BITS), Signal(REG_BITS)
        samples = Signal(REG_BITS)
        spikes, spikes_last = Signal(REG_BITS), Signal(REG_BITS)
        words, words_last = Signal(REG_BITS), Signal(REG_BITS)
        syn, syn_last = Signal(REG_BITS), Signal(REG_BITS)
        aer_bad, aer_err, wcmd_err = Signal(REG_BITS), Signal(), Signal()
        m.submodules.wport = wp = WeightPort(s, dump=self.dump)
        dg_active = wp.active  # a digest sweep is requested or running
        m.d.comb += [regs.busy.eq(busy | dg_active), regs.cycles.eq(cycles_last), regs.samples.eq(samples),
                     regs.digest.eq(wp.digest),
                     regs.spikes.eq(spikes_last), regs.words.eq(words_last), regs.syn.eq(syn_last),
                     regs.aer_bad.eq(aer_bad),
                     regs.status.eq(busy | dg_active | (aer_err * STATUS_AER_ERROR) | (wcmd_err * STATUS_WCMD_ERROR))]
        with m.If(regs.status_clear):
            m.d.sync += [aer_err.eq(0), wcmd_err.eq(0), aer_bad.eq(0)]
        self.regs = regs

        rng = s.uses_prng
        draw = Signal()
        rng_ok = Signal(init=1)
        rword = [Const(0, PRNG_WIDTH)] * P
        if rng:
            m.submodules.prng = prng = XorshiftBank(s.prng_spec())
            primed = Signal()
            prime = prng.ready & ~primed
            with m.If(regs.seed_load):
                m.d.comb += prng.load.eq(1)
                m.d.sync += primed.eq(0)
            with m.Elif(prime):
                m.d.sync += primed.eq(1)
            m.d.comb += [prng.seed.eq(self.reg.wdata), prng.en.eq(prime | draw),
                         rng_ok.eq(prng.ready & primed & ~(self.reg.we & (self.reg.addr == REG_SEED)))]
            rword = [prng.out[i * PRNG_WIDTH:(i + 1) * PRNG_WIDTH] for i in range(P)]

        # ---------------- the sample's program ----------------
        upd_busy = Signal()  # a weight-update word or its scatter writes are in flight
        m.d.comb += [seq.can_start.eq(wp.idle & rng_ok & ~self.reg.we), seq.ctrl_aer.eq(regs.aer_mode),
                     seq.aer_valid.eq(self.aer.valid), seq.inp_valid.eq(self.inp.valid), seq.T1.eq(regs.T1),
                     seq.T2.eq(regs.T2), seq.train.eq(regs.train), seq.evt_done.eq(evq.done),
                     seq.upd_busy.eq(upd_busy), seq.out_ready.eq(self.out.ready)]
        aer_mode, phase, neg, upd_mode, restore = seq.aer_mode, seq.phase, seq.neg, seq.upd_mode, seq.restore
        lay, wrd, lay1, wrd1 = seq.lay, seq.wrd, seq.lay1, seq.wrd1
        enc_v1, upd_v1, scan_v1, copy_v1 = seq.enc_v1, seq.upd_v1, seq.scan_v1, seq.copy_v1
        nudged = phase != 0
        if TRN:  # the update shifts of each connection from its η register (reset: the spec's lr_shift)
            ushift = [named((regs.lr[c] + s.update_shift(c, 0))[:7], f"ushift{c}") for c in range(L)]
            bshift = [named((regs.lr[c] + s.bias_update_shift(c, 0))[:7], f"bshift{c}") for c in range(L)]
        for k in range(1, L + 1):  # default addresses: the sweep's word (EVT/WUPD override some)
            m.d.comb += [rs[k].addr.eq(wrd), racc[k].addr.eq(wrd), rb[k - 1].addr.eq(wrd)]
            if TRN:
                m.d.comb += [rd_[k].addr.eq(wrd), re_[k].addr.eq(wrd)]
                m.d.comb += [rtr[k, st].addr.eq(wrd) for st in range(s.trace_stages)]
        for l in range(L + 1):
            m.d.comb += rphi[l].addr.eq(wrd)
        m.d.comb += [r.addr.eq(wrd) for r in snap_r.values()]
        m.d.comb += rx.addr.eq(wrd)

        label = Signal(self.label_bits)

        with m.If(busy & ~self.out.valid):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(seq.cycles_clear):
            m.d.sync += cycles.eq(0)
        with m.If(seq.idle):
            m.d.sync += [spikes.eq(0), words.eq(0), syn.eq(0)]
        with m.If(seq.load):  # the sample's pixels, one word per beat
            m.d.comb += [self.inp.ready.eq(1), wx.addr.eq(wrd), wx.data.eq(self.inp.payload.pixels.as_value()),
                         wx.en.eq(self.inp.valid)]
            with m.If(self.inp.valid):
                m.d.sync += label.eq(self.inp.payload.label)
        with m.If(seq.init):  # residues (zero, or one PRNG draw per word of layers 0 … L); states, acc, traces 0
            for l in range(L + 1):
                with m.If(lay == l):
                    bits = s.residue_bits(l)
                    if s.encoder_phase == "random":
                        b, M = s.encoder_bits(l), s.full_scale(l)
                        ph = [((const_mul(rword[i][:b], M) >> b) - (M // 2))[:bits] for i in range(P)]
                    else:
                        ph = [Const(0, bits)] * P
                    m.d.comb += [wphi[l].addr.eq(wrd), wphi[l].data.eq(Cat(*ph)), wphi[l].en.eq(1)]
                    if l >= 1:
                        m.d.comb += [ws[l].addr.eq(wrd), ws[l].data.eq(0), ws[l].en.eq(1),
                                     wacc[l].addr.eq(wrd), wacc[l].data.eq(0), wacc[l].en.eq(1)]
                        for st in range(s.trace_stages if TRN else 0):
                            m.d.comb += [wtr[l, st].addr.eq(wrd), wtr[l, st].data.eq(0), wtr[l, st].en.eq(1)]
            if s.encoder_phase == "random":
                m.d.comb += draw.eq(1)
        with m.If(seq.enc_end | seq.evt_end):  # the event engine's passes start
            m.d.comb += [evq.rewind.eq(1), evq.rewind_aer.eq(aer_mode & seq.enc_end)]
        m.d.comb += evq.clear.eq(seq.list_clear)
        m.d.comb += self.out.valid.eq(seq.out_valid)
        with m.If(seq.out_valid & self.out.ready):
            m.d.sync += [samples.eq(samples + 1), cycles_last.eq(cycles), spikes_last.eq(spikes),
                         words_last.eq(words), syn_last.eq(syn)]

        def valid_lane(wrd_v, l, i):
            """Lane i of word wrd_v holds a neuron of layer l (the last word may be padded)."""
            rem = N[l] - (T[l] - 1) * P
            return Const(1) if i < rem else (wrd_v != T[l] - 1)

        def popcount(bits):
            total = Const(0, 1)
            for b in range(len(bits)):
                total = total + bits[b]
            return total

        # ---------------- ENC stage 1: encoders, residues, traces, the mask list ----------------
        # Every layer's masks, residues and trace values are named signals driven outside the stage's
        # conditions (they only reach memories and counters under enc_v1 & lay1 == l): as nested
        # expressions a trace stage's saturation would copy its input three times and the second
        # stage its first stage's nine times, all evaluated every cycle by Verilator.
        enc = {}
        for l in range(L + 1):
            m.submodules[f"enc{l}"] = e_ = Encoders(s, l)
            m.d.comb += [e_.v.eq(rx.data if l == 0 else rs[l].data), e_.phi.eq(rphi[l].data), e_.word.eq(wrd1)]
            if stoch_enc:
                m.d.comb += e_.rnd.eq(prng.out)
            mask, nphi, news, dlist = e_.mask, e_.phi_next, [], Const(0, P * DB)
            if TRN and l >= 1:  # traces: stage 1 filters the spike, stage 2 stage 1's new value
                m.submodules[f"trace{l}"] = t_ = TraceFilter(s)
                m.d.comb += t_.mask.eq(mask)
                for st in range(s.trace_stages):
                    m.d.comb += getattr(t_, f"old{st}").eq(rtr[l, st].data)
                    news.append(getattr(t_, f"new{st}"))
                dlist = t_.d
            enc[l] = (mask, nphi, news, dlist)

        with m.If(enc_v1):
            if stoch_enc:
                m.d.comb += draw.eq(1)
            for l in range(L + 1):
                with m.If(lay1 == l):
                    mask, nphi, news, dlist = enc[l]
                    m.d.comb += [wphi[l].addr.eq(wrd1), wphi[l].data.eq(nphi),
                                 wphi[l].en.eq(int(not stoch_enc))]
                    if TRN and l >= 1:
                        for st, new in enumerate(news):
                            m.d.comb += [wtr[l, st].addr.eq(wrd1), wtr[l, st].data.eq(new), wtr[l, st].en.eq(1)]
                        m.d.comb += [wd_[l].addr.eq(wrd1), wd_[l].data.eq(dlist), wd_[l].en.eq(1),
                                     we_[l].addr.eq(wrd1), we_[l].data.eq(mask), we_[l].en.eq(1)]
                    counted = ~aer_mode if l == 0 else Const(1)
                    with m.If(counted):
                        m.d.sync += spikes.eq(spikes + popcount(mask))
                    if has_targets[l]:
                        with m.If(counted & (mask != 0)):
                            m.d.comb += [evq.push.eq(1), evq.push_lay.eq(l), evq.push_wrd.eq(wrd1),
                                         evq.push_mask.eq(mask)]
                            if TRN:
                                m.d.comb += evq.push_d.eq(dlist)

        # ---------------- EVT / WUPD: the event engine ----------------
        m.submodules.issue = ei = EventIssue(s)
        m.d.comb += [ei.run.eq(seq.evt), ei.upd_mode.eq(upd_mode), ei.stop.eq(seq.enc_end | seq.evt_end),
                     evq.pop.eq(ei.pop), ei.take.eq(evq.take), ei.ev_lay.eq(evq.lay), ei.ev_j.eq(evq.j),
                     ei.ev_jw.eq(evq.jw), ei.ev_jl.eq(evq.jl)]
        if TRN:
            m.d.comb += ei.ev_dj.eq(evq.dj)
        e1_v, e1_dn, e1_k, e1_tgt = ei.e1_v, ei.e1_dn, ei.e1_k, ei.e1_tgt
        u1_v, u1_dn, u1_k, u1_lay, u1_jw, u1_jl, u1_dj, u1_addr, u1_n = (
            ei.u1_v, ei.u1_dn, ei.u1_k, ei.u1_lay, ei.u1_jw, ei.u1_jl, ei.u1_dj, ei.u1_addr, ei.u1_n)
        with m.If(ei.issue):  # the issued row word's read, and the target's accumulator (and Δŝ, spikes) word
            for l in range(L):  # bottom-up rows: wup{l}, into layer l + 1
                with m.If((ei.lay == l) & ~ei.dn):
                    m.d.comb += [rup[l].addr.eq(ei.addr), racc[l + 1].addr.eq(ei.k)]
                    if TRN:
                        m.d.comb += [rd_[l + 1].addr.eq(ei.k), re_[l + 1].addr.eq(ei.k)]
            for l in range(2, L + 1):  # top-down rows: wdn{l-1}, into layer l - 1
                with m.If((ei.lay == l) & ei.dn):
                    m.d.comb += [rdn[l - 1].addr.eq(ei.addr), racc[l - 1].addr.eq(ei.k)]
                    if TRN:
                        m.d.comb += [rd_[l - 1].addr.eq(ei.k), re_[l - 1].addr.eq(ei.k)]
            with m.If(~upd_mode):
                m.d.sync += words.eq(words + 1)
        with m.If(ei.pop):
            with m.If(evq.aer_spike):
                m.d.sync += spikes.eq(spikes + 1)
            with m.If(evq.aer_bad):  # a neuron that does not exist: flagged and counted, never used
                m.d.sync += [aer_err.eq(1), aer_bad.eq(aer_bad + 1)]
            with m.If(evq.take & ~upd_mode):
                with m.Switch(evq.lay):
                    for l in range(L + 1):
                        with m.Case(l):
                            m.d.sync += syn.eq(syn + s.fan_out(l))
        for k in range(1, L + 1):  # stage 1: accumulator read-modify-write (add-only lanes)
            m.submodules[f"acc{k}_add"] = a_ = Accumulate(s, k)
            m.d.comb += [a_.acc.eq(racc[k].data), a_.up.eq(rup[k - 1].data)]
            if a_.has_dn:
                m.d.comb += [a_.dn.eq(rdn[k].data), a_.dn_sel.eq(e1_dn)]
            with m.If(e1_v & (e1_tgt == k)):
                m.d.comb += [wacc[k].addr.eq(e1_k), wacc[k].data.eq(a_.acc_next), wacc[k].en.eq(1)]
        if TRN:
            # stage 1 of a weight-update word (spec step 4): the row's new word written back; a connection
            # with a transposed copy then gets the P new values there, one element per cycle (scatter)
            m.submodules.scatter = sc = Scatter(s)
            m.d.comb += [sc.dn_in.eq(u1_dn), sc.lay_in.eq(u1_lay), sc.k_in.eq(u1_k), sc.jw_in.eq(u1_jw),
                         sc.jl_in.eq(u1_jl), sc.n.eq(u1_n)]
            m.d.comb += upd_busy.eq(ei.busy | sc.busy)
            # the new words of both update kinds (spec step 4)
            w_up_new, w_dn_new = {}, {}
            for c in range(L):
                lo, hi = s.element_range(f"w{c}")
                m.submodules[f"wupd_up{c}"] = u_ = SpikeUpdate(P, WB[c], DB, lo, hi, s.update_rounding, pre_term=True)
                m.d.comb += [u_.w.eq(rup[c].data), u_.d.eq(rd_[c + 1].data), u_.e.eq(re_[c + 1].data),
                             u_.dj.eq(u1_dj), u_.neg.eq(neg), u_.shift.eq(ushift[c])]
                w_up_new[c] = u_.new
                if c >= 1:
                    m.submodules[f"wupd_dn{c}"] = u_ = SpikeUpdate(P, WB[c], DB, lo, hi, s.update_rounding)
                    m.d.comb += [u_.w.eq(rdn[c].data), u_.d.eq(rd_[c].data), u_.neg.eq(neg), u_.shift.eq(ushift[c])]
                    w_dn_new[c] = u_.new
            with m.If(u1_v):
                for c in range(L):
                    with m.If((u1_lay == c) & ~u1_dn):  # presynaptic event j: row j of wup{c}, all posts i
                        new = w_up_new[c]
                        m.d.comb += [wup[c].addr.eq(u1_addr), wup[c].data.eq(new), wup[c].en.eq((1 << P) - 1)]
                        if c >= 1:
                            m.d.comb += [sc.start.eq(1), sc.en.eq(Cat(*[valid_lane(u1_k, c + 1, i) for i in range(P)]))]
                            m.d.comb += [sc.vals[i].eq(new.word_select(i, WB[c]).as_signed()) for i in range(P)]
                    if c >= 1:
                        with m.If((u1_lay == c + 1) & u1_dn):  # postsynaptic event i: row i of wdn{c}, pres not spiking
                            ee = re_[c].data
                            new = w_dn_new[c]
                            m.d.comb += [wdn[c].addr.eq(u1_addr), wdn[c].data.eq(new), wdn[c].en.eq(~ee)]
                            m.d.comb += [sc.start.eq(1),
                                         sc.en.eq(Cat(*[valid_lane(u1_k, c, p) & ~ee[p] for p in range(P)]))]
                            m.d.comb += [sc.vals[p].eq(new.word_select(p, WB[c]).as_signed()) for p in range(P)]
            for c in range(1, L):  # the scatter's element: into wdn{c} (row k·P + q, lane j) or wup{c} (lane i)
                with m.If(sc.act & (sc.lay == c) & ~sc.dn):
                    m.d.comb += [wdn[c].addr.eq(const_mul(sc.row, T[c]) + sc.jw),
                                 wdn[c].data.eq(Cat(*[sc.val[:WB[c]]] * P)), wdn[c].en.eq(sc.we)]
                with m.If(sc.act & (sc.lay == c + 1) & sc.dn):
                    m.d.comb += [wup[c].addr.eq(const_mul(sc.row, T[c + 1]) + sc.jw),
                                 wup[c].data.eq(Cat(*[sc.val[:WB[c]]] * P)), wup[c].en.eq(sc.we)]

        # ---------------- UPD stage 1: neuron updates (and, in a nudged phase, the nudge and bias updates) ----
        upd = {}
        for k in range(1, L + 1):
            m.submodules[f"neuron{k}"] = n_ = NeuronUpdate(s, k)
            m.d.comb += [n_.acc.eq(racc[k].data), n_.s.eq(rs[k].data), n_.b.eq(rb[k - 1].data)]
            if stoch_round:
                m.d.comb += n_.rnd.eq(prng.out)
            if n_.nudge:
                m.d.comb += [n_.word.eq(wrd1), n_.label.eq(label), n_.nudged.eq(nudged), n_.neg.eq(neg)]
            nb = None
            if TRN:  # b{k-1} ← sat(b + round(σ·Δŝ, bias_update_shift)): after this step's read (RMW)
                lo, hi = s.element_range(f"b{k - 1}")
                m.submodules[f"bupd{k - 1}"] = b_ = SpikeUpdate(P, BB, DB, lo, hi, s.update_rounding)
                m.d.comb += [b_.w.eq(rb[k - 1].data), b_.d.eq(rd_[k].data), b_.neg.eq(neg), b_.shift.eq(bshift[k - 1])]
                nb = b_.new
            upd[k] = (n_.s_next, nb)
        with m.If(upd_v1):
            if stoch_round:
                m.d.comb += draw.eq(1)
            for k in range(1, L + 1):
                with m.If(lay1 == k):
                    new, nb = upd[k]
                    m.d.comb += [ws[k].addr.eq(wrd1), ws[k].data.eq(new), ws[k].en.eq(1),
                                 wacc[k].addr.eq(wrd1), wacc[k].data.eq(0), wacc[k].en.eq(1)]
                    if TRN:
                        with m.If(nudged):
                            m.d.comb += [wb[k - 1].addr.eq(wrd1), wb[k - 1].data.eq(nb),
                                         wb[k - 1].en.eq((1 << P) - 1)]

        # ---------------- COPY stage 1: the free phase's end saved / restored (symmetric estimator) ----------
        if TRN and s.symmetric:
            with m.If(copy_v1):
                work = {f"phi{l}": (l, rphi[l], wphi[l]) for l in range(L + 1)}
                for k in range(1, L + 1):
                    work[f"s{k}"] = (k, rs[k], ws[k])
                    for st in range(s.trace_stages):
                        work[f"tr{k}_{st}"] = (k, rtr[k, st], wtr[k, st])
                for name, (layer, r_, w_) in work.items():
                    with m.If(lay1 == layer):
                        with m.If(restore):
                            m.d.comb += [w_.addr.eq(wrd1), w_.data.eq(snap_r[name].data), w_.en.eq(-1)]
                        with m.Else():
                            m.d.comb += [snap_w[name].addr.eq(wrd1), snap_w[name].data.eq(r_.data),
                                         snap_w[name].en.eq(-1)]

        # ---------------- SCAN stage 1: output states and argmax (lowest index on ties) ----------------
        m.submodules.scan = scan = OutputScan(s)
        m.d.comb += [scan.clear.eq(seq.scan_clear), scan.valid.eq(scan_v1), scan.word.eq(wrd1), scan.s.eq(rs[L].data),
                     self.out.payload.pred.eq(scan.pred), self.out.payload.states.eq(scan.states)]

        # ---------------- the weight port (between samples): its memory accesses win ----------------
        wiring.connect(m, wiring.flipped(self.wcmd), wp.wcmd)
        wiring.connect(m, wp.wrsp, wiring.flipped(self.wrsp))
        m.d.comb += [wp.seq_idle.eq(seq.idle), wp.digest_start.eq(regs.digest_start)]
        if self.dump:
            wiring.connect(m, wp.wdump, wiring.flipped(self.wdump))
            m.d.comb += wp.dump_start.eq(regs.dump_start)
        with m.If(wp.cmd_error):
            m.d.sync += wcmd_err.eq(1)
        ports = {**{f"wup{l}": (rup[l], wup[l]) for l in range(L)}, **{f"wdn{l}": (None, wdn[l]) for l in wdn},
                 **{f"b{l}": (rb[l], wb[l]) for l in range(L)}}
        for name, (r_, w_) in ports.items():
            mp = wp.mem[name]
            if r_ is not None:
                m.d.comb += mp.rdata.eq(r_.data)
                with m.If(mp.rsel):
                    m.d.comb += r_.addr.eq(mp.raddr)
            with m.If(mp.wen.any()):
                m.d.comb += [w_.addr.eq(mp.waddr), w_.data.eq(mp.wdata), w_.en.eq(mp.wen)]
        return m
