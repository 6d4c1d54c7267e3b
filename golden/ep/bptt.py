"""BPTT reference and the EP-vs-BPTT comparison (the GDU property, ALGORITHMS.md §1).

BPTT runs the free phase for ``T1 − T2`` steps without a graph, then ``T2`` more steps with one,
and back-propagates the loss at the last state. Each of the ``T2`` steps gets its own copy of
the parameters, so one backward pass yields the *elementary* gradient of every step (what the
reference code obtains with T2 separate partial runs).

EP starts its nudged phase(s) from the free state after ``T1`` steps. The GDU property says the
EP increment of nudged step k matches minus the BPTT elementary gradient of step T2−1−k, and
their sums match as β → 0; the one-sided estimator has an O(β) bias that the symmetric one
cancels (Laborieux et al. 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .network import EPNet


@dataclass
class Trajectory:
    """Per-step parameter increments (time-ordered) and their sum."""

    steps: list[dict[str, torch.Tensor]]
    total: dict[str, torch.Tensor]
    neurons: list[list[torch.Tensor]]  # per step, per layer (batch mean)
    final: list[torch.Tensor] | None = None  # the last state of the (free) trajectory


def bptt(net: EPNet, x: torch.Tensor, y: torch.Tensor, T1: int, T2: int, per_step: bool = True) -> Trajectory:
    """−∂L/∂θ by BPTT through the last ``T2`` free steps; ``steps`` ordered from the loss backwards.

    ``steps[k]`` is minus the elementary gradient of step ``T2 − 1 − k`` (k = 0 is the step next
    to the loss), the order in which EP's nudged phase should reproduce them. ``neurons[k]`` is
    −∂L/∂s at time ``T2 − k`` (batch mean). With ``per_step=False`` (training) the steps share
    one parameter copy and only ``total`` is filled.
    """
    if not 0 < T2 <= T1:
        raise ValueError(f"need 0 < T2 <= T1, not T1={T1!r}, T2={T2!r}")
    target = net.one_hot(y)
    base = {k: v.detach() for k, v in net.params().items()}
    with torch.no_grad():
        s = net.relax(net.clamp(x), net.init_state(x.shape[0]), T1 - T2)
    s = [t.detach().requires_grad_() for t in s]
    shared = {k: v.clone().requires_grad_() for k, v in base.items()}
    if per_step:
        copies = [{k: v.clone().requires_grad_() for k, v in base.items()} for _ in range(T2)]
    else:
        copies = [shared] * T2
    readout = {k: v.clone().requires_grad_() for k, v in base.items()} if per_step else shared
    trajectory = [s]
    with torch.enable_grad():
        for t in range(T2):
            s = net.step(net.clamp(x, copies[t]), s, 0.0, None, copies[t])
            if per_step:
                for u in s:
                    u.retain_grad()
            trajectory.append(s)
        loss = net.loss(s, target, readout).mean()
        loss.backward()
    final = [u.detach() for u in s]
    if not per_step:
        total = {k: -(v.grad if v.grad is not None else torch.zeros_like(v)) for k, v in shared.items()}
        return Trajectory([], total, [], final)
    steps = []
    for k in range(T2):
        p = copies[T2 - 1 - k]
        steps.append({name: -(v.grad if v.grad is not None else torch.zeros_like(v)) for name, v in p.items()})
    # the read-out only enters through the loss: its gradient belongs to the step next to the loss
    for name in ("wo", "bo"):
        if name in readout and readout[name].grad is not None:
            steps[0][name] = steps[0][name] - readout[name].grad
    total = {name: sum(st[name] for st in steps) for name in base}
    # loss is a batch mean, so u.grad summed over the batch is the mean per-sample gradient
    neurons = [[-(u.grad.sum(0) if u.grad is not None else torch.zeros_like(u[0])) for u in trajectory[T2 - k]]
               for k in range(T2)]
    return Trajectory(steps, total, neurons, final)


def ep_trajectory(net: EPNet, x: torch.Tensor, y: torch.Tensor, T1: int, T2: int, beta: float,
                  symmetric: bool = False) -> Trajectory:
    """Per-step EP increments of the nudged phase (one-sided at ``beta``, or symmetric ±β).

    With ``S_k`` the estimate after k nudged steps — one-sided ``[∂Φ_β/∂θ(s_k) − ∂Φ_0/∂θ(s*)]/β``,
    symmetric ``[∂Φ_β/∂θ(s^{+}_k) − ∂Φ_{−β}/∂θ(s^{−}_k)]/2β`` — the increments are
    ``Δ_0 = S_1`` and ``Δ_k = S_{k+1} − S_k``, so ``Σ Δ_k = S_{T2}`` is the estimator's update.
    ``neurons[k]`` is the state increment over β (batch mean), the EP side of ∂L/∂s.
    """
    if not 0 < T2 <= T1:
        raise ValueError(f"need 0 < T2 <= T1, not T1={T1!r}, T2={T2!r}")
    target = net.one_hot(y)
    clamped = net.clamp(x)
    n = x.shape[0]
    with torch.no_grad():
        free = net.relax(clamped, net.init_state(n), T1)
        plus = minus = free
        partial: list[dict[str, torch.Tensor]] = []
        neurons: list[list[torch.Tensor]] = []
        for _ in range(T2):
            plus_n = net.relax(clamped, plus, 1, beta, target)
            if symmetric:
                minus_n = net.relax(clamped, minus, 1, -beta, target)
                partial.append(net.ep_update(clamped, minus_n, -beta, plus_n, beta, target, s_free=free))
                neurons.append([((pn - p) - (mn - m)).sum(0) / (2 * beta * n)
                                for p, pn, m, mn in zip(plus, plus_n, minus, minus_n, strict=True)])
                minus = minus_n
            else:
                partial.append(net.ep_update(clamped, free, 0.0, plus_n, beta, target, s_free=free))
                neurons.append([(pn - p).sum(0) / (beta * n) for p, pn in zip(plus, plus_n, strict=True)])
            plus = plus_n
    steps = [partial[0]] + [{k: partial[i][k] - partial[i - 1][k] for k in partial[i]} for i in range(1, T2)]
    return Trajectory(steps, partial[-1], neurons)


def compare(ep: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Per-parameter cosine similarity and relative error ‖ep − ref‖ / ‖ref‖."""
    out = {}
    for k in ref:
        a, b = ep[k].flatten().double(), ref[k].flatten().double()
        nb = b.norm().item()
        cos = (a @ b).item() / max(a.norm().item() * nb, 1e-300)
        out[k] = {"cosine": cos, "rel_error": (a - b).norm().item() / max(nb, 1e-300), "ref_norm": nb}
    return out
