"""Registered modules: importing this package registers them in mmengine's root ``MODELS``."""
import importlib.util

from .backbones import InternImage
from .layers import DCNv3

__all__ = ['DCNv3', 'InternImage']

# The classification heads subclass mmpretrain's ClsHead; mmpretrain is optional.
if importlib.util.find_spec('mmpretrain') is not None:
    from .heads import InternImageAttnPoolHead, InternImageClsHead  # noqa: F401
    __all__ += ['InternImageAttnPoolHead', 'InternImageClsHead']

# DINO with the official (mmdet 2.x era) query-position MLP; subclasses mmdet's DINO.
if importlib.util.find_spec('mmdet') is not None:
    from .detectors import LegacyDINO  # noqa: F401
    __all__ += ['LegacyDINO']
