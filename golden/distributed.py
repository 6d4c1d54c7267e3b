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
