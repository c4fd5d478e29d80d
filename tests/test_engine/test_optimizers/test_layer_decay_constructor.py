"""InternImageLayerDecayOptimizerConstructor: parameter groups against hand-computed rules.

Tiny model: depths (1, 1, 2, 1), so num_layers = 5 and, for the detection rule, N = 7. With
r = 0.9 the detection ids (scale r^(6 - id)) are: patch_embed 0, levels.0.blocks.0 1,
levels.0.{norm,downsample} 2, levels.1.blocks.0 2, levels.1.{norm,downsample} 3,
levels.2.blocks.{0,1} 3/4, levels.2.{norm,downsample} 5, levels.3.blocks.0 5, levels.3.norm 5,
everything else 6.
"""
from __future__ import annotations

import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS, DefaultScope
from torch import nn

from internimage_mm.engine import InternImageLayerDecayOptimizerConstructor
from internimage_mm.engine.optimizers.layer_decay_optim_wrapper_constructor import (
    OFFICIAL_CLASSIFICATION_OFFSET_KEYS,
    OFFICIAL_DETECTION_OFFSET_KEYS,
)
from internimage_mm.models import InternImage

NAME = 'InternImageLayerDecayOptimizerConstructor'
LR, WD, R = 1e-4, 0.05, 0.9
DEPTHS = [1, 1, 2, 1]


