"""The event-driven EqSpike core (Amaranth 0.5): spiking EP inference, bit-exact with the twin.

Behaviour is defined by :class:`golden.eqspike.twin.EqSpikeTwin`, numbers by
:class:`spec.eqspike.EqSpikeSpec` (read its module docstring: formats, one time step, event order,
randomness). docs/eqspike.md, "RTL (hdl/eqspike.py)", describes the architecture, ports, registers,
the AER format and the cycle model. The passes' parts are components of :mod:`hdl.eqspike_kit` (sequencer,
encoders, trace filters, event queue and issue, accumulate, neuron and spike updates, scatter, output scan,
weight port, registers; the PRNG is :class:`hdl.kit.draws.DrawSource`), each tested on its own; this module
holds the memories and wires the parts to them. In short, per time step:

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
A neuron sent twice in one step adds its row twice (the twin's ``infer_events`` refuses that: hosts send sets);
in a training sample it is still one presynaptic spike of the weight update (the WUPD pass replays each input
neuron of the step once: :class:`~hdl.eqspike_kit.events.EventQueue`'s replay list;
:meth:`~golden.eqspike.twin.EqSpikeTwin.train_events` models both).

**On-chip learning** (``spec.training``, ``REG_CTRL`` bit 1; pixel input, or AER input with the label in
``REG_CTRL`` bits 8 … and events for every step of every phase): ENC also filters the spikes
into the traces and keeps the step's Δŝ and masks per layer (and Δŝ in the mask list); the free phase's
end is saved (symmetric estimator) and restored for the −β phase; in a nudged phase UPD adds the nudge
and updates the biases (read-modify-write after the step's read), and a **WUPD** pass after EVT walks
the step's events once more: a spike of presynaptic j rewrites row j of ``wup{l}`` (all posts i,
``D = Δŝ_i + e_i·Δŝ_j``), a spike of postsynaptic i rewrites the lanes j of row i of ``wdn{l}`` whose
e_j = 0 (``D = Δŝ_j``); a connection with two copies then writes the word's P new values into the
other copy one element per cycle. Every changed weight is written once per step, so the pass's
order does not matter, and it follows the step's reads (W(t+1) = W(t) + ΔW(t)).

**Ternary weights** (``weight_kind="ternary"``, inference): the cells of every ``w{l}`` in one
:class:`hdl.ternary_mem.TernaryWeightMemory` (:class:`hdl.eqspike_kit.ternary.TernaryRows`) instead of the
``wup{l}`` memories; a row word is a PCSA read (add α, subtract α or skip per lane); the ``wdn{l}`` copies
mirror the cells as stored (static faults included); cells programmed on ``tcmd``, the memory's registers
through ``REG_TMEM`` (docs/eqspike.md §9). **Ternary training** (``training``): latent weights ``v{l}`` in
``vup{l}``/``vdn{l}`` (the ``wup``/``wdn`` layouts, ``wcmd`` arrays 2L + l) take WUPD's update; after each nudged
step's WUPD a REPROG pass (:class:`hdl.eqspike_kit.reprog.Reprogram`) sweeps the words of the rows written since the
last pass (dirty bits) in address order and writes every word whose latents' ternary values changed through the
memory's update port (one PRNG draw, the changed cells masked for the static injector), mirrored into ``wdn{l}``;
such a core reads its cells raw (no PCSA draw), so the memory's PRNG steps only on written words, as in the twin.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import PRNG_WIDTH, EqSpikeSpec

from .eqspike_kit.accumulate import Accumulate
from .eqspike_kit.common import const_mul, named, popcount, round_shift, ubits, valid_lane  # noqa: F401  (round_shift: public)
from .eqspike_kit.encoder import Encoders
from .eqspike_kit.events import EventQueue, aer_addr_bits  # noqa: F401  (public here)
from .eqspike_kit.issue import EventIssue
from .eqspike_kit.neuron import NeuronUpdate
from .eqspike_kit.regs import (  # noqa: F401  (the public names of the register map stay importable from here)
    CTRL_AER,
    CTRL_LABEL_SHIFT,
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
    REG_TMEM,
    REG_WORDS,
    REGISTERS,
    STATUS_AER_ERROR,
    STATUS_BUSY,
    STATUS_REG_ERROR,
    STATUS_WCMD_ERROR,
    TMEM_NOWRITE,
    EqSpikeRegisters,
    lr_shift_min,
)
from .eqspike_kit.reprog import Reprogram
from .eqspike_kit.scan import OutputScan
from .eqspike_kit.scatter import Scatter
from .eqspike_kit.sequencer import EqSpikeSequencer
from .eqspike_kit.ternary import TernaryRows, tcmd_beats, tcmd_fields  # noqa: F401  (public here)
from .eqspike_kit.trace import TraceFilter
from .eqspike_kit.update import SpikeUpdate
from .eqspike_kit.wport import WeightPort, dump_bits, wcmd_fields  # noqa: F401  (public here)
from .kit.draws import DrawSource
from .regport import RegSignature

_ubits = ubits  # (the name other modules import)


def memory_images(spec: EqSpikeSpec, weights: dict) -> dict[str, list[int]]:
    """Initial contents of the core's weight and bias memories (``wup{l}``, ``wdn{l}``, ``b{l}``; a ternary core:
    ``tmem`` and the mirrored ``wdn{l}``; a ternary training core also ``vup{l}``, ``vdn{l}`` and ``tval``) for a
    weight dict in the image's layout (``w{l}`` (post, pre), ``b{l}``, ``v{l}``), as the ports would write them."""
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
    if spec.weight_kind == "ternary":  # the cells of every w{l} in one memory (hdl.eqspike_kit.ternary)
        from .eqspike_kit.ternary import ternary_words

        out["tmem"] = ternary_words(spec, weights)
        if spec.ternary_training:  # the intended cells (the reprogramming's reference), before any fault
            out["tval"] = list(out["tmem"])
    for l in range(spec.n_layers):
        w = np.asarray(weights[f"w{l}"], np.int64)
        if spec.weight_kind != "ternary":
            out[f"wup{l}"] = pack(w.T, spec.weight_bits[l])
        if l >= 1:
            out[f"wdn{l}"] = pack(w, spec.weight_bits[l])
        if spec.ternary_training:  # the latent weights in the wup/wdn layouts
            v = np.asarray(weights[f"v{l}"], np.int64)
            out[f"vup{l}"] = pack(v.T, spec.latent_bits[l])
            if l >= 1:
                out[f"vdn{l}"] = pack(v, spec.latent_bits[l])
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
    if spec.ternary_training and spec.update != "spike":
        raise ValueError(f"EqSpikeCore trains ternary weights with update='spike' only, not update={spec.update!r} "
                         "(the latent update of the fixed datapath)")
    if spec.training and spec.update_apply != "online":
        raise ValueError(f"EqSpikeCore implements update_apply='online' only (every step's weight changes written "
                         f"after the step), not {spec.update_apply!r}: the 'sample' rule's pending memory is "
                         f"twin-only (spec.eqspike)")


