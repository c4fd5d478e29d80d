"""Classification head of InternImage-H: attention pooling of stages 3 and 4."""
from __future__ import annotations

from collections.abc import Sequence

from mmengine.registry import MODELS
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from ..layers.attention_pooling import AttentionPoolingBlock
from ..layers.norm import build_layout_norm


@MODELS.register_module()
class InternImageAttnPoolHead(ClsHead):
    """The official InternImage-H head (``use_clip_projector=True``).

    Stage 4 (8C, stride 32) goes through a 1x1 conv to ``embed_dims * upsample**2`` channels
    and ``PixelShuffle(upsample)`` (stride 16); stage 3 (4C, stride 16) through a 1x1 conv to
    ``embed_dims``; their sum is a token sequence pooled by attention with the mean token as
    query (``num_heads`` heads, qkv biases, output ``out_dims``), normalised by a LayerNorm
    (eps 1e-6) and classified by a Linear.

    Needs the last two stages: use it with ``InternImage(out_indices=(2, 3))``. Submodules keep
    the official names (``dcnv3_head_x4``, ``dcnv3_head_x3``, ``clip_projector``, ``fc_norm``);
    the official ``head`` Linear is ``fc`` here.

    Args:
        num_classes: number of classes.
        in_channels: stage-4 channels (8C; stage 3 then has half), or (stage-3, stage-4).
        embed_dims / num_heads / out_dims / upsample: 1024 / 16 / 768 / 2 officially.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of ``ClsHead``.
    """

    def __init__(self, num_classes: int, in_channels: int | Sequence[int],
                 embed_dims: int = 1024, num_heads: int = 16, out_dims: int = 768,
                 upsample: int = 2, norm_layer: str = 'LN',
                 init_cfg: dict | list[dict] | None = dict(
                     type='TruncNormal', layer='Linear', std=.02, bias=0.),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        if isinstance(in_channels, int):
            in_channels = (in_channels // 2, in_channels)
        c3, c4 = in_channels
        self.num_classes = num_classes
        self.in_channels = (c3, c4)
        self.dcnv3_head_x4 = nn.Sequential(
            nn.Conv2d(c4, embed_dims * upsample**2, kernel_size=1), nn.PixelShuffle(upsample))
        self.dcnv3_head_x3 = nn.Conv2d(c3, embed_dims, kernel_size=1)
        self.clip_projector = AttentionPoolingBlock(
            embed_dims, num_heads, qkv_bias=True, out_dim=out_dims, norm_layer=norm_layer)
        self.fc_norm = build_layout_norm(out_dims, norm_layer)
        self.fc = nn.Linear(out_dims, num_classes)

    def pre_logits(self, feats: tuple[Tensor, ...]) -> Tensor:
        """Pooled, normalised features [N, out_dims] from (…, stage 3, stage 4)."""
        if len(feats) < 2:
            raise ValueError('InternImageAttnPoolHead needs the stage-3 and stage-4 outputs: '
                             'build the backbone with out_indices=(2, 3)')
        x = self.dcnv3_head_x4(feats[-1]) + self.dcnv3_head_x3(feats[-2])
        return self.fc_norm(self.clip_projector(x.flatten(2).transpose(1, 2)))

    def forward(self, feats: tuple[Tensor, ...]) -> Tensor:
        return self.fc(self.pre_logits(feats))
