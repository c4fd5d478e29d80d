"""Stochastic depth with the residual addition fused in.

A residual branch under stochastic depth (Huang et al., "Deep Networks with Stochastic Depth",
ECCV 2016), in the per-sample form of mmcv's ``DropPath``:

    x + dp(gamma * f) = x + f * gamma * floor(keep + u) / keep,   u ~ U[0, 1) per sample,

with ``keep = 1 - drop_prob`` and ``gamma`` the optional layer-scale vector. Written as mmcv
does it (``div``, ``mul``, then the skip ``add``, each a pass over the branch in the forward and
again in the backward), it cost InternImage-T ~5% of a CPU training step. Here it is one
``addcmul`` with a per-sample scale (the scale folds in ``gamma``): the same random numbers
(one ``torch.rand`` of shape [N, 1, ..., 1] in the branch's dtype, as mmcv draws them) and the
same result to float32 rounding (``f * (1 / keep)`` against ``f / keep``).
"""
from __future__ import annotations

import torch
from mmcv.cnn.bricks import DropPath as _MMCVDropPath
from torch import Tensor, nn


class DropPath(_MMCVDropPath):
    """mmcv's ``DropPath`` (``forward`` unchanged) plus :meth:`add`, the fused residual."""

    def add(self, x: Tensor, branch: Tensor, gamma: Tensor | None = None) -> Tensor:
        """``x + self(branch if gamma is None else gamma * branch)`` in one pass."""
        if not self.training or self.drop_prob == 0.:
            return residual_add(x, branch, gamma)
        keep = 1. - self.drop_prob
        shape = (branch.shape[0], ) + (1, ) * (branch.ndim - 1)
        scale = (keep + torch.rand(shape, dtype=branch.dtype, device=branch.device)).floor_()
        scale = scale.div_(keep)
        return torch.addcmul(x, branch, scale if gamma is None else scale * gamma)


def residual_add(x: Tensor, branch: Tensor, gamma: Tensor | None = None,
                 drop_path: nn.Module | None = None) -> Tensor:
    """``x + drop_path(gamma * branch)``: one pass when ``drop_path`` is :class:`DropPath` or
    absent (``nn.Identity``); another module is applied as it is."""
    if isinstance(drop_path, DropPath):
        return drop_path.add(x, branch, gamma)
    if drop_path is not None and not isinstance(drop_path, nn.Identity):
        return x + drop_path(branch if gamma is None else gamma * branch)
    return x + branch if gamma is None else torch.addcmul(x, branch, gamma)
