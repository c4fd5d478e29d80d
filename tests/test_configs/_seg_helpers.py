"""Segmentation configs on a CPU: shrunk models and a small synthetic batch.

Shared by tests/test_configs (config tests) and tests/test_tools (the checkpoint converter)."""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

import internimage_mm  # noqa: F401  (registers the modules)

from ._tiny import TINY_BACKBONE, TINY_WIDTHS, shrink_backbone  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
SEG_CONFIGS = REPO / 'configs' / 'segmentation'

# The ADE20K rows of paper_tables.md: config -> (variant, crop, params, GFLOPs, FLOPs input).
PAPER_ROWS = {
    'upernet_internimage-t_8xb2-160k_ade20k-512x512': ('t', 512, 59e6, 944, (512, 2048)),
    'upernet_internimage-s_8xb2-160k_ade20k-512x512': ('s', 512, 80e6, 1017, (512, 2048)),
    'upernet_internimage-b_8xb2-160k_ade20k-512x512': ('b', 512, 128e6, 1185, (512, 2048)),
    'upernet_internimage-l_8xb2-160k_ade20k-640x640': ('l', 640, 256e6, 2526, (640, 2560)),
    'upernet_internimage-xl_8xb2-160k_ade20k-640x640': ('xl', 640, 368e6, 3142, (640, 2560)),
    'upernet_internimage-h_16xb1-160k_ade20k-896x896': ('h', 896, 1.12e9, 3566, (896, 896)),
    'mask2former_internimage-h_cocostuff164k-pre_16xb1-80k_ade20k-896x896':
        ('h', 896, 1.31e9, 4635, (896, 896)),
}
SYNTHETIC = ('upernet_internimage-tiny_1xb4-600iter_synthetic-128x128',
             'mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128')

# A tiny backbone: stage widths 16/32/64/128 with 16-channel DCNv3 groups, 5 blocks.


def load_config(name: str) -> Config:
    return Config.fromfile(str(SEG_CONFIGS / f'{name}.py'))


def shrink_model_cfg(model_cfg: ConfigDict, dims: int = 32, size: int = 64) -> ConfigDict:
    """The config's model with TINY_BACKBONE and narrow heads; the structure (layer counts,
    parameter names, norm types, losses) is kept.

    Backbone: TINY_BACKBONE (H's post norms move into the shrunk stage 3), ``with_cp`` off, no
    checkpoint; the heads' input widths follow. UPerHead/FCNHead and the Mask2Former head get
    ``dims`` channels (Mask2Former: 4 heads, ``2 * dims`` FFN, 20 queries, 1024 points). The
    data preprocessor pads training batches to ``size`` x ``size`` (not the config's crop).
    """
    model = copy.deepcopy(model_cfg)
    model.data_preprocessor.size = (size, size)
    backbone = model.backbone
    shrink_backbone(backbone)
    head = model.decode_head
    head.in_channels = list(TINY_WIDTHS)
    if head.type == 'UPerHead':
        head.channels = dims
        aux = model.auxiliary_head
        aux.in_channels = TINY_WIDTHS[aux.in_index]
        aux.channels = dims
    else:  # Mask2FormerHead
        head.update(feat_channels=dims, out_channels=dims, num_queries=20)
        pixel = head.pixel_decoder
        pixel.norm_cfg = dict(type='GN', num_groups=8)
        layer = pixel.encoder.layer_cfg
        layer.self_attn_cfg.update(embed_dims=dims, num_heads=4)
        layer.ffn_cfg.update(embed_dims=dims, feedforward_channels=2 * dims)
        pixel.positional_encoding.num_feats = dims // 2
        head.positional_encoding.num_feats = dims // 2
        layer = head.transformer_decoder.layer_cfg
        for attn in ('self_attn_cfg', 'cross_attn_cfg'):
            layer[attn].update(embed_dims=dims, num_heads=4)
        layer.ffn_cfg.update(embed_dims=dims, feedforward_channels=2 * dims)
        head.train_cfg.num_points = 1024
    return model


def build_model(model_cfg: ConfigDict):
    init_default_scope('mmseg')
    import mmdet.models  # noqa: F401  (Mask2Former's mmdet layers)
    from mmseg.registry import MODELS
    return MODELS.build(model_cfg)


def synthetic_batch(size: int = 64, num_images: int = 2, num_classes: int = 150,
                    seed: int = 0) -> dict:
    """``num_images`` random ``size`` x ``size`` images with a label map of three regions
    (two classes and the ignore index 255), in the format the data loader gives the data
    preprocessor."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num_images):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        label = torch.full((1, size, size), 255, dtype=torch.long)
        label[:, :size // 2, :size // 2] = (3 * i + 1) % num_classes
        label[:, size // 2:, size // 4:] = (5 * i + 2) % num_classes
        sample = SegDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
            img_path=f'img_{i}.jpg', flip=False))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
