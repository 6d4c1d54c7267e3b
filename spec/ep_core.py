"""Specification of the fixed-point EP core: sizes, lanes, Q-formats, rounding, registers, memory map.

One :class:`EPCoreSpec` travels the whole way: the Amaranth generator (:mod:`hdl.ep_core`), the
bit-exact twin (:mod:`golden.ep_core`), the quantiser, the cocotb bench and the reports all take
it, and its :meth:`~EPCoreSpec.digest` is stored in every weight image and build manifest.

Numbers (all integers; "frac" = fractional bits):

* input ``x``: unsigned ``input_bits``, Q0.input_bits (pixel/256).
* states ``s_k``: unsigned ``state_bits``, Q0.state_bits; the activation is the hard sigmoid
  ``ρ(v) = clip(v, 0, 1 − 2^-state_bits)``.
* weights ``w{l}`` (connection l: layer l → l+1): signed ``weight_bits[l]``, ``weight_frac[l]``.
* biases ``b{l}`` (of layer l+1): signed ``bias_bits``, ``bias_frac[l]``.
* pre-activation of layer k: exact integer sum at ``acc_frac(k)`` fractional bits (every term is
  aligned by an exact left shift), in ``acc_bits(k)`` bits — derived from the fan-in and the
  worst case of every term, so no sum can overflow.
* activation: ``s = clip(shift_round(pre, acc_frac − state_bits, activation_rounding), 0, 2^sb−1)``.
* nudge (MSE, inside ρ): the top layer adds ``±β (y − s_L)`` with ``y = 1.0`` (= 2^state_bits)
  for the label, ``β = 2^-beta_shift``: an exact shift into the accumulator's format.
* update (symmetric: states a = s^{−β}, b = s^{+β}, Δβ = 2β; one-sided: a = s^0, b = s^{+β}, Δβ = β):
  ``w += shift_round(post_b·pre_b − post_a·pre_a, k_w)`` saturated to the weight range, with
  ``k_w = state_bits + pre_frac + lr_shift − beta_shift + [symmetric] − weight_frac`` (η = 2^-lr_shift);
  biases are weights whose presynaptic state is exactly 1.0.

Randomness (issue 5; only in cores that need it, :attr:`EPCoreSpec.uses_prng`)
------------------------------------------------------------------------------
A core with ``update_rounding="stochastic"`` or ``estimator="random-sign"`` (and ``training``)
has one PRNG, :meth:`EPCoreSpec.prng_spec`: :mod:`spec.prng`'s xorshift bank of width
``PRNG_WIDTH`` = 32 with P = ``lanes`` lanes, lane i starting ``i · prng_jump`` steps after lane 0
(``prng_jump`` = the largest power of two with P · jump ≤ 2^32 − 2). Deterministic specs have no
PRNG and the same hardware, numbers and digest as before.

* Seeding: at reset from ``seed``; again by every write of ``REG_SEED`` (between samples: like
  every register write, ignored while the core is busy; the value is folded by
  :func:`spec.prng.seed_state`). The bank then refills its lanes (P cycles) and takes one priming
  step; a sample's last input beat waits for that. Nothing else reseeds it: the stream runs on
  across samples and inference samples.
* Stepping: all lanes advance together by one step per *draw*; draw n (n = 0, 1, … since the last
  seeding) sees every lane's output word (:func:`spec.prng.scramble` of its state) after n + 1
  steps (the seeded state itself is never used).
  Draws happen only at these points of a training sample, in this order, so they do not depend on
  how the host stalls the streams:
  1. random-sign estimator (run time: ``REG_CTRL`` bit 3 set, bit 1 clear): one draw when the free
     phase ends; bit 31 of lane P − 1's word picks the sign: 0 → +β, 1 → −β. (Lane P − 1 starts
     (P − 1)·``prng_jump`` steps ahead, so even a small seed gives well-mixed sign bits; with P = 1
     it is lane 0, whose first few words after a small seed are sparse: prefer a large seed.)
  2. stochastic rounding: one draw per weight/bias update micro-op, i.e. per word of P weights,
     in the core's order: ``w0`` row by row (row j, tiles t = 0 … tiles(0) − 1), then ``w1`` …
     ``w{L−1}`` likewise, then the bias words of ``b0`` … ``b{L−1}`` (tile by tile). Element
     ``t·P + i`` of the row (or bias word t) uses lane i's word; padding lanes draw and discard.
* Stochastic rounding: ``shift_round(v, k, "stochastic", r)`` = ``floor((v + r) / 2^k)`` with r the
  low k bits of the lane's word (k = the update shift, at most ``PRNG_WIDTH``): unbiased,
  E[result] = v / 2^k.
* Random-sign (one-sided estimator with a random sign of β): +β as one-sided (a = s^0, b = s^{+β});
  −β runs the −β phase instead (dumped as phase 2) and updates with a = s^{−β}, b = s^0, so the
  update is always (1/β′)[∂Φ(s^{β′}) − ∂Φ(s^0)] for β′ = ±β, with the one-sided shift (Δβ = β).

Ternary weights (``weight_kind="ternary"``)
-------------------------------------------
Weights ``w{l}`` ∈ {−1, 0, +1}·2^-weight_frac[l] are 2T2R cells in a :mod:`spec.ternary` memory
(read through the PCSA model, optional fault injection); the lanes add, subtract or skip. The load
port's ``w`` words carry the cells (2 bits per element: +1 → 01, −1 → 10, 0 → 00).

**On-chip training of ternary cores** (``training=True``): latent weights ``v{l}`` — signed
``latent_bits[l]``, ``latent_frac[l]`` fractional bits, in units of α_l = 2^-weight_frac[l]
(straight-through, as :mod:`golden.ternary` trains) — sit in block RAM beside the cells, laid out
like ``w{l}`` and reached on the load port after the biases (regions ``v{l}``). The relaxation reads
only the cells; the update (P multipliers, used by the update alone) does, per word of P weights:

1. ``v ← sat(v + shift_round(Δ, k_v))`` with ``k_v = update_shift(l)`` (which subtracts
   ``latent_frac``), saturated to the latent range;
2. ``t = ternarize_latent(v)``: +1 where v > Δ_l (``latent_threshold``), −1 where v < −Δ_l, else 0;
3. the word's cells are written through the memory's update port (one PRNG draw per word): a cell
   whose t changed is reprogrammed (the static injector's target), every other cell is written
   back as stored — a fault stays until its weight's ternary value changes.

Weights are updated only through the latent weights: the host keeps the cells equal to
``ternarize_latent(v)`` when it loads an image (:func:`golden.ep_core.image.ternary_image`).
Ternary training cores use deterministic update rounding and the one-sided or symmetric estimator
(their only PRNG is the memory's).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from . import ternary as _tm
from .checks import int_in
from .checks import positive_int as _pos_int
from .fixed import ROUNDINGS, bits_for_signed, signed_range
from .prng import LaneBank, lane_limit_message
from .specfile import SpecFile
from .ternary import TernaryMemorySpec

ESTIMATORS = ("one-sided", "symmetric", "random-sign")
WEIGHT_KINDS = ("fixed", "ternary")
SPEC_FORMAT = "epforge-ep-core-spec/1"
PRNG_WIDTH = 32  # xorshift width of the core's PRNG (spec.prng), when it has one

# Register map of the core (word addresses on its register port).
# REG_CTRL bit 0: training mode; bit 1: symmetric estimator; bit 2: dump states after every phase;
# bit 3: random-sign estimator (only in cores with a PRNG; ignored while bit 1 is set)
REG_CTRL = 0
CTRL_TRAIN, CTRL_SYMMETRIC, CTRL_DUMP, CTRL_RANDOM_SIGN = 1, 2, 4, 8
REG_T1 = 1
REG_T2 = 2
REG_BETA_SHIFT = 3
REG_LR_SHIFT = 4
REG_SEED = 5
REG_STATUS = 8  # bit 0: busy; bit 1: a register write was refused (sticky; any write of REG_STATUS clears it)
STATUS_BUSY, STATUS_REG_ERROR = 1, 2
REG_CYCLES = 9  # clock cycles of the last sample (input accepted → output sent)
REG_SAMPLES = 10  # samples completed since reset
REG_SPEC_ID = 11  # low 32 bits of the spec digest: the host refuses images built for other numbers
REG_BITS = 32

PHASE_FREE, PHASE_PLUS, PHASE_MINUS = 0, 1, 2

# Ternary cores (weight_kind="ternary"): the weight memory's registers on the core's register port.
# REG_SEED (5) reseeds the memory's PRNG (a ternary core has no other PRNG). Memory register
# spec.ternary.X is reached at core address TERNARY_REGS[X].
REG_TCTRL = 6  # spec.ternary.REG_CTRL: mode, error kind, PCSA supply
REG_TRATE_ZERO = 7  # spec.ternary.REG_RATE_ZERO
REG_TRATE_NONZERO = 12  # spec.ternary.REG_RATE_NONZERO
REG_TINJECTED = 13  # spec.ternary.REG_INJECTED (write: clear)
REG_TILLEGAL = 14  # spec.ternary.REG_ILLEGAL (write: clear)
REG_TREADS = 15  # spec.ternary.REG_READS (write: clear)

# core register address → the ternary memory's register it reaches
TERNARY_REGS = {REG_TCTRL: _tm.REG_CTRL, REG_TRATE_ZERO: _tm.REG_RATE_ZERO, REG_TRATE_NONZERO: _tm.REG_RATE_NONZERO,
                REG_SEED: _tm.REG_SEED, REG_TINJECTED: _tm.REG_INJECTED, REG_TILLEGAL: _tm.REG_ILLEGAL,
                REG_TREADS: _tm.REG_READS}

_OMIT_DEFAULTS = {"weight_kind": "fixed", "fault_injection": False, "latent_bits": None, "latent_frac": None,
                  "latent_threshold": None}
LATENT_DELTA = 0.05  # default ternarisation threshold of the latent weights (golden.ternary's δ)


def pack_fields(fields: list[tuple[str, int]], values: dict[str, int]) -> int:
    """Pack a payload: field i occupies the bits after fields 0…i−1 (missing fields are 0)."""
    word, pos = 0, 0
    for name, width in fields:
        v = int(values.get(name, 0))
        if not 0 <= v < (1 << width):
            raise ValueError(f"payload field {name}={v} does not fit {width} unsigned bits")
        word |= v << pos
        pos += width
    return word


def unpack_fields(fields: list[tuple[str, int]], word: int) -> dict[str, int]:
    out, pos = {}, 0
    for name, width in fields:
        out[name] = (int(word) >> pos) & ((1 << width) - 1)
        pos += width
    return out


def _nonneg_int(name: str, v: Any) -> int:
    return int_in(name, v, 0)


@dataclass(frozen=True)
class MemoryRegion:
    """A block of the core's weight/bias memory as seen on its load/read-back port."""

    name: str  # "w0", "b0", ...
    base: int  # first word address
    rows: int  # words per tile row group (rows of the matrix; 1 for biases)
    tiles: int  # words per row
    elem_bits: int  # bits per element; P elements per word, element i in bits [i·elem_bits, …)

    @property
    def words(self) -> int:
        return self.rows * self.tiles


