"""Data-parallel EP with torch.distributed (issue 16): sharding, all-reduce, launch, shared by the three trainers.

EP's update estimate is a batch *mean* (``EPNet.ep_update`` divides by the batch size), so with a
global batch B split into N equal shards of B/N samples, the mean over ranks of the per-shard
updates equals the single-process update on the whole batch, up to float rounding. This module
holds that all-reduce, the batch sharding, the per-sample random numbers that do not depend on the
split (:class:`RowGenerator`), the process launch (``--nproc`` or torchrun) and its CLI front end
(:func:`cli_launch`), shared by ``python -m golden train``, ``python -m golden.ternary train`` and
``python -m golden.eqspike train``.
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


def batch_rows(n_local: int) -> tuple[int, int]:
    """``(first global row, global batch size)`` of this rank's shard of ``n_local`` samples.

    The shards of a mini-batch are equal (:func:`check_nproc`; the epoch loop drops the remainder of
    a last, partial batch), so rank r holds the global rows ``r·n_local … (r+1)·n_local − 1``.
    """
    rank, n = world()
    return rank * n_local, n_local * n


class RowGenerator:
    """Per-sample random numbers that do not depend on how a mini-batch is split over processes.

    Every process draws the numbers of the whole global batch from the same generator (seeded alike
    on every rank) and keeps its own rows, so sample i gets the numbers it gets in one process, and
    the generator stays in step on all ranks. The extra cost is drawing N× the numbers of one shard:
    O(B·n) per draw against the O(B·n·m) matrix products of a step.
    """

    def __init__(self, generator: torch.Generator, lo: int, total: int):
        self.generator, self.lo, self.total = generator, lo, total

    def rand(self, shape, *, dtype=None, device=None) -> torch.Tensor:
        n = shape[0]
        full = torch.rand((self.total, *shape[1:]), generator=self.generator, dtype=dtype, device=device)
        return full[self.lo:self.lo + n]


def sharded_generator(generator: torch.Generator | None, n_local: int):
    """``generator`` wrapped in a :class:`RowGenerator` for this rank's shard; as is in one process."""
    lo, total = batch_rows(n_local)
    if generator is None or total == n_local:
        return generator
    return RowGenerator(generator, lo, total)


def rand_rows(shape, generator, *, dtype=None, device=None) -> torch.Tensor:
    """``torch.rand(shape)`` (first dimension = samples) from a generator or a :class:`RowGenerator`."""
    if isinstance(generator, RowGenerator):
        return generator.rand(shape, dtype=dtype, device=device)
    return torch.rand(shape, generator=generator, dtype=dtype, device=device)


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


NPROC_HELP = ("data-parallel over N local processes (gloo on CPU, nccl on CUDA); --batch-size is the global "
              "batch, each process takes batch/N (default 1; under torchrun: its world size)")


def add_nproc_arg(group) -> None:
    """The ``--nproc N`` option of a ``train`` command (an argparse parser or argument group)."""
    group.add_argument("--nproc", metavar="N", help=NPROC_HELP)


def cli_launch(fn, nproc_arg, device: str, batch_size: int, *args, single: str | None = None,
               threads: int | None = None, **kwargs) -> bool:
    """The ``train`` commands' ``--nproc``/torchrun front end: validate, launch, one-line errors.

    ``nproc_arg`` is ``--nproc`` as given (``None``: 1, or torchrun's world size under torchrun). Bad
    values, ``single`` (a reason why this run cannot be data-parallel) with N > 1, and a failed process
    of a data-parallel run are :class:`golden.clierr.CLIError`; a
    one-process run raises as it would without this. Returns True in the process that should report
    (rank 0, or the only one).
    """
    import os

    from .clierr import CLIError

    if torchrun_env():
        nproc = int(os.environ["WORLD_SIZE"])
        if nproc_arg not in (None, "1", str(nproc)):
            raise CLIError(f"--nproc {nproc_arg}: under torchrun the number of processes is torchrun's "
                           f"--nproc-per-node x --nnodes ({nproc}); leave --nproc out")
    else:
        nproc = 1 if nproc_arg is None else nproc_arg
    try:
        nproc = check_nproc(nproc, batch_size)
        if nproc > 1 and single:
            raise ValueError(f"--nproc {nproc}: {single}")
    except ValueError as e:
        raise CLIError(str(e)) from None
    try:
        launch(fn, nproc, device, *args, threads=threads, **kwargs)
    except RuntimeError as e:
        if nproc == 1:
            raise
        raise CLIError(str(e)) from None
    return not torchrun_env() or os.environ.get("RANK") == "0"


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
