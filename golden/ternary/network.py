"""Ternary/binary-weight EP MLP: latent weights, the hardware's relaxation, closed-form EP update.

The network is the float EP MLP of :mod:`golden.ep` (docs/float-ep.md) with the activation the
hardware uses, the hard sigmoid ``clip(v, 0, 1)``, the MSE read-out with the nudge inside ρ,
synchronous steps and ``W0·x + b0`` computed once per sample; only the weights differ:
``W_eff[l] = α_l T_l`` with ``T_l = ternarize(w_l, δ)`` (or ``binarize``) of latent real weights
``w_l`` and ``α_l = 2^-a_l``. Biases are real. The relaxation reads the weights through
:class:`golden.ternary.errors.StoredWeights`, which injects the read errors of the chosen mode.
With no errors it computes exactly what :class:`golden.ep.EPNet` computes with the effective
weights (tested).

EP update (symmetric ±β, ALGORITHMS.md §1) of the effective parameters, batch mean::

    Δ W_l = [s_{l+1}^+ (s_l^+)ᵀ − s_{l+1}^- (s_l^-)ᵀ] / 2β         Δ b_l = [s_{l+1}^+ − s_{l+1}^-] / 2β

**Straight-through, in units of α.** A latent weight stands for the float weight ``α_l·w_l``
(clipped to ``±α_l·clip``, stored as ``α_l·T_l``), so the latent moves by ``Δ W_l / α_l``: with
plain SGD a learning rate η moves the effective weights as η moves a float net's weights, and
one learning rate serves the weights and the biases of a connection. (The textbook straight-
through gradient ``∂L/∂w_l = α_l ∂L/∂W_eff`` differs by the constant ``α_l²``; Adam, the default,
is invariant to that constant anyway.) The latent weights are clipped to ``[−clip, clip]``
after every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .errors import StoredWeights
from .ternarize import alpha, check_alpha_shift, check_delta, check_kind, quantize


class TernaryEPNet(torch.nn.Module):
    """Latent weights ``w{l}`` (shape (n_{l+1}, n_l), like ``torch.nn.Linear``) and biases ``b{l}``.

    Parameters
    ----------
    layers : sizes including the input, e.g. ``(784, 500, 10)``.
    kind : ``"ternary"`` or ``"binary"``.
    delta : ternarisation threshold (ignored for binary).
    alpha_shift : ``a_l`` per connection, α_l = 2^-a_l.
    init_scale : latent weights start uniform in ``±init_scale[l]`` (one value or one per
        connection); biases start like PyTorch's ``nn.Linear`` (U(±1/√fan_in)).
    clip : latent weights stay in ``[−clip, clip]``.
    seed : initialisation seed.
    dtype : torch.float32 or torch.float64.
    """

    def __init__(
        self,
        layers: Sequence[int],
        kind: str,
        delta: float,
        alpha_shift: Sequence[int],
        init_scale: Sequence[float],
        clip: float = 1.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.layers = tuple(int(n) for n in layers)
        self.n_conn = len(self.layers) - 1
        self.kind = check_kind(kind)
        self.delta = check_delta(delta)
        self.alpha_shift = check_alpha_shift(alpha_shift, self.n_conn)
        self.alphas = [alpha(a) for a in self.alpha_shift]
        self.clip = float(clip)
        scales = tuple(init_scale) * (self.n_conn if len(init_scale) == 1 else 1)
        gen = torch.Generator().manual_seed(int(seed))
        for l in range(self.n_conn):
            n_in, n_out = self.layers[l], self.layers[l + 1]
            w = (torch.rand((n_out, n_in), generator=gen, dtype=torch.float64) * 2 - 1) * scales[l]
            b = (torch.rand(n_out, generator=gen, dtype=torch.float64) * 2 - 1) / math.sqrt(n_in)
            self.register_parameter(f"w{l}", torch.nn.Parameter(w.clamp(-self.clip, self.clip).to(dtype)))
            self.register_parameter(f"b{l}", torch.nn.Parameter(b.to(dtype)))

    @property
    def dtype(self) -> torch.dtype:
        return self.w0.dtype

    def latent(self) -> list[torch.Tensor]:
        return [getattr(self, f"w{l}") for l in range(self.n_conn)]

    def biases(self) -> list[torch.Tensor]:
        return [getattr(self, f"b{l}") for l in range(self.n_conn)]

    @torch.no_grad()
    def stored_values(self) -> list[torch.Tensor]:
        """T_l ∈ {−1, 0, +1} (binary {−1, +1}) in the parameters' dtype."""
        return [quantize(w, self.kind, self.delta) for w in self.latent()]

    @torch.no_grad()
    def effective_weights(self) -> list[torch.Tensor]:
        return [t * a for t, a in zip(self.stored_values(), self.alphas, strict=True)]

    def program(
        self, p: float = 0.0, mode: str = "static", generator: torch.Generator | None = None, block: int = 16,
        rows: tuple[int, int] | None = None,
    ) -> StoredWeights:
        """Write the current weights into the (simulated) array; errors per ``mode`` at rate ``p``
        (``block``, ``rows``: see :class:`StoredWeights`)."""
        return StoredWeights(self.stored_values(), self.alpha_shift, self.kind, p, mode, generator, block, rows)

    @torch.no_grad()
    def apply_update(self, update: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        """θ moves along +Δ (weights in units of α, see the module notes), then the latent clip."""
        for l in range(self.n_conn):
            w, b = getattr(self, f"w{l}"), getattr(self, f"b{l}")
            w.grad = update[f"w{l}"].mul(-1.0 / self.alphas[l])
            b.grad = update[f"b{l}"].neg()
        optimizer.step()
        for w in self.latent():
            w.clamp_(-self.clip, self.clip)


def init_states(layers: Sequence[int], batch: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """Neurons start at 0 for every sample."""
    return [torch.zeros((batch, n), dtype=dtype) for n in layers[1:]]


@torch.no_grad()
def relax(
    stored: StoredWeights,
    biases: Sequence[torch.Tensor],
    f0: torch.Tensor,
    states: Sequence[torch.Tensor],
    steps: int,
    beta: float = 0.0,
    target: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """``steps`` synchronous steps: ``s_k ← clip(W_{k-1} s_{k-1} + b_{k-1} + W_kᵀ s_{k+1}, 0, 1)``, the
    output layer nudged inside the clip by ``β (y − s_L)``; ``f0 = W_0 x + b_0`` (computed once)."""
    L = len(states)
    if beta != 0.0 and target is None:
        raise ValueError("target (one-hot labels) is required when beta != 0")
    states = list(states)
    for _ in range(steps):
        new = []
        for k in range(L):
            pre = f0.clone() if k == 0 else stored.bottom_up(k, states[k - 1], biases[k])
            if k + 1 < L:
                stored.top_down(k + 1, states[k + 1], pre)
            if beta != 0.0 and k == L - 1:
                pre.add_(target - states[k], alpha=beta)
            new.append(pre.clamp_(0.0, 1.0))
        states = new
    return states


@torch.no_grad()
def ep_update(
    x: torch.Tensor, s_m: Sequence[torch.Tensor], s_p: Sequence[torch.Tensor], beta: float
) -> dict[str, torch.Tensor]:
    """Symmetric EP estimate Δθ ≈ −∂L/∂θ_eff (batch mean) from the −β and +β states."""
    scale = 1.0 / (2.0 * beta * x.shape[0])
    lm, lp = [x, *s_m], [x, *s_p]
    out = {}
    for l in range(len(s_p)):
        if l == 0:  # the clamped input: one product of the state difference
            out["w0"] = (lp[1] - lm[1]).t().mm(x).mul_(scale)
        else:
            posts = torch.cat([lp[l + 1], -lm[l + 1]])
            out[f"w{l}"] = posts.t().mm(torch.cat([lp[l], lm[l]])).mul_(scale)
        out[f"b{l}"] = (lp[l + 1] - lm[l + 1]).sum(0).mul_(scale)
    return out


@torch.no_grad()
def ep_step(
    net: TernaryEPNet, stored: StoredWeights, x: torch.Tensor, y: torch.Tensor, T1: int, T2: int, beta: float
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Free phase, ±β phases from the free state, update: ``(Δ, free-phase output states)``."""
    biases = net.biases()
    target = torch.nn.functional.one_hot(y, net.layers[-1]).to(x.dtype)
    f0 = stored.input_term(x, biases[0])
    free = relax(stored, biases, f0, init_states(net.layers, x.shape[0], x.dtype), T1)
    s_p = relax(stored, biases, f0, free, T2, beta, target)
    s_m = relax(stored, biases, f0, free, T2, -beta, target)
    return ep_update(x, s_m, s_p, beta), free[-1]


@torch.no_grad()
def predict(
    stored: StoredWeights,
    biases: Sequence[torch.Tensor],
    x: torch.Tensor,
    T: int,
    batch_size: int = 500,
    progress: bool = False,
) -> torch.Tensor:
    """argmax of the output layer after a free phase of ``T`` steps (ties → lowest index), per sample."""
    from tqdm import tqdm

    layers = [stored.ts[0].shape[1]] + [t.shape[0] for t in stored.ts]
    preds = []
    for i in tqdm(range(0, len(x), batch_size), desc="eval", leave=False, disable=not progress):
        xb = x[i : i + batch_size]
        f0 = stored.input_term(xb, biases[0])
        states = relax(stored, biases, f0, init_states(layers, len(xb), xb.dtype), T)
        preds.append(states[-1].argmax(1))
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.int64)
