"""The DCNv3 module: official layout and init, both cores agree, the centre-feature-scale rule."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

import ops_dcnv3
from internimage_mm.models.layers import DCNv3
from ops_dcnv3 import dcnv3_pytorch

from .._helpers import perturb_


def test_state_dict_layout_matches_official():
    m = DCNv3(channels=32, group=4, dw_kernel_size=5, center_feature_scale=True)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        'center_feature_scale_proj_weight': (4, 32), 'center_feature_scale_proj_bias': (4, ),
        'dw_conv.0.weight': (32, 1, 5, 5), 'dw_conv.0.bias': (32, ),
        'dw_conv.1.1.weight': (32, ), 'dw_conv.1.1.bias': (32, ),
        'offset.weight': (72, 32), 'offset.bias': (72, ), 'mask.weight': (36, 32),
        'mask.bias': (36, ), 'input_proj.weight': (32, 32), 'input_proj.bias': (32, ),
        'output_proj.weight': (32, 32), 'output_proj.bias': (32, )}
    assert list(shapes)[2:4] == ['dw_conv.0.weight', 'dw_conv.0.bias']


def test_remove_center_drops_one_point_per_group():
    m = DCNv3(channels=16, group=2, remove_center=True)
    assert m.offset.out_features == 2 * 8 * 2 and m.mask.out_features == 2 * 8


def test_official_init():
    m = DCNv3(channels=16, group=2)
    for t in (m.offset.weight, m.offset.bias, m.mask.weight, m.mask.bias, m.input_proj.bias,
              m.output_proj.bias):
        assert torch.count_nonzero(t) == 0
    assert m.input_proj.weight.abs().max() <= (6 / 32)**0.5  # Xavier-uniform bound


@pytest.mark.parametrize('options', [dict(), dict(center_feature_scale=True),
                                     dict(remove_center=True, dw_kernel_size=5)])
def test_compiled_and_pytorch_cores_agree(options):
    torch.manual_seed(0)
    a = DCNv3(channels=16, group=2, offset_scale=2.0, core_op='DCNv3', **options)
    perturb_(a, scale=0.3)
    b = DCNv3(channels=16, group=2, offset_scale=2.0, core_op='DCNv3_pytorch', **options)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 7, 9, 16, requires_grad=True)
    ya, yb = a(x), b(x)
    assert ya.shape == (2, 7, 9, 16)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
    ga, = torch.autograd.grad(ya.square().sum(), x)
    gb, = torch.autograd.grad(yb.square().sum(), x)
    torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not ops_dcnv3.extension_available(), reason='compiled extension not built')
@pytest.mark.parametrize('options', [dict(), dict(center_feature_scale=True),
                                     dict(remove_center=True, dw_kernel_size=5)])
def test_fused_paths_match_the_composed_path(options, monkeypatch):
    """On CPU, inference and training take one GEMM for offsets and mask logits and the
    kernels' own softmax; outputs and gradients equal the separate projections + softmax +
    core (the path of CUDA, half precision and tracing). In float64: in float32 a sampling
    point within rounding of a pixel row or column may fall on either side of it in the two
    paths, which changes the offsets' gradient there (bilinear sampling has a kink)."""
    torch.manual_seed(0)
    m = DCNv3(channels=32, group=4, offset_scale=1.5, **options).eval().double()
    perturb_(m, scale=0.5)
    x = torch.randn(2, 9, 11, 32, dtype=torch.float64, requires_grad=True)
    C = ops_dcnv3.function._ops._C
    used = []
    for name in ('forward_softmax', 'backward_softmax'):
        kernel = getattr(C, name)
        monkeypatch.setattr(C, name, lambda *a, _k=kernel, _n=name: used.append(_n) or _k(*a))
    tensors = [x, *m.parameters()]

    def run():
        y = m(x)
        return y, torch.autograd.grad(y.square().sum(), tensors)

    fused, fused_grads = run()
    assert used == ['forward_softmax', 'backward_softmax']
    with torch.no_grad():
        out = m(x)
    assert used[-1] == 'forward_softmax' and len(used) == 3
    with monkeypatch.context() as mp:
        mp.setattr(ops_dcnv3, 'softmax_kernel_applies', lambda *t: False)
        expected, expected_grads = run()
    assert len(used) == 3  # the composed path does not touch the fused kernels
    torch.testing.assert_close(out, expected.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fused, expected, rtol=1e-10, atol=1e-10)
    for a, b in zip(fused_grads, expected_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_forward_follows_the_official_rule():
    """Projections around the sampling core, per-group softmax masks, and the centre gate
    sigmoid(W f + b) computed from the depthwise features f."""
    torch.manual_seed(0)
    m = DCNv3(channels=8, group=2, center_feature_scale=True, core_op='DCNv3_pytorch')
    perturb_(m, scale=0.5)
    x = torch.randn(1, 5, 6, 8)
    x_proj = m.input_proj(x)
    feat = m.dw_conv(x.permute(0, 3, 1, 2))
    mask = F.softmax(m.mask(feat).reshape(1, 5, 6, 2, 9), -1).reshape(1, 5, 6, 18)
    core = dcnv3_pytorch(x_proj, m.offset(feat), mask, 3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0)
    gate = torch.sigmoid(feat @ m.center_feature_scale_proj_weight.T +
                         m.center_feature_scale_proj_bias)
    gate = gate[..., :, None].expand(1, 5, 6, 2, 4).reshape(1, 5, 6, 8)
    expected = m.output_proj(core * (1 - gate) + x_proj * gate)
    torch.testing.assert_close(m(x), expected)


def test_registered_in_root_registry():
    m = MODELS.build(dict(type='DCNv3', channels=8, group=2))
    assert isinstance(m, DCNv3)


@pytest.mark.parametrize('kwargs, words', [
    (dict(channels=10, group=4), ('channels (10)', 'group (4)')),
    (dict(core_op='DCNv4'), ('core_op', 'DCNv4')),
    (dict(kernel_size=4, remove_center=True), ('remove_center', 'kernel_size')),
])
def test_bad_arguments_raise_naming_them(kwargs, words):
    with pytest.raises(ValueError) as err:
        DCNv3(**kwargs)
    assert all(w in str(err.value) for w in words)
