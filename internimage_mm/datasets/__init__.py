"""Dataset helpers for the detection configs (imports mmdet, so not imported by the package
root: configs load it with ``custom_imports=dict(imports=['internimage_mm',
'internimage_mm.datasets'])``)."""
from .coco import ValidatedCocoDataset

__all__ = ['ValidatedCocoDataset']
