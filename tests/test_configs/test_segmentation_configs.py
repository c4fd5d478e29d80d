"""The ADE20K segmentation configs (configs/segmentation/): official settings, full-size
structure, and one training step of each on a CPU with a shrunk backbone.

Expected values are those of official_configs.md §1.2, §2, §5 and paper_tables.md.
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from ..conftest import data_file
from ._seg_helpers import (
    PAPER_ROWS,
    SEG_CONFIGS,
    SYNTHETIC,
    TINY_BACKBONE,
    build_model,
    load_config,
    shrink_model_cfg,
    synthetic_batch,
)
from ._tiny import OFFICIAL_URL, layer_decay_constructor, meta_backbone

ALL = tuple(PAPER_ROWS) + SYNTHETIC
WIDTH = {'t': 64, 's': 80, 'b': 112, 'l': 160, 'xl': 192, 'h': 320}
NUM_LAYERS = {'t': 30, 's': 33, 'b': 33, 'l': 37, 'xl': 39, 'h': 50}
DEPTHS = {'t': [4, 4, 18, 4], 's': [4, 4, 21, 4], 'b': [4, 4, 21, 4], 'l': [5, 5, 22, 5],
          'xl': [5, 5, 24, 5], 'h': [6, 6, 32, 6]}
# official_configs.md §1.2 / §5.2
DROP_PATH = {'t': 0.2, 's': 0.3, 'b': 0.4, 'l': 0.4, 'xl': 0.4, 'h': 0.5}
CKPT = {'t': 'internimage_t_1k_224.pth', 's': 'internimage_s_1k_224.pth',
        'b': 'internimage_b_1k_224.pth', 'l': 'internimage_l_22k_192to384.pth',
        'xl': 'internimage_xl_22k_192to384.pth', 'h': 'internimage_h_jointto22k_384.pth'}
RATE = {'t': 1.0, 's': 1.0, 'b': 1.0, 'l': 0.94, 'xl': 0.94, 'h': 0.95}
ARCH = {  # offset_scale, post_norm, layer_scale (det/seg configs)
    't': (1.0, False, 1.0), 's': (1.0, True, 1.0), 'b': (1.0, True, 1.0),
    'l': (2.0, True, 1.0), 'xl': (2.0, True, 1.0), 'h': (1.0, False, None)}


@pytest.fixture(scope='module')
def configs():
    return {name: load_config(name) for name in ALL}


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine, two threads make small ops crawl."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_table_row_has_a_config():
    names = {p.stem for p in SEG_CONFIGS.glob('*.py')}
    assert set(PAPER_ROWS) | set(SYNTHETIC) <= names, set(PAPER_ROWS) - names


@pytest.mark.parametrize('name', ALL)
def test_config_parses_with_plain_mmengine(name, configs):
    """Parses with mmengine's Config (the `mmseg::` scope resolves after `import
    internimage_mm`); loads the plugin; test pipeline with the official ResizeToMultiple(32),
    label checks after every LoadAnnotations; TTA available."""
    cfg = configs[name]
    assert cfg.default_scope == 'mmseg'
    assert cfg.custom_imports.allow_failed_imports is False
    assert cfg.custom_imports.imports == ['internimage_mm.tasks.segmentation']
    assert cfg.model.backbone.type == 'InternImage'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipeline = cfg[key].dataset.pipeline
        kinds = [t.type for t in pipeline]
        i = kinds.index('LoadAnnotations')
        assert kinds[i + 1] == 'CheckSegLabels', kinds
        assert pipeline[i + 1].num_classes == cfg.num_classes
        if key != 'train_dataloader':
            assert kinds.index('Resize') < kinds.index('ResizeToMultiple') < i, kinds
            assert pipeline[kinds.index('ResizeToMultiple')].size_divisor == 32
    assert cfg.tta_model.type == 'SegTTAModel'
    aug = cfg.tta_pipeline[1]
    assert aug.type == 'TestTimeAug'
    assert [t.type for t in aug.transforms[1]] == ['ResizeToMultiple']
    assert [t.prob for t in aug.transforms[2]] == [0., 1.]
    assert cfg.val_evaluator.type == 'IoUMetric' and cfg.val_evaluator.iou_metrics == ['mIoU']
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'


@pytest.mark.parametrize('name', list(PAPER_ROWS))
def test_config_official_settings(name, configs):
    """official_configs.md §1.2, §5.1-§5.3, one setting at a time."""
    cfg = configs[name]
    variant, crop, *_ = PAPER_ROWS[name]
    m2f = name.startswith('mask2former')
    model = cfg.model
    # backbone
    bb = model.backbone
    built = meta_backbone(bb)  # what the model is, not what the config restates
    assert bb.arch == variant and built.core_op == 'DCNv3'
    offset_scale, post_norm, layer_scale = ARCH[variant]
    arch = built.arch_settings
    assert (arch['offset_scale'], arch['post_norm'], arch['layer_scale']) == (
        offset_scale, post_norm, layer_scale)
    assert bb.drop_path_rate == DROP_PATH[variant]
    assert bb.with_cp is False and tuple(bb.out_indices) == (0, 1, 2, 3)
    if variant == 'h':
        assert (arch['dw_kernel_size'], arch['res_post_norm'], arch['level2_post_norm'],
                arch['center_feature_scale']) == (5, True, True, True)
        assert list(arch['level2_post_norm_block_ids']) == [5, 11, 17, 23, 29]
    if m2f:  # the official COCO-Stuff Mask2Former, from its release URL
        assert bb.init_cfg is None
        assert cfg.load_from == (OFFICIAL_URL +
                                 'mask2former_internimage_h_896_80k_cocostuff164k.pth')
    else:
        assert bb.init_cfg == dict(type='Pretrained', checkpoint=OFFICIAL_URL + CKPT[variant])
        assert cfg.load_from is None
    assert model.get('pretrained') is None
    widths = [WIDTH[variant] * 2**i for i in range(4)]
    head = model.decode_head
    assert list(head.in_channels) == widths
    assert head.num_classes == 150
    if m2f:
        assert (head.feat_channels, head.out_channels, head.num_queries) == (1024, 1024, 200)
        assert head.num_transformer_feat_level == 3
        assert head.enforce_decoder_input_project is False
        enc = head.pixel_decoder.encoder
        assert enc.num_layers == 6
        assert (enc.layer_cfg.self_attn_cfg.embed_dims, enc.layer_cfg.self_attn_cfg.num_heads,
                enc.layer_cfg.self_attn_cfg.num_levels,
                enc.layer_cfg.self_attn_cfg.num_points) == (1024, 32, 3, 4)
        assert enc.layer_cfg.ffn_cfg.feedforward_channels == 4096
        assert head.pixel_decoder.norm_cfg == dict(type='GN', num_groups=32)
        assert head.pixel_decoder.positional_encoding.num_feats == 512
        assert head.positional_encoding.num_feats == 512
        dec = head.transformer_decoder
        assert dec.num_layers == 9 and dec.return_intermediate
        for attn in ('self_attn_cfg', 'cross_attn_cfg'):
            assert (dec.layer_cfg[attn].embed_dims, dec.layer_cfg[attn].num_heads) == (1024, 32)
        assert dec.layer_cfg.ffn_cfg.feedforward_channels == 4096
        assert head.loss_cls.loss_weight == 2.0 and not head.loss_cls.use_sigmoid
        assert head.loss_cls.class_weight == [1.0] * 150 + [0.1]
        assert head.loss_mask.loss_weight == 5.0 and head.loss_mask.use_sigmoid
        assert head.loss_dice.loss_weight == 5.0 and head.loss_dice.naive_dice
        assert head.loss_dice.eps == 1.0
        train = head.train_cfg
        assert (train.num_points, train.oversample_ratio,
                train.importance_sample_ratio) == (12544, 3.0, 0.75)
        assert [c.weight for c in train.assigner.match_costs] == [2.0, 5.0, 5.0]
    else:
        assert head.type == 'UPerHead' and head.channels == 512
        assert tuple(head.pool_scales) == (1, 2, 3, 6) and head.dropout_ratio == 0.1
        assert head.norm_cfg.type == 'SyncBN' and head.align_corners is False
        assert head.loss_decode.loss_weight == 1.0 and not head.loss_decode.use_sigmoid
        aux = model.auxiliary_head
        assert aux.type == 'FCNHead' and aux.in_index == 2 and aux.in_channels == widths[2]
        assert (aux.channels, aux.num_convs, aux.concat_input) == (256, 1, False)
        assert aux.norm_cfg.type == 'SyncBN' and aux.num_classes == 150
        assert aux.loss_decode.loss_weight == 0.4
    assert model.test_cfg.mode == 'whole'
    assert tuple(model.data_preprocessor.size) == (crop, crop)
    assert model.data_preprocessor.seg_pad_val == 255
    # data (§5.1)
    train = cfg.train_dataloader
    assert train.batch_size == (1 if variant == 'h' else 2)
    assert train.dataset.type == 'ADE20KDataset'
    steps = {t.type: t for t in train.dataset.pipeline}
    assert tuple(steps['RandomResize'].scale) == (4 * crop, crop)
    assert tuple(steps['RandomResize'].ratio_range) == (0.5, 2.0)
    assert tuple(steps['RandomCrop'].crop_size) == (crop, crop)
    assert steps['RandomCrop'].cat_max_ratio == 0.75
    assert steps['RandomFlip'].prob == 0.5 and 'PhotoMetricDistortion' in steps
    test_steps = {t.type: t for t in cfg.test_dataloader.dataset.pipeline}
    assert tuple(test_steps['Resize'].scale) == (4 * crop, crop)
    resizes = cfg.tta_pipeline[1].transforms[0]
    assert [tuple(r.scale) for r in resizes] == [
        (int(4 * crop * r), int(crop * r)) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    # optimizer (§2, §5.2, §5.3)
    optim = cfg.optim_wrapper
    assert optim.constructor == 'InternImageLayerDecayOptimizerConstructor'
    assert optim.optimizer.type == 'AdamW' and optim.optimizer.weight_decay == 0.05
    assert tuple(optim.optimizer.betas) == (0.9, 0.999)
    lr = 1e-5 if m2f else (6e-5 if variant in ('t', 's', 'b') else 2e-5)
    assert optim.optimizer.lr == lr
    paramwise = optim.paramwise_cfg
    assert 'num_layers' not in paramwise and 'depths' not in paramwise  # the model owns them
    ctor = layer_decay_constructor(optim, model.backbone)
    assert ctor.num_layers == NUM_LAYERS[variant] == sum(DEPTHS[variant])
    assert ctor.depths == DEPTHS[variant]
    assert paramwise.layer_decay_rate == RATE[variant]
    assert paramwise.offset_lr_scale == 1.0
    assert paramwise.get('decay_rule', 'detection') == 'detection'
    if variant in ('l', 'xl', 'h'):
        assert optim.clip_grad == dict(max_norm=0.1, norm_type=2)
    else:
        assert optim.get('clip_grad') is None
    # schedule, evaluation, checkpoints (§5.1)
    iters = 80000 if m2f else 160000
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_cfg.val_interval == (2000 if m2f else 16000)
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.begin, warmup.end) == (
        'LinearLR', 1e-6, 0, 1500)
    assert (poly.type, poly.power, poly.eta_min, poly.begin, poly.end) == (
        'PolyLR', 1.0, 0.0, 0, iters)
    assert not warmup.by_epoch and not poly.by_epoch
    ckpt = cfg.default_hooks.checkpoint
    assert (ckpt.by_epoch, ckpt.interval, ckpt.max_keep_ckpts, ckpt.save_best) == (
        False, 1000, 1, 'mIoU')
    assert cfg.default_hooks.logger.interval == 50
    assert cfg.auto_scale_lr.base_batch_size == 16


def test_schedule_equals_official_warmup_times_poly():
    """mmengine LinearLR(1e-6, 0..1500) and PolyLR(1.0, 0..T) chained from iteration 0 give the
    official mmcv poly + linear warmup: lr_t = lr * (r + (1 - r) t / 1500) * (1 - t / T) during
    warmup, lr * (1 - t / T) after (checked over the first 3000 iterations). mmengine's linear
    ramp reaches its end factor at step end - 1 = 1499 (mmcv: at 1500), a relative difference of
    at most 1/1500 during the warmup and none after it."""
    from mmengine.optim.scheduler import LinearLR, PolyLR
    cfg = load_config('upernet_internimage-t_8xb2-160k_ade20k-512x512')
    warmup, poly = cfg.param_scheduler
    total, lr = poly.end, cfg.optim_wrapper.optimizer.lr
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    kwargs = lambda c: {k: v for k, v in c.items() if k not in ('type', '_scope_')}  # noqa
    schedulers = [LinearLR(optimizer, **kwargs(warmup)), PolyLR(optimizer, **kwargs(poly))]
    for t in range(3001):
        if t in (0, 1, 750, 1499, 1500, 1501, 3000):
            factor = 1e-6 + (1 - 1e-6) * t / 1500 if t < 1500 else 1.0
            expect = lr * factor * (1 - t / total)
            tol = 1 / 1499 if t < 1500 else 1e-6
            assert optimizer.param_groups[0]['lr'] == pytest.approx(expect, rel=tol), t
        for s in schedulers:
            s.step()


@pytest.mark.parametrize('name', list(PAPER_ROWS))
def test_full_size_structure(name, configs):
    """The full-size model builds (meta device: no memory, no time): backbone keys and shapes
    are the official detection/segmentation backbone's; parameters within 1% of the paper."""
    variant, _, paper_params, *_ = PAPER_ROWS[name]
    model_cfg = configs[name].model.copy()
    model_cfg.backbone.init_cfg = None
    with torch.device('meta'):
        model = build_model(model_cfg)
    manifest = json.loads(
        data_file(f'spec/internimage_{variant}_det_backbone_state_dict.json').read_text())
    state = model.backbone.state_dict()
    assert list(state) == list(manifest) or set(state) == set(manifest)
    assert {k: list(v.shape) for k, v in state.items()} == manifest
    params = sum(p.numel() for p in model.parameters())
    assert abs(params - paper_params) <= 0.01 * paper_params, (params, paper_params)


@pytest.mark.parametrize('name', ALL)
def test_shrunk_model_train_step(name, configs, one_thread):
    """The config's model with a tiny backbone and narrow heads (same structure, norms and
    losses): the layer-decay optimizer builds, one loss forward + backward through the data
    preprocessor gives finite losses and gradients, and one optimizer step runs."""
    cfg = configs[name]
    torch.manual_seed(0)
    model = build_model(shrink_model_cfg(cfg.model))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    data = model.data_preprocessor(
        synthetic_batch(size=64, num_classes=cfg.num_classes), training=True)
    losses = model.loss(**data)
    loss_names = [k for k in losses if 'loss' in k]
    assert loss_names, losses
    total = sum(losses[k] for k in loss_names)
    assert all(torch.isfinite(losses[k]).all() for k in loss_names), losses
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.backbone.patch_embed.conv1.weight.grad.abs().sum() > 0
    optim.step()
    groups = optim.optimizer.param_groups
    assert len(groups) == sum(1 for p in model.parameters() if p.requires_grad)
    if name.startswith('mask2former'):
        # Mask2Former's query/level/class/mask embeddings: layer 0, the smallest lr (§2)
        by_name = {g['param_name']: g for g in groups}
        rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
        n = sum(TINY_BACKBONE['depths']) + 2
        for key in ('decode_head.query_embed.weight', 'decode_head.query_feat.weight',
                    'decode_head.level_embed.weight', 'decode_head.cls_embed.weight',
                    'decode_head.mask_embed.0.weight'):
            assert by_name[key]['layer_id'] == 0, key
            assert by_name[key]['lr_scale'] == pytest.approx(rate**(n - 1))
        assert by_name['decode_head.transformer_decoder.layers.0.ffn.layers.1.weight'][
            'lr_scale'] == 1.0
        offsets = 'decode_head.pixel_decoder.encoder.layers.0.self_attn.sampling_offsets.weight'
        assert by_name[offsets]['weight_decay'] == 0.0  # official: no decay for sampling_offsets


@pytest.mark.parametrize('name', list(PAPER_ROWS))
def test_layer_decay_scales_match_official_table(name, configs):
    """official_configs.md §2 example table: stem, first block of each stage, last block."""
    variant = PAPER_ROWS[name][0]
    if RATE[variant] == 1.0:
        pytest.skip('no decay (rate 1.0): every scale is 1')
    constructor = layer_decay_constructor(configs[name].optim_wrapper,
                                          configs[name].model.backbone)
    table = {'l': (0.0952, [0.101, 0.138, 0.188, 0.734]),
             'xl': (0.0842, [0.090, 0.122, 0.166, 0.734]),
             'h': (0.0731, [0.077, 0.105, 0.142, 0.735])}[variant]
    scale = lambda n: constructor.get_layer_scale(constructor.get_layer_id(n))  # noqa: E731
    assert scale('backbone.patch_embed.conv1.weight') == pytest.approx(table[0], abs=5e-4)
    for s, expect in enumerate(table[1]):
        assert scale(f'backbone.levels.{s}.blocks.0.dcn.offset.weight') == pytest.approx(
            expect, abs=5e-4)
    last = len(DEPTHS[variant]) - 1
    assert scale(f'backbone.levels.{last}.blocks.{DEPTHS[variant][-1] - 1}.mlp.fc1.weight') \
        == pytest.approx(RATE[variant])
    assert scale('decode_head.conv_seg.weight') == 1.0
    if name.startswith('mask2former'):
        assert scale('decode_head.query_embed.weight') == pytest.approx(table[0], abs=5e-4)
        assert math.isclose(scale('decode_head.query_feat.weight'), RATE[variant]**51)


def test_user_config_overrides(configs):
    """--cfg-options style overrides reach the model (a user pointing at their checkpoint)."""
    cfg = Config.fromfile(str(SEG_CONFIGS / 'upernet_internimage-t_8xb2-160k_ade20k-512x512.py'))
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': '/data/t.pth',
                         'train_dataloader.dataset.data_root': '/data/ade'})
    assert cfg.model.backbone.init_cfg.checkpoint == '/data/t.pth'
    assert cfg.train_dataloader.dataset.data_root == '/data/ade'
