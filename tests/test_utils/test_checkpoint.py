"""Pretrained loading into the backbone, and official -> mmpretrain conversion."""
import logging
import runpy
import sys
from pathlib import Path

import pytest
import torch
from mmengine.logging import MMLogger
from mmpretrain.registry import MODELS

from internimage_mm.models import InternImage
from internimage_mm.utils import (classifier_cfg_from_official, convert_official_classifier,
                                  load_backbone_checkpoint)
from tests.test_models._helpers import TINY_T, perturb_

REPO = Path(__file__).resolve().parents[2]
CLASSIFIER_KEYS = ('conv_head.0.weight', 'conv_head.1.0.weight', 'conv_head.1.0.bias',
                   'conv_head.1.0.running_mean', 'conv_head.1.0.running_var',
                   'conv_head.1.0.num_batches_tracked', 'head.weight', 'head.bias')


@pytest.fixture
def official_state_dict():
    """A tiny official-layout classification state dict (backbone + conv head keys)."""
    torch.manual_seed(0)
    backbone = InternImage(**TINY_T)
    perturb_(backbone)
    sd = dict(backbone.state_dict())
    sd.update({'conv_head.0.weight': torch.randn(192, 128, 1, 1),
               'conv_head.1.0.weight': torch.rand(192), 'conv_head.1.0.bias': torch.randn(192),
               'conv_head.1.0.running_mean': torch.randn(192),
               'conv_head.1.0.running_var': torch.rand(192),
               'conv_head.1.0.num_batches_tracked': torch.tensor(5),
               'head.weight': torch.randn(10, 192), 'head.bias': torch.randn(10)})
    return sd


@pytest.fixture
def log_records():
    """Records of the mmengine 'current' logger during the test."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _assert_backbone_equals(model, sd):
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, sd[key], msg=key)


def test_pretrained_init_cfg_loads_with_module_prefix(tmp_path, official_state_dict,
                                                      log_records):
    path = tmp_path / 'official.pth'
    torch.save({'model': {'module.' + k: v for k, v in official_state_dict.items()}}, path)
    model = InternImage(**TINY_T, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    _assert_backbone_equals(model, official_state_dict)
    report = model.pretrained_report
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.ignored) == sorted(CLASSIFIER_KEYS)
    assert not any(r.levelno >= logging.WARNING for r in log_records)
    assert any('conv_head.0.weight' in r.getMessage() for r in log_records)  # ignored, listed


def test_mmpretrain_checkpoint_with_backbone_prefix(tmp_path, official_state_dict):
    sd = {'backbone.' + k: v for k, v in official_state_dict.items() if 'head' not in k}
    sd['neck.fc.weight'] = torch.zeros(1)
    torch.save({'state_dict': sd, 'meta': {}}, tmp_path / 'ours.pth')
    model = InternImage(**TINY_T)
    report = load_backbone_checkpoint(model, tmp_path / 'ours.pth')
    _assert_backbone_equals(model, official_state_dict)
    assert report.ignored == ['neck.fc.weight'] and report.missing == []


def test_missing_gammas_stay_at_one_and_are_reported(official_state_dict, log_records):
    """T's detection flavour (layer_scale=1.0) loads the T ImageNet checkpoint (no gammas)."""
    model = InternImage(**TINY_T, layer_scale=1.0)
    report = load_backbone_checkpoint(model, official_state_dict)
    gammas = [k for k in model.state_dict() if k.endswith(('gamma1', 'gamma2'))]
    assert gammas and sorted(report.missing) == sorted(gammas)
    for name, param in model.named_parameters():
        if name in gammas:
            assert torch.equal(param, torch.ones_like(param)) and param.requires_grad
    warnings = [r.getMessage() for r in log_records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and all(g in warnings[0] for g in gammas)


def test_unexpected_backbone_keys_are_reported(official_state_dict):
    model = InternImage(**TINY_T, post_norm=True)  # no level norms
    report = load_backbone_checkpoint(model, official_state_dict)
    assert sorted(report.unexpected) == sorted(
        f'levels.{i}.norm.0.{p}' for i in range(4) for p in ('weight', 'bias'))


def test_shape_mismatch_raises_naming_the_key(tmp_path, official_state_dict):
    official_state_dict['levels.1.blocks.0.mlp.fc1.weight'] = torch.zeros(7, 32)
    torch.save(official_state_dict, tmp_path / 'bad.pth')
    model = InternImage(**TINY_T, init_cfg=dict(type='Pretrained',
                                               checkpoint=str(tmp_path / 'bad.pth')))
    with pytest.raises(RuntimeError) as err:
        model.init_weights()
    msg = str(err.value)
    assert 'levels.1.blocks.0.mlp.fc1.weight' in msg and '(7, 32)' in msg and '(128, 32)' in msg


def test_convert_official_classifier_layout(official_state_dict):
    converted = convert_official_classifier({'model': official_state_dict})
    assert converted['head.fc.weight'] is official_state_dict['head.weight']
    assert 'head.conv_head.0.weight' in converted
    assert 'backbone.levels.3.norm.0.weight' in converted
    assert len(converted) == len(official_state_dict)
    with pytest.raises(ValueError, match='backbone.patch_embed'):
        convert_official_classifier(converted)  # already converted: keys unknown


def test_classifier_cfg_rejects_unknown_official_options():
    with pytest.raises(ValueError, match='use_dcn_v4_op'):
        classifier_cfg_from_official(dict(channels=16, depths=[1] * 4, groups=[1] * 4,
                                          use_dcn_v4_op=True))


def test_converter_cli_output_loads_strictly(tmp_path, official_state_dict, monkeypatch):
    src, dst = tmp_path / 'official.pth', tmp_path / 'out' / 'converted.pth'
    torch.save({'model': official_state_dict, 'epoch': 299}, src)
    script = REPO / 'tools' / 'model_converters' / 'internimage_cls_official_to_mmpretrain.py'
    monkeypatch.setattr(sys, 'argv', [str(script), str(src), str(dst)])
    runpy.run_path(str(script), run_name='__main__')
    cfg = classifier_cfg_from_official(dict(num_classes=10, channels=16, depths=[1, 1, 2, 1],
                                            groups=[1, 2, 4, 8]))
    model = MODELS.build(cfg)
    state_dict = torch.load(dst, weights_only=True)['state_dict']
    model.load_state_dict(state_dict, strict=True)


def test_classifier_init_weights_loads_the_backbone_checkpoint(tmp_path, official_state_dict):
    """The Runner path: ImageClassifier.init_weights -> backbone Pretrained init_cfg."""
    torch.save({'model': official_state_dict}, tmp_path / 'official.pth')
    cfg = classifier_cfg_from_official(dict(num_classes=10, channels=16, depths=[1, 1, 2, 1],
                                            groups=[1, 2, 4, 8]))
    cfg['backbone']['init_cfg'] = dict(type='Pretrained', checkpoint=str(tmp_path / 'official.pth'))
    model = MODELS.build(cfg)
    model.init_weights()
    _assert_backbone_equals(model.backbone, official_state_dict)
    assert torch.count_nonzero(model.head.fc.bias) == 0  # the head got its own init
