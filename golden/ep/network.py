"""Layered EP network in closed form (ALGORITHMS.md §1).

Primitive function, for layers s_0 = x (clamped), s_1 … s_L::

    Φ(x, s) = Σ_l  F_l(s_l) · s_{l+1}          F_l(s) = W_l s + b_l            (dense)
                                                F_l(s) = pool(conv(s, W_l) + b_l) (conv)

and the synchronous discrete-time dynamics ``s_{t+1} = ρ(∂Φ/∂s (s_t) − β ∂L/∂s)``, i.e.::

    s_k ← ρ( F_{k-1}(s_{k-1}) + J_kᵀ s_{k+1} )            J_k = ∂F_k/∂s_k at the current s_k
    s_L ← ρ( F_{L-1}(s_{L-1}) + β (y − s_L) )               MSE: the nudge sits inside ρ (Laborieux)

``J_kᵀ s_{k+1}`` is computed exactly, not by autograd: ``Wᵀ s`` for dense layers, and for conv
layers the transposed convolution of the max-unpooled ``s_{k+1}`` using the pooling indices of
the same step's forward pass (what autograd of Φ would route). ``F_0(x)`` is computed once per
sample (the input is clamped).

With the CE read-out the top layer leaves the energy: ``Φ_β = Φ − β CE(softmax(W_o s_L + b_o), y)``,
so the last system layer receives ``−β W_oᵀ (softmax − y)``.

With ``connections="vf"`` each connection above the input also has a feedback weight ``B_l`` of
the forward weight's shape; the top-down term uses ``B_l`` (and, for pooled conv layers, the
pooling indices of ``conv(s_l, B_l)``), so the dynamics is a vector field, not a gradient.

Everything here is differentiable and free of in-place updates of its inputs, so the same
:meth:`EPNet.step` runs the relaxation (under ``torch.no_grad``) and the BPTT reference. On CPU,
:meth:`EPNet.relax` of a ConvNet runs the same dynamics through :mod:`golden.ep.spectral` instead:
the conv connections above the input as DFT products (exact up to rounding, ~3× fewer
multiply-accumulates), states in (H, W, N, C) layout; ``conv_algo="direct"`` keeps the step loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .activations import get_activation, get_affine
from .config import NetSpec
from .connections import Conv, Dense
from .dense import DenseRelax
from .spectral import SpectralRelax

Params = Mapping[str, torch.Tensor]
SETTLE_CHECK = 5  # steps between convergence checks of relax(settle_tol=...)
CONV_ALGOS = ("auto", "direct", "spectral")
MLP_ALGOS = ("fast", "generic")


@dataclass
class Clamped:
    """Per-sample constants of a relaxation: the input and its bottom-up term F_0(x)."""

    x: torch.Tensor
    f0: torch.Tensor
    aux0: object


# ----------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------
class EPNet(torch.nn.Module):
    """Float EP network (MLP or ConvNet) with closed-form dynamics and Φ-gradients.

    Parameters are named ``w{l}``/``b{l}`` for connection ``l`` (from layer l to l+1), ``fb{l}``
    for VF feedback weights (l ≥ 1), and ``wo``/``bo`` for the CE read-out.

    Parameters
    ----------
    spec : NetSpec
    dtype : torch.float32 (default) or torch.float64 for checks.
    device : torch device.
    seed : initialisation seed (PyTorch's default Linear/Conv2d init, scaled by ``spec.init_scale``).
    """

    def __init__(self, spec: NetSpec, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 seed: int = 0):
        super().__init__()
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, not {dtype!r}")
        spec.check_size(bytes_per_value=torch.finfo(dtype).bits // 8)  # refuse before allocating
        self.spec = spec
        self.act = get_activation(spec.activation)
        self.affine = get_affine(spec.activation)
        self.vf = spec.connections == "vf"
        self.conns: list[Dense | Conv] = []
        shapes = spec.state_shapes()
        if spec.kind == "mlp":
            sizes = list(spec.layers)
            n_sys = len(sizes) - (2 if spec.loss == "ce" else 1)
            for i in range(n_sys):
                self.conns.append(Dense(sizes[i], sizes[i + 1], (sizes[i],)))
            readout = Dense(sizes[-2], sizes[-1], (sizes[-2],)) if spec.loss == "ce" else None
        else:
            c, h, w = spec.in_shape
            for i, co in enumerate(spec.channels):
                conv = Conv(c, co, spec.kernels[i], spec.strides[i], spec.paddings[i], spec.pools[i], (h, w))
                self.conns.append(conv)
                c, (h, w) = co, conv.out_hw
            fc = list(spec.fc)
            prev_shape, prev_n = (c, h, w), c * h * w
            n_fc_sys = len(fc) - (1 if spec.loss == "ce" else 0)
            for n in fc[:n_fc_sys]:
                self.conns.append(Dense(prev_n, n, prev_shape))
                prev_shape, prev_n = (n,), n
            readout = Dense(prev_n, fc[-1], prev_shape) if spec.loss == "ce" else None
        self.readout = readout
        self.state_shapes = [tuple(s) for s in shapes]
        assert len(self.state_shapes) == len(self.conns)
        self.n_layers = len(self.conns)  # neuron layers in the energy (input excluded)
        # relax(): "spectral" runs the conv connections above the input through DFTs (golden.ep.spectral),
        # "direct" through conv2d/conv_transpose2d; "auto" takes spectral on CPU where it applies.
        self.conv_algo = "auto"
        # relax() of an MLP: "fast" runs golden.ep.dense.DenseRelax (the same operations as step(), in
        # preallocated buffers: bit-identical states), "generic" the step() loop
        self.mlp_algo = "fast"

        gen = torch.Generator().manual_seed(int(seed))
        all_conns = self.conns + ([readout] if readout is not None else [])
        scales = spec.init_scale or (1.0,)
        if len(scales) == 1:
            scales = scales * len(all_conns)
        for l, conn in enumerate(all_conns):
            name = "o" if conn is readout else str(l)
            w, b = _default_init(conn.weight_shape, gen, dtype)
            self.register_parameter(f"w{name}", torch.nn.Parameter((w * scales[l]).to(device)))
            self.register_parameter(f"b{name}", torch.nn.Parameter((b * scales[l]).to(device)))
            if self.vf and conn is not readout and l >= 1:
                fw, _ = _default_init(conn.weight_shape, gen, dtype)
                self.register_parameter(f"fb{l}", torch.nn.Parameter((fw * scales[l]).to(device)))

    # --- helpers --------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.w0.dtype

    @property
    def device(self) -> torch.device:
        return self.w0.device

    def params(self) -> dict[str, torch.Tensor]:
        return dict(self.named_parameters())

    def connection_groups(self) -> list[list[str]]:
        """Parameter names grouped per connection (for per-layer learning rates), read-out last.

        Feedback weights ``fb{l}`` share connection l's group, as in the reference code.
        """
        groups = []
        for l in range(self.n_layers):
            g = [f"w{l}", f"b{l}"]
            if self.vf and l >= 1:
                g.append(f"fb{l}")
            groups.append(g)
        if self.readout is not None:
            groups.append(["wo", "bo"])
        return groups

    def _to_layout(self, t: torch.Tensor) -> torch.Tensor:
        # channels-last makes oneDNN's convolutions ~25 % faster on CPU and pooling much faster.
        if t.dim() == 4 and self.device.type == "cpu":
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape a batch of images (N, C, H, W) / (N, D) into this network's input layout."""
        x = x.to(device=self.device, dtype=self.dtype)
        if self.spec.kind == "mlp":
            return x.reshape(x.shape[0], -1)
        return self._to_layout(x.reshape((x.shape[0],) + tuple(self.spec.in_shape)))

    def init_state(self, batch: int) -> list[torch.Tensor]:
        """Neurons start at 0 for every sample."""
        return [self._to_layout(torch.zeros((batch,) + s, dtype=self.dtype, device=self.device))
                for s in self.state_shapes]

    def clamp(self, x: torch.Tensor, p: Params | None = None) -> Clamped:
        """Compute the constant bottom-up term of the input layer once per sample."""
        p = self.params() if p is None else p
        x = self.prepare_input(x)
        f0, aux0 = self.conns[0].forward(x, p["w0"], p["b0"])
        return Clamped(x, f0, aux0)

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y.to(self.device), self.spec.n_classes).to(self.dtype)

    # --- dynamics -------------------------------------------------------------------------------
    def forwards(self, clamped: Clamped, states: Sequence[torch.Tensor], p: Params):
        """F_l(s_l) and pooling indices for every connection (l = 0 from the clamped input)."""
        fwd, aux = [clamped.f0], [clamped.aux0]
        for l in range(1, self.n_layers):
            f, a = self.conns[l].forward(states[l - 1], p[f"w{l}"], p[f"b{l}"])
            fwd.append(f)
            aux.append(a)
        return fwd, aux

    def pool_indices(self, clamped: Clamped, states: Sequence[torch.Tensor], p: Params) -> list[object]:
        """The ``aux`` half of :meth:`forwards` (pooling indices), without computing what no caller reads:
        dense and unpooled/average-pooled connections have no indices, so their ``F_l`` is skipped."""
        aux = [clamped.aux0]
        for l in range(1, self.n_layers):
            conn = self.conns[l]
            aux.append(conn.forward(states[l - 1], p[f"w{l}"], p[f"b{l}"])[1]
                       if isinstance(conn, Conv) and conn.pool == "m" else None)
        return aux

    def phase_consts(self, clamped: Clamped, beta: float, target: torch.Tensor | None,
                     p: Params) -> list[torch.Tensor | None]:
        """Per-layer constants of one phase, already in the activation's affine frame.

        Layer 0: ``a·F_0(x) + c``; dense layers: ``a·b + c``; the MSE output layer also gets the
        constant half of the nudge, ``a·β·y``. Conv layers keep their bias inside the conv.
        """
        a, c = self.affine.scale, self.affine.offset
        L = self.n_layers
        consts: list[torch.Tensor | None] = []
        for k in range(L):
            if k == 0:
                base = clamped.f0 if (a == 1.0 and c == 0.0) else clamped.f0 * a + c
            elif isinstance(self.conns[k], Dense):
                base = p[f"b{k}"] * a + c
            else:
                base = None
            if beta != 0.0 and k == L - 1 and self.readout is None:
                if target is None:
                    raise ValueError("target (one-hot labels) is required when beta != 0")
                base = base + (a * beta) * target
            consts.append(base)
        return consts

    def step(self, clamped: Clamped, states: Sequence[torch.Tensor], beta: float = 0.0,
             target: torch.Tensor | None = None, p: Params | None = None,
             consts: Sequence[torch.Tensor | None] | None = None) -> list[torch.Tensor]:
        """One synchronous step: every layer computed from the previous step's states.

        ``target`` is the one-hot label (needed only when ``beta != 0``); ``consts`` are this
        phase's :meth:`phase_consts` (computed here when not given). Runs in place when autograd
        is off, out of place (differentiable, for BPTT) when it is on.
        """
        p = self.params() if p is None else p
        if consts is None:
            consts = self.phase_consts(clamped, beta, target, p)
        a, c = self.affine.scale, self.affine.offset
        L = self.n_layers
        inplace = not torch.is_grad_enabled()
        pre: list[torch.Tensor] = [consts[0]] + [None] * (L - 1)
        aux = [clamped.aux0] + [None] * (L - 1)
        for k in range(1, L):  # bottom-up terms a·F_k(s_{k-1}) + c, and pooling indices
            conn, s = self.conns[k], states[k - 1]
            if isinstance(conn, Dense):
                pre[k] = torch.addmm(consts[k], s.reshape(s.shape[0], -1), p[f"w{k}"].t(), alpha=a)
            else:
                f, aux[k] = conn.forward(s, p[f"w{k}"], p[f"b{k}"])
                pre[k] = f if (a == 1.0 and c == 0.0) else f.mul(a).add_(c)
        new = []
        for k in range(L):
            if k + 1 < L:  # top-down term a·J_{k+1}ᵀ s_{k+1}
                conn, post = self.conns[k + 1], states[k + 1]
                w = p[f"fb{k + 1}"] if self.vf else p[f"w{k + 1}"]
                if isinstance(conn, Dense) and len(conn.pre_shape) == 1:
                    pre[k] = torch.addmm(pre[k], post, w, alpha=a)
                else:
                    idx = aux[k + 1]
                    if self.vf and isinstance(conn, Conv) and conn.pool == "m":
                        idx = conn.forward(states[k], w, None)[1]  # VF: pool indices of conv(s, B) itself
                    pre[k] = torch.add(pre[k], conn.transpose(post, w, idx), alpha=a)
            if beta != 0.0 and k == L - 1:  # the state-dependent half of the nudge
                if self.readout is None:
                    pre[k] = torch.add(pre[k], states[k], alpha=-a * beta)
                else:
                    pre[k] = pre[k] + (-a * beta) * self._ce_feedback(states[k], target, p)
            if pre[k] is consts[k]:
                pre[k] = pre[k].clone()
            elif pre[k].dim() == 4:  # keep conv states channels-last (a dense top-down term arrives NCHW)
                pre[k] = self._to_layout(pre[k])
            new.append(self.affine.apply(pre[k], inplace))
        return new

    def _ce_feedback(self, top: torch.Tensor, target: torch.Tensor, p: Params) -> torch.Tensor:
        """W_oᵀ (softmax(W_o s + b_o) − y): ∂CE/∂s_top through the read-out."""
        if target is None:
            raise ValueError("target (one-hot labels) is required when beta != 0")
        logits, _ = self.readout.forward(top, p["wo"], p["bo"])
        return self.readout.transpose(torch.softmax(logits, dim=1) - target, p["wo"], None)

    @torch.no_grad()
    def relax(self, clamped: Clamped, states: Sequence[torch.Tensor], steps: int, beta: float = 0.0,
              target: torch.Tensor | None = None, settle_tol: float | None = None) -> list[torch.Tensor]:
        """Run ``steps`` steps of the dynamics (no autograd).

        With ``settle_tol`` the phase ends early once one step changes no neuron of the batch by
        more than ``settle_tol`` (checked every :data:`SETTLE_CHECK` steps); ``self.last_steps``
        records how many steps ran. ConvNets use the spectral loop when :meth:`uses_spectral`.
        """
        p = self.params()
        consts = self.phase_consts(clamped, beta, target, p)
        if self.uses_spectral():
            out, self.last_steps = SpectralRelax(self, p, consts).run(states, steps, beta, target, settle_tol,
                                                                      SETTLE_CHECK)
            return out
        if self.uses_dense_fast():
            out, self.last_steps = DenseRelax(self, p, consts).run(states, steps, beta, target, settle_tol,
                                                                   SETTLE_CHECK)
            return out
        states = list(states)
        self.last_steps = steps
        for t in range(steps):
            new = self.step(clamped, states, beta, target, p, consts)
            if settle_tol is not None and (t + 1) % SETTLE_CHECK == 0:
                change = max((a - b).abs().max().item() for a, b in zip(new, states, strict=True))
                if change <= settle_tol:
                    self.last_steps = t + 1
                    return new
            states = new
        return states

    def uses_dense_fast(self) -> bool:
        """Whether :meth:`relax` runs the dense-MLP loop (``mlp_algo == "fast"`` on an MLP)."""
        if self.mlp_algo not in MLP_ALGOS:
            raise ValueError(f"mlp_algo must be one of {MLP_ALGOS}, not {self.mlp_algo!r}")
        return self.mlp_algo == "fast" and DenseRelax.supports(self)

    def uses_spectral(self) -> bool:
        """Whether :meth:`relax` runs the spectral loop (``conv_algo``; "auto": on CPU where it applies)."""
        if self.conv_algo not in CONV_ALGOS:
            raise ValueError(f"conv_algo must be one of {CONV_ALGOS}, not {self.conv_algo!r}")
        if self.conv_algo == "direct":
            return False
        ok = SpectralRelax.supports(self)
        if self.conv_algo == "spectral" and not ok:
            raise ValueError("conv_algo='spectral' needs symmetric connections and stride-1 conv connections "
                             "above the input with max or no pooling")
        return ok and (self.conv_algo == "spectral" or self.device.type == "cpu")

    # --- read-out -------------------------------------------------------------------------------
    def logits(self, states: Sequence[torch.Tensor], p: Params | None = None) -> torch.Tensor:
        """Class scores: the output layer (MSE) or the read-out's logits (CE)."""
        if self.readout is None:
            return states[-1]
        p = self.params() if p is None else p
        return self.readout.forward(states[-1], p["wo"], p["bo"])[0]

    def predict(self, states: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.logits(states).argmax(dim=1)

    def loss(self, states: Sequence[torch.Tensor], target: torch.Tensor, p: Params | None = None) -> torch.Tensor:
        """Per-sample loss L: ½‖s_L − y‖² (MSE) or CE of the softmax read-out."""
        z = self.logits(states, p)
        if self.readout is None:
            return 0.5 * ((z - target) ** 2).sum(dim=1)
        return -(target * torch.log_softmax(z, dim=1)).sum(dim=1)

    # --- energy and its parameter gradients -------------------------------------------------------
    def phi(self, x: torch.Tensor, states: Sequence[torch.Tensor], beta: float = 0.0,
            target: torch.Tensor | None = None, p: Params | None = None) -> torch.Tensor:
        """Φ_β per sample, computed explicitly (for checks against autograd; symmetric nets only)."""
        if self.vf:
            raise ValueError("phi is defined for connections='symmetric' only (VF has no energy)")
        p = self.params() if p is None else p
        layers = [self.prepare_input(x)] + list(states)
        total = 0.0
        for l, conn in enumerate(self.conns):
            f, _ = conn.forward(layers[l], p[f"w{l}"], p[f"b{l}"])
            total = total + (f * layers[l + 1]).flatten(1).sum(dim=1)
        if beta != 0.0:
            total = total - beta * self.loss(states, target, p)
        return total

    def phi_grads(self, clamped: Clamped, states: Sequence[torch.Tensor], beta: float = 0.0,
                  target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """∂Φ_β/∂θ summed over the batch, in closed form (``fb`` excluded: see :meth:`ep_update`)."""
        p = self.params()
        layers = [clamped.x] + list(states)
        aux = self.pool_indices(clamped, states, p)
        g = {}
        for l, conn in enumerate(self.conns):
            post = layers[l + 1]
            g[f"w{l}"] = conn.weight_grad(layers[l], post, aux[l])
            g[f"b{l}"] = _channel_sum(post)
        if self.readout is not None:
            g["wo"], g["bo"] = self.phi_grads_readout(states, beta, target)
        return g

    @torch.no_grad()
    def ep_update(self, clamped: Clamped, s_a: Sequence[torch.Tensor], beta_a: float,
                  s_b: Sequence[torch.Tensor], beta_b: float,
                  target: torch.Tensor, s_free: Sequence[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """EP estimate Δθ ≈ −∂L/∂θ (batch mean) from two states at β_a ≠ β_b.

        Δ = [∂Φ_{β_b}/∂θ(s_b) − ∂Φ_{β_a}/∂θ(s_a)] / (β_b − β_a). One-sided uses
        (s_free, 0) → (s^β, β); the symmetric estimator (s^{−β}, −β) → (s^{+β}, +β).
        """
        if beta_a == beta_b:
            raise ValueError(f"beta_a and beta_b must differ, both are {beta_a!r}")
        pre = s_free if s_free is not None else s_a
        return self.phi_delta(clamped, s_a, beta_a, s_b, beta_b, 1.0 / (beta_b - beta_a), target, pre)

    @torch.no_grad()
    def phi_delta(self, clamped: Clamped, s_a: Sequence[torch.Tensor], beta_a: float,
                  s_b: Sequence[torch.Tensor], beta_b: float, scale: float,
                  target: torch.Tensor, s_pre: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """``scale · [∂Φ_{β_b}/∂θ(s_b) − ∂Φ_{β_a}/∂θ(s_a)]`` averaged over the batch.

        For VF connections there is no Φ: each weight moves along its postsynaptic layer's state
        difference (s_b − s_a) times its presynaptic state ``s_pre`` (the free state for EP, the
        previous step's state for C-VF) — the vector-field update of Laborieux et al. With
        ``same_update`` the feedback weights receive the forward weights' update.
        """
        scale = scale / clamped.x.shape[0]
        p = self.params()
        out: dict[str, torch.Tensor] = {}
        if not self.vf or self.spec.same_update:
            la, lb = [clamped.x] + list(s_a), [clamped.x] + list(s_b)
            aux_a = self.pool_indices(clamped, s_a, p)
            aux_b = self.pool_indices(clamped, s_b, p)
            for l, conn in enumerate(self.conns):
                out[f"w{l}"] = conn.weight_grad_diff(lb[l], lb[l + 1], aux_b[l], la[l], la[l + 1], aux_a[l],
                                                     same_pre=(l == 0)).mul_(scale)
                out[f"b{l}"] = _channel_sum(lb[l + 1] - la[l + 1]).mul_(scale)
            if self.readout is not None:
                ga = self.phi_grads_readout(s_a, beta_a, target)
                gb = self.phi_grads_readout(s_b, beta_b, target)
                out["wo"] = (gb[0] - ga[0]) * scale
                out["bo"] = (gb[1] - ga[1]) * scale
            if self.vf:
                for l in range(1, self.n_layers):
                    out[f"fb{l}"] = out[f"w{l}"].clone()
            return out
        layers_p = [clamped.x] + list(s_pre)
        la, lb = [clamped.x] + list(s_a), [clamped.x] + list(s_b)
        aux_p = self.pool_indices(clamped, s_pre, p)
        for l, conn in enumerate(self.conns):
            dpost = lb[l + 1] - la[l + 1]
            out[f"w{l}"] = conn.weight_grad(layers_p[l], dpost, aux_p[l]) * scale
            out[f"b{l}"] = _channel_sum(dpost) * scale
            if l >= 1:
                # feedback weight B_l drives layer l from layer l+1 through the term F_B(s_l)·s_{l+1}:
                # postsynaptic = layer l, presynaptic = layer l+1
                fb = p[f"fb{l}"]
                a_b = conn.forward(lb[l], fb, None)[1]
                a_a = conn.forward(la[l], fb, None)[1]
                out[f"fb{l}"] = (conn.weight_grad(lb[l], layers_p[l + 1], a_b)
                                 - conn.weight_grad(la[l], layers_p[l + 1], a_a)) * scale
        if self.readout is not None:
            ga = self.phi_grads_readout(s_a, beta_a, target)
            gb = self.phi_grads_readout(s_b, beta_b, target)
            out["wo"] = (gb[0] - ga[0]) * scale
            out["bo"] = (gb[1] - ga[1]) * scale
        return out

    def phi_grads_readout(self, states: Sequence[torch.Tensor], beta: float, target: torch.Tensor | None):
        """∂Φ_β/∂(W_o, b_o) summed over the batch: −β (softmax − y) ⊗ s_top (zero at β = 0)."""
        p = self.params()
        if beta == 0.0:
            return torch.zeros_like(p["wo"]), torch.zeros_like(p["bo"])
        z, _ = self.readout.forward(states[-1], p["wo"], p["bo"])
        err = torch.softmax(z, dim=1) - target
        return -beta * self.readout.weight_grad(states[-1], err, None), -beta * err.sum(dim=0)

    def macs_per_step(self) -> int:
        """Multiply-accumulates of one relaxation step per sample (forward + transposed terms)."""
        return sum(c.macs() for c in self.conns[1:]) * 2


def _channel_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over batch and spatial positions: the bias gradient of a layer's state."""
    return t.sum(dim=tuple(d for d in range(t.dim()) if d != 1))


def _default_init(shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype):
    """PyTorch's default nn.Linear / nn.Conv2d init: U(±1/√fan_in) for weights and biases."""
    fan_in = math.prod(shape[1:])
    bound = 1.0 / math.sqrt(fan_in)
    w = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
    b = (torch.rand(shape[0], generator=gen, dtype=torch.float64) * 2 - 1) * bound
    return w.to(dtype), b.to(dtype)
