"""Bit-exact integer twin of the EP core (:mod:`hdl.ep_core`): the specification of its behaviour.

Every number the RTL produces — neuron states after each phase, predictions, weights and biases
after each training step — is defined here, with the formats of :class:`spec.ep_core.EPCoreSpec`.
Integer sums are exact, so the order in which the hardware accumulates them cannot matter; only
the named narrowing steps (activation, update) round, as the spec says.

Inference is batched over samples; training is sequential (batch 1: weights change after every
sample, as on the chip). A core with a PRNG (:attr:`spec.ep_core.EPCoreSpec.uses_prng`: stochastic
rounding, random-sign estimator) is modelled by :class:`LaneStream`, whose state persists across
samples like the hardware's; only training samples draw from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from golden.prng import LaneStream
from spec.ep_core import (
    CTRL_DUMP,
    CTRL_RANDOM_SIGN,
    CTRL_SYMMETRIC,
    CTRL_TRAIN,
    PHASE_MINUS,
    PHASE_PLUS,
    PRNG_WIDTH,
    REG_BETA_SHIFT,
    REG_CTRL,
    REG_CYCLES,
    REG_LR_SHIFT,
    REG_SAMPLES,
    REG_SEED,
    REG_SPEC_ID,
    REG_STATUS,
    REG_T1,
    REG_T2,
    STATUS_BUSY,
    STATUS_REG_ERROR,
    TERNARY_REGS,
    EPCoreSpec,
)

from .activation import activation, nudge
from .lanes import dot
from .sequence import BETA_SIGN, phase_plan
from .update import apply_update, update_delta
from .weights import (  # noqa: F401 (image_cells, ternary_cells, ternary_values: re-exported)
    FixedWeights,
    image_cells,
    pack_memory,
    ternary_cells,
    ternary_values,
    unpack_memory,
    weight_store,
    weight_store_class,
)


@dataclass
class Registers:
    """Run-time registers of the core (reset values come from the spec)."""

    train: bool = False
    symmetric: bool = True
    dump: bool = False
    random_sign: bool = False  # REG_CTRL bit 3 (cores with a PRNG); ignored while symmetric is set
    T1: int = 30
    T2: int = 10
    beta_shift: int = 1
    lr_shift: int = 8
    seed: int = 1
    reg_error: bool = False  # REG_STATUS bit 1: a register write was refused (sticky)

    @classmethod
    def from_spec(cls, spec: EPCoreSpec, **overrides) -> Registers:
        r = cls(train=False, symmetric=spec.estimator == "symmetric", T1=spec.T1, T2=spec.T2,
                beta_shift=spec.beta_shift, lr_shift=spec.lr_shift, seed=spec.seed,
                random_sign=spec.estimator == "random-sign" and spec.uses_prng)
        for k, v in overrides.items():
            if not hasattr(r, k):
                raise ValueError(f"unknown register {k!r}")
            setattr(r, k, v)
        return r

    def check(self, spec: EPCoreSpec) -> None:
        for name in ("T1", "T2"):
            v = getattr(self, name)
            if not 0 < v < (1 << spec.step_bits):
                raise ValueError(f"{name} must be in 1..{(1 << spec.step_bits) - 1}, not {v}")
        if not 0 <= self.beta_shift <= spec.beta_shift_max:
            raise ValueError(f"beta_shift must be in 0..{spec.beta_shift_max}, not {self.beta_shift}")
        if not 0 <= self.lr_shift <= spec.lr_shift_max:
            raise ValueError(f"lr_shift must be in 0..{spec.lr_shift_max}, not {self.lr_shift}")
        if self.train and not spec.training:
            raise ValueError("train=True needs a spec with training=True")
        if self.random_sign and not spec.uses_prng:
            raise ValueError("random_sign=True needs a core with a PRNG (a training spec with estimator='random-sign' "
                             "or update_rounding='stochastic')")

    def write(self, spec: EPCoreSpec, addr: int, value: int) -> str | None:
        """What the core does with a register write of ``value`` to ``addr`` (while not busy).

        Takes it (and returns ``None``) or refuses it: then every register keeps its value, the sticky
        ``reg_error`` (``REG_STATUS`` bit 1) is set and the reason is returned
        (:meth:`spec.ep_core.EPCoreSpec.register_write_error`). A write of ``REG_STATUS`` clears
        ``reg_error``. SEED only records the value here (the stream restarts by ``EPCoreTwin.reseed``);
        a ternary core's memory registers are the memory twin's (``EPCoreTwin.write_memory_reg``).
        """
        err = spec.register_write_error(addr, value)
        if err is not None:
            self.reg_error = True
            return err
        if addr == REG_CTRL:
            self.train, self.symmetric = bool(value & CTRL_TRAIN), bool(value & CTRL_SYMMETRIC)
            self.dump, self.random_sign = bool(value & CTRL_DUMP), bool(value & CTRL_RANDOM_SIGN)
        elif addr in (REG_T1, REG_T2, REG_BETA_SHIFT, REG_LR_SHIFT, REG_SEED):
            name = {REG_T1: "T1", REG_T2: "T2", REG_BETA_SHIFT: "beta_shift", REG_LR_SHIFT: "lr_shift",
                    REG_SEED: "seed"}[addr]
            setattr(self, name, value)
        elif addr == REG_STATUS:
            self.reg_error = False
        return None

    def read(self, spec: EPCoreSpec, addr: int, *, busy: bool = False, cycles: int = 0, samples: int = 0,
             memory_reg=None) -> int:
        """The value the core's register port shows at ``addr`` (the read side of :meth:`write`).

        ``cycles``/``samples`` are ``REG_CYCLES``/``REG_SAMPLES``; ``memory_reg(mem_addr)`` answers a
        ternary core's memory registers (``EPCoreTwin.read_memory_reg`` reads the memory twin's);
        ``REG_SEED`` is the memory's on a ternary core without a PRNG of its own. Unmapped addresses read 0.
        """
        if isinstance(addr, bool) or not isinstance(addr, int) or not 0 <= addr < 16:
            raise ValueError(f"addr must be a register address in 0..15, not {addr!r}")
        if spec.weight_kind == "ternary" and addr in TERNARY_REGS and (addr != REG_SEED or not spec.uses_prng):
            if memory_reg is None:
                raise ValueError(f"register {addr} is the ternary memory's: memory_reg is needed")
            return memory_reg(TERNARY_REGS[addr])
        ctrl = self.ctrl_word() if spec.uses_prng else self.ctrl_word() & ~CTRL_RANDOM_SIGN
        return {REG_CTRL: ctrl, REG_T1: self.T1, REG_T2: self.T2, REG_BETA_SHIFT: self.beta_shift,
                REG_LR_SHIFT: self.lr_shift, REG_SEED: self.seed, REG_STATUS: self.status_word(busy),
                REG_CYCLES: cycles, REG_SAMPLES: samples, REG_SPEC_ID: spec.spec_id}.get(addr, 0)

    def status_word(self, busy: bool = False) -> int:
        """The value of ``REG_STATUS``."""
        return (STATUS_BUSY if busy else 0) | (STATUS_REG_ERROR if self.reg_error else 0)

    @property
    def estimator(self) -> str:
        """The estimator these registers select (as the core decodes REG_CTRL: symmetric wins)."""
        return "symmetric" if self.symmetric else "random-sign" if self.random_sign else "one-sided"

    def ctrl_word(self) -> int:
        """The REG_CTRL value of these registers."""
        return int(self.train) | (int(self.symmetric) << 1) | (int(self.dump) << 2) | (int(self.random_sign) << 3)


@dataclass
class SampleRecord:
    """What the core reports for one sample (and what its state dump shows)."""

    pred: int
    free: list[np.ndarray]
    plus: list[np.ndarray] | None = None
    minus: list[np.ndarray] | None = None
    phases: dict[int, list[np.ndarray]] = field(default_factory=dict)  # phase number → states, in run order


def pixels_to_input(spec: EPCoreSpec, x: np.ndarray) -> np.ndarray:
    """8-bit pixels to the core's ``input_bits`` (exact when input_bits == 8)."""
    shift = 8 - spec.input_bits
    return x >> shift if shift >= 0 else x << -shift


