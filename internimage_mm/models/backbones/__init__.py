from .intern_image import ARCH_SETTINGS, InternImage

__all__ = ['ARCH_SETTINGS', 'InternImage']
