"""Spectral relaxation loop for ConvNets: stride-1 convolutions as DFTs done with matrix products.

Inside the relaxation the weights are fixed, so a stride-1 convolution ``conv(s, W)`` and its
transpose can be evaluated exactly through the convolution theorem on a grid as large as the
padded input (``P = H + 2·pad``): the valid cross-correlation of an input of size P never wraps
around that grid, nor does the full convolution of a ``(P − k + 1)``-sized map with the kernel.
The per-phase spectrum of ``W`` is computed once; each step then costs, per connection, two
real 2-D DFTs, one complex product per frequency and two inverse DFTs instead of two direct
convolutions. On the MNIST ConvNet (32→64 channels, 5×5 on 12×12) that is ~220 M instead of
656 M multiply-accumulates per step at batch 100.

The DFTs are small dense matrices applied with GEMMs (no FFT library), so everything stays in one
layout: conv states are kept as ``(H, W, C, N)`` (spatial dimensions outermost, batch innermost),
which makes

* the row pass (real DFT along H) one GEMM ``(2K_h × H) @ (H × W·C·N)``,
* the column pass (complex DFT along W) one batched GEMM per row frequency, whose output holds
  each frequency's real and imaginary ``C × N`` planes stacked as one ``2C × N`` matrix,
* the frequency product one batched GEMM over the ``K_h·P_w`` frequencies with the real
  ``2C_out × 2C_in`` form ``[[Re M, −Im M], [Im M, Re M]]`` of each complex weight matrix,

and the inverse passes the same in reverse (columns first), without any permutation of the data.
The result is exact up to rounding; in float32 its error against a float64 convolution is no
larger than that of the direct (oneDNN) convolution (``tests/test_ep_float.py``).

Max pooling follows ``F.max_pool2d``: the first maximal element of each 2×2 window, in row-major
order, is selected. Candidates whose input patches are identical (e.g. where states saturate) are
equal in exact arithmetic, but a spectral convolution rounds each position differently, and so
may a direct one (whether its kernel gives identical patches bitwise equal outputs depends on the
CPU and the library). So identical patches are detected exactly, by comparing the input values
themselves (:func:`patch_ties`, no arithmetic), and their candidates count as equal: such a tie
routes to the first of the tied candidates on every machine; every other window is decided by
its computed values. Both routings are valid (at a tie every candidate is a subgradient of the
max); the direct path's choice there is its kernel's rounding.

:class:`SpectralRelax` runs :meth:`golden.ep.network.EPNet.relax` this way for symmetric ConvNets
whose conv connections above the input have stride 1 and max or no pooling (the input
connection, computed once per sample, may be anything); other networks use the direct loop.
The MSE nudge needs a dense top layer; a CE read-out may sit on a conv layer.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch

from .connections import Conv

MIN_CHUNK = 16  # samples per thread below which the batch is not split (see SpectralRelax)


# ----------------------------------------------------------------------------------------------
# DFT matrices (built in float64, cast once)
# ----------------------------------------------------------------------------------------------
def _row_dft(p: int, rows: Sequence[int]) -> torch.Tensor:
    """Real DFT along H: ``(2·K_h, len(rows))``, output rows ``(k_h, re/im)``, K_h = p//2 + 1."""
    kh = torch.arange(p // 2 + 1, dtype=torch.float64)[:, None]
    h = torch.tensor(list(rows), dtype=torch.float64)[None]
    th = 2 * math.pi * kh * h / p
    return torch.stack([torch.cos(th), -torch.sin(th)], 1).reshape(-1, len(rows))


def _col_dft(p: int, cols: Sequence[int]) -> torch.Tensor:
    """Complex DFT along W: ``(2·p, 2·len(cols))``, output rows ``(k_w, re/im)``, input ``(re/im, w)``."""
    kw = torch.arange(p, dtype=torch.float64)[:, None]
    w = torch.tensor(list(cols), dtype=torch.float64)[None]
    ph = 2 * math.pi * kw * w / p
    c, s = torch.cos(ph), torch.sin(ph)
    m = torch.stack([torch.stack([c, s], 1), torch.stack([-s, c], 1)], 1)  # (k_w, out re/im, in re/im, w)
    return m.reshape(2 * p, 2 * len(cols))


def _col_idft(p: int, cols: Sequence[int]) -> torch.Tensor:
    """Inverse complex DFT along W: ``(2·len(cols), 2·p)``, output rows ``(re/im, w)``, input ``(k_w, re/im)``."""
    kw = torch.arange(p, dtype=torch.float64)[None]
    w = torch.tensor(list(cols), dtype=torch.float64)[:, None]
    ph = 2 * math.pi * kw * w / p
    c, s = torch.cos(ph), torch.sin(ph)
    m = torch.stack([torch.stack([c, -s], 2), torch.stack([s, c], 2)])  # (out re/im, w, k_w, in re/im)
    return m.reshape(2 * len(cols), 2 * p)


def _row_idft(ph: int, pw: int, rows: Sequence[int]) -> torch.Tensor:
    """Real part of the inverse along H from the half spectrum, scaled by 1/(ph·pw): ``(len(rows), 2·K_h)``.

    Input ``(k_h, re/im)``; the weights ``c_k`` (1 for k_h = 0 and the Nyquist row, else 2) account
    for the conjugate half of the spectrum that is not stored.
    """
    nk = ph // 2 + 1
    kh = torch.arange(nk, dtype=torch.float64)[None]
    h = torch.tensor(list(rows), dtype=torch.float64)[:, None]
    ck = torch.full((nk,), 2.0, dtype=torch.float64)
    ck[0] = 1.0
    if ph % 2 == 0:
        ck[-1] = 1.0
    th = 2 * math.pi * kh * h / ph
    m = torch.stack([ck * torch.cos(th), -ck * torch.sin(th)], 2)  # (h, k_h, re/im)
    return m.reshape(len(rows), 2 * nk) / (ph * pw)


class SpectralConv:
    """A stride-1 :class:`~golden.ep.connections.Conv` evaluated through DFTs, on ``(H, W, N, C)`` tensors."""

    def __init__(self, conn, dtype: torch.dtype, device: torch.device):
        if conn.stride != 1:
            raise ValueError("SpectralConv needs stride 1")
        h, w = conn.in_hw
        pad = conn.pad
        self.conn = conn
        self.ph, self.pw = h + 2 * pad, w + 2 * pad
        self.nk = self.ph // 2 + 1
        self.bins = self.nk * self.pw
        ho, wo = conn.conv_hw

        def cast(t):
            return t.to(dtype=dtype, device=device).contiguous()

        # forward: the input occupies rows/columns pad … pad+h−1 of the grid, the valid output 0 … ho−1
        self.f_rows, self.f_cols = (
            cast(_row_dft(self.ph, range(pad, pad + h))),
            cast(_col_dft(self.pw, range(pad, pad + w))),
        )
        self.f_irows, self.f_icols = cast(_row_idft(self.ph, self.pw, range(ho))), cast(_col_idft(self.pw, range(wo)))
        # transpose: the map occupies 0 … ho−1, the full convolution is cropped back to pad … pad+h−1
        self.t_rows, self.t_cols = cast(_row_dft(self.ph, range(ho))), cast(_col_dft(self.pw, range(wo)))
        self._spectra = None  # (weakref to w, key, result) of the last weight_spectra call
        self.t_irows = cast(_row_idft(self.ph, self.pw, range(pad, pad + h)))
        self.t_icols = cast(_col_idft(self.pw, range(pad, pad + w)))

    def weight_spectra(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frequency real forms of the complex weight matrices (Ŵ in float64): for the
        cross-correlation M = conj(Ŵ) as ``(bins, 2·C_out, 2·C_in)``, for the transpose M = Ŵᵀ as
        ``(bins, 2·C_in, 2·C_out)``, each ``[[Re M, −Im M], [Im M, Re M]]``.

        The last result is kept for the same tensor and version (the nudged phases of a training
        step reuse the free phase's spectra; any in-place update of ``w`` bumps its version).
        """
        key = (w.data_ptr(), w._version, w.dtype, w.device)
        if self._spectra is not None and self._spectra[0]() is w and self._spectra[1] == key:
            return self._spectra[2]
        co, ci, kh, kw = w.shape
        grid = w.new_zeros((co, ci, self.ph, self.pw), dtype=torch.float64)
        grid[:, :, :kh, :kw] = w.detach()
        spec = torch.fft.fft(torch.fft.rfft(grid, dim=2), dim=3).permute(2, 3, 0, 1).reshape(self.bins, co, ci)

        def real_form(m):  # m: (bins, a, b) complex, contiguous
            a, b = m.shape[1:]
            re, im = torch.view_as_real(m).unbind(-1)
            out = torch.empty((self.bins, 2 * a, 2 * b), dtype=w.dtype, device=w.device)
            out[:, :a, :b] = re
            out[:, :a, b:] = -im
            out[:, a:, :b] = im
            out[:, a:, b:] = re
            return out

        result = real_form(spec.conj().resolve_conj()), real_form(spec.transpose(1, 2).contiguous())
        self._spectra = (weakref.ref(w), key, result)
        return result

    def _dft(self, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """(h, w, C, N) → (bins, 2·C, N): row pass, then the column pass per row frequency."""
        h, w = x.shape[:2]
        m = x[0, 0].numel()
        a = (rows @ x.reshape(h, w * m)).view(self.nk, 2 * w, m)
        out = torch.matmul(cols, a)  # (k_h, (k_w, re/im), C·N)
        return out.view(self.bins, 2 * x.shape[2], x.shape[3])

    def _idft(self, y: torch.Tensor, irows: torch.Tensor, icols: torch.Tensor) -> torch.Tensor:
        """(bins, 2·C', N) → (h_out, w_out, C'·N): inverse column pass, then the real part of the row pass."""
        m = y.shape[1] * y.shape[2] // 2
        z = torch.matmul(icols, y.view(self.nk, 2 * self.pw, m))  # (k_h, (re/im, w), C'·N)
        out = irows @ z.view(2 * self.nk, -1)
        return out.view(irows.shape[0], icols.shape[0] // 2, m)

    def forward(self, x: torch.Tensor, spectra) -> torch.Tensor:
        """``conv2d(x, W)`` without bias: (H, W, C_in, N) → (H_o, W_o, C_out, N)."""
        y = torch.bmm(spectra[0], self._dft(x, self.f_rows, self.f_cols))
        out = self._idft(y, self.f_irows, self.f_icols)
        return out.view(out.shape[0], out.shape[1], -1, x.shape[3])

    def transpose(self, g: torch.Tensor, spectra) -> torch.Tensor:
        """``conv_transpose2d(g, W)`` cropped to the input: (H_o, W_o, C_out, N) → (H, W, C_in, N)."""
        y = torch.bmm(spectra[1], self._dft(g, self.t_rows, self.t_cols))
        out = self._idft(y, self.t_irows, self.t_icols)
        return out.view(out.shape[0], out.shape[1], -1, g.shape[3])


def _window_all(eq: torch.Tensor, k: int, rows: int, cols: int) -> torch.Tensor:
    """``out[..., y, x, :] = all(eq[..., y:y+k, x:x+k, :])`` for y < rows, x < cols (eq: (..., R, C, N))."""
    r = eq[..., 0:rows, :, :].clone()
    for i in range(1, k):
        r &= eq[..., i : i + rows, :, :]
    out = r[..., :, 0:cols, :].clone()
    for j in range(1, k):
        out &= r[..., :, j : j + cols, :]
    return out


def patch_ties(x: torch.Tensor, conn) -> tuple[torch.Tensor, ...] | None:
    """Which pooling candidates of ``conv(x)`` see identical input patches (equal in exact arithmetic).

    ``x`` is the conv input (H, W, C, N). Neighbouring positions are compared by the bit patterns of
    their channel vectors (after ``+ 0.0``, which turns −0 into +0: the two give the same products),
    so the answer involves no rounding and is the same on every machine. Returns None when no window
    has a tie, else (E_ab, E_ac, E_ad, E_bc, E_bd, E_cd), each (H_q, W_q, N), for the candidates
    a = (2i, 2j), b = (2i, 2j+1), c = (2i+1, 2j), d = (2i+1, 2j+1) of a window.
    """
    k, pad = conn.k, conn.pad
    ho, wo = conn.conv_hw
    hq, wq = ho // 2, wo // 2
    n = x.shape[3]
    # (H, W, N, C), channels innermost, on the padded grid plus one zero row and column (so every
    # shift below is defined), as integer words: 8 bytes at a time where the channel vector allows
    xp = torch.nn.functional.pad(x.permute(0, 1, 3, 2), (0, 0, 0, 0, pad, pad + 1, pad, pad + 1)).contiguous().add_(0.0)
    if xp.shape[3] * xp.element_size() % 8 == 0:
        xp = xp.view(torch.int64)
    else:
        xp = xp.view({8: torch.int64, 4: torch.int32, 2: torch.int16}[xp.element_size()])
    ph, pw = xp.shape[:2]
    eq = torch.empty((4, ph - 1, pw - 1, n), dtype=torch.bool, device=x.device)
    # position (r, c) against (r, c+1), (r+1, c), (r+1, c+1), and (r, c+1) against (r+1, c): all channels
    for i, (u, v) in enumerate(((xp[:-1, :-1], xp[:-1, 1:]), (xp[:-1, :-1], xp[1:, :-1]),
                                (xp[:-1, :-1], xp[1:, 1:]), (xp[:-1, 1:], xp[1:, :-1]))):
        torch.any(torch.ne(u, v), dim=3, out=eq[i])
    eq.logical_not_()
    if not bool(eq.any()):  # no two neighbouring positions agree: no window can tie
        return None
    same = _window_all(eq, k, 2 * hq, 2 * wq)  # (4, 2hq, 2wq, N): the patch at (y, x) vs the shifted one
    if not bool(same.any()):
        return None
    ev = same[:, 0::2, 0::2]  # windows' top-left corners
    return ev[0], ev[1], ev[2], ev[3], same[1, 0::2, 1::2], same[0, 1::2, 0::2]


def _windows(t: torch.Tensor) -> torch.Tensor:
    """(H, W, …) → (H//2, 2, W//2, 2, …): the 2×2 pool windows as a view (odd trailing rows/columns dropped)."""
    hq, wq = t.shape[0] // 2, t.shape[1] // 2
    return t[: 2 * hq, : 2 * wq].unflatten(0, (hq, 2)).unflatten(2, (wq, 2))


def max_pool_select(f: torch.Tensor, ties: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """2×2/stride-2 max pooling of ``f`` (H, W, C, N), selecting the first maximal element of each
    window in row-major order like ``F.max_pool2d``; candidates that :func:`patch_ties` reports as
    identical count as equal (the later one takes the earlier one's value).

    Returns the pooled values (H//2, W//2, C, N) and the selection: a 0/1 tensor in ``f``'s dtype of
    the windows' shape (H//2, 2, W//2, 2, C, N) with exactly one 1 per window.
    """
    win = _windows(f)
    a, b, c, d = win[:, 0, :, 0], win[:, 0, :, 1], win[:, 1, :, 0], win[:, 1, :, 1]
    if ties is None:
        val = torch.maximum(torch.maximum(a, b), torch.maximum(c, d))
        sel = torch.empty(win.shape, dtype=f.dtype, device=f.device)
        torch.eq(win, val[:, None, :, None], out=sel)  # 0/1 in f's dtype: much faster than booleans
        # every window has a 1; two only if candidates are bitwise equal by coincidence: then the
        # ordered rule below
        if sel.sum(dtype=torch.float64).item() == val.numel():
            return val, sel
    else:  # exact selection by 0/1 weights: lerp(x, y, 1) = y, lerp(x, y, 0) = x
        e_ab, e_ac, e_ad, e_bc, e_bd, e_cd = (e.unsqueeze(-2).to(f.dtype) for e in ties)  # over C
        b = torch.lerp(b, a, e_ab)
        c = torch.lerp(torch.lerp(c, b, e_bc), a, e_ac)
        d = torch.lerp(torch.lerp(torch.lerp(d, c, e_cd), b, e_bd), a, e_ad)
    # the ordered rule: a later candidate is selected only if strictly greater than all earlier ones
    sel = torch.zeros(win.shape, dtype=f.dtype, device=f.device)
    gb, gc, gd = sel[:, 0, :, 1], sel[:, 1, :, 0], sel[:, 1, :, 1]
    torch.gt(b, a, out=gb)
    val = torch.maximum(a, b)
    torch.gt(c, val, out=gc)
    val = torch.maximum(val, c, out=val)
    torch.gt(d, val, out=gd)
    val = torch.maximum(val, d, out=val)
    rest = torch.rsub(gd, 1.0)  # neither d …
    gc.mul_(rest)  # c: gc and not gd
    rest.sub_(gc)  # neither d nor c
    gb.mul_(rest)
    sel[:, 0, :, 0] = rest.sub_(gb)
    return val, sel


def unpool(post: torch.Tensor, sel: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Route each pooled value to its selected element: the transpose of :func:`max_pool_select`."""
    h, w = hw
    hq, wq = post.shape[:2]
    routed = post.unsqueeze(1).unsqueeze(3)  # (hq, 1, wq, 1, C, N)
    if h == 2 * hq and w == 2 * wq:
        return (sel * routed).view((h, w) + post.shape[2:])
    out = post.new_zeros((h, w) + post.shape[2:])  # odd conv output: the last row/column feeds no window
    torch.mul(sel, routed, out=_windows(out))
    return out


# ----------------------------------------------------------------------------------------------
# The relaxation loop
# ----------------------------------------------------------------------------------------------
def to_engine(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (H, W, C, N), the layout of the spectral loop (dense (N, n) tensors unchanged)."""
    return t.permute(2, 3, 1, 0).contiguous() if t.dim() == 4 else t


class SpectralRelax:
    """One phase of :meth:`EPNet.relax` with conv states in ``(H, W, C, N)`` layout.

    Built per phase (weights are fixed within it); :meth:`supports` says whether a network fits.
    With ``torch.get_num_threads()`` = T > 1 the batch is split into T chunks of at least
    :data:`MIN_CHUNK` samples that relax side by side in T Python threads, each running its ops
    with one intra-op thread (samples are independent; ``settle_tol`` still stops every chunk at
    the same step, from the largest change over the whole batch). The ops of one step are small
    (~60 of 0.1–1 ms), so this keeps each core on its own chunk instead of synchronising both cores
    in every op; the caller's thread setting is restored afterwards.
    """

    @staticmethod
    def supports(net) -> bool:
        if net.vf or net.n_layers < 2:
            return False
        convs = [c for c in net.conns[1:] if isinstance(c, Conv)]
        if not convs:
            return False
        return all(c.stride == 1 and c.pool in ("m", "i") for c in convs)

    def __init__(self, net, p, consts):
        self.net = net
        self.a, self.c = net.affine.scale, net.affine.offset
        self.identity = self.a == 1.0 and self.c == 0.0
        cache = net.__dict__.setdefault("_spectral_cache", {})
        key = (p["w0"].dtype, p["w0"].device)
        if key not in cache:
            cache[key] = {l: SpectralConv(c, *key) for l, c in enumerate(net.conns) if l >= 1 and isinstance(c, Conv)}
        self.sconv = cache[key]
        self.layers = []  # per connection l ≥ 1: what the step needs
        for l in range(1, net.n_layers):
            conn, w, b = net.conns[l], p[f"w{l}"], p[f"b{l}"]
            if isinstance(conn, Conv):
                sc = self.sconv[l]
                self.layers.append(("conv", sc, sc.weight_spectra(w), b, conn, conn.pool == "m"))
            elif len(conn.pre_shape) == 3:  # dense on a flattened conv state: weight columns in (h, w, c) order
                c_, h_, w_ = conn.pre_shape
                wp = w.view(w.shape[0], c_, h_, w_).permute(0, 2, 3, 1).reshape(w.shape[0], -1)
                self.layers.append(("flat", wp.t().contiguous()))
            else:
                self.layers.append(("dense", w.t(), w))
        self.consts = consts
        self.p = p

    def step(self, s: list[torch.Tensor], beta: float, target, consts) -> list[torch.Tensor]:
        """One synchronous step on engine-layout states with this chunk's constants (engine layout)."""
        net, a, c = self.net, self.a, self.c
        L = len(s)
        n = s[0].shape[-1] if s[0].dim() == 4 else s[0].shape[0]
        pre: list[torch.Tensor | None] = [None] * L
        masks: list[torch.Tensor | None] = [None] * L
        for k in range(1, L):  # bottom-up terms a·F_k(s_{k-1}) + c (+ pooling selections)
            lay, x = self.layers[k - 1], s[k - 1]
            if lay[0] == "conv":
                _, sc, spectra, b, conn, pooled = lay
                f = sc.forward(x, spectra)
                if pooled:
                    f, masks[k] = max_pool_select(f, patch_ties(x, conn))
                b = b.view(-1, 1)
                f = f.add_(b) if self.identity else f.add_(b).mul_(a).add_(c)
                pre[k] = f
            elif lay[0] == "flat":  # (H, W, C, N) flattened to (N, H·W·C)
                pre[k] = torch.addmm(consts[k], x.view(-1, n).t(), lay[1], alpha=a)
            else:
                pre[k] = torch.addmm(consts[k], x, lay[1], alpha=a)
        out = []
        for k in range(L):
            if k + 1 < L:  # top-down term a·J_{k+1}ᵀ s_{k+1}
                lay, post = self.layers[k], s[k + 1]
                if lay[0] == "conv":
                    g = unpool(post, masks[k + 1], lay[4].conv_hw) if lay[5] else post
                    td = lay[1].transpose(g, lay[2])
                    pre[k] = torch.add(consts[0], td, alpha=a) if k == 0 else pre[k].add_(td, alpha=a)
                elif lay[0] == "flat":
                    td = torch.mm(lay[1], post.t()).view(pre[k].shape if k else consts[0].shape)
                    pre[k] = torch.add(consts[0], td, alpha=a) if k == 0 else pre[k].add_(td, alpha=a)
                else:
                    base = consts[0] if k == 0 else pre[k]
                    pre[k] = torch.addmm(base, post, lay[2], alpha=a)
            if beta != 0.0 and k == L - 1:  # the state-dependent half of the nudge
                if net.readout is None:
                    pre[k].add_(s[k], alpha=-a * beta)
                elif s[k].dim() == 4:  # CE read-out on a conv layer: it works on (N, C, H, W)
                    fb = net._ce_feedback(s[k].permute(3, 2, 0, 1), target, self.p)
                    pre[k].add_(fb.permute(2, 3, 1, 0), alpha=-a * beta)
                else:
                    pre[k].add_(net._ce_feedback(s[k], target, self.p), alpha=-a * beta)
            out.append(net.affine.apply(pre[k], True))
        return out

    def run(
        self,
        states: Sequence[torch.Tensor],
        steps: int,
        beta: float,
        target,
        settle_tol: float | None,
        check_every: int,
    ) -> tuple[list[torch.Tensor], int]:
        """Relax ``states`` (the network's layout) for ``steps`` steps; returns (states, steps run)."""
        n = states[0].shape[0]
        threads = torch.get_num_threads()
        parts = max(1, min(threads, n // MIN_CHUNK))
        if parts == 1:
            return self._run_chunk(0, n, states, steps, beta, target, settle_tol, check_every, None)
        bounds = [(i * n // parts, (i + 1) * n // parts) for i in range(parts)]
        sync = _SettleSync(parts) if settle_tol is not None else None

        def work(lo, hi):
            torch.set_num_threads(1)  # this thread's intra-op pool (OpenMP, MKL)
            with torch.no_grad():
                return self._run_chunk(lo, hi, states, steps, beta, target, settle_tol, check_every, sync)

        torch.set_num_threads(1)  # also the default of the new threads
        try:
            with ThreadPoolExecutor(parts) as pool:
                futures = [pool.submit(work, lo, hi) for lo, hi in bounds]
                try:
                    outs = [f.result() for f in futures]
                except BaseException:
                    if sync is not None:
                        sync.barrier.abort()  # release chunks waiting for a failed one
                    raise
        finally:
            torch.set_num_threads(threads)
        return [torch.cat([o[0][k] for o in outs]) for k in range(len(states))], outs[0][1]

    def _run_chunk(self, lo, hi, states, steps, beta, target, settle_tol, check_every, sync):
        def rows(t):
            return t if t is None or t.dim() < 2 else t[lo:hi]  # per-sample tensors; (n,) vectors broadcast

        consts = [to_engine(rows(k)) if k is not None else None for k in self.consts]
        target = rows(target)
        s = [to_engine(rows(t)) for t in states]
        done = steps
        try:
            for t in range(steps):
                new = self.step(s, beta, target, consts)
                if settle_tol is not None and (t + 1) % check_every == 0:
                    change = max((u - v).abs().max().item() for u, v in zip(new, s, strict=True))
                    if sync is not None:
                        change = sync.largest(change)
                    if change <= settle_tol:
                        s, done = new, t + 1
                        break
                s = new
        except BaseException:
            if sync is not None:
                sync.barrier.abort()
            raise
        back = [u.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last) if u.dim() == 4 else u for u in s]
        return back, done


class _SettleSync:
    """The batch-wide largest change of a settle check, shared by the chunks' threads."""

    def __init__(self, parts: int):
        self.barrier = threading.Barrier(parts)
        self.changes: list[float] = []
        self.lock = threading.Lock()
        self.result = 0.0

    def largest(self, change: float) -> float:
        with self.lock:
            self.changes.append(change)
        if self.barrier.wait() == 0:  # one thread publishes the maximum …
            self.result = max(self.changes)
            self.changes.clear()
        self.barrier.wait()  # … before anyone reads it
        result = self.result
        self.barrier.wait()  # and everyone has read it before the next check can overwrite it
        return result