def init_weights(spec: EPCoreSpec, seed: int = 0, latent_scale: float = 0.1) -> dict[str, np.ndarray]:
    """Random initial weights for on-chip learning: PyTorch's default U(±1/√fan_in), quantised. A
    ternary training core's latent weights start U(±latent_scale) (golden.ternary's default
    init_scale) and its cells hold their ternary values."""
    rng = np.random.default_rng(seed)
    w: dict[str, np.ndarray] = {}
    init_layer = weight_store_class(spec).init_layer
    for l in range(spec.n_layers):
        bound = 1.0 / np.sqrt(spec.layers[l])
        w.update(init_layer(spec, l, rng, bound, latent_scale))
        lo, hi = spec.element_range(f"b{l}")
        bf = rng.uniform(-bound, bound, spec.layers[l + 1])
        w[f"b{l}"] = np.clip(np.rint(bf * 2.0 ** spec.bias_frac[l]), lo, hi).astype(np.int64)
    return w


def random_weights(spec: EPCoreSpec, rng: np.random.Generator, gain: float = 1.0) -> dict[str, np.ndarray]:
    """Random integer weights whose pre-activations sit around ρ's linear region (gain 1), or push
    far beyond it (gain ≫ 1); saturated to each array's range. For tests and benches."""
    w = {}
    for name, shape in spec.weight_shapes().items():
        lo, hi = spec.element_range(name)
        l = int(name[1:])
        if name.startswith("w"):
            scale = gain * 2.0 ** spec.weight_frac[l] * 2.0 / shape[1]
        else:
            scale = gain * 2.0 ** spec.bias_frac[l] * 0.2
        w[name] = np.clip(np.rint(rng.uniform(-scale, scale, shape)), lo, hi).astype(np.int64)
    return w


