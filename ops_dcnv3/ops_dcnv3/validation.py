"""Argument checks shared by every DCNv3 path (compiled kernels and pure-PyTorch reference).

Every check runs before any kernel, and a failure names the offending argument, so a bad call
raises ``ValueError``/``TypeError`` instead of reading out of bounds or crashing the process.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass(frozen=True)
class Geometry:
    """Sizes implied by the arguments of one DCNv3 call."""

    batch: int
    height_in: int
    width_in: int
    height_out: int
    width_out: int
    num_points: int


def output_size(size: int, pad: int, dilation: int, kernel: int, stride: int) -> int:
    """Sliding-window output size, as in ``torch.nn.Conv2d``."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f'dcnv3: {name} must be an int, got {type(value).__name__}')
    if value < minimum:
        bound = 'positive' if minimum == 1 else 'non-negative'
        raise ValueError(f'dcnv3: {name} must be {bound}, got {value}')
    return value


def check_args(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, kernel_h: int,
               kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
               dilation_h: int, dilation_w: int, group: int, group_channels: int,
               offset_scale: float, remove_center: bool) -> Geometry:
    """Validate one DCNv3 call and return its geometry.

    Raises:
        TypeError: a tensor argument is not a tensor, has a non-float dtype, or the three
            tensors disagree in dtype; an integer argument is not an int.
        ValueError: wrong rank, channels != group * group_channels, offset/mask sizes that do
            not match the kernel, non-positive sizes, tensors on different devices, an empty
            image (height or width 0), or an input too small for the kernel.
    """
    for name, t in (('input', input), ('offset', offset), ('mask', mask)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f'dcnv3: {name} must be a torch.Tensor, got {type(t).__name__}')
        if t.dim() != 4:
            raise ValueError(f'dcnv3: {name} must be a 4-D channels-last tensor [N, H, W, C], '
                             f'got shape {tuple(t.shape)}')
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f'dcnv3: {name} must be a floating tensor, got {t.dtype}')
    if offset.dtype != input.dtype or mask.dtype != input.dtype:
        raise TypeError(f'dcnv3: dtype mismatch: input {input.dtype}, offset {offset.dtype}, '
                        f'mask {mask.dtype} (cast them to one dtype)')
    if offset.device != input.device or mask.device != input.device:
        raise ValueError(f'dcnv3: device mismatch: input on {input.device}, offset on '
                         f'{offset.device}, mask on {mask.device}')
    for name, value in (('kernel_h', kernel_h), ('kernel_w', kernel_w), ('stride_h', stride_h),
                        ('stride_w', stride_w), ('dilation_h', dilation_h),
                        ('dilation_w', dilation_w), ('group', group),
                        ('group_channels', group_channels)):
        _check_int(name, value, 1)
    _check_int('pad_h', pad_h, 0)
    _check_int('pad_w', pad_w, 0)
    if not isinstance(offset_scale, (int, float)) or isinstance(offset_scale, bool):
        raise TypeError(f'dcnv3: offset_scale must be a float, got {type(offset_scale).__name__}')
    if not isinstance(remove_center, bool):
        raise TypeError(f'dcnv3: remove_center must be a bool, got {type(remove_center).__name__}')

    n, h, w, c = input.shape
    if h < 1 or w < 1:
        # Padding would give an empty image a non-empty output whose every read is outside it.
        raise ValueError(f'dcnv3: input height and width must be at least 1, got input of shape '
                         f'{tuple(input.shape)}')
    if c != group * group_channels:
        raise ValueError(f'dcnv3: input has {c} channels but group * group_channels = '
                         f'{group} * {group_channels} = {group * group_channels}')
    num_points = kernel_h * kernel_w - int(remove_center)
    if num_points < 1:
        raise ValueError('dcnv3: remove_center=True leaves no sampling point for a 1x1 kernel')
    h_out = output_size(h, pad_h, dilation_h, kernel_h, stride_h)
    w_out = output_size(w, pad_w, dilation_w, kernel_w, stride_w)
    if h_out < 1 or w_out < 1:
        raise ValueError(f'dcnv3: input of spatial size {h}x{w} is too small for kernel '
                         f'{kernel_h}x{kernel_w}, pad ({pad_h}, {pad_w}), dilation '
                         f'({dilation_h}, {dilation_w})')
    expected_offset = (n, h_out, w_out, group * num_points * 2)
    if tuple(offset.shape) != expected_offset:
        raise ValueError(f'dcnv3: offset must have shape {expected_offset} '
                         f'(last dim group * points * 2 = {group} * {num_points} * 2), '
                         f'got {tuple(offset.shape)}')
    expected_mask = (n, h_out, w_out, group * num_points)
    if tuple(mask.shape) != expected_mask:
        raise ValueError(f'dcnv3: mask must have shape {expected_mask} '
                         f'(last dim group * points = {group} * {num_points}), '
                         f'got {tuple(mask.shape)}')
    return Geometry(n, h, w, h_out, w_out, num_points)
