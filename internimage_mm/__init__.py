"""internimage-mm: InternImage (CVPR 2023) for the OpenMMLab 2.x stack.

Importing the package checks the OpenMMLab versions, applies the compatibility fixes this
environment needs (:mod:`internimage_mm.compat`), registers what every task uses (the
InternImage backbone, DCNv3, the optimizer constructor and wrappers, the FSDP strategy) in
mmengine's root registries, so ``type='InternImage'`` builds in the mmdet, mmseg and mmpretrain
scopes, and lets models with an InternImage backbone load official checkpoints as they are
(:mod:`internimage_mm.converters.loading`). Task modules come in through
:mod:`internimage_mm.tasks` (the configs' ``custom_imports``).
"""
from . import compat
from .version import __version__, check_dependencies

check_dependencies()
compat.apply()

from . import engine, models  # noqa: E402  (registration; after the compat fixes)
from .converters import loading  # noqa: E402

loading.install()

__all__ = ['__version__', 'compat', 'engine', 'models']
