"""Linear layers with their epilogue fused, for CPU inference and the CPU training forward.

``act(x W^T + b)`` and ``r + (x W^T + b)`` written as separate ATen ops make several passes over
the output: ``addmm`` first copies the bias into it, the GEMM reads it back, then the activation
(or the residual add) reads it again and writes a new tensor. When the output is larger than
the caches (the MLP of InternImage's first stages: 25 MB at batch 8, 224 px) these passes, not
the GEMM, set the time. oneDNN, which PyTorch ships for its own CPU fusions
(``torch.ops.mkldnn._linear_pointwise``, used by Inductor), applies the bias and the epilogue
while the output tile is in registers: ~2.7x faster for fc1+GELU at InternImage-T stage 1 on a
2-core Xeon, the same result to float32 rounding.

The fused path is taken only where it is exact and pays: CPU float32 outside autocast, eager
mode (exporters and compilers see the plain ops and fuse by themselves), an activation oneDNN
has, and a memory-bound GEMM (see :data:`MIN_FUSED_NUMEL`; elsewhere the plain ops are as
fast). With an eval-mode owner's packed weights (``layers/packed_weights.py``) the kernel is
used at every size: there it is as fast as MKL or faster at each InternImage shape, and every
linear of a block gets its epilogue fused. Under autograd only the bias and the skip are fused
(an activation's backward needs its input, which the fused kernel never writes), in
:class:`_FusedLinearFunction`, whose backward is ``addmm``'s own (two GEMMs and the bias sum).
Everything else takes the plain ops.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activation import act_, may_overwrite, records_grad, tracing
from .packed_weights import PackedWeights, weight_packing_enabled

#: The fused kernels are used for tall GEMMs (at least MIN_FUSED_ROWS rows) whose output has at
#: least MIN_FUSED_NUMEL elements (4 MiB of float32, no longer cache-resident): there the extra
#: passes over the output cost more than oneDNN's GEMM loses to MKL's on other shapes.
#: InternImage-T at batch 8, 224 px: the linears of stage 1 but the mask projection, and the
#: fc1 of stage 2.
MIN_FUSED_NUMEL = 1 << 20
MIN_FUSED_ROWS = 4096

_ops = getattr(torch.ops.mkldnn, '_linear_pointwise', None) if hasattr(torch.ops, 'mkldnn') \
    else None
_enabled = _ops is not None and torch.backends.mkldnn.is_available()


def fused_available() -> bool:
    """Whether this PyTorch build has oneDNN's fused linear kernels (and they have not failed)."""
    return _enabled


def _epilogue(act: nn.Module | None) -> tuple[str, list, str] | None:
    """oneDNN's name for ``act`` (attr, scalars, algorithm), or None when it has none."""
    if act is None or isinstance(act, nn.Identity):
        return 'none', [], ''
    if type(act) is nn.GELU:
        return 'gelu', [], act.approximate  # 'none' (erf) or 'tanh', as nn.GELU
    if type(act) is nn.ReLU:
        return 'relu', [], ''
    if type(act) is nn.SiLU:
        return 'swish', [], ''
    return None


def _kernel_takes(x: Tensor, weight: Tensor, bias: Tensor | None,
                  other: Tensor | None = None) -> bool:
    """Whether oneDNN's kernel may run on these: it works and no tracer is watching, outside
    autocast, plain CPU float32 tensors."""
    if not _enabled or tracing():
        return False
    if torch.is_autocast_enabled('cpu'):  # autocast picks the linear's dtype itself
        return False
    tensors = (x, weight) + ((other, ) if other is not None else ())
    # plain tensors only: a subclass (FakeTensor, DTensor, ...) has its own dispatch
    if any(type(t) not in (torch.Tensor, nn.Parameter) or t.device.type != 'cpu'
           or t.dtype != torch.float32 for t in tensors):
        return False
    return bias is None or (type(bias) in (torch.Tensor, nn.Parameter)
                            and bias.dtype == torch.float32)


def _eligible(x: Tensor, weight: Tensor, bias: Tensor | None,
              other: Tensor | None = None) -> bool:
    """Whether the fused kernel pays on the plain weight (see :data:`MIN_FUSED_NUMEL`)."""
    if not _kernel_takes(x, weight, bias, other):
        return False
    rows = x.numel() // max(x.shape[-1], 1)
    return rows >= MIN_FUSED_ROWS and rows * weight.shape[0] >= MIN_FUSED_NUMEL


def uses_packed(cache: PackedWeights | None, x: Tensor, *linears: nn.Linear,
                other: Tensor | None = None) -> bool:
    """Whether ``linears`` on ``x`` run on ``cache``'s packed weights: an eval-mode owner with
    packing on, no autograd graph, inputs the kernel takes (any size: on packed weights it is
    as fast as MKL's GEMM or faster at every InternImage shape)."""
    if cache is None or cache.training or not weight_packing_enabled():
        return False
    params = [t for lin in linears for t in (lin.weight, lin.bias)]
    return not records_grad(x, other, *params) \
        and all(_kernel_takes(x, lin.weight, lin.bias, other) for lin in linears)


