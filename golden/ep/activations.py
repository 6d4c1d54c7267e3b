"""Neuron activations used by discrete-time EP (ALGORITHMS.md §1).

All of them map the pre-activation ∂Φ/∂s to the new state. The hard-sigmoid family is what the
fixed-point hardware implements (a clip), the smooth ones are the float references.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Activation = Callable[[torch.Tensor], torch.Tensor]


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """clamp(x, 0, 1): Ernoult's and Laborieux's ``hard_sigmoid``; the hardware's clip."""
    return x.clamp(0.0, 1.0)


def my_hard_sig(x: torch.Tensor) -> torch.Tensor:
    """clamp(x/2, 0, 1): Laborieux's CIFAR-10 activation."""
    return (0.5 * x).clamp(0.0, 1.0)


def my_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-4 (x - 0.5))): Laborieux's MLP activation (slope 1 at x = 0.5, like the clip)."""
    return torch.sigmoid(4.0 * x - 2.0)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x)


def ctrd_hard_sig(x: torch.Tensor) -> torch.Tensor:
    """clamp(x, -1/2, 1/2): the centred hard sigmoid of the reference code."""
    return x.clamp(-0.5, 0.5)


ACTIVATIONS: dict[str, Activation] = {
    "hard_sigmoid": hard_sigmoid,
    "my_hard_sig": my_hard_sig,
    "my_sigmoid": my_sigmoid,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "ctrd_hard_sig": ctrd_hard_sig,
}


@dataclass(frozen=True)
class AffineActivation:
    """ρ(x) = g(a·x + c) with a cheap elementwise ``g``.

    The relaxation folds ``a`` and ``c`` into its matrix products and per-phase constants
    (``addmm(..., alpha=a)``), so a step costs its products plus one elementwise ``g``.
    """

    scale: float
    offset: float
    inner: str  # "sigmoid" | "clip01" | "tanh" | "clip_half"

    def apply(self, t: torch.Tensor, inplace: bool) -> torch.Tensor:
        """g(t), in place when allowed (no autograd graph to keep)."""
        if self.inner == "sigmoid":
            return t.sigmoid_() if inplace else t.sigmoid()
        if self.inner == "tanh":
            return t.tanh_() if inplace else t.tanh()
        lo, hi = (0.0, 1.0) if self.inner == "clip01" else (-0.5, 0.5)
        return t.clamp_(lo, hi) if inplace else t.clamp(lo, hi)


AFFINE: dict[str, AffineActivation] = {
    "hard_sigmoid": AffineActivation(1.0, 0.0, "clip01"),
    "my_hard_sig": AffineActivation(0.5, 0.0, "clip01"),
    "my_sigmoid": AffineActivation(4.0, -2.0, "sigmoid"),
    "sigmoid": AffineActivation(1.0, 0.0, "sigmoid"),
    "tanh": AffineActivation(1.0, 0.0, "tanh"),
    "ctrd_hard_sig": AffineActivation(1.0, 0.0, "clip_half"),
}


def get_activation(name: str) -> Activation:
    """Look an activation up by name, with an error that lists the allowed names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {name!r}") from None


def get_affine(name: str) -> AffineActivation:
    get_activation(name)
    return AFFINE[name]
