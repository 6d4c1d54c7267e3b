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

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spec.eqspike import DIGEST_ADD, DIGEST_LANE_ROT, DIGEST_ROT, PRNG_WIDTH, EqSpikeSpec
from spec.fixed import ROUNDINGS

from .fixed import saturate
from .prng import XorshiftBank
from .regport import REG_ADDR_BITS, RegSignature

REG_BITS = 32
# register map (addresses on the 4-bit register port)
REG_CTRL = 0  # bit 0: AER input mode, bit 1: train (on-chip learning; pixel input only)
REG_T1 = 1  # free-phase steps (1 .. 2^step_bits - 1)
REG_T2 = 2  # nudged-phase steps (training)
REG_SEED = 3  # PRNG seed (a write reseeds the bank)
REG_STATUS = 4  # bit 0 busy, bit 1 refused register write, bit 2 bad AER event, bit 3 bad weight command
REG_CYCLES = 5  # cycles of the last sample (start to prediction valid)
REG_SAMPLES = 6  # samples done since reset
REG_SPIKES = 7  # spikes of the last sample, layers 0 .. L
REG_WORDS = 8  # weight words read by the event engine in the last sample
REG_SYN = 9  # synaptic events of the last sample (spikes x fan-out: the twin's synaptic_events)
REG_AER_BAD = 10  # AER events for a neuron that does not exist, since the last STATUS write
REG_SPEC_ID = 11  # the spec digest's first 32 bits
REG_DIGEST = 12  # write: sweep every weight and bias memory word (STATUS busy meanwhile); read: the sweep's digest
REG_DUMP = 13  # write (cores built with dump=True): the digest sweep, every word also out on ``wdump``; reads 0
# training cores: the η registers (η = 2^-lr_shift per connection; reset: the spec's lr_shift). A write is
# ``shift | connection << 8`` (connection LR_ALL: every connection), shift in [lr_shift_min(spec, c), 32]
# (spec.eqspike.EqSpikeSpec.check_lr_shift); a read gives connection c's shift in bits 6c … 6c + 5 (c < 5)
REG_LR = 14
LR_ALL = 0xFF
LR_MAX = 32
CTRL_AER, CTRL_TRAIN = 1, 2
STATUS_BUSY, STATUS_REG_ERROR, STATUS_AER_ERROR, STATUS_WCMD_ERROR = 1, 2, 4, 8
REGISTERS = {k: v for k, v in globals().items() if k.startswith("REG_") and k != "REG_BITS"}


def lr_shift_min(spec: EqSpikeSpec, l: int) -> int:
    """Smallest η register value of connection l (both of its update shifts stay >= 0): the lower bound of
    :meth:`spec.eqspike.EqSpikeSpec.check_lr_shift` for the fixed weight kind."""
    return max(0, -spec.update_shift(l, 0), -spec.bias_update_shift(l, 0))


def _ubits(n: int) -> int:
    """Unsigned bits that hold 0 … n (at least 1)."""
    return max(1, int(n).bit_length())


def round_shift(x, shift: int, mode: str, rnd=None):
    """``x · 2^-shift`` rounded like :func:`golden.fixed.shift_round` for every mode of
    :data:`spec.fixed.ROUNDINGS` (``rnd``: the random word whose low ``shift`` bits round a
    ``stochastic`` shift). One place for the core's rounding: a new mode is added here."""
    if mode not in ROUNDINGS:
        raise ValueError(f"rounding mode must be one of {ROUNDINGS}, not {mode!r}")
    x = x.as_signed()
    if isinstance(shift, Value):  # a run-time shift (unsigned): a barrel shifter; x is read twice (name it)
        if mode == "floor":
            return x >> shift
        if mode == "half_up":
            return Mux(shift == 0, x, ((x >> (shift - 1)[:len(shift)]) + 1) >> 1)
        raise ValueError(f"a run-time shift supports 'floor' and 'half_up' rounding, not {mode!r}")
    if shift <= 0:
        return x << -shift
    if mode == "floor":
        return x >> shift
    if mode == "half_up":
        return ((x >> (shift - 1)) + 1) >> 1
    if mode == "half_even":
        q, r = x >> shift, x[:shift]
        half = 1 << (shift - 1)
        return q + ((r > half) | ((r == half) & q[0]))
    if mode == "stochastic":
        if rnd is None:
            raise ValueError("stochastic rounding needs random bits (rnd)")
        return (x + rnd[:shift]) >> shift
    raise ValueError(f"rounding mode {mode!r} of spec.fixed.ROUNDINGS has no hardware form in hdl.eqspike.round_shift")


def const_mul(u, k: int):
    """``u · k`` for a constant ``k ≥ 0`` as shifts and adds (no multiplier in the netlist)."""
    acc = Const(0, 1)
    for b in range(k.bit_length()):
        if (k >> b) & 1:
            acc = acc + (u << b)
    return acc


def _lowest_bit(mask, n: int):
    """Index of the lowest set bit of an n-bit mask (0 when none)."""
    idx = Const(0, _ubits(max(n - 1, 1)))
    for b in reversed(range(n)):
        idx = Mux(mask[b], b, idx)
    return idx