def _packed(cache: PackedWeights | None, x: Tensor, linears: tuple[nn.Linear, ...],
            other: Tensor | None = None) -> tuple[Tensor, Tensor | None] | None:
    """The packed weight and bias of ``linears`` where :func:`uses_packed`, else None."""
    if not uses_packed(cache, x, *linears, other=other):
        return None
    try:
        return cache.get(*linears)
    except RuntimeError as err:
        _fallback(err)
        return None


def _fused(x: Tensor, weight: Tensor, bias: Tensor | None,
           epilogue: tuple[str, list, str] = ('none', [], ''),
           residual: Tensor | None = None) -> Tensor | None:
    """oneDNN's ``act(x W^T + b)`` or ``residual + x W^T + b``; None if the kernel failed."""
    try:
        if residual is None:
            return _ops(x, weight, bias, *epilogue)
        return _ops.binary(x, residual, weight, bias, 'add')
    except RuntimeError as err:
        _fallback(err)
        return None


class _FusedLinearFunction(torch.autograd.Function):
    """``x W^T + b`` (``+ residual``) with oneDNN's fused bias (and skip) in the forward, and
    the backward of ``addmm``: dx = g W, dW = g^T x, db = sum of g over rows, dr = g."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None,
                residual: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        y = _fused(x, weight, bias, residual=residual)
        if y is not None:
            return y
        y = torch.nn.functional.linear(x, weight, bias)
        return y if residual is None else residual + y

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        gx = gw = gb = gr = None
        if ctx.needs_input_grad[0]:
            gx = g.mm(weight).view(x.shape)
        if ctx.needs_input_grad[1]:
            gw = g.t().mm(x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum(0)
        if ctx.needs_input_grad[3]:
            gr = grad
        return gx, gw, gb, gr


def _fallback(err: Exception) -> None:
    # A private op: should a PyTorch release change it, run the plain ops from then on.
    global _enabled
    _enabled = False
    warnings.warn(f'internimage_mm: oneDNN fused linear failed ({err}); using the plain '
                  'linear and activation from now on.', RuntimeWarning,
                  stacklevel=4)  # the caller of linear_act/_cat/_add (via _fused or _packed)


def linear_act(x: Tensor, linear: nn.Linear, act: nn.Module | None = None,
               packed: PackedWeights | None = None) -> Tensor:
    """``act(linear(x))``, fused on CPU where that is exact and faster; ``packed``: the
    owner's packed weights (used in eval mode, see ``layers/packed_weights.py``)."""
    epilogue = _epilogue(act)
    if epilogue is not None:
        weights = _packed(packed, x, (linear, ))
        y = None if weights is None else _fused(x, *weights, epilogue)
        if y is not None:
            return y
    if epilogue is not None and _eligible(x, linear.weight, linear.bias):
        if records_grad(x, linear.weight, linear.bias):
            y = _FusedLinearFunction.apply(x, linear.weight, linear.bias, None)
            return y if act is None else act(y)
        y = _fused(x, linear.weight, linear.bias, epilogue)
        if y is not None:
            return y
    if act is not None and may_overwrite(x, linear.weight, linear.bias):
        # the bias and the activation in one pass over the GEMM's output (layers/activation.py)
        return act_(act, F.linear(x, linear.weight), linear.bias)
    y = linear(x)
    return y if act is None else act(y)


def linear_cat(x: Tensor, *linears: nn.Linear, packed: PackedWeights | None = None) -> Tensor:
    """``cat([l(x) for l in linears], -1)`` as one GEMM on the stacked weights (every output
    column is the same dot product), fused as :func:`linear_act` where that pays."""
    weights = _packed(packed, x, linears)
    y = None if weights is None else _fused(x, *weights)
    if y is not None:
        return y
    weight = torch.cat([lin.weight for lin in linears])
    bias = torch.cat([lin.bias if lin.bias is not None else lin.weight.new_zeros(lin.out_features)
                      for lin in linears])
    if _eligible(x, weight, bias):
        if records_grad(x, weight, bias):
            return _FusedLinearFunction.apply(x, weight, bias, None)
        y = _fused(x, weight, bias)
        if y is not None:
            return y
    return torch.nn.functional.linear(x, weight, bias)


def linear_add(x: Tensor, linear: nn.Linear, residual: Tensor,
               packed: PackedWeights | None = None) -> Tensor:
    """``residual + linear(x)``, fused on CPU where that is exact and faster."""
    if residual.shape == (*x.shape[:-1], linear.out_features):
        weights = _packed(packed, x, (linear, ), residual)
        y = None if weights is None else _fused(x, *weights, residual=residual)
        if y is not None:
            return y
        if _eligible(x, linear.weight, linear.bias, residual):
            if records_grad(x, linear.weight, linear.bias, residual):
                return _FusedLinearFunction.apply(x, linear.weight, linear.bias, residual)
            y = _fused(x, linear.weight, linear.bias, residual=residual)
            if y is not None:
                return y
    return residual + linear(x)
