"""Public entry points: ``dcnv3`` (autograd-aware) and the official ``DCNv3Function`` API."""
from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import torch
from torch import Tensor

from .reference import dcnv3_pytorch
from .validation import check_args

_ops: ModuleType | None = None
_load_error: Exception | None = None
try:
    _ops = importlib.import_module('ops_dcnv3.ops')
except ImportError as e:  # extension not built: the pure-PyTorch path serves every call
    _load_error = e

_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def extension_available() -> bool:
    """Whether the compiled kernels (``ops_dcnv3._C``) are importable."""
    return _ops is not None


def cuda_kernels_available() -> bool:
    """Whether the compiled extension includes the CUDA kernels."""
    return _ops is not None and bool(_ops._C.with_cuda())


def _use_compiled(input: Tensor) -> bool:
    if _ops is None:
        _warn_once('missing', f'ops_dcnv3: compiled extension not available ({_load_error}); '
                   'using the pure-PyTorch DCNv3 (slow). Build it with '
                   '`pip install --no-build-isolation -e ops_dcnv3`.')
        return False
    if input.device.type == 'cuda' and not cuda_kernels_available():
        _warn_once('cuda', 'ops_dcnv3 was built without CUDA kernels; using the pure-PyTorch '
                   'DCNv3 for CUDA tensors. Rebuild on a machine with a CUDA toolkit.')
        return False
    if input.device.type not in ('cpu', 'cuda'):
        _warn_once(input.device.type, f'ops_dcnv3 has no {input.device.type} kernel; using the '
                   'pure-PyTorch DCNv3.')
        return False
    return True


def dcnv3(input: Tensor, offset: Tensor, mask: Tensor, kernel_h: int, kernel_w: int,
          stride_h: int, stride_w: int, pad_h: int, pad_w: int, dilation_h: int,
          dilation_w: int, group: int, group_channels: int, offset_scale: float,
          remove_center: bool = False) -> Tensor:
    """Deformable sampling core of DCNv3 (InternImage, CVPR 2023, eq. 5).

    ``y(p0) = sum_g sum_k m_gk * x_g(p0 + p_k + dp_gk)`` for each group ``g`` over the ``K``
    kernel points, with bilinear sampling at the offset locations. Channels-last tensors:
    input ``[N, H, W, G*gc]``, offset ``[N, Ho, Wo, G*K*2]`` (dx, dy in pixels), mask
    ``[N, Ho, Wo, G*K]`` (already normalised); returns ``[N, Ho, Wo, G*gc]``.

    Runs the compiled CPU/CUDA kernels when built, else the pure-PyTorch reference (one
    warning). Differentiable w.r.t. input, offset and mask; bad arguments raise
    ``ValueError``/``TypeError`` naming them.
    """
    check_args(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
               dilation_h, dilation_w, group, group_channels, offset_scale, remove_center)
    if not _use_compiled(input):
        return dcnv3_pytorch(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h,
                             pad_w, dilation_h, dilation_w, group, group_channels, offset_scale,
                             remove_center)
    args = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, group,
            group_channels, float(offset_scale), remove_center)
    if _eager(input, offset, mask):
        return _EagerDCNv3.apply(input, offset, mask, *args)
    return _ops.dcnv3_forward(input, offset, mask, *args)


def softmax_kernel_applies(*tensors: Tensor) -> bool:
    """Whether :func:`dcnv3_from_logits` runs the fused CPU kernels on ``tensors``: compiled
    extension, CPU float32/float64 (one dtype), eager mode."""
    return (_ops is not None and all(t.device.type == 'cpu' for t in tensors)
            and tensors[0].dtype in (torch.float32, torch.float64)
            and all(t.dtype == tensors[0].dtype for t in tensors)
            and not torch.onnx.is_in_onnx_export() and _eager(*tensors))


