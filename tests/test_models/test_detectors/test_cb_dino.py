"""CBDINO: one neck and one DINO head serving both CB-InternImage backbones; branch losses named
and weighted as officially; batches of several images give the losses of one image at a time;
only the lead's features at test time; clear config errors; the official CB checkpoint layout
converts key for key with the exact parameter count; the official layer decay as it acted."""
from __future__ import annotations

import copy

import pytest
import torch

from internimage_mm.apis import build_model, load_config
from internimage_mm.converters import CB_DINO, detect_converter

from ...conftest import REPO, load_json
from ...test_configs._det_helpers import synthetic_batch

CONFIGS = REPO / 'configs' / 'detection'
TINY = CONFIGS / 'dino-4scale_cb-internimage-tiny_1xb4-600iter_synthetic.py'
PAPER = CONFIGS / 'dino-4scale_cb-internimage-h_o365-pre_16xb1-20k_coco.py'
# Denoising queries without noise in effect (mmdet refuses 0): label flips never happen and the
# box noise is 1e-9, so two runs see the same queries whatever the random draws.
NO_NOISE = {'model.dn_cfg.label_noise_scale': 1e-9, 'model.dn_cfg.box_noise_scale': 1e-9}


def _model(options=None, **model_overrides):
    cfg = load_config(str(TINY), {**NO_NOISE, **(options or {})})
    cfg.model.update(model_overrides)
    torch.manual_seed(0)
    model = build_model(cfg)
    model.init_weights()
    with torch.no_grad():  # non-zero gammas: the composition is exercised
        for i in range(4):
            getattr(model.backbone.cb_modules[1], f'gamma{i}').normal_(0, 0.1)
    return model


def _batch(num_images: int, seed: int = 0) -> dict:
    """Synthetic 128x128 images (enough tokens for the 100 queries) with 2 boxes each,
    labelled within the tiny config's 3 classes."""
    data = synthetic_batch(128, num_images=num_images, with_mask=False, seed=seed)
    for i, sample in enumerate(data['data_samples']):
        sample.gt_instances.labels = torch.tensor([i % 3, (i + 1) % 3])
    return data


def _losses(model, data):
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    return model(**batch, mode='loss')


def test_both_branches_are_named_and_weighted():
    data = _batch(2)
    weighted = _losses(_model().train(), data)
    names = set(weighted)
    for name in ('loss_cls0_w0.5', 'loss_bbox0_w0.5', 'd0.loss_iou0_w0.5', 'enc_loss_cls0_w0.5',
                 'dn_loss_cls0_w0.5', 'loss_cls1', 'loss_iou1', 'd0.dn_loss_bbox1'):
        assert name in names, sorted(names)
    assert not any(n.endswith('0') or n.endswith('_w1') for n in names if 'loss' in n)
    plain = _losses(_model(branch_loss_weights=(1.0, 1.0)).train(), data)
    for name, value in plain.items():
        if name.endswith('0') and 'loss' in name:
            torch.testing.assert_close(weighted[f'{name}_w0.5'], 0.5 * value)
        elif name.endswith('1'):
            torch.testing.assert_close(weighted[name], value)
    loss, _ = _model().parse_losses(weighted)
    loss.backward()  # both backbones, the shared neck and head, and the gammas get gradients


def test_batch_of_two_gives_the_losses_of_one_image_at_a_time():
    """Same-size images with the same number of boxes (so that each loss term's normaliser and
    the number of denoising groups are those of one image): the batch's losses are the mean of
    the single-image losses."""
    data = _batch(2, seed=3)
    counts = [len(s.gt_instances) for s in data['data_samples']]
    assert counts[0] == counts[1], counts
    model = _model().train()
    torch.manual_seed(1)
    batch = _losses(model, data)
    singles = []
    for i in range(2):
        one = dict(inputs=[data['inputs'][i]], data_samples=[data['data_samples'][i]])
        singles.append(_losses(model, one))
    for name, value in batch.items():
        if 'loss' in name:
            torch.testing.assert_close(value, (singles[0][name] + singles[1][name]) / 2,
                                       rtol=1e-4, atol=1e-5, msg=name)


def test_test_time_uses_the_lead_features_only():
    model = _model().eval()
    data = model.data_preprocessor(_batch(1), False)
    with torch.no_grad():
        assist, lead = model.backbone(data['inputs'])
        feats = model.extract_feat(data['inputs'])
        for a, b in zip(feats, model.neck(lead)):
            torch.testing.assert_close(a, b)
        results = model(**data, mode='predict')
    assert len(results[0].pred_instances.bboxes) == 50  # test_cfg.max_per_img


def test_neck_that_does_not_fit_the_backbone_is_a_config_error():
    with pytest.raises(ValueError, match=r'model\.neck\.in_channels \[32, 64, 64\] do not fit'):
        _model({'model.neck.in_channels': [32, 64, 64]})
    with pytest.raises(ValueError, match='not a composite backbone'):
        _model(backbone=dict(type='InternImage', arch=dict(
            channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8)), out_indices=(1, 2, 3)))


