"""Version of internimage-mm and the OpenMMLab versions it is tested with."""
from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version

__version__ = '0.1.0'

# import name -> (distributions that provide it, minimum version, maximum version exclusive).
# The tested stack is pinned in requirements/mm.txt; upstream 2.x releases share these APIs.
REQUIREMENTS = {
    'mmengine': (('onedl-mmengine', 'mmengine'), '0.10.7', '1.0.0'),
    'mmcv': (('onedl-mmcv', 'mmcv'), '2.1.0', '3.0.0'),
    'mmdet': (('onedl-mmdetection', 'mmdet'), '3.3.0', '4.0.0'),
    'mmseg': (('onedl-mmsegmentation', 'mmsegmentation'), '1.2.0', '2.0.0'),
    'mmpretrain': (('onedl-mmpretrain', 'mmpretrain'), '1.2.0', '2.0.0'),
}
REQUIRED = ('mmengine', 'mmcv')
INSTALL_HINT = 'run `make env` (installs the pinned stack from requirements/)'


def _parse(v: str) -> tuple[int, ...]:
    parts = []
    for p in v.split('+')[0].split('.')[:3]:
        digits = ''.join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def installed_version(module: str) -> str | None:
    """Version of the distribution that provides ``module``, or None when absent."""
    if importlib.util.find_spec(module) is None:
        return None
    for dist in REQUIREMENTS[module][0]:
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


def check_dependencies() -> None:
    """Raise ImportError with a clear message for a missing or incompatible OpenMMLab package.

    mmengine and mmcv are required; mmdet, mmseg and mmpretrain are checked when installed.
    """
    for module, (dists, low, high) in REQUIREMENTS.items():
        found = installed_version(module)
        if found is None:
            if module in REQUIRED:
                raise ImportError(f'internimage_mm needs {module} ({dists[0]}>={low},<{high}): '
                                  f'not installed; {INSTALL_HINT}')
            continue
        if not _parse(low) <= _parse(found) < _parse(high):
            raise ImportError(f'internimage_mm needs {module}>={low},<{high}, found {found} '
                              f'({dists[0]}); {INSTALL_HINT}')