def dcnv3_from_logits(input: Tensor, offset_mask: Tensor, kernel_h: int, kernel_w: int,
                      stride_h: int, stride_w: int, pad_h: int, pad_w: int, dilation_h: int,
                      dilation_w: int, group: int, group_channels: int, offset_scale: float,
                      remove_center: bool = False) -> Tensor:
    """DCNv3 from one projection's output, the mask softmax-normalised over each group's points.

    ``offset_mask`` ``[N, Ho, Wo, G*K*3]`` holds each pixel's ``G*K*2`` offsets followed by its
    ``G*K`` mask logits; the result is ``dcnv3(input, offset, softmax_K(logits))``, the mask
    normalisation of InternImage (paper eq. 4). On CPU (see :func:`softmax_kernel_applies`)
    the softmax runs inside the compiled kernels, forward and backward, so no mask tensor is
    written and read back; elsewhere (CUDA, half precision, tracing) it is that composition,
    with ``F.softmax``. Differentiable w.r.t. ``input`` and ``offset_mask`` either way.
    """
    if not isinstance(offset_mask, Tensor) or offset_mask.dim() != 4 \
            or offset_mask.shape[-1] % 3 != 0:
        shape = tuple(offset_mask.shape) if isinstance(offset_mask, Tensor) else offset_mask
        raise ValueError('dcnv3: offset_mask must be a 4-D channels-last tensor whose last dim '
                         f'is group * points * 3 (offsets, then mask logits), got {shape}')
    points = offset_mask.shape[-1] // 3
    offset, logits = offset_mask.split((2 * points, points), dim=-1)
    check_args(input, offset, logits, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
               dilation_h, dilation_w, group, group_channels, offset_scale, remove_center)
    args = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, group,
            group_channels, float(offset_scale), bool(remove_center))
    if softmax_kernel_applies(input, offset_mask):
        if torch.is_grad_enabled() and (input.requires_grad or offset_mask.requires_grad):
            return _SoftmaxDCNv3.apply(input, offset_mask, *args)
        return _ops._C.forward_softmax(input, offset_mask, *args)
    shape = logits.shape
    # float32 softmax for half/bfloat16 logits, as F.softmax under autocast
    upcast = torch.float32 if logits.dtype in (torch.float16, torch.bfloat16) else None
    mask = torch.softmax(logits.reshape(*shape[:-1], group, points // group), dim=-1,
                         dtype=upcast)
    return dcnv3(input, offset, mask.reshape(shape).to(logits.dtype), *args)


def _eager(*tensors: Tensor) -> bool:
    """Plain tensors outside torch.compile/export/jit tracing: the custom op's Python dispatch
    (~15 us a call) buys nothing there, so the kernels are called directly."""
    return (not torch.compiler.is_compiling() and not torch.jit.is_tracing()
            and all(type(t) is torch.Tensor for t in tensors))


class _EagerDCNv3(torch.autograd.Function):
    """Eager-mode autograd over the same kernels as the ``ops_dcnv3::dcnv3_forward`` op."""

    @staticmethod
    def forward(ctx, input, offset, mask, *args):
        ctx.args = args
        ctx.save_for_backward(input, offset, mask)
        return _ops.run_forward(input, offset, mask, *args)

    @staticmethod
    def backward(ctx, grad_output):
        input, offset, mask = ctx.saved_tensors
        grads = _ops.run_backward(grad_output.contiguous(), input, offset, mask, *ctx.args)
        return (*grads, *([None] * len(ctx.args)))


class _SoftmaxDCNv3(torch.autograd.Function):
    """Autograd of :func:`dcnv3_from_logits` over the fused CPU kernels: the backward
    recomputes the softmax from the saved logits and returns the logits' gradient,
    ``m * (g - <m, g>)`` per group, with the offsets' (one tensor, as the input was)."""

    @staticmethod
    def forward(ctx, input, offset_mask, *args):
        ctx.args = args
        ctx.save_for_backward(input, offset_mask)
        return _ops._C.forward_softmax(input, offset_mask, *args)

    @staticmethod
    def backward(ctx, grad_output):
        input, offset_mask = ctx.saved_tensors
        grad_input, grad_offset_mask = _ops._C.backward_softmax(
            grad_output.contiguous(), input, offset_mask, *ctx.args, 0)
        return (grad_input, grad_offset_mask, *([None] * len(ctx.args)))


class DCNv3Function(torch.autograd.Function):
    """The official operator's autograd API, kept for users porting code.

    ``DCNv3Function.apply(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h,
    pad_w, dilation_h, dilation_w, group, group_channels, offset_scale, im2col_step,
    remove_center)``. ``im2col_step`` is checked and otherwise unused: these kernels need no
    im2col buffer, so any batch size works. Prefer :func:`dcnv3`.
    """

    @staticmethod
    def forward(ctx, input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                dilation_h, dilation_w, group, group_channels, offset_scale, im2col_step,
                remove_center=False):
        if isinstance(im2col_step, bool) or not isinstance(im2col_step, int) or im2col_step < 1:
            raise ValueError(f'dcnv3: im2col_step must be a positive int, got {im2col_step!r}')
        args = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w,
                group, group_channels, float(offset_scale), bool(remove_center))
        ctx.args = args
        ctx.save_for_backward(input, offset, mask)
        return dcnv3(input, offset, mask, *args)

    @staticmethod
    def backward(ctx, grad_output):
        input, offset, mask = ctx.saved_tensors
        if _use_compiled(input):
            grads = _ops.run_backward(grad_output.contiguous(), input, offset, mask, *ctx.args)
        else:
            with torch.enable_grad():
                leaves = [t.detach().requires_grad_() for t in (input, offset, mask)]
                out = dcnv3_pytorch(*leaves, *ctx.args)
                grads = torch.autograd.grad(out, leaves, grad_output)
        return (*grads, *([None] * 13))


