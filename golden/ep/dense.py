"""Dense-MLP relaxation loop: :meth:`golden.ep.network.EPNet.step` replayed without its bookkeeping.

For an MLP (every connection :class:`~golden.ep.connections.Dense`) a step at batch 50 is a few
tiny matrix products, so the generic step's Python work (per-layer ``isinstance`` checks, f-string
parameter look-ups, list building, a fresh output tensor per layer and step) costs as much as the
arithmetic. :class:`DenseRelax` runs the *same* float operations in the *same* order -- one
``addmm`` per bottom-up term, one ``addmm`` per top-down term accumulating into the same
pre-activation, the same state-dependent half of the nudge, the same in-place activation -- into
two preallocated sets of state buffers used alternately, so its states are bit-identical to
:meth:`EPNet.step`'s (tests/test_ep_dense.py checks ``torch.equal`` on every configuration).

The only differences are where results are written: ``torch.addmm(c, s, w, out=buf)`` for the
generic step's ``pre = torch.addmm(c, s, w)``, ``buf.addmm_(s, w)`` for ``pre = torch.addmm(pre,
s, w)`` and ``buf.add_(s, alpha=...)`` for ``pre = torch.add(pre, s, alpha=...)``; each is the
same ATen kernel with the same operands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .connections import Dense


class DenseRelax:
    """One phase of :meth:`EPNet.relax` for a dense MLP, with the phase's constants bound.

    Parameters
    ----------
    net : the network (``supports(net)`` must hold).
    p : its parameters (``net.params()``), fixed during the phase.
    consts : the phase's :meth:`EPNet.phase_consts`.
    """

    def __init__(self, net, p: Mapping[str, torch.Tensor], consts: Sequence[torch.Tensor | None]):
        L = net.n_layers
        self.net, self.L = net, L
        self.a = float(net.affine.scale)
        # per-layer constants broadcast to the batch once per phase: addmm then copies them into its output
        # (the value it would copy from the broadcast view) without an expand per step
        self.consts = list(consts)
        self._batch_consts: tuple[int, list[torch.Tensor | None]] | None = None
        # forward weights W_k (k ≥ 1) as the transposed views the generic step passes to addmm, and the
        # top-down weights (W_{k+1}, or the feedback weight B_{k+1} for VF) as the generic step picks them
        self.w_up = [None] + [p[f"w{k}"].t() for k in range(1, L)]
        self.w_down = [(p[f"fb{k + 1}"] if net.vf else p[f"w{k + 1}"]) for k in range(L - 1)] + [None]
        self.readout = net.readout
        if self.readout is not None:
            self.wo, self.bo = p["wo"], p["bo"]
        inner = net.affine.inner
        self.g = {"sigmoid": torch.Tensor.sigmoid_, "tanh": torch.Tensor.tanh_}.get(inner)
        self.lo_hi = None if self.g is not None else ((0.0, 1.0) if inner == "clip01" else (-0.5, 0.5))

    @staticmethod
    def supports(net) -> bool:
        """Whether the network is an MLP of dense connections (any activation, MSE or CE, symmetric or VF)."""
        return net.spec.kind == "mlp" and all(isinstance(c, Dense) and len(c.pre_shape) == 1 for c in net.conns)

    def run(self, states: Sequence[torch.Tensor], steps: int, beta: float, target: torch.Tensor | None,
            settle_tol: float | None, check_every: int) -> tuple[list[torch.Tensor], int]:
        """``steps`` steps from ``states`` (not modified); returns the final states and the steps run."""
        L, a, consts = self.L, self.a, self.consts
        w_up, w_down = self.w_up, self.w_down
        g, lo_hi = self.g, self.lo_hi
        nudge_mse = beta != 0.0 and self.readout is None
        nudge_ce = beta != 0.0 and self.readout is not None
        if nudge_ce and target is None:
            raise ValueError("target (one-hot labels) is required when beta != 0")
        neg_ab = -a * beta
        top = L - 1
        cur = list(states)
        consts = self._full_consts(states)
        bufs = ([torch.empty_like(s) for s in states], [torch.empty_like(s) for s in states])
        for t in range(steps):
            new = bufs[t & 1]
            for k in range(L):
                out = new[k]
                # bottom-up term (the input's is the constant consts[0]) ...
                if k == 0:
                    c0 = consts[0]
                    if k + 1 < L:
                        torch.addmm(c0, cur[1], w_down[0], alpha=a, out=out)
                    else:
                        out.copy_(c0)  # the generic step's clone of the constant
                else:
                    torch.addmm(consts[k], cur[k - 1], w_up[k], alpha=a, out=out)
                    if k + 1 < L:  # ... then the top-down term, accumulated into the same pre-activation
                        out.addmm_(cur[k + 1], w_down[k], alpha=a)
                if k == top:
                    if nudge_mse:
                        out.add_(cur[k], alpha=neg_ab)
                    elif nudge_ce:
                        out.add_(self._ce_feedback(cur[k], target).mul_(neg_ab))
                if g is not None:
                    g(out)
                else:
                    out.clamp_(*lo_hi)
            if settle_tol is not None and (t + 1) % check_every == 0:
                change = max((x - y).abs().max().item() for x, y in zip(new, cur, strict=True))
                if change <= settle_tol:
                    return list(new), t + 1
            cur = new
        return list(cur), steps

    def _full_consts(self, states: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
        n = states[0].shape[0]
        if self._batch_consts is None or self._batch_consts[0] != n:
            full = [c if c is None or c.dim() == 2 else c.expand(n, -1).contiguous() for c in self.consts]
            self._batch_consts = (n, full)
        return self._batch_consts[1]

    def _ce_feedback(self, top: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """W_oᵀ (softmax(W_o s + b_o) − y), exactly as :meth:`EPNet._ce_feedback` computes it."""
        logits = torch.addmm(self.bo, top, self.wo.t())
        return torch.softmax(logits, dim=1).sub(target) @ self.wo