class FakeDetector(nn.Module):
    """InternImage backbone plus neck/head parameters with the names of real detectors."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = InternImage(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8),
                                    layer_scale=1.0, core_op='DCNv3_pytorch')
        self.neck = nn.Module()
        self.neck.conv = nn.Conv2d(16, 8, 1)
        self.bbox_head = nn.Module()
        self.bbox_head.transformer = nn.Module()
        self.bbox_head.transformer.level_embeds = nn.Parameter(torch.zeros(4, 8))
        self.bbox_head.sampling_offsets = nn.Linear(8, 16)
        self.bbox_head.reference_points = nn.Linear(8, 2)
        self.decode_head = nn.Module()
        self.decode_head.query_embed = nn.Embedding(5, 8)
        self.decode_head.conv_seg = nn.Conv2d(8, 3, 1)


@pytest.fixture(scope='module')
def model() -> FakeDetector:
    torch.manual_seed(0)
    return FakeDetector()


def build(model: nn.Module, **paramwise) -> dict[str, dict]:
    """Param groups by parameter name, built by the constructor itself."""
    cfg = dict(layer_decay_rate=R)  # depths (and num_layers = sum(depths)) from the model
    cfg.update(paramwise)
    constructor = InternImageLayerDecayOptimizerConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)), cfg)
    optim_wrapper = constructor(model)
    return groups_by_name(optim_wrapper.optimizer)


def groups_by_name(optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    groups = {}
    for g in optimizer.param_groups:
        assert len(g['params']) == 1 and g['param_names'] == [g['param_name']]
        groups[g['param_name']] = g
    return groups


# name -> detection layer id (depths 1,1,2,1; N = 7)
DET_IDS = {
    'backbone.patch_embed.conv1.weight': 0,
    'backbone.patch_embed.norm2.1.bias': 0,
    'backbone.levels.0.blocks.0.dcn.input_proj.weight': 1,
    'backbone.levels.0.blocks.0.gamma1': 1,
    'backbone.levels.0.norm.0.weight': 2,
    'backbone.levels.0.downsample.conv.weight': 2,
    'backbone.levels.1.blocks.0.mlp.fc1.weight': 2,
    'backbone.levels.1.downsample.conv.weight': 3,
    'backbone.levels.2.blocks.0.mlp.fc2.weight': 3,
    'backbone.levels.2.blocks.1.mlp.fc2.weight': 4,
    'backbone.levels.2.downsample.norm.1.weight': 5,
    'backbone.levels.3.blocks.0.dcn.output_proj.weight': 5,
    'backbone.levels.3.norm.0.weight': 5,
    'neck.conv.weight': 6,
    'neck.conv.bias': 6,
    'bbox_head.transformer.level_embeds': 0,
    'decode_head.query_embed.weight': 0,
    'decode_head.conv_seg.weight': 6,
}


def test_detection_rule_lrs(model):
    groups = build(model)
    # every trainable parameter has exactly one group
    assert set(groups) == {n for n, p in model.named_parameters() if p.requires_grad}
    for name, layer_id in DET_IDS.items():
        g = groups[name]
        assert g['layer_id'] == layer_id, name
        assert g['lr'] == pytest.approx(LR * R**(6 - layer_id), rel=1e-12), name
        assert g['lr_scale'] == pytest.approx(R**(6 - layer_id), rel=1e-12), name
    # hand-computed absolute values for a few
    assert groups['backbone.patch_embed.conv1.weight']['lr'] == pytest.approx(LR * 0.531441)
    assert groups['backbone.levels.3.blocks.0.mlp.fc1.weight']['lr'] == pytest.approx(LR * 0.9)
    assert groups['neck.conv.weight']['lr'] == pytest.approx(LR)


def test_detection_weight_decay(model):
    groups = build(model)
    zero = ['backbone.levels.0.blocks.0.norm1.0.weight',  # 'norm' and 1-D
            'backbone.levels.0.downsample.norm.1.weight',
            'backbone.levels.0.blocks.0.dcn.input_proj.bias',  # .bias
            'backbone.levels.0.blocks.0.gamma1',  # 1-D
            'backbone.levels.0.blocks.0.dcn.dw_conv.1.1.weight',  # 1-D LN without 'norm'
            'bbox_head.sampling_offsets.weight',  # 2-D, sampling_offsets
            'bbox_head.sampling_offsets.bias']
    decay = ['backbone.patch_embed.conv1.weight', 'backbone.levels.0.blocks.0.dcn.offset.weight',
             'backbone.levels.1.downsample.conv.weight', 'neck.conv.weight',
             'bbox_head.transformer.level_embeds', 'bbox_head.reference_points.weight',
             'decode_head.query_embed.weight']
    for name in zero:
        assert groups[name]['weight_decay'] == 0, name
    for name in decay:
        assert groups[name]['weight_decay'] == WD, name


def test_offset_lr_scale_default_keys(model):
    groups = build(model, offset_lr_scale=0.1)
    scaled = {'backbone.levels.0.blocks.0.dcn.offset.weight': 1,
              'backbone.levels.0.blocks.0.dcn.offset.bias': 1,
              'backbone.levels.2.blocks.1.dcn.mask.weight': 4,
              'bbox_head.sampling_offsets.weight': 6,
              'bbox_head.reference_points.bias': 6}
    for name, layer_id in scaled.items():
        assert groups[name]['lr'] == pytest.approx(LR * 0.1 * R**(6 - layer_id)), name
        assert groups[name]['lr_scale'] == pytest.approx(0.1 * R**(6 - layer_id)), name
    for name in ('backbone.levels.0.blocks.0.dcn.input_proj.weight', 'neck.conv.weight'):
        assert groups[name]['lr'] == pytest.approx(LR * R**(6 - DET_IDS[name])), name


def test_offset_lr_scale_official_keys(model):
    """The official detection behaviour: only MSDeformAttn offsets, never DCNv3's."""
    assert OFFICIAL_DETECTION_OFFSET_KEYS == ('sampling_offsets', 'reference_points')
    groups = build(model, offset_lr_scale=0.1, offset_lr_scale_keys=OFFICIAL_DETECTION_OFFSET_KEYS)
    for name in ('backbone.levels.0.blocks.0.dcn.offset.weight',
                 'backbone.levels.0.blocks.0.dcn.mask.weight'):
        assert groups[name]['lr'] == pytest.approx(LR * R**5), name
    assert groups['bbox_head.sampling_offsets.weight']['lr'] == pytest.approx(LR * 0.1)
    assert groups['bbox_head.reference_points.weight']['lr'] == pytest.approx(LR * 0.1)


