"""The COCO detection configs (configs/detection/): official settings, full-size structure, and
one training step of each on a CPU with a shrunk backbone.

Expected values are those of official_configs.md §1.2, §2 and §4 and paper_tables.md.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from ..conftest import load_json
from ._det_helpers import (
    CONFIG_NAMES,
    TINY_BACKBONE,
    build_model,
    load_config,
    shrink_model_cfg,
    synthetic_batch,
)
from ._tiny import OFFICIAL_URL, layer_decay_constructor, meta_backbone

# ----------------------------------------------------------------------------- expectations
CKPT = {
    't': OFFICIAL_URL + 'internimage_t_1k_224.pth',
    's': OFFICIAL_URL + 'internimage_s_1k_224.pth',
    'b': OFFICIAL_URL + 'internimage_b_1k_224.pth',
    'l': OFFICIAL_URL + 'internimage_l_22k_192to384.pth',
    'xl': OFFICIAL_URL + 'internimage_xl_22k_192to384.pth',
    'h': None,  # the official DINO-H file loads no weights
}
WIDTH = {'t': 64, 's': 80, 'b': 112, 'l': 160, 'xl': 192, 'h': 320}
NUM_LAYERS = {'t': 30, 's': 33, 'b': 33, 'l': 37, 'xl': 39, 'h': 50}
# paper_tables.md #params (millions)
PAPER_PARAMS = {('mask', 't'): 49, ('mask', 's'): 69, ('mask', 'b'): 115, ('cascade', 'l'): 277,
                ('cascade', 'xl'): 387, ('dino', 't'): 49, ('dino', 'l'): 241,
                ('dino', 'h'): 1100}


def expected(name: str) -> dict:
    """The official settings of one config (official_configs.md §1.2 and §4)."""
    family = 'dino' if name.startswith('dino') else (
        'cascade' if name.startswith('cascade') else 'mask')
    variant = name.split('internimage-')[1].split('_')[0]
    three_x = '-ms-3x_' in name
    e = dict(family=family, variant=variant, three_x=three_x, ckpt=CKPT[variant], batch=2,
             base_batch=16, clip=None, wd=0.05, lr=1e-4, epochs=36 if three_x else 12,
             milestones=[27, 33] if three_x else [8, 11], num_layers=NUM_LAYERS[variant],
             offset_lr_scale=1.0)
    if family == 'mask':
        e.update(drop_path={'t': 0.2, 's': 0.3, 'b': 0.4}[variant], with_cp=False,
                 out_indices=(0, 1, 2, 3), rate=1.0)
    elif family == 'cascade':
        e.update(drop_path=0.6 if (variant == 'xl' and three_x) else 0.4, with_cp=False,
                 out_indices=(0, 1, 2, 3), rate=0.90 if three_x else 0.94)
        if three_x:
            e.update(lr=2e-4, base_batch=64)
    else:
        e.update(drop_path={'t': 0.2, 'l': 0.4, 'h': 0.5}[variant],
                 with_cp=variant in ('t', 'h'), out_indices=(1, 2, 3), clip=0.1,
                 milestones=[11], max_per_img=100 if variant == 't' else 300,
                 num_dn=1000 if variant == 'h' else 100)
        if variant == 't':
            e.update(wd=1e-4, rate=0.9)
        elif variant == 'l':
            e.update(wd=0.05, rate=None)  # plain constructor, backbone lr x0.1
        else:
            e.update(wd=1e-4, rate=0.94, offset_lr_scale=1e-3, batch=1, epochs=None)
    widths = [WIDTH[variant] * 2**i for i in range(4)]
    e['neck_in'] = [widths[i] for i in e['out_indices']]
    return e


# §2 example scales: patch_embed, the first block of stages 1-4, the last block.
OFFICIAL_SCALES = {
    ('cascade', 'l', False): ('0.0952', ('0.101', '0.138', '0.188', '0.734'), '0.94'),
    ('cascade', 'l', True): ('0.0182', ('0.020', '0.034', '0.058', '0.590'), '0.90'),
    ('cascade', 'xl', False): ('0.0842', ('0.090', '0.122', '0.166', '0.734'), '0.94'),
    ('cascade', 'xl', True): ('0.0148', ('0.016', '0.028', '0.047', '0.590'), '0.90'),
    ('dino', 't', False): ('0.0382', ('0.042', '0.065', '0.098', '0.656'), '0.90'),
    ('dino', 'h', False): ('0.0426', ('0.045', '0.066', '0.095', '0.690'), '0.94'),
}

SHORT_EDGES = [(s, 1333) for s in range(480, 801, 32)]


def _agrees(value: float, printed: str) -> bool:
    """``value`` rounds to ``printed`` (as many decimals as printed)."""
    decimals = len(printed.split('.')[1])
    return abs(value - float(printed)) <= 0.5 * 10**-decimals + 1e-12


@pytest.fixture(scope='module')
def configs():
    return {}


def _cfg(configs: dict, name: str):
    if name not in configs:
        configs[name] = load_config(name)
    return configs[name]


# ----------------------------------------------------------------------------- the settings
@pytest.mark.parametrize('name', CONFIG_NAMES)
def test_config_official_settings(name, configs):
    cfg = _cfg(configs, name)
    e = expected(name)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['internimage_mm.tasks.detection'],
                                      allow_failed_imports=False)
    # mmdet's CocoDataset with clear errors for bad paths / category ids (not silent skips)
    for split in ('train', 'val', 'test'):
        dataset = cfg[f'{split}_dataloader'].dataset
        assert dataset.type == 'ValidatedCocoDataset', split
        assert dataset.data_root == 'data/coco/', split

    backbone = cfg.model.backbone
    assert backbone.type == 'InternImage' and backbone.arch == e['variant']
    built = meta_backbone(backbone)
    assert built.core_op == 'DCNv3' and backbone.get('norm_layer', 'LN') == 'LN'
    assert built.arch_settings['layer_scale'] == (None if e['variant'] == 'h' else 1.0)
    assert backbone.drop_path_rate == e['drop_path']
    assert backbone.with_cp is e['with_cp']
    assert tuple(backbone.out_indices) == e['out_indices']
    if e['ckpt'] is None:
        assert backbone.init_cfg is None
    else:
        assert backbone.init_cfg == dict(type='Pretrained', checkpoint=e['ckpt'])  # the release URL
    assert list(cfg.model.neck.in_channels) == e['neck_in']
    assert cfg.model.data_preprocessor.pad_size_divisor == 32

    # data, evaluation, checkpoints
    assert cfg.train_dataloader.batch_size == e['batch']
    assert cfg.auto_scale_lr.base_batch_size == e['base_batch']
    assert cfg.val_evaluator.classwise is True and cfg.test_evaluator.classwise is True
    metric = cfg.val_evaluator.metric
    assert metric == (['bbox', 'segm'] if e['family'] != 'dino' else 'bbox')
    ckpt_hook = cfg.default_hooks.checkpoint
    assert ckpt_hook.max_keep_ckpts == 3 and ckpt_hook.save_best == 'auto'
    assert ckpt_hook.interval == (200 if e['variant'] == 'h' and e['family'] == 'dino' else 1)

    # optimizer: AdamW, fp16 off, grad clip only for DINO
    ow = cfg.optim_wrapper
    assert ow.type == 'OptimWrapper'
    assert ow.optimizer.type == 'AdamW'
    assert ow.optimizer.lr == e['lr'] and ow.optimizer.weight_decay == e['wd']
    clip = ow.get('clip_grad')
    assert (clip is None) if e['clip'] is None else (clip == dict(max_norm=0.1, norm_type=2))
    if e['rate'] is None:  # DINO-L: the plain constructor, backbone lr x 0.1
        assert 'constructor' not in ow
        assert ow.paramwise_cfg == dict(custom_keys={'backbone': dict(lr_mult=0.1)})
    else:
        assert ow.constructor == 'InternImageLayerDecayOptimizerConstructor'
        pw = ow.paramwise_cfg
        assert 'num_layers' not in pw and 'depths' not in pw  # the model owns them
        assert layer_decay_constructor(ow, backbone).num_layers == e['num_layers']
        assert pw.layer_decay_rate == e['rate']
        assert pw.get('offset_lr_scale', 1.0) == e['offset_lr_scale']
        if e['offset_lr_scale'] != 1.0:
            assert tuple(pw.offset_lr_scale_keys) == ('sampling_offsets', )

    # schedule: linear warmup 500 iterations from 1e-3, then steps of 0.1
    warmup = cfg.param_scheduler[0]
    assert (warmup.type, warmup.start_factor, warmup.by_epoch, warmup.end) == (
        'LinearLR', 0.001, False, 500)
    if e['epochs'] is None:  # DINO-H: 20k iterations, constant lr after warmup
        assert cfg.train_cfg.type == 'IterBasedTrainLoop'
        assert cfg.train_cfg.max_iters == 20000 and cfg.train_cfg.val_interval == 200
        assert len(cfg.param_scheduler) == 1
    else:
        assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
        assert cfg.train_cfg.max_epochs == e['epochs']
        step = cfg.param_scheduler[1]
        assert (step.type, step.milestones, step.gamma, step.end) == (
            'MultiStepLR', e['milestones'], 0.1, e['epochs'])

    # train pipeline: flip 0.5 then the DETR-style choice (3x and DINO T/L)
    pipeline = cfg.train_dataloader.dataset.pipeline
    types = [t.type for t in pipeline]
    if e['three_x'] or (e['family'] == 'dino' and e['variant'] != 'h'):
        assert types.index('RandomFlip') < types.index('RandomChoice')
        policy_a, policy_b = pipeline[types.index('RandomChoice')].transforms
        assert [t.type for t in policy_a] == ['RandomChoiceResize']
        assert [tuple(s) for s in policy_a[0].scales] == SHORT_EDGES
        assert [t.type for t in policy_b] == ['RandomChoiceResize', 'RandomCrop',
                                              'RandomChoiceResize']
        long1 = 4200 if e['family'] == 'dino' else 1333
        assert [tuple(s) for s in policy_b[0].scales] == [(400, long1), (500, long1),
                                                          (600, long1)]
        assert policy_b[1].crop_type == 'absolute_range'
        assert tuple(policy_b[1].crop_size) == (384, 600)
        assert policy_b[1].allow_negative_crop is (e['family'] != 'dino')
        assert [tuple(s) for s in policy_b[2].scales] == SHORT_EDGES
    elif e['family'] == 'dino':  # H: short edge uniform in [600, 1800], long 2000
        resize = pipeline[types.index('RandomResize')]
        assert [tuple(s) for s in resize.scale] == [(2000, 600), (2000, 1800)]
        test_resize = [t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'Resize']
        assert tuple(test_resize[0].scale) == (2000, 1000)
    else:
        assert 'RandomChoice' not in types
        assert tuple(pipeline[types.index('Resize')].scale) == (1333, 800)
    if 'LoadAnnotations' in types:
        assert pipeline[types.index('LoadAnnotations')].get('with_mask', False) is (
            e['family'] != 'dino')

    # model heads
    if e['family'] == 'cascade':
        heads = cfg.model.roi_head.bbox_head
        stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
        for head, std in zip(heads, stds, strict=True):
            assert head.type == 'ConvFCBBoxHead'
            assert (head.num_shared_convs, head.num_shared_fcs, head.conv_out_channels,
                    head.fc_out_channels) == (4, 1, 256, 1024)
            assert head.norm_cfg.type == 'SyncBN'
            assert head.reg_class_agnostic is False and head.reg_decoded_bbox is True
            assert head.loss_bbox == dict(type='GIoULoss', loss_weight=10.0)
            assert list(head.bbox_coder.target_stds) == std
        assert cfg.model.rpn_head.loss_bbox.type == 'SmoothL1Loss'
        assert math.isclose(cfg.model.rpn_head.loss_bbox.beta, 1 / 9)
    if e['family'] == 'dino':
        assert cfg.model.type == 'LegacyDINO'
        assert cfg.model.num_queries == 900
        assert cfg.model.neck.type == 'ChannelMapper' and cfg.model.neck.num_outs == 4
        assert cfg.model.neck.kernel_size == 1 and cfg.model.neck.out_channels == 256
        assert cfg.model.neck.norm_cfg == dict(type='GN', num_groups=32)
        assert cfg.model.positional_encoding.temperature == 20
        assert cfg.model.dn_cfg.group_cfg.num_dn_queries == e['num_dn']
        assert cfg.model.test_cfg.max_per_img == e['max_per_img']
        assert cfg.train_dataloader.dataset.filter_cfg.filter_empty_gt is True

    hooks = cfg.get('custom_hooks', [])
    if e['family'] == 'cascade' and e['three_x']:
        assert hooks == [dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=1e-4,
                              gamma=2000, update_buffers=True, priority=49)]
    else:
        assert not any(h.type == 'EMAHook' for h in hooks)


# ----------------------------------------------------------------------------- full size
@pytest.mark.parametrize('name', CONFIG_NAMES)
def test_full_size_structure(name, configs):
    """Backbone keys and shapes equal the official manifest; the whole detector has the
    paper's parameter count. Built on the meta device (no memory, no init)."""
    cfg = _cfg(configs, name)
    e = expected(name)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    with torch.device('meta'):
        model = build_model(model_cfg)

    manifest = load_json(f'spec/internimage_{e["variant"]}_det_backbone_state_dict.json')
    keys = {k: list(v.shape) for k, v in model.backbone.state_dict().items()}
    assert sorted(keys) == sorted(manifest)
    assert keys == manifest

    # Architecture kwargs equal the official det kwargs (variants.json); run settings are
    # checked per config above.
    official = load_json('spec/variants.json')[e['variant']][
        'detection_segmentation_backbone']['kwargs']
    settings = model.backbone.arch_settings
    for key in ('channels', 'depths', 'groups', 'layer_scale', 'offset_scale', 'post_norm',
                'dw_kernel_size', 'res_post_norm', 'level2_post_norm',
                'level2_post_norm_block_ids', 'center_feature_scale'):
        if key in official:
            got = settings[key]
            assert (list(got) if isinstance(got, (list, tuple)) else got) == official[key], key

    params = sum(p.numel() for p in model.parameters()) / 1e6
    paper = PAPER_PARAMS[(e['family'], e['variant'])]
    assert abs(params - paper) <= max(0.5, 0.01 * paper), f'{params:.1f}M vs paper {paper}M'