class EPCoreTwin:
    """Integer model of the EP core.

    Parameters
    ----------
    spec : EPCoreSpec
    weights : ``w{l}`` (N_{l+1}, N_l) and ``b{l}`` (N_{l+1},) integer arrays; zeros if omitted.

    What depends on the weight kind (what the weights are stored in, how a sweep reads them, how an
    update writes them, the load port's image) is the store :attr:`store`, picked once here
    (:mod:`golden.ep_core.weights`: fixed-point, ternary, ternary training); the methods below hold no
    weight-kind branches.
    """

    def __init__(self, spec: EPCoreSpec, weights: dict[str, np.ndarray] | None = None):
        self.spec = spec
        shapes = spec.weight_shapes()
        if weights is None:
            weights = {k: np.zeros(s, np.int64) for k, s in shapes.items()}
        self.weights: dict[str, np.ndarray] = {}
        for name, shape in shapes.items():
            if name not in weights:
                raise ValueError(f"weights lack {name!r} (need {sorted(shapes)})")
            a = np.asarray(weights[name])
            if a.shape != shape:
                raise ValueError(f"weights[{name!r}] has shape {a.shape}, the spec needs {shape}")
            lo, hi = spec.element_range(name)
            if a.size and (a.min() < lo or a.max() > hi):
                raise ValueError(f"weights[{name!r}] has values outside [{lo}, {hi}]")
            self.weights[name] = a.astype(np.int64).copy()
        # every pre-activation is bounded by 2^acc_bits; float64 sums of such integers are exact
        if spec.acc_bits_max > 52:
            raise ValueError(f"accumulators of {spec.acc_bits_max} bits exceed float64's exact integer range")
        L = spec.n_layers
        self._bu = [None] + [spec.bottom_up_shift(k) for k in range(1, L + 1)]
        self._td = [None] + [spec.top_down_shift(k) if k < L else None for k in range(1, L + 1)]
        self._bs = [None] + [spec.bias_shift(k) for k in range(1, L + 1)]
        self._act = [None] + [spec.activation_shift(k) for k in range(1, L + 1)]
        # the PRNG of a core that has one (state after reset); it persists across samples
        self.prng = LaneStream(spec.prng_spec()) if spec.uses_prng else None
        # the weight store of the spec's kind (a ternary core's: its memory of cells, PCSA, faults, PRNG)
        self.store: FixedWeights = weight_store(spec, self.weights)
        self._refresh()

    @property
    def memory(self):
        """A ternary core's :class:`golden.ternary.memory.TernaryMemoryTwin` (the truth for ``w{l}``), else None."""
        return self.store.memory

    def reseed(self, seed: int) -> None:
        """What a write of REG_SEED does: restart the PRNG from ``seed`` (no effect without a PRNG)."""
        if not 0 <= seed < 1 << 32:
            raise ValueError(f"seed must be in 0..2^32-1, not {seed}")
        if self.prng is not None:
            self.prng.reseed(seed)
        self.store.reseed(seed)

    # --- a ternary core's memory registers (spec.ep_core.TERNARY_REGS) --------------------------------
    def write_memory_reg(self, addr: int, value: int) -> None:
        """A write of core register ``addr`` that reaches the ternary memory (between samples)."""
        self.store.write_reg(addr, value)

    def read_memory_reg(self, addr: int) -> int:
        return self.store.read_reg(addr)

    def program(self, addr: int, words: list[int]) -> None:
        """Load-port writes of ``words`` at consecutive addresses from ``addr``, as the core does them:
        a ternary core's ``w`` words go through its memory's program port (one draw each; static
        faults), every other word is stored as is."""
        self.weights = self.store.program(self.weights, addr, words)
        self._refresh()

    def _refresh(self) -> None:
        """float64 mirrors of the weights for the (exact) matrix products."""
        self.weights.update(self.store.stored())  # a ternary core: the cells' nominal values (illegal as 0)
        self._wf = {k: v.astype(np.float64) for k, v in self.weights.items() if k.startswith("w")}
        L = self.spec.n_layers
        self._bias_aligned = [None] + [self.weights[f"b{k - 1}"] << self._bs[k] for k in range(1, L + 1)]

    # --- dynamics ----------------------------------------------------------------------------------
    def check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.spec.layers[0]:
            raise ValueError(f"x must have shape (batch, {self.spec.layers[0]}), not {x.shape}")
        if x.min(initial=0) < 0 or x.max(initial=0) >= 1 << self.spec.input_bits:
            raise ValueError(f"x must hold unsigned {self.spec.input_bits}-bit values")
        return x.astype(np.int64)

    def clamp(self, x: np.ndarray, w0: np.ndarray | None = None) -> np.ndarray:
        """Layer 1's constant bottom-up term, aligned: (W0 x) << shift + b0 << shift (per sample);
        ``w0`` the matrix as a sweep read it (default the stored one)."""
        w0 = self._wf["w0"] if w0 is None else w0
        return (dot(x, w0.T) << self._bu[1]) + self._bias_aligned[1]

    def step(self, c1: np.ndarray, states: list[np.ndarray], beta_sign: int, target: np.ndarray | None,
             regs: Registers, mats: dict | None = None) -> list[np.ndarray]:
        """One synchronous step from ``states`` (list over layers 1..L of (batch, N_k) arrays).

        ``mats`` (ternary cores) gives the weights this step's sweeps read: ``("bu", k)`` → the
        matrix of the bottom-up sweep into layer k, ``("td", k)`` → the top-down one; default the
        stored weights.
        """
        s = self.spec
        L = s.n_layers
        mats = mats or {}
        new = []
        for k in range(1, L + 1):
            if k == 1:
                pre = c1.copy()
            else:
                w = mats.get(("bu", k), self._wf[f"w{k - 1}"])
                pre = (dot(states[k - 2], w.T) << self._bu[k]) + self._bias_aligned[k]
            if k < L:
                pre += dot(states[k], mats.get(("td", k), self._wf[f"w{k}"])) << self._td[k]
            if k == L and beta_sign != 0:
                pre += nudge(target, states[L - 1], s.nudge_shift(regs.beta_shift), beta_sign)
            new.append(activation(pre, self._act[k], s.activation_rounding, s.state_bits))
        return new

    def relax(self, c1: np.ndarray, states: list[np.ndarray], steps: int, beta_sign: int,
              target: np.ndarray | None, regs: Registers, sensed: bool = False) -> list[np.ndarray]:
        """``steps`` synchronous steps. ``sensed`` (one sample): every step reads its weights from the
        store as the core does (``store.read_step``; the stored weights where every read returns them)."""
        for _ in range(steps):
            states = self.step(c1, states, beta_sign, target, regs, self.store.read_step() if sensed else None)
        return states

    def _sensed_c1(self, x: np.ndarray) -> np.ndarray:
        """One sample's c1 from the W0 sweep's reads (``store.read_c1``)."""
        return self.clamp(x, self.store.read_c1())

    def zero_states(self, batch: int) -> list[np.ndarray]:
        return [np.zeros((batch, n), np.int64) for n in self.spec.layers[1:]]

    def target(self, labels: np.ndarray) -> np.ndarray:
        """One-hot labels at 1.0 = 2^state_bits."""
        t = np.zeros((len(labels), self.spec.n_classes), np.int64)
        t[np.arange(len(labels)), labels] = 1 << self.spec.state_bits
        return t

    @staticmethod
    def argmax(out: np.ndarray) -> np.ndarray:
        """Prediction: the first index of the largest output state (ties go to the lowest index)."""
        return np.argmax(out, axis=1)

    # --- the two modes ------------------------------------------------------------------------------
    def infer(self, x: np.ndarray, regs: Registers | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Free phase of T1 steps from zero states; returns predictions and the free states."""
        regs = Registers.from_spec(self.spec) if regs is None else regs
        regs.check(self.spec)
        x = self.check_input(x)
        if not self.store.batch_reads(len(x), regs.T1):  # reads differ: each sample reads on its own
            return self._infer_per_read(x, regs)
        free = self.relax(self.clamp(x), self.zero_states(len(x)), regs.T1, 0, None, regs)
        return self.argmax(free[-1]), free

    def predict(self, x: np.ndarray, regs: Registers | None = None, progress=None) -> np.ndarray:
        """Predictions for many samples: :meth:`infer` over chunks (1,000 samples; 50 where every read
        is sensed on its own, which holds per-read matrices in memory). ``progress`` optionally wraps
        the iterable of chunk starts (a progress bar)."""
        x = np.asarray(x)
        chunk = self.store.chunk
        starts = range(0, len(x), chunk)
        if progress is not None:
            starts = progress(starts)
        return np.concatenate([self.infer(x[i:i + chunk], regs)[0] for i in starts])

    def _infer_per_read(self, x: np.ndarray, regs: Registers) -> tuple[np.ndarray, list[np.ndarray]]:
        """Inference where reads differ (a ternary core's dynamic faults, nominal PCSA, illegal cells):
        every sweep of every step uses the weights its own reads sensed, in the core's read order."""
        preds, free_all = [], [[] for _ in range(self.spec.n_layers)]
        for b in range(len(x)):
            states = self.relax(self._sensed_c1(x[b:b + 1]), self.zero_states(1), regs.T1, 0, None, regs, sensed=True)
            preds.append(int(self.argmax(states[-1])[0]))
            for k, st in enumerate(states):
                free_all[k].append(st[0])
        return np.array(preds, np.int64), [np.array(f, np.int64).reshape(len(x), -1) for f in free_all]

    def train_sample(self, x: np.ndarray, label: int, regs: Registers) -> SampleRecord:
        """Free phase, nudged phase(s), and the weight/bias update of one sample (batch 1)."""
        s = self.spec
        regs.check(s)
        if not regs.train:
            raise ValueError("train_sample needs regs.train=True")
        x = self.check_input(np.asarray(x).reshape(1, -1))
        if not 0 <= int(label) < s.n_classes:
            raise ValueError(f"label must be in 0..{s.n_classes - 1}, not {label}")
        c1 = self._sensed_c1(x)  # every sweep reads the store (a ternary core's memory: draws, faults)
        target = self.target(np.array([int(label)]))
        free = self.relax(c1, self.zero_states(1), regs.T1, 0, None, regs, sensed=True)
        rec = SampleRecord(int(self.argmax(free[-1])[0]), free)
        rec.phases = {0: free}
        # random-sign: one draw when the free phase ends; bit 31 of lane P − 1 set → −β (spec.ep_core)
        negative = (regs.estimator == "random-sign"
                    and bool(int(self.prng.take(1)[0, s.sign_lane]) >> (PRNG_WIDTH - 1)))
        # the phases and the update's (a, b) pair: golden.ep_core.sequence.phase_plan (the RTL sequencer's plan)
        phases, (pa, pb) = phase_plan(True, regs.symmetric, negative)
        for ph in phases[1:]:  # the nudged phases all start from the free state
            rec.phases[ph] = self.relax(c1, free, regs.T2, BETA_SIGN[ph], target, regs, sensed=True)
        rec.plus, rec.minus = rec.phases.get(PHASE_PLUS), rec.phases.get(PHASE_MINUS)
        self.update(x, rec.phases[pa], rec.phases[pb], regs)
        return rec

    def update(self, x: np.ndarray, a: list[np.ndarray], b: list[np.ndarray], regs: Registers) -> None:
        """w += shift_round(post_b ⊗ pre_b − post_a ⊗ pre_a, k_w), saturated; biases alike."""
        s = self.spec
        la, lb = [x] + a, [x] + b
        rnd = self._update_random_bits() if s.update_rounding == "stochastic" else {}
        for l in range(s.n_layers):
            k = s.update_shift(l, regs.lr_shift, regs.beta_shift, regs.symmetric)
            if l == 0:
                prod = np.outer(lb[1][0] - la[1][0], x[0])
            else:
                prod = np.outer(lb[l + 1][0], lb[l][0]) - np.outer(la[l + 1][0], la[l][0])
            self.store.update_weights(self.weights, l, prod, k, rnd.get(f"w{l}"))
            kb = s.bias_update_shift(l, regs.lr_shift, regs.beta_shift, regs.symmetric)
            # a bias's presynaptic state is 1.0 = 2^state_bits
            dbias = update_delta(lb[l + 1][0] - la[l + 1][0], kb, s.update_rounding, rnd.get(f"b{l}"), s.state_bits)
            self.weights[f"b{l}"] = apply_update(self.weights[f"b{l}"], dbias, *s.element_range(f"b{l}"))
        self._refresh()

    def _update_random_bits(self) -> dict[str, np.ndarray]:
        """The random words of one stochastic update, per array, in the core's draw order
        (:meth:`EPCoreSpec.update_draws`): one draw per word of P elements, lane i → element t·P + i."""
        s = self.spec
        shapes = s.weight_shapes()
        out = {}
        for name, n in s.update_draws():
            words = self.prng.take(n).astype(np.int64)  # (n, P), PRNG_WIDTH-bit words
            shape = shapes[name]
            if name.startswith("w"):
                out[name] = words.reshape(shape[0], -1)[:, :shape[1]]
            else:
                out[name] = words.reshape(-1)[:shape[0]]
        return out

    # --- memory image ---------------------------------------------------------------------------------
    def memory_words(self) -> list[int]:
        """The weight/bias memory as the load port sees it (P elements per word, lane 0 lowest; a
        ternary core's ``w`` words hold the stored cells, as its read-back returns them)."""
        return self.store.words(self.weights)

    def load_memory_words(self, words: list[int]) -> None:
        """Replace the memory contents (a build's init image: no draws, no faults)."""
        self.weights = self.store.load(words)
        self._refresh()
