"""tools/model_converters/internimage_det_official_to_mmdet.py and
internimage_mm.converters.detection: official (mmdet 2.x, InternImage repo) detection
checkpoints -> our mmdet 3.x models, key for key.

The official layouts are synthesised from our own (shrunk) models with the official names
written out by hand below (not with the library's table), converted back, and compared."""
from __future__ import annotations

import copy
import re

import pytest
import torch

from internimage_mm.converters import DETECTORS, IncompleteConversionError, detect_converter

from .._official import to_official
from ..conftest import load_tool
from ..test_configs._det_helpers import DET_CONFIGS, build_model, load_config, shrink_model_cfg

CASES = {
    'mask-rcnn': 'mask-rcnn_internimage-s_fpn_8xb2-1x_coco',
    'cascade': 'cascade-mask-rcnn_internimage-l_fpn_32xb2-ms-3x_coco',
    'dino': 'dino-4scale_internimage-t_8xb2-12e_coco',
    'dino-h': 'dino-4scale_internimage-h_o365-pre_16xb1-20k_coco',
}
_T = 'bbox_head.transformer.'


def convert_official_detector(checkpoint, arch=None, reference=None, allow_missing=False):
    converter = DETECTORS[arch] if arch else detect_converter(
        {k.removeprefix('module.'): None for k in checkpoint.get('state_dict', checkpoint)})
    return converter.convert(checkpoint, reference, allow_missing)


def rename_key(key, arch):
    return DETECTORS[arch].rename(key)


@pytest.fixture(scope='module')
def models():
    """Shrunk models of the four cases, parameters moved off their initial values."""
    out = {}
    gen = torch.Generator().manual_seed(0)
    for case, name in CASES.items():
        model = build_model(shrink_model_cfg(load_config(name).model))
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.copy_(torch.randn(t.shape, generator=gen))
        out[case] = model
    return out


