"""Pure-PyTorch DCNv3: the fallback when the extension is not built and the ground truth in tests.

Written from the operator's definition (see ``csrc/common/dcnv3_math.h``) with
``F.grid_sample``; it is differentiable by autograd, traceable by ``torch.export`` and exportable
to ONNX with standard operators (GridSample). Unlike the official pure-PyTorch path it
follows the CUDA kernel for non-square padding (``pad_h`` pads the height) and builds its
sampling grid in the input's dtype, so float64 results are exact.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .validation import check_args


def kernel_grid(kernel_h: int, kernel_w: int, dilation_h: int, dilation_w: int,
                remove_center: bool, dtype: torch.dtype,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(dx, dy) of the kernel points relative to the window centre, width index outer."""
    half_h = (dilation_h * (kernel_h - 1)) // 2
    half_w = (dilation_w * (kernel_w - 1)) // 2
    kx = torch.arange(kernel_w, dtype=dtype, device=device) * dilation_w - half_w
    ky = torch.arange(kernel_h, dtype=dtype, device=device) * dilation_h - half_h
    px = kx.repeat_interleave(kernel_h)
    py = ky.repeat(kernel_w)
    if remove_center:
        keep = torch.ones(kernel_h * kernel_w, dtype=torch.bool, device=device)
        keep[(kernel_w // 2) * kernel_h + kernel_h // 2] = False
        px, py = px[keep], py[keep]
    return px, py


def dcnv3_pytorch(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, kernel_h: int,
                  kernel_w: int, stride_h: int, stride_w: int, pad_h: int, pad_w: int,
                  dilation_h: int, dilation_w: int, group: int, group_channels: int,
                  offset_scale: float, remove_center: bool = False) -> torch.Tensor:
    """DCNv3 core: ``y[n, p0, g] = sum_k mask[n, p0, g, k] * x_g(loc_k)``.

    ``loc_k = p0 + (grid_k + offset[n, p0, g, k]) * offset_scale`` in pixels, bilinear with
    zeros outside the image. Shapes are channels-last: input ``[N, H, W, G*gc]``, offset
    ``[N, Ho, Wo, G*P*2]`` as (dx, dy) pairs, mask ``[N, Ho, Wo, G*P]``; returns
    ``[N, Ho, Wo, G*gc]``. float16/bfloat16 are computed in float32.
    """
    geo = check_args(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                     dilation_h, dilation_w, group, group_channels, offset_scale, remove_center)
    out_dtype = input.dtype
    if out_dtype in (torch.float16, torch.bfloat16):
        input, offset, mask = input.float(), offset.float(), mask.float()
    n, h, w, c = input.shape
    ho, wo, p = geo.height_out, geo.width_out, geo.num_points
    dtype, device = input.dtype, input.device

    px, py = kernel_grid(kernel_h, kernel_w, dilation_h, dilation_w, remove_center, dtype, device)
    centre_x = torch.arange(wo, dtype=dtype, device=device) * stride_w + (
        (dilation_w * (kernel_w - 1)) // 2 - pad_w)
    centre_y = torch.arange(ho, dtype=dtype, device=device) * stride_h + (
        (dilation_h * (kernel_h - 1)) // 2 - pad_h)
    base_x = centre_x.view(1, 1, wo, 1, 1) + px.view(1, 1, 1, 1, p) * offset_scale
    base_y = centre_y.view(1, ho, 1, 1, 1) + py.view(1, 1, 1, 1, p) * offset_scale
    off = offset.reshape(n, ho, wo, group, p, 2)
    loc_x = base_x + off[..., 0] * offset_scale
    loc_y = base_y + off[..., 1] * offset_scale
    # grid_sample with align_corners=False: pixel i spans [i - 0.5, i + 0.5] in normalised units.
    grid = torch.stack(((loc_x + 0.5) * (2.0 / w) - 1.0, (loc_y + 0.5) * (2.0 / h) - 1.0), dim=-1)
    grid = grid.permute(0, 3, 1, 2, 4, 5).reshape(n * group, ho * wo, p, 2)
    value = input.reshape(n, h, w, group, group_channels).permute(0, 3, 4, 1, 2)
    value = value.reshape(n * group, group_channels, h, w)
    sampled = F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros',
                            align_corners=False)  # [N*G, gc, Ho*Wo, P]
    weight = mask.reshape(n, ho * wo, group, 1, p).permute(0, 2, 3, 1, 4)
    out = (sampled.reshape(n, group, group_channels, ho * wo, p) * weight).sum(-1)
    out = out.reshape(n, c, ho, wo).permute(0, 2, 3, 1).contiguous()
    return out.to(out_dtype)
