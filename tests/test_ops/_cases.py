"""Helpers to build random DCNv3 calls."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass

import torch

from ops_dcnv3 import output_size
from ops_dcnv3.reference import kernel_grid

# Closest a sampling location may come to an integer (a bilinear kink) in the generated inputs.
KINK_MARGIN = 1e-3


@contextmanager
def num_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Args:
    kernel_h: int = 3
    kernel_w: int = 3
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 1
    pad_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    group: int = 2
    group_channels: int = 4
    offset_scale: float = 1.0
    remove_center: bool = False

    def tuple(self) -> tuple:
        return astuple(self)

    @property
    def points(self) -> int:
        return self.kernel_h * self.kernel_w - int(self.remove_center)


def kink_distance(args: Args, offset: torch.Tensor) -> torch.Tensor:
    """Per (pixel, group, point): the distance of the sampling location to the nearest integer on
    the closer of its two axes (0 = exactly on a bilinear kink), computed in float64.

    The window centre is an integer, so only ``(grid + offset) * offset_scale`` matters."""
    px, py = kernel_grid(args.kernel_h, args.kernel_w, args.dilation_h, args.dilation_w,
                         args.remove_center, torch.float64, offset.device)
    off = offset.double().reshape(*offset.shape[:3], args.group, args.points, 2)
    lx = (px + off[..., 0]) * args.offset_scale
    ly = (py + off[..., 1]) * args.offset_scale
    return torch.minimum((lx - lx.round()).abs(), (ly - ly.round()).abs())


def _round_away_from_kinks(args: Args, off: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``off`` rounded to ``dtype`` with every sampling location at least KINK_MARGIN from an
    integer. At an exact integer grid_sample (the reference) takes the one-sided derivative from
    the other side than the kernels; rounding to float16/bfloat16 lands there often."""
    for step in (0.3, 0.2, 0.35, 0.15):
        rounded = off.to(dtype)
        bad = kink_distance(args, rounded) < KINK_MARGIN  # [N, Ho, Wo, G, P]
        if not bad.any():
            return rounded
        bad = bad.unsqueeze(-1).expand(*bad.shape, 2).reshape(off.shape)
        off = torch.where(bad, off + step / args.offset_scale, off)
    raise AssertionError(f'could not keep {dtype} sampling locations off the integers')


def make_inputs(args: Args, batch: int = 2, height: int = 7, width: int = 6,
                dtype: torch.dtype = torch.float64, offset_range: float = 3.0,
                generator: torch.Generator | None = None,
                device: str = 'cpu') -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random input, offset (uniform in +-offset_range pixels) and softmax-normalised mask.

    Offsets are drawn away from multiples of 0.5 so that, for offset_scale in {0.5, 1, 2}, no
    sampling point sits on a bilinear kink, where finite differences (gradcheck) are
    ill-defined; after rounding to ``dtype`` no location is within KINK_MARGIN of an integer.
    """
    g = generator or torch.Generator().manual_seed(0)
    ho = output_size(height, args.pad_h, args.dilation_h, args.kernel_h, args.stride_h)
    wo = output_size(width, args.pad_w, args.dilation_w, args.kernel_w, args.stride_w)
    c = args.group * args.group_channels
    x = torch.randn(batch, height, width, c, generator=g, dtype=torch.float64)
    off = (torch.rand(batch, ho, wo, args.group * args.points * 2, generator=g,
                      dtype=torch.float64) * 2 - 1) * offset_range
    frac = 2 * off - (2 * off).floor()
    off = torch.where((frac < 0.1) | (frac > 0.9), off + 0.2, off)
    off = _round_away_from_kinks(args, off, dtype)
    logits = torch.randn(batch, ho, wo, args.group, args.points, generator=g, dtype=torch.float64)
    mask = logits.softmax(-1).reshape(batch, ho, wo, args.group * args.points)
    return tuple(t.to(device=device, dtype=dtype) for t in (x, off, mask))


def make_offset_mask(args: Args, batch: int, height: int, width: int, dtype: torch.dtype,
                     seed: int, logit_scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and the combined offset + mask-logit tensor of ``dcnv3_from_logits``."""
    g = torch.Generator().manual_seed(seed)
    input, offset, _ = make_inputs(args, batch, height, width, dtype, generator=g)
    logits = torch.randn(*offset.shape[:3], args.group * args.points, generator=g,
                         dtype=torch.float64).to(dtype) * logit_scale
    return input, torch.cat((offset, logits), -1)


def composed_from_logits(input: torch.Tensor, offset_mask: torch.Tensor,
                         args: Args) -> torch.Tensor:
    """``dcnv3(input, offset, softmax(logits))``: what ``dcnv3_from_logits`` stands for."""
    from ops_dcnv3 import dcnv3
    offset, logits = offset_mask.split((2 * args.group * args.points,
                                        args.group * args.points), dim=-1)
    mask = torch.softmax(logits.reshape(*logits.shape[:-1], args.group, args.points), -1)
    return dcnv3(input, offset, mask.reshape(logits.shape), *args.tuple())


def value_and_grads(fn, inputs, args: Args, grad_out_seed: int):
    """``fn(*inputs, *args)`` and the gradients of its inputs for a seeded random grad_output
    (drawn in float64, so float32 and float64 calls get the same one)."""
    leaves = [t.clone().requires_grad_() for t in inputs]
    out = fn(*leaves, *args.tuple())
    g = torch.Generator().manual_seed(grad_out_seed)
    grad_out = torch.randn(out.shape, generator=g, dtype=torch.float64).to(out.dtype)
    (out * grad_out).sum().backward()
    return out, [t.grad for t in leaves]
