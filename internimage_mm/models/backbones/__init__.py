from .cb_intern_image import CBInternImage
from .intern_image import ARCH_SETTINGS, InternImage

__all__ = ['ARCH_SETTINGS', 'CBInternImage', 'InternImage']
