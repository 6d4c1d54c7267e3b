"""Specification of the fixed-point EqSpike core: sizes, lanes, Q-formats, rounding, encoders, PRNG, events.

One :class:`EqSpikeSpec` travels the whole way (twin :mod:`golden.eqspike.twin`, quantiser, the future
RTL and its bench); its :meth:`~EqSpikeSpec.digest` is stored in every weight image. It implements the
float model of docs/eqspike.md (§1) in integers. All numbers are integers; "frac" = fractional bits.

Formats
-------
* input pixel ``p``: unsigned ``input_bits``, full scale ``M_in = 2^input_bits − 1`` (value p/M_in,
  exactly the float model's pixel/255 for 8-bit pixels).
* states ``s_k`` (k = 1 … L): unsigned, ``state_frac`` = F fractional bits, range [0, 2^F] (1.0 is a
  code: a neuron at 1.0 spikes at rate 1), ``state_bits = F + 1``.
* weights ``w{l}`` (layer l → l+1, shape n_{l+1} × n_l): signed ``weight_bits[l]``, ``weight_frac[l]``.
* biases ``b{l}`` (of layer l+1): signed ``bias_bits``, ``bias_frac[l]``.
* traces (per neuron of layers 1 … L, ``trace_stages`` stages): unsigned, ``trace_frac`` = TF, range
  [0, 2^TF]; Δŝ (the last stage's change) is signed.
* sigma-delta residues φ (every neuron, inputs included): signed, range [−M/2, M/2] with M = M_in
  (inputs) or 2^F (neurons); ``residue_bits(layer)`` holds φ + v (≤ 3M/2) before the subtraction.
* accumulator of layer k: exact integer sum at ``acc_frac(k)`` fractional bits (every term aligned
  by an exact left shift), ``acc_bits(k)`` bits, derived from the fan-in and the worst case of every
  term (:meth:`acc_bound`), so **no sum of one step can overflow** (asserted in the twin).

One time step (synchronous; every quantity on the right is from the step's start)
--------------------------------------------------------------------------------
1. Encoders, every neuron of layers 0 … L, value v (pixel or state), full scale M:
   * ``sigma-delta``: ``φ ← φ + v; e = [2φ > M]; φ ← φ − e·M``. φ stays in [−M/2, M/2], so over any
     window |Σe − Σv/M| = |φ_start − φ_end|/M ≤ 1 (tested exhaustively for small widths).
   * ``stochastic``: ``e = [u·M < v·2^b]`` with u = the top b bits of the neuron's PRNG word (b =
     input_bits for inputs, F for neurons): P(e) = v/2^F exactly for neurons, ⌈2^b·v/M_in⌉/2^b for
     inputs (1 at full scale, 0 at 0).
2. Neurons, layer k = 1 … L, every neuron i (the spike events of step 1 are the only inputs)::

       acc_i = (Σ_{j spiked in k−1} w{k−1}[i, j]) << bu(k) + (Σ_{m spiked in k+1} w{k}[m, i]) << td(k)
               + b{k−1}[i] << bs(k) − s_i << ss(k) [± (y_i − s_i) << ns at k = L in a nudged phase]
       s_i ← sat(s_i + shift_round(acc_i, acc_frac(k) − F + eps_shift, state_rounding), 0, 2^F)

   y = 2^F at the label, 0 elsewhere; the nudge is β(y − s) with β = 2^-beta_shift, + in the
   +β phase and − in the −β phase. ε = 2^-eps_shift.
3. Traces, layers 1 … L: stage 1 filters the spike (e·2^TF), each further stage the stage before
   it (its new value): ``t ← sat(t + shift_round(src − t, trace_shift, trace_rounding), 0, 2^TF)``;
   Δŝ = the last stage's new value − its old value. (Traces depend on the spikes only, so Δŝ of a
   step is known as soon as its spikes are.)
4. Update (nudged phases of a training sample; the phase's sign σ = +1 for +β, −1 for −β), for
   connection l, post i (layer l+1), pre j (layer l), with Δŝ_0 = 0 (the clamped input)::

       D[i, j] = e_j·Δŝ_i + e_i·Δŝ_j                        (update = "spike")
       D[i, j] = e_j·q(Δŝ_i) + e_i·q(Δŝ_j),  q(d) = sign(d)·[|d| > update_theta]   (update = "ternary")
       w{l}[i, j] ← sat(w{l}[i, j] + shift_round(σ·D, update_shift(l), update_rounding))   (spike)
       w{l}[i, j] ← sat(w{l}[i, j] + σ·D << ternary_shift)                                  (ternary)
       b{l}[i]    ← sat(b{l}[i] + shift_round(σ·Δŝ_i, bias_update_shift(l), update_rounding))  (every step)

   so a weight changes only when one of its two neurons spikes; a spike event of neuron j updates
   the column j of its outgoing connection (and the row j of the one below). ``update_shift(l) =
   TF + lr_shift[l] + [symmetric] − beta_shift − weight_frac[l]`` implements η/β (η = 2^-lr_shift,
   halved for the symmetric estimator, whose ±β phases each add σ·D): the float rule
   Δw = (η/β)·Σ e·Δŝ. Ternary update: ±2^ternary_shift LSB per event and term.
   ``lr_shift`` is the reset value of a per-connection **η register** that the host may rewrite between
   samples (an η schedule, e.g. a decay over the epoch: :meth:`EqSpikeSpec.check_lr_shift` gives the allowed
   values, ``EqSpikeTwin.set_lr_shift`` the twin's write); the update shifts follow the register's value.

**Event order.** Within a time step the result does not depend on the order in which spike events
are processed: the dynamics of step t read the weights of the step's start (W(t)); each
accumulator is an exact integer sum (no intermediate rounding or saturation: its width is derived
so it cannot overflow) that is narrowed and saturated once per neuron update; and every weight's
update of step t is a function of (e_i, e_j, Δŝ_i, Δŝ_j) of that step, rounded and saturated once,
and written after the step's accumulation (W(t+1) = W(t) + ΔW(t)). An event-driven RTL may therefore
take a step's spikes in any order (e.g. one pass over the step's event list for the accumulators
and one for the writes); it must not let a write of step t reach a read of step t.

Phases: free phase T1 steps from s = 0, traces 0 and residues 0 (``encoder_phase="zero"``) or drawn
(``"random"``); nudged phases T2 steps each, starting from the free phase's end (states, residues,
traces copied): +β (one-sided), or +β then −β (symmetric). ``update_apply`` says when the changes
reach the weights:

* ``online`` (default; what the RTL implements): every step's rounded, saturated changes are written
  after that step's accumulation, so the rest of the nudged phase and the −β phase run with the
  weights the updates left;
* ``sample`` (twin only; the RTL refuses it): each weight and bias has a pending sum P, exact, in
  trace LSBs: every nudged step adds σ·D (``update = "spike"``; ternary: the step's σ·D << ternary_shift
  in weight LSBs) and nothing is written during the sample; after the last nudged phase
  ``w ← sat(w + shift_round(P, update_shift(l), update_rounding))`` (ternary: ``sat(w + P)``), the same
  for the biases with ``bias_update_shift``, then P ← 0. Both nudged phases and every step of them
  run with the weights of the sample's start, as the float model's batch update does. Cost in
  hardware: a pending memory beside the weight memory, ``pending_bits(l)`` bits per weight
  (:meth:`EqSpikeSpec.pending_bits`), and one read-modify-write sweep of every weight per sample.
  Measured (docs/eqspike.md §7): the online rule's −β phase sees the +β phase's changes, which on
  batch-1 MNIST costs ≈ 10 points of test accuracy at equal η. Inference = the free phase; the class is the argmax
of the output states (lowest index on ties).

Randomness
----------
The core's PRNG (when :attr:`EqSpikeSpec.uses_prng`) is :mod:`spec.prng`'s 32-bit xorshift bank
(x ^= x<<13; x ^= x>>17; x ^= x<<5, period 2^32 − 1; output words scrambled by
:func:`spec.prng.scramble`) with P = ``lanes`` lanes, lane i started
i·``prng_jump`` steps after lane 0 (``prng_jump`` = the largest power of two with P·jump ≤ 2^32 − 2,
:class:`spec.prng.LaneBank`), seeded from ``seed`` at reset; the stream runs on across samples.
One *draw* advances every lane one step and gives one 32-bit word per lane; a draw covers one word
of P neurons of a layer (neuron t·P + i of the layer takes lane i's word of the layer's draw t;
padding lanes draw and discard). Draws of a sample, in this order:

1. ``encoder_phase="random"``: at the sample's start, one draw per word of layers 0, 1, …, L; the
   residue is φ = ((r mod 2^b)·M >> b) − ⌊M/2⌋ ∈ [−M/2, M/2] (b = input_bits or F).
2. every step of every phase, ``encoder="stochastic"``: one draw per word of layers 0 … L (step 1);
3. every step, ``state_rounding="stochastic"``: one draw per word of layers 1 … L (step 2); the low
   k bits of the word round the shift k (k ≤ 32 asserted).

Trace and update rounding are ``floor`` or ``half_up`` only: a trace is read by the update, so a
random trace rounding would only add noise where the update is most sensitive, and random bits per
*weight event* would make the draw order depend on the event order, which the spec keeps free.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from .checks import int_in as _int_in
from .fixed import ROUNDINGS, bits_for_signed
from .prng import LaneBank
from .specfile import SpecFile

SPEC_FORMAT = "epforge-eqspike-spec/1"
ENCODERS = ("sigma-delta", "stochastic")
ENCODER_PHASES = ("zero", "random")
UPDATES = ("spike", "ternary")
UPDATE_APPLIES = ("online", "sample")
ESTIMATORS = ("one-sided", "symmetric")
WEIGHT_KINDS = ("fixed", "ternary")
DETERMINISTIC_ROUNDINGS = ("floor", "half_up")
PRNG_WIDTH = 32
ACC_BITS_MAX = 62  # the twin's int64 accumulators; the RTL's are acc_bits(k) wide


def _per_conn(name: str, v: Any, n: int, lo: int, hi: int) -> tuple[int, ...]:
    v = tuple(v) if isinstance(v, (list, tuple)) else (v,)
    if len(v) == 1:
        v = v * n
    if len(v) != n:
        raise ValueError(f"{name} must have 1 or {n} entries (one per connection, input side first), "
                         f"not {len(v)}: {list(v)!r}")
    for x in v:
        _int_in(f"{name} entries", x, lo, hi)
    return v


@dataclass(frozen=True)
class EqSpikeSpec(LaneBank, SpecFile):
    """The EqSpike core's numbers (see the module docstring). Validates itself on construction.

    Parameters
    ----------
    layers : ``(N0, N1, …, NL)``, N0 the input size, at least one more layer.
    lanes : P, postsynaptic accumulators fed in parallel by one spike event (one weight word per cycle).
    training : generate the on-chip spike-driven learning datapath.
    weight_kind : ``fixed`` (signed fixed-point weights) or ``ternary`` (weights {−1, 0, +1}·2^-weight_frac
        held as 2T2R cells in a :class:`spec.ternary.TernaryMemorySpec`, :meth:`ternary_memory_spec`;
        needs ``weight_bits`` 2; a training core keeps latent weights ``v{l}`` beside the cells: twin only).
    fault_injection : (ternary only) the weight memory's PCSA/fault-injection emulation and PRNG.
    latent_bits, latent_frac, latent_threshold : (ternary training only) per connection: signed width
        and fractional bits of the latent weights ``v{l}`` in units of α_l = 2^-weight_frac[l] (default 8
        and latent_bits − 1), and the ternarisation threshold Δ_l in latent LSBs (default
        ⌊0.05·2^latent_frac + ½⌋): the EP core's rule (spec.ep_core, "On-chip training of ternary cores").
    input_bits, state_frac, trace_frac : see Formats.
    weight_bits, weight_frac : per connection (one value applies to all); bias_bits; bias_frac per
        connection (default: the connection's weight_frac).
    eps_shift, trace_shift, trace_stages, beta_shift : ε = 2^-eps_shift, λ = 2^-trace_shift, 1 or 2
        trace stages, β = 2^-beta_shift.
    lr_shift : per connection, η = 2^-lr_shift (default 6 for the input connection, 7 for the others:
        η ≈ the float SGD preset's (0.4, 0.2) divided by its batch of 50, for batch-1 on-chip learning).
    state_rounding (floor/half_up/stochastic), trace_rounding, update_rounding (floor/half_up).
    encoder, encoder_phase : ``sigma-delta``/``stochastic``; initial residues ``zero``/``random``.
    update : ``spike`` (Δŝ-weighted) or ``ternary`` (±2^ternary_shift LSB per event, comparators at
        ±update_theta trace LSBs).
    estimator : ``one-sided`` (+β) or ``symmetric`` (+β then −β).
    update_apply : ``online`` (every step's changes written after the step; the RTL's) or ``sample`` (pending
        sums, one rounding and write per weight at the sample's end; twin only).
    T1, T2 : free and nudged phase steps (< 2^step_bits).
    seed : PRNG seed at reset.
    """

    FORMAT: ClassVar[str] = SPEC_FORMAT

    layers: tuple[int, ...] = (784, 500, 10)
    lanes: int = 16
    training: bool = True
    weight_kind: str = "fixed"
    fault_injection: bool = False
    latent_bits: tuple[int, ...] | None = None
    latent_frac: tuple[int, ...] | None = None
    latent_threshold: tuple[int, ...] | None = None
    input_bits: int = 8
    state_frac: int = 12
    trace_frac: int = 16
    weight_bits: tuple[int, ...] = (16,)
    weight_frac: tuple[int, ...] = (14,)
    bias_bits: int = 16
    bias_frac: tuple[int, ...] | None = None
    eps_shift: int = 2
    trace_shift: int = 3
    trace_stages: int = 2
    beta_shift: int = 1
    lr_shift: tuple[int, ...] | None = None
    state_rounding: str = "half_up"
    trace_rounding: str = "half_up"
    update_rounding: str = "half_up"
    encoder: str = "sigma-delta"
    encoder_phase: str = "random"
    update: str = "spike"
    update_theta: int = 655
    ternary_shift: int = 0
    estimator: str = "symmetric"
    update_apply: str = "online"
    T1: int = 64
    T2: int = 32
    step_bits: int = 12
    seed: int = 1

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            layers = tuple(self.layers)
        except TypeError:
            raise ValueError(f"layers must be a sequence of positive integers, not {self.layers!r}") from None
        if len(layers) < 2:
            raise ValueError(f"layers must list the input and at least one more layer, not {list(layers)!r}")
        for n in layers:
            _int_in("layers entries", n, 1, 1 << 20)
        set_(self, "layers", layers)
        n = len(layers) - 1
        _int_in("lanes", self.lanes, 1, 4096)
        if not isinstance(self.training, bool):
            raise ValueError(f"training must be true or false, not {self.training!r}")
        if self.weight_kind not in WEIGHT_KINDS:
            raise ValueError(f"weight_kind must be one of {WEIGHT_KINDS}, not {self.weight_kind!r}")
        _int_in("input_bits", self.input_bits, 1, 16)
        _int_in("state_frac", self.state_frac, 1, 20)
        _int_in("trace_frac", self.trace_frac, 1, 24)
        set_(self, "weight_bits", _per_conn("weight_bits", self.weight_bits, n, 2, 32))
        set_(self, "weight_frac", _per_conn("weight_frac", self.weight_frac, n, 0, 32))
        _int_in("bias_bits", self.bias_bits, 2, 32)
        set_(self, "bias_frac", _per_conn("bias_frac", self.weight_frac if self.bias_frac is None else self.bias_frac,
                                          n, 0, 32))
        _int_in("eps_shift", self.eps_shift, 0, 8)
        _int_in("trace_shift", self.trace_shift, 0, 10)
        _int_in("trace_stages", self.trace_stages, 1, 2)
        _int_in("beta_shift", self.beta_shift, 0, 8)
        lr = (6,) + (7,) * (n - 1) if self.lr_shift is None else self.lr_shift
        set_(self, "lr_shift", _per_conn("lr_shift", lr, n, 0, 32))
        self._check_ternary()
        if self.state_rounding not in ROUNDINGS:
            raise ValueError(f"state_rounding must be one of {ROUNDINGS}, not {self.state_rounding!r}")
        for name in ("trace_rounding", "update_rounding"):
            if getattr(self, name) not in DETERMINISTIC_ROUNDINGS:
                raise ValueError(f"{name} must be one of {DETERMINISTIC_ROUNDINGS} (stochastic rounding of traces "
                                 f"and per-event updates is not offered: see spec.eqspike), not "
                                 f"{getattr(self, name)!r}")
        for name, allowed in (("encoder", ENCODERS), ("encoder_phase", ENCODER_PHASES), ("update", UPDATES),
                              ("estimator", ESTIMATORS), ("update_apply", UPDATE_APPLIES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        _int_in("update_theta", self.update_theta, 0, (1 << self.trace_frac) - 1)
        _int_in("ternary_shift", self.ternary_shift, 0, 16)
        _int_in("step_bits", self.step_bits, 1, 24)
        for name in ("T1", "T2"):
            _int_in(name, getattr(self, name), 1, (1 << self.step_bits) - 1)
        _int_in("seed", self.seed, 0, (1 << 32) - 1)
        if self.state_rounding == "stochastic":
            for k in range(1, n + 1):
                if self.state_shift(k) > PRNG_WIDTH:
                    raise ValueError(f"state_rounding='stochastic' rounds layer {k}'s shift {self.state_shift(k)} "
                                     f"with {PRNG_WIDTH}-bit PRNG words; allowed: shift <= {PRNG_WIDTH}")
        if self.training and self.update == "spike":
            for l in range(n):
                k, kb = self.update_shift(l), self.bias_update_shift(l)
                if min(k, kb) < 0:
                    raise ValueError(f"connection {l}: weight_frac={self.weight_frac[l]} / bias_frac="
                                     f"{self.bias_frac[l]} are too fine for trace_frac={self.trace_frac}, lr_shift="
                                     f"{self.lr_shift[l]}, beta_shift={self.beta_shift}: update shift "
                                     f"{min(k, kb)} < 0 (allowed: >= 0; raise trace_frac or lr_shift)")
        for k in range(1, n + 1):
            if self.acc_bits(k) > ACC_BITS_MAX:
                raise ValueError(f"layer {k}'s accumulator would need {self.acc_bits(k)} bits (allowed: <= "
                                 f"{ACC_BITS_MAX}): narrow the weight/bias formats")

    def _check_ternary(self) -> None:
        """The ternary weight kind's constraints (one-line errors)."""
        if not isinstance(self.fault_injection, bool):
            raise ValueError(f"fault_injection must be true or false, not {self.fault_injection!r}")
        self._check_latent()
        if self.weight_kind != "ternary":
            if self.fault_injection:
                raise ValueError("fault_injection=true needs weight_kind='ternary' (the 2T2R memory's injector), "
                                 "not weight_kind='fixed'")
            return
        if any(b != 2 for b in self.weight_bits):
            raise ValueError(f"weight_kind='ternary' needs weight_bits 2 (cells of -1, 0, +1), not "
                             f"{list(self.weight_bits)!r}")

    def _check_latent(self) -> None:
        """Normalise the latent-weight fields: tuples of n entries in ternary training specs, else None."""
        set_ = object.__setattr__
        n = self.n_layers
        names = ("latent_bits", "latent_frac", "latent_threshold")
        if not self.ternary_training:
            for name in names:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to ternary training specs only (weight_kind='ternary', "
                                     f"training=true), not weight_kind={self.weight_kind!r}, training={self.training}")
            return
        set_(self, "latent_bits", _per_conn("latent_bits", 8 if self.latent_bits is None else self.latent_bits,
                                            n, 2, 24))
        lf = tuple(b - 1 for b in self.latent_bits) if self.latent_frac is None else self.latent_frac
        set_(self, "latent_frac", _per_conn("latent_frac", lf, n, 0, 32))
        lt = (tuple(math.floor(0.05 * (1 << f) + 0.5) for f in self.latent_frac) if self.latent_threshold is None
              else self.latent_threshold)
        set_(self, "latent_threshold", _per_conn("latent_threshold", lt, n, 0, (1 << 23) - 2))
        for l, (b, t) in enumerate(zip(self.latent_bits, self.latent_threshold, strict=True)):
            if t > (1 << (b - 1)) - 2:
                raise ValueError(f"latent_threshold[{l}]={t} must be at most {(1 << (b - 1)) - 2} "
                                 f"(latent_bits[{l}]={b})")

    @property
    def ternary_training(self) -> bool:
        """A ternary core that trains: latent weights ``v{l}`` beside the cells."""
        return self.weight_kind == "ternary" and self.training

    def ternarize_latent(self, l: int, v):
        """The ternary value of latent weight(s) ``v`` of connection l: +1 above Δ_l, −1 below −Δ_l, else 0."""
        d = self.latent_threshold[l]
        return (v > d) * 1 - (v < -d) * 1

    # --- derived numbers ---------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """L: neuron layers above the input."""
        return len(self.layers) - 1

    @property
    def state_bits(self) -> int:
        return self.state_frac + 1

    @property
    def state_one(self) -> int:
        """The code of 1.0 (the largest state)."""
        return 1 << self.state_frac

    @property
    def trace_one(self) -> int:
        return 1 << self.trace_frac

    @property
    def input_scale(self) -> int:
        """M_in: the full-scale input code (pixel value of 1.0)."""
        return (1 << self.input_bits) - 1

    def full_scale(self, layer: int) -> int:
        """M of layer ``layer``'s encoders (0 = the input)."""
        return self.input_scale if layer == 0 else self.state_one

    def encoder_bits(self, layer: int) -> int:
        """b: random bits an encoder of ``layer`` uses (residue draw, stochastic comparison)."""
        return self.input_bits if layer == 0 else self.state_frac

    def residue_range(self, layer: int) -> tuple[int, int]:
        m = self.full_scale(layer)
        return -(m // 2), m // 2  # the integers of [−M/2, M/2]

    def residue_bits(self, layer: int) -> int:
        """Signed width of φ + v (before the subtraction): holds [−M/2, 3M/2]."""
        m = self.full_scale(layer)
        return bits_for_signed(-(m // 2) - 1, m + m // 2 + 1)

    @property
    def symmetric(self) -> bool:
        return self.estimator == "symmetric"

    def tiles(self, k: int) -> int:
        """Words of P neurons that hold layer k (0 = input)."""
        return -(-self.layers[k] // self.lanes)

    def acc_frac(self, k: int) -> int:
        """Fractional bits of layer k's accumulator (k = 1 … L)."""
        fr = [self.weight_frac[k - 1], self.bias_frac[k - 1], self.state_frac]
        if k < self.n_layers:
            fr.append(self.weight_frac[k])
        else:
            fr.append(self.state_frac + self.beta_shift)
        return max(fr)

    def bottom_up_shift(self, k: int) -> int:
        return self.acc_frac(k) - self.weight_frac[k - 1]

    def top_down_shift(self, k: int) -> int:
        return self.acc_frac(k) - self.weight_frac[k]

    def bias_shift(self, k: int) -> int:
        return self.acc_frac(k) - self.bias_frac[k - 1]

    def leak_shift(self, k: int) -> int:
        return self.acc_frac(k) - self.state_frac

    @property
    def nudge_shift(self) -> int:
        return self.acc_frac(self.n_layers) - self.state_frac - self.beta_shift

    def state_shift(self, k: int) -> int:
        """Right shift of layer k's accumulator into the state's increment: (acc_frac − F) + eps_shift."""
        return self.acc_frac(k) - self.state_frac + self.eps_shift

    def acc_bound(self, k: int) -> int:
        """Largest |accumulator| of layer k in one step: every presynaptic neuron spiking at the widest
        weight, the widest bias, the leak of a full state and the full nudge."""
        wb = 1 << (self.weight_bits[k - 1] - 1)
        bound = self.layers[k - 1] * wb << self.bottom_up_shift(k)
        if k < self.n_layers:
            bound += self.layers[k + 1] * (1 << (self.weight_bits[k] - 1)) << self.top_down_shift(k)
        bound += (1 << (self.bias_bits - 1)) << self.bias_shift(k)
        bound += self.state_one << self.leak_shift(k)
        if k == self.n_layers:
            bound += self.state_one << self.nudge_shift
        return bound

    def acc_bits(self, k: int) -> int:
        b = self.acc_bound(k)
        return bits_for_signed(-b, b)

    def fan_out(self, layer: int) -> int:
        """Weights one spike of ``layer`` reads: the layer above, and the layer below unless it is the input."""
        L = self.n_layers
        return (self.layers[layer + 1] if layer < L else 0) + (self.layers[layer - 1] if layer >= 2 else 0)

    def update_shift(self, l: int, lr_shift: int | None = None) -> int:
        """Right shift of σ·D (trace LSBs) into connection l's weight LSBs: η/β (halved when symmetric).

        ``lr_shift``: the connection's η register if the host changed it (default: the spec's reset value)."""
        lr = self.lr_shift[l] if lr_shift is None else lr_shift
        lf = self.latent_frac[l] if self.ternary_training else 0  # ternary: into latent LSBs (α·2^-latent_frac)
        return self.trace_frac + lr + int(self.symmetric) - self.beta_shift - self.weight_frac[l] - lf

    def bias_update_shift(self, l: int, lr_shift: int | None = None) -> int:
        lr = self.lr_shift[l] if lr_shift is None else lr_shift
        return self.trace_frac + lr + int(self.symmetric) - self.beta_shift - self.bias_frac[l]

    def pending_bound(self, l: int) -> int:
        """Largest |pending sum| of a weight of connection l over one sample (``update_apply = "sample"``):
        per nudged step |D| <= 2·2^TF (spike; two terms, |Δŝ| <= 2^TF) or 2·2^ternary_shift (ternary)."""
        per = 2 << (self.ternary_shift if self.update == "ternary" else self.trace_frac)
        return (2 if self.symmetric else 1) * self.T2 * per

    def pending_bits(self, l: int) -> int:
        """Signed width of a pending sum of connection l (``update_apply = "sample"``)."""
        b = self.pending_bound(l)
        return bits_for_signed(-b, b)

    def check_lr_shift(self, lr_shift: Any) -> tuple[int, ...]:
        """Validate run-time η register values (one per connection, or one for all); returns the tuple.

        Allowed: integers in [min, 32] where min keeps both update shifts of the connection >= 0 (the
        spec's own ``lr_shift`` satisfies it by construction)."""
        v = tuple(lr_shift) if isinstance(lr_shift, (list, tuple)) else (lr_shift,)
        n = self.n_layers
        if len(v) == 1:
            v = v * n
        if len(v) != n:
            raise ValueError(f"lr_shift must have 1 or {n} entries (one per connection), not {len(v)}: {list(v)!r}")
        for l, x in enumerate(v):
            lf = self.latent_frac[l] if self.ternary_training else 0
            lo = max(0, self.weight_frac[l] + lf - self.trace_frac - int(self.symmetric) + self.beta_shift,
                     self.bias_frac[l] - self.trace_frac - int(self.symmetric) + self.beta_shift)
            _int_in(f"lr_shift[{l}]", x, lo, 32)
        return v

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        out: dict[str, tuple[int, ...]] = {}
        for l in range(self.n_layers):
            out[f"w{l}"] = (self.layers[l + 1], self.layers[l])
        for l in range(self.n_layers):
            out[f"b{l}"] = (self.layers[l + 1],)
        for l in range(self.n_layers if self.ternary_training else 0):
            out[f"v{l}"] = (self.layers[l + 1], self.layers[l])
        return out

    def element_range(self, name: str) -> tuple[int, int]:
        if name.startswith("w") and self.weight_kind == "ternary":
            return -1, 1
        if name.startswith("v"):
            b = self.latent_bits[int(name[1:])]
            return -(1 << (b - 1)), (1 << (b - 1)) - 1
        bits = self.weight_bits[int(name[1:])] if name.startswith("w") else self.bias_bits
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    # --- ternary weights ------------------------------------------------------------------------------
    def ternary_base(self, l: int) -> int:
        """First word of connection l in the ternary weight memory: w{l} stored pre-major (word
        ``base + j·tiles(l+1) + t`` holds w{l}[t·P + i, j] in cell i; padding cells 0), connections in order."""
        return sum(self.layers[m] * self.tiles(m + 1) for m in range(l))

    def ternary_memory_spec(self):
        """The weight memory of a ternary core (every connection, :meth:`ternary_base` layout), its PRNG
        seeded from ``seed`` (a bank of its own, beside the encoders')."""
        from .ternary import TernaryMemorySpec

        if self.weight_kind != "ternary":
            raise ValueError(f"ternary_memory_spec needs weight_kind='ternary', not {self.weight_kind!r}")
        return TernaryMemorySpec(depth=self.ternary_base(self.n_layers), lanes=self.lanes,
                                 fault_injection=self.fault_injection, seed=self.seed,
                                 update_port=self.training)

    # --- randomness ----------------------------------------------------------------------------------
    @property
    def uses_prng(self) -> bool:
        return (self.encoder == "stochastic" or self.encoder_phase == "random"
                or self.state_rounding == "stochastic")

    def draws_per_step(self) -> int:
        n = 0
        if self.encoder == "stochastic":
            n += sum(self.tiles(k) for k in range(self.n_layers + 1))
        if self.state_rounding == "stochastic":
            n += sum(self.tiles(k) for k in range(1, self.n_layers + 1))
        return n

    def draws_per_sample(self, train: bool) -> int:
        """PRNG draws of one sample (inference: the free phase only)."""
        start = sum(self.tiles(k) for k in range(self.n_layers + 1)) if self.encoder_phase == "random" else 0
        steps = self.T1 + ((2 if self.symmetric else 1) * self.T2 if train else 0)
        return start + steps * self.draws_per_step()

    # --- serialisation ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if d["update_apply"] == "online":  # added later: left out at its default, so earlier digests and images hold
            del d["update_apply"]
        for k in ("fault_injection", "latent_bits", "latent_frac", "latent_threshold"):
            if not d[k]:  # added with the ternary kind: specs without them keep their digests
                del d[k]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EqSpikeSpec:
        cls.check_dict(d)
        d = dict(d)
        fmt = d.pop("format", SPEC_FORMAT)
        if fmt != SPEC_FORMAT:
            raise ValueError(f"format must be {SPEC_FORMAT!r}, not {fmt!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown EqSpike spec fields {sorted(unknown)}; allowed: {sorted(known)}")
        try:
            return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
        except TypeError as e:
            raise ValueError(f"invalid EqSpikeSpec: {e}") from None


# --- weight digest (REG_DIGEST of hdl.eqspike: a fast RTL == twin check of every weight and bias) -------------
DIGEST_ROT = 5  # h ← rotl(h, 5) ^ fold(word), + DIGEST_ADD, per memory word
DIGEST_ADD = 0x9E3779B9
DIGEST_LANE_ROT = 7  # lane p of a word is rotated left by (7·p) mod 32 before the lanes are XORed


def _rotl32(x, r: int):
    r %= 32
    return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF if r else x & 0xFFFFFFFF


def digest_words(spec: EqSpikeSpec, weights: dict):
    """The digest's memory words, in sweep order, as (rows, P) arrays of unsigned lane bit patterns.

    First every ``w{l}`` (l = 0 … L−1) presynaptic-neuron-major: for j in 0 … n_l − 1, for word t in
    0 … tiles(l+1) − 1, lanes p = 0 … P−1 hold ``w{l}[t·P + p, j]`` (0 beyond n_{l+1}) — the layout of the
    core's ``wup{l}`` memory; then every ``b{l}``: word t, lane p = ``b{l}[t·P + p]``. A lane's value is its
    two's-complement pattern of ``weight_bits[l]`` (``bias_bits``) bits."""
    import numpy as np

    P = spec.lanes
    for l in range(spec.n_layers):
        n_post = spec.layers[l + 1]
        t = spec.tiles(l + 1)
        w = np.asarray(weights[f"w{l}"], np.int64)
        pad = np.zeros((w.shape[1], t * P), np.int64)
        pad[:, :n_post] = w.T
        yield (pad & ((1 << spec.weight_bits[l]) - 1)).reshape(-1, P)
    for l in range(spec.n_layers):
        n_post = spec.layers[l + 1]
        b = np.zeros(spec.tiles(l + 1) * P, np.int64)
        b[:n_post] = np.asarray(weights[f"b{l}"], np.int64)
        yield (b & ((1 << spec.bias_bits) - 1)).reshape(-1, P)


def weight_digest(spec: EqSpikeSpec, weights: dict) -> int:
    """32-bit digest of every weight and bias (image layout ``w{l}`` (post, pre), ``b{l}``): the value the
    core's ``REG_DIGEST`` holds after a digest sweep. Per memory word (:func:`digest_words` order)
    ``fold = XOR_p rotl32(lane_p, 7p mod 32)`` and ``h ← (rotl32(h, 5) ^ fold) + 0x9E3779B9 mod 2^32``,
    from h = 0. Shifts, XORs and one constant add: the hardware form is a few hundred LUTs. Every
    single-weight difference changes it; it is a check, not a cryptographic hash, so the RTL check
    also reads every weight back now and then."""
    import numpy as np

    h = 0
    for words in digest_words(spec, weights):
        folded = np.zeros(len(words), np.uint64)
        for p in range(spec.lanes):
            r = (DIGEST_LANE_ROT * p) % 32
            u = words[:, p].astype(np.uint64)
            folded ^= ((u << np.uint64(r)) | (u >> np.uint64(32 - r))) & np.uint64(0xFFFFFFFF) if r else u
        for f in folded.tolist():
            h = ((_rotl32(h, DIGEST_ROT) ^ f) + DIGEST_ADD) & 0xFFFFFFFF
    return h
