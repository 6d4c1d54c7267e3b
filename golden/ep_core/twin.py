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

import functools
from dataclasses import dataclass, field

import numpy as np

from golden.prng import LaneStream
from golden.ternary.memory import TernaryMemoryTwin, encode_array
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
from .update import apply_update, reprogram_cells, update_delta


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
    for l in range(spec.n_layers):
        fan_in = spec.layers[l]
        bound = 1.0 / np.sqrt(fan_in)
        if spec.ternary_training:
            lo, hi = spec.element_range(f"v{l}")
            vf = rng.uniform(-latent_scale, latent_scale, (spec.layers[l + 1], fan_in))
            w[f"v{l}"] = np.clip(np.rint(vf * 2.0 ** spec.latent_frac[l]), lo, hi).astype(np.int64)
            w[f"w{l}"] = spec.ternarize_latent(l, w[f"v{l}"]).astype(np.int64)
        else:
            lo, hi = spec.element_range(f"w{l}")
            wf = rng.uniform(-bound, bound, (spec.layers[l + 1], fan_in))
            w[f"w{l}"] = np.clip(np.rint(wf * 2.0 ** spec.weight_frac[l]), lo, hi).astype(np.int64)
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
        # a ternary core's weight memory (cells, PCSA, faults, its PRNG): the truth for w{l}
        self.memory = None
        if spec.weight_kind == "ternary":
            self.memory = TernaryMemoryTwin(spec.ternary_memory_spec(), ternary_cells(spec, self.weights))
        self._refresh()

    def reseed(self, seed: int) -> None:
        """What a write of REG_SEED does: restart the PRNG from ``seed`` (no effect without a PRNG)."""
        if not 0 <= seed < 1 << 32:
            raise ValueError(f"seed must be in 0..2^32-1, not {seed}")
        if self.prng is not None:
            self.prng.reseed(seed)
        if self.memory is not None:
            self.memory.write_reg(TERNARY_REGS[REG_SEED], seed)

    # --- a ternary core's memory registers (spec.ep_core.TERNARY_REGS) --------------------------------
    def write_memory_reg(self, addr: int, value: int) -> None:
        """A write of core register ``addr`` that reaches the ternary memory (between samples)."""
        if self.memory is None or addr not in TERNARY_REGS:
            raise ValueError(f"register {addr} is not a ternary-memory register of this core")
        self.memory.write_reg(TERNARY_REGS[addr], value)

    def read_memory_reg(self, addr: int) -> int:
        if self.memory is None or addr not in TERNARY_REGS:
            raise ValueError(f"register {addr} is not a ternary-memory register of this core")
        return self.memory.read_reg(TERNARY_REGS[addr])

    def program(self, addr: int, words: list[int]) -> None:
        """Load-port writes of ``words`` at consecutive addresses from ``addr``, as the core does them:
        a ternary core's ``w`` words go through its memory's program port (one draw each; static
        faults), every other word is stored as is."""
        s = self.spec
        if self.memory is None:
            image = self.memory_words()
            image[addr:addr + len(words)] = list(words)
            self.load_memory_words(image)
            return
        P, eb = s.lanes, s.word_elem_bits
        depth = self.memory.spec.depth
        image = pack_memory(s, self.weights)
        for a, w in enumerate(words, start=addr):
            if a < depth:
                cells = np.array([(int(w) >> (i * eb)) & 3 for i in range(P)], np.uint8)
                self.memory.program(a, cells)
            else:
                image[a] = int(w)
        for name, v in unpack_memory(s, image).items():
            if not name.startswith("w"):  # biases (and a training core's latent weights) as written
                self.weights[name] = v
        self._refresh()

    def _refresh(self) -> None:
        """float64 mirrors of the weights for the (exact) matrix products."""
        if self.memory is not None:  # the stored cells' nominal values (illegal cells as 0)
            self.weights.update(ternary_values(self.spec, self.memory.values()))
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

    def clamp(self, x: np.ndarray) -> np.ndarray:
        """Layer 1's constant bottom-up term, aligned: (W0 x) << shift + b0 << shift (per sample)."""
        return (dot(x, self._wf["w0"].T) << self._bu[1]) + self._bias_aligned[1]

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
        """``steps`` synchronous steps. ``sensed`` (a ternary core, one sample): every step reads its
        weights from the memory as the core does (:meth:`_step_mats`)."""
        for _ in range(steps):
            states = self.step(c1, states, beta_sign, target, regs, self._step_mats() if sensed else None)
        return states

    @functools.cached_property
    def _schedule(self) -> tuple[np.ndarray, list[tuple[str, int, int, np.ndarray]]]:
        """:meth:`EPCoreSpec.weight_read_schedule` as arrays (computed once, on first use)."""
        c1, step = self.spec.weight_read_schedule()
        return np.asarray(c1, np.int64), [(d, k, l, np.asarray(a, np.int64)) for d, k, l, a in step]

    def _sensed_c1(self, x: np.ndarray) -> np.ndarray:
        """A ternary core's c1 of one sample: the W0 sweep's reads (deterministic reads only counted)."""
        addrs = self._schedule[0]
        if self.memory.deterministic:
            self.memory.skip_reads(len(addrs))
            return self.clamp(x)
        w0 = self._sensed_matrix(0, self.memory.read(addrs), False)
        return (dot(x, w0.T) << self._bu[1]) + self._bias_aligned[1]

    def _step_mats(self) -> dict | None:
        """The weights one relaxation step of one sample reads from a ternary core's memory, sweep by
        sweep in the core's order (None: the reads return the stored values, only counted)."""
        step = self._schedule[1]
        if self.memory.deterministic:
            self.memory.skip_reads(sum(len(a) for *_, a in step))
            return None
        mats = {}
        for direction, k, l, a in step:
            mats[(direction, k)] = self._sensed_matrix(l, self.memory.read(a), direction == "td")
        return mats

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
        if self.memory is not None and not self._ternary_fast(len(x), regs):
            return self._infer_per_read(x, regs)
        free = self.relax(self.clamp(x), self.zero_states(len(x)), regs.T1, 0, None, regs)
        return self.argmax(free[-1]), free

    def predict(self, x: np.ndarray, regs: Registers | None = None, progress=None) -> np.ndarray:
        """Predictions for many samples: :meth:`infer` over chunks (1,000 samples; 50 where every read
        is sensed on its own, which holds per-read matrices in memory). ``progress`` optionally wraps
        the iterable of chunk starts (a progress bar)."""
        x = np.asarray(x)
        chunk = 1000 if self.memory is None or self.memory.deterministic else 50
        starts = range(0, len(x), chunk)
        if progress is not None:
            starts = progress(starts)
        return np.concatenate([self.infer(x[i:i + chunk], regs)[0] for i in starts])

    def _ternary_fast(self, batch: int, regs: Registers) -> bool:
        """When every read returns the stored values, account for the reads and use the fast path."""
        mem = self.memory
        if not mem.deterministic:
            return False
        c1, step = self._schedule
        mem.skip_reads(batch * (len(c1) + regs.T1 * sum(len(a) for *_, a in step)))
        return True

    def _sensed_matrix(self, l: int, vals: np.ndarray, by_columns: bool) -> np.ndarray:
        """The matrix w{l} as one sweep read it (``vals``: the sensed words in read order)."""
        s = self.spec
        T, n_out, n_in = s.tiles(l), s.layers[l + 1], s.layers[l]
        if by_columns:
            vals = vals.reshape(T, n_out, s.lanes).transpose(1, 0, 2)
        return vals.reshape(n_out, T * s.lanes)[:, :n_in].astype(np.float64)

    def _infer_per_read(self, x: np.ndarray, regs: Registers) -> tuple[np.ndarray, list[np.ndarray]]:
        """Ternary inference where reads differ (dynamic faults, nominal PCSA, illegal cells): every
        sweep of every step uses the weights its own reads sensed, in the core's read order."""
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
        sensed = self.memory is not None  # a ternary core: every step reads its memory (draws, faults)
        c1 = self._sensed_c1(x) if sensed else self.clamp(x)
        target = self.target(np.array([int(label)]))
        free = self.relax(c1, self.zero_states(1), regs.T1, 0, None, regs, sensed)
        rec = SampleRecord(int(self.argmax(free[-1])[0]), free)
        rec.phases = {0: free}
        # random-sign: one draw when the free phase ends; bit 31 of lane P − 1 set → −β (spec.ep_core)
        negative = (regs.estimator == "random-sign"
                    and bool(int(self.prng.take(1)[0, s.sign_lane]) >> (PRNG_WIDTH - 1)))
        # the phases and the update's (a, b) pair: golden.ep_core.sequence.phase_plan (the RTL sequencer's plan)
        phases, (pa, pb) = phase_plan(True, regs.symmetric, negative)
        for ph in phases[1:]:  # the nudged phases all start from the free state
            rec.phases[ph] = self.relax(c1, free, regs.T2, BETA_SIGN[ph], target, regs, sensed)
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
            if s.ternary_training:
                self._update_latent(l, update_delta(prod, k, s.update_rounding))
            else:
                self.weights[f"w{l}"] = apply_update(self.weights[f"w{l}"],
                                                     update_delta(prod, k, s.update_rounding, rnd.get(f"w{l}")),
                                                     *s.element_range(f"w{l}"))
            kb = s.bias_update_shift(l, regs.lr_shift, regs.beta_shift, regs.symmetric)
            # a bias's presynaptic state is 1.0 = 2^state_bits
            dbias = update_delta(lb[l + 1][0] - la[l + 1][0], kb, s.update_rounding, rnd.get(f"b{l}"), s.state_bits)
            self.weights[f"b{l}"] = apply_update(self.weights[f"b{l}"], dbias, *s.element_range(f"b{l}"))
        self._refresh()

    def _update_latent(self, l: int, delta: np.ndarray) -> None:
        """A ternary training core's update of connection l: the latent weights move by ``delta``
        (saturated); every word of w{l} is then written through the memory's update port, in the
        core's order (row j, tile t), with the cells whose ternary value changed reprogrammed (the
        injector's targets in static mode) and the others written back as stored."""
        s, P = self.spec, self.spec.lanes
        v = self.weights[f"v{l}"]
        vn = apply_update(v, delta, *s.element_range(f"v{l}"))
        self.weights[f"v{l}"] = vn
        r = next(r for r in s.memory_map() if r.name == f"w{l}")
        n_in = s.layers[l]
        cells = self.memory.cells[r.base:r.base + r.words].reshape(r.rows, r.tiles * P).copy()
        mask = np.zeros(cells.shape, bool)
        cells[:, :n_in], mask[:, :n_in] = reprogram_cells(lambda x: s.ternarize_latent(l, x), v, vn, cells[:, :n_in])
        self.memory.update(np.arange(r.base, r.base + r.words), cells.reshape(-1, P), mask.reshape(-1, P))

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
        words = pack_memory(self.spec, self.weights)
        if self.memory is not None:
            eb = self.spec.word_elem_bits
            for a, row in enumerate(self.memory.cells.tolist()):
                words[a] = sum(int(c) << (i * eb) for i, c in enumerate(row))
        return words

    def load_memory_words(self, words: list[int]) -> None:
        """Replace the memory contents (a build's init image: no draws, no faults)."""
        self.weights = unpack_memory(self.spec, words)
        if self.memory is not None:
            self.memory.cells[:] = image_cells(self.spec, words)
        self._refresh()


