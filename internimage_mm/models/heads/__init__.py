from .internimage_attnpool_head import InternImageAttnPoolHead
from .internimage_cls_head import InternImageClsHead

__all__ = ['InternImageAttnPoolHead', 'InternImageClsHead']
