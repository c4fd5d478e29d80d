"""Official classification checkpoints -> mmpretrain: the converter, its CLI, and the
official-kwargs -> config mapping."""
import runpy
import sys

import pytest
import torch
from mmpretrain.registry import MODELS

import internimage_mm.tasks.classification  # noqa: F401  (registers the heads)
from internimage_mm.converters import (
    IncompleteConversionError,
    classifier_cfg_from_official,
    convert_official_classifier,
)

from ..conftest import REPO
from ..test_models._helpers import official_classifier_state_dict


@pytest.fixture
def official_state_dict():
    return official_classifier_state_dict()


def test_convert_official_classifier_layout(official_state_dict):
    converted = convert_official_classifier({'model': official_state_dict})
    assert converted['head.fc.weight'] is official_state_dict['head.weight']
    assert 'head.conv_head.0.weight' in converted
    assert 'backbone.levels.3.norm.0.weight' in converted
    assert len(converted) == len(official_state_dict)
    with pytest.raises(IncompleteConversionError, match='backbone.patch_embed'):
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
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name='__main__')
    assert exit_.value.code == 0
    cfg = classifier_cfg_from_official(dict(num_classes=10, channels=16, depths=[1, 1, 2, 1],
                                            groups=[1, 2, 4, 8]))
    model = MODELS.build(cfg)
    state_dict = torch.load(dst, weights_only=True)['state_dict']
    model.load_state_dict(state_dict, strict=True)