class EqSpikeRegisters(wiring.Component):
    """The EqSpike core's run-time registers behind :class:`hdl.regport.RegSignature` (map: ``REG_*`` above).

    Contract (the same as :class:`hdl.kit.regfile.EPRegisterFile`'s, for this register map): a write
    while ``busy`` is low is taken, or refused when its value is out of range (``T1``/``T2`` 0 or
    ≥ 2^step_bits, ``CTRL`` bits beyond 0, a read-only or unmapped address): every register then keeps
    its value and ``reg_error`` (STATUS bit 1) is set, sticky until STATUS is written. A write while
    busy is ignored. ``rdata`` is combinational. ``seed_load`` is high in the cycle a SEED write is
    taken; ``status_clear`` in the cycle a STATUS write is taken (clears the core's sticky flags);
    ``digest_start`` in the cycle a DIGEST write is taken (starts the core's weight-digest sweep; the value
    written is ignored); ``dump_start`` in the cycle a DUMP write is taken (``dump=True`` only; without it
    DUMP is unmapped: refused like any other unmapped address).
    """

    def __init__(self, spec: EqSpikeSpec, *, dump: bool = False):
        self.spec, self.dump = spec, dump
        sb = spec.step_bits
        super().__init__({
            "bus": In(RegSignature()), "busy": In(1),
            "status": In(REG_BITS), "cycles": In(REG_BITS), "samples": In(REG_BITS), "spikes": In(REG_BITS),
            "words": In(REG_BITS), "syn": In(REG_BITS), "aer_bad": In(REG_BITS), "digest": In(REG_BITS),
            "aer_mode": Out(1), "train": Out(1), "T1": Out(sb, init=spec.T1), "T2": Out(sb, init=spec.T2),
            "seed": Out(REG_BITS, init=spec.seed), "reg_error": Out(1), "seed_load": Out(1), "status_clear": Out(1),
            "digest_start": Out(1), **({"dump_start": Out(1)} if dump else {}),
            **({"lr": Out(data.ArrayLayout(unsigned(6), spec.n_layers), init=list(spec.lr_shift))}
               if spec.training else {}),
        })

    def elaborate(self, platform):
        s, bus = self.spec, self.bus
        m = Module()
        wd = bus.wdata
        step_ok = (wd != 0) & (wd < (1 << s.step_bits))
        with m.If(bus.we & ~self.busy):
            with m.Switch(bus.addr):
                with m.Case(REG_CTRL):
                    # bit 1 (train) needs a training core and pixel input (AER samples infer only)
                    with m.If((wd[2:] != 0) | (wd[1] & (int(not s.training) | wd[0]))):
                        m.d.sync += self.reg_error.eq(1)
                    with m.Else():
                        m.d.sync += [self.aer_mode.eq(wd[0]), self.train.eq(wd[1])]
                for addr, reg in ((REG_T1, self.T1), (REG_T2, self.T2)):
                    with m.Case(addr):
                        with m.If(step_ok):
                            m.d.sync += reg.eq(wd)
                        with m.Else():
                            m.d.sync += self.reg_error.eq(1)
                with m.Case(REG_SEED):
                    m.d.sync += self.seed.eq(wd)
                    m.d.comb += self.seed_load.eq(1)
                with m.Case(REG_STATUS):
                    m.d.sync += self.reg_error.eq(0)
                    m.d.comb += self.status_clear.eq(1)
                with m.Case(REG_DIGEST):  # any value: start a digest sweep
                    m.d.comb += self.digest_start.eq(1)
                if self.dump:
                    with m.Case(REG_DUMP):  # any value: start a digest sweep that also streams every word out
                        m.d.comb += self.dump_start.eq(1)
                if s.training:
                    with m.Case(REG_LR):  # shift | connection << 8: one connection, or all (LR_ALL)
                        conn, val = wd[8:16], wd[:8]
                        fits = [(val >= lr_shift_min(s, c)) & (val <= LR_MAX) for c in range(s.n_layers)]
                        ok = (conn == LR_ALL) & Cat(*fits).all()
                        for c in range(s.n_layers):
                            ok = ok | ((conn == c) & fits[c])
                        with m.If((wd[16:] == 0) & ok):
                            for c in range(s.n_layers):
                                with m.If((conn == c) | (conn == LR_ALL)):
                                    m.d.sync += self.lr[c].eq(val)
                        with m.Else():
                            m.d.sync += self.reg_error.eq(1)
                with m.Default():
                    m.d.sync += self.reg_error.eq(1)
        values = {REG_CTRL: self.aer_mode | (self.train << 1), REG_T1: self.T1, REG_T2: self.T2, REG_SEED: self.seed,
                  REG_STATUS: self.status | (self.reg_error * STATUS_REG_ERROR), REG_CYCLES: self.cycles,
                  REG_SAMPLES: self.samples, REG_SPIKES: self.spikes, REG_WORDS: self.words, REG_SYN: self.syn,
                  REG_AER_BAD: self.aer_bad, REG_SPEC_ID: Const(s.spec_id, 32), REG_DIGEST: self.digest}
        if s.training:
            values[REG_LR] = Cat(*[self.lr[c] for c in range(min(s.n_layers, 5))])
        assert max(values) < 1 << REG_ADDR_BITS
        with m.Switch(bus.addr):
            for addr, v in values.items():
                with m.Case(addr):
                    m.d.comb += bus.rdata.eq(v)
        return m


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


def wcmd_fields(spec: EqSpikeSpec) -> dict[str, int]:
    """Bit widths of a ``wcmd`` beat (the host's view; fields in this order from bit 0)."""
    L, P = spec.n_layers, spec.lanes
    tb = _ubits(max(spec.tiles(k) for k in range(L + 1)) - 1)
    return {"read": 1, "array": _ubits(2 * L - 1), "i_word": tb, "i_lane": _ubits(P - 1), "j_word": tb,
            "j_lane": _ubits(P - 1), "data": max(max(spec.weight_bits), spec.bias_bits)}


def dump_bits(spec: EqSpikeSpec) -> int:
    """Bits of one lane of a ``wdump`` beat: the widest weight or bias (lanes are sign-extended to it)."""
    return max([*spec.weight_bits, spec.bias_bits])


def dump_word_count(spec: EqSpikeSpec) -> int:
    """Beats of one ``wdump`` block read-back (= words of a digest sweep): Σ_l n_l·tiles(l+1) + Σ_l tiles(l+1)."""
    L = spec.n_layers
    return sum(spec.layers[l] * spec.tiles(l + 1) for l in range(L)) + sum(spec.tiles(l + 1) for l in range(L))


