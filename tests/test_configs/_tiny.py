"""The tiny InternImage that the detection and segmentation config tests shrink models to."""
from __future__ import annotations

import copy

from mmengine.config import ConfigDict

TINY_BACKBONE = dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8])
TINY_WIDTHS = [16, 32, 64, 128]


def shrink_optim_cfg(optim_cfg: ConfigDict) -> ConfigDict:
    """The optimizer config with the layer-decay depths of TINY_BACKBONE."""
    optim_cfg = copy.deepcopy(optim_cfg)
    paramwise = optim_cfg.get('paramwise_cfg', {})
    if 'depths' in paramwise:
        paramwise.depths = list(TINY_BACKBONE['depths'])
        paramwise.num_layers = sum(TINY_BACKBONE['depths'])
    return optim_cfg
