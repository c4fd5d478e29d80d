"""InternImage backbone: official key layout and sizes, golden parity, options and errors."""
import pytest
import torch
from mmengine.registry import MODELS
from mmpretrain.registry import MODELS as CLS_MODELS

from internimage_mm.converters import classifier_cfg_from_official, convert_official_classifier
from internimage_mm.models import InternImage

from ...conftest import data_file, load_json
from .._helpers import TINY_H, TINY_T, VARIANTS, perturb_

BACKBONE_PREFIXES = ('patch_embed.', 'levels.')


def _shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope='module')
def variants():
    return load_json('spec/variants.json')


@pytest.mark.parametrize('size', VARIANTS)
def test_det_flavour_matches_official_manifest(variants, size):
    """Detection/segmentation kwargs: same keys (in the same order) and shapes as official."""
    spec = variants[size]['detection_segmentation_backbone']
    with torch.device('meta'):  # shapes and counts only: no memory, no time
        model = InternImage(arch=size, **spec['kwargs'])
    manifest = load_json(f'spec/internimage_{size}_det_backbone_state_dict.json')
    shapes = _shapes(model)
    assert list(shapes) == list(manifest)
    assert shapes == manifest
    assert len(shapes) == spec['num_state_dict_keys']
    assert sum(p.numel() for p in model.parameters()) == spec['num_params']


@pytest.mark.parametrize('size', VARIANTS)
def test_arch_defaults_match_the_released_classification_backbones(variants, size):
    """``InternImage(arch=size)`` alone has the key set of the released ImageNet checkpoint."""
    with torch.device('meta'):
        model = InternImage(arch=size)
    manifest = load_json(f'spec/internimage_{size}_state_dict.json')
    backbone = {k: v for k, v in manifest.items() if k.startswith(BACKBONE_PREFIXES)}
    assert _shapes(model) == backbone
    assert (sum(p.numel() for p in model.parameters()) ==
            variants[size]['classification']['backbone_params'])


@pytest.mark.parametrize('size', VARIANTS)
def test_classifier_matches_official_manifest_and_counts(variants, size):
    spec = variants[size]['classification']
    with torch.device('meta'):
        model = CLS_MODELS.build(classifier_cfg_from_official(spec['kwargs']))
    manifest = load_json(f'spec/internimage_{size}_state_dict.json')
    expected = convert_official_classifier(
        {k: torch.empty(s, device='meta') for k, s in manifest.items()})
    shapes = _shapes(model)
    assert list(shapes) == list(expected)
    assert shapes == {k: list(v.shape) for k, v in expected.items()}
    assert len(shapes) == spec['num_state_dict_keys']
    assert sum(p.numel() for p in model.parameters()) == spec['num_params']
    assert sum(p.numel() for p in model.backbone.parameters()) == spec['backbone_params']
    assert (sum(p.numel() for p in model.head.parameters()) ==
            sum(spec['head_params'].values()))


@pytest.mark.parametrize('core_op', ['DCNv3', 'DCNv3_pytorch'])
@pytest.mark.parametrize('name', ['t', 'h'])
def test_golden_parity_with_official(name, core_op):
    """Official classifier outputs (random weights, every parameter perturbed) reproduced."""
    golden = torch.load(data_file(f'golden/internimage_tiny_{name}_seed0.pth'),
                        weights_only=True)
    cfg = classifier_cfg_from_official(golden['meta']['model_kwargs'], core_op=core_op,
                                       out_indices=(0, 1, 2, 3))
    model = CLS_MODELS.build(cfg)
    model.load_state_dict(convert_official_classifier(golden['state_dict']), strict=True)
    model.eval()
    with torch.no_grad():
        stages = model.backbone(golden['input'])
        logits = model.head(stages)
    for i, (ours, ref) in enumerate(zip(stages, golden['stages_nhwc'])):
        ours = ours.permute(0, 2, 3, 1)
        assert ours.shape == ref.shape
        err = (ours - ref).abs().max() / ref.abs().max()
        assert err < 1e-4, f'stage {i}: relative error {err:.2e}'
    err = (logits - golden['logits']).abs().max() / golden['logits'].abs().max()
    assert err < 1e-4, f'logits: relative error {err:.2e}'


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_builds_in_every_downstream_scope(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    model = registry.build(dict(type='InternImage', **TINY_T))
    assert isinstance(model, InternImage)


@pytest.mark.parametrize('out_indices', [(0, 1, 2, 3), (1, 2, 3), (3, ), (2, 0)])
def test_out_indices_give_nchw_maps_at_strides_4_to_32(out_indices):
    model = InternImage(**TINY_T, out_indices=out_indices).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    wanted = sorted(out_indices)
    assert [o.shape for o in outs] == [
        (1, 16 * 2**i, 64 // 2**(i + 2), 96 // 2**(i + 2)) for i in wanted]


def test_arch_overrides_and_aliases():
    with torch.device('meta'):
        s_no_gamma = InternImage(arch='small', layer_scale=None)
        h_plain = InternImage(arch='h', center_feature_scale=False, level2_post_norm=False)
        custom = InternImage(arch=dict(channels=32, depths=[1, 1, 1, 1], groups=[2, 2, 4, 4]),
                             channels=16)
    assert not any('gamma' in k for k in s_no_gamma.state_dict())
    assert s_no_gamma.stage_channels == [80, 160, 320, 640]
    keys = h_plain.state_dict().keys()
    assert not any('center_feature_scale' in k or 'post_norms' in k for k in keys)
    assert custom.stage_channels == [16, 32, 64, 128]


def test_linear_drop_path_schedule():
    model = InternImage(arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8)),
                        drop_path_rate=0.4)
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for lv in model.levels for b in lv.blocks]
    assert rates == pytest.approx([0., 0.1, 0.2, 0.3, 0.4])


