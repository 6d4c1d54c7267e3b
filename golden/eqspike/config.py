"""Configuration of a float EqSpike run (serialisable, validated on construction; docs/eqspike.md)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from spec.checks import per_connection_floats as _floats
from spec.checks import positive_int as _positive_int
from spec.checks import positive_ints as _ints

from ..train import DATASETS

ENCODERS = ("sigma-delta", "stochastic")
ENCODER_PHASES = ("zero", "random")
ESTIMATORS = ("one-sided", "random-sign", "symmetric")
UPDATES = ("spike", "ternary")
OPTIMIZERS = ("sgd", "adam")
LR_DECAYS = ("none", "cosine")
DTYPES = ("float32", "float64")


@dataclass
class EqSpikeConfig:
    """Everything that defines an EqSpike run (``python -m golden.eqspike train --help`` documents each).

    ``eps_shift``/``trace_shift`` give the neuron's step ε = 2^-eps_shift and the trace's low-pass
    constant λ = 2^-trace_shift: powers of two, so the fixed-point twin shifts instead of multiplying.
    """

    layers: tuple[int, ...] = (784, 500, 10)
    init_scale: tuple[float, ...] = (1.0,)
    encoder: str = "sigma-delta"
    encoder_phase: str = "zero"
    eps_shift: int = 2
    trace_shift: int = 3
    trace_stages: int = 2
    update: str = "spike"
    theta: float = 0.01
    dataset: str = "mnist"
    data_dir: str | None = None
    T1: int = 64
    T2: int = 32
    beta: float = 0.5
    estimator: str = "symmetric"
    optimizer: str = "sgd"
    lrs: tuple[float, ...] = (0.05,)
    momentum: float = 0.0
    lr_decay: str = "none"
    lr_decay_epochs: int | None = None
    lr_min: float = 1e-5
    batch_size: int = 50
    epochs: int = 1
    seed: int = 0
    T_eval: int | None = None
    eval_batch_size: int = 500
    train_limit: int | None = None
    test_limit: int | None = None
    dtype: str = "float32"

    def __post_init__(self) -> None:
        self.layers = _ints("layers", self.layers)
        if len(self.layers) < 2:
            raise ValueError(f"layers must list the input and at least one more layer, not {list(self.layers)}")
        n = len(self.layers) - 1
        self.init_scale = _floats("init_scale", self.init_scale, n, positive=True)
        self.lrs = _floats("lrs", self.lrs, n, positive=True)
        for name, allowed in (("encoder", ENCODERS), ("encoder_phase", ENCODER_PHASES), ("update", UPDATES),
                              ("estimator", ESTIMATORS), ("optimizer", OPTIMIZERS), ("lr_decay", LR_DECAYS),
                              ("dtype", DTYPES), ("dataset", DATASETS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {getattr(self, name)!r}")
        if self.dataset == "cifar10":
            raise ValueError("dataset 'cifar10' is not supported by EqSpike MLPs (28×28 grey images only)")
        if self.layers[0] != 784 or self.layers[-1] != 10:
            raise ValueError(f"layers must start with 784 inputs and end with 10 classes for {self.dataset!r}, "
                             f"not {list(self.layers)}")
        for name in ("T1", "T2", "batch_size", "epochs", "eval_batch_size"):
            _positive_int(name, getattr(self, name))
        for name in ("T_eval", "train_limit", "test_limit", "lr_decay_epochs"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        for name, hi in (("eps_shift", 8), ("trace_shift", 10)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
                raise ValueError(f"{name} must be an integer in [0, {hi}] (a power-of-two constant 2^-{name}), "
                                 f"not {v!r}")
        if self.trace_stages not in (1, 2) or isinstance(self.trace_stages, bool):
            raise ValueError(f"trace_stages must be 1 or 2, not {self.trace_stages!r}")
        _finite_positive("beta", self.beta)
        _finite_positive("theta", self.theta)
        _finite_positive("lr_min", self.lr_min, allow_zero=True)
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), not {self.momentum!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")

    # --- derived --------------------------------------------------------------------------------
    @property
    def eps(self) -> float:
        return 2.0 ** -self.eps_shift

    @property
    def lam(self) -> float:
        return 2.0 ** -self.trace_shift

    @property
    def n_connections(self) -> int:
        return len(self.layers) - 1

    def per_layer(self, values: tuple[float, ...]) -> tuple[float, ...]:
        return values * self.n_connections if len(values) == 1 else values

    @property
    def steps_per_sample(self) -> int:
        return self.T1 + (2 if self.estimator == "symmetric" else 1) * self.T2

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EqSpikeConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown EqSpike options {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _finite_positive(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (value > 0 or (allow_zero and value == 0)):
        what = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {what} number, not {value!r}")
