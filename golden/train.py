"""Training of float EP networks: configuration, data preparation, the epoch loop, checkpoints.

Reproducibility: every random choice of epoch ``e`` (shuffling, β signs, augmentation) comes from
generators seeded by ``(seed, e)``, and a checkpoint holds the model, optimiser and scheduler
state after each epoch; so ``--resume`` continues bit-identically to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spec.checks import choice as _choice
from spec.checks import positive_int as _positive_int

from .device import resolve_device
from .ep.config import NetSpec
from .ep.estimators import ESTIMATORS, EPSchedule, apply_update, cep_step, ep_step
from .ep.network import EPNet
from .fileio import atomic_write_bytes, claim_output_dir, only

ALGS = ("ep", "cep", "bptt")
OPTIMIZERS = ("sgd", "adam")
LR_DECAYS = ("none", "cosine")
DATASETS = ("mnist", "fashion-mnist", "cifar10", "mnist-subset")
CHECKPOINT_FORMAT = "epforge-checkpoint/1"
# Laborieux et al.'s CIFAR-10 normalisation: per-channel mean and 3× the standard deviation.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD3 = (3 * 0.2023, 3 * 0.1994, 3 * 0.2010)


@dataclass
class TrainConfig:
    """Everything that defines a training run (``python -m golden train --help`` documents each)."""

    net: NetSpec = field(default_factory=NetSpec)
    dataset: str = "mnist"
    data_dir: str | None = None
    alg: str = "ep"
    T1: int = 30
    T2: int = 10
    beta: float = 0.1
    estimator: str = "symmetric"
    settle_tol: float | None = None
    optimizer: str = "sgd"
    lrs: tuple[float, ...] | None = None  # None: default_lrs(net's weight layers)
    momentum: float = 0.0
    weight_decay: tuple[float, ...] = (0.0,)
    lr_decay: str = "none"
    lr_decay_epochs: int | None = None
    lr_min: float = 1e-5
    batch_size: int = 50
    epochs: int = 1
    seed: int = 0
    T_eval: int | None = None
    eval_batch_size: int = 500
    data_aug: bool = False
    train_limit: int | None = None
    test_limit: int | None = None
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.net, NetSpec):
            self.net = NetSpec.from_dict(self.net)
        if self.lrs is None:
            self.lrs = default_lrs(self.net.n_connections)
        self.lrs = tuple(_real(f"lrs[{i}]", v) for i, v in enumerate(_as_seq(self.lrs)))
        self.weight_decay = tuple(_real(f"weight_decay[{i}]", v) for i, v in enumerate(_as_seq(self.weight_decay)))
        self.beta = _real("beta", self.beta)
        self.momentum = _real("momentum", self.momentum)
        self.lr_min = _real("lr_min", self.lr_min)
        if self.settle_tol is not None:
            self.settle_tol = _real("settle_tol", self.settle_tol)
        if not isinstance(self.data_aug, bool):
            raise ValueError(f"data_aug must be true or false, not {self.data_aug!r}")
        if self.data_dir is not None and not isinstance(self.data_dir, (str, Path)):
            raise ValueError(f"data_dir must be a path (a string), not {self.data_dir!r}")
        _choice("dataset", self.dataset, DATASETS)
        _choice("alg", self.alg, ALGS)
        _choice("estimator", self.estimator, ESTIMATORS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_decay", self.lr_decay, LR_DECAYS)
        _choice("dtype", self.dtype, ("float32", "float64"))
        for name in ("T1", "T2", "batch_size", "epochs", "eval_batch_size"):
            _positive_int(name, getattr(self, name))
        for name in ("T_eval", "train_limit", "test_limit", "lr_decay_epochs"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {self.seed!r}")
        if not self.beta > 0:
            raise ValueError(f"beta must be a positive number, not {self.beta!r}")
        EPSchedule(self.T1, self.T2, self.beta, self.estimator, self.settle_tol)  # validates settle_tol
        if self.T2 > self.T1 and self.alg == "bptt":
            raise ValueError(f"alg='bptt' back-propagates through the last T2 of T1 steps: T2={self.T2} > T1={self.T1}")
        n = self.net.n_connections
        if len(self.lrs) not in (1, n):
            allowed = ("1 entry (one weight layer)" if n == 1 else
                       f"1 or {n} entries (one per weight layer, input side first)")
            raise ValueError(f"lrs must have {allowed}, not {len(self.lrs)}: {list(self.lrs)}")
        if len(self.weight_decay) not in (1, n):
            raise ValueError(f"weight_decay must have 1 or {n} entries, not {len(self.weight_decay)}")
        for v in self.lrs:
            if not v > 0:
                raise ValueError(f"lrs entries must be positive, not {v!r}")
        for v in self.weight_decay:
            if v < 0:
                raise ValueError(f"weight_decay entries must be non-negative, not {v!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), not {self.momentum!r}")
        if self.data_aug and self.dataset != "cifar10":
            raise ValueError(f"data_aug is for dataset='cifar10' only, not {self.dataset!r}")
        expect = (3, 32, 32) if self.dataset == "cifar10" else (1, 28, 28)
        got = tuple(self.net.in_shape)
        if (self.net.kind == "mlp" and got != (math.prod(expect),)) or (self.net.kind == "conv" and got != expect):
            raise ValueError(f"the network's input {got} does not fit dataset {self.dataset!r} "
                             f"(images of shape {expect})")
        if self.net.n_classes != 10:
            raise ValueError(f"dataset {self.dataset!r} has 10 classes; the network has {self.net.n_classes}")

    @property
    def schedule(self) -> EPSchedule:
        return EPSchedule(self.T1, self.T2, self.beta, self.estimator, self.settle_tol)

    def per_layer(self, values: tuple[float, ...]) -> tuple[float, ...]:
        return values * self.net.n_connections if len(values) == 1 else values

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["net"] = self.net.to_dict()
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**d)


def default_lrs(n_connections: int) -> tuple[float, ...]:
    """The default learning rates of a net with ``n_connections`` weight layers, input side first:
    0.05 for the input connection, halved at each layer above (0.05, 0.025 for one hidden layer;
    0.05, 0.025, 0.0125 for two). Lower layers get the larger rates because EP's (like BPTT's)
    updates shrink towards the input."""
    return tuple(0.05 * 0.5**i for i in range(n_connections))


def _real(name: str, value: Any) -> float:
    """A finite real number (int or float, not a bool or a string): refused where it enters."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _as_seq(v):
    return v if isinstance(v, (list, tuple)) else (v,)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