# classification: L = 5, scale r^(5 - id); blocks g + 1, last block scale 1
CLS_SCALES = {
    'backbone.levels.3.blocks.0.mlp.fc1.weight': 1.0,
    'backbone.levels.2.blocks.1.mlp.fc1.weight': R,
    'backbone.levels.2.blocks.0.mlp.fc1.weight': R**2,
    'backbone.levels.1.blocks.0.mlp.fc1.weight': R**3,
    'backbone.levels.0.blocks.0.mlp.fc1.weight': R**4,
    'backbone.patch_embed.conv1.weight': R**4,  # = stage-1 block 0
    'backbone.levels.0.downsample.conv.weight': R**3,  # = stage-2 block 0
    'backbone.levels.0.norm.0.weight': R**3,
    'backbone.levels.1.downsample.conv.weight': R**2,  # = stage-3 block 0
    'backbone.levels.2.downsample.conv.weight': 1.0,  # = stage-4 block 0
    'backbone.levels.2.norm.0.bias': 1.0,
    'backbone.levels.3.norm.0.weight': 1.0,  # unmatched
    'neck.conv.weight': 1.0,
    'bbox_head.transformer.level_embeds': 1.0,
}


def test_classification_rule(model):
    groups = build(model, decay_rule='classification')
    for name, scale in CLS_SCALES.items():
        assert groups[name]['lr'] == pytest.approx(LR * scale, rel=1e-12), name
    # weight decay: only 1-D and .bias are exempt ('norm' or sampling_offsets are not)
    assert groups['backbone.levels.0.downsample.conv.weight']['weight_decay'] == WD
    assert groups['bbox_head.sampling_offsets.weight']['weight_decay'] == WD
    assert groups['bbox_head.sampling_offsets.bias']['weight_decay'] == 0
    assert groups['backbone.levels.0.norm.0.weight']['weight_decay'] == 0


def test_classification_rule_unprefixed_names_and_dcn_mult():
    """A bare backbone (names without `backbone.`); the official DCN_LR_MUL keys."""
    backbone = InternImage(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8),
                           core_op='DCNv3_pytorch')
    groups = build(backbone, decay_rule='classification', offset_lr_scale=0.1,
                   offset_lr_scale_keys=OFFICIAL_CLASSIFICATION_OFFSET_KEYS)
    for name, scale in CLS_SCALES.items():
        if name.startswith('backbone.'):
            assert groups[name[9:]]['lr'] == pytest.approx(LR * scale, rel=1e-12), name
    assert groups['levels.2.blocks.1.dcn.offset.weight']['lr'] == pytest.approx(LR * R * 0.1)
    assert groups['levels.2.blocks.1.dcn.mask.weight']['lr'] == pytest.approx(LR * R)


def official_classification_ratios(depths, ratio):
    """The official keyword table (classification `lr_decay_keywords`), first match wins."""
    table = {}
    idx = 0
    for s in reversed(range(4)):
        for k in reversed(range(depths[s])):
            table[f'levels.{s}.blocks.{k}.'] = ratio**idx
            idx += 1
    table['patch_embed'] = table['levels.0.blocks.0.']
    for s in range(3):
        table[f'levels.{s}.downsample'] = table[f'levels.{s + 1}.blocks.0.']
        table[f'levels.{s}.norm'] = table[f'levels.{s + 1}.blocks.0.']
    return table


def test_classification_matches_official_table_t():
    with torch.device('meta'):
        backbone = InternImage('t', core_op='DCNv3_pytorch')
    constructor = InternImageLayerDecayOptimizerConstructor(
        dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)),
        dict(decay_rule='classification', layer_decay_rate=R))
    params = []
    constructor.add_params(params, backbone)
    assert constructor.depths == [4, 4, 18, 4]  # read from the model
    table = official_classification_ratios([4, 4, 18, 4], R)
    for g in params:
        name = g['param_name']
        expected = next((v for k, v in table.items() if k in name), 1.0)
        assert g['lr'] == pytest.approx(LR * expected, rel=1e-12), name