def test_official_checkpoint_layout_converts_key_for_key_with_the_exact_count():
    manifest = load_json('spec/official_detseg/dino_4scale_cbinternimage_h_objects365_coco_ss.json')
    assert manifest['num_params'] == 2_178_558_124
    model = build_model(str(PAPER), pretrained=False, device='meta')
    assert sum(p.numel() for p in model.parameters()) == 2_178_558_124
    with torch.device('meta'):
        official = {k: torch.empty(shape) for k, (shape, _) in manifest['state_dict'].items()}
    assert detect_converter(official) is CB_DINO
    converted, report = CB_DINO.convert(official, reference=model.state_dict())
    assert report.complete and len(converted) == 2987
    assert sorted(converted) == sorted(model.state_dict())
    assert 'neck.0.convs.0.conv.weight' in report.renamed  # the list-built official neck


def test_official_cb_checkpoint_loads_into_the_tiny_model_as_it_is():
    """A synthesised official-layout CB checkpoint (neck.0.*, the DINO head's transformer names)
    loads strictly through the in-memory conversion."""
    from ..._official import to_official_detector
    source = _model()
    official = {('neck.0.' + k[5:] if k.startswith('neck.') else k): v
                for k, v in to_official_detector(source.state_dict()).items()}
    assert 'neck.0.convs.0.conv.weight' in official
    target = _model()
    target.load_state_dict(official, strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_layer_decay_as_the_official_run_applied_it_and_per_block_on_request():
    from mmengine.optim import build_optim_wrapper
    cfg = load_config(str(TINY))
    model = _model()
    groups = {g['param_name']: g for g in
              build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups}
    r = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    n = sum(model.backbone.depths) + 2
    assert {g['lr_scale'] for k, g in groups.items() if k.startswith('backbone.')} == {1.0}
    assert groups['level_embed']['lr_scale'] == pytest.approx(r**(n - 1))
    cfg.optim_wrapper.paramwise_cfg.decay_cb_backbones = True
    groups = {g['param_name']: g for g in
              build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups}
    for k in (0, 1):
        assert groups[f'backbone.cb_modules.{k}.levels.0.blocks.0.mlp.fc1.weight'][
            'lr_scale'] == pytest.approx(r**(n - 2))
        assert groups[f'backbone.cb_modules.{k}.levels.3.blocks.0.mlp.fc1.weight'][
            'lr_scale'] == pytest.approx(r)
    assert groups['backbone.cb_modules.0.patch_embed.conv1.weight']['lr_scale'] == \
        pytest.approx(r**(n - 1))
    # the composite input of lead level 2: the id of that level's first block (1 + 1 + 1)
    assert groups['backbone.cb_linears.2.1.weight']['lr_scale'] == pytest.approx(r**(n - 4))
    assert groups['backbone.cb_modules.1.gamma2']['lr_scale'] == pytest.approx(r**(n - 4))


def test_paper_config_is_the_dino_h_recipe_with_the_composite_backbone():
    """The CB row differs from the DINO-H row (whose official settings
    tests/test_configs/test_detection_configs.py checks) only where the official CB config does:
    the detector and backbone types, both backbones' output stages, the branch loss weights,
    the Objects365-pretrained CB start, the layer-decay switch and our TTA."""
    from mmengine.config import Config

    def flat(d, prefix=''):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(flat(v, f'{prefix}{k}.'))
            else:
                out[f'{prefix}{k}'] = v
        return out

    dino_h = flat(Config.fromfile(str(CONFIGS / PAPER.name.replace('_cb-', '_'))).to_dict())
    cb = flat(Config.fromfile(str(PAPER)).to_dict())
    changed = {k for k in dino_h.keys() | cb.keys() if dino_h.get(k, '<absent>') != cb.get(
        k, '<absent>')}
    assert changed == {
        'model.type', 'model.branch_loss_weights', 'model.backbone.type',
        'model.backbone.out_indices', 'model.backbone.init_cfg', 'model.backbone.layer_scale',
        'optim_wrapper.paramwise_cfg.decay_cb_backbones', 'load_from', 'tta_model.type',
        'tta_model.tta_cfg.nms.type', 'tta_model.tta_cfg.nms.iou_threshold',
        'tta_model.tta_cfg.max_per_img', 'tta_pipeline'}
    assert cb['model.type'] == 'CBDINO' and cb['model.branch_loss_weights'] == (0.5, 1.0)
    assert cb['model.backbone.out_indices'] == ((0, 1, 2, 3), (1, 2, 3))
    assert cb['load_from'].endswith('/dino_4scale_cbinternimage_h_objects365_80classes.pth')
    assert cb['optim_wrapper.paramwise_cfg.decay_cb_backbones'] is False
    # what the H preset gives both backbones is what DINO-H sets explicitly
    assert dino_h['model.backbone.layer_scale'] is None and dino_h['model.backbone.init_cfg'] \
        is None
    backbone = build_model(str(PAPER), pretrained=False, device='meta').backbone
    for internimage in backbone.cb_modules:
        assert internimage.arch_settings['layer_scale'] is None
        blocks = [b for level in internimage.levels for b in level.blocks]
        assert len(blocks) == 50 and all(b.with_cp for b in blocks)
        assert blocks[-1].drop_path.drop_prob == pytest.approx(0.5)