def bias_gelu_(y: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y = GELU(y + bias)`` in place (the erf form, as ``nn.GELU()``), returning ``y``.

    The compiled CPU kernel (one pass, the bias folded in; see ``csrc/cpu/gelu_cpu.cpp``) where
    it applies: extension built, CPU float32 contiguous tensors, a bias (if any) of ``y``'s last
    size. Elsewhere ATen's in-place ops. Not autograd-aware: for tensors no graph records.
    """
    if y.requires_grad and torch.is_grad_enabled():
        raise RuntimeError('bias_gelu_: y requires grad; the in-place GELU is for inference')
    if (_ops is not None and y.device.type == 'cpu' and y.dtype == torch.float32
            and y.is_contiguous() and (bias is None or (
                bias.device.type == 'cpu' and bias.dtype == torch.float32 and bias.dim() == 1
                and bias.is_contiguous() and y.dim() >= 1 and bias.shape[0] == y.shape[-1]))):
        return _ops._C.bias_gelu_(y, bias)
    if bias is not None:
        y.add_(bias)
    return torch.ops.aten.gelu_(y)


def dwconv_ln(x: Tensor, weight: Tensor, conv_bias: Tensor | None, ln_weight: Tensor,
              ln_bias: Tensor, eps: float, gelu: bool = True) -> Tensor:
    """``GELU(LayerNorm(depthwise_conv(x)))`` of channels-last ``x`` [N, H, W, C]: the features
    of the DCNv3 module's offset branch (``dw_conv``), [N, H, W, C].

    ``weight`` [C, 1, k, k] (k odd; stride 1, zero padding (k - 1) / 2), ``conv_bias`` [C] or
    None; the LayerNorm over C with ``ln_weight``, ``ln_bias``, ``eps``; ``gelu=False`` leaves
    the activation out. On CPU float32 outside autograd (inference) the compiled kernel does it
    in one pass per pixel (``csrc/cpu/dwconv_ln_cpu.cpp``); elsewhere the same composition of
    ATen ops, differentiable.
    """
    params = (weight, conv_bias, ln_weight, ln_bias)
    if (_ops is not None and x.device.type == 'cpu' and x.dtype == torch.float32
            and x.dim() == 4 and x.is_contiguous()
            and not (torch.is_grad_enabled()
                     and any(t is not None and t.requires_grad for t in (x, *params)))
            and all(t is None or (t.device.type == 'cpu' and t.dtype == torch.float32)
                    for t in params)):
        return _ops._C.dwconv_ln(x, weight, conv_bias, ln_weight.contiguous(),
                                 ln_bias.contiguous(), eps, gelu)
    k = weight.shape[-1]
    y = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), weight, conv_bias, padding=k // 2,
                                   groups=x.shape[-1]).permute(0, 2, 3, 1)
    y = torch.nn.functional.layer_norm(y, (x.shape[-1], ), ln_weight, ln_bias, eps)
    return torch.nn.functional.gelu(y) if gelu else y


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """``F.layer_norm(x, (C, ), weight, bias, eps)`` over the last dimension C of ``x``.

    On CPU float32 outside autograd (inference) the compiled kernel
    (``csrc/cpu/layer_norm_cpu.cpp``: each row's mean, then its variance from the squared
    deviations, while the row is in L1); elsewhere ATen's, differentiable. Equal to ATen's to
    float32 rounding.
    """
    c = x.shape[-1] if x.dim() else 0
    if (_ops is not None and x.device.type == 'cpu' and x.dtype == torch.float32 and x.dim() >= 1
            and not (torch.is_grad_enabled()
                     and any(t.requires_grad for t in (x, weight, bias)))
            and all(t.device.type == 'cpu' and t.dtype == torch.float32 and t.shape == (c, )
                    for t in (weight, bias))):
        return _ops._C.layer_norm(x.contiguous(), weight.contiguous(), bias.contiguous(), eps)
    return torch.nn.functional.layer_norm(x, (c, ), weight, bias, eps)

