"""Bit-exact integer twin of the EqSpike core (:mod:`spec.eqspike` defines every operation; numpy, no torch).

This is the ``==`` contract with the RTL: states, residues, traces, spikes, weights and event counts
are integers computed exactly as the spec's module docstring says.

Two paths share the encoders, neuron narrowing, traces and the PRNG stream layout:

* the **event path** (:meth:`EqSpikeTwin.infer`, :meth:`EqSpikeTwin.train_sample`): one sample,
  each layer's accumulator is the sum of the weight rows of the neurons that spiked (what the
  event-driven RTL does: one row per spike event), with per-phase dumps, counters and the AER
  event list; on-chip learning runs here (batch 1);
* the **batched path** (:meth:`EqSpikeTwin.predict`): inference over many samples at once, the
  accumulators as exact integer matrix products (:func:`golden.fixed.exact_matmul`); it is ``==``
  to the event path (``tests/test_eqspike_twin.py``), sample for sample, PRNG draws included
  (sample b of a batch takes the b-th block of :meth:`spec.eqspike.EqSpikeSpec.draws_per_sample`
  draws, exactly as successive samples of the event path do).

Weights are held transposed (``wt[l]`` = w{l}ᵀ, one row per presynaptic neuron: the row a spike
event reads); :attr:`EqSpikeTwin.weights` returns them in the image's (post, pre) layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from golden.fixed import exact_matmul, shift_round
from spec.eqspike import EqSpikeSpec

PHASE_NAMES = ("free", "nudged+", "nudged-")


@dataclass
class PhaseRecord:
    """One phase of one sample: end-of-phase dumps, event counters and (optionally) the AER event list."""

    name: str
    steps: int
    s: list[np.ndarray]  # states of layers 1..L at the phase's end
    phi: list[np.ndarray]  # residues of layers 0..L
    traces: list[list[np.ndarray]] | None  # layers 1..L, one array per stage (training samples only)
    spikes: list[int]  # per layer 0..L
    synaptic_events: int  # Σ_layers spikes × fan-out: weight rows read (one word per target)
    neuron_updates: int
    update_events: int = 0  # Σ spikes × targets whose Δŝ ≠ 0 (nudged phases of a training sample)
    weight_writes: int = 0  # weights and biases whose value changed
    events: np.ndarray | None = None  # AER: (n, 3) int32 rows (step within the phase, layer, neuron)

    def counts(self) -> dict:
        return {"steps": self.steps, "spikes": list(self.spikes), "synaptic_events": self.synaptic_events,
                "neuron_updates": self.neuron_updates, "update_events": self.update_events,
                "weight_writes": self.weight_writes}


@dataclass
class SampleRecord:
    pred: int
    phases: list[PhaseRecord] = field(default_factory=list)

    def counts(self) -> dict[str, dict]:
        return {p.name: p.counts() for p in self.phases}


@dataclass
class _State:
    s: list[np.ndarray]  # (B, n_k), k = 1..L
    phi: list[np.ndarray]  # (B, n_l), l = 0..L
    tr: list[list[np.ndarray]] | None  # per layer 1..L, per stage

    def copy(self) -> _State:
        return _State([a.copy() for a in self.s], [a.copy() for a in self.phi],
                      None if self.tr is None else [[a.copy() for a in st] for st in self.tr])


class _Draws:
    """A sample block's PRNG words, (B, draws, P), consumed one layer (tiles(k) draws) at a time."""

    def __init__(self, spec: EqSpikeSpec, words: np.ndarray):
        self.spec, self.words, self.pos = spec, words, 0

    def layer(self, k: int) -> np.ndarray:
        """(B, n_k) words: neuron t·P + i of layer k takes lane i of the layer's draw t."""
        t = self.spec.tiles(k)
        w = self.words[:, self.pos:self.pos + t, :]
        self.pos += t
        return w.reshape(w.shape[0], -1)[:, :self.spec.layers[k]].astype(np.int64)


