"""Read errors of ternary/binary weights in 2T2R RRAM (ALGORITHMS.md §4), float model (torch RNG).

**Ternary** (adjacent-level errors of the PCSA read): with mean error rate ``p`` and zero fraction
``p0`` of the stored matrix, ``P(0 → ±1) = 2p/(1+p0)`` (sign ±1 equally likely),
``P(±1 → 0) = p/(1+p0)``, never a sign flip; the mean rate over the matrix is exactly ``p``.
**Binary**: each weight flips sign with probability ``p``.

Modes, as the hardware reads its weights:

* **static** — the errors are drawn once, when the weights are programmed (one
  :class:`StoredWeights` object), and every read sees the same faulty matrix, as on a chip;
* **dynamic** — every read is drawn afresh, independently per sample: W0 is read once per
  sample (the bottom-up input term ``W0·x + b0`` is computed once), every other matrix twice per
  relaxation step (once bottom-up, ``W s``, once top-down, ``Wᵀ s``).

Dynamic reads never build a per-sample matrix: the clean product is one matrix product for the
batch and the errors, drawn as a sparse list of (sample, weight, change) by geometric skipping
(an exact Bernoulli process at any rate), are added with one gather and one ``index_add``.

The integer hardware version, with the hardware PRNG, is ``spec/ternary.py`` (and
``golden/ternary/memory.py``); the transition probabilities are imported from there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from spec import ternary as spec_ternary

from .ternarize import alpha, check_kind

MODES = ("static", "dynamic")


def check_rate(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"error rate p must be a number in [0, 1], not {p!r}")
    return float(p)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"error mode must be one of {MODES}, not {mode!r}")
    return mode


ERROR_KIND = {"ternary": "adjacent", "binary": "flip"}  # weight kind → spec.ternary's injector kind


def transition_probabilities(p: float, p0: float, kind: str) -> tuple[float, float]:
    """``(q_zero, q_nonzero)``: probability that a stored 0 reads as ±1 and that a stored ±1 reads
    wrong (ternary: as 0; binary: as its opposite; binary has no zeros, q_zero = 0).

    The formula is :func:`spec.ternary.transition_probabilities` (the hardware's definition).
    """
    return spec_ternary.transition_probabilities(check_rate(p), p0, ERROR_KIND[check_kind(kind)])


def zero_fraction(t: torch.Tensor) -> float:
    return float((t == 0).sum().item()) / t.numel()


def bernoulli_positions(n: int, q: float, generator: torch.Generator | None) -> torch.Tensor:
    """Sorted int64 positions in ``[0, n)``, each present independently with probability ``q``.

    Geometric skipping: gaps ``G ~ Geometric(q)`` (support 1, 2, …), positions = cumsum(G) − 1.
    Exact at any rate, and it draws O(n·q) numbers, so the memory follows the number of errors.
    """
    if q <= 0.0 or n == 0:
        return torch.empty(0, dtype=torch.int64)
    if q >= 1.0:
        return torch.arange(n, dtype=torch.int64)
    mean = n * q
    chunks, end = [], -1
    while end < n:
        k = int(mean + 6.0 * math.sqrt(mean) + 16)
        gaps = torch.empty(k, dtype=torch.int64).geometric_(q, generator=generator)
        pos = torch.cumsum(gaps, 0).add_(end)
        chunks.append(pos)
        end = int(pos[-1])
    pos = torch.cat(chunks) if len(chunks) > 1 else chunks[0]
    return pos[: int(torch.searchsorted(pos, n))]


@dataclass
class ReadErrors:
    """Sparse errors of a batch of reads: read ``read[k]`` sees ``T.flat[index[k]] + change[k]``."""

    read: torch.Tensor  # int64
    index: torch.Tensor  # int64, into the flattened matrix
    change: torch.Tensor  # same dtype as T: ±1 (0 → ±1), −T (±1 → 0), −2T (binary flip)

    def __len__(self) -> int:
        return self.read.numel()


class ErrorSites:
    """The positions of one stored matrix that can err, grouped by their transition probability."""

    def __init__(self, t: torch.Tensor, p: float, kind: str):
        self.t = t
        self.kind = check_kind(kind)
        flat = t.reshape(-1)
        zero = flat == 0
        if kind == "binary" and bool(zero.any()):
            raise ValueError("a binary matrix must hold only −1 and +1")
        self.p0 = float(zero.sum().item()) / max(flat.numel(), 1)
        self.q_zero, self.q_nonzero = transition_probabilities(p, self.p0, kind)
        self.zeros = zero.nonzero().flatten() if self.q_zero > 0 else None
        self.nonzeros = (~zero).nonzero().flatten() if self.q_nonzero > 0 else None

    def draw(self, reads: int, generator: torch.Generator | None) -> ReadErrors:
        """The errors of ``reads`` independent reads of the whole matrix."""
        flat = self.t.reshape(-1)
        parts = []
        if self.zeros is not None and self.zeros.numel():
            n = self.zeros.numel()
            pos = bernoulli_positions(reads * n, self.q_zero, generator)
            sign = torch.randint(0, 2, (pos.numel(),), generator=generator).to(flat.dtype).mul_(2).sub_(1)
            parts.append((pos // n, self.zeros[pos % n], sign))
        if self.nonzeros is not None and self.nonzeros.numel():
            n = self.nonzeros.numel()
            pos = bernoulli_positions(reads * n, self.q_nonzero, generator)
            idx = self.nonzeros[pos % n]
            change = flat[idx] * (-1.0 if self.kind == "ternary" else -2.0)
            parts.append((pos // n, idx, change))
        if not parts:
            e = torch.empty(0, dtype=torch.int64)
            return ReadErrors(e, e, torch.empty(0, dtype=flat.dtype))
        return ReadErrors(*(torch.cat(c) for c in zip(*parts, strict=True)))


def inject(
    t: torch.Tensor, p: float, kind: str, generator: torch.Generator | None = None, reads: int | None = None
) -> torch.Tensor:
    """The matrix as read with errors: one read (``t``'s shape) or ``reads`` independent reads
    (shape ``(reads, *t.shape)``)."""
    p = check_rate(p)
    sites = ErrorSites(t, p, kind)
    n = 1 if reads is None else reads
    err = sites.draw(n, generator)
    out = t.reshape(1, -1).repeat(n, 1)
    out.view(-1).index_add_(0, err.read * t.numel() + err.index, err.change)
    return out.reshape(t.shape) if reads is None else out.reshape((n,) + tuple(t.shape))


class _ReadStream:
    """Errors of successive batch reads of one matrix in one direction, drawn ``block`` reads ahead.

    Reads are independent, so drawing several at once is exact; it replaces a dozen small tensor
    operations per read by one set per block. Each error is kept as (source index into the
    flattened input states, destination index into the flattened output, change), per transition
    class (the positions of a class come out sorted by read, so a read is a slice).

    ``rows = (lo, total)``: the batch is rows lo… of a global batch of ``total`` samples split over
    processes; the errors are drawn for the global batch and this stream keeps its rows' errors, so
    every sample sees the errors it sees in one process (and the generator stays in step on all ranks).
    """

    def __init__(self, sites: ErrorSites, transpose: bool, generator: torch.Generator | None, block: int,
                 rows: tuple[int, int] | None = None):
        self.sites, self.transpose, self.generator, self.block = sites, transpose, generator, block
        self.rows = rows
        self.batch = -1
        self.k = block

    def _refill(self, batch: int) -> None:
        s, flat = self.sites, self.sites.t.reshape(-1)
        n_out, n_in = s.t.shape
        self.batch, self.k, self.parts = batch, 0, []
        lo, total = self.rows if self.rows is not None and self.rows[1] != batch else (0, batch)
        classes = [(s.zeros, s.q_zero, None), (s.nonzeros, s.q_nonzero, -1.0 if s.kind == "ternary" else -2.0)]
        for where, q, factor in classes:
            if where is None or where.numel() == 0:
                continue
            n = where.numel()
            pos = bernoulli_positions(self.block * total * n, q, self.generator)
            read, w = pos // n, where[pos % n]
            if factor is None:  # 0 → ±1, sign equally likely
                change = torch.randint(0, 2, (pos.numel(),), generator=self.generator).to(flat.dtype).mul_(2).sub_(1)
            else:
                change = flat[w] * factor
            sample = read % total
            if total != batch:  # keep this process's rows of the global batch
                keep = (sample >= lo) & (sample < lo + batch)
                read, w, change, sample = read[keep], w[keep], change[keep], sample[keep] - lo
            row, col = w // n_in, w % n_in
            if self.transpose:  # Wᵀ s: read s at the row, add into the column
                src, dst = sample * n_out + row, sample * n_in + col
            else:
                src, dst = sample * n_in + col, sample * n_out + row
            bounds = torch.searchsorted(read, torch.arange(self.block + 1, dtype=torch.int64) * total).tolist()
            self.parts.append((src, dst, change, bounds))

    def add(self, s: torch.Tensor, out: torch.Tensor, scale: float) -> None:
        """``out += scale · (errors of the next read) · s`` for a batch read."""
        if self.k == self.block or self.batch != s.shape[0]:
            self._refill(s.shape[0])
        k = self.k
        self.k += 1
        s_flat, o_flat = s.reshape(-1), out.view(-1)
        for src, dst, change, bounds in self.parts:
            a, b = bounds[k], bounds[k + 1]
            if b > a:
                o_flat.index_add_(0, dst[a:b], change[a:b] * s_flat[src[a:b]], alpha=scale)


class StoredWeights:
    """The weight matrices of one programming of the array, read as the hardware reads them.

    Parameters
    ----------
    ts : the stored values T_l (float tensors in {−1, 0, +1}), connection l from layer l to l+1.
    shifts : α_l = 2^-shifts[l].
    kind : ``"ternary"`` or ``"binary"``.
    p : mean read error rate (0: error-free).
    mode : ``"static"`` (errors drawn here, once) or ``"dynamic"`` (drawn at every read).
    generator : the torch generator of every draw (reproducible runs).
    block : dynamic mode: reads drawn ahead at a time for W1, W2, … (a speed setting; the
        distribution does not depend on it, the exact draws do).
    rows : dynamic mode, data-parallel: ``(lo, total)`` = this process reads for rows lo… of a global
        batch of ``total`` samples (:func:`golden.distributed.batch_rows`); the errors are those the
        same samples see in one process. ``None``: the batch is the whole batch.

    Raises
    ------
    ValueError
        On a bad kind, mode or rate, or a binary matrix with zeros.
    """

    def __init__(
        self,
        ts: Sequence[torch.Tensor],
        shifts: Sequence[int],
        kind: str,
        p: float = 0.0,
        mode: str = "static",
        generator: torch.Generator | None = None,
        block: int = 16,
        rows: tuple[int, int] | None = None,
    ):
        self.kind = check_kind(kind)
        self.p = check_rate(p)
        self.mode = check_mode(mode)
        self.alphas = [alpha(a) for a in shifts]
        self.generator = generator
        self.dynamic = self.mode == "dynamic" and self.p > 0
        if self.p > 0 and self.mode == "static":
            ts = [inject(t, self.p, kind, generator) for t in ts]
        self.ts = list(ts)
        if self.dynamic:
            sites = [ErrorSites(t, self.p, kind) for t in ts]
            self.streams_up = [_ReadStream(si, False, generator, 1 if l == 0 else block, rows)
                               for l, si in enumerate(sites)]
            self.streams_down = [_ReadStream(si, True, generator, block, rows) for si in sites]
            self.sites = sites

    def read(self, l: int) -> torch.Tensor:
        """Matrix T_l as one read sees it (static: always the same; dynamic: a fresh draw)."""
        if not self.dynamic:
            return self.ts[l].clone()
        return inject(self.ts[l], self.p, self.kind, self.generator)

    def input_term(self, x: torch.Tensor, b0: torch.Tensor) -> torch.Tensor:
        """``α_0 T_0 x + b_0`` per sample: the one read of W0 per sample."""
        out = torch.addmm(b0, x, self.ts[0].t(), alpha=self.alphas[0])
        if self.dynamic:
            self.streams_up[0].add(x, out, self.alphas[0])
        return out

    def bottom_up(self, l: int, s: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """``base + α_l T_l s`` (one read of W_l per sample)."""
        out = torch.addmm(base, s, self.ts[l].t(), alpha=self.alphas[l])
        if self.dynamic:
            self.streams_up[l].add(s, out, self.alphas[l])
        return out

    def top_down(self, l: int, s_post: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out += α_l T_lᵀ s_post`` in place (one read of W_l per sample)."""
        out.addmm_(s_post, self.ts[l], alpha=self.alphas[l])
        if self.dynamic:
            self.streams_down[l].add(s_post, out, self.alphas[l])
        return out
