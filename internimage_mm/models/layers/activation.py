"""Activations written over their input, for eager inference.

An activation module makes a new tensor. In inference the input is usually a fresh
intermediate (a linear's or a norm's output) that nothing else reads, so the activation can
overwrite it instead; a preceding linear's bias can be added in the same pass. For the exact
(erf) GELU on CPU float32 that pass is a compiled kernel (``ops_dcnv3.bias_gelu_``): at
InternImage-T stage 3 (batch 8) it takes ~0.6 ms where ATen's ``gelu`` takes ~1 ms, and it
replaces ``addmm``'s copy of the bias into its output as well. Results equal the module's to
float32 rounding (the kernel's GELU is within ~4e-7 of the exact value, as ATen's).

Callers check :func:`may_overwrite` first; under autograd, tracing, export or compilation they
call the module itself.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ops_dcnv3 import bias_gelu_


def tracing() -> bool:
    """Whether TorchScript, a ``torch.jit`` trace, an ONNX export or ``torch.compile`` is
    watching: the eager-only fast paths (in-place activations, fused linears) stand aside."""
    return (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or torch.compiler.is_compiling())


def records_grad(*tensors: Tensor | None) -> bool:
    """Whether autograd records an op on ``tensors``: grad mode is on and one requires grad."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def may_overwrite(*tensors: Tensor | None) -> bool:
    """Whether an intermediate computed from ``tensors`` may be overwritten in place: no
    autograd graph records it and no tracer, exporter or compiler is watching."""
    return not tracing() and not records_grad(*tensors)


def act_(act: nn.Module | None, x: Tensor, bias: Tensor | None = None) -> Tensor:
    """``act(x + bias)`` written over ``x`` (which the caller owns; see :func:`may_overwrite`).

    ``act``: ``nn.GELU`` (the erf form runs the compiled kernel on CPU float32), ``nn.ReLU``,
    ``nn.SiLU`` or None/``nn.Identity``; any other module is applied out of place after the
    bias.
    """
    if type(act) is nn.GELU and act.approximate == 'none':
        if bias is None and not x.is_contiguous() and x.dim() == 4 \
                and x.permute(0, 2, 3, 1).is_contiguous():
            bias_gelu_(x.permute(0, 2, 3, 1))  # a channels-first view of channels-last memory
            return x
        return bias_gelu_(x, bias)
    if bias is not None:
        x = x.add_(bias)
    if act is None or type(act) is nn.Identity:
        return x
    if type(act) is nn.ReLU:
        return x.relu_()
    if type(act) is nn.SiLU:
        return nn.functional.silu(x, inplace=True)
    if type(act) is nn.GELU:  # the tanh form
        return torch.ops.aten.gelu_(x, approximate=act.approximate)
    return act(x)