class EqSpikeCore(wiring.Component):
    """Event-driven EqSpike core: P add-only lanes, any layer sizes, fixed-point weights, on-chip learning.

    Parameters
    ----------
    spec : EqSpikeSpec — ``weight_kind`` ``"fixed"`` or ``"ternary"``; ``training`` adds the spike-driven learning
        datapath (ternary: on latent weights, with the REPROG pass; ``update="spike"`` only).
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
        if spec.weight_kind == "ternary":  # the cell memory's program port (hdl.eqspike_kit.ternary)
            tf = tcmd_fields(spec)
            ports["tcmd"] = In(stream.Signature(data.StructLayout({k: unsigned(v) for k, v in tf.items()})))
            ports["trsp"] = Out(stream.Signature(data.StructLayout({"data": unsigned(tf["data"])})))
        if self.dump:
            ports["wdump"] = Out(stream.Signature(data.StructLayout(
                {"data": data.ArrayLayout(signed(dump_bits(spec)), P)})))
        super().__init__(ports)

    def elaborate(self, platform):
        s, m = self.spec, Module()
        c = self._memories(m)
        self.reprog = getattr(c, "rp", None)  # (a ternary training core's REPROG sweep: tests count its cycles)
        c.named = lambda value, name: named(m, value, name)
        m.submodules.regs = c.regs = regs = EqSpikeRegisters(s, dump=self.dump)
        wiring.connect(m, wiring.flipped(self.reg), regs.bus)
        self.regs = regs
        m.submodules.seq = c.seq = EqSpikeSequencer(s)  # the sample's program
        m.submodules.wport = c.wp = WeightPort(s, dump=self.dump)  # the weight port and the digest sweep
        m.submodules.events = c.evq = EventQueue(s)  # the step's mask list and the AER input
        wiring.connect(m, wiring.flipped(self.aer), c.evq.aer)
        m.submodules.evt_issue = c.ei = EventIssue(s)  # each event's row words
        m.submodules.scan = c.scan = OutputScan(s)  # the output states and the argmax
        self._counters(m, c)
        self._prng(m, c)
        self._program(m, c)
        self._enc_stage(m, c)
        self._event_engine(m, c)
        if s.training:
            self._weight_update(m, c)
        self._upd_stage(m, c)
        if s.training and s.symmetric:
            self._copy_stage(m, c)
        self._weight_port(m, c)
        if s.weight_kind == "ternary":
            self._ternary(m, c)
        return m

    def _memories(self, m) -> SimpleNamespace:
        """The core's memories (P elements per word): read and write ports by name."""
        s, init = self.spec, self.init or {}
        P, L, N = s.lanes, s.n_layers, list(s.layers)
        T = [s.tiles(k) for k in range(L + 1)]
        WB, BB, SB, TRB, DB = list(s.weight_bits), s.bias_bits, s.state_bits, s.trace_frac + 1, s.trace_frac + 2

        def mem(name, bits, depth, granular=False, transparent=False, init_words=()):
            mm = memory.Memory(shape=unsigned(P * bits), depth=max(1, depth), init=list(init_words))
            m.submodules[name] = mm
            wp = mm.write_port(granularity=bits if granular else None)
            rp = mm.read_port(transparent_for=(wp,) if transparent else ())
            return rp, wp

        c = SimpleNamespace(rs=[None], ws=[None], racc=[None], wacc=[None], rb=[], wb=[], rup=[], wup=[], rdn={},
                            wdn={}, rtr={}, wtr={}, rd_={}, wd_={}, re_={}, we_={}, snap_r={}, snap_w={})
        c.rx, c.wx = mem("xmem", s.input_bits, T[0])
        c.rphi, c.wphi = zip(*[mem(f"phi{l}", s.residue_bits(l), T[l]) for l in range(L + 1)], strict=True)
        for k in range(1, L + 1):
            for (r_, w_), (rl, wl) in ((mem(f"smem{k}", SB, T[k]), (c.rs, c.ws)),
                                       (mem(f"acc{k}", s.acc_bits(k), T[k], transparent=True), (c.racc, c.wacc)),
                                       (mem(f"b{k - 1}", BB, T[k], granular=True, init_words=init.get(f"b{k - 1}", ())),
                                        (c.rb, c.wb))):
                rl.append(r_)
                wl.append(w_)
        if s.weight_kind == "ternary":  # every w{l}'s cells in one memory: its PCSA read gives the row words
            m.submodules.tmem = c.tr = TernaryRows(s, init.get("tmem"))
        for l in range(L):
            if s.weight_kind == "ternary":
                ab = range(max(2, N[l] * T[l + 1]))
                r_ = SimpleNamespace(addr=Signal(ab, name=f"wup{l}_raddr"), data=c.tr.rdata)
                w_ = SimpleNamespace(addr=Signal(ab), data=Signal(P * WB[l]), en=Signal(P))  # (never written)
            else:
                r_, w_ = mem(f"wup{l}", WB[l], N[l] * T[l + 1], granular=True, init_words=init.get(f"wup{l}", ()))
            c.rup.append(r_)
            c.wup.append(w_)
            if l >= 1:
                c.rdn[l], c.wdn[l] = mem(f"wdn{l}", WB[l], N[l + 1] * T[l], granular=True,
                                         init_words=init.get(f"wdn{l}", ()))
        # a ternary training core: the latent weights v{l} in the wup/wdn layouts (WUPD updates them), and the
        # reprogramming sweep that follows their ternary values into the cells (with the intended cells)
        c.rvu, c.wvu, c.rvd, c.wvd = [], [], {}, {}
        if s.ternary_training:
            LB = list(s.latent_bits)
            for l in range(L):
                r_, w_ = mem(f"vup{l}", LB[l], N[l] * T[l + 1], granular=True, init_words=init.get(f"vup{l}", ()))
                c.rvu.append(r_)
                c.wvu.append(w_)
                if l >= 1:
                    c.rvd[l], c.wvd[l] = mem(f"vdn{l}", LB[l], N[l + 1] * T[l], granular=True,
                                             init_words=init.get(f"vdn{l}", ()))
            m.submodules.reprog = c.rp = Reprogram(s, init.get("tval"))
        # training: traces (per stage), the step's Δŝ and spike masks of layers 1 … L, and the free phase's
        # end (residues, states, traces) kept for the −β phase of the symmetric estimator
        if s.training:
            for k in range(1, L + 1):
                for st in range(s.trace_stages):
                    c.rtr[k, st], c.wtr[k, st] = mem(f"tr{k}_{st}", TRB, T[k])
                c.rd_[k], c.wd_[k] = mem(f"dmem{k}", DB, T[k])
                c.re_[k], c.we_[k] = mem(f"emem{k}", 1, T[k])
            if s.symmetric:
                for l in range(L + 1):
                    c.snap_r[f"phi{l}"], c.snap_w[f"phi{l}"] = mem(f"snap_phi{l}", s.residue_bits(l), T[l])
                for k in range(1, L + 1):
                    c.snap_r[f"s{k}"], c.snap_w[f"s{k}"] = mem(f"snap_s{k}", SB, T[k])
                    for st in range(s.trace_stages):
                        c.snap_r[f"tr{k}_{st}"], c.snap_w[f"tr{k}_{st}"] = mem(f"snap_tr{k}_{st}", TRB, T[k])
        return c

    def _counters(self, m, c) -> None:
        """The sample counters and sticky flags behind the registers."""
        regs, seq, wp = c.regs, c.seq, c.wp
        c.cycles, c.cycles_last = Signal(REG_BITS), Signal(REG_BITS)
        c.samples = Signal(REG_BITS)
        c.spikes, c.spikes_last = Signal(REG_BITS), Signal(REG_BITS)
        c.words, c.words_last = Signal(REG_BITS), Signal(REG_BITS)
        c.syn, c.syn_last = Signal(REG_BITS), Signal(REG_BITS)
        c.aer_bad, c.aer_err, c.wcmd_err = Signal(REG_BITS), Signal(), Signal()
        busy = seq.busy | wp.active  # a sample runs, or a digest sweep is requested or running
        m.d.comb += [regs.busy.eq(busy), regs.cycles.eq(c.cycles_last), regs.samples.eq(c.samples),
                     regs.digest.eq(wp.digest), regs.spikes.eq(c.spikes_last), regs.words.eq(c.words_last),
                     regs.syn.eq(c.syn_last), regs.aer_bad.eq(c.aer_bad),
                     regs.status.eq(busy | (c.aer_err * STATUS_AER_ERROR) | (c.wcmd_err * STATUS_WCMD_ERROR))]
        with m.If(regs.status_clear):
            m.d.sync += [c.aer_err.eq(0), c.wcmd_err.eq(0), c.aer_bad.eq(0)]

    def _prng(self, m, c) -> None:
        """The PRNG bank (:class:`hdl.kit.draws.DrawSource`): seeded by a SEED write, primed, one draw per
        ``c.draw`` cycle (``c.rng_ok``: a sample may start)."""
        s, P = self.spec, self.spec.lanes
        c.draw, c.rng_ok, c.prng_out = Signal(), Signal(init=1), Const(0, P * PRNG_WIDTH)
        if s.uses_prng:
            m.submodules.prng = prng = DrawSource(s.prng_spec())
            m.d.comb += [prng.seed.eq(self.reg.wdata), prng.seed_load.eq(c.regs.seed_load), prng.draw.eq(c.draw),
                         prng.seed_write.eq(self.reg.we & (self.reg.addr == REG_SEED)), c.rng_ok.eq(prng.ok)]
            c.prng_out = prng.out

    def _program(self, m, c) -> None:
        """The sequencer's inputs and the passes' plain parts: the sweep's read addresses, LOAD, INIT, OUT."""
        s, seq, regs, evq = self.spec, c.seq, c.regs, c.evq
        P, L = s.lanes, s.n_layers
        c.upd_busy = Signal()  # a weight-update word or its scatter writes are in flight
        can = c.wp.idle & c.rng_ok & ~self.reg.we
        if s.weight_kind == "ternary":  # and the cell memory seeded, no mirror running, no program command waiting
            can = can & c.tr.idle & ~c.tr.busy & ~self.tcmd.valid
        m.d.comb += [seq.can_start.eq(can), seq.ctrl_aer.eq(regs.aer_mode),
                     seq.aer_valid.eq(self.aer.valid), seq.inp_valid.eq(self.inp.valid), seq.T1.eq(regs.T1),
                     seq.T2.eq(regs.T2), seq.train.eq(regs.train), seq.evt_done.eq(evq.done),
                     seq.upd_busy.eq(c.upd_busy), seq.out_ready.eq(self.out.ready)]
        c.nudged = seq.phase != 0
        if s.training:  # the update shifts of each connection from its η register (reset: the spec's lr_shift)
            c.ushift = [c.named((regs.lr[l] + s.update_shift(l, 0))[:7], f"ushift{l}") for l in range(L)]
            c.bshift = [c.named((regs.lr[l] + s.bias_update_shift(l, 0))[:7], f"bshift{l}") for l in range(L)]
        wrd, lay = seq.wrd, seq.lay
        reads = [c.rx, *c.rphi, *c.rs[1:], *c.racc[1:], *c.rb, *c.rd_.values(), *c.re_.values(), *c.rtr.values(),
                 *c.snap_r.values()]
        m.d.comb += [r.addr.eq(wrd) for r in reads]  # default addresses: the sweep's word (EVT/WUPD override some)
        c.label = Signal(self.label_bits)
        with m.If(seq.busy & ~self.out.valid):
            m.d.sync += c.cycles.eq(c.cycles + 1)
        with m.If(seq.cycles_clear):
            m.d.sync += c.cycles.eq(0)
        with m.If(seq.idle):
            m.d.sync += [c.spikes.eq(0), c.words.eq(0), c.syn.eq(0)]
        with m.If(seq.load):  # the sample's pixels, one word per beat
            m.d.comb += [self.inp.ready.eq(1), c.wx.addr.eq(wrd), c.wx.data.eq(self.inp.payload.pixels.as_value()),
                         c.wx.en.eq(self.inp.valid)]
            with m.If(self.inp.valid):
                m.d.sync += c.label.eq(self.inp.payload.label)
        if s.training:  # an AER sample's label: REG_CTRL's (latched while idle)
            with m.If(seq.idle & regs.aer_mode):
                m.d.sync += c.label.eq(regs.label)
        with m.If(seq.init):  # residues (zero, or one PRNG draw per word of layers 0 … L); states, acc, traces 0
            for l in range(L + 1):
                with m.If(lay == l):
                    bits = s.residue_bits(l)
                    if s.encoder_phase == "random":
                        b, M = s.encoder_bits(l), s.full_scale(l)
                        rw = [c.prng_out[i * PRNG_WIDTH:(i + 1) * PRNG_WIDTH] for i in range(P)]
                        ph = [((const_mul(rw[i][:b], M) >> b) - (M // 2))[:bits] for i in range(P)]
                    else:
                        ph = [Const(0, bits)] * P
                    zero = [(c.wphi[l], Cat(*ph))]
                    if l >= 1:
                        zero += [(c.ws[l], 0), (c.wacc[l], 0)] + [(c.wtr[l, st], 0) for st in range(
                            s.trace_stages if s.training else 0)]
                    for w_, v in zero:
                        m.d.comb += [w_.addr.eq(wrd), w_.data.eq(v), w_.en.eq(1)]
            if s.encoder_phase == "random":
                m.d.comb += c.draw.eq(1)
        with m.If(seq.enc_end | seq.evt_end):  # the event engine's passes start
            m.d.comb += [evq.rewind.eq(1), evq.rewind_aer.eq(seq.aer_mode & seq.enc_end)]
            if s.training:  # AER training: WUPD replays the step's input events (EventQueue's replay list)
                m.d.comb += evq.rewind_replay.eq(seq.aer_mode & seq.evt_end & c.nudged)
        if s.training:
            m.d.comb += evq.track.eq(seq.aer_mode & c.nudged)
        m.d.comb += [evq.clear.eq(seq.list_clear), self.out.valid.eq(seq.out_valid)]
        with m.If(seq.out_valid & self.out.ready):
            m.d.sync += [c.samples.eq(c.samples + 1), c.cycles_last.eq(c.cycles), c.spikes_last.eq(c.spikes),
                         c.words_last.eq(c.words), c.syn_last.eq(c.syn)]
        scan = c.scan
        m.d.comb += [scan.clear.eq(seq.scan_clear), scan.valid.eq(seq.scan_v1), scan.word.eq(seq.wrd1),
                     scan.s.eq(c.rs[L].data), self.out.payload.pred.eq(scan.pred),
                     self.out.payload.states.eq(scan.states)]

    def _enc_stage(self, m, c) -> None:
        """ENC stage 1: the encoders, residues, traces, Δŝ and spike masks of a word; the mask list."""
        s, seq, evq = self.spec, c.seq, c.evq
        P, L, TRN = s.lanes, s.n_layers, s.training
        stoch = s.encoder == "stochastic"
        wrd1 = seq.wrd1
        enc = {}
        for l in range(L + 1):
            m.submodules[f"enc{l}"] = e_ = Encoders(s, l)
            m.d.comb += [e_.v.eq(c.rx.data if l == 0 else c.rs[l].data), e_.phi.eq(c.rphi[l].data), e_.word.eq(wrd1)]
            if stoch:
                m.d.comb += e_.rnd.eq(c.prng_out)
            news, dlist = [], Const(0, P * (s.trace_frac + 2))
            if TRN and l >= 1:  # traces: stage 1 filters the spike, stage 2 stage 1's new value
                m.submodules[f"trace{l}"] = t_ = TraceFilter(s)
                m.d.comb += t_.mask.eq(e_.mask)
                for st in range(s.trace_stages):
                    m.d.comb += getattr(t_, f"old{st}").eq(c.rtr[l, st].data)
                    news.append(getattr(t_, f"new{st}"))
                dlist = t_.d
            enc[l] = (e_.mask, e_.phi_next, news, dlist)
        with m.If(seq.enc_v1):
            if stoch:
                m.d.comb += c.draw.eq(1)
            for l in range(L + 1):
                with m.If(seq.lay1 == l):
                    mask, nphi, news, dlist = enc[l]
                    m.d.comb += [c.wphi[l].addr.eq(wrd1), c.wphi[l].data.eq(nphi), c.wphi[l].en.eq(int(not stoch))]
                    if TRN and l >= 1:
                        for st, new in enumerate(news):
                            m.d.comb += [c.wtr[l, st].addr.eq(wrd1), c.wtr[l, st].data.eq(new), c.wtr[l, st].en.eq(1)]
                        m.d.comb += [c.wd_[l].addr.eq(wrd1), c.wd_[l].data.eq(dlist), c.wd_[l].en.eq(1),
                                     c.we_[l].addr.eq(wrd1), c.we_[l].data.eq(mask), c.we_[l].en.eq(1)]
                    counted = ~seq.aer_mode if l == 0 else Const(1)
                    with m.If(counted):
                        m.d.sync += c.spikes.eq(c.spikes + popcount(mask))
                    if l < L or l >= 2:  # a layer with targets: its non-zero masks into the list
                        with m.If(counted & (mask != 0)):
                            m.d.comb += [evq.push.eq(1), evq.push_lay.eq(l), evq.push_wrd.eq(wrd1),
                                         evq.push_mask.eq(mask)]
                            if TRN:
                                m.d.comb += evq.push_d.eq(dlist)

    def _event_engine(self, m, c) -> None:
        """EVT / WUPD: the queue's events into the issue; the issued words' reads; the accumulate stage."""
        s, seq, evq, ei = self.spec, c.seq, c.evq, c.ei
        L, TRN = s.n_layers, s.training
        upd_mode = seq.upd_mode
        m.d.comb += [ei.run.eq(seq.evt), ei.upd_mode.eq(upd_mode), ei.stop.eq(seq.enc_end | seq.evt_end),
                     evq.pop.eq(ei.pop), ei.take.eq(evq.take), ei.ev_lay.eq(evq.lay), ei.ev_j.eq(evq.j),
                     ei.ev_jw.eq(evq.jw), ei.ev_jl.eq(evq.jl)]
        if TRN:
            m.d.comb += ei.ev_dj.eq(evq.dj)
        with m.If(ei.issue):  # the issued row word's read, and the target's accumulator (and Δŝ, spikes) word
            for l in range(L):  # bottom-up rows: wup{l}, into layer l + 1
                with m.If((ei.lay == l) & ~ei.dn):
                    m.d.comb += [c.rup[l].addr.eq(ei.addr), c.racc[l + 1].addr.eq(ei.k)]
                    if c.rvu:  # (WUPD updates the latent row)
                        m.d.comb += c.rvu[l].addr.eq(ei.addr)
                    if TRN:
                        m.d.comb += [c.rd_[l + 1].addr.eq(ei.k), c.re_[l + 1].addr.eq(ei.k)]
            for l in range(2, L + 1):  # top-down rows: wdn{l-1}, into layer l - 1
                with m.If((ei.lay == l) & ei.dn):
                    m.d.comb += [c.rdn[l - 1].addr.eq(ei.addr), c.racc[l - 1].addr.eq(ei.k)]
                    if c.rvu:
                        m.d.comb += c.rvd[l - 1].addr.eq(ei.addr)
                    if TRN:
                        m.d.comb += [c.rd_[l - 1].addr.eq(ei.k), c.re_[l - 1].addr.eq(ei.k)]
            with m.If(~upd_mode):
                m.d.sync += c.words.eq(c.words + 1)
        with m.If(ei.pop):
            with m.If(evq.aer_spike):
                m.d.sync += c.spikes.eq(c.spikes + 1)
            with m.If(evq.aer_bad):  # a neuron that does not exist: flagged and counted, never used
                m.d.sync += [c.aer_err.eq(1), c.aer_bad.eq(c.aer_bad + 1)]
            with m.If(evq.take & ~upd_mode):
                with m.Switch(evq.lay):
                    for l in range(L + 1):
                        with m.Case(l):
                            m.d.sync += c.syn.eq(c.syn + s.fan_out(l))
        for k in range(1, L + 1):  # stage 1: accumulator read-modify-write (add-only lanes)
            m.submodules[f"acc{k}_add"] = a_ = Accumulate(s, k)
            m.d.comb += [a_.acc.eq(c.racc[k].data), a_.up.eq(c.rup[k - 1].data)]
            if a_.has_dn:
                m.d.comb += [a_.dn.eq(c.rdn[k].data), a_.dn_sel.eq(ei.e1_dn)]
            with m.If(ei.e1_v & (ei.e1_tgt == k)):
                m.d.comb += [c.wacc[k].addr.eq(ei.e1_k), c.wacc[k].data.eq(a_.acc_next), c.wacc[k].en.eq(1)]

    def _weight_update(self, m, c) -> None:
        """WUPD stage 1 (spec step 4): a row's new word written back; a connection with a transposed copy then
        gets the P new values there, one element per cycle (scatter)."""
        s, ei = self.spec, c.ei
        P, L, N, WB, DB = s.lanes, s.n_layers, list(s.layers), list(s.weight_bits), s.trace_frac + 2
        T = [s.tiles(k) for k in range(L + 1)]
        lat = s.ternary_training  # the update lands on the latent weights (vup/vdn in the wup/wdn layouts)
        rup, wup, rdn, wdn = (c.rvu, c.wvu, c.rvd, c.wvd) if lat else (c.rup, c.wup, c.rdn, c.wdn)
        if lat:
            WB = list(s.latent_bits)
        m.submodules.scatter = sc = Scatter(s)
        m.d.comb += [sc.dn_in.eq(ei.u1_dn), sc.lay_in.eq(ei.u1_lay), sc.k_in.eq(ei.u1_k), sc.jw_in.eq(ei.u1_jw),
                     sc.jl_in.eq(ei.u1_jl), sc.n.eq(ei.u1_n), c.upd_busy.eq(ei.busy | sc.busy)]
        for l in range(L):
            lo, hi = s.element_range(f"v{l}" if lat else f"w{l}")
            m.submodules[f"wupd_up{l}"] = u_ = SpikeUpdate(P, WB[l], DB, lo, hi, s.update_rounding, pre_term=True)
            m.d.comb += [u_.w.eq(rup[l].data), u_.d.eq(c.rd_[l + 1].data), u_.e.eq(c.re_[l + 1].data),
                         u_.dj.eq(ei.u1_dj), u_.neg.eq(c.seq.neg), u_.shift.eq(c.ushift[l])]
            with m.If(ei.u1_v & (ei.u1_lay == l) & ~ei.u1_dn):  # presynaptic event j: row j of wup{l}, all posts
                m.d.comb += [wup[l].addr.eq(ei.u1_addr), wup[l].data.eq(u_.new), wup[l].en.eq((1 << P) - 1)]
                if lat:  # latent row j written: REPROG sweeps it
                    m.d.comb += [getattr(c.rp, f"mark{l}_en").eq(Const(1, P) << ei.u1_jl),
                                 getattr(c.rp, f"mark{l}_jw").eq(ei.u1_jw)]
                if l >= 1:
                    lanes_ = [valid_lane(ei.u1_k, N[l + 1], T[l + 1], P, i) for i in range(P)]
                    m.d.comb += [sc.start.eq(1), sc.en.eq(Cat(*lanes_))]
                    m.d.comb += [sc.vals[i].eq(u_.new.word_select(i, WB[l]).as_signed()) for i in range(P)]
            if l >= 1:
                m.submodules[f"wupd_dn{l}"] = u_ = SpikeUpdate(P, WB[l], DB, lo, hi, s.update_rounding)
                m.d.comb += [u_.w.eq(rdn[l].data), u_.d.eq(c.rd_[l].data), u_.neg.eq(c.seq.neg),
                             u_.shift.eq(c.ushift[l])]
                with m.If(ei.u1_v & (ei.u1_lay == l + 1) & ei.u1_dn):  # postsynaptic event i: row i of wdn{l}
                    ee = c.re_[l].data  # (the presynaptic neurons that spiked got theirs from their own event)
                    m.d.comb += [wdn[l].addr.eq(ei.u1_addr), wdn[l].data.eq(u_.new), wdn[l].en.eq(~ee)]
                    lanes_ = [valid_lane(ei.u1_k, N[l], T[l], P, p) & ~ee[p] for p in range(P)]
                    m.d.comb += [sc.start.eq(1), sc.en.eq(Cat(*lanes_))]
                    if lat:  # the scatter writes rows k·P + p of vup{l}: REPROG sweeps them
                        m.d.comb += [getattr(c.rp, f"mark{l}_en").eq(Cat(*lanes_)),
                                     getattr(c.rp, f"mark{l}_jw").eq(ei.u1_k)]
                    m.d.comb += [sc.vals[p].eq(u_.new.word_select(p, WB[l]).as_signed()) for p in range(P)]
        for l in range(1, L):  # the scatter's element: into wdn{l} (row k·P + q, lane j) or wup{l} (lane i)
            with m.If(sc.act & (sc.lay == l) & ~sc.dn):
                m.d.comb += [wdn[l].addr.eq(const_mul(sc.row, T[l]) + sc.jw),
                             wdn[l].data.eq(Cat(*[sc.val[:WB[l]]] * P)), wdn[l].en.eq(sc.we)]
            with m.If(sc.act & (sc.lay == l + 1) & sc.dn):
                m.d.comb += [wup[l].addr.eq(const_mul(sc.row, T[l + 1]) + sc.jw),
                             wup[l].data.eq(Cat(*[sc.val[:WB[l]]] * P)), wup[l].en.eq(sc.we)]

    def _upd_stage(self, m, c) -> None:
        """UPD stage 1: the neuron updates (and, in a nudged phase, the nudge and the bias updates)."""
        s, seq = self.spec, c.seq
        P, L, TRN = s.lanes, s.n_layers, s.training
        stoch = s.state_rounding == "stochastic"
        if stoch:
            with m.If(seq.upd_v1):
                m.d.comb += c.draw.eq(1)
        for k in range(1, L + 1):
            m.submodules[f"neuron{k}"] = n_ = NeuronUpdate(s, k)
            m.d.comb += [n_.acc.eq(c.racc[k].data), n_.s.eq(c.rs[k].data), n_.b.eq(c.rb[k - 1].data)]
            if stoch:
                m.d.comb += n_.rnd.eq(c.prng_out)
            if n_.nudge:
                m.d.comb += [n_.word.eq(seq.wrd1), n_.label.eq(c.label), n_.nudged.eq(c.nudged), n_.neg.eq(seq.neg)]
            if TRN:  # b{k-1} ← sat(b + round(σ·Δŝ, bias_update_shift)): after this step's read (RMW)
                lo, hi = s.element_range(f"b{k - 1}")
                m.submodules[f"bupd{k - 1}"] = b_ = SpikeUpdate(P, s.bias_bits, s.trace_frac + 2, lo, hi,
                                                                s.update_rounding)
                m.d.comb += [b_.w.eq(c.rb[k - 1].data), b_.d.eq(c.rd_[k].data), b_.neg.eq(seq.neg),
                             b_.shift.eq(c.bshift[k - 1])]
            with m.If(seq.upd_v1 & (seq.lay1 == k)):
                m.d.comb += [c.ws[k].addr.eq(seq.wrd1), c.ws[k].data.eq(n_.s_next), c.ws[k].en.eq(1),
                             c.wacc[k].addr.eq(seq.wrd1), c.wacc[k].data.eq(0), c.wacc[k].en.eq(1)]
                if TRN:
                    with m.If(c.nudged):
                        m.d.comb += [c.wb[k - 1].addr.eq(seq.wrd1), c.wb[k - 1].data.eq(b_.new),
                                     c.wb[k - 1].en.eq((1 << P) - 1)]

    def _copy_stage(self, m, c) -> None:
        """COPY stage 1: the free phase's end saved / restored (symmetric estimator)."""
        s, seq, L = self.spec, c.seq, self.spec.n_layers
        work = {f"phi{l}": (l, c.rphi[l], c.wphi[l]) for l in range(L + 1)}
        for k in range(1, L + 1):
            work[f"s{k}"] = (k, c.rs[k], c.ws[k])
            for st in range(s.trace_stages):
                work[f"tr{k}_{st}"] = (k, c.rtr[k, st], c.wtr[k, st])
        with m.If(seq.copy_v1):
            for name, (layer, r_, w_) in work.items():
                with m.If(seq.lay1 == layer):
                    with m.If(seq.restore):
                        m.d.comb += [w_.addr.eq(seq.wrd1), w_.data.eq(c.snap_r[name].data), w_.en.eq(-1)]
                    with m.Else():
                        m.d.comb += [c.snap_w[name].addr.eq(seq.wrd1), c.snap_w[name].data.eq(r_.data),
                                     c.snap_w[name].en.eq(-1)]

    def _ternary(self, m, c) -> None:
        """Ternary weights: the row reads (EVT's bottom-up words, the weight port's and the sweep's) through
        the cell memory's PCSA, its program port and registers, its mirror into the top-down copies."""
        s, tr, ei, wp = self.spec, c.tr, c.ei, c.wp
        L = s.n_layers
        addr = Const(0, len(tr.raddr))
        ren = Const(0, 1)
        if s.ternary_training:  # the REPROG sweep's raw reads of the stored cells
            rp = c.rp
            addr, ren = rp.c_addr, rp.issue
        for l in reversed(range(L)):
            sel = c.named((ei.issue & (ei.lay == l) & ~ei.dn) | wp.mem[f"wup{l}"].rsel, f"tsel{l}")
            addr = Mux(sel, c.rup[l].addr + s.ternary_base(l), addr)
            ren = ren | sel
        m.d.comb += [tr.raddr.eq(addr), tr.ren.eq(ren), tr.allow.eq(c.seq.idle & wp.idle)]
        if s.ternary_training:
            cmd = self.tcmd.payload
            m.d.comb += [rp.start.eq(c.seq.reprog_start), c.seq.reprog_done.eq(rp.done), rp.mir_busy.eq(~tr.idle),
                         rp.cells.eq(tr.cells), tr.up_en.eq(rp.up_en), tr.up_addr.eq(rp.up_addr),
                         tr.up_data.eq(rp.up_data), tr.up_mask.eq(rp.up_mask), tr.up_jw.eq(rp.up_jw),
                         tr.up_jl.eq(rp.up_jl), tr.up_t.eq(rp.up_t),
                         rp.prog_en.eq(self.tcmd.valid & self.tcmd.ready & cmd.write), rp.prog_addr.eq(cmd.addr),
                         rp.prog_data.eq(cmd.data)]
            for l in range(L):  # rows written on wcmd (latents) or tcmd (cells) are swept by the next REPROG
                prog = rp.prog_en & (cmd.addr >= s.ternary_base(l)) & (cmd.addr < s.ternary_base(l + 1))
                with m.If(wp.mem[f"vup{l}"].wen.any()):
                    m.d.comb += [getattr(rp, f"mark{l}_en").eq(Const(1, s.lanes) << self.wcmd.payload.j_lane),
                                 getattr(rp, f"mark{l}_jw").eq(self.wcmd.payload.j_word)]
                with m.If(prog):
                    m.d.comb += [getattr(rp, f"mark{l}_en").eq(Const(1, s.lanes) << cmd.j_lane),
                                 getattr(rp, f"mark{l}_jw").eq(cmd.j_word)]
            for l in range(L):  # the sweep's latent reads
                m.d.comb += getattr(rp, f"v{l}").eq(c.rvu[l].data)
                with m.If(rp.busy & (rp.v_conn == l)):
                    m.d.comb += c.rvu[l].addr.eq(rp.v_addr)
        wiring.connect(m, wiring.flipped(self.tcmd), tr.tcmd)
        wiring.connect(m, tr.trsp, wiring.flipped(self.trsp))
        wiring.connect(m, c.regs.tmem, tr.reg)
        for l in range(1, L):
            with m.If(tr.mir_v & (tr.mir_lay == l)):
                m.d.comb += [c.wdn[l].addr.eq(tr.mir_addr), c.wdn[l].data.eq(Cat(*[tr.mir_val] * s.lanes)),
                             c.wdn[l].en.eq(Const(1, s.lanes) << tr.mir_lane)]

    def _weight_port(self, m, c) -> None:
        """The weight port (between samples): its memory accesses win over the passes' (none runs then)."""
        wp, regs, L = c.wp, c.regs, self.spec.n_layers
        wiring.connect(m, wiring.flipped(self.wcmd), wp.wcmd)
        wiring.connect(m, wp.wrsp, wiring.flipped(self.wrsp))
        m.d.comb += [wp.seq_idle.eq(c.seq.idle), wp.digest_start.eq(regs.digest_start)]
        if self.dump:
            wiring.connect(m, wp.wdump, wiring.flipped(self.wdump))
            m.d.comb += wp.dump_start.eq(regs.dump_start)
        with m.If(wp.cmd_error):
            m.d.sync += c.wcmd_err.eq(1)
        ports = {**{f"wup{l}": (c.rup[l], c.wup[l]) for l in range(L)}, **{f"wdn{l}": (None, c.wdn[l]) for l in c.wdn},
                 **{f"b{l}": (c.rb[l], c.wb[l]) for l in range(L)},
                 **{f"vup{l}": (r_, w_) for l, (r_, w_) in enumerate(zip(c.rvu, c.wvu, strict=True))},
                 **{f"vdn{l}": (None, c.wvd[l]) for l in c.wvd}}
        for name, (r_, w_) in ports.items():
            mp = wp.mem[name]
            if r_ is not None:
                m.d.comb += mp.rdata.eq(r_.data)
                with m.If(mp.rsel):
                    m.d.comb += r_.addr.eq(mp.raddr)
            with m.If(mp.wen.any()):
                m.d.comb += [w_.addr.eq(mp.waddr), w_.data.eq(mp.wdata), w_.en.eq(mp.wen)]
