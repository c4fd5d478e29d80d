"""internimage-mm: InternImage (CVPR 2023) for the OpenMMLab 2.x stack.

Importing the package checks the OpenMMLab versions, applies the documented compatibility
fixes (:mod:`internimage_mm.compat`) and registers the toolbox's modules in mmengine's root
registries, so ``type='InternImage'`` builds in the mmdet, mmseg and mmpretrain scopes.
"""
from . import compat
from .version import __version__, check_dependencies

check_dependencies()
compat.apply()

from . import models  # noqa: E402  (registers the modules; after the compat fixes)
from . import engine  # noqa: E402  (registers the optimizer wrapper constructor)
from . import transforms  # noqa: E402  (registers the data transforms)

__all__ = ['__version__', 'compat', 'engine', 'models', 'transforms']
