"""CB-InternImage: two InternImage backbones composed as in CBNetV2 (InternImage, CVPR 2023, the
DINO record row; Liang et al., "CBNet: A Composite Backbone Network Architecture for Object
Detection", TIP 2022)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from .intern_image import InternImage


def _per_backbone(name: str, value: Any) -> tuple[Any, Any]:
    """``value`` for both backbones, or a two-element list/tuple with one value each."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f'CBInternImage: {name} must be one value or one per backbone '
                             f'(two), got {value!r}')
        return tuple(value)
    return value, value


@MODELS.register_module()
class CBInternImage(BaseModule):
    r"""Composite InternImage backbone: an assisting and a lead InternImage (the official
    ``CBInternImage``, key for key).

    The assisting backbone ``cb_modules.0`` is a complete InternImage. The lead ``cb_modules.1``
    has no stem: it starts from the assisting one's stem output. Before each lead level
    :math:`i` the assisting outputs of that level and of every higher one are composed
    (dense higher-level composition):

    .. math::

        x_i \leftarrow x_i + \gamma_i \odot \sum_{j=i}^{3}
            \mathrm{resize}_{\mathrm{nearest}}\big(P_{ij}(y^{a}_j)\big)

    where :math:`y^{a}_j` is the assisting level-:math:`j` output, :math:`P_{ii}` the identity
    and :math:`P_{ij}` (``cb_linears[i][j - i]``) a 1x1 conv with bias from :math:`C_j` to
    :math:`C_i` applied at the source resolution, and :math:`\gamma_i` (``cb_modules.1.gamma{i}``)
    a per-channel scale initialised to zero, so that the lead starts as a plain InternImage (the
    projections keep PyTorch's default initialisation, as officially). As the official forward,
    :math:`\gamma_i` is rounded to float16 before the product.

    Args:
        out_indices: the levels each backbone returns, ``((0, 1, 2, 3), (1, 2, 3))`` officially;
            when the assisting one returns one level more than the lead, its first is dropped
            (it only feeds the composition), and both must then return the same levels, which
            one neck maps.
        drop_path_rate, with_cp: one value for both backbones or one per backbone.
        init_cfg: as :class:`InternImage` (applied to the composite).
        Other arguments: InternImage's, one set for both backbones (``arch``, its overrides,
            ``core_op``, ``mlp_ratio``, ...): their architectures cannot differ.

    ``forward`` returns ``(assisting_features, lead_features)``, each a tuple of NCHW maps.
    """

    def __init__(self, out_indices: Sequence[Sequence[int]] = ((0, 1, 2, 3), (1, 2, 3)),
                 drop_path_rate: float | Sequence[float] = 0.2,
                 with_cp: bool | Sequence[bool] = False,
                 init_cfg: dict | list[dict] | None = None, **kwargs: Any) -> None:
        super().__init__(init_cfg=init_cfg)
        for key in ('frozen_stages', 'init_cfg'):
            if key in kwargs:
                raise ValueError(f'CBInternImage: {key} is not supported per backbone')
        if (isinstance(out_indices, str) or not isinstance(out_indices, Sequence)
                or len(out_indices) != 2 or not all(isinstance(o, Sequence) and o
                                                    for o in out_indices)):
            raise ValueError('CBInternImage: out_indices must give the levels of each of the two '
                             f'backbones, e.g. ((0, 1, 2, 3), (1, 2, 3)); got {out_indices!r}')
        out_assist, out_lead = (tuple(int(i) for i in o) for o in out_indices)
        returned = out_assist[1:] if len(out_assist) == len(out_lead) + 1 else out_assist
        if returned != out_lead:
            raise ValueError(
                f'CBInternImage: out_indices {out_indices!r}: the two backbones must return the '
                f'same levels (one neck maps both), got {returned} (assisting, after dropping '
                f'its first when it has one more) and {out_lead} (lead)')
        dprs = _per_backbone('drop_path_rate', drop_path_rate)
        cps = _per_backbone('with_cp', with_cp)
        self.cb_modules = nn.ModuleList(
            InternImage(out_indices=o, drop_path_rate=d, with_cp=c, **kwargs)
            for o, d, c in zip((out_assist, out_lead), dprs, cps))
        self.drop_first = len(out_assist) == len(out_lead) + 1
        lead = self.cb_modules[1]
        del lead.patch_embed  # the lead starts from the assisting stem's output
        widths = lead.stage_channels
        for i, width in enumerate(widths):
            lead.register_parameter(f'gamma{i}', nn.Parameter(torch.zeros(width)))
        self.cb_linears = nn.ModuleList(
            nn.ModuleList([nn.Identity()] + [nn.Conv2d(widths[j], widths[i], 1)
                                             for j in range(i + 1, len(widths))])
            for i in range(len(widths)))
        self.out_indices = (out_assist, out_lead)
        self.depths = list(lead.depths)  # for the layer-decay constructor
        self.stage_channels = list(widths)
        self.arch_settings = lead.arch_settings

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Channels of the maps each backbone returns (the neck's ``in_channels``)."""
        return tuple(self.stage_channels[i] for i in self.out_indices[1])

    def forward(self, x: Tensor) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        assist, lead = self.cb_modules
        stem = assist.forward_stem(x)
        assist_outs = assist.forward_levels(stem)
        nchw = [o.permute(0, 3, 1, 2) for o in assist_outs]

        def composed(i: int, x: Tensor) -> Tensor:
            size = x.shape[1:3]
            feed = 0
            for k, proj in enumerate(self.cb_linears[i]):
                y = proj(nchw[i + k])
                if tuple(y.shape[2:]) != tuple(size):
                    y = F.interpolate(y, size=size, mode='nearest')
                feed = feed + y
            gamma = getattr(lead, f'gamma{i}').half()  # the official forward's rounding
            return x + gamma * feed.permute(0, 2, 3, 1)

        lead_outs = lead.forward_levels(stem, composed)
        out_assist, out_lead = self.out_indices
        if self.drop_first:
            out_assist = out_assist[1:]
        return (tuple(nchw[i].contiguous() for i in out_assist),
                tuple(lead_outs[i].permute(0, 3, 1, 2).contiguous() for i in out_lead))
