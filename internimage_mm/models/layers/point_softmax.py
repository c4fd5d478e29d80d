"""Softmax over the sampling points of each DCNv3 group (the mask normalisation).

InternImage normalises the modulation scalars of the K points of each group with a softmax
(paper, Eq. 4: ``sum_k m_gk = 1``). The last dimension is tiny (K = 9), where ATen's generic
softmax kernel is slow on CPU (one short row at a time); the same formula written as whole-tensor
ops is ~4x faster there, and its backward ``dx = y * (dy - sum(dy * y))`` ~3x. The result equals
``F.softmax`` within float32 rounding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .activation import records_grad, tracing


class _PointSoftmax(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = _softmax(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (y, ) = ctx.saved_tensors
        gy = grad * y
        return gy.sub_(y * gy.sum(-1, keepdim=True))


def _softmax(x: Tensor) -> Tensor:
    # in place on the shifted copy: x itself is left as it is
    e = (x - x.amax(-1, keepdim=True)).exp_()
    return e.div_(e.sum(-1, keepdim=True))


def point_softmax(x: Tensor) -> Tensor:
    """Softmax over the last dimension, computed in float32 for float16/bfloat16 inputs (as
    ``F.softmax`` under autocast); returns float32 then. Exporters and compilers see
    ``F.softmax``."""
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if tracing() or not x.is_floating_point() or x.device.type != 'cpu':
        return F.softmax(x, dim=-1)
    if records_grad(x):
        return _PointSoftmax.apply(x)
    return _softmax(x)