@pytest.mark.parametrize('name', [n for n in CONFIG_NAMES
                                  if ('dino' if n.startswith('dino') else 'cascade'
                                      if n.startswith('cascade') else 'mask',
                                      expected(n)['variant'], expected(n)['three_x'])
                                  in OFFICIAL_SCALES])
def test_layer_decay_scales_match_official_table(name, configs):
    """The full-size lr scales equal the official_configs.md §2 example table."""
    cfg = _cfg(configs, name)
    e = expected(name)
    ow = cfg.optim_wrapper
    ctor = layer_decay_constructor(ow, cfg.model.backbone)
    stem, firsts, last = OFFICIAL_SCALES[(e['family'], e['variant'], e['three_x'])]

    def scale(name):
        return ctor.get_layer_scale(ctor.get_layer_id(name))

    assert _agrees(scale('backbone.patch_embed.conv1.weight'), stem)
    depths = ctor.depths
    for stage, printed in enumerate(firsts):
        assert _agrees(scale(f'backbone.levels.{stage}.blocks.0.dcn.input_proj.weight'), printed)
    assert _agrees(scale(f'backbone.levels.3.blocks.{depths[3] - 1}.mlp.fc1.weight'), last)
    assert scale('neck.fpn_convs.0.conv.weight') == 1.0
    if e['family'] == 'dino':  # mmdet 3.x's name for the official `level_embeds`
        assert _agrees(scale('level_embed'), stem)