def test_default_init_is_official():
    model = InternImage(**TINY_H)
    model.init_weights()
    dcn = model.levels[0].blocks[0].dcn
    assert torch.count_nonzero(dcn.offset.weight) == 0
    assert torch.count_nonzero(dcn.mask.weight) == 0
    fc1 = model.levels[0].blocks[0].mlp.fc1
    assert torch.count_nonzero(fc1.bias) == 0
    assert 0.015 < fc1.weight.std() < 0.025  # truncated normal, std 0.02


def test_frozen_stages_freeze_params_and_stay_in_eval():
    model = InternImage(**TINY_T, frozen_stages=2)
    model.train()
    frozen = [model.patch_embed, model.levels[0], model.levels[1]]
    for m in frozen:
        assert not m.training
        assert all(not p.requires_grad for p in m.parameters())
    assert model.levels[2].training
    assert all(p.requires_grad for p in model.levels[2].parameters())


def test_with_cp_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    ref = InternImage(**TINY_H)
    perturb_(ref)
    cp_model = InternImage(**TINY_H, with_cp=True)
    cp_model.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 32, 32)
    results = []
    for model in (ref, cp_model):
        model.train()
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()
        results.append(([o.detach() for o in outs],
                        {n: p.grad.clone() for n, p in model.named_parameters()}))
    for a, b in zip(results[0][0], results[1][0]):
        torch.testing.assert_close(a, b)
    for name, grad in results[0][1].items():
        torch.testing.assert_close(grad, results[1][1][name], msg=name)


@pytest.mark.parametrize('kwargs, words', [
    (dict(arch='g'), ('arch', "'g'")),
    (dict(arch=dict(channels=16, depths=(1, ) * 4, groups=(1, ) * 4, width=3)), ('width', )),
    (dict(arch='t', groups=(3, 8, 16, 32)), ('stage 0', '64', 'groups[0]=3')),
    (dict(arch='t', core_op='DCNv4'), ('core_op', 'DCNv4')),
    (dict(arch='t', drop_path_type='cosine'), ('drop_path_type', )),
    (dict(arch='t', out_indices=(4, )), ('out_indices', )),
    (dict(arch='t', frozen_stages=5), ('frozen_stages', )),
    (dict(arch='t', norm_layer='GN'), ('norm_layer', 'GN')),
    (dict(arch='t', act_layer='Mish'), ('act_layer', 'Mish')),
    (dict(arch='t', level2_post_norm=True), ('level2_post_norm_block_ids', )),
    (dict(arch='t', level2_post_norm=True, level2_post_norm_block_ids=[18]),
     ('level2_post_norm_block_ids', )),
])
def test_bad_options_raise_naming_them(kwargs, words):
    with torch.device('meta'), pytest.raises(ValueError) as err:
        InternImage(**kwargs)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match='use_dcn_v4_op'):
        MODELS.build(dict(type='InternImage', arch='t', use_dcn_v4_op=True))
