"""Task heads. Each module needs its OpenMMLab package (mmpretrain, mmdet, mmseg); they are
imported through :mod:`internimage_mm.tasks`, not here."""
