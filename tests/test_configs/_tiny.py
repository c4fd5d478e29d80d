"""The tiny InternImage that the detection and segmentation config tests shrink models to."""
from __future__ import annotations

from mmengine.config import ConfigDict

from internimage_mm.models.backbones.intern_image import ARCH_ALIASES, ARCH_SETTINGS

TINY_BACKBONE = dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8])
TINY_WIDTHS = [16, 32, 64, 128]


def shrink_backbone(backbone: ConfigDict) -> None:
    """TINY_BACKBONE in place of the config's sizes (H's post norms move into the shrunk stage
    3), ``with_cp`` off, no checkpoint; every other option of the arch preset is kept."""
    arch = backbone.get('arch', 't')
    preset = ARCH_SETTINGS[ARCH_ALIASES.get(arch, arch)] if isinstance(arch, str) else arch
    backbone.update(TINY_BACKBONE, with_cp=False, init_cfg=None)
    if backbone.get('level2_post_norm', preset.get('level2_post_norm')):
        backbone.level2_post_norm_block_ids = [1]

#: Where the official checkpoints are released (official_configs.md §1.2).
OFFICIAL_URL = 'https://huggingface.co/OpenGVLab/InternImage/resolve/main/'


def meta_backbone(backbone: ConfigDict):
    """The full-size InternImage a config's backbone settings build (meta device: no memory),
    so that tests check what the model really is, not what the config restates."""
    import torch

    from internimage_mm.models import InternImage
    kwargs = {k: v for k, v in backbone.items() if k not in ('type', 'init_cfg', '_delete_')}
    with torch.device('meta'):
        return InternImage(**kwargs)


def layer_decay_constructor(optim_wrapper: ConfigDict, backbone: ConfigDict):
    """The config's layer-decay constructor, configured with its full-size backbone (the
    constructor reads the depths from the model)."""
    from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
    from torch import nn
    ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type=optim_wrapper.constructor,
        optim_wrapper_cfg=dict(type=optim_wrapper.get('type', 'OptimWrapper'),
                               optimizer=optim_wrapper.optimizer),
        paramwise_cfg=optim_wrapper.paramwise_cfg))
    model = nn.Module()
    model.backbone = meta_backbone(backbone)
    ctor.configure(model)
    return ctor