@dataclass(frozen=True)
class EPCoreSpec(LaneBank, SpecFile):
    """The EP core's numbers. Validates itself on construction.

    Parameters
    ----------
    layers : ``(N0, N1, …, NL)`` with N0 the input size; at least one hidden layer.
    lanes : P, multipliers working in parallel (need not divide any layer size).
    input_bits, state_bits : widths of the unsigned input and neuron states.
    weight_bits, weight_frac : per connection (one value applies to all).
    bias_bits : width of every bias; ``bias_frac`` per connection (default: that connection's
        ``weight_frac``).
    activation_rounding : rounding of the pre-activation narrowing (``floor`` or ``half_up``).
    update_rounding : rounding of the weight-update narrowing (``floor``, ``half_up`` or
        ``stochastic``: random bits from the core's PRNG, see the module docstring).
    training : generate the on-chip learning datapath (else an inference-only core).
    T1, T2, beta_shift, lr_shift, estimator : reset values of the run-time registers (estimator
        ``one-sided``, ``symmetric`` or ``random-sign``; random-sign needs the PRNG, which a training
        spec with that estimator gets).
    step_bits : width of the T1/T2 registers.
    beta_shift_max, lr_shift_max : largest values the shifters support.
    seed : reset value of the PRNG seed register (the ternary memory's PRNG in a ternary core).
    weight_kind : ``fixed`` (signed fixed-point weights, P multipliers) or ``ternary`` (weights in
        {−1, 0, +1}·2^-weight_frac held as 2T2R cells in a :class:`spec.ternary.TernaryMemorySpec`
        memory, add/subtract/skip lanes, ``weight_bits`` 2; with ``training`` latent weights train on chip). See
        "Ternary weights".
    fault_injection : (ternary only) the weight memory's PCSA/fault-injection emulation and PRNG.
    latent_bits, latent_frac, latent_threshold : (ternary training cores only) per connection: the
        signed width and fractional bits of the latent weights ``v{l}`` (default 8 and
        ``latent_bits − 1``: latent values in [−1, 1)) and the ternarisation threshold Δ_l in latent
        LSBs (default ⌊0.05·2^latent_frac + ½⌋); see "On-chip training of ternary cores".
    """

    FORMAT: ClassVar[str] = SPEC_FORMAT

    layers: tuple[int, ...] = (784, 500, 10)
    lanes: int = 16
    input_bits: int = 8
    state_bits: int = 8
    weight_bits: tuple[int, ...] = (8,)
    weight_frac: tuple[int, ...] = (8,)
    bias_bits: int = 16
    bias_frac: tuple[int, ...] | None = None
    activation_rounding: str = "half_up"
    update_rounding: str = "floor"
    training: bool = True
    T1: int = 30
    T2: int = 10
    beta_shift: int = 1
    lr_shift: int = 8
    estimator: str = "symmetric"
    step_bits: int = 12
    beta_shift_max: int = 4
    lr_shift_max: int = 15
    seed: int = 1
    weight_kind: str = "fixed"
    fault_injection: bool = False
    latent_bits: tuple[int, ...] | None = None
    latent_frac: tuple[int, ...] | None = None
    latent_threshold: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            layers = tuple(self.layers)
        except TypeError:
            raise ValueError(f"layers must be a sequence of positive integers, not {self.layers!r}") from None
        if len(layers) < 3:
            raise ValueError(f"layers must list the input, at least one hidden layer and the output, not {layers!r}")
        for n in layers:
            _pos_int("layers entries", n)
        set_(self, "layers", layers)
        _pos_int("lanes", self.lanes)
        for name in ("input_bits", "state_bits", "bias_bits", "step_bits"):
            _pos_int(name, getattr(self, name))
        if self.state_bits > 16 or self.input_bits > 16:
            raise ValueError(f"state_bits and input_bits must be at most 16, not {self.state_bits}/{self.input_bits}")
        n = len(layers) - 1
        for name, lo in (("weight_bits", 2), ("weight_frac", 0)):
            v = getattr(self, name)
            v = tuple(v) if isinstance(v, (list, tuple)) else (v,)
            if len(v) == 1:
                v = v * n
            if len(v) != n:
                raise ValueError(f"{name} must have 1 or {n} entries (one per connection), not {len(v)}: {v!r}")
            for x in v:
                if isinstance(x, bool) or not isinstance(x, int) or x < lo:
                    raise ValueError(f"{name} entries must be integers >= {lo}, not {x!r}")
            set_(self, name, v)
        bf = self.weight_frac if self.bias_frac is None else self.bias_frac
        bf = tuple(bf) if isinstance(bf, (list, tuple)) else (bf,)
        if len(bf) == 1:
            bf = bf * n
        if len(bf) != n:
            raise ValueError(f"bias_frac must have 1 or {n} entries (one per connection), not {len(bf)}")
        for x in bf:
            _nonneg_int("bias_frac entries", x)
        set_(self, "bias_frac", bf)
        if self.activation_rounding not in ("floor", "half_up"):
            raise ValueError("activation_rounding must be one of ('floor', 'half_up'), "
                             f"not {self.activation_rounding!r}")
        if self.update_rounding not in ROUNDINGS:
            raise ValueError(f"update_rounding must be one of {ROUNDINGS}, not {self.update_rounding!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, not {self.estimator!r}")
        for name in ("T1", "T2"):
            v = _pos_int(name, getattr(self, name))
            if v >= 1 << self.step_bits:
                raise ValueError(f"{name}={v} does not fit step_bits={self.step_bits}")
        for name in ("beta_shift", "lr_shift", "beta_shift_max", "lr_shift_max", "seed"):
            _nonneg_int(name, getattr(self, name))
        if self.seed >= 1 << REG_BITS:
            raise ValueError(f"seed must be in 0..2^{REG_BITS}-1 (the seed register's width), not {self.seed}")
        if self.beta_shift > self.beta_shift_max:
            raise ValueError(f"beta_shift={self.beta_shift} exceeds beta_shift_max={self.beta_shift_max}")
        if self.lr_shift > self.lr_shift_max:
            raise ValueError(f"lr_shift={self.lr_shift} exceeds lr_shift_max={self.lr_shift_max}")
        if self.weight_kind not in WEIGHT_KINDS:
            raise ValueError(f"weight_kind must be one of {WEIGHT_KINDS}, not {self.weight_kind!r}")
        self._check_latent(n)
        # exactness conditions of the nudge and update shifts
        nudge_room = self.beta_shift_room
        if self.beta_shift_max > nudge_room:
            raise ValueError(f"beta_shift_max={self.beta_shift_max} exceeds what the output layer's accumulator "
                             f"format keeps exact (acc_frac - state_bits = {nudge_room}); raise weight_frac[-1]")
        if self.training:
            for l in range(n):
                k = self.update_shift(l, lr_shift=0, beta_shift=self.beta_shift_max, symmetric=False)
                kb = self.bias_update_shift(l, lr_shift=0, beta_shift=self.beta_shift_max, symmetric=False)
                if min(k, kb) < 0:
                    lat = f" / latent_frac={self.latent_frac[l]}" if self.ternary_training else ""
                    raise ValueError(f"connection {l}: weight_frac={self.weight_frac[l]}{lat} / bias_frac="
                                     f"{self.bias_frac[l]} are too fine for an exact update shift at lr_shift=0, "
                                     f"beta_shift={self.beta_shift_max} (shift {min(k, kb)} < 0)")
        if not isinstance(self.fault_injection, bool):
            raise ValueError(f"fault_injection must be a bool (true/false), not {self.fault_injection!r}")
        if self.weight_kind == "ternary":
            if self.training and (self.update_rounding == "stochastic" or self.estimator == "random-sign"):
                raise ValueError(f"ternary training cores have no PRNG of their own: update_rounding must be 'floor' "
                                 f"or 'half_up' (not {self.update_rounding!r}) and estimator 'one-sided' or "
                                 f"'symmetric' (not {self.estimator!r})")
            if any(b != 2 for b in self.weight_bits):
                raise ValueError(f"weight_kind='ternary' needs weight_bits 2 (cells of -1, 0, +1), "
                                 f"not {self.weight_bits!r}")
        elif self.fault_injection:
            raise ValueError("fault_injection needs weight_kind='ternary'")
        if self.acc_bits_max > 48:
            raise ValueError(f"the accumulators would need {self.acc_bits_max} bits (> 48): narrow the formats")
        if self.training and self.update_rounding == "stochastic" and self.update_shift_max > PRNG_WIDTH:
            raise ValueError(f"update_rounding='stochastic' draws k random bits per update from {PRNG_WIDTH}-bit PRNG "
                             f"words, but the update shift k reaches {self.update_shift_max} (lr_shift_max="
                             f"{self.lr_shift_max}, beta_shift=0, symmetric); allowed: k <= {PRNG_WIDTH} — lower "
                             f"lr_shift_max, give weight_frac/bias_frac more bits, or use update_rounding 'floor' or "
                             f"'half_up'")

    def _check_latent(self, n: int) -> None:
        """Normalise the latent-weight fields: tuples of n entries in ternary training cores, else None."""
        set_ = object.__setattr__
        names = ("latent_bits", "latent_frac", "latent_threshold")
        if not self.ternary_training:
            for name in names:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies to ternary training cores only (weight_kind='ternary', "
                                     f"training=true), not to {self.weight_kind!r} "
                                     f"{'training' if self.training else 'inference'} cores")
            return

        def per_conn(name, v, default, lo, hi):
            if v is None:
                v = default
            v = tuple(v) if isinstance(v, (list, tuple)) else (v,)
            if len(v) == 1:
                v = v * n
            if len(v) != n:
                raise ValueError(f"{name} must have 1 or {n} entries (one per connection), not {len(v)}: {v!r}")
            for l, x in enumerate(v):
                top = hi(l) if callable(hi) else hi
                if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= top:
                    raise ValueError(f"{name} entries must be integers in {lo}..{top}, not {x!r}")
            set_(self, name, v)

        per_conn("latent_bits", self.latent_bits, (8,), 2, 24)
        per_conn("latent_frac", self.latent_frac, tuple(b - 1 for b in self.latent_bits), 0, 32)
        dflt = tuple(math.floor(LATENT_DELTA * (1 << f) + 0.5) for f in self.latent_frac)
        per_conn("latent_threshold", self.latent_threshold, dflt, 0,
                 lambda l: (1 << (self.latent_bits[l] - 1)) - 2)

    # --- derived numbers -------------------------------------------------------------------------
    @property
    def ternary_training(self) -> bool:
        """A ternary core that trains on chip: latent weights ``v{l}`` beside the cells."""
        return self.weight_kind == "ternary" and self.training

    @property
    def n_layers(self) -> int:
        """L: neuron layers above the input."""
        return len(self.layers) - 1

    @property
    def n_classes(self) -> int:
        return self.layers[-1]

    def pre_frac(self, l: int) -> int:
        """Fractional bits of connection l's presynaptic layer (the input or a state)."""
        return self.input_bits if l == 0 else self.state_bits

    def pre_bits(self, l: int) -> int:
        return self.input_bits if l == 0 else self.state_bits

    def tiles(self, k: int) -> int:
        """Words of P elements that hold layer k (0 = input)."""
        return -(-self.layers[k] // self.lanes)

    def acc_frac(self, k: int) -> int:
        """Fractional bits of layer k's pre-activation (k = 1 … L)."""
        fr = [self.weight_frac[k - 1] + self.pre_frac(k - 1), self.bias_frac[k - 1]]
        if k < self.n_layers:
            fr.append(self.weight_frac[k] + self.state_bits)
        else:
            fr.append(self.state_bits)  # nudge term (y − s) at the state's precision, before its shift
        return max(fr)

    @property
    def beta_shift_room(self) -> int:
        """Largest β shift the output layer's accumulator format keeps exact (acc_frac(L) − state_bits)."""
        return self.acc_frac(self.n_layers) - self.state_bits

    def bottom_up_shift(self, k: int) -> int:
        return self.acc_frac(k) - (self.weight_frac[k - 1] + self.pre_frac(k - 1))

    def top_down_shift(self, k: int) -> int:
        return self.acc_frac(k) - (self.weight_frac[k] + self.state_bits)

    def bias_shift(self, k: int) -> int:
        return self.acc_frac(k) - self.bias_frac[k - 1]

    def nudge_shift(self, beta_shift: int) -> int:
        """Left shift of (y − s_L) into the output accumulator: β·(y − s) exactly."""
        return self.acc_frac(self.n_layers) - self.state_bits - beta_shift

    def activation_shift(self, k: int) -> int:
        return self.acc_frac(k) - self.state_bits

    def update_shift(self, l: int, lr_shift: int, beta_shift: int, symmetric: bool) -> int:
        """Right shift (with rounding) of connection l's state-product difference into weight LSBs.

        In a ternary training core the update lands on the latent weight, in units of the scale
        α_l = 2^-weight_frac[l] (straight-through, as :mod:`golden.ternary` trains): its LSB stands for
        2^-latent_frac[l]·α_l, so the shift is ``latent_frac[l]`` smaller."""
        k = self.state_bits + self.pre_frac(l) + lr_shift - beta_shift + int(symmetric) - self.weight_frac[l]
        return k - self.latent_frac[l] if self.ternary_training else k

    def bias_update_shift(self, l: int, lr_shift: int, beta_shift: int, symmetric: bool) -> int:
        """As :meth:`update_shift` for the bias, whose presynaptic 'state' is exactly 1.0 = 2^state_bits."""
        return 2 * self.state_bits + lr_shift - beta_shift + int(symmetric) - self.bias_frac[l]

    @property
    def sign_lane(self) -> int:
        """PRNG lane whose bit 31 picks the sign of β for the random-sign estimator."""
        return self.lanes - 1

    @property
    def update_shift_max(self) -> int:
        """Largest update shift over every register setting (lr_shift_max, beta_shift = 0, symmetric)."""
        return max([self.update_shift(l, self.lr_shift_max, 0, True) for l in range(self.n_layers)]
                   + [self.bias_update_shift(l, self.lr_shift_max, 0, True) for l in range(self.n_layers)])

    # --- randomness (issue 5) ------------------------------------------------------------------
    def register_write_error(self, addr: int, value: int) -> str | None:
        """Why the core refuses a register write of ``value`` to ``addr``; ``None`` if it takes it.

        A refused write leaves every register as it was and sets ``STATUS_REG_ERROR`` (sticky) in
        ``REG_STATUS``; a write of ``REG_STATUS`` clears that bit. Refused: T1/T2 outside
        1..2^step_bits − 1, BETA_SHIFT above ``beta_shift_max``, LR_SHIFT above ``lr_shift_max``, CTRL
        with a bit the core does not have (bits 4 and up; the training bit without ``training``; the
        random-sign bit without a PRNG), and writes of a read-only (CYCLES, SAMPLES, SPEC_ID) or
        unmapped address. Any 32-bit SEED is taken (0 is folded to 1 by :func:`spec.prng.seed_state`).
        Writes while the core is busy are ignored without a flag (the host waits for STATUS bit 0).
        """
        if isinstance(addr, bool) or not isinstance(addr, int) or not 0 <= addr < 16:
            raise ValueError(f"addr must be a register address in 0..15, not {addr!r}")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << REG_BITS:
            raise ValueError(f"value must be an integer in 0..2^{REG_BITS}-1, not {value!r}")
        if addr in (REG_T1, REG_T2) and not 0 < value < 1 << self.step_bits:
            return f"{'T1' if addr == REG_T1 else 'T2'}={value} outside 1..{(1 << self.step_bits) - 1}"
        if addr == REG_BETA_SHIFT and value > self.beta_shift_max:
            return f"BETA_SHIFT={value} above beta_shift_max={self.beta_shift_max}"
        if addr == REG_LR_SHIFT and value > self.lr_shift_max:
            return f"LR_SHIFT={value} above lr_shift_max={self.lr_shift_max}"
        if addr == REG_CTRL:
            if value >> 4:
                return f"CTRL={value:#x} sets bits above 3"
            if value & CTRL_TRAIN and not self.training:
                return "CTRL sets the training bit on a core without training"
            if value & CTRL_RANDOM_SIGN and not self.uses_prng:
                return "CTRL sets the random-sign bit on a core without a PRNG"
        mapped = {REG_CTRL, REG_T1, REG_T2, REG_BETA_SHIFT, REG_LR_SHIFT, REG_SEED, REG_STATUS}
        if self.weight_kind == "ternary":
            mapped |= set(TERNARY_REGS)
        if addr not in mapped:
            return f"address {addr} is read-only or unmapped"
        return None

    @property
    def uses_prng(self) -> bool:
        """The core has a PRNG: a training core with stochastic rounding or the random-sign estimator."""
        return self.training and (self.update_rounding == "stochastic" or self.estimator == "random-sign")

    def prng_draws_per_sample(self, random_sign: bool | None = None, symmetric: bool | None = None) -> int:
        """Draws of the core's PRNG bank per training sample: 1 for the random-sign β (``random_sign``
        and not ``symmetric``; default: the spec's estimator) plus one per word of a stochastic update
        (:meth:`update_draws`); 0 for a core without a PRNG."""
        if not self.uses_prng:
            return 0
        rs = self.estimator == "random-sign" if random_sign is None else random_sign
        sym = self.estimator == "symmetric" if symmetric is None else symmetric
        upd = sum(n for _, n in self.update_draws()) if self.update_rounding == "stochastic" else 0
        return int(rs and not sym) + upd

    def independent_training_samples(self, random_sign: bool | None = None,
                                     symmetric: bool | None = None) -> int | None:
        """Training samples (since a seeding) before PRNG lane i + 1 repeats lane i:
        ``prng_jump // prng_draws_per_sample``; ``None`` without draws (no limit)."""
        d = self.prng_draws_per_sample(random_sign, symmetric)
        return self.prng_jump // d if d else None

    def training_limit_message(self, samples: int, random_sign: bool | None = None,
                               symmetric: bool | None = None) -> str | None:
        """Why ``samples`` training samples reuse the core's PRNG lanes; ``None`` if they do not."""
        return lane_limit_message(
            "training samples", f"layers={'-'.join(map(str, self.layers))}, lanes={self.lanes}, "
            f"update_rounding={self.update_rounding!r}, estimator={self.estimator!r}",
            self.prng_draws_per_sample(random_sign, symmetric), self.prng_jump, (1 << 32) - 1, samples,
            "train on fewer samples per seeding (reseed between runs) or draw less per sample "
            "(a smaller core, update_rounding='half_up'/'floor', estimator not 'random-sign')", "training sample")

    def memory_reads_per_inference(self, T1: int | None = None) -> int:
        """Weight-memory reads (PRNG draws with faults) of one free phase of ``T1`` steps (default the
        spec's): the ``c1`` sweep plus ``T1`` times a step's sweeps (:meth:`weight_read_schedule`)."""
        c1, step = self.weight_read_schedule()
        return len(c1) + (self.T1 if T1 is None else T1) * sum(len(a) for *_, a in step)

    def update_draws(self) -> list[tuple[str, int]]:
        """PRNG draws of one stochastic update, in order: (array name, draws), one draw per word."""
        L = self.n_layers
        return ([(f"w{l}", self.layers[l + 1] * self.tiles(l)) for l in range(L)]
                + [(f"b{l}", self.tiles(l + 1)) for l in range(L)])

    def acc_bound(self, k: int) -> int:
        """Largest |pre-activation| of layer k over all weights, states and inputs (exact bound)."""
        wl = -self.element_range(f"w{k - 1}")[0]  # largest |weight|
        bound = self.layers[k - 1] * wl * ((1 << self.pre_bits(k - 1)) - 1) << self.bottom_up_shift(k)
        if k < self.n_layers:
            wu = -self.element_range(f"w{k}")[0]
            bound += self.layers[k + 1] * wu * ((1 << self.state_bits) - 1) << self.top_down_shift(k)
        bound += (1 << (self.bias_bits - 1)) << self.bias_shift(k)
        if k == self.n_layers:
            bound += (1 << self.state_bits) << self.nudge_shift(0)
        return bound

    def c1_range(self) -> tuple[int, int]:
        """Range c1 (layer 1's bottom-up term W0·x + b0, aligned) is stored in, exactly.

        Layer 1's pre-activation is c1 plus a top-down term t with |t| ≤ TD. Any c1 above
        ``2^(state_bits + act) + TD`` gives the top state whatever t is, any c1 below ``−TD − 2^act``
        gives 0 (act = activation_shift(1), with either activation rounding), so saturating c1 to
        that range changes nothing — and lets its memory be far narrower than the accumulator.
        """
        act = self.activation_shift(1)
        wu = -self.element_range("w1")[0]
        td = self.layers[2] * wu * ((1 << self.state_bits) - 1) << self.top_down_shift(1)
        lo, hi = -td - (1 << act), ((1 << self.state_bits) << act) + td
        b = self.acc_bound(1)
        return max(lo, -b), min(hi, b)

    @property
    def c1_bits(self) -> int:
        """Signed width of a stored c1 lane (:meth:`c1_range`)."""
        return bits_for_signed(*self.c1_range())

    def acc_bits(self, k: int) -> int:
        b = self.acc_bound(k)
        return bits_for_signed(-b, b)

    @property
    def acc_bits_max(self) -> int:
        return max(self.acc_bits(k) for k in range(1, self.n_layers + 1))

    def product_bits(self, l: int) -> int:
        """Signed width of one weight × state product of connection l."""
        return self.weight_bits[l] + self.pre_bits(l) + 1

    @property
    def lane_operand_bits(self) -> tuple[int, int]:
        """Signed widths ``(left, right)`` of each lane's multiplier (:class:`hdl.kit.operands.OperandSelect`):
        left a weight, a post state or the d pass's difference; right a pre state or input, or a broadcast
        state. Inference and training share the one multiplier per lane."""
        return max(max(self.weight_bits), self.state_bits + 2), max(self.input_bits, self.state_bits) + 1

    @property
    def lane_multipliers(self) -> int:
        """Multipliers of the core's lanes: P (one per lane, shared by inference and training), or 0 for a
        ternary inference core (add/subtract/skip lanes; a ternary training core multiplies in its update)."""
        return 0 if self.weight_kind == "ternary" and not self.training else self.lanes

    def multiplies(self, training: bool, T1: int | None = None, T2: int | None = None,
                   symmetric: bool | None = None) -> dict[str, int]:
        """Products with two non-constant operands in one sample, from the core's sweep schedule (padding
        lanes not counted): ``relax`` = the roofline's A (``c1`` and T1 [+ nudged] steps of top-down and
        bottom-up products); ``update`` (training) = w0's d·x products plus two state products per weight
        of every later connection (b then a); the d pass and the bias updates multiply by 1 and are not
        counted. The DSP bound of a build is ``DSPs × Fmax / total`` samples/s."""
        relax = int(self.roofline(training, T1, T2, symmetric)["A"])
        n = self.layers
        update = (n[0] * n[1] + sum(2 * n[l] * n[l + 1] for l in range(1, self.n_layers))) if training else 0
        return {"relax": relax, "update": update, "total": relax + update}

    @property
    def label_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.n_classes)))

    @property
    def word_elem_bits(self) -> int:
        """Element width of the load/read-back port's words (the widest element)."""
        return max(max(self.weight_bits), self.bias_bits, *(self.latent_bits or ()))

    def memory_map(self) -> list[MemoryRegion]:
        """Weight and bias regions on the load/read-back port, in address order (a ternary training
        core's latent weights ``v{l}`` last, laid out like ``w{l}``)."""
        regions, base = [], 0
        for l in range(self.n_layers):
            r = MemoryRegion(f"w{l}", base, self.layers[l + 1], self.tiles(l), self.weight_bits[l])
            regions.append(r)
            base += r.words
        for l in range(self.n_layers):
            r = MemoryRegion(f"b{l}", base, 1, self.tiles(l + 1), self.bias_bits)
            regions.append(r)
            base += r.words
        for l in range(self.n_layers if self.ternary_training else 0):
            r = MemoryRegion(f"v{l}", base, self.layers[l + 1], self.tiles(l), self.latent_bits[l])
            regions.append(r)
            base += r.words
        return regions

    @property
    def memory_words(self) -> int:
        m = self.memory_map()
        return m[-1].base + m[-1].words

    # --- storage ------------------------------------------------------------------------------------
    def storage_bits(self) -> dict[str, int]:
        """Bits of every memory of the core (words × width, as :mod:`hdl.ep_core` declares them):
        what a device's block RAM must hold at the least (packing into RAM blocks adds to it)."""
        L, P, T, SB = self.n_layers, self.lanes, [self.tiles(k) for k in range(len(self.layers))], self.state_bits
        rows = [self.layers[l + 1] * T[l] for l in range(L)]
        out = {}
        if self.weight_kind == "ternary":
            out["cells"] = sum(rows) * 2 * P
        else:
            out["weights"] = sum(r * P * b for r, b in zip(rows, self.weight_bits, strict=True))
        if self.ternary_training:
            out["latent"] = sum(r * P * b for r, b in zip(rows, self.latent_bits, strict=True))
        out["biases"] = sum(T[1:]) * P * self.bias_bits
        out["states"] = sum(4 * T[k] * P * SB for k in range(1, L + 1))
        out["input"] = T[0] * P * self.input_bits
        out["c1"] = T[1] * P * self.c1_bits
        out["partials"] = sum(T[k] * P * self.acc_bits(k) for k in range(2, L))
        if self.training:
            out["d"] = T[1] * P * (SB + 1)
        return out

    # --- ternary weights --------------------------------------------------------------------------
    def ternarize_latent(self, l: int, v):
        """The ternary value of latent weight(s) ``v`` of connection l: +1 above Δ_l, −1 below −Δ_l, else 0
        (works on ints and on numpy arrays)."""
        d = self.latent_threshold[l]
        return (v > d) * 1 - (v < -d) * 1

    def ternary_memory_spec(self) -> TernaryMemorySpec:
        """The weight memory of a ternary core: the ``w{l}`` regions of :meth:`memory_map`, same addresses."""
        if self.weight_kind != "ternary":
            raise ValueError(f"ternary_memory_spec needs weight_kind='ternary', not {self.weight_kind!r}")
        depth = sum(r.words for r in self.memory_map() if r.name.startswith("w"))
        return TernaryMemorySpec(depth=depth, lanes=self.lanes, fault_injection=self.fault_injection,
                                 seed=self.seed, update_port=self.training)

    def weight_read_schedule(self) -> tuple[list[int], list[tuple[str, int, int, list[int]]]]:
        """Weight-memory word addresses a sample reads, in issue order.

        Returns ``(c1, step)``: the ``c1`` sweep reads ``w0`` row by row (row j, tiles t) once per
        sample; every relaxation step then runs the sweeps of ``step`` in order, each
        ``(direction, layer k, connection l, addresses)``: the top-down sweep into layer 1 (``"td"``,
        ``w1`` by columns: tile t, rows j), for k = 2 … L−1 the top-down sweep into layer k
        (``w{k}`` by columns) and the bottom-up sweep into layer k (``"bu"``, ``w{k−1}`` by rows),
        and the bottom-up sweep into layer L (``w{L−1}`` by rows). A ternary core's memory draws
        once per address listed (dynamic faults, nominal PCSA), so this order is part of the twin's
        contract.
        """
        base = {r.name: r.base for r in self.memory_map()}
        L = self.n_layers

        def rows(l):
            T = self.tiles(l)
            return [base[f"w{l}"] + j * T + t for j in range(self.layers[l + 1]) for t in range(T)]

        def cols(l):
            T = self.tiles(l)
            return [base[f"w{l}"] + j * T + t for t in range(T) for j in range(self.layers[l + 1])]

        step = [("td", 1, 1, cols(1))]
        for k in range(2, L):
            step += [("td", k, k, cols(k)), ("bu", k, k - 1, rows(k - 1))]
        step.append(("bu", L, L - 1, rows(L - 1)))
        return rows(0), step

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes: dict[str, tuple[int, ...]] = {}
        for l in range(self.n_layers):
            shapes[f"w{l}"] = (self.layers[l + 1], self.layers[l])
            shapes[f"b{l}"] = (self.layers[l + 1],)
        for l in range(self.n_layers if self.ternary_training else 0):
            shapes[f"v{l}"] = (self.layers[l + 1], self.layers[l])
        return shapes

    def element_range(self, name: str) -> tuple[int, int]:
        if name.startswith("v"):
            return signed_range(self.latent_bits[int(name[1:])])
        if name.startswith("w"):
            if self.weight_kind == "ternary":
                return (-1, 1)
            return signed_range(self.weight_bits[int(name[1:])])
        return signed_range(self.bias_bits)

    # --- stream payloads (bit 0 first; hdl builds its StructLayouts from these, sim packs with them) ---
    @property
    def addr_bits(self) -> int:
        return max(1, (self.memory_words - 1).bit_length())

    @property
    def tile_bits(self) -> int:
        return max(1, (max(self.tiles(k) for k in range(len(self.layers))) - 1).bit_length())

    @property
    def layer_bits(self) -> int:
        return max(1, self.n_layers.bit_length())

    def input_fields(self) -> list[tuple[str, int]]:
        """One beat of the input stream: P pixels (lane i = pixel t·P+i of beat t) and the label
        (read on the sample's last beat). A sample is ``tiles(0)`` beats."""
        return [(f"pixels[{i}]", self.input_bits) for i in range(self.lanes)] + [("label", self.label_bits)]

    def output_fields(self) -> list[tuple[str, int]]:
        """One beat per sample: the prediction (argmax of the free phase's output layer)."""
        return [("pred", self.label_bits)]

    def dump_fields(self) -> list[tuple[str, int]]:
        """State dump after every phase (when enabled): one beat per tile of each layer 1..L."""
        return ([(f"states[{i}]", self.state_bits) for i in range(self.lanes)]
                + [("tile", self.tile_bits), ("layer", self.layer_bits), ("phase", 2)])

    def wcmd_fields(self) -> list[tuple[str, int]]:
        """Weight port command: write ``data`` to ``addr`` (write=1) or read ``addr`` (write=0)."""
        return [("data", self.lanes * self.word_elem_bits), ("addr", self.addr_bits), ("write", 1)]

    def wrsp_fields(self) -> list[tuple[str, int]]:
        """Weight port response (one per read command)."""
        return [("data", self.lanes * self.word_elem_bits)]

    # --- roofline (DESIGN.md) ---------------------------------------------------------------------
    def roofline(self, training: bool, T1: int | None = None, T2: int | None = None,
                 symmetric: bool | None = None) -> dict[str, float]:
        """Lower bound on cycles per sample: MAC-type operations / P (DESIGN.md's roofline)."""
        T1 = self.T1 if T1 is None else T1
        T2 = self.T2 if T2 is None else T2
        symmetric = (self.estimator == "symmetric") if symmetric is None else symmetric
        n = self.layers
        steps = T1 + ((2 if symmetric else 1) * T2 if training else 0)
        inner = sum(n[l] * n[l + 1] for l in range(1, self.n_layers))
        a = n[0] * n[1] + steps * 2 * inner
        u = sum(n[l - 1] * n[l] for l in range(1, self.n_layers + 1)) if training else 0
        return {"A": a, "U": u, "ops": a + u, "cycles": (a + u) / self.lanes}

    # --- serialisation ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, default in _OMIT_DEFAULTS.items():  # fields added later: old specs keep their digests
            if d[name] == default:
                del d[name]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EPCoreSpec:
        d = dict(d)
        d.pop("format", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown EP core spec fields {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
