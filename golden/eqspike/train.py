"""Training of float EqSpike MLPs: build, mini-batch step, evaluation, checkpoints.

The epoch loop is :func:`golden.train.run_epochs` (shared with float EP): every random choice of
epoch ``e`` comes from generators seeded by ``(seed, e)`` — stream 0 shuffles, stream 1 draws the
random-sign β, stream 3 seeds the encoders' random numbers (stochastic spikes, random residues) of
each mini-batch — and a checkpoint after each epoch holds model, optimiser and scheduler state, so
``--resume`` continues bit-identically. All GPU work of a mini-batch is batched tensor code; the
only host synchronisation is one accuracy read per epoch (and per progress-bar refresh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..ep.estimators import apply_update
from ..train import check_finite_params, load_checkpoint, resolve_device, run_epochs
from .config import EqSpikeConfig
from .network import EqSpikeNet

CHECKPOINT_FORMAT = "epforge-eqspike-checkpoint/1"
EVAL_STREAM = 7  # generator stream of evaluation spikes: epoch_generator(seed, 0, 7)


def build(cfg: EqSpikeConfig, device: torch.device | str = "cpu"):
    net = EqSpikeNet(cfg, device=device)
    groups = [{"params": [getattr(net, f"w{l}"), getattr(net, f"b{l}")], "lr": lr}
              for l, lr in enumerate(cfg.per_layer(cfg.lrs))]
    opt = torch.optim.SGD(groups, momentum=cfg.momentum) if cfg.optimizer == "sgd" else torch.optim.Adam(groups)
    sched = None
    if cfg.lr_decay == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.lr_decay_epochs or cfg.epochs, eta_min=cfg.lr_min)
    return net, opt, sched


def device_generator(cpu_gen: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from ``cpu_gen`` (one CPU draw, no device synchronisation)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=cpu_gen).item())
    return torch.Generator(device=device).manual_seed(seed)


def train_step(net: EqSpikeNet, cfg: EqSpikeConfig, opt, xb: torch.Tensor, yb: torch.Tensor, gen) -> torch.Tensor:
    """One mini-batch: free phase, nudged phase(s) with the spike-driven rule, optimiser step.

    ``gen(stream)`` gives the epoch's generators. Returns the free-phase predictions (on the device).
    """
    from .. import distributed as D

    dev = net.device
    # data-parallel: the spikes' random numbers are drawn for the global batch (the same seed on every
    # rank), this rank keeping its rows; the random sign (stream 1) is one draw per batch, alike on all
    spike_gen = D.sharded_generator(device_generator(gen(3), dev), len(xb))
    x, y = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
    update, free = net.spike_update(x, y, cfg.T1, cfg.T2, cfg.beta, cfg.estimator, gen=spike_gen, sign_gen=gen(1))
    apply_update(net, D.allreduce_update(update), opt)
    return free.s[-1].argmax(1)


@torch.no_grad()
def evaluate(net: EqSpikeNet, x: torch.Tensor, y: torch.Tensor, T: int, batch_size: int = 500, seed: int = 0,
             progress: bool = False) -> float:
    """Accuracy (fraction) after a spiking free phase of ``T`` steps; spikes' randomness from ``seed``."""
    from tqdm import tqdm

    from ..train import epoch_generator

    gen = device_generator(epoch_generator(seed, 0, EVAL_STREAM), net.device)
    correct = torch.zeros((), dtype=torch.int64, device=net.device)
    for i in tqdm(range(0, len(x), batch_size), desc="eval", leave=False, disable=not progress):
        pred = net.predict_spiking(x[i:i + batch_size].to(net.device), T, gen)
        correct += (pred == y[i:i + batch_size].to(net.device)).sum()
    return correct.item() / max(1, len(x))


def load_eqspike_checkpoint(path: str | Path, map_location="cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    return load_checkpoint(path, map_location=map_location, fmt=CHECKPOINT_FORMAT)


def model_from_checkpoint(ckpt: dict[str, Any], device="cpu") -> tuple[EqSpikeNet, EqSpikeConfig]:
    cfg = EqSpikeConfig.from_dict(ckpt["config"])
    net, _, _ = build(cfg, torch.device(device))
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"the checkpoint's weights do not fit its configuration: {str(e).splitlines()[0]}") from None
    check_finite_params(net, "the checkpoint")
    return net, cfg


def train(cfg: EqSpikeConfig, out: Path, *, resume: bool = False, device: str = "auto",
          progress: bool | None = None, stop_after: int | None = None, log=print) -> dict[str, Any]:
    """Train, writing ``checkpoint.pt`` (every epoch, atomically), config.json, metrics.json, training.png."""
    dev = resolve_device(device)
    net, opt, sched = build(cfg, dev)
    T_eval = cfg.T_eval or cfg.T1
    arch = "-".join(map(str, cfg.layers))

    def test(test_set, progress, epoch):
        return {"test_acc": evaluate(net, test_set.x, test_set.y, T_eval, cfg.eval_batch_size, cfg.seed, progress)}

    return run_epochs(
        cfg, out, fmt=CHECKPOINT_FORMAT, net=net, opt=opt, sched=sched,
        train_step=lambda xb, yb, gen: train_step(net, cfg, opt, xb, yb, gen), test=test, resume=resume,
        progress=progress, stop_after=stop_after, log=log, load_checkpoint_fn=load_eqspike_checkpoint,
        describe=lambda n_train, n_test: (
            f"training EqSpike {arch} ({cfg.encoder}, {cfg.update} update, {cfg.estimator}) on {cfg.dataset} "
            f"({n_train} train, {n_test} test) on {dev}, {torch.get_num_threads()} threads"),
        title=f"EqSpike {arch} ({cfg.encoder}, {cfg.update}) on {cfg.dataset}")
