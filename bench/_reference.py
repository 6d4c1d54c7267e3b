"""Loading and driving the reference EP code (Laborieux et al.) for side-by-side benchmarks.

The reference is *not* part of epforge and none of its code is copied here: the benches import
its ``model_utils.py`` from a directory the user supplies (a clone of
https://github.com/Laborieux-Axel/Equilibrium-Propagation) and call its own ``train()`` and
``evaluate()`` functions, exactly as its training script ``main.py`` does.

``model_utils.py`` does ``import torchvision`` but uses it only to build data sets; when
torchvision is not installed an empty stub module takes its place.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import torch

ENV = "EPFORGE_REFERENCE"
URL = "https://github.com/Laborieux-Axel/Equilibrium-Propagation"


def resolve(path: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The reference directory from ``path`` or ``$EPFORGE_REFERENCE``; ``(None, why)`` when unusable."""
    if path is None or str(path) == "":
        env = os.environ.get(ENV)
        if not env:
            return None, f"no reference given (--reference PATH or ${ENV}; clone {URL})"
        path = env
    p = Path(path).expanduser().resolve()
    if not (p / "model_utils.py").is_file():
        return None, f"reference not found: {p} has no model_utils.py (clone {URL})"
    return p, f"reference code from {p}"


def load(path: Path) -> types.ModuleType:
    """Import the reference's ``model_utils`` (and its ``data_utils``) from ``path``."""
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        sys.modules["torchvision"] = types.ModuleType("torchvision")  # only its data sets use it
    name = "epforge_reference_model_utils"
    if name in sys.modules:
        mod = sys.modules[name]
        if Path(mod.__file__).resolve() == (path / "model_utils.py").resolve():
            return mod
        del sys.modules[name]
    sys.modules.pop("data_utils", None)
    sys.path.insert(0, str(path))
    try:
        spec = importlib.util.spec_from_file_location(name, path / "model_utils.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    finally:
        sys.path.remove(str(path))
    return mod


def commit_of(path: Path) -> str | None:
    """The git commit of a reference clone, when it is one (read without running git)."""
    head = path / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (path / ".git" / ref[5:]).read_text().strip()
        return ref
    except OSError:
        return None


class _Dataset(torch.utils.data.TensorDataset):
    train = True  # the reference's evaluate() reads loader.dataset.train to label its print-out


def loader(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(_Dataset(x, y), batch_size=batch_size, shuffle=shuffle)


def build(mu: types.ModuleType, kind: str) -> tuple[torch.nn.Module, list[float], int, int, tuple[float, float]]:
    """The reference's MNIST models as its check scripts configure them: (model, lrs, T1, T2, betas)."""
    if kind == "mlp":  # check/train_mnist.sh
        return mu.P_MLP([784, 512, 10], activation=mu.my_sigmoid), [5e-4, 5e-4], 30, 10, (0.0, 0.1)
    if kind == "conv":  # check/train_mnist_cnn.sh
        model = mu.P_CNN(28, [1, 32, 64], [5, 5], [1, 1], [10], mu.make_pools("mm"), [0, 0],
                         activation=mu.hard_sigmoid)
        return model, [5e-5, 1e-5, 8e-6], 200, 10, (0.0, 0.4)
    raise ValueError(f"unknown reference model {kind!r}")


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def time_training(mu: types.ModuleType, kind: str, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                  symmetric: bool, seed: int = 0) -> dict[str, Any]:
    """Samples/s of the reference's own ``train()`` for one epoch over ``(x, y)``.

    ``train()`` ends its epoch with an evaluation on the test loader (here one batch); that
    evaluation is timed separately and subtracted. Its progress print-out is swallowed.
    """
    n_batches = math.ceil(len(x) / batch_size)
    if n_batches < 10:
        raise ValueError(f"the reference's train() needs at least 10 batches, not {n_batches}")
    torch.manual_seed(seed)
    model, lrs, T1, T2, betas = build(mu, kind)
    opt = torch.optim.Adam([{"params": s.parameters(), "lr": lr} for s, lr in zip(model.synapses, lrs, strict=True)])
    train_loader = loader(x, y, batch_size, shuffle=True)
    test_loader = loader(x[:batch_size], y[:batch_size], batch_size, shuffle=False)
    criterion = torch.nn.MSELoss(reduction="none")
    with _quiet():
        mu.evaluate(model, test_loader, T1, "cpu")  # warm-up (free phase at this batch size)
        t0 = time.perf_counter()
        mu.evaluate(model, test_loader, T1, "cpu")
        eval_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        mu.train(model, opt, train_loader, test_loader, T1, T2, betas, "cpu", 1, criterion, thirdphase=symmetric)
        total_s = time.perf_counter() - t0
    train_s = total_s - eval_s
    return {"samples": len(x), "batches": n_batches, "seconds": train_s, "samples_per_s": len(x) / train_s,
            "train_call_seconds": total_s, "subtracted_eval_seconds": eval_s}


def time_inference(mu: types.ModuleType, kind: str, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                   seed: int = 0) -> dict[str, Any]:
    """Samples/s of the reference's ``evaluate()`` (free phase of T1 steps + argmax)."""
    torch.manual_seed(seed)
    model, _, T1, _, _ = build(mu, kind)
    with _quiet():
        mu.evaluate(model, loader(x[:batch_size], y[:batch_size], batch_size, shuffle=False), T1, "cpu")  # warm-up
        t0 = time.perf_counter()
        mu.evaluate(model, loader(x, y, batch_size, shuffle=False), T1, "cpu")
        sec = time.perf_counter() - t0
    return {"samples": len(x), "batches": math.ceil(len(x) / batch_size), "seconds": sec,
            "samples_per_s": len(x) / sec}
