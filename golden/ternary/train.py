"""Training of ternary/binary-weight EP MLPs: configuration, the epoch loop, checkpoints, evaluation.

The loop is :func:`golden.train.run_epochs` (shared with float EP and EqSpike, data-parallel included),
with its reproducibility rules: every random choice of
epoch ``e`` comes from generators seeded by ``(seed, e)`` (:func:`golden.train.epoch_generator`:
stream 0 shuffles, stream 3 draws the training read errors, stream 4 the per-epoch evaluation
under errors), and a checkpoint after each epoch holds model and optimiser state, so ``--resume``
continues bit-identically.

Error-aware training (``train_error_rate > 0``) reads the weights with errors during training:
``dynamic`` (default) redraws at every read as :mod:`golden.ternary.errors` describes; ``static``
draws one faulty matrix per mini-batch (the weights are re-programmed after every update).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from spec.checks import choice as _choice
from spec.checks import per_connection_floats as _per_layer_floats
from spec.checks import positive_int as _positive_int
from spec.checks import positive_ints as _positive_ints

from ..ep.estimators import EPSchedule
from ..train import DATASETS, epoch_generator, run_epochs
from .errors import check_mode, check_rate
from .network import TernaryEPNet, ep_step, predict
from .ternarize import KINDS, check_alpha_shift, check_delta

CHECKPOINT_FORMAT = "epforge-ternary-checkpoint/1"
OPTIMIZERS = ("sgd", "adam")
LR_DECAYS = ("none", "cosine")
# Default α_l = 2^-a_l, chosen by experiment for hard-sigmoid states in [0, 1] (docs/ternary.md):
# about 2^-round(log2 √fan_in) — the 784-500-10 net gets (5, 4).
ALPHA_SHIFT_784_500_10 = (5, 4)


def default_alpha_shift(layers: tuple[int, ...]) -> tuple[int, ...]:
    if tuple(layers) == (784, 500, 10):
        return ALPHA_SHIFT_784_500_10
    return tuple(max(0, round(math.log2(math.sqrt(n)))) for n in layers[:-1])


@dataclass
class TernaryConfig:
    """Everything that defines a run (``python -m golden.ternary train --help`` documents each)."""

    layers: tuple[int, ...] = (784, 500, 10)
    kind: str = "ternary"
    delta: float = 0.05
    alpha_shift: tuple[int, ...] | None = None
    init_scale: tuple[float, ...] = (0.1,)
    latent_clip: float = 1.0
    dataset: str = "mnist"
    data_dir: str | None = None
    T1: int = 30
    T2: int = 10
    beta: float = 0.5
    optimizer: str = "adam"
    lrs: tuple[float, ...] = (1e-3,)
    momentum: float = 0.0
    lr_decay: str = "cosine"
    lr_decay_epochs: int | None = None
    lr_min: float = 1e-6
    batch_size: int = 50
    epochs: int = 1
    seed: int = 0
    T_eval: int | None = None
    eval_batch_size: int = 500
    train_limit: int | None = None
    test_limit: int | None = None
    dtype: str = "float32"
    train_error_rate: float = 0.0
    train_error_mode: str = "dynamic"

    def __post_init__(self) -> None:
        for name in ("delta", "latent_clip", "beta", "momentum", "lr_min", "train_error_rate"):
            v = getattr(self, name)
            if isinstance(v, (bool, str)) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, not {v!r}")
        self.layers = _positive_ints("layers", self.layers)
        if len(self.layers) < 2:
            raise ValueError(f"layers must list the input and at least one more layer, not {list(self.layers)}")
        from ..clierr import check_memory

        # latent weights, their gradients, the optimiser's state: refused before allocating
        n_weights = sum(a * b for a, b in zip(self.layers[:-1], self.layers[1:], strict=True))
        check_memory(f"layers {list(self.layers)}", n_weights, 4, copies=4)
        n = len(self.layers) - 1
        _choice("kind", self.kind, KINDS)
        self.delta = check_delta(self.delta)
        if self.alpha_shift is None:
            self.alpha_shift = default_alpha_shift(self.layers)
        self.alpha_shift = check_alpha_shift(self.alpha_shift, n)
        self.init_scale = _per_layer_floats("init_scale", self.init_scale, n)
        for v in self.init_scale:
            if not v > 0:
                raise ValueError(f"init_scale entries must be positive, not {v!r}")
        if not (isinstance(self.latent_clip, (int, float)) and self.latent_clip > 0):
            raise ValueError(f"latent_clip must be a positive number, not {self.latent_clip!r}")
        if self.kind == "ternary" and self.latent_clip <= self.delta:
            raise ValueError(
                f"latent_clip ({self.latent_clip}) must exceed delta ({self.delta}): no weight could leave 0"
            )
        _choice("dataset", self.dataset, DATASETS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_decay", self.lr_decay, LR_DECAYS)
        _choice("dtype", self.dtype, ("float32", "float64"))
        EPSchedule(self.T1, self.T2, self.beta, "symmetric")  # validates T1, T2, beta
        for name in ("batch_size", "epochs", "eval_batch_size"):
            _positive_int(name, getattr(self, name))
        for name in ("T_eval", "train_limit", "test_limit", "lr_decay_epochs"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")
        self.lrs = _per_layer_floats("lrs", self.lrs, n)
        for v in self.lrs:
            if not v > 0:
                raise ValueError(f"lrs entries must be positive, not {v!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), not {self.momentum!r}")
        self.train_error_rate = check_rate(self.train_error_rate)
        check_mode(self.train_error_mode)
        if self.layers[0] != 784 or self.layers[-1] != 10:
            raise ValueError(
                f"layers must start with 784 inputs and end with 10 classes for {self.dataset!r}, "
                f"not {list(self.layers)}"
            )

    def per_layer(self, values: tuple[float, ...]) -> tuple[float, ...]:
        return values * (len(self.layers) - 1) if len(values) == 1 else values

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TernaryConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# ----------------------------------------------------------------------------------------------
def build(cfg: TernaryConfig):
    net = TernaryEPNet(
        cfg.layers, cfg.kind, cfg.delta, cfg.alpha_shift, cfg.init_scale, cfg.latent_clip, cfg.seed, cfg.torch_dtype
    )
    groups = [
        {"params": [getattr(net, f"w{l}"), getattr(net, f"b{l}")], "lr": lr}
        for l, lr in enumerate(cfg.per_layer(cfg.lrs))
    ]
    opt = torch.optim.SGD(groups, momentum=cfg.momentum) if cfg.optimizer == "sgd" else torch.optim.Adam(groups)
    sched = None
    if cfg.lr_decay == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.lr_decay_epochs or cfg.epochs, eta_min=cfg.lr_min)
    return net, opt, sched


def flat_inputs(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).to(dtype)


@torch.no_grad()
def evaluate(
    net: TernaryEPNet,
    x: torch.Tensor,
    y: torch.Tensor,
    T: int,
    batch_size: int = 500,
    p: float = 0.0,
    mode: str = "static",
    seed: int = 0,
    progress: bool = False,
) -> float:
    """Test accuracy (fraction): program the net once (static errors drawn here), free phase of ``T``."""
    gen = torch.Generator().manual_seed(int(seed))
    stored = net.program(p, mode, gen, block=T)
    pred = predict(stored, net.biases(), flat_inputs(x, net.dtype), T, batch_size, progress)
    return (pred == y).float().mean().item() if len(y) else 0.0


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A ternary checkpoint (a file or a run directory); empty, truncated or foreign files are refused."""
    from ..train import load_checkpoint as load

    return load(path, map_location="cpu", fmt=CHECKPOINT_FORMAT)


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[TernaryEPNet, TernaryConfig]:
    cfg = TernaryConfig.from_dict(ckpt["config"])
    net, _, _ = build(cfg)
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"the checkpoint's weights do not fit its configuration: {str(e).splitlines()[0]}") from None
    for name, p in net.named_parameters():
        if not torch.isfinite(p).all():
            raise ValueError(f"the checkpoint's parameter {name} holds NaN or inf values (the training diverged)")
    return net, cfg


