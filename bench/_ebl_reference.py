"""Loading and driving the energy-based-learning library (Scellier et al., NeurIPS 2023) for benchmarks.

The library is *not* part of epforge and none of its code is copied here: the benches import its
packages (``model``, ``training``) from a directory the user supplies (a clone of
https://github.com/rain-neuromorphics/energy-based-learning) and drive its own objects
(``DeepHopfieldEnergy`` / ``ConvHopfieldEnergy28``, ``FixedPointMinimizer``, ``EquilibriumProp``
with the centred estimator, its SGD ``Optimizer`` and its ``Trainer.run()``) as its paper scripts do.

Its ``training/monitor.py`` imports ``torch.utils.tensorboard`` (only for its ``Monitor``, not
used here) and its ``datasets.py`` imports torchvision (not imported here: MNIST comes from our
own loader). When tensorboard / torchvision are not installed, small stub modules take their
place in ``sys.modules`` while the library is imported; the library's files are never touched.

Differences from our EP that a fair comparison must state (see docs/float-ep.md):
  * one "iteration" is an exact layer-wise fixed-point update (each layer set to the minimiser of
    the energy given its neighbours), asynchronous (even layers, then odd layers), not an Euler step;
  * the free phase starts from the previous batch's final state (``set_input(x, reset=False)``);
  * hidden units are hard-sigmoid, the output layer is linear with a squared-error cost;
  * the estimator is centred EP (nudging +beta and -beta, like our ``symmetric``), trained by SGD.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import torch

ENV = "EPFORGE_EBL"
URL = "https://github.com/rain-neuromorphics/energy-based-learning"
_MARKERS = ("model/hopfield/network.py", "model/hopfield/minimizer.py", "training/sgd.py", "training/epoch.py",
            "training/monitor.py")
_PACKAGES = ("model", "training")

# The configurations used here (ours is configured alike in bench/ep_speed.py).
MLP = {"shapes": [(1, 28, 28), (512,), (10,)], "gains": [0.7, 0.7], "T1": 30, "T2": 10, "beta": 0.2,
       "lrs": [0.05, 0.05, 0.05, 0.05], "batch": 50}
CONV = {"T1": 200, "T2": 10, "beta": 0.4, "lrs": [0.05] * 6, "batch": 100}


def resolve(path: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The library directory from ``path`` or ``$EPFORGE_EBL``; ``(None, why)`` when unusable."""
    if path is None or str(path) == "":
        env = os.environ.get(ENV)
        if not env:
            return None, f"no energy-based-learning library given (--ebl PATH or ${ENV}; clone {URL})"
        path = env
    p = Path(path).expanduser().resolve()
    missing = [m for m in _MARKERS if not (p / m).is_file()]
    if missing:
        return None, f"energy-based-learning library not found: {p} has no {missing[0]} (clone {URL})"
    return p, f"energy-based-learning library from {p}"


def _stub_optional_imports() -> None:
    """Stand-ins for tensorboard's SummaryWriter and torchvision when they are not installed."""
    try:
        importlib.import_module("torch.utils.tensorboard")
    except Exception:
        tb = types.ModuleType("torch.utils.tensorboard")

        class SummaryWriter:  # only the library's Monitor (not used here) creates one
            def __init__(self, *a, **k):
                raise RuntimeError("tensorboard is not installed (stub from bench/_ebl_reference.py)")

        tb.SummaryWriter = SummaryWriter
        sys.modules["torch.utils.tensorboard"] = tb
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        sys.modules["torchvision"] = types.ModuleType("torchvision")


def load(path: Path) -> types.SimpleNamespace:
    """Import the library's modules from ``path``; returns them as attributes of a namespace."""
    _stub_optional_imports()
    for name in list(sys.modules):  # a previously imported 'model'/'training' (another path) must not shadow it
        if name.split(".")[0] in _PACKAGES:
            mod = sys.modules[name]
            f = getattr(mod, "__file__", None) or next(iter(getattr(mod, "__path__", [])), "")
            if not str(f).startswith(str(path)):
                del sys.modules[name]
    sys.path.insert(0, str(path))
    try:
        ns = types.SimpleNamespace(
            path=path,
            network=importlib.import_module("model.hopfield.network"),
            minimizer=importlib.import_module("model.hopfield.minimizer"),
            function_network=importlib.import_module("model.function.network"),
            cost=importlib.import_module("model.function.cost"),
            sgd=importlib.import_module("training.sgd"),
            epoch=importlib.import_module("training.epoch"),
            monitor=importlib.import_module("training.monitor"),
        )
    finally:
        sys.path.remove(str(path))
    return ns


