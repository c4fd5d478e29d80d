"""The official InternImage pure-PyTorch DCNv3 core, re-implemented for comparisons.

Official InternImage users without the CUDA op run ``dcnv3_core_pytorch``; the benchmarks
compare our kernels with *its algorithm*, so this module follows it step by step (our own
code, written from its published description, not a copy):

1. pad the channels-last input explicitly (``F.pad``; as officially, ``pad_h`` pads the
   *width* and ``pad_w`` the height, which only matters for non-square padding);
2. sampling locations in [0, 1] of the padded image: reference points (window centres) plus
   the dilation grid times ``offset_scale``, both normalised by the padded size, plus
   ``offset * offset_scale / (W_in, H_in)``;
3. one ``F.grid_sample`` (bilinear, zeros, ``align_corners=False``) over ``N * G`` images of
   ``gc`` channels, then the mask product and the sum over points.

For square padding it computes the same function as :func:`ops_dcnv3.dcnv3_pytorch` (tests
check that), with more work: the padded copy and float32 normalised coordinates.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ['dcnv3_official_pytorch']


def _reference_points(h_in: int, w_in: int, kernel_h: int, kernel_w: int, dilation_h: int,
                      dilation_w: int, stride_h: int, stride_w: int, dtype: torch.dtype,
                      device: torch.device) -> tuple[torch.Tensor, int, int]:
    """Window centres in normalised padded coordinates, ``[1, Ho, Wo, 1, 2]`` as (x, y)."""
    h_out = (h_in - (dilation_h * (kernel_h - 1) + 1)) // stride_h + 1
    w_out = (w_in - (dilation_w * (kernel_w - 1) + 1)) // stride_w + 1
    first_y = (dilation_h * (kernel_h - 1)) // 2 + 0.5
    first_x = (dilation_w * (kernel_w - 1)) // 2 + 0.5
    ys = torch.linspace(first_y, first_y + (h_out - 1) * stride_h, h_out, dtype=dtype,
                        device=device) / h_in
    xs = torch.linspace(first_x, first_x + (w_out - 1) * stride_w, w_out, dtype=dtype,
                        device=device) / w_in
    ref_y, ref_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack((ref_x, ref_y), -1).reshape(1, h_out, w_out, 1, 2), h_out, w_out


def _dilation_grid(h_in: int, w_in: int, kernel_h: int, kernel_w: int, dilation_h: int,
                   dilation_w: int, group: int, dtype: torch.dtype,
                   device: torch.device) -> torch.Tensor:
    """Kernel point displacements, normalised, ``[1, 1, 1, G * P, 2]`` (width index outer)."""
    half_w = (dilation_w * (kernel_w - 1)) // 2
    half_h = (dilation_h * (kernel_h - 1)) // 2
    dx = torch.linspace(-half_w, -half_w + (kernel_w - 1) * dilation_w, kernel_w, dtype=dtype,
                        device=device) / w_in
    dy = torch.linspace(-half_h, -half_h + (kernel_h - 1) * dilation_h, kernel_h, dtype=dtype,
                        device=device) / h_in
    gx, gy = torch.meshgrid(dx, dy, indexing='ij')  # x outer, y inner
    grid = torch.stack((gx, gy), -1).reshape(1, -1, 2).repeat(group, 1, 1)
    return grid.reshape(1, 1, 1, -1, 2)


def dcnv3_official_pytorch(input: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                           kernel_h: int, kernel_w: int, stride_h: int, stride_w: int,
                           pad_h: int, pad_w: int, dilation_h: int, dilation_w: int, group: int,
                           group_channels: int, offset_scale: float,
                           remove_center: bool = False) -> torch.Tensor:
    """The official pure-PyTorch DCNv3 core's algorithm (same arguments as
    :func:`ops_dcnv3.dcnv3`; ``remove_center`` is not supported, as officially)."""
    if remove_center:
        raise ValueError('dcnv3_official_pytorch: remove_center is not part of the official core')
    input = F.pad(input, [0, 0, pad_h, pad_h, pad_w, pad_w])
    n, h_in, w_in, _ = input.shape
    dtype, device = input.dtype, input.device
    ref, h_out, w_out = _reference_points(h_in, w_in, kernel_h, kernel_w, dilation_h,
                                          dilation_w, stride_h, stride_w, dtype, device)
    grid = _dilation_grid(h_in, w_in, kernel_h, kernel_w, dilation_h, dilation_w, group, dtype,
                          device)
    points = kernel_h * kernel_w
    norm = torch.tensor([w_in, h_in], dtype=dtype, device=device).repeat(group * points)
    locations = (ref + grid * offset_scale).repeat(n, 1, 1, 1, 1).flatten(3, 4) \
        + offset * offset_scale / norm
    grids = (2 * locations - 1).view(n, h_out * w_out, group, points, 2).transpose(1, 2)
    value = input.reshape(n, h_in * w_in, group * group_channels).transpose(1, 2)
    value = value.reshape(n * group, group_channels, h_in, w_in)
    sampled = F.grid_sample(value, grids.flatten(0, 1), mode='bilinear', padding_mode='zeros',
                            align_corners=False)  # [N*G, gc, Ho*Wo, P]
    weights = mask.view(n, h_out * w_out, group, points).transpose(1, 2)
    weights = weights.reshape(n * group, 1, h_out * w_out, points)
    out = (sampled * weights).sum(-1).view(n, group * group_channels, h_out * w_out)
    return out.transpose(1, 2).reshape(n, h_out, w_out, -1).contiguous()
