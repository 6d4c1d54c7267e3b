"""EP gradient estimators and the continual (C-EP) variant (ALGORITHMS.md §1–2).

All estimators return Δθ, an estimate of −∂L/∂θ averaged over the batch; a trainer applies it
by setting ``p.grad = −Δ`` and calling a torch optimiser, exactly like the reference code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .network import EPNet

ESTIMATORS = ("one-sided", "random-sign", "symmetric")


@dataclass(frozen=True)
class EPSchedule:
    """Phase lengths and nudging of one EP training step.

    Parameters
    ----------
    T1 : free-phase steps.
    T2 : steps of each nudged phase.
    beta : nudging strength (> 0); the sign is chosen by the estimator.
    estimator : ``one-sided`` (0 → +β), ``random-sign`` (0 → ±β, sign drawn per mini-batch) or
        ``symmetric`` (−β and +β phases, both started from the free fixed point).
    settle_tol : optional early end of the free phase: stop once a step moves no neuron of the
        batch by more than this (``None``: always run T1 steps, the published setting).
    """

    T1: int = 30
    T2: int = 10
    beta: float = 0.1
    estimator: str = "symmetric"
    settle_tol: float | None = None

    def __post_init__(self) -> None:
        for name in ("T1", "T2"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if not (isinstance(self.beta, (int, float)) and self.beta > 0):
            raise ValueError(f"beta must be a positive number, not {self.beta!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, not {self.estimator!r}")
        if self.settle_tol is not None and not (isinstance(self.settle_tol, (int, float)) and self.settle_tol > 0):
            raise ValueError(f"settle_tol must be a positive number or None, not {self.settle_tol!r}")

    @property
    def steps_per_sample(self) -> int:
        return self.T1 + (2 if self.estimator == "symmetric" else 1) * self.T2


@dataclass
class StepResult:
    update: dict[str, torch.Tensor]
    free: list[torch.Tensor]
    logits: torch.Tensor
    betas: tuple[float, float]


def ep_step(net: EPNet, x: torch.Tensor, y: torch.Tensor, sched: EPSchedule,
            generator: torch.Generator | None = None) -> StepResult:
    """One EP step on a mini-batch: free phase, nudged phase(s), update estimate."""
    clamped = net.clamp(x)
    target = net.one_hot(y)
    free = net.relax(clamped, net.init_state(x.shape[0]), sched.T1, settle_tol=sched.settle_tol)
    logits = net.logits(free).detach()
    beta = float(sched.beta)
    if sched.estimator == "symmetric":
        s_p = net.relax(clamped, free, sched.T2, beta, target)
        s_m = net.relax(clamped, free, sched.T2, -beta, target)
        betas = (-beta, beta)
        update = net.ep_update(clamped, s_m, -beta, s_p, beta, target, s_free=free)
    else:
        if sched.estimator == "random-sign":
            sign = 1.0 if torch.randint(0, 2, (1,), generator=generator).item() else -1.0
            beta = sign * beta
        s_n = net.relax(clamped, free, sched.T2, beta, target)
        betas = (0.0, beta)
        update = net.ep_update(clamped, free, 0.0, s_n, beta, target, s_free=free)
    return StepResult(update, free, logits, betas)


def apply_update(net: EPNet, update: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    """θ moves along +Δ: hand ``−Δ`` to the optimiser as the gradient."""
    for name, p in net.named_parameters():
        g = update[name]
        if p.grad is None:
            p.grad = -g
        else:
            torch.neg(g, out=p.grad)
    optimizer.step()


def cep_step(net: EPNet, x: torch.Tensor, y: torch.Tensor, sched: EPSchedule,
             optimizer: torch.optim.Optimizer | None, generator: torch.Generator | None = None,
             on_update: Callable[[dict[str, torch.Tensor]], None] | None = None) -> StepResult:
    """Continual EP (Ernoult et al. 2020): the weights move at every step of the nudged phase.

    ``Δθ_t = (1/β)[∂Φ/∂θ(s_{t+1}) − ∂Φ/∂θ(s_t)]`` is applied after step t, so step t+1 already
    runs with the new weights. Summed over the phase with a vanishing learning rate this
    telescopes to the one-sided EP update (the check in the tests). The symmetric variant runs
    the +β phase, relaxes back for T2 free steps, then the −β phase, each normalised by 2β.
    ``on_update`` sees every per-step Δ (for the telescoping test); ``optimizer=None`` leaves θ fixed.
    """
    clamped = net.clamp(x)
    target = net.one_hot(y)
    free = net.relax(clamped, net.init_state(x.shape[0]), sched.T1, settle_tol=sched.settle_tol)
    logits = net.logits(free).detach()
    beta = float(sched.beta)
    if sched.estimator == "random-sign":
        beta *= 1.0 if torch.randint(0, 2, (1,), generator=generator).item() else -1.0
    phases = [(beta, 1.0)]
    if sched.estimator == "symmetric":
        phases = [(beta, 0.5), (-beta, 0.5)]
    total: dict[str, torch.Tensor] = {}
    s = free
    for i, (b, weight) in enumerate(phases):
        if i > 0:
            s = net.relax(net.clamp(x), s, sched.T2)  # come back towards the (moved) free fixed point
        for t in range(sched.T2):
            clamped = net.clamp(x)  # W_0 may have moved since the last step
            s_next = net.relax(clamped, s, 1, b, target)
            # the phase starts from a free state: its first step also carries the jump Φ_0 → Φ_β
            d = net.phi_delta(clamped, s, 0.0 if t == 0 else b, s_next, b, weight / b, target, s_pre=s)
            for k, v in d.items():
                total[k] = total[k] + v if k in total else v.clone()
            if on_update is not None:
                on_update(d)
            if optimizer is not None:
                apply_update(net, d, optimizer)
            s = s_next
    return StepResult(total, free, logits, (0.0, beta))