@pytest.mark.parametrize('arch,rate,expected', [
    # spec §2 table: (patch_embed, first block of stages 1-4, last block)
    ('t', 0.9, (0.0382, 0.042, 0.065, 0.098, 0.656, 0.9)),
    ('h', 0.95, (0.0731, 0.077, 0.105, 0.142, 0.735, 0.95)),
])
def test_detection_matches_official_table(arch, rate, expected):
    with torch.device('meta'):
        backbone = InternImage(arch, core_op='DCNv3_pytorch')
    depths = list(backbone.depths)
    wrapper = nn.Module()
    wrapper.backbone = backbone
    constructor = InternImageLayerDecayOptimizerConstructor(
        dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)),
        dict(layer_decay_rate=rate))
    params = []
    constructor.add_params(params, wrapper)
    assert constructor.num_layers == sum(depths)  # the official num_layers, derived
    scales = {g['param_name']: g['lr_scale'] for g in params}
    names = ['backbone.patch_embed.conv1.weight'] + [
        f'backbone.levels.{s}.blocks.0.mlp.fc1.weight' for s in range(4)] + [
        f'backbone.levels.3.blocks.{depths[3] - 1}.mlp.fc1.weight']
    for name, value in zip(names, expected):
        assert scales[name] == pytest.approx(value, abs=6e-4), name
    if arch == 'h':  # post_norms: k is the index in the post-norm list
        assert scales['backbone.levels.2.post_norms.3.0.weight'] == pytest.approx(
            rate**(sum(depths) + 1 - (3 + 1 + 12)))


def test_mmdet3_dino_level_embed_and_mask2former_names():
    model = nn.Module()
    model.level_embed = nn.Parameter(torch.zeros(4, 8))  # mmdet 3.x DINO / Deformable DETR
    model.decode_head = nn.Module()
    for name in ('query_feat', 'level_embed', 'query_embed'):
        setattr(model.decode_head, name, nn.Embedding(3, 8))
    model.decode_head.cls_embed = nn.Linear(8, 4)
    model.decode_head.mask_embed = nn.Sequential(nn.Linear(8, 8))
    model.decode_head.other = nn.Linear(8, 4)
    model.depths = DEPTHS  # what the constructor reads from a (backbone-less) model
    groups = build(model)
    for name, g in groups.items():
        assert g['layer_id'] == (6 if name.startswith('decode_head.other') else 0), name


def test_custom_keys_compose(model):
    groups = build(model, custom_keys={'backbone': dict(lr_mult=0.1, decay_mult=0.5),
                                       'backbone.levels.3': dict(lr_mult=2.0)})
    g = groups['backbone.levels.0.blocks.0.mlp.fc1.weight']
    assert g['lr'] == pytest.approx(LR * R**5 * 0.1)
    assert g['weight_decay'] == pytest.approx(WD * 0.5)
    assert g['lr_scale'] == pytest.approx(R**5 * 0.1)
    # the longest matching key wins
    g = groups['backbone.levels.3.blocks.0.mlp.fc1.weight']
    assert g['lr'] == pytest.approx(LR * R * 2.0)
    assert g['weight_decay'] == pytest.approx(WD)
    # no-decay stays 0; unmatched parameters untouched
    assert groups['backbone.levels.0.blocks.0.norm1.0.weight']['weight_decay'] == 0
    assert groups['neck.conv.weight']['lr'] == pytest.approx(LR)


def test_frozen_params_skipped_and_summary_logged():
    backbone = InternImage(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8),
                           core_op='DCNv3_pytorch', frozen_stages=1)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        groups = build(backbone, decay_rule='classification')
    finally:
        logger.removeHandler(handler)
    assert not any(n.startswith(('patch_embed', 'levels.0.')) for n in groups)
    assert 'levels.1.blocks.0.mlp.fc1.weight' in groups
    text = '\n'.join(r.getMessage() for r in records)
    assert 'layer_id  params  lr_scale' in text and '33 frozen' in text


