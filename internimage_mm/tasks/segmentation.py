"""mmseg: the label check of the data pipelines, Mask2Former with the official semantic-map
order (and mmdet's Mask2Former layers, which mmseg's Mask2Former head builds from mmdet's
registry)."""
import mmdet.models  # noqa: F401  (registers mmdet's Mask2Former pixel decoder and layers)

import internimage_mm  # noqa: F401  (the backbone and the engine)
from internimage_mm.datasets.transforms.check_seg_labels import CheckSegLabels
from internimage_mm.models.heads.mask2former_head import InternImageMask2FormerHead

__all__ = ['CheckSegLabels', 'InternImageMask2FormerHead']