def aer_addr_bits(spec: EqSpikeSpec) -> int:
    """Width of an AER event's neuron address: 16 bits, or more for an input layer of over 2^16 neurons."""
    return max(16, _ubits(spec.layers[0] - 1))


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
        ONE = s.state_one
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
        TF, TRB = s.trace_frac, s.trace_frac + 1
        DB = s.trace_frac + 2  # Δŝ ∈ [−2^TF, 2^TF]
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
        list_depth = max(1, sum(T[l] for l in range(L + 1) if has_targets[l]))
        LAYB, WRDB = _ubits(L), _ubits(max(T))
        lfields = {"lay": LAYB, "wrd": WRDB, "mask": P}
        if TRN:
            lfields["d"] = data.ArrayLayout(signed(DB), P)
        lmem = memory.Memory(shape=data.StructLayout(lfields), depth=list_depth, init=[])
        m.submodules.lmem = lmem
        wl = lmem.write_port()
        rl = lmem.read_port(transparent_for=(wl,))

        # ---------------- registers, PRNG ----------------
        m.submodules.regs = regs = EqSpikeRegisters(s, dump=self.dump)
        wiring.connect(m, wiring.flipped(self.reg), regs.bus)
        busy = Signal()
        cycles, cycles_last = Signal(REG_BITS), Signal(REG_BITS)
        samples = Signal(REG_BITS)
        spikes, spikes_last = Signal(REG_BITS), Signal(REG_BITS)
        words, words_last = Signal(REG_BITS), Signal(REG_BITS)
        syn, syn_last = Signal(REG_BITS), Signal(REG_BITS)
        aer_bad, aer_err, wcmd_err = Signal(REG_BITS), Signal(), Signal()
        dg_active = Signal()  # a digest sweep is requested or running (the weight port's DIGEST states)
        digest = Signal(32)
        m.d.comb += [regs.busy.eq(busy | dg_active), regs.cycles.eq(cycles_last), regs.samples.eq(samples),
                     regs.digest.eq(digest),
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

        # ---------------- sequencer state ----------------
        aer_mode = Signal()  # this sample's input mode (REG_CTRL bit 0 at its start)
        x_train = Signal()  # this sample trains (REG_CTRL bit 1 at its start)
        phase = Signal(2)  # 0 free, 1 +β, 2 −β
        nudged = phase != 0
        neg = named(phase == 2, "neg")  # σ = −1
        if TRN:  # the update shifts of each connection from its η register (reset: the spec's lr_shift)
            ushift = [named((regs.lr[c] + s.update_shift(c, 0))[:7], f"ushift{c}") for c in range(L)]
            bshift = [named((regs.lr[c] + s.bias_update_shift(c, 0))[:7], f"bshift{c}") for c in range(L)]
        x_T, x_T2 = Signal(s.step_bits), Signal(s.step_bits)
        step = Signal(s.step_bits)
        lay = Signal(range(L + 1))
        wrd = Signal(range(max(T) + 1))
        lay1, wrd1 = Signal(range(L + 1)), Signal(range(max(T) + 1))  # the sweeps' stage 1
        m.d.sync += [lay1.eq(lay), wrd1.eq(wrd)]
        for k in range(1, L + 1):  # default addresses: the sweep's word (EVT/WUPD override some)
            m.d.comb += [rs[k].addr.eq(wrd), racc[k].addr.eq(wrd), rb[k - 1].addr.eq(wrd)]
            if TRN:
                m.d.comb += [rd_[k].addr.eq(wrd), re_[k].addr.eq(wrd)]
                m.d.comb += [rtr[k, st].addr.eq(wrd) for st in range(s.trace_stages)]
        for l in range(L + 1):
            m.d.comb += rphi[l].addr.eq(wrd)
        m.d.comb += [r.addr.eq(wrd) for r in snap_r.values()]
        m.d.comb += rx.addr.eq(wrd)
        lcount = Signal(range(list_depth + 1))
        lptr = Signal(range(list_depth + 1))
        lptr_next = Signal.like(lptr)
        m.d.comb += [lptr_next.eq(lptr), rl.addr.eq(lptr_next)]
        m.d.sync += lptr.eq(lptr_next)
        enc_first = Signal(range(L + 1))  # first layer ENC sweeps (1: AER input without PRNG draws for layer 0)
        m.d.comb += enc_first.eq(Mux(aer_mode & (not stoch_enc), 1, 0))

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

        # ---------------- event engine state ----------------
        ev_act, ev_dn = Signal(), Signal()
        ev_lay = Signal(range(L + 1))
        ev_j = Signal(range(max(N) + 1))
        ev_jw, ev_jl = Signal(range(max(T) + 1)), Signal(range(P))  # j = jw·P + jl
        ev_dj = Signal(signed(DB))  # Δŝ_j of the event's neuron (training)
        ev_k = Signal(range(max(T) + 1))
        mk, mk_lay, mk_wrd = Signal(P), Signal(range(L + 1)), Signal(range(max(T) + 1))
        mk_d = Signal(data.ArrayLayout(signed(DB), P)) if TRN else None
        aer_done = Signal()
        e1_v, e1_dn, e1_k = Signal(), Signal(), Signal(range(max(T) + 1))
        e1_tgt = Signal(range(L + 2))
        m.d.sync += e1_v.eq(0)
        upd_mode = Signal()  # the event engine runs the weight update (WUPD) instead of the accumulation
        hold = Signal(range(P + 1))  # cycles until the next weight-update issue (scatter writes in flight)
        with m.If(hold != 0):
            m.d.sync += hold.eq(hold - 1)

        # output scan
        out_states = [Signal(SB, name=f"out_s{i}") for i in range(N[L])]
        best, best_i = Signal(SB), Signal(self.label_bits)
        label = Signal(self.label_bits)

        enc_v1, upd_v1, scan_v1, copy_v1 = Signal(), Signal(), Signal(), Signal()  # stage 1 of a sweep's word
        m.d.sync += [enc_v1.eq(0), upd_v1.eq(0), scan_v1.eq(0), copy_v1.eq(0)]
        restore = Signal()  # the copy sweep restores the free phase's end (else it saves it)
        evt_done = Signal()
        upd_busy = Signal()  # a weight-update word or its scatter writes are in flight
        w_idle = Signal()  # the weight port has no command in flight or waiting

        with m.If(busy & ~self.out.valid):
            m.d.sync += cycles.eq(cycles + 1)

        def start_phase(ph, steps):
            m.d.sync += [phase.eq(ph), step.eq(0), x_T.eq(steps), lay.eq(enc_first), wrd.eq(0), lcount.eq(0)]

        # ---------------- the sample's program ----------------
        with m.FSM(name="seq") as fsm:
            with m.State("IDLE"):
                with m.If(w_idle & rng_ok & ~self.reg.we):
                    with m.If(regs.aer_mode & self.aer.valid):
                        m.d.sync += [aer_mode.eq(1), busy.eq(1), cycles.eq(0)]
                        m.next = "INIT"
                    with m.Elif(~regs.aer_mode & self.inp.valid):
                        m.d.sync += [aer_mode.eq(0), busy.eq(1)]
                        m.next = "LOAD"
                m.d.sync += [x_T.eq(regs.T1), x_T2.eq(regs.T2), x_train.eq(regs.train), phase.eq(0), spikes.eq(0),
                             words.eq(0), syn.eq(0), step.eq(0), lay.eq(0), wrd.eq(0)]
            with m.State("LOAD"):
                m.d.comb += [self.inp.ready.eq(1), wx.addr.eq(wrd), wx.data.eq(self.inp.payload.pixels.as_value()),
                             wx.en.eq(self.inp.valid)]
                with m.If(self.inp.valid):
                    m.d.sync += label.eq(self.inp.payload.label)
                    with m.If(wrd == T[0] - 1):
                        m.d.sync += [wrd.eq(0), cycles.eq(0)]
                        m.next = "INIT"
                    with m.Else():
                        m.d.sync += wrd.eq(wrd + 1)
            with m.State("INIT"):
                # residues (zero, or one PRNG draw per word of layers 0 … L); states, accumulators, traces 0
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

                def init_done():
                    start_phase(0, x_T)
                    m.next = "ENC"
                next_word(enc_first, L, init_done)
            with m.State("ENC"):
                m.d.sync += enc_v1.eq(1)

                def enc_done():
                    m.next = "ENC_END"
                next_word(1, L, enc_done)
            with m.State("ENC_END"):  # stage 1 finishes the last word
                m.d.sync += [ev_act.eq(0), mk.eq(0), aer_done.eq(~aer_mode), upd_mode.eq(0)]
                m.d.comb += lptr_next.eq(0)
                m.next = "EVT"
            with m.State("EVT"):
                with m.If(evt_done):
                    m.next = "EVT_END"
            with m.State("EVT_END"):  # stage 1 writes the last accumulator word
                m.d.sync += [ev_act.eq(0), mk.eq(0), aer_done.eq(1), upd_mode.eq(nudged)]
                m.d.comb += lptr_next.eq(0)
                with m.If(nudged):
                    m.next = "WUPD"
                with m.Else():
                    m.next = "UPD"
            with m.State("WUPD"):  # the step's spike events once more: weight updates
                with m.If(evt_done):
                    m.next = "WUPD_END"
            with m.State("WUPD_END"):
                with m.If(~upd_busy):
                    m.d.sync += upd_mode.eq(0)
                    m.next = "UPD"
            with m.State("UPD"):
                m.d.sync += upd_v1.eq(1)

                def upd_done():
                    m.next = "UPD_END"
                next_word(enc_first, L, upd_done)
            with m.State("UPD_END"):
                m.d.sync += [wrd.eq(0), lcount.eq(0), step.eq(step + 1)]
                with m.If(step + 1 == x_T):
                    with m.If(phase == 0):
                        m.d.sync += [lay.eq(L), best.eq(0), best_i.eq(0)]
                        m.next = "SCAN"
                    with m.Elif((phase == 1) & int(s.symmetric)):
                        m.d.sync += [lay.eq(0), restore.eq(1)]
                        m.next = "COPY"
                    with m.Else():
                        m.next = "OUT"
                with m.Else():
                    m.d.sync += lay.eq(enc_first)
                    m.next = "ENC"
            with m.State("SCAN"):
                m.d.sync += scan_v1.eq(1)
                with m.If(wrd == T[L] - 1):
                    m.next = "SCAN_END"
                with m.Else():
                    m.d.sync += wrd.eq(wrd + 1)
            with m.State("SCAN_END"):
                m.d.sync += [wrd.eq(0), lay.eq(0), restore.eq(0)]
                with m.If(x_train):
                    if s.symmetric:
                        m.next = "COPY"
                    else:
                        start_phase(1, x_T2)
                        m.next = "ENC"
                with m.Else():
                    m.next = "OUT"
            with m.State("COPY"):  # save (after the free phase) or restore (before −β) residues, states, traces
                m.d.sync += copy_v1.eq(1)

                def copy_done():
                    m.next = "COPY_END"
                next_word(0, L, copy_done)
            with m.State("COPY_END"):
                start_phase(Mux(restore, 2, 1), x_T2)
                m.next = "ENC"
            with m.State("OUT"):
                m.d.comb += self.out.valid.eq(1)
                with m.If(self.out.ready):
                    m.d.sync += [busy.eq(0), samples.eq(samples + 1), cycles_last.eq(cycles),
                                 spikes_last.eq(spikes), words_last.eq(words), syn_last.eq(syn)]
                    m.next = "IDLE"
        m.d.comb += [self.out.payload.pred.eq(best_i)]
        for i in range(N[L]):
            m.d.comb += self.out.payload.states[i].eq(out_states[i])

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
            M, rbits = s.full_scale(l), s.residue_bits(l)
            v = lanes(rx.data, IB, False) if l == 0 else lanes(rs[l].data, SB, False)
            phi = lanes(rphi[l].data, rbits, True)
            spk, nphi = [], []
            for i in range(P):
                if stoch_enc:
                    b = s.encoder_bits(l)
                    u = rword[i][PRNG_WIDTH - b:]
                    e = const_mul(u, M) < (v[i] << b)
                    nphi.append(phi[i])
                else:
                    p2 = named(phi[i] + v[i], f"enc{l}_p{i}")
                    e = p2 > (M // 2)
                    nphi.append(Mux(e, p2 - M, p2)[:rbits])
                spk.append(e & valid_lane(wrd1, l, i))
            mask = named(Cat(*spk), f"mask{l}")
            dlist = [Const(0, signed(DB))] * P
            news = []
            if TRN and l >= 1:  # traces: stage 1 filters the spike, stage 2 stage 1's new value
                olds = [lanes(rtr[l, st].data, TRB, False) for st in range(s.trace_stages)]
                srcs = [mask[i] << TF for i in range(P)]
                for st in range(s.trace_stages):
                    new = []
                    for i in range(P):
                        x = named(olds[st][i] + round_shift(srcs[i] - olds[st][i], s.trace_shift, s.trace_rounding),
                                  f"tr{l}_{st}_sum{i}")
                        new.append(named(saturate(x, 0, 1 << TF, TRB), f"tr{l}_{st}_new{i}"))
                    news.append(new)
                    srcs = new
                dlist = [(srcs[i] - olds[-1][i])[:DB].as_signed() for i in range(P)]
            enc[l] = (mask, nphi, news, dlist)

        with m.If(enc_v1):
            if stoch_enc:
                m.d.comb += draw.eq(1)
            for l in range(L + 1):
                with m.If(lay1 == l):
                    mask, nphi, news, dlist = enc[l]
                    m.d.comb += [wphi[l].addr.eq(wrd1), wphi[l].data.eq(Cat(*nphi)),
                                 wphi[l].en.eq(int(not stoch_enc))]
                    if TRN and l >= 1:
                        for st, new in enumerate(news):
                            m.d.comb += [wtr[l, st].addr.eq(wrd1), wtr[l, st].data.eq(Cat(*new)), wtr[l, st].en.eq(1)]
                        m.d.comb += [wd_[l].addr.eq(wrd1), wd_[l].data.eq(Cat(*dlist)), wd_[l].en.eq(1),
                                     we_[l].addr.eq(wrd1), we_[l].data.eq(mask), we_[l].en.eq(1)]
                    counted = ~aer_mode if l == 0 else Const(1)
                    with m.If(counted):
                        m.d.sync += spikes.eq(spikes + popcount(mask))
                    if has_targets[l]:
                        with m.If(counted & (mask != 0)):
                            m.d.comb += [wl.addr.eq(lcount), wl.data.lay.eq(l), wl.data.wrd.eq(wrd1),
                                         wl.data.mask.eq(mask), wl.en.eq(1)]
                            if TRN:
                                m.d.comb += wl.data.d.eq(Cat(*dlist))
                            m.d.sync += lcount.eq(lcount + 1)

        # ---------------- EVT / WUPD: the event engine ----------------
        nw = Signal(range(max(T) + 1))  # words of the current event's current target
        more_dn = Signal()  # the current event has a down target after its up target
        scatter = Signal()  # the current target's connection has a second (transposed) copy
        rem_sc = Signal(range(P + 1))  # neurons in the current target's last word

        def rem(layer):
            return N[layer] - (T[layer] - 1) * P
        with m.Switch(ev_lay):
            for l in range(L + 1):
                with m.Case(l):
                    m.d.comb += [nw.eq(Mux(ev_dn, T[l - 1] if l >= 1 else 0, T[l + 1] if l < L else 0)),
                                 more_dn.eq(~ev_dn & int(targets_dn[l])), scatter.eq(ev_dn | int(l >= 1)),
                                 rem_sc.eq(Mux(ev_dn, rem(l - 1) if l >= 1 else P, rem(l + 1) if l < L else P))]
        issue = Signal()
        m.d.comb += issue.eq(ev_act & (hold == 0))
        finishing = Signal()
        m.d.comb += finishing.eq(issue & (ev_k == nw - 1) & ~more_dn)
        free = ~ev_act | finishing
        u1_v, u1_dn, u1_k = Signal(), Signal(), Signal(range(max(T) + 1))
        u1_lay, u1_jw, u1_jl, u1_dj = Signal(range(L + 1)), Signal.like(ev_jw), Signal.like(ev_jl), Signal.like(ev_dj)
        n_sc, u1_n = Signal(range(P + 1)), Signal(range(P + 1))  # scatter writes of the issued word (its neurons)
        m.d.comb += n_sc.eq(Mux(ev_k == nw - 1, rem_sc, P))
        depth_max = max([N[l] * T[l + 1] for l in range(L)] + [N[l + 1] * T[l] for l in range(1, L)])
        iss_addr, u1_addr = Signal(range(depth_max + 1)), Signal(range(depth_max + 1))  # the issued row word
        m.d.sync += u1_v.eq(0)
        with m.If(fsm.ongoing("EVT") | fsm.ongoing("WUPD")):
            with m.If(issue):
                for l in range(L):  # bottom-up rows: wup{l}, into layer l + 1
                    with m.If((ev_lay == l) & ~ev_dn):
                        m.d.comb += [iss_addr.eq(const_mul(ev_j, T[l + 1]) + ev_k), rup[l].addr.eq(iss_addr),
                                     racc[l + 1].addr.eq(ev_k)]
                        if TRN:
                            m.d.comb += [rd_[l + 1].addr.eq(ev_k), re_[l + 1].addr.eq(ev_k)]
                for l in range(2, L + 1):  # top-down rows: wdn{l-1}, into layer l - 1
                    with m.If((ev_lay == l) & ev_dn):
                        m.d.comb += [iss_addr.eq(const_mul(ev_j, T[l - 1]) + ev_k), rdn[l - 1].addr.eq(iss_addr),
                                     racc[l - 1].addr.eq(ev_k)]
                        if TRN:
                            m.d.comb += [rd_[l - 1].addr.eq(ev_k), re_[l - 1].addr.eq(ev_k)]
                with m.If(upd_mode):
                    m.d.sync += [u1_v.eq(1), u1_dn.eq(ev_dn), u1_k.eq(ev_k), u1_lay.eq(ev_lay), u1_jw.eq(ev_jw),
                                 u1_jl.eq(ev_jl), u1_dj.eq(ev_dj), u1_addr.eq(iss_addr), u1_n.eq(n_sc)]
                    with m.If(scatter):
                        m.d.sync += hold.eq(n_sc)
                with m.Else():
                    m.d.sync += [e1_v.eq(1), e1_dn.eq(ev_dn), e1_k.eq(ev_k), words.eq(words + 1),
                                 e1_tgt.eq(Mux(ev_dn, ev_lay - 1, ev_lay + 1))]
                with m.If(ev_k == nw - 1):
                    with m.If(more_dn):
                        m.d.sync += [ev_dn.eq(1), ev_k.eq(0)]
                with m.Else():
                    m.d.sync += ev_k.eq(ev_k + 1)
            with m.If(free):
                new_lay, new_j, take = Signal(range(L + 1)), Signal(range(max(N) + 1)), Signal()
                new_w, new_b = Signal.like(ev_jw), Signal(range(P))
                new_d = Signal(data.ArrayLayout(signed(DB), P)) if TRN else None
                with m.If(~aer_done):
                    m.d.comb += self.aer.ready.eq(1)
                    with m.If(self.aer.valid):
                        with m.If(self.aer.payload.last):
                            m.d.sync += aer_done.eq(1)
                        with m.Elif(self.aer.payload.addr < N[0]):
                            m.d.comb += [new_lay.eq(0), new_j.eq(self.aer.payload.addr), take.eq(1)]
                            m.d.sync += spikes.eq(spikes + 1)
                        with m.Else():  # a neuron that does not exist: flagged and counted, never used
                            m.d.sync += [aer_err.eq(1), aer_bad.eq(aer_bad + 1)]
                with m.Elif(mk != 0):
                    m.d.comb += [new_w.eq(mk_wrd), new_b.eq(_lowest_bit(mk, P)), new_lay.eq(mk_lay), take.eq(1),
                                 new_j.eq(const_mul(mk_wrd, P) + new_b)]
                    if TRN:
                        m.d.comb += new_d.eq(mk_d)
                    m.d.sync += mk.eq(mk & (mk - 1))
                with m.Elif(lptr != lcount):
                    d = rl.data
                    m.d.comb += [new_w.eq(d.wrd), new_b.eq(_lowest_bit(d.mask, P)), new_lay.eq(d.lay), take.eq(1),
                                 new_j.eq(const_mul(d.wrd, P) + new_b), lptr_next.eq(lptr + 1)]
                    m.d.sync += [mk.eq(d.mask & (d.mask - 1)), mk_lay.eq(d.lay), mk_wrd.eq(d.wrd)]
                    if TRN:
                        m.d.comb += new_d.eq(d.d)
                        m.d.sync += mk_d.eq(d.d)
                with m.Else():
                    m.d.comb += evt_done.eq(1)
                m.d.sync += [ev_act.eq(take), ev_lay.eq(new_lay), ev_j.eq(new_j), ev_dn.eq(new_lay == L),
                             ev_k.eq(0), ev_jw.eq(new_w), ev_jl.eq(new_b)]
                if TRN:
                    m.d.sync += ev_dj.eq(new_d.as_value().word_select(new_b, DB).as_signed())
                with m.If(take & ~upd_mode):
                    with m.Switch(new_lay):
                        for l in range(L + 1):
                            with m.Case(l):
                                m.d.sync += syn.eq(syn + s.fan_out(l))
        with m.If(e1_v):  # stage 1: accumulator read-modify-write (add-only lanes)
            for k in range(1, L + 1):
                with m.If(e1_tgt == k):
                    ab = s.acc_bits(k)
                    acc = lanes(racc[k].data, ab, True)
                    up = lanes(rup[k - 1].data, WB[k - 1], True)
                    dn = lanes(rdn[k].data, WB[k], True) if k in rdn else None
                    total = []
                    for i in range(P):
                        add = up[i] << s.bottom_up_shift(k)
                        if dn is not None:
                            add = Mux(e1_dn, dn[i] << s.top_down_shift(k), add)
                        total.append((acc[i] + add)[:ab])
                    m.d.comb += [wacc[k].addr.eq(e1_k), wacc[k].data.eq(Cat(*total)), wacc[k].en.eq(1)]
        if TRN:
            # stage 1 of a weight-update word (spec step 4): the row's new word written back; a connection
            # with a transposed copy then gets the P new values there, one element per cycle (scatter)
            sc_act, sc_dn = Signal(), Signal()
            sc_n = Signal(range(P + 1))
            sc_q = Signal(range(P))
            sc_lay, sc_k, sc_jw, sc_jl = Signal.like(u1_lay), Signal.like(u1_k), Signal.like(u1_jw), Signal.like(u1_jl)
            sc_vals = [Signal(signed(max(WB)), name=f"sc_val{i}") for i in range(P)]
            sc_en = Signal(P)
            m.d.comb += upd_busy.eq(u1_v | sc_act | (hold != 0))
            # the new words of both update kinds as named signals driven outside the stage's conditions
            # (each sum is read four times by the saturation, each Δ twice by the sign select)
            w_up_new, w_dn_new = {}, {}
            for c in range(L):
                lo, hi = s.element_range(f"w{c}")
                k_up = ushift[c]
                w = lanes(rup[c].data, WB[c], True)
                dd = lanes(rd_[c + 1].data, DB, True)
                ee = re_[c + 1].data
                new = []
                for i in range(P):
                    dsum = named(dd[i] + Mux(ee[i], u1_dj, 0), f"wu{c}_dsum{i}")
                    sd = named(Mux(neg, -dsum, dsum), f"wu{c}_sd{i}")
                    x = named(w[i] + round_shift(sd, k_up, s.update_rounding), f"wu{c}_sum{i}")
                    new.append(named(saturate(x, lo, hi, WB[c]), f"wu{c}_new{i}"))
                w_up_new[c] = new
                if c >= 1:
                    w = lanes(rdn[c].data, WB[c], True)
                    dd = lanes(rd_[c].data, DB, True)
                    new = []
                    for p in range(P):
                        sd = named(Mux(neg, -dd[p], dd[p]), f"wd{c}_sd{p}")
                        x = named(w[p] + round_shift(sd, k_up, s.update_rounding), f"wd{c}_sum{p}")
                        new.append(named(saturate(x, lo, hi, WB[c]), f"wd{c}_new{p}"))
                    w_dn_new[c] = new
            with m.If(u1_v):
                m.d.sync += [sc_dn.eq(u1_dn), sc_lay.eq(u1_lay), sc_k.eq(u1_k), sc_jw.eq(u1_jw), sc_jl.eq(u1_jl),
                             sc_q.eq(0), sc_n.eq(u1_n)]
                for c in range(L):
                    with m.If((u1_lay == c) & ~u1_dn):  # presynaptic event j: row j of wup{c}, all posts i
                        new = w_up_new[c]
                        m.d.comb += [wup[c].addr.eq(u1_addr), wup[c].data.eq(Cat(*new)), wup[c].en.eq((1 << P) - 1)]
                        if c >= 1:
                            m.d.sync += [sc_act.eq(1), sc_en.eq(Cat(*[valid_lane(u1_k, c + 1, i) for i in range(P)]))]
                            m.d.sync += [sc_vals[i].eq(new[i]) for i in range(P)]
                    if c >= 1:
                        with m.If((u1_lay == c + 1) & u1_dn):  # postsynaptic event i: row i of wdn{c}, pres not spiking
                            ee = re_[c].data
                            new = w_dn_new[c]
                            m.d.comb += [wdn[c].addr.eq(u1_addr), wdn[c].data.eq(Cat(*new)), wdn[c].en.eq(~ee)]
                            m.d.sync += [sc_act.eq(1),
                                         sc_en.eq(Cat(*[valid_lane(u1_k, c, p) & ~ee[p] for p in range(P)]))]
                            m.d.sync += [sc_vals[p].eq(new[p]) for p in range(P)]
            with m.If(sc_act):
                m.d.sync += sc_q.eq(sc_q + 1)
                with m.If(sc_q == sc_n - 1):
                    m.d.sync += sc_act.eq(0)
                with m.Switch(sc_q):
                    for q in range(P):
                        with m.Case(q):
                            for c in range(1, L):
                                with m.If((sc_lay == c) & ~sc_dn):  # into wdn{c}: row k·P + q, lane j
                                    m.d.comb += [wdn[c].addr.eq(const_mul(sc_k, P * T[c]) + q * T[c] + sc_jw),
                                                 wdn[c].data.eq(Cat(*[sc_vals[q][:WB[c]]] * P)),
                                                 wdn[c].en.eq(Mux(sc_en[q], Const(1, P) << sc_jl, 0))]
                                with m.If((sc_lay == c + 1) & sc_dn):  # into wup{c}: row k·P + q, lane i
                                    m.d.comb += [wup[c].addr.eq(const_mul(sc_k, P * T[c + 1]) + q * T[c + 1] + sc_jw),
                                                 wup[c].data.eq(Cat(*[sc_vals[q][:WB[c]]] * P)),
                                                 wup[c].en.eq(Mux(sc_en[q], Const(1, P) << sc_jl, 0))]

        # ---------------- UPD stage 1: neuron updates (and, in a nudged phase, the nudge and bias updates) ----
        # new states and biases as named signals driven outside the stage's conditions (a saturation reads
        # its input up to four times, a rounding or sign select its own input up to twice)
        upd = {}
        for k in range(1, L + 1):
            acc = lanes(racc[k].data, s.acc_bits(k), True)
            st = lanes(rs[k].data, SB, False)
            bias = lanes(rb[k - 1].data, BB, True)
            new, nb = [], []
            for i in range(P):
                tot = acc[i] + (bias[i] << s.bias_shift(k)) - (st[i] << s.leak_shift(k))
                if TRN and k == L:
                    y = Mux((const_mul(wrd1, P) + i) == label, ONE, 0)
                    nud = named((y - st[i]) << s.nudge_shift, f"upd{k}_nudge{i}")
                    tot = tot + Mux(nudged, Mux(neg, -nud, nud), 0)
                tot = named(tot, f"upd{k}_total{i}")
                x = named(st[i] + round_shift(tot, s.state_shift(k), s.state_rounding, rword[i]), f"upd{k}_sum{i}")
                new.append(named(saturate(x, 0, ONE, SB), f"upd{k}_new{i}"))
            if TRN:  # b{k-1} ← sat(b + round(σ·Δŝ, bias_update_shift)): after this step's read (RMW)
                dd = lanes(rd_[k].data, DB, True)
                lo, hi = s.element_range(f"b{k - 1}")
                for i in range(P):
                    sd = named(Mux(neg, -dd[i], dd[i]), f"upd{k}_bsd{i}")
                    x = named(bias[i] + round_shift(sd, bshift[k - 1], s.update_rounding), f"upd{k}_bsum{i}")
                    nb.append(named(saturate(x, lo, hi, BB), f"upd{k}_bnew{i}"))
            upd[k] = (new, nb)
        with m.If(upd_v1):
            if stoch_round:
                m.d.comb += draw.eq(1)
            for k in range(1, L + 1):
                with m.If(lay1 == k):
                    new, nb = upd[k]
                    m.d.comb += [ws[k].addr.eq(wrd1), ws[k].data.eq(Cat(*new)), ws[k].en.eq(1),
                                 wacc[k].addr.eq(wrd1), wacc[k].data.eq(0), wacc[k].en.eq(1)]
                    if TRN:
                        with m.If(nudged):
                            m.d.comb += [wb[k - 1].addr.eq(wrd1), wb[k - 1].data.eq(Cat(*nb)),
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
        # The running maximum over a word's lanes is a chain of named signals: as nested expressions each
        # step's maximum would be copied into both the next comparison and the next Mux, 2^P copies in the
        # Verilog (Verilator evaluates all of them every cycle).
        st = lanes(rs[L].data, SB, False)
        scan_next = []
        for w in range(T[L]):
            cb, ci = best, best_i
            for i in range(min(P, N[L] - w * P)):
                better = Signal(name=f"scan{w}_better{i}")
                ncb, nci = Signal.like(best, name=f"scan{w}_best{i}"), Signal.like(best_i, name=f"scan{w}_best_i{i}")
                m.d.comb += [better.eq(st[i] > cb), ncb.eq(Mux(better, st[i], cb)), nci.eq(Mux(better, w * P + i, ci))]
                cb, ci = ncb, nci
            scan_next.append((cb, ci))
        with m.If(scan_v1):
            with m.Switch(wrd1):
                for w in range(T[L]):
                    with m.Case(w):
                        for i in range(min(P, N[L] - w * P)):
                            m.d.sync += out_states[w * P + i].eq(st[i])
                        m.d.sync += [best.eq(scan_next[w][0]), best_i.eq(scan_next[w][1])]

        # ---------------- the weight port (between samples) ----------------
        cmd = self.wcmd.payload
        i_idx = const_mul(cmd.i_word, P) + cmd.i_lane
        j_idx = const_mul(cmd.j_word, P) + cmd.j_lane
        r_arr, r_lane, r_bad = Signal(range(2 * L + 1)), Signal(range(P)), Signal()
        rsp = Signal(signed(len(cmd.data)))
        m.d.comb += self.wrsp.payload.data.eq(rsp)

        def in_layer(word, lane_, layer):
            return (word < T[layer]) & (lane_ < P) & ((word != T[layer] - 1) | (lane_ < N[layer] - (T[layer] - 1) * P))

        # digest sweep (REG_DIGEST write): every word of wup{0..L-1}, then of b{0..L-1}, one per cycle, folded
        # into ``digest`` as spec.eqspike.weight_digest defines it (lanes beyond a layer's last neuron masked).
        # A dump sweep (REG_DUMP write, dump=True) is the same sweep with every stage-1 word also offered on
        # ``wdump``: while a beat waits for ``wdump.ready`` the sweep holds (stage 1 re-reads its word's address).
        dg_req = Signal()
        if self.dump:  # (signals created only here: the Verilog of a core without the port stays the same)
            dg_dump_req, dg_dump = Signal(), Signal()
            with m.If(regs.digest_start | regs.dump_start):
                m.d.sync += [dg_req.eq(1), dg_dump_req.eq(regs.dump_start)]
        else:
            with m.If(regs.digest_start):
                m.d.sync += dg_req.eq(1)
        dg_depth = [N[l] * T[l + 1] for l in range(L)] + [T[l + 1] for l in range(L)]
        # (dg_arr and dg_v1 keep the anonymous names they always had: a core without the dump port has the
        # same Verilog as before the port existed)
        dg_arr, dg_arr1 = Signal(range(2 * L + 1), name="$signal"), Signal(range(2 * L + 1), name="dg_arr1")
        dg_addr = Signal(range(max(dg_depth) + 1))
        dg_t = Signal(range(max(T) + 1))
        dg_v1, dg_last1 = Signal(name="$signal"), Signal(name="dg_last1")
        if self.dump:
            dg_addr1 = Signal.like(dg_addr)
            dg_adv = Signal()  # stage 1's word is taken this cycle (unless its dump beat waits for wdump.ready)
            m.d.comb += dg_adv.eq(~dg_dump | ~dg_v1 | self.wdump.ready)
            m.d.comb += self.wdump.valid.eq(dg_dump & dg_v1)
            with m.Switch(dg_arr1):
                for a in range(2 * L):
                    with m.Case(a):
                        l, bits = a % L, (WB[a] if a < L else BB)
                        n_last = N[l + 1] - (T[l + 1] - 1) * P
                        for p_, v in enumerate(lanes(rup[l].data if a < L else rb[l].data, bits, True)):
                            m.d.comb += self.wdump.payload.data[p_].eq(Mux(dg_last1, 0, v) if p_ >= n_last else v)
            with m.If(dg_adv):
                m.d.sync += dg_v1.eq(0)
        else:  # (the Verilog of a core without the dump port is that of the digest-only core)
            m.d.sync += dg_v1.eq(0)
        with m.If(dg_v1 & dg_adv if self.dump else dg_v1):
            fold = Const(0, 32)
            for a in range(2 * L):
                l, bits = a % L, (WB[a] if a < L else BB)
                rdata = rup[l].data if a < L else rb[l].data
                n_last = N[l + 1] - (T[l + 1] - 1) * P
                f = Const(0, 32)
                for p_, u in enumerate(lanes(rdata, bits, False)):
                    u32 = Cat(u, Const(0, 32 - bits)) if bits < 32 else u
                    if p_ >= n_last:
                        u32 = Mux(dg_last1, 0, u32)
                    f = f ^ u32.rotate_left((DIGEST_LANE_ROT * p_) % 32)
                fold = Mux(dg_arr1 == a, f, fold)
            m.d.sync += digest.eq((digest.rotate_left(DIGEST_ROT) ^ fold) + DIGEST_ADD)

        with m.FSM(name="wport") as wfsm:
            with m.State("IDLE"):
                m.d.comb += w_idle.eq(~self.wcmd.valid & ~dg_req)
                with m.If(dg_req):
                    m.d.sync += [dg_req.eq(0), dg_arr.eq(0), dg_addr.eq(0), dg_t.eq(0), digest.eq(0)]
                    if self.dump:
                        m.d.sync += dg_dump.eq(dg_dump_req)
                    m.next = "DIGEST"
                with m.Elif(fsm.ongoing("IDLE")):
                    m.d.comb += self.wcmd.ready.eq(1)
                    with m.If(self.wcmd.valid):
                        ok = Signal()
                        for l in range(L):
                            with m.If(cmd.array == l):  # w{l}[i, j]: i of layer l + 1, j of layer l
                                m.d.comb += ok.eq(in_layer(cmd.i_word, cmd.i_lane, l + 1)
                                                  & in_layer(cmd.j_word, cmd.j_lane, l))
                                m.d.comb += rup[l].addr.eq(const_mul(j_idx, T[l + 1]) + cmd.i_word)
                                with m.If(ok & ~cmd.read):
                                    m.d.comb += [wup[l].addr.eq(const_mul(j_idx, T[l + 1]) + cmd.i_word),
                                                 wup[l].data.eq(Cat(*[cmd.data[:WB[l]]] * P)),
                                                 wup[l].en.eq(Const(1, P) << cmd.i_lane)]
                                    if l in wdn:
                                        m.d.comb += [wdn[l].addr.eq(const_mul(i_idx, T[l]) + cmd.j_word),
                                                     wdn[l].data.eq(Cat(*[cmd.data[:WB[l]]] * P)),
                                                     wdn[l].en.eq(Const(1, P) << cmd.j_lane)]
                            with m.If(cmd.array == L + l):  # b{l}[i]
                                m.d.comb += ok.eq(in_layer(cmd.i_word, cmd.i_lane, l + 1)
                                                  & (cmd.j_word == 0) & (cmd.j_lane == 0))
                                m.d.comb += rb[l].addr.eq(cmd.i_word)
                                with m.If(ok & ~cmd.read):
                                    m.d.comb += [wb[l].addr.eq(cmd.i_word), wb[l].data.eq(Cat(*[cmd.data[:BB]] * P)),
                                                 wb[l].en.eq(Const(1, P) << cmd.i_lane)]
                        with m.If(~ok):
                            m.d.sync += wcmd_err.eq(1)
                        with m.If(cmd.read):
                            m.d.sync += [r_arr.eq(cmd.array), r_lane.eq(cmd.i_lane), r_bad.eq(~ok)]
                            m.next = "READ"
            with m.State("READ"):
                for l in range(L):
                    with m.If(r_arr == l):
                        m.d.sync += rsp.eq(rup[l].data.word_select(r_lane, WB[l]).as_signed())
                    with m.If(r_arr == L + l):
                        m.d.sync += rsp.eq(rb[l].data.word_select(r_lane, BB).as_signed())
                with m.If(r_bad):
                    m.d.sync += rsp.eq(0)
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.wrsp.valid.eq(1)
                with m.If(self.wrsp.ready):
                    m.next = "IDLE"
            def dg_hold():  # stage 1's dump beat waits: re-read its word so the read port keeps it
                for a in range(2 * L):
                    with m.If(dg_arr1 == a):
                        m.d.comb += (rup[a].addr if a < L else rb[a - L].addr).eq(dg_addr1)

            def dg_issue():  # the next word's read; stage 1 takes it in the next cycle
                for a in range(2 * L):
                    with m.If(dg_arr == a):
                        m.d.comb += (rup[a].addr if a < L else rb[a - L].addr).eq(dg_addr)
                        tw_ = T[a + 1] if a < L else T[a - L + 1]
                        m.d.sync += [dg_v1.eq(1), dg_arr1.eq(a), dg_last1.eq(dg_t == tw_ - 1),
                                     dg_t.eq(Mux(dg_t == tw_ - 1, 0, dg_t + 1))]
                        if self.dump:
                            m.d.sync += dg_addr1.eq(dg_addr)
                        with m.If(dg_addr == dg_depth[a] - 1):
                            m.d.sync += [dg_addr.eq(0), dg_arr.eq(a + 1)]
                            if a == 2 * L - 1:
                                m.next = "DIGEST_END"
                        with m.Else():
                            m.d.sync += dg_addr.eq(dg_addr + 1)

            with m.State("DIGEST"):  # issue one word's read per cycle; stage 1 (dg_v1) folds it
                m.d.comb += dg_active.eq(1)
                if self.dump:
                    with m.If(dg_adv):
                        dg_issue()
                    with m.Else():
                        dg_hold()
                else:
                    dg_issue()
            with m.State("DIGEST_END"):  # stage 1 folds (and a dump sends) the last word
                m.d.comb += dg_active.eq(1)
                if self.dump:
                    with m.If(dg_adv):
                        m.next = "IDLE"
                    with m.Else():
                        dg_hold()
                else:
                    m.next = "IDLE"
        m.d.comb += dg_active.eq(dg_req | wfsm.ongoing("DIGEST") | wfsm.ongoing("DIGEST_END"))
        del wfsm
        return m
