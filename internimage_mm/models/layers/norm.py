"""Layout-aware norm and activation builders of InternImage.

InternImage keeps features channels-last ([N, H, W, C]) inside its blocks and switches to
channels-first ([N, C, H, W]) around convolutions. The official code wraps every norm in an
``nn.Sequential`` holding the permutes it needs, so the norm's index inside the wrapper is part
of the checkpoint keys (``norm1.0.weight``, ``patch_embed.norm1.1.weight``, ...). These builders
reproduce that nesting exactly so that official checkpoints load key-for-key.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

import ops_dcnv3

from .activation import records_grad, tracing

Layout = Literal['channels_first', 'channels_last']
_LAYOUTS = ('channels_first', 'channels_last')


class ToChannelsFirst(nn.Module):
    """[N, H, W, C] -> [N, C, H, W]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 3, 1, 2)


class ToChannelsLast(nn.Module):
    """[N, C, H, W] -> [N, H, W, C]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 2, 3, 1)


class LayerNorm(nn.LayerNorm):
    r"""``nn.LayerNorm`` over the last dimension (the channels of a channels-last tensor):
    :math:`y = (x - \mu) / \sqrt{\sigma^2 + \epsilon} \cdot \gamma + \beta` with the mean
    :math:`\mu` and biased variance :math:`\sigma^2` of each row.

    In CPU float32 inference (no autograd graph, autocast or tracer) it runs the compiled
    kernel (``ops_dcnv3.layer_norm``: about 2x faster than ATen's at InternImage-T's block
    norms, equal to float32 rounding); elsewhere ``nn.LayerNorm``'s own forward. Same
    parameters and state-dict keys as ``nn.LayerNorm``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if (self.weight is not None and self.bias is not None
                and len(self.normalized_shape) == 1 and x.device.type == 'cpu'
                and not tracing() and not torch.is_autocast_enabled('cpu')
                and not records_grad(x, self.weight, self.bias)):
            return ops_dcnv3.layer_norm(x, self.weight, self.bias, self.eps)
        return super().forward(x)


def build_layout_norm(channels: int,
                      norm_type: str = 'LN',
                      in_format: Layout = 'channels_last',
                      out_format: Layout = 'channels_last',
                      eps: float = 1e-6) -> nn.Sequential:
    """A norm wrapped with the permutes between ``in_format`` and ``out_format``.

    ``'LN'`` normalises over channels in channels-last layout (:class:`LayerNorm`; eps 1e-6, as
    every LayerNorm of InternImage); ``'BN'`` is ``BatchNorm2d`` in channels-first layout (its
    default eps, as the official code). The norm sits after a leading permute when one is
    needed, hence index 0 or 1.
    """
    if in_format not in _LAYOUTS or out_format not in _LAYOUTS:
        raise ValueError(f'in_format/out_format must be one of {_LAYOUTS}, '
                         f'got {in_format!r}/{out_format!r}')
    layers: list[nn.Module] = []
    if norm_type == 'LN':
        if in_format == 'channels_first':
            layers.append(ToChannelsLast())
        layers.append(LayerNorm(channels, eps=eps))
        if out_format == 'channels_first':
            layers.append(ToChannelsFirst())
    elif norm_type == 'BN':
        if in_format == 'channels_last':
            layers.append(ToChannelsFirst())
        layers.append(nn.BatchNorm2d(channels))
        if out_format == 'channels_last':
            layers.append(ToChannelsLast())
    else:
        raise ValueError(f"norm_layer must be 'LN' or 'BN', got {norm_type!r}")
    return nn.Sequential(*layers)


_ACTIVATIONS = {
    'GELU': lambda: nn.GELU(),
    'ReLU': lambda: nn.ReLU(inplace=True),
    'SiLU': lambda: nn.SiLU(inplace=True),
}


def build_act_layer(act_layer: str) -> nn.Module:
    """The activation named ``act_layer`` (``'GELU'``, ``'ReLU'`` or ``'SiLU'``, as official)."""
    try:
        return _ACTIVATIONS[act_layer]()
    except (KeyError, TypeError):
        raise ValueError(f'act_layer must be one of {sorted(_ACTIVATIONS)}, '
                         f'got {act_layer!r}') from None
