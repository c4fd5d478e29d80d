"""The backbone and its operator module: importing this package registers them in mmengine's
root ``MODELS``. Task heads and detectors come in through :mod:`internimage_mm.tasks`."""
from .backbones import CBInternImage, InternImage
from .layers import DCNv3

__all__ = ['CBInternImage', 'DCNv3', 'InternImage']
