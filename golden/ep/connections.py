"""The connections of an EP network: ``F(s)`` of a dense or convolutional (pooled) layer, its
transpose, and the weight gradients EP's update needs. Used by :mod:`.network` (the network) and
:mod:`.spectral` (the DFT relaxation of stride-1 convolutions); kept apart so neither imports the other."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["Conv", "Dense"]


class Dense:
    """``F(s) = W s + b`` on the flattened presynaptic layer."""

    def __init__(self, n_in: int, n_out: int, pre_shape: tuple[int, ...]):
        self.n_in, self.n_out, self.pre_shape = n_in, n_out, pre_shape
        self.weight_shape = (n_out, n_in)
        self.bias_shape = (n_out,)

    def forward(self, s: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None):
        s = s.reshape(s.shape[0], -1)
        out = torch.addmm(b, s, w.t()) if b is not None else s @ w.t()
        return out, None

    def transpose(self, post: torch.Tensor, w: torch.Tensor, aux) -> torch.Tensor:
        return (post @ w).reshape((post.shape[0],) + self.pre_shape)

    def weight_grad(self, pre: torch.Tensor, post: torch.Tensor, aux) -> torch.Tensor:
        """∂/∂W of Σ_batch F(pre)·post."""
        return post.t() @ pre.reshape(pre.shape[0], -1)

    def weight_grad_diff(self, pre_b, post_b, aux_b, pre_a, post_a, aux_a, same_pre: bool) -> torch.Tensor:
        """``weight_grad(pre_b, post_b) − weight_grad(pre_a, post_a)`` in one product."""
        if same_pre:
            return self.weight_grad(pre_a, post_b - post_a, None)
        n = pre_a.shape[0]
        posts = torch.cat([post_b, -post_a])
        pres = torch.cat([pre_b.reshape(n, -1), pre_a.reshape(n, -1)])
        return posts.t() @ pres

    def macs(self) -> int:
        return self.n_in * self.n_out


class Conv:
    """``F(s) = pool(conv2d(s, W) + b)`` with 2×2/stride-2 max or average pooling, or none."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, pad: int, pool: str,
                 in_hw: tuple[int, int]):
        self.c_in, self.c_out, self.k, self.stride, self.pad, self.pool = c_in, c_out, k, stride, pad, pool
        self.in_hw = in_hw
        self.conv_hw = tuple((n + 2 * pad - k) // stride + 1 for n in in_hw)
        self.out_hw = self.conv_hw if pool == "i" else tuple(n // 2 for n in self.conv_hw)
        self.pre_shape = (c_in,) + tuple(in_hw)
        self.weight_shape = (c_out, c_in, k, k)
        self.bias_shape = (c_out,)
        # output_padding that makes conv_transpose2d return exactly the input size.
        self.out_pad = tuple(n - ((m - 1) * stride - 2 * pad + k) for n, m in zip(in_hw, self.conv_hw, strict=True))

    def forward(self, s: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None):
        c = F.conv2d(s, w, b, stride=self.stride, padding=self.pad)
        if self.pool == "m":
            return F.max_pool2d(c, 2, 2, return_indices=True)
        if self.pool == "a":
            return F.avg_pool2d(c, 2, 2), None
        return c, None

    def _unpool(self, post: torch.Tensor, aux) -> torch.Tensor:
        if self.pool == "m":
            return F.max_unpool2d(post, aux, 2, 2, output_size=self.conv_hw)
        if self.pool == "a":
            up = post.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3) * 0.25
            h, w = self.conv_hw
            if up.shape[-2:] != (h, w):  # odd conv output: the last row/column feeds no pool window
                up = F.pad(up, (0, w - up.shape[-1], 0, h - up.shape[-2]))
            return up
        return post

    def transpose(self, post: torch.Tensor, w: torch.Tensor, aux) -> torch.Tensor:
        return F.conv_transpose2d(self._unpool(post, aux), w, stride=self.stride, padding=self.pad,
                                  output_padding=self.out_pad)

    def weight_grad(self, pre: torch.Tensor, post: torch.Tensor, aux) -> torch.Tensor:
        return torch.nn.grad.conv2d_weight(pre, self.weight_shape, self._unpool(post, aux),
                                           stride=self.stride, padding=self.pad)

    def weight_grad_diff(self, pre_b, post_b, aux_b, pre_a, post_a, aux_a, same_pre: bool) -> torch.Tensor:
        """``weight_grad(pre_b, post_b) − weight_grad(pre_a, post_a)``; one conv when pre is shared."""
        if same_pre:  # the clamped input: same pre and same pooling indices, linear in post
            return self.weight_grad(pre_a, post_b - post_a, aux_a)
        return self.weight_grad(pre_b, post_b, aux_b) - self.weight_grad(pre_a, post_a, aux_a)

    def macs(self) -> int:
        return self.c_out * self.conv_hw[0] * self.conv_hw[1] * self.c_in * self.k * self.k