def build(lib: types.SimpleNamespace, kind: str, T1: int | None = None, T2: int | None = None,
          beta: float | None = None, mode: str = "asynchronous") -> types.SimpleNamespace:
    """The library's network, cost, minimisers, centred-EP estimator and SGD optimizer (as its paper scripts)."""
    p = MLP if kind == "mlp" else CONV
    if kind == "mlp":
        energy_fn = lib.network.DeepHopfieldEnergy(p["shapes"], p["gains"])
    elif kind == "conv":
        energy_fn = lib.network.ConvHopfieldEnergy28()
    else:
        raise ValueError(f"unknown library model {kind!r}")
    energy_fn.set_device("cpu")
    cost_fn = lib.cost.SquaredError(energy_fn.layers()[-1])
    network = lib.function_network.Network(energy_fn)
    free_layers = network.free_layers()
    augmented = lib.sgd.AugmentedFunction(energy_fn, cost_fn)
    train_min = lib.minimizer.FixedPointMinimizer(augmented, free_layers)
    train_min.mode = mode
    train_min.num_iterations = T2 if T2 is not None else p["T2"]
    estimator = lib.sgd.EquilibriumProp(energy_fn.params(), energy_fn.layers(), augmented, cost_fn, train_min)
    estimator.variant = "centered"
    estimator.nudging = beta if beta is not None else p["beta"]
    optimizer = lib.monitor.Optimizer(energy_fn, cost_fn, p["lrs"], 0.0, 0.0)
    infer_min = lib.minimizer.FixedPointMinimizer(energy_fn, free_layers)
    infer_min.mode = mode
    infer_min.num_iterations = T1 if T1 is not None else p["T1"]
    return types.SimpleNamespace(energy_fn=energy_fn, cost_fn=cost_fn, network=network, estimator=estimator,
                                 optimizer=optimizer, infer_min=infer_min, params=energy_fn.params(), kind=kind)


class _ErrorCount:
    """A statistic in the library's Epoch protocol (reset / do_measurement / display) counting errors."""

    display = False

    def __init__(self, cost_fn):
        self.cost_fn, self.errors, self.n = cost_fn, 0, 0

    def reset(self):
        self.errors, self.n = 0, 0

    def do_measurement(self):
        e = self.cost_fn.error_fn()
        self.errors += int(e.sum().item())
        self.n += e.numel()


def _loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size,
                                       shuffle=shuffle, generator=gen, drop_last=False)


def time_training(lib: types.SimpleNamespace, kind: str, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                  seed: int = 0, T1: int | None = None, T2: int | None = None, beta: float | None = None,
                  warmup_batches: int = 2, model: types.SimpleNamespace | None = None) -> dict[str, Any]:
    """Samples/s of the library's own ``Trainer.run()`` for one epoch over ``(x, y)`` (after warm-up batches)."""
    torch.manual_seed(seed)
    m = model or build(lib, kind, T1, T2, beta)
    if warmup_batches:
        w = min(len(x), warmup_batches * batch_size)
        lib.epoch.Trainer(m.network, m.cost_fn, m.params, _loader(x[:w], y[:w], batch_size, False, seed),
                          m.estimator, m.optimizer, m.infer_min).run()
    trainer = lib.epoch.Trainer(m.network, m.cost_fn, m.params, _loader(x, y, batch_size, True, seed),
                                m.estimator, m.optimizer, m.infer_min)
    stat = _ErrorCount(m.cost_fn)
    trainer.add_statistic(stat, 0)
    t0 = time.perf_counter()
    trainer.run()
    sec = time.perf_counter() - t0
    return {"samples": len(x), "batches": math.ceil(len(x) / batch_size), "seconds": sec,
            "samples_per_s": len(x) / sec, "running_train_acc": 1.0 - stat.errors / max(stat.n, 1),
            "T1": m.infer_min.num_iterations, "T2_each_nudged_phase": m.estimator._energy_minimizer.num_iterations
            if hasattr(m.estimator, "_energy_minimizer") else None,
            "beta": m.estimator.nudging, "estimator": "centered", "mode": m.infer_min.mode}


def evaluate(lib: types.SimpleNamespace, m: types.SimpleNamespace, x: torch.Tensor, y: torch.Tensor,
             batch_size: int) -> float:
    """Accuracy of the library's free phase (fresh state per batch, as its Evaluator) on ``(x, y)``."""
    errors = 0
    for xb, yb in _loader(x, y, batch_size, False, 0):
        m.network.set_input(xb, reset=True)
        m.infer_min.compute_equilibrium()
        m.cost_fn.set_target(yb)
        errors += int(m.cost_fn.error_fn().sum().item())
    return 1.0 - errors / len(x)
