"""Detection configs on a CPU: shrunk models and a small synthetic batch.

Shared by tests/test_configs and tests/test_tools (the checkpoint converter)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

import internimage_mm  # noqa: F401  (registers the modules)

from ._tiny import TINY_BACKBONE, TINY_WIDTHS, shrink_backbone  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
DET_CONFIGS = REPO / 'configs' / 'detection'

# The COCO configs with one InternImage (one per paper row); `*_synthetic.py` files are demo
# configs, not rows. The composite-backbone row (CB-InternImage) has its own tests
# (tests/test_models/test_detectors/test_cb_dino.py).
CONFIG_NAMES = tuple(sorted(
    p.stem for p in DET_CONFIGS.glob('*.py')
    if not p.stem.endswith('_synthetic') and '_cb-' not in p.stem))

# A tiny backbone: stage widths 16/32/64/128 with 16-channel DCNv3 groups, 5 blocks.


def load_config(name: str) -> Config:
    return Config.fromfile(str(DET_CONFIGS / f'{name}.py'))


def shrink_model_cfg(model_cfg: ConfigDict, num_queries: int = 30, num_dn_queries: int = 20,
                     rcnn_samples: int = 16) -> ConfigDict:
    """The config's model with a tiny backbone; everything else keeps its structure.

    Backbone: TINY_BACKBONE (H's post norms move into the shrunk stage 3), ``with_cp`` off, no
    checkpoint; the neck's input widths follow. For speed only (same parameter names): DINO
    keeps ``num_queries`` matching queries and at most ``num_dn_queries`` denoising queries,
    R-CNN heads sample ``rcnn_samples`` RoIs per image.
    """
    model = copy.deepcopy(model_cfg)
    backbone = model.backbone
    shrink_backbone(backbone)
    out_indices = backbone.get('out_indices', (0, 1, 2, 3))
    if backbone.type == 'CBInternImage':  # one neck maps the lead's levels (and the assisting's)
        out_indices = out_indices[1]
    model.neck.in_channels = [TINY_WIDTHS[i] for i in out_indices]
    if 'num_queries' in model:
        model.num_queries = num_queries
        group_cfg = model.dn_cfg.group_cfg
        group_cfg.num_dn_queries = min(group_cfg.num_dn_queries, num_dn_queries)
    train_cfg = model.get('train_cfg', {})
    rcnn = train_cfg.get('rcnn')
    for stage in (rcnn if isinstance(rcnn, list) else [rcnn] if rcnn else []):
        stage.sampler.num = rcnn_samples
    return model


def build_model(model_cfg: ConfigDict, scope: str = 'mmdet'):
    init_default_scope(scope)
    from mmdet.registry import MODELS
    return MODELS.build(model_cfg)


def synthetic_batch(size: int = 64, num_images: int = 2, with_mask: bool = True,
                    seed: int = 0) -> dict:
    """``num_images`` random ``size`` x ``size`` images with 2 boxes (and masks) each, in the
    format the data loader gives the data preprocessor."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    gen = torch.Generator().manual_seed(seed)
    s = size / 64
    boxes = torch.tensor([[8., 8., 40., 36.], [20., 28., 60., 60.]]) * s
    inputs, samples = [], []
    for i in range(num_images):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        sample = DetDataSample(metainfo=dict(
            img_id=i, img_shape=(size, size), ori_shape=(size, size), scale_factor=(1., 1.),
            flip=False, flip_direction=None))
        gt = InstanceData()
        gt.bboxes = boxes.clone()
        gt.labels = torch.tensor([1, 5 + i])
        if with_mask:
            masks = np.zeros((len(boxes), size, size), dtype=np.uint8)
            for k, (x1, y1, x2, y2) in enumerate(boxes.round().int().tolist()):
                masks[k, y1:y2, x1:x2] = 1
            gt.masks = BitmapMasks(masks, size, size)
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
