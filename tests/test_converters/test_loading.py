"""Official checkpoints loaded as they are: a model with an InternImage backbone recognises an
official layout when a state dict reaches it, converts it in memory, and refuses (naming the
converter and the first keys or shapes) a checkpoint of another model or size."""
from __future__ import annotations

import copy

import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint

from internimage_mm.converters import IncompleteConversionError
from internimage_mm.models.backbones.checkpoint import fetch_checkpoint, read_checkpoint

from .._official import to_official_detector, to_official_segmentor
from ..test_configs._det_helpers import build_model as build_detector
from ..test_configs._det_helpers import load_config as det_config
from ..test_configs._det_helpers import shrink_model_cfg as shrink_detector
from ..test_configs._seg_helpers import build_model as build_segmentor
from ..test_configs._seg_helpers import load_config as seg_config
from ..test_models._helpers import official_classifier_state_dict
from ..test_models.conftest import single_thread  # noqa: F401  (autouse fixture)

DINO = 'dino-4scale_internimage-tiny_1xb4-600iter_synthetic'
CASCADE = 'cascade-mask-rcnn_internimage-tiny_fpn_1xb4-600iter_synthetic'
MASK_RCNN = 'mask-rcnn_internimage-tiny_fpn_1xb4-600iter_synthetic'
M2F = 'mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128'


def _randomised(model):
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=gen))
    return model


def _detector(name):
    torch.manual_seed(0)
    return build_detector(det_config(name).model)


@pytest.fixture
def log_lines(log_records):
    return lambda: [r.getMessage() for r in log_records]


def _assert_same_state(model, reference):
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_official_dino_loads_strictly_through_load_state_dict(log_lines):
    source = _randomised(_detector(DINO))
    official = to_official_detector(source.state_dict())
    assert 'bbox_head.transformer.level_embeds' in official
    model = _detector(DINO)
    model.load_state_dict(official, strict=True)
    _assert_same_state(model, source)
    line = [m for m in log_lines() if 'official InternImage checkpoint layout' in m]
    assert len(line) == 1 and 'detection/dino' in line[0], log_lines()


def test_official_cascade_with_ema_buffers_loads_via_mmengine(tmp_path, log_lines):
    source = _randomised(_detector(CASCADE))
    official = {**source.state_dict(),
                'ema_backbone_patch_embed_conv1_weight': torch.zeros(1)}
    path = tmp_path / 'cascade_official.pth'
    torch.save({'state_dict': official, 'meta': {'CLASSES': ('a', 'b', 'c')}}, path)
    model = _detector(CASCADE)
    load_checkpoint(model, str(path), strict=True)  # what init_detector and the Runner use
    _assert_same_state(model, source)
    assert any('1 EMA buffers dropped' in m for m in log_lines())


def test_official_mask2former_loads_strictly():
    torch.manual_seed(0)
    source = _randomised(build_segmentor(seg_config(M2F).model))
    official = to_official_segmentor(source.state_dict())
    assert any('.attentions.1.' in k for k in official)
    torch.manual_seed(0)
    model = build_segmentor(seg_config(M2F).model)
    model.load_state_dict(official, strict=True)
    _assert_same_state(model, source)


def test_official_classifier_loads_into_the_classifier():
    from mmpretrain.registry import MODELS

    import internimage_mm.tasks.classification  # noqa: F401
    from internimage_mm.converters import classifier_cfg_from_official
    cfg = classifier_cfg_from_official(dict(num_classes=10, channels=16, depths=[1, 1, 2, 1],
                                            groups=[1, 2, 4, 8]))
    model = MODELS.build(cfg)
    official = official_classifier_state_dict()
    model.load_state_dict(official, strict=True)
    assert torch.equal(model.head.fc.weight, official['head.weight'])
    assert torch.equal(model.backbone.levels[0].blocks[0].dcn.offset.weight,
                       official['levels.0.blocks.0.dcn.offset.weight'])


def test_our_own_checkpoint_is_left_alone(log_lines):
    source = _randomised(_detector(DINO))
    model = _detector(DINO)
    model.load_state_dict(source.state_dict(), strict=True)
    _assert_same_state(model, source)
    assert not any('official' in m for m in log_lines())