def ternary_cells(spec: EPCoreSpec, weights: dict[str, np.ndarray]) -> np.ndarray:
    """A ternary core's memory cells (depth, P) for weights ``w{l}`` in {−1, 0, +1}; padding cells 0."""
    P = spec.lanes
    out = []
    for r in spec.memory_map():
        if r.name.startswith("w"):
            padded = np.zeros((r.rows, r.tiles * P), np.int64)
            padded[:, :weights[r.name].shape[1]] = weights[r.name]
            out.append(encode_array(padded).reshape(r.rows * r.tiles, P))
    return np.concatenate(out)


def ternary_values(spec: EPCoreSpec, values: np.ndarray) -> dict[str, np.ndarray]:
    """Inverse of :func:`ternary_cells` on sensed values (depth, P): the matrices ``w{l}``."""
    out = {}
    for r in spec.memory_map():
        if r.name.startswith("w"):
            v = values[r.base:r.base + r.words].reshape(r.rows, r.tiles * spec.lanes)
            out[r.name] = v[:, :spec.layers[int(r.name[1:])]].astype(np.int64)
    return out


def image_cells(spec: EPCoreSpec, words: list[int]) -> np.ndarray:
    """The raw cells (low 2 bits of each element) of a ternary core's ``w`` words in a load-port image."""
    depth, P, eb = spec.ternary_memory_spec().depth, spec.lanes, spec.word_elem_bits
    return np.array([[(int(w) >> (i * eb)) & 3 for i in range(P)] for w in words[:depth]], np.uint8).reshape(depth, P)