# ----------------------------------------------------------------------------- training step
def _groups_by_name(model, optimizer) -> dict:
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            out[names[id(p)]] = (group['lr'], group.get('weight_decay',
                                                        optimizer.defaults['weight_decay']))
    return out


@pytest.mark.parametrize('name', CONFIG_NAMES)
def test_shrunk_model_train_step(name, configs):
    """The config's model with a tiny backbone builds with mmdet's registry, its optimizer
    gets the configured layer decay, and one loss + backward + step on two synthetic 64x64
    images gives finite losses and gradients reaching the backbone."""
    cfg = _cfg(configs, name)
    e = expected(name)
    torch.manual_seed(0)
    model = build_model(shrink_model_cfg(cfg.model))
    model.init_weights()
    model.train()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    # Spot checks of the parameter groups (tiny depths [1, 1, 2, 1]: N = 5 + 2 = 7 ids).
    groups = _groups_by_name(model, optim_wrapper.optimizer)
    assert set(groups) == {n for n, p in model.named_parameters() if p.requires_grad}
    lr, wd = e['lr'], e['wd']
    stem = groups['backbone.patch_embed.conv1.weight']
    neck = next(v for k, v in groups.items() if k.startswith('neck.') and k.endswith('weight')
                and 'conv' in k)
    norm = groups['backbone.levels.0.blocks.0.norm1.0.weight']
    if e['rate'] is None:  # DINO-L: backbone x0.1, weight decay everywhere
        assert stem == pytest.approx((0.1 * lr, wd))
        assert norm == pytest.approx((0.1 * lr, wd))
        assert neck == pytest.approx((lr, wd))
    else:
        n_ids = sum(TINY_BACKBONE['depths']) + 2
        r = e['rate']
        assert stem == pytest.approx((lr * r**(n_ids - 1), wd))
        last_block = groups['backbone.levels.3.blocks.0.mlp.fc1.weight']
        assert last_block == pytest.approx((lr * r, wd))
        assert neck == pytest.approx((lr, wd))
        assert norm[1] == 0.0  # "norm" parameters: no weight decay
        assert groups['backbone.levels.0.blocks.0.dcn.offset.weight'][0] == pytest.approx(
            lr * r**(n_ids - 1 - 1))  # DCNv3 offsets: never offset_lr_scale'd (official)
        if e['family'] == 'dino':
            # 2-D and no 'norm' in the name: decayed, as the official `level_embeds`
            assert groups['level_embed'] == pytest.approx((lr * r**(n_ids - 1), wd))
            offsets = groups['encoder.layers.0.self_attn.sampling_offsets.weight']
            assert offsets == pytest.approx((lr * e['offset_lr_scale'], 0.0))
            cross = groups['decoder.layers.0.cross_attn.sampling_offsets.weight']
            assert cross == pytest.approx((lr * e['offset_lr_scale'], 0.0))

    with_mask = e['family'] != 'dino'
    data = model.data_preprocessor(synthetic_batch(64, with_mask=with_mask), True)
    losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss), log_vars
    assert all(torch.isfinite(torch.as_tensor(v).detach()).all() for v in log_vars.values())
    expected_terms = {'mask': ('loss_rpn_cls', 'loss_bbox', 'loss_mask'),
                      'cascade': ('s0.loss_bbox', 's2.loss_mask'),
                      'dino': ('loss_cls', 'enc_loss_iou', 'dn_loss_bbox')}[e['family']]
    assert set(expected_terms) <= set(log_vars), sorted(log_vars)

    before = model.backbone.patch_embed.conv1.weight.detach().clone()
    optim_wrapper.backward(loss)
    grad = model.backbone.patch_embed.conv1.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    optim_wrapper.step()
    assert not torch.equal(before, model.backbone.patch_embed.conv1.weight.detach())