class EqSpikeTwin:
    """The EqSpike core in integers. ``weights``: ``w{l}`` (n_{l+1}, n_l) and ``b{l}`` integer arrays."""

    def __init__(self, spec: EqSpikeSpec, weights: dict[str, np.ndarray]):
        self.spec = spec
        shapes = spec.weight_shapes()
        if set(weights) != set(shapes):
            raise ValueError(f"weights must be exactly {sorted(shapes)}, not {sorted(weights)}")
        for name, shape in shapes.items():
            a = np.asarray(weights[name])
            if a.shape != shape:
                raise ValueError(f"{name} has shape {a.shape}, the spec needs {shape}")
            if not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"{name} must hold integers, not {a.dtype}")
            lo, hi = spec.element_range(name)
            if a.size and (a.min() < lo or a.max() > hi):
                raise ValueError(f"{name} has values in [{a.min()}, {a.max()}], outside its range [{lo}, {hi}]")
        L = spec.n_layers
        self.wt = [np.ascontiguousarray(np.asarray(weights[f"w{l}"], np.int64).T) for l in range(L)]
        self.b = [np.asarray(weights[f"b{l}"], np.int64).copy() for l in range(L)]
        self.memory = None  # the 2T2R weight memory of a ternary spec (golden.eqspike.ternary)
        self.v = None  # a ternary training spec's latent weights, transposed like wt
        if spec.weight_kind == "ternary":
            from .ternary import attach_memory

            attach_memory(self, weights)
        # per-layer constants of the spec (computed once: the step loop is hot)
        self._c = {k: dict(bu=spec.bottom_up_shift(k), td=spec.top_down_shift(k) if k < L else 0,
                           bs=spec.bias_shift(k), ls=spec.leak_shift(k), ss=spec.state_shift(k),
                           bound=spec.acc_bound(k)) for k in range(1, L + 1)}
        self._nudge_shift = spec.nudge_shift
        self._m = [spec.full_scale(l) for l in range(L + 1)]
        self._eb = [spec.encoder_bits(l) for l in range(L + 1)]
        self.set_lr_shift(spec.lr_shift)
        if spec.update_apply == "sample":  # pending sums of the weights (transposed like wt) and biases
            self._pw = [np.zeros_like(w) for w in self.wt]
            self._pb = [np.zeros_like(b) for b in self.b]
        self.prng = None
        if spec.uses_prng:
            from golden.prng import LaneStream

            self.prng = LaneStream(spec.prng_spec())
        self.samples = 0

    # --- weights ------------------------------------------------------------------------------------
    @property
    def weights(self) -> dict[str, np.ndarray]:
        out = {f"w{l}": np.ascontiguousarray(w.T).copy() for l, w in enumerate(self.wt)}
        out.update({f"b{l}": b.copy() for l, b in enumerate(self.b)})
        if self.v is not None:
            out.update({f"v{l}": np.ascontiguousarray(v.T).copy() for l, v in enumerate(self.v)})
        return out

    def set_lr_shift(self, lr_shift) -> None:
        """Write the η registers (η = 2^-lr_shift per connection; one value applies to all), as the host may
        between samples (an η schedule); reset value: the spec's ``lr_shift``. Bad values are refused
        (:meth:`spec.eqspike.EqSpikeSpec.check_lr_shift`)."""
        sp = self.spec
        self.lr_shift = sp.check_lr_shift(lr_shift)
        self._ushift = [sp.update_shift(l, v) for l, v in enumerate(self.lr_shift)]
        self._bshift = [sp.bias_update_shift(l, v) for l, v in enumerate(self.lr_shift)]

    def digest(self) -> int:
        """The 32-bit weight digest the core's ``REG_DIGEST`` holds after a digest sweep
        (:func:`spec.eqspike.weight_digest` of :attr:`weights`)."""
        from spec.eqspike import weight_digest

        return weight_digest(self.spec, self.weights)

    def reseed(self, seed: int) -> None:
        if self.prng is not None:
            self.prng.reseed(seed)

    # --- inputs -------------------------------------------------------------------------------------------
    def check_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[-1] != self.spec.layers[0]:
            raise ValueError(f"input has {x.shape[-1]} values per sample, the spec's input layer has "
                             f"{self.spec.layers[0]}")
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"input must be integer pixel codes, not {x.dtype}")
        if x.size and (x.min() < 0 or x.max() > self.spec.input_scale):
            raise ValueError(f"input codes must lie in [0, {self.spec.input_scale}], not [{x.min()}, {x.max()}]")
        return x.astype(np.int64)

    def _draws(self, B: int, train: bool) -> _Draws | None:
        if self.prng is None:
            return None
        n = self.spec.draws_per_sample(train)
        return _Draws(self.spec, self.prng.take(B * n).reshape(B, n, self.spec.lanes))

    # --- one sample / batch -------------------------------------------------------------------------------
    def _init_state(self, B: int, draws: _Draws | None, train: bool) -> _State:
        sp = self.spec
        s = [np.zeros((B, n), np.int64) for n in sp.layers[1:]]
        if sp.encoder_phase == "random":
            phi = []
            for l in range(sp.n_layers + 1):
                b, m = sp.encoder_bits(l), sp.full_scale(l)
                r = draws.layer(l) & ((1 << b) - 1)
                phi.append(((r * m) >> b) - (m // 2))
        else:
            phi = [np.zeros((B, n), np.int64) for n in sp.layers]
        tr = [[np.zeros((B, n), np.int64) for _ in range(sp.trace_stages)] for n in sp.layers[1:]] if train else None
        return _State(s, phi, tr)

    def _step(self, x: np.ndarray, st: _State, draws: _Draws | None, nudge: int, onehot: np.ndarray | None,
              dense: bool, update: bool, in_spikes: np.ndarray | None = None):
        """One synchronous step in place. Returns (spikes per layer (B, n) bool, Δŝ per layer 1..L or None).

        ``in_spikes`` (B, n_0): the input layer's spikes given (AER input, :meth:`infer_events`,
        :meth:`train_events`) instead of its encoders, bool, or integer counts (a neuron sent k times in the
        step adds its row k times; as a spike of the learning rule it counts once); a stochastic encoder's
        draws for the input layer are still taken."""
        sp = self.spec
        L = sp.n_layers
        cnt0 = None if in_spikes is None or in_spikes.dtype == bool else in_spikes
        # 1. encoders
        e = []
        for l in range(L + 1):
            v = x if l == 0 else st.s[l - 1]
            if l == 0 and in_spikes is not None:
                if sp.encoder == "stochastic":
                    draws.layer(0)
                e.append(in_spikes if cnt0 is None else cnt0 > 0)
                continue
            if sp.encoder == "sigma-delta":
                spk, st.phi[l] = sigma_delta(st.phi[l], v, self._m[l])
            else:
                spk = stochastic_spikes(v, draws.layer(l), self._m[l], self._eb[l])
            e.append(spk)
        rnd = [draws.layer(k) for k in range(1, L + 1)] if sp.state_rounding == "stochastic" else None
        # 2. neurons: accumulate the spike events' weight rows, narrow and saturate once
        idx = None if dense else [np.flatnonzero(a[0]) for a in e]
        new_s = []
        one = sp.state_one
        for k in range(1, L + 1):
            c = self._c[k]
            if dense:
                bu = exact_matmul(e[k - 1].astype(np.int64), self.wt[k - 1])
            elif k == 1 and cnt0 is not None:  # given input events with multiplicities: each one adds its row
                bu = (self.wt[0][idx[0]] * cnt0[0, idx[0]][:, None]).sum(0, dtype=np.int64)[None, :]
            else:
                bu = self.wt[k - 1][idx[k - 1]].sum(0, dtype=np.int64)[None, :]
            acc = bu << c["bu"]
            if k < L:
                if dense:
                    td = exact_matmul(e[k + 1].astype(np.int64), self.wt[k].T)
                else:
                    td = self.wt[k][:, idx[k + 1]].sum(1, dtype=np.int64)[None, :]
                acc = acc + (td << c["td"])
            s = st.s[k - 1]
            acc = acc + (self.b[k - 1] << c["bs"]) - (s << c["ls"])
            if nudge and k == L:
                acc = acc + nudge * ((onehot * one - s) << self._nudge_shift)
            if acc.size and max(acc.max(), -acc.min()) > c["bound"]:  # cannot happen: the spec's width derivation
                raise AssertionError(f"layer {k}: accumulator beyond its derived bound {c['bound']}")
            inc = shift_round(acc, c["ss"], sp.state_rounding, None if rnd is None else rnd[k - 1])
            new_s.append(np.minimum(np.maximum(s + inc, 0), one))
        st.s = new_s
        # 3. traces (training samples only)
        dtr = None
        if st.tr is not None:
            dtr = []
            for k in range(L):
                stages = st.tr[k]
                src = e[k + 1].astype(np.int64) << sp.trace_frac
                old = stages[-1]
                for i in range(len(stages)):
                    t = stages[i]
                    stages[i] = np.minimum(np.maximum(t + shift_round(src - t, sp.trace_shift, sp.trace_rounding), 0),
                                           sp.trace_one)
                    src = stages[i]
                dtr.append(stages[-1] - old)
        return e, dtr

    def _apply_update(self, e, dtr, sigma: int) -> tuple[int, int]:
        """Step 4 of the spec for one sample (B = 1). Returns (update events, weights/biases changed)."""
        sp = self.spec
        L = sp.n_layers
        events = writes = 0
        tern = sp.update == "ternary"
        pending = sp.update_apply == "sample"

        def q(d):
            return (d > sp.update_theta).astype(np.int64) - (d < -sp.update_theta).astype(np.int64)

        for l in range(L):
            pre, post = e[l][0], e[l + 1][0]
            dpost = dtr[l][0]
            dpre = dtr[l - 1][0] if l >= 1 else None
            events += int(pre.sum()) * int(np.count_nonzero(dpost))
            if dpre is not None:
                events += int(post.sum()) * int(np.count_nonzero(dpre))
            lat = self.v is not None  # ternary training: the update lands on the latent weights
            lo, hi = sp.element_range(f"v{l}" if lat else f"w{l}")
            wt = self.v[l] if lat else self.wt[l]  # (n_pre, n_post)
            gpost = q(dpost) if tern else dpost
            if pending:  # update_apply = "sample": exact pending sums, written in _flush_pending
                pw = self._pw[l]
                if dpre is None:
                    pw[np.flatnonzero(pre)] += ((sigma * gpost) << sp.ternary_shift if tern else sigma * gpost)[None, :]
                else:
                    gpre = q(dpre) if tern else dpre
                    D = sigma * (pre[:, None] * gpost[None, :] + gpre[:, None] * post[None, :])
                    pw += D << sp.ternary_shift if tern else D
                self._pb[l] += (sigma * gpost) << sp.ternary_shift if tern else sigma * gpost
                continue
            if dpre is None:  # only presynaptic events: each spiking row gets the same change
                rows = np.flatnonzero(pre)
                if len(rows):
                    delta = (sigma * gpost) << sp.ternary_shift if tern else \
                        shift_round(sigma * gpost, self._ushift[l], sp.update_rounding)
                    old = wt[rows]
                    new = np.clip(old + delta[None, :], lo, hi)
                    writes += int(np.count_nonzero(new != old))
                    wt[rows] = new
            else:
                gpre = q(dpre) if tern else dpre
                D = pre[:, None] * gpost[None, :] + gpre[:, None] * post[None, :]
                delta = (sigma * D) << sp.ternary_shift if tern else \
                    shift_round(sigma * D, self._ushift[l], sp.update_rounding)
                new = np.clip(wt + delta, lo, hi)
                writes += int(np.count_nonzero(new != wt))
                (self.v if lat else self.wt)[l] = new
            blo, bhi = sp.element_range(f"b{l}")
            db = (sigma * gpost) << sp.ternary_shift if tern else \
                shift_round(sigma * gpost, self._bshift[l], sp.update_rounding)
            nb = np.clip(self.b[l] + db, blo, bhi)
            writes += int(np.count_nonzero(nb != self.b[l]))
            self.b[l] = nb
        if self.v is not None:  # cells whose ternary value changed are reprogrammed
            from .ternary import reprogram

            reprogram(self)
        return events, writes

    def _flush_pending(self) -> int:
        """``update_apply = "sample"``: each weight and bias += its pending sum, rounded once and saturated;
        the pending sums cleared. Returns the number of weights and biases whose value changed."""
        sp = self.spec
        tern = sp.update == "ternary"
        writes = 0
        for l in range(sp.n_layers):
            for arr, pend, k, name in ((self.wt, self._pw, self._ushift[l], f"w{l}"),
                                       (self.b, self._pb, self._bshift[l], f"b{l}")):
                lo, hi = sp.element_range(name)
                new = np.clip(arr[l] + (pend[l] if tern else shift_round(pend[l], k, sp.update_rounding)), lo, hi)
                writes += int(np.count_nonzero(new != arr[l]))
                arr[l] = new
                pend[l][:] = 0
        return writes

    def _phase(self, name, x, st, draws, steps, nudge, onehot, dense, update_sigma, record_events,
               in_spikes=None) -> PhaseRecord:
        sp = self.spec
        L = sp.n_layers
        B = x.shape[0]
        spikes = np.zeros(L + 1, np.int64)
        upd = wr = 0
        ev = [] if record_events else None
        for t in range(steps):
            e, dtr = self._step(x, st, draws, nudge, onehot, dense, update_sigma != 0,
                                None if in_spikes is None else in_spikes[t])
            for l in range(L + 1):
                spikes[l] += int(np.count_nonzero(e[l])) if l or in_spikes is None else int(in_spikes[t].sum())
                if ev is not None:
                    n = np.flatnonzero(e[l][0])
                    ev.append(np.stack([np.full(len(n), t), np.full(len(n), l), n], 1))
            if update_sigma:
                a, b = self._apply_update(e, dtr, update_sigma)
                upd += a
                wr += b
        syn = int(sum(int(spikes[l]) * sp.fan_out(l) for l in range(L + 1)))
        events = None
        if ev is not None:
            events = np.concatenate(ev).astype(np.int32) if ev else np.zeros((0, 3), np.int32)
        return PhaseRecord(name, steps, [a.copy() for a in st.s], [a.copy() for a in st.phi],
                           None if st.tr is None else [[a.copy() for a in s_] for s_ in st.tr],
                           [int(v) for v in spikes], syn, B * steps * sum(sp.layers[1:]), upd, wr, events)

    # --- public API ------------------------------------------------------------------------------------------
    def infer(self, x: np.ndarray, T: int | None = None, record_events: bool = False) -> SampleRecord:
        """One sample's free phase on the event path; the class is the argmax of the output states."""
        if T is not None:
            self._check_T(T)
        x = self.check_input(x).reshape(1, -1)
        draws = self._draws(1, train=False) if T is None else self._draws_T(1, T)
        st = self._init_state(1, draws, train=False)
        ph = self._phase("free", x, st, draws, T or self.spec.T1, 0, None, False, 0, record_events)
        self.samples += 1
        return SampleRecord(int(np.argmax(st.s[-1][0])), [ph])

    def infer_events(self, steps, record_events: bool = False) -> SampleRecord:
        """One sample's free phase with the input layer's spikes given as address events (AER): ``steps[t]``
        lists the input neurons that spike in step t (each at most once); T = ``len(steps)``. Everything
        else is :meth:`infer`'s (the input layer's residue draws and stochastic-encoder draws are taken
        as there, so the PRNG stream stays aligned with pixel samples)."""
        T = len(steps)
        self._check_T(T)
        n0 = self.spec.layers[0]
        spk = self._event_spikes(steps, duplicates=False)
        draws = self._draws_T(1, T)
        st = self._init_state(1, draws, train=False)
        x = np.zeros((1, n0), np.int64)
        ph = self._phase("free", x, st, draws, T, 0, None, False, 0, record_events, in_spikes=spk)
        self.samples += 1
        return SampleRecord(int(np.argmax(st.s[-1][0])), [ph])

    def _event_spikes(self, steps, duplicates: bool) -> np.ndarray:
        """(T, 1, n_0) input spikes from per-step lists of input-neuron addresses: bool (each neuron at most
        once a step), or with ``duplicates`` int64 counts (a neuron listed k times: k)."""
        n0 = self.spec.layers[0]
        spk = np.zeros((len(steps), 1, n0), np.int64 if duplicates else bool)
        for t, evs in enumerate(steps):
            a = np.asarray(evs, dtype=np.int64).reshape(-1)
            if a.size and (a.min() < 0 or a.max() >= n0):
                raise ValueError(f"step {t}: AER events must address input neurons 0..{n0 - 1}, not "
                                 f"[{a.min()}, {a.max()}]")
            if duplicates:
                np.add.at(spk[t, 0], a, 1)
                continue
            if len(np.unique(a)) != a.size:
                raise ValueError(f"step {t}: an input neuron appears more than once in the step's events")
            spk[t, 0, a] = True
        return spk

    def _check_label(self, label) -> None:
        sp = self.spec
        if not sp.training:
            raise ValueError("the spec has training=false (an inference-only core)")
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < sp.layers[-1]:
            raise ValueError(f"label must be an integer in 0..{sp.layers[-1] - 1}, not {label!r}")

    def train_sample(self, x: np.ndarray, label: int, record_events: bool = False) -> SampleRecord:
        """One on-chip training sample (batch 1): free phase, nudged phase(s) with the spike-driven update.

        ``pred`` is the free phase's class (before this sample's update)."""
        self._check_label(label)
        x = self.check_input(x).reshape(1, -1)
        return self._train(x, label, record_events, None)

    def train_events(self, steps, label: int, record_events: bool = False) -> SampleRecord:
        """One on-chip training sample with the input layer's spikes given as address events (AER; the RTL's
        ``REG_CTRL`` AER + train): ``steps[t]`` lists the input neurons that spike in step t of the sample —
        the T1 free steps, then the T2 steps of the +β phase and (symmetric estimator) the T2 of the −β
        phase, so ``len(steps)`` = T1 + T2·(1 + symmetric). Everything else is :meth:`train_sample`'s (PRNG
        draws aligned; the input layer has no traces). A neuron listed k times in one step (a duplicate
        event) adds its row k times to the accumulators and counts k spikes (as in the RTL's AER
        inference), but is one presynaptic spike of the update: its row's weights change once."""
        sp = self.spec
        self._check_label(label)
        n = sp.T1 + sp.T2 * (2 if sp.symmetric else 1)
        if len(steps) != n:
            raise ValueError(f"a training sample needs T1 + T2{' * 2' if sp.symmetric else ''} = {n} steps of "
                             f"events, not {len(steps)}")
        spk = self._event_spikes(steps, duplicates=True)
        return self._train(np.zeros((1, sp.layers[0]), np.int64), label, record_events, spk)

    def _train(self, x, label, record_events, spk) -> SampleRecord:
        sp = self.spec
        draws = self._draws(1, train=True)
        st = self._init_state(1, draws, train=True)
        onehot = np.zeros((1, sp.layers[-1]), np.int64)
        onehot[0, int(label)] = 1
        free = self._phase("free", x, st, draws, sp.T1, 0, None, False, 0, record_events,
                           None if spk is None else spk[:sp.T1])
        rec = SampleRecord(int(np.argmax(st.s[-1][0])), [free])
        phases = [("nudged+", 1)] + ([("nudged-", -1)] if sp.symmetric else [])
        for n, (name, sign) in enumerate(phases):
            ph_st = st.copy()
            a = sp.T1 + n * sp.T2
            rec.phases.append(self._phase(name, x, ph_st, draws, sp.T2, sign, onehot, False, sign, record_events,
                                          None if spk is None else spk[a:a + sp.T2]))
        if sp.update_apply == "sample":
            rec.phases[-1].weight_writes += self._flush_pending()
        self.samples += 1
        return rec

    def predict(self, x: np.ndarray, batch: int = 256, T: int | None = None, progress=None) -> np.ndarray:
        """Classes of many samples on the batched path (``==`` :meth:`infer` sample by sample)."""
        if T is not None:
            self._check_T(T)
        x = self.check_input(x).reshape(-1, self.spec.layers[0])
        out = np.empty(len(x), np.int64)
        starts = range(0, len(x), batch)
        for i in (progress(starts) if progress else starts):
            xb = x[i:i + batch]
            B = len(xb)
            draws = self._draws(B, train=False) if T is None else self._draws_T(B, T)
            st = self._init_state(B, draws, train=False)
            for _ in range(T or self.spec.T1):
                self._step(xb, st, draws, 0, None, True, False)
            out[i:i + B] = np.argmax(st.s[-1], 1)
            self.samples += B
        return out

    def _check_T(self, T) -> None:
        if isinstance(T, bool) or not isinstance(T, int) or not 0 < T < 1 << self.spec.step_bits:
            raise ValueError(f"T must be an integer in 1..{(1 << self.spec.step_bits) - 1}, not {T!r}")

    def _draws_T(self, B: int, T: int) -> _Draws | None:
        if self.prng is None:
            return None
        sp = self.spec
        start = sum(sp.tiles(k) for k in range(sp.n_layers + 1)) if sp.encoder_phase == "random" else 0
        n = start + T * sp.draws_per_step()
        return _Draws(sp, self.prng.take(B * n).reshape(B, n, sp.lanes))


def sigma_delta(phi: np.ndarray, v: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The sigma-delta encoder of full scale ``m``: ``φ ← φ + v; e = [2φ > m]; φ ← φ − e·m``.

    Returns (spikes, new residues). φ ∈ [−m/2, m/2] and v ∈ [0, m] keep φ in [−m/2, m/2], so over any
    window |Σe − Σv/m| ≤ 1 (``tests/test_eqspike_twin.py`` checks it exhaustively for small m)."""
    phi = phi + v
    spk = 2 * phi > m
    return spk, phi - spk * m


def stochastic_spikes(v: np.ndarray, words: np.ndarray, m: int, b: int) -> np.ndarray:
    """The stochastic encoder: ``e = [u·m < v·2^b]``, u = the top ``b`` bits of the 32-bit PRNG word."""
    return (words >> (32 - b)) * m < (v << b)


def init_weights(spec: EqSpikeSpec, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Random integer weights: PyTorch's default Linear init U(±scale/√fan_in) (as the float model), rounded
    to nearest in each array's format and saturated."""
    rng = np.random.default_rng(seed)
    out = {}
    for l in range(spec.n_layers):
        a = scale / np.sqrt(spec.layers[l])
        for name, shape, frac in ((f"w{l}", (spec.layers[l + 1], spec.layers[l]), spec.weight_frac[l]),
                                  (f"b{l}", (spec.layers[l + 1],), spec.bias_frac[l])):
            lo, hi = spec.element_range(name)
            out[name] = np.clip(np.rint(rng.uniform(-a, a, shape) * 2.0 ** frac), lo, hi).astype(np.int64)
    return out
