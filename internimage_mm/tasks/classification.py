"""mmpretrain: the official InternImage classification heads."""
import internimage_mm  # noqa: F401  (the backbone and the engine)
from internimage_mm.models.heads.internimage_attnpool_head import InternImageAttnPoolHead
from internimage_mm.models.heads.internimage_cls_head import InternImageClsHead

__all__ = ['InternImageAttnPoolHead', 'InternImageClsHead']