@dataclass
class Split:
    x: torch.Tensor  # float, preprocessed, (N, C, H, W)
    y: torch.Tensor  # int64
    source: str


def preprocess(dataset: str, images) -> torch.Tensor:
    """uint8 (N, C, H, W) → float32 network input: pixel/255 (MNIST-like) or normalised CIFAR-10."""
    x = torch.from_numpy(images).to(torch.float32).div_(255.0)
    if dataset == "cifar10":
        mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR_STD3).view(1, 3, 1, 1)
        x = (x - mean) / std
    return x


def load_split(cfg: TrainConfig, split: str) -> Split:
    from .data import load_dataset

    ds = load_dataset(cfg.dataset, split, data_dir=cfg.data_dir)
    limit = cfg.train_limit if split == "train" else cfg.test_limit
    images, labels = ds.images, ds.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return Split(preprocess(cfg.dataset, images), torch.from_numpy(labels).long(), ds.source)


def augment(x: torch.Tensor, gen: torch.Generator, rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Random horizontal flip and random 32×32 crop of the edge-padded (4 px) image.

    ``rows = (lo, total)``: ``x`` is rows lo… of a global batch of ``total`` split over processes
    (:func:`golden.distributed.batch_rows`); the draws are the global batch's, so each image gets the
    flip and crop it gets in one process.
    """
    n, _, h, w = x.shape
    lo, total = rows or (0, n)
    flip = (torch.rand(total, generator=gen) < 0.5)[lo:lo + n]
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="replicate")
    dy = torch.randint(0, 9, (total,), generator=gen)[lo:lo + n]
    dx = torch.randint(0, 9, (total,), generator=gen)[lo:lo + n]
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 8)
    cropped = padded.gather(2, rows)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
    return cropped.gather(3, cols)


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """Independent generator per (seed, epoch, purpose): resuming needs no RNG state."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 16 + stream)


# ----------------------------------------------------------------------------------------------
# Model, optimiser, evaluation
# ----------------------------------------------------------------------------------------------
def build(cfg: TrainConfig, device: torch.device):
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    net = EPNet(cfg.net, dtype=dtype, device=device, seed=cfg.seed)
    params = net.params()
    lrs, wds = cfg.per_layer(cfg.lrs), cfg.per_layer(cfg.weight_decay)
    groups = [{"params": [params[n] for n in names], "lr": lr, "weight_decay": wd}
              for names, lr, wd in zip(net.connection_groups(), lrs, wds, strict=True)]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, momentum=cfg.momentum)
    else:
        opt = torch.optim.Adam(groups)
    sched = None
    if cfg.lr_decay == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.lr_decay_epochs or cfg.epochs, eta_min=cfg.lr_min)
    return net, opt, sched


