"""Float EqSpike network: spike-driven dynamics, sigma-delta / stochastic encoders, spike-driven EP updates.

The model (docs/eqspike.md is the specification), for layers s_0 = x (clamped input), s_1 … s_L,
weights W_l from layer l to l+1 (the same ``w{l}``/``b{l}`` as :class:`golden.ep.EPNet`, which this
class extends, so the rate-based EP net of the same weights is ``self`` run without spikes)::

    e_l(t)   = encode(s_l(t))                          l = 0 … L  (ρ(s) = s: states live in [0, 1])
    s_l(t+1) = clip(s_l + ε(−s_l + W_{l-1} e_{l-1} + b_{l-1} + W_lᵀ e_{l+1} [+ β(y − s_L) at l = L]), 0, 1)
    ŝ_l(t+1) = ŝ_l + λ(e_l − ŝ_l)                      (trace; optionally a second stage on the first)
    ΔW_l    += e_l ⊗ Δŝ_{l+1} + Δŝ_l ⊗ e_{l+1}          nudged phases only; Δŝ_0 = 0 (the input is clamped)

``W e`` with e ∈ {0, 1} is a sum of the weight rows of the neurons that spiked: adds only.
ε = 2^-eps_shift and λ = 2^-trace_shift are shifts in fixed point. The encoders are
sigma-delta (φ ← φ + s; e = [φ > ½]; φ ← φ − e, so |Σe − Σs| ≤ 1 over any window) or stochastic
(e = [s > u], u ~ U[0, 1)).

The random numbers (stochastic spikes, random residues) come from ``gen``: a torch generator, or a
:class:`golden.distributed.RowGenerator` in data-parallel training, which draws them for the global
batch so each sample gets the numbers it gets in one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..distributed import rand_rows
from ..ep.config import NetSpec
from ..ep.network import EPNet
from .config import EqSpikeConfig


@dataclass
class SpikeState:
    """Everything that evolves during a sample: states, encoder residues, traces (per layer)."""

    s: list[torch.Tensor]  # L hidden/output states (B, n_l)
    phi: list[torch.Tensor]  # L+1 sigma-delta residues, input first
    tr: list[list[torch.Tensor]]  # traces of layers 1..L, one tensor per stage
    e: list[torch.Tensor] | None = None  # the last step's spikes (L+1 layers)

    def clone(self) -> SpikeState:
        return SpikeState([t.clone() for t in self.s], [t.clone() for t in self.phi],
                          [[t.clone() for t in st] for st in self.tr],
                          None if self.e is None else [t.clone() for t in self.e])


@dataclass
class EventCounts:
    """Per-phase event totals over a batch (device tensors until :meth:`as_dict`)."""

    steps: int = 0
    neuron_updates: int = 0  # neuron state updates (every neuron of layers 1..L, every step, every sample)
    spikes: list[torch.Tensor] = field(default_factory=list)  # per layer 0..L
    synaptic: torch.Tensor | None = None  # weight reads caused by spikes (one per spike and target)
    updates: torch.Tensor | None = None  # weight writes (nonzero ΔW contributions) in nudged phases

    def add(self, key: str, value: torch.Tensor) -> None:
        cur = getattr(self, key)
        setattr(self, key, value if cur is None else cur + value)

    def as_dict(self) -> dict:
        return {"steps": self.steps, "neuron_updates": self.neuron_updates,
                "spikes": [int(t.item()) for t in self.spikes],
                "synaptic_events": int(self.synaptic.item()) if self.synaptic is not None else 0,
                "update_events": int(self.updates.item()) if self.updates is not None else 0}


class EqSpikeNet(EPNet):
    """EqSpike MLP: an :class:`EPNet` (hard-sigmoid, MSE) whose neurons talk by spikes.

    Parameters
    ----------
    cfg : EqSpikeConfig (layers, init_scale, encoder, ε, λ, trace stages, update kind, θ).
    device, dtype : torch device and float dtype.
    """

    def __init__(self, cfg: EqSpikeConfig, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
        if dtype is None:
            dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
        spec = NetSpec(kind="mlp", layers=tuple(cfg.layers), activation="hard_sigmoid", loss="mse",
                       init_scale=tuple(cfg.init_scale))
        super().__init__(spec, dtype=dtype, device=device, seed=cfg.seed)
        self.cfg = cfg

    # --- state -------------------------------------------------------------------------------------
    def init_spike_state(self, x: torch.Tensor, gen: torch.Generator | None = None) -> SpikeState:
        """States and traces at 0; encoder residues at 0, or uniform in [−½, ½) with ``encoder_phase='random'``.

        A random residue decorrelates the spike phases of neurons with equal rates (the bound
        |Σe − Σs| ≤ 1 holds for any start in [−½, ½]).
        """
        B = x.shape[0]
        z = dict(dtype=self.dtype, device=self.device)
        sizes = list(self.spec.layers)
        s = [torch.zeros(B, n, **z) for n in sizes[1:]]
        if self.cfg.encoder_phase == "random":
            if gen is None:
                raise ValueError("encoder_phase='random' needs a generator")
            phi = [rand_rows((B, n), gen, **z) - 0.5 for n in sizes]
        else:
            phi = [torch.zeros(B, n, **z) for n in sizes]
        tr = [[torch.zeros(B, n, **z) for _ in range(self.cfg.trace_stages)] for n in sizes[1:]]
        return SpikeState(s, phi, tr)

    def encode(self, v: torch.Tensor, phi: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        """Spikes (0./1.) of values ``v`` ∈ [0, 1]; updates the residue ``phi`` in place (sigma-delta)."""
        if self.cfg.encoder == "sigma-delta":
            return sigma_delta_(v, phi)
        u = rand_rows(v.shape, gen, dtype=v.dtype, device=v.device)
        return (v > u).to(v.dtype)

    # --- dynamics ------------------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, x: torch.Tensor, st: SpikeState, steps: int, beta: float = 0.0, target: torch.Tensor | None = None,
            gen: torch.Generator | None = None, acc: dict[str, torch.Tensor] | None = None,
            counts: EventCounts | None = None, spiking: bool = True) -> SpikeState:
        """Run ``steps`` synchronous steps in place on ``st`` (and return it).

        ``acc`` (nudged phases) accumulates Σ_t e ⊗ Δŝ per weight and Σ_t Δŝ per bias, summed over
        the batch. ``counts`` accumulates spikes, synaptic and weight-update events.
        ``spiking=False`` is the rate-based net on the same dynamics (e = s): the reference; it has
        no traces and takes no ``acc``.
        """
        if acc is not None and not spiking:
            raise ValueError("the rate-based net (spiking=False) accumulates no spike-driven update")
        if beta != 0.0 and target is None:
            raise ValueError("target (one-hot labels) is required when beta != 0")
        x = self.prepare_input(x)
        eps, lam = self.cfg.eps, self.cfg.lam
        L = self.n_layers
        W = [getattr(self, f"w{l}") for l in range(L)]
        b = [getattr(self, f"b{l}") for l in range(L)]
        tern = self.cfg.update == "ternary"
        theta = self.cfg.theta
        for _ in range(steps):
            if spiking:
                e = [self.encode(x, st.phi[0], gen)] + [self.encode(st.s[l], st.phi[l + 1], gen) for l in range(L)]
            else:
                e = [x] + [t.clone() for t in st.s]
            for l in range(L):  # s_{l+1}: bottom-up from layer l, top-down from layer l+2
                drive = torch.addmm(b[l], e[l], W[l].t())
                if l + 1 < L:
                    drive.addmm_(e[l + 2], W[l + 1])
                s = st.s[l]
                drive.sub_(s)
                if beta != 0.0 and l == L - 1:
                    drive.add_(target - s, alpha=beta)
                s.add_(drive, alpha=eps).clamp_(0.0, 1.0)
            # traces and their changes Δŝ (layers 1..L); the rate net needs none (its update is EP's)
            dtr = []
            for l in range(L if spiking else 0):
                stages, src = st.tr[l], e[l + 1]
                d = trace_step_(stages, src, lam, want_delta=acc is not None)
                if d is not None:
                    dtr.append(ternarize(d, theta) if tern else d)
            if acc is not None:
                for l in range(L):
                    acc[f"w{l}"].addmm_(dtr[l].t(), e[l])  # pre e_l × post Δŝ_{l+1}
                    if l >= 1:
                        acc[f"w{l}"].addmm_(e[l + 1].t(), dtr[l - 1])  # post e_{l+1} × pre Δŝ_l
                    acc[f"b{l}"].add_(dtr[l].sum(0))
            if counts is not None:
                self._count(counts, e, dtr if acc is not None else None)
            st.e = e
        return st

    def _count(self, counts: EventCounts, e: list[torch.Tensor], dtr) -> None:
        sizes = list(self.spec.layers)
        L = self.n_layers
        counts.steps += 1
        counts.neuron_updates += e[0].shape[0] * sum(sizes[1:])
        per = [t.sum() for t in e]
        counts.spikes = per if not counts.spikes else [a + c for a, c in zip(counts.spikes, per, strict=True)]
        # a spike of layer l reads one weight per target: the layer above, and the layer below when
        # that is not the (clamped) input
        fan = [(sizes[l + 1] if l < L else 0) + (sizes[l - 1] if l >= 2 else 0) for l in range(L + 1)]
        counts.add("synaptic", sum(p * f for p, f in zip(per, fan, strict=True)))
        if dtr is not None:
            # weight W_l[i, j] is written when (e_j and Δŝ_i ≠ 0) or (e_i and Δŝ_j ≠ 0): counted per event
            n = 0
            for l in range(L):
                nz_post = (dtr[l] != 0).to(e[l].dtype)
                n = n + (e[l].sum(1) * nz_post.sum(1)).sum()
                if l >= 1:
                    nz_pre = (dtr[l - 1] != 0).to(e[l].dtype)
                    n = n + (e[l + 1].sum(1) * nz_pre.sum(1)).sum()
            counts.add("updates", n)

    # --- phases ---------------------------------------------------------------------------------------
    def new_acc(self) -> dict[str, torch.Tensor]:
        return {k: torch.zeros_like(v) for k, v in self.named_parameters()}

    @torch.no_grad()
    def free_phase(self, x, T: int, gen=None, counts=None, spiking: bool = True) -> SpikeState:
        st = self.init_spike_state(x, gen) if spiking else self.init_spike_state_rate(x)
        return self.run(x, st, T, gen=gen, counts=counts, spiking=spiking)

    def init_spike_state_rate(self, x: torch.Tensor) -> SpikeState:
        z = dict(dtype=self.dtype, device=self.device)
        return SpikeState([torch.zeros(x.shape[0], n, **z) for n in self.spec.layers[1:]], [], [])

    @torch.no_grad()
    def spike_update(self, x: torch.Tensor, y: torch.Tensor, T1: int, T2: int, beta: float, estimator: str,
                     gen: torch.Generator | None = None, sign_gen: torch.Generator | None = None,
                     counts: dict[str, EventCounts] | None = None, spiking: bool = True,
                     free: SpikeState | None = None):
        """One training step's update Δθ (batch mean, θ moves along +Δ) and the free-phase output state.

        The phase sums of the spike-driven rule, divided by β (one-sided, random-sign) or 2β
        (symmetric: Σ_{+β phase} − Σ_{−β phase}, both from the free state). ``spiking=False`` gives
        the rate-based EP update on the same dynamics (C-EP telescoping, exactly the EP update of
        :meth:`EPNet.ep_update` on the phase-end states). ``counts`` maps phase names to
        :class:`EventCounts`.
        """
        target = self.one_hot(y)
        counts = counts if counts is not None else {}
        if free is None:
            free = self.free_phase(x, T1, gen, counts.get("free"), spiking)
        if not spiking:
            return self._rate_update(x, target, T2, beta, estimator, sign_gen, free), free
        if estimator == "symmetric":
            phases = [("nudged+", beta, 0.5 / beta), ("nudged-", -beta, -0.5 / beta)]
        else:
            b = beta
            if estimator == "random-sign":
                b = beta if torch.randint(0, 2, (1,), generator=sign_gen).item() else -beta
            phases = [("nudged+" if b > 0 else "nudged-", b, 1.0 / b)]
        update = self.new_acc()
        for name, b, scale in phases:
            acc = self.new_acc()
            self.run(x, free.clone(), T2, b, target, gen, acc, counts.get(name), spiking)
            for k in update:
                update[k].add_(acc[k], alpha=scale / x.shape[0])
        return update, free

    def _rate_update(self, x, target, T2, beta, estimator, sign_gen, free: SpikeState):
        """EP's update (:meth:`EPNet.ep_update`) at the ends of the rate net's phases."""
        clamped = self.clamp(x)
        if estimator == "symmetric":
            s_p = self.run(x, free.clone(), T2, beta, target, spiking=False).s
            s_m = self.run(x, free.clone(), T2, -beta, target, spiking=False).s
            return self.ep_update(clamped, s_m, -beta, s_p, beta, target, s_free=free.s)
        b = beta
        if estimator == "random-sign":
            b = beta if torch.randint(0, 2, (1,), generator=sign_gen).item() else -beta
        s_n = self.run(x, free.clone(), T2, b, target, spiking=False).s
        return self.ep_update(clamped, free.s, 0.0, s_n, b, target, s_free=free.s)

    @torch.no_grad()
    def predict_spiking(self, x: torch.Tensor, T: int, gen: torch.Generator | None = None) -> torch.Tensor:
        """Class = argmax of the output states after a free phase of ``T`` steps."""
        return self.free_phase(x, T, gen).s[-1].argmax(1)


def sigma_delta_(v: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """Sigma-delta / integrate-and-fire encoder with subtractive reset, in place on ``phi``.

    ``φ ← φ + v; e = [φ > ½]; φ ← φ − e``. With φ ∈ [−½, ½] and v ∈ [0, 1] φ stays in [−½, ½],
    so over any window |Σ e − Σ v| = |φ_start − φ_end| ≤ 1.
    """
    phi.add_(v)
    e = (phi > 0.5).to(v.dtype)
    phi.sub_(e)
    return e


def trace_step_(stages: list[torch.Tensor], src: torch.Tensor, lam: float, want_delta: bool = True):
    """Advance a cascade of first-order low-pass stages ``t ← t + λ(input − t)`` in place.

    The first stage filters ``src`` (the spikes), each further stage the one before it. Returns
    Δŝ = the last stage's change (or ``None`` when not wanted).
    """
    old = stages[-1].clone() if want_delta else None
    for t in stages:
        t.add_(src - t, alpha=lam)
        src = t
    return stages[-1] - old if want_delta else None


def ternarize(d: torch.Tensor, theta: float) -> torch.Tensor:
    """θ · sign(d) · [|d| > θ]: the comparators at ±θ of the circuit form (one LSB per event)."""
    return ((d > theta).to(d.dtype) - (d < -theta).to(d.dtype)).mul_(theta)
