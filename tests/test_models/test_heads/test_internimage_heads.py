"""Classification heads: official sizes, mmpretrain training/prediction interface."""
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from internimage_mm.converters import classifier_cfg_from_official
from internimage_mm.tasks.classification import InternImageAttnPoolHead, InternImageClsHead

from ...conftest import load_json
from .._helpers import VARIANTS

# Official head part -> our head's submodule.
PARTS = {'conv_head': 'conv_head', 'head': 'fc', 'dcnv3_head_x4': 'dcnv3_head_x4',
         'dcnv3_head_x3': 'dcnv3_head_x3', 'clip_projector': 'clip_projector',
         'fc_norm': 'fc_norm'}


@pytest.mark.parametrize('size', VARIANTS)
def test_head_parts_have_the_official_parameter_counts(size):
    spec = load_json('spec/variants.json')[size]['classification']
    with torch.device('meta'):
        head = MODELS.build(classifier_cfg_from_official(spec['kwargs'])['head'])
    assert isinstance(head, InternImageAttnPoolHead if size == 'h' else InternImageClsHead)
    for part, count in spec['head_params'].items():
        module = getattr(head, PARTS[part])
        assert sum(p.numel() for p in module.parameters()) == count, part


def _tiny_classifier(use_clip: bool):
    kwargs = dict(num_classes=5, channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8],
                  drop_path_rate=0.)
    if use_clip:
        kwargs.update(use_clip_projector=True, res_post_norm=True, dw_kernel_size=5,
                      center_feature_scale=True, level2_post_norm=True,
                      level2_post_norm_block_ids=[1])
    return MODELS.build(classifier_cfg_from_official(kwargs))


@pytest.mark.parametrize('use_clip', [False, True], ids=['conv_head', 'attn_pool'])
def test_image_classifier_loss_and_predict(use_clip):
    torch.manual_seed(0)
    model = _tiny_classifier(use_clip)
    model.init_weights()
    inputs = torch.randn(2, 3, 64, 64)
    samples = [DataSample().set_gt_label(i) for i in (1, 3)]
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss'} and losses['loss'].requires_grad
    losses['loss'].backward()
    assert model.backbone.patch_embed.conv1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        preds = model(inputs, [DataSample() for _ in range(2)], mode='predict')
    assert [p.pred_score.shape for p in preds] == [(5, ), (5, )]
    assert all(0 <= int(p.pred_label) < 5 for p in preds)


def test_attention_pooling_head_needs_stages_3_and_4():
    head = InternImageAttnPoolHead(num_classes=3, in_channels=32, embed_dims=64, num_heads=4,
                                   out_dims=16)
    assert head.in_channels == (16, 32)
    with pytest.raises(ValueError, match=r'out_indices=\(2, 3\)'):
        head((torch.randn(1, 32, 2, 2), ))
    out = head((torch.randn(1, 16, 4, 4), torch.randn(1, 32, 2, 2)))
    assert out.shape == (1, 3)


def test_conv_head_widens_by_cls_scale():
    head = InternImageClsHead(num_classes=4, in_channels=32, cls_scale=1.5)
    assert head.conv_head[0].out_channels == 48 and head.fc.in_features == 48
    assert head((torch.randn(2, 32, 3, 3), )).shape == (2, 4)
    with pytest.raises(ValueError, match='num_classes'):
        InternImageClsHead(num_classes=0, in_channels=32)