@torch.no_grad()
def evaluate(net: EPNet, x: torch.Tensor, y: torch.Tensor, T: int, batch_size: int = 500,
             progress: bool = False, settle_tol: float | None = None) -> float:
    """Test accuracy (fraction) after a free phase of ``T`` steps (or fewer, see ``settle_tol``)."""
    from tqdm import tqdm

    correct = 0
    for i in tqdm(range(0, len(x), batch_size), desc="eval", leave=False, disable=not progress):
        xb = x[i:i + batch_size]
        states = net.relax(net.clamp(xb), net.init_state(len(xb)), T, settle_tol=settle_tol)
        correct += (net.predict(states).cpu() == y[i:i + batch_size]).sum().item()
    return correct / len(x)


def train_batch(net: EPNet, cfg: TrainConfig, opt, xb, yb, gen) -> torch.Tensor:
    """One mini-batch of the chosen algorithm; returns the free-phase logits."""
    if cfg.alg == "ep":
        from .distributed import allreduce_update

        res = ep_step(net, xb, yb, cfg.schedule, gen)
        apply_update(net, allreduce_update(res.update), opt)
        return res.logits
    if cfg.alg == "cep":
        return cep_step(net, xb, yb, cfg.schedule, opt, gen).logits
    from .ep.bptt import bptt

    traj = bptt(net, xb, yb, cfg.T1, cfg.T2, per_step=False)
    apply_update(net, traj.total, opt)
    with torch.no_grad():
        return net.logits(traj.final)


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------
def atomic_torch_save(obj: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, map_location="cpu", fmt: str = CHECKPOINT_FORMAT) -> dict[str, Any]:
    """Read a checkpoint (a file, or a run directory holding checkpoint.pt); an empty, truncated or
    foreign file is a ValueError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(2, "no such checkpoint file", str(path))
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the checkpoint file is empty")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except (PermissionError, MemoryError):
        raise
    except Exception as e:  # truncated zip (torch reports EINVAL), pickle garbage, ...: a bad file, not a bug
        first = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(f"{path}: not a readable checkpoint ({type(e).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise ValueError(f"{path} is not an epforge checkpoint (format {fmt})")
    for key in ("config", "model", "epoch"):
        if key not in ckpt:
            raise ValueError(f"{path}: the checkpoint has no {key!r} entry")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], device="cpu") -> tuple[EPNet, TrainConfig]:
    cfg = TrainConfig.from_dict(ckpt["config"])
    net, _, _ = build(cfg, torch.device(device))
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"the checkpoint's weights do not fit its configuration: {str(e).splitlines()[0]}") from None
    check_finite_params(net, "the checkpoint")
    return net, cfg


def check_finite_params(net: EPNet, where: str) -> None:
    """Refuse NaN/inf weights (a diverged run): nothing meaningful can be evaluated or exported from them."""
    for name, p in net.named_parameters():
        bad = int((~torch.isfinite(p)).sum())
        if bad:
            raise ValueError(f"{where}: parameter {name} has {bad} of {p.numel()} values that are not finite "
                             "(NaN or inf: the training diverged; lower the learning rates or beta)")


TRAIN_WRITES = ("checkpoint.pt", "config.json", "metrics.json", "training.png")
RESUME_FREE = {"epochs", "data_dir", "eval_batch_size", "lr_decay_epochs"}


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
def train(cfg: TrainConfig, out: Path, *, resume: bool = False, device: str = "auto",
          progress: bool | None = None, stop_after: int | None = None, log=print) -> dict[str, Any]:
    """Train, writing ``checkpoint.pt``, ``metrics.json`` and ``training.png`` into ``out``.

    Returns the final metrics dictionary. With ``resume`` it continues from ``out/checkpoint.pt``
    (the configuration must match, except for the number of epochs and paths). ``stop_after``
    ends this invocation after that many epochs (a planned interruption; resume later).
    """
    dev = resolve_device(device)
    net, opt, sched = build(cfg, dev)
    T_eval = cfg.T_eval or cfg.T1

    def train_step(xb, yb, gen):
        if cfg.data_aug:
            from .distributed import batch_rows

            xb = augment(xb, gen(2), batch_rows(len(xb)))
        return train_batch(net, cfg, opt, xb.to(dev), yb.to(dev), gen(1)).argmax(1)

    def test(test_set, progress, epoch):
        return {"test_acc": evaluate(net, test_set.x, test_set.y, T_eval, cfg.eval_batch_size, progress,
                                     cfg.settle_tol)}

    return run_epochs(cfg, out, fmt=CHECKPOINT_FORMAT, net=net, opt=opt, sched=sched, train_step=train_step,
                      test=test, resume=resume, progress=progress, stop_after=stop_after, log=log,
                      describe=lambda n_train, n_test: (
                          f"training {cfg.net.kind} {cfg.alg}/{cfg.estimator} on {cfg.dataset} ({n_train} train, "
                          f"{n_test} test) on {dev}, {torch.get_num_threads()} threads"),
                      title=f"{cfg.net.kind} {cfg.alg}/{cfg.estimator} on {cfg.dataset}")


def run_epochs(cfg, out: Path, *, fmt: str, net, opt, sched, train_step, test, resume: bool = False,
               progress: bool | None = None, stop_after: int | None = None, log=print, describe=None,
               title: str = "", resume_free=None, epoch_extra=None, load_checkpoint_fn=None,
               epoch_note=None) -> dict[str, Any]:
    """The epoch loop shared by every float trainer (EP, ternary, EqSpike): resume, shuffling, checkpoints,
    metrics, data parallelism.

    ``cfg`` has ``to_dict``, ``seed``, ``epochs``, ``batch_size``, ``lr_decay``, ``lr_decay_epochs`` and
    the data fields :func:`load_split` reads. ``train_step(xb, yb, gen)`` trains on one mini-batch
    (CPU tensors) and returns its predicted labels (any device); ``gen(stream)`` is the epoch's
    generator for that stream (:func:`epoch_generator`; 0 is the shuffle). ``test(test_set, progress, epoch)``
    returns the epoch's evaluation record, with ``test_acc``. ``epoch_extra()`` may add entries to
    the record, ``epoch_note(rec)`` text to the epoch's log line. A checkpoint (format ``fmt``) holds
    ``net``, ``opt`` and ``sched`` after each epoch.

    Data-parallel (a process group of N > 1, :mod:`golden.distributed`): every rank draws the same
    permutation and takes its equal share of each global mini-batch (the remainder of a last, partial
    batch is dropped); ``train_step`` must all-reduce its update (:func:`golden.distributed.allreduce_update`)
    and draw per-sample random numbers for the global batch (:class:`golden.distributed.RowGenerator`).
    Rank 0 alone evaluates and writes; the checkpoint does not depend on N.
    """
    if stop_after is not None:
        _positive_int("stop_after", stop_after)
    from tqdm import tqdm

    from . import distributed as D

    rank, nproc = D.world()
    if nproc > 1:
        D.check_nproc(nproc, cfg.batch_size)
        if getattr(cfg, "alg", "ep") != "ep":
            raise ValueError(f"--nproc {nproc}: data-parallel training supports --alg ep only, not {cfg.alg!r}")

    out = Path(out)
    if progress is None:
        progress = sys.stderr.isatty()
    progress = progress and rank == 0
    if rank != 0:
        log = _silent
    resume_free = RESUME_FREE if resume_free is None else resume_free
    history: list[dict[str, Any]] = []
    start = 0
    ckpt_path = out / "checkpoint.pt"
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        ckpt = (load_checkpoint_fn or load_checkpoint)(ckpt_path, map_location=next(net.parameters()).device)
        old = ckpt["config"]
        new = cfg.to_dict()
        diff = sorted(k for k in new if k not in resume_free and old.get(k) != new[k])
        if diff:
            raise ValueError(f"--resume: the configuration differs from the checkpoint's in {diff}")
        if cfg.lr_decay == "cosine" and cfg.lr_decay_epochs is None and old["epochs"] != cfg.epochs:
            raise ValueError(f"--resume: the cosine schedule's period is --epochs ({old['epochs']} in the checkpoint, "
                             f"{cfg.epochs} now); pass --lr-decay-epochs {old['epochs']} to extend the run")
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if sched is not None and ckpt.get("scheduler") is not None:
            sched.load_state_dict(ckpt["scheduler"])
        history = ckpt["history"]
        start = ckpt["epoch"]
        log(f"resuming {out} at epoch {start}/{cfg.epochs}")
    elif ckpt_path.exists():
        raise FileExistsError(f"{out} already holds a run (checkpoint.pt): pass --resume to continue it, "
                              "or choose another --out")
    if rank == 0:
        try:
            # a directory of someone else's files is refused before any work; ours is continued file by file
            claim_output_dir(out, fmt.split("/")[0] + "-run", writes=TRAIN_WRITES, force=True,
                             legacy=only(*TRAIN_WRITES))
            atomic_write_bytes(out / "config.json", json.dumps(cfg.to_dict(), indent=2).encode())
        except BaseException:
            D.agree(False, "setup")
            raise
    D.agree(True, "setup")

    train_set = load_split(cfg, "train")
    test_set = load_split(cfg, "test")
    if describe is not None:
        log(describe(len(train_set.x), len(test_set.x)))
    n = len(train_set.x)
    n_batches = math.ceil(n / cfg.batch_size)
    end = cfg.epochs if stop_after is None else min(cfg.epochs, start + stop_after)
    epochs = tqdm(range(start, end), desc="epochs", initial=start, total=cfg.epochs, disable=not progress)
    for epoch in epochs:
        perm = torch.randperm(n, generator=epoch_generator(cfg.seed, epoch, 0))
        gens: dict[int, torch.Generator] = {}

        def gen(stream: int, _epoch=epoch, _gens=gens) -> torch.Generator:
            if stream not in _gens:
                _gens[stream] = epoch_generator(cfg.seed, _epoch, stream)
            return _gens[stream]

        correct = None
        seen = 0
        t0 = time.perf_counter()
        batches = tqdm(range(n_batches), desc=f"epoch {epoch + 1}", leave=False, disable=not progress)
        for b in batches:
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            if nproc > 1:
                if len(idx) % nproc:  # the last, partial batch: drop its remainder so shards stay equal
                    idx = idx[:len(idx) - len(idx) % nproc]
                    if not len(idx):
                        continue
                idx = D.shard(idx, rank, nproc)
                if os.environ.get(D.FAIL_ENV) == str(rank):
                    raise RuntimeError(f"rank {rank}: injected failure ({D.FAIL_ENV})")
            xb, yb = train_set.x[idx], train_set.y[idx]
            pred = train_step(xb, yb, gen)
            hits = (pred == yb.to(pred.device)).sum()  # stays on the device: no sync per batch
            correct = hits if correct is None else correct + hits
            seen += len(idx)
            if progress and (b % 20 == 0 or b == n_batches - 1):
                batches.set_postfix(train_acc=f"{100 * correct.item() / seen:.2f}%")
        correct, seen = (int(v) for v in D.allreduce_sum([float(correct.item()), float(seen)]))
        train_time = time.perf_counter() - t0
        if sched is not None:
            sched.step()
        if rank != 0:  # rank 0 evaluates and writes; the others only train
            continue
        t1 = time.perf_counter()
        rec = {"epoch": epoch + 1, "train_acc": correct / seen}
        rec.update(test(test_set, progress, epoch))
        rec.update({"train_samples_per_s": seen / train_time, "eval_s": time.perf_counter() - t1,
                    "lrs": [g["lr"] for g in opt.param_groups]})
        if epoch_extra is not None:
            rec.update(epoch_extra())
        history.append(rec)
        atomic_torch_save({"format": fmt, "config": cfg.to_dict(), "epoch": epoch + 1,
                           "model": net.state_dict(), "optimizer": opt.state_dict(),
                           "scheduler": sched.state_dict() if sched is not None else None,
                           "history": history, "torch": torch.__version__}, ckpt_path)
        write_metrics(out, cfg, history, title=title)
        note = epoch_note(rec) if epoch_note is not None else ""
        log(f"epoch {epoch + 1:3d}/{cfg.epochs}: train {100 * rec['train_acc']:.2f}%  "
            f"test {100 * rec['test_acc']:.2f}%{note}  ({rec['train_samples_per_s']:.0f} samples/s)")
        if progress:
            epochs.set_postfix(test_acc=f"{100 * rec['test_acc']:.2f}%")
    return {"config": cfg.to_dict(), "history": history}


def _silent(*_a, **_k) -> None:
    pass


def write_metrics(out: Path, cfg, history: list[dict[str, Any]], title: str | None = None) -> None:
    best = max(history, key=lambda r: r["test_acc"])
    metrics = {"config": cfg.to_dict(), "epochs": history, "final_test_acc": history[-1]["test_acc"],
               "best_test_acc": best["test_acc"], "best_epoch": best["epoch"]}
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=2).encode())
    if title is None:
        title = f"{cfg.net.kind} {cfg.alg}/{cfg.estimator} on {cfg.dataset}"
    plot_history(history, out / "training.png", title=title)


def plot_history(history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [100 * r["train_acc"] for r in history], "o-", label="train (running, during training)")
    ax.plot(ep, [100 * r["test_acc"] for r in history], "s-", label="test")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
