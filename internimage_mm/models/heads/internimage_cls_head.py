"""Classification head of InternImage-T/S/B/L/XL."""
from __future__ import annotations

from mmengine.registry import MODELS
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from ..layers.norm import build_act_layer, build_layout_norm


@MODELS.register_module()
class InternImageClsHead(ClsHead):
    """The official "conv head": 1x1 conv (no bias) widening the last stage by ``cls_scale``,
    BatchNorm, activation, global average pooling, then a Linear classifier.

    Takes the last backbone output (stage 4, NCHW, after its level norm), so an mmpretrain
    ``ImageClassifier`` with ``InternImage(out_indices=(3, ))``, no neck and this head computes
    the official classifier. Losses and accuracy come from :class:`mmpretrain ClsHead`.

    Args:
        num_classes: number of classes.
        in_channels: channels of the last stage (8C).
        cls_scale: width factor of the conv head (1.5 in every official model).
        act_layer: activation after the BatchNorm.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of ``ClsHead``.

    Submodules ``conv_head`` (``.0`` conv, ``.1.0`` BN) keep the official names; the official
    ``head`` Linear is ``fc`` here (see ``internimage_mm.converters.classification``).
    """

    def __init__(self, num_classes: int, in_channels: int, cls_scale: float = 1.5,
                 act_layer: str = 'GELU',
                 init_cfg: dict | list[dict] | None = dict(
                     type='TruncNormal', layer='Linear', std=.02, bias=0.),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        self.num_classes = num_classes
        self.in_channels = in_channels
        hidden = int(in_channels * cls_scale)
        self.conv_head = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False),
            build_layout_norm(hidden, 'BN', 'channels_first', 'channels_first'),
            build_act_layer(act_layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(hidden, num_classes)

    def pre_logits(self, feats: tuple[Tensor, ...]) -> Tensor:
        """Pooled features [N, int(in_channels * cls_scale)] of the last stage."""
        return self.avgpool(self.conv_head(feats[-1])).flatten(1)

    def forward(self, feats: tuple[Tensor, ...]) -> Tensor:
        return self.fc(self.pre_logits(feats))