def official_state_dict(model) -> dict:
    return {to_official(k): v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize('case', list(CASES))
def test_round_trip_key_for_key(case, models):
    model = models[case]
    ours = model.state_dict()
    official = official_state_dict(model)
    arch = case.split('-h')[0]
    if arch == 'dino':  # the synthesised layout really is the official one
        assert not any(k.startswith(('encoder.', 'decoder.', 'level_embed'))
                       for k in official)
        assert _T + 'decoder.layers.0.attentions.1.sampling_offsets.weight' in official
    assert detect_converter(official) is DETECTORS[arch]

    # As saved by mmdet 2.x: under `state_dict`, with meta; a DDP prefix is tolerated too.
    checkpoint = {'state_dict': {f'module.{k}': v for k, v in official.items()},
                  'meta': {'CLASSES': ('a', 'b')}}
    converted, report = convert_official_detector(checkpoint, arch=arch, reference=ours)
    assert report.complete and not report.dropped
    assert list(converted) == list(ours)  # same keys, same order
    for key, value in ours.items():
        assert torch.equal(converted[key], value), key
    fresh = build_model(shrink_model_cfg(load_config(CASES[case]).model))
    fresh.load_state_dict(converted, strict=True)


def test_ema_buffers_are_dropped_and_listed(models):
    """mmdet 2.x ExpMomentumEMAHook buffers (Cascade 3x checkpoints) are not weights."""
    official = official_state_dict(models['cascade'])
    ema = {'ema_backbone_patch_embed_conv1_weight': torch.zeros(1),
           'ema_roi_head_bbox_head_0_fc_cls_weight': torch.zeros(1)}
    converted, report = convert_official_detector({**official, **ema},
                                                  reference=models['cascade'].state_dict())
    assert sorted(report.dropped) == sorted(ema)
    assert report.complete and not any(k.startswith('ema_') for k in converted)


@pytest.mark.parametrize('case', ['dino', 'cascade'])
def test_unknown_key_is_reported_by_name(case, models):
    official = official_state_dict(models[case])
    unknown = (_T + 'pos_trans.weight' if case == 'dino'
               else 'roi_head.bbox_head.0.shared_convs.0.conv.bias_extra')
    official[unknown] = torch.zeros(3)
    with pytest.raises(IncompleteConversionError, match=re.escape(unknown)):
        convert_official_detector(official, arch=case)
    converted, report = convert_official_detector(official, arch=case, allow_missing=True)
    assert report.unmapped == [unknown] and not report.complete
    assert len(converted) == len(official) - 1


def test_missing_key_and_wrong_arch_are_reported(models):
    ours = models['dino'].state_dict()
    official = official_state_dict(models['dino'])
    del official[_T + 'decoder.norm.weight']
    with pytest.raises(IncompleteConversionError, match=r'missing.*decoder\.norm\.weight'):
        convert_official_detector(official, reference=ours)
    # A Mask R-CNN checkpoint read with the DINO table: nothing but the backbone maps.
    mask = official_state_dict(models['mask-rcnn'])
    with pytest.raises(IncompleteConversionError, match=r'rpn_head\.rpn_conv\.weight'):
        convert_official_detector(mask, arch='dino')


def test_official_dino_needs_legacy_dino(models):
    """mmdet 3.x's own DINO has a 1024-input ref_point_head: the official 512-input weights
    do not fit it (hence LegacyDINO in the configs); everything else does."""
    cfg = shrink_model_cfg(load_config(CASES['dino']).model)
    cfg.type = 'DINO'
    with torch.device('meta'):
        mmdet_dino = build_model(cfg)
    official = official_state_dict(models['dino'])
    _, report = convert_official_detector(official, reference=mmdet_dino.state_dict(),
                                          allow_missing=True)
    assert [m.split(' ')[0] for m in report.shape_mismatch] == [
        'decoder.ref_point_head.layers.0.weight']
    assert not (report.unmapped or report.missing or report.unexpected)


def test_rename_table_examples():
    """Spot checks of the table on full-size official names."""
    assert rename_key(_T + 'encoder.layers.5.attentions.0.sampling_offsets.bias', 'dino') == \
        'encoder.layers.5.self_attn.sampling_offsets.bias'
    assert rename_key(_T + 'decoder.layers.3.attentions.0.attn.in_proj_weight', 'dino') == \
        'decoder.layers.3.self_attn.attn.in_proj_weight'
    assert rename_key(_T + 'decoder.layers.3.ffns.0.layers.0.0.weight', 'dino') == \
        'decoder.layers.3.ffn.layers.0.0.weight'
    assert rename_key('bbox_head.reg_branches.6.4.bias', 'dino') == \
        'bbox_head.reg_branches.6.4.bias'
    assert rename_key('backbone.levels.2.post_norms.4.weight', 'dino') == \
        'backbone.levels.2.post_norms.4.weight'
    assert rename_key('roi_head.bbox_head.2.shared_convs.3.bn.running_var', 'cascade') == \
        'roi_head.bbox_head.2.shared_convs.3.bn.running_var'
    assert rename_key('roi_head.bbox_head.shared_fcs.1.weight', 'mask-rcnn') == \
        'roi_head.bbox_head.shared_fcs.1.weight'
    # CB-InternImage (composite backbone) is not supported: reported, not passed through.
    assert rename_key('backbone.cb_modules.0.patch_embed.conv1.weight', 'dino') is None
    assert rename_key('roi_head.bbox_head.0.fc_cls.weight', 'mask-rcnn') is None


# ----------------------------------------------------------------------------- the tool
def _tool():
    return load_tool('model_converters/internimage_det_official_to_mmdet.py')


SHRINK_OPTIONS = ['model.backbone.channels=16', 'model.backbone.depths=[1,1,2,1]',
                  'model.backbone.groups=[1,2,4,8]', 'model.neck.in_channels=[32,64,128]',
                  'model.num_queries=30']


def test_tool_converts_and_checks_against_config(models, tmp_path, capsys):
    tool = _tool()
    official = official_state_dict(models['dino'])
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save({'state_dict': official, 'meta': {'CLASSES': ('cat', 'dog')}}, src)
    config = str(DET_CONFIGS / f'{CASES["dino"]}.py')

    assert tool.main([str(src), str(dst), '--config', config,
                      '--cfg-options', *SHRINK_OPTIONS]) == 0
    saved = torch.load(dst, map_location='cpu', weights_only=False)
    ours = models['dino'].state_dict()
    assert list(saved['state_dict']) == list(ours)
    assert all(torch.equal(saved['state_dict'][k], v) for k, v in ours.items())
    assert saved['meta']['dataset_meta'] == {'classes': ('cat', 'dog')}
    assert saved['meta']['converter'] == 'detection/dino'

    # Unknown key: exit 1, named, nothing written; --allow-missing writes without it.
    bad = copy.copy(official)
    bad[_T + 'mystery.weight'] = torch.zeros(2)
    torch.save({'state_dict': bad}, src)
    dst2 = tmp_path / 'converted2.pth'
    capsys.readouterr()
    assert tool.main([str(src), str(dst2), '--arch', 'dino']) == 1
    err = capsys.readouterr().err
    assert 'bbox_head.transformer.mystery.weight' in err and not dst2.exists()
    assert tool.main([str(src), str(dst2), '--allow-missing']) == 0
    assert 'bbox_head.transformer.mystery.weight' in capsys.readouterr().err
    assert len(torch.load(dst2, map_location='cpu', weights_only=False)['state_dict']) == \
        len(ours)

    # Against the full-size config the shrunk checkpoint has the wrong shapes: refused.
    torch.save({'state_dict': official}, src)
    assert tool.main([str(src), str(dst2), '--config', config]) == 1
    assert 'shape mismatch: backbone.patch_embed.conv1.weight' in capsys.readouterr().err
