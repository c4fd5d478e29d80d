"""mmseg's Mask2Former head with the official InternImage semantic-map order selectable."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmseg.models.decode_heads import Mask2FormerHead
from mmseg.structures import SegDataSample
from torch import Tensor

SEG_MAP_ORDERS = ('official', 'mmseg')


@MODELS.register_module()
class InternImageMask2FormerHead(Mask2FormerHead):
    r"""mmseg 1.x :class:`~mmseg.models.decode_heads.Mask2FormerHead` whose semantic map can be
    formed in the official InternImage order.

    With class scores :math:`c_q` (softmax, "no object" dropped) and mask logits :math:`m_q`
    of the last decoder layer at 1/4 scale, the map is

    * ``seg_map_order='official'`` (the official ``EncoderDecoderMask2Former``):
      :math:`S = \mathrm{resize}\big(\sum_q c_q\,\sigma(m_q)\big)` - the product at 1/4
      scale, then a bilinear resize to the input;
    * ``'mmseg'`` (mmseg 1.x): :math:`S = \sum_q c_q\,\sigma(\mathrm{resize}(m_q))`.

    The two differ at mask boundaries (up to ~20% of the map's range), so the official weights
    give the paper's single-scale and multi-scale mIoU only with ``'official'``. Test-time
    augmentation (mmseg's ``SegTTAModel``) merges the maps this method returns, so both paths
    follow the order chosen.

    Args:
        seg_map_order: ``'official'`` (default) or ``'mmseg'``.
        Other arguments: those of ``Mask2FormerHead``.
    """

    def __init__(self, *args, seg_map_order: str = 'official', **kwargs) -> None:
        if seg_map_order not in SEG_MAP_ORDERS:
            raise ValueError(f'InternImageMask2FormerHead: seg_map_order must be one of '
                             f'{SEG_MAP_ORDERS}, got {seg_map_order!r}')
        super().__init__(*args, **kwargs)
        self.seg_map_order = seg_map_order

    def predict(self, x: tuple[Tensor], batch_img_metas: list[dict],
                test_cfg: dict) -> Tensor:
        """The semantic map (``[N, num_classes, H, W]`` at the padded input size)."""
        if self.seg_map_order == 'mmseg':
            return super().predict(x, batch_img_metas, test_cfg)
        samples = [SegDataSample(metainfo=meta) for meta in batch_img_metas]
        all_cls_scores, all_mask_preds = self(x, samples)
        cls_score = F.softmax(all_cls_scores[-1], dim=-1)[..., :-1]
        seg_logits = torch.einsum('bqc,bqhw->bchw', cls_score, all_mask_preds[-1].sigmoid())
        meta = batch_img_metas[0]
        size = meta['pad_shape'] if 'pad_shape' in meta else meta['img_shape']
        return F.interpolate(seg_logits, size=tuple(size[:2]), mode='bilinear',
                             align_corners=False)
