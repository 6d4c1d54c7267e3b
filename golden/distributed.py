"""Data-parallel EP with torch.distributed: the core pieces (issue 16, first increment).

EP's update estimate is a batch *mean* (``EPNet.ep_update`` divides by the batch size), so with a
global batch B split into N equal shards of B/N samples, the mean over ranks of the per-shard
updates equals the single-process update on the whole batch, up to float rounding. This module
holds that all-reduce and the batch sharding; the CLI (``--nproc``, torchrun detection) is not
wired to it yet.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when no process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_nproc(nproc, batch_size: int) -> int:
    """Validate ``--nproc`` against the global batch size; one-line ValueError naming the parameter."""
    if isinstance(nproc, bool) or not isinstance(nproc, int):
        try:
            nproc = int(str(nproc), 10)
        except ValueError:
            raise ValueError(f"--nproc must be a positive integer, not {nproc!r}") from None
    if nproc < 1:
        raise ValueError(f"--nproc must be a positive integer, not {nproc}")
    if nproc > batch_size:
        raise ValueError(f"--nproc {nproc} exceeds --batch-size {batch_size}: each process needs at least one sample")
    if batch_size % nproc:
        raise ValueError(f"--batch-size {batch_size} is not divisible by --nproc {nproc} "
                         "(the batch size is global; each process takes batch/nproc)")
    return nproc


def shard(idx: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's contiguous share of a global mini-batch's indices (equal shares when divisible)."""
    n = len(idx)
    lo = n * rank // world_size
    hi = n * (rank + 1) // world_size
    return idx[lo:hi]


def allreduce_update(update: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mean over ranks of each rank's update (in place); a no-op in a single process.

    One flattened all-reduce per call (fewer messages than one per tensor). Valid as the global-batch
    mean only when every rank's shard has the same size, which :func:`check_nproc` guarantees.
    """
    _, n = world()
    if n == 1:
        return update
    names = list(update)
    flat = torch.cat([update[k].reshape(-1) for k in names])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= n
    off = 0
    for k in names:
        t = update[k]
        t.copy_(flat[off:off + t.numel()].view_as(t))
        off += t.numel()
    return update


FAIL_ENV = "EPFORGE_DIST_FAIL_RANK"  # test hook: that rank raises at its first training batch


def is_rank0() -> bool:
    return world()[0] == 0


def allreduce_sum(values: list[float]) -> list[float]:
    """Sum of each value over ranks (float64); the values unchanged in a single process."""
    if world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def agree(ok: bool, what: str) -> None:
    """Every rank learns whether all ranks passed a step (rank 0's setup may fail alone); raise if not."""
    if world()[1] == 1:
        return
    t = torch.tensor([0.0 if ok else 1.0])
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    if t.item() and ok:
        raise RuntimeError(f"another process failed during {what}")


def torchrun_env() -> bool:
    """True when started by torchrun (its RANK/WORLD_SIZE/MASTER_ADDR environment is present)."""
    import os

    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def _init(device: str) -> str:
    """Initialise the process group (nccl for CUDA, gloo otherwise); return this rank's device string."""
    import os

    from .device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        dev = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(dev)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return str(dev)


def _spawned(rank: int, nproc: int, port: int, fn, device: str, threads: int | None, args, kwargs) -> None:
    import os

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads or 1)
    _run(fn, device, args, kwargs)


def _run(fn, device: str, args, kwargs):
    dev = _init(device)
    try:
        return fn(*args, device=dev, **kwargs)
    finally:
        dist.destroy_process_group()


def launch(fn, nproc: int, device: str, *args, threads: int | None = None, **kwargs):
    """Run ``fn(*args, device=…, **kwargs)`` data-parallel.

    Under torchrun (its environment present) this process joins the group torchrun set up; else with
    ``nproc`` > 1 it spawns ``nproc`` local processes (``threads`` torch threads each, default 1) on
    127.0.0.1 and a free port; else it just calls ``fn``. A process that raises ends the run:
    torch.multiprocessing terminates the others and this raises a one-line RuntimeError.
    """
    if torchrun_env():
        return _run(fn, device, args, kwargs)
    if nproc == 1:
        return fn(*args, device=device, **kwargs)
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        mp.spawn(_spawned, args=(nproc, port, fn, device, threads, args, kwargs), nprocs=nproc, join=True)
    except mp.ProcessRaisedException as e:
        last = [ln for ln in str(e).strip().splitlines() if ln.strip()][-1]
        raise RuntimeError(f"a training process failed: {last}") from None
    except mp.ProcessExitedException as e:
        raise RuntimeError(f"a training process died: {e}") from None
    return None