def train(
    cfg: TernaryConfig,
    out: Path,
    *,
    resume: bool = False,
    device: str = "cpu",
    progress: bool | None = None,
    stop_after: int | None = None,
    log=print,
) -> dict[str, Any]:
    """Train, writing ``checkpoint.pt`` (every epoch), ``config.json``, ``metrics.json`` and ``training.png``.

    ``resume`` continues from ``out/checkpoint.pt`` (same configuration except epochs and paths);
    ``stop_after`` ends this invocation after that many epochs (a planned interruption). The loop is
    :func:`golden.train.run_epochs`, data-parallel in a process group (the update all-reduced, the
    read errors of each sample those it gets in one process: :class:`golden.ternary.errors.StoredWeights`
    ``rows``). The ternary net trains on the CPU only (``device`` must be ``cpu``).
    """
    from .. import distributed as D
    from ..device import resolve_device

    if resolve_device(device).type != "cpu":
        raise ValueError(f"--device {device}: the ternary trainer runs on the CPU only")
    net, opt, sched = build(cfg)
    T_eval = cfg.T_eval or cfg.T1
    p, mode = cfg.train_error_rate, cfg.train_error_mode
    block = cfg.T1 + 2 * cfg.T2

    def train_step(xb, yb, gen):
        xb = flat_inputs(xb, net.dtype)
        # stream 3: the training read errors (static: one faulty matrix per mini-batch, the same on every
        # rank; dynamic: drawn for the global batch, this rank keeping its samples' reads)
        stored = net.program(p, mode, gen(3), block=block, rows=D.batch_rows(len(xb)))
        update, out_states = ep_step(net, stored, xb, yb, cfg.T1, cfg.T2, cfg.beta)
        net.apply_update(D.allreduce_update(update), opt)
        return out_states.argmax(1)

    def test(test_set, progress, epoch):
        x_test = flat_inputs(test_set.x, net.dtype)
        rec = {"test_acc": evaluate(net, x_test, test_set.y, T_eval, cfg.eval_batch_size, progress=progress)}
        if p > 0:
            seed = int(epoch_generator(cfg.seed, epoch, 4).initial_seed())
            rec["test_acc_with_errors"] = evaluate(
                net, x_test, test_set.y, T_eval, cfg.eval_batch_size, p, mode, seed, progress
            )
        return rec

    errs = f", train errors p = {p:g} {mode}" if p else ""
    return run_epochs(
        cfg, out, fmt=CHECKPOINT_FORMAT, net=net, opt=opt, sched=sched, train_step=train_step, test=test,
        resume=resume, progress=progress, stop_after=stop_after, log=log,
        load_checkpoint_fn=lambda path, map_location=None: load_checkpoint(path),
        epoch_extra=lambda: {"zero_fraction": [float((t == 0).float().mean()) for t in net.stored_values()]},
        epoch_note=lambda rec: (f"  with errors {100 * rec['test_acc_with_errors']:.2f}%"
                                if "test_acc_with_errors" in rec else ""),
        describe=lambda n_train, n_test: (
            f"training {cfg.kind} {'-'.join(map(str, cfg.layers))} (alpha = 2^-{list(cfg.alpha_shift)}) on "
            f"{cfg.dataset} ({n_train} train, {n_test} test), read errors p = {p:g} ({mode}), "
            f"{torch.get_num_threads()} threads"),
        title=f"{cfg.kind} {'-'.join(map(str, cfg.layers))} EP on {cfg.dataset}{errs}",
    )