def test_pretrained_init_cfg_loads_an_official_t_checkpoint(configs, tmp_path):
    """The backbone's ``Pretrained`` init_cfg loads an official ImageNet checkpoint (``model``
    entry, classifier keys ignored). T's has no layer-scale gammas: the det config's gammas
    (layer_scale=1.0) stay at 1.0 and are reported missing, as in the official run."""
    cfg = _cfg(configs, 'mask-rcnn_internimage-t_fpn_8xb2-1x_coco')
    model_cfg = shrink_model_cfg(cfg.model)
    imagenet_cfg = dict(copy.deepcopy(model_cfg.backbone), layer_scale=None)
    imagenet = build_model(dict(model_cfg, backbone=imagenet_cfg)).backbone
    official = {k: torch.randn(v.shape) if v.is_floating_point() else v
                for k, v in imagenet.state_dict().items()}
    assert not any('gamma' in k for k in official)
    path = tmp_path / 'internimage_t_1k_224.pth'
    torch.save({'model': {**official, 'head.weight': torch.zeros(10, 8)}}, path)

    model_cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path))
    model = build_model(model_cfg)
    model.init_weights()
    backbone = model.backbone
    state = backbone.state_dict()
    assert all(torch.equal(state[k], v) for k, v in official.items())
    gammas = [k for k in state if 'gamma' in k]
    assert gammas and all(torch.all(state[k] == 1.0) for k in gammas)
    report = backbone.pretrained_report
    assert sorted(report.missing) == sorted(gammas) and not report.unexpected
    assert report.ignored == ['head.weight']


def test_paper_config_without_coco_names_the_missing_path(configs, tmp_path):
    """A user who runs a paper config before downloading COCO gets the path, not a traceback
    from ``open`` (and not an empty dataset)."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    dataset = copy.deepcopy(_cfg(configs, 'mask-rcnn_internimage-t_fpn_8xb2-1x_coco').val_dataloader
                            .dataset)
    dataset.data_root = str(tmp_path / 'coco') + '/'
    with pytest.raises(FileNotFoundError, match=r"data_root .*coco/' does not exist"):
        DATASETS.build(dataset)
