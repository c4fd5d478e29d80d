"""Pretrained loading into the backbone (init_cfg): official classification checkpoints and
detector/segmentor checkpoints as they are, from a path or a URL, with clear errors."""
import logging

import pytest
import torch
from mmpretrain.registry import MODELS

from internimage_mm.converters import classifier_cfg_from_official
from internimage_mm.models import InternImage
from internimage_mm.models.backbones.checkpoint import load_backbone_checkpoint
from tests.test_models._helpers import CLASSIFIER_KEYS, TINY_T, official_classifier_state_dict


@pytest.fixture
def official_state_dict():
    return official_classifier_state_dict()


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