@pytest.mark.parametrize('paramwise,key', [
    (dict(), 'layer_decay_rate'),
    (dict(layer_decay_rate=0.0), 'layer_decay_rate'),
    (dict(layer_decay_rate=1.5), 'layer_decay_rate'),
    (dict(layer_decay_rate=R, num_layers=0), 'num_layers'),
    (dict(layer_decay_rate=R, decay_rule='beit'), 'decay_rule'),
    (dict(layer_decay_rate=R, offset_lr_scale=-1), 'offset_lr_scale'),
    (dict(layer_decay_rate=R, offset_lr_scale_keys=[]), 'offset_lr_scale_keys'),
    (dict(layer_decay_rate=R, norm_decay_mult=0.), 'norm_decay_mult'),
    # the model owns its depths: restating them in the config is refused, by name
    (dict(layer_decay_rate=R, depths=DEPTHS), 'depths.*read from the model'),
])
def test_bad_config(paramwise, key):
    with pytest.raises(ValueError, match=key):
        InternImageLayerDecayOptimizerConstructor(
            dict(optimizer=dict(type='AdamW', lr=LR, weight_decay=WD)), paramwise)


def test_num_layers_below_the_models_blocks(model):
    with pytest.raises(ValueError, match='num_layers'):
        build(model, num_layers=4)  # sum(depths) = 5


def test_num_layers_override_and_depths_from_the_model(model):
    groups = build(model, num_layers=6)  # N = 8: one more id than the official 5 + 2
    assert groups['backbone.patch_embed.conv1.weight']['lr'] == pytest.approx(LR * R**7)
    assert groups['neck.conv.weight']['lr'] == pytest.approx(LR)


def test_model_without_depths_is_refused():
    plain = nn.Module()
    plain.backbone = nn.Linear(2, 2)
    with pytest.raises(ValueError, match='has no `depths`'):
        build(plain)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_build_through_openmmlab_scopes(model, scope):
    registry = __import__(f'{scope}.registry', fromlist=['x']).OPTIM_WRAPPER_CONSTRUCTORS
    assert registry.get(NAME) is InternImageLayerDecayOptimizerConstructor
    assert OPTIM_WRAPPER_CONSTRUCTORS.get(NAME) is InternImageLayerDecayOptimizerConstructor
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=LR, weight_decay=WD),
               constructor=NAME,
               paramwise_cfg=dict(layer_decay_rate=R))
    with DefaultScope.overwrite_default_scope(scope):
        optim_wrapper = build_optim_wrapper(model, cfg)
    assert isinstance(optim_wrapper.optimizer, torch.optim.AdamW)
    groups = groups_by_name(optim_wrapper.optimizer)
    expected = build(model)
    assert groups.keys() == expected.keys()
    for name, g in groups.items():
        for k in ('lr', 'weight_decay', 'layer_id', 'lr_scale'):
            assert g[k] == expected[name][k], (name, k)
    assert optim_wrapper.get_lr()['lr'][0] == pytest.approx(LR * R**6)


def test_names_inside_fsdp_and_checkpoint_wrappers(model):
    """FSDP (use_orig_params) and torch's checkpoint_wrapper insert ``_fsdp_wrapped_module.``
    / ``_checkpoint_wrapped_module.`` into parameter names: the rules see the model's names."""

    class Wrap(nn.Module):
        def __init__(self, inner: nn.Module, attr: str) -> None:
            super().__init__()
            setattr(self, attr, inner)

    wrapped = Wrap(FakeDetector(), '_fsdp_wrapped_module')
    blocks = wrapped._fsdp_wrapped_module.backbone.levels[2].blocks
    blocks[1] = Wrap(Wrap(blocks[1], '_checkpoint_wrapped_module'), '_fsdp_wrapped_module')
    groups = build(wrapped)
    for name, layer_id in DET_IDS.items():
        assert groups[name]['layer_id'] == layer_id, name
    assert len(groups) == len(build(model))