def test_checkpoint_of_another_model_is_refused_naming_the_converter():
    mask_rcnn = _randomised(_detector(MASK_RCNN)).state_dict()
    with pytest.raises(IncompleteConversionError, match='converter detection/mask-rcnn tried') \
            as e:
        _detector(DINO).load_state_dict(mask_rcnn, strict=False)
    # the first keys that do not fit are named, both ways
    assert 'missing (the model needs it, the checkpoint lacks it): neck.convs.0' in str(e.value)
    assert 'unexpected (the model has no such key): neck.lateral_convs.0' in str(e.value)
    # (mmdet's two-stage detectors rename a checkpoint's bbox_head.* to rpn_head.* before any
    # hook sees it, so an official DINO reaches a Mask R-CNN unrecognised: refused as well)
    dino = to_official_detector(_randomised(_detector(DINO)).state_dict())
    with pytest.raises(IncompleteConversionError, match='does not fit this model') as e:
        _detector(MASK_RCNN).load_state_dict(dino, strict=False)
    assert 'are missing, e.g. neck.lateral_convs.0' in str(e.value)
    assert 'keys the model does not, e.g. neck.convs.0' in str(e.value)


def test_backbone_of_another_size_is_refused_naming_the_shapes():
    cfg = det_config(DINO).model
    big = shrink_detector(cfg)
    big.backbone.update(channels=32, groups=[2, 4, 8, 16])
    big.neck.in_channels = [64, 128, 256]
    official = to_official_detector(build_detector(copy.deepcopy(big)).state_dict())
    with pytest.raises(IncompleteConversionError, match=r'backbone\.patch_embed\.conv1\.weight'):
        _detector(DINO).load_state_dict(official, strict=False)
    ours = build_detector(copy.deepcopy(big)).state_dict()  # our layout, another size: refused
    with pytest.raises(IncompleteConversionError, match='another size'):
        _detector(DINO).load_state_dict(ours, strict=False)


def test_classifier_checkpoint_as_a_whole_detector_points_to_init_cfg():
    with pytest.raises(IncompleteConversionError, match='backbone.init_cfg'):
        _detector(MASK_RCNN).load_state_dict(official_classifier_state_dict(), strict=False)


def test_urls_and_missing_files_give_clear_errors(http_server, tmp_path):
    served, url = http_server
    with pytest.raises(FileNotFoundError, match='nowhere.pth does not exist'):
        fetch_checkpoint(str(tmp_path / 'nowhere.pth'))
    with pytest.raises(RuntimeError, match=f'cannot fetch checkpoint {url}/absent.pth'):
        read_checkpoint(f'{url}/absent.pth')
    torch.save({'state_dict': {'a': torch.ones(2)}}, served / 'ok.pth')
    local = fetch_checkpoint(f'{url}/ok.pth')
    assert torch.equal(torch.load(local, weights_only=True)['state_dict']['a'], torch.ones(2))
    assert fetch_checkpoint(f'{url}/ok.pth') == local  # downloaded once


def test_backbone_init_cfg_takes_an_official_url(http_server):
    from internimage_mm.models import InternImage

    from ..test_models._helpers import TINY_T
    served, url = http_server
    official = official_classifier_state_dict()
    torch.save({'model': official}, served / 'internimage_tiny_1k.pth')
    backbone = InternImage(**TINY_T, init_cfg=dict(type='Pretrained',
                                                   checkpoint=f'{url}/internimage_tiny_1k.pth'))
    backbone.init_weights()
    assert torch.equal(backbone.patch_embed.conv1.weight, official['patch_embed.conv1.weight'])
    # a checkpoint of another model: an error naming its first keys, nothing loaded
    torch.save({'state_dict': {'decoder.weight': torch.zeros(2)}}, served / 'other.pth')
    other = InternImage(**TINY_T, init_cfg=dict(type='Pretrained', checkpoint=f'{url}/other.pth'))
    with pytest.raises(RuntimeError, match='holds no key of this backbone.*decoder.weight'):
        other.init_weights()