def pack_memory(spec: EPCoreSpec, weights: dict[str, np.ndarray]) -> list[int]:
    """Pack weights/biases into the core's word image (``spec.memory_map()``), zero-padded.

    A ternary core's ``w`` elements are cells (:mod:`spec.ternary`: +1 → 01, −1 → 10, 0 → 00)."""
    P, eb = spec.lanes, spec.word_elem_bits
    mask = (1 << eb) - 1
    words = [0] * spec.memory_words
    ternary = spec.weight_kind == "ternary"
    for r in spec.memory_map():
        a = weights[r.name]
        if ternary and r.name.startswith("w"):
            a = encode_array(a).astype(np.int64)
        a = a.reshape(r.rows, -1) if a.ndim == 2 else a.reshape(1, -1)
        n = a.shape[1]
        padded = np.zeros((r.rows, r.tiles * P), np.int64)
        padded[:, :n] = a
        for row in range(r.rows):
            for t in range(r.tiles):
                w = 0
                for i, v in enumerate(padded[row, t * P:(t + 1) * P].tolist()):
                    w |= (v & mask) << (i * eb)
                words[r.base + row * r.tiles + t] = w
    return words


def unpack_memory(spec: EPCoreSpec, words: list[int]) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_memory` (each element sign-extended from its region's width; a ternary
    core's cells decoded, an illegal (LRS, LRS) cell as 0)."""
    P, eb = spec.lanes, spec.word_elem_bits
    if len(words) != spec.memory_words:
        raise ValueError(f"the image has {len(words)} words, the spec's memory has {spec.memory_words}")
    out: dict[str, np.ndarray] = {}
    shapes = spec.weight_shapes()
    for r in spec.memory_map():
        vals = np.zeros((r.rows, r.tiles * P), np.int64)
        for row in range(r.rows):
            for t in range(r.tiles):
                w = words[r.base + row * r.tiles + t]
                for i in range(P):
                    v = (w >> (i * eb)) & ((1 << r.elem_bits) - 1)
                    if v >> (r.elem_bits - 1):
                        v -= 1 << r.elem_bits
                    vals[row, t * P + i] = v
        shape = shapes[r.name]
        if spec.weight_kind == "ternary" and r.name.startswith("w"):
            vals = np.select([vals == 1, vals == -2], [1, -1], 0)  # cells 01 → +1, 10 → −1 (sign-extended −2)
        out[r.name] = vals[:, :shape[-1]].reshape(shape)
    return out
