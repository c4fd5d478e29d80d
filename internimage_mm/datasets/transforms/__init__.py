"""Data transforms (registered in mmengine's root ``TRANSFORMS``, so every scope finds them)."""
from .check_seg_labels import CheckSegLabels

__all__ = ['CheckSegLabels']
