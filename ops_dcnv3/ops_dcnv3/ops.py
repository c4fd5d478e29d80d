"""The compiled kernels as ``torch.library`` custom ops (``torch.ops.ops_dcnv3.*``).

Registered with fake (meta) implementations and an autograd formula, so ``torch.compile`` and
``torch.export`` trace through DCNv3 as one node without a graph break. Only imported when the
extension ``ops_dcnv3._C`` is built.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import _C
from .validation import output_size

_CPU_NATIVE = (torch.float32, torch.float64)


def _cpu_upcast(*tensors: Tensor) -> tuple[Tensor, ...]:
    # The CPU kernels are float32/float64; half and bfloat16 run in float32.
    return tuple(t.float() for t in tensors)


def run_forward(input: Tensor, offset: Tensor, mask: Tensor, *args) -> Tensor:
    """The compiled forward (arguments already validated)."""
    if input.device.type == 'cpu' and input.dtype not in _CPU_NATIVE:
        return _C.forward(*_cpu_upcast(input, offset, mask), *args).to(input.dtype)
    return _C.forward(input, offset, mask, *args)


def run_backward(grad_output: Tensor, input: Tensor, offset: Tensor, mask: Tensor,
                 *args) -> tuple[Tensor, Tensor, Tensor]:
    """The compiled backward: (grad_input, grad_offset, grad_mask)."""
    if len(args) == 12:
        args = (*args, 0)
    if input.device.type == 'cpu' and input.dtype not in _CPU_NATIVE:
        grads = _C.backward(*_cpu_upcast(grad_output, input, offset, mask), *args)
        return tuple(g.to(input.dtype) for g in grads)
    gi, go, gm = _C.backward(grad_output, input, offset, mask, *args)
    return gi, go, gm


@torch.library.custom_op('ops_dcnv3::dcnv3_forward', mutates_args=())
def dcnv3_forward(input: Tensor, offset: Tensor, mask: Tensor, kernel_h: int, kernel_w: int,
                  stride_h: int, stride_w: int, pad_h: int, pad_w: int, dilation_h: int,
                  dilation_w: int, group: int, group_channels: int, offset_scale: float,
                  remove_center: bool) -> Tensor:
    """DCNv3 forward on the compiled kernels (arguments already validated)."""
    return run_forward(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       dilation_h, dilation_w, group, group_channels, offset_scale, remove_center)


@dcnv3_forward.register_fake
def _(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
      dilation_w, group, group_channels, offset_scale, remove_center):
    ho = output_size(input.shape[1], pad_h, dilation_h, kernel_h, stride_h)
    wo = output_size(input.shape[2], pad_w, dilation_w, kernel_w, stride_w)
    return input.new_empty((input.shape[0], ho, wo, input.shape[3]))


@torch.library.custom_op('ops_dcnv3::dcnv3_backward', mutates_args=())
def dcnv3_backward(grad_output: Tensor, input: Tensor, offset: Tensor, mask: Tensor,
                   kernel_h: int, kernel_w: int, stride_h: int, stride_w: int, pad_h: int,
                   pad_w: int, dilation_h: int, dilation_w: int, group: int, group_channels: int,
                   offset_scale: float, remove_center: bool,
                   strategy: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients (input, offset, mask) of DCNv3.

    ``strategy`` picks how the CPU backward avoids races on grad_input: 0 auto, 1 one task per
    (image, group) owning its slice, 2 atomic adds per output pixel, 3 one task per (image,
    group, band of output rows) with a grad_input copy per band, summed at the end (auto's
    choice when there are fewer than threads / 4 (image, group) pairs, within 512 MiB of
    copies). CUDA ignores it.
    """
    return run_backward(grad_output, input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                        pad_h, pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
                        remove_center, strategy)


@dcnv3_backward.register_fake
def _(grad_output, input, offset, mask, *args, **kwargs):
    return torch.empty_like(input), torch.empty_like(offset), torch.empty_like(mask)


def _setup_context(ctx, inputs, output):
    input, offset, mask, *args = inputs
    ctx.save_for_backward(input, offset, mask)
    ctx.args = args


def _backward(ctx, grad_output):
    input, offset, mask = ctx.saved_tensors
    grads = dcnv3_backward(grad_output.contiguous(), input, offset, mask, *ctx.args)
    return (*grads, *([None] * len(ctx.args)))


dcnv3_forward.register_autograd(_backward, setup_context=_setup_context)
