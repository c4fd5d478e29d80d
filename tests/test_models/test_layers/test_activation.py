"""layers/activation.py: activations written over their input in inference, equal to the
modules to float32 rounding; under autograd, tracing and export the modules run instead; the
backbone's inference output is unchanged by them."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from internimage_mm.models.backbones import intern_image
from internimage_mm.models.backbones.intern_image import InternImage
from internimage_mm.models.layers import activation, dcnv3, fused_linear, packed_weights
from internimage_mm.models.layers.activation import act_, may_overwrite


@pytest.mark.parametrize('act', [nn.GELU(), nn.GELU(approximate='tanh'), nn.ReLU(), nn.SiLU(),
                                 nn.Identity(), None, nn.Hardswish()])
@pytest.mark.parametrize('with_bias', [False, True])
def test_act_in_place_equals_the_module(act, with_bias):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, 40) * 3
    b = torch.randn(40) if with_bias else None
    z = x + b if with_bias else x
    want = z if act is None else act(z.clone())
    out = act_(act, x, b)
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)
    if act is None or type(act) in (nn.GELU, nn.ReLU, nn.SiLU, nn.Identity):
        assert out.data_ptr() == x.data_ptr()  # no new tensor


def test_gelu_on_a_channels_first_view_of_channels_last_memory():
    x = torch.randn(2, 6, 5, 16).permute(0, 3, 1, 2)  # [N, C, H, W] over [N, H, W, C] memory
    want = nn.functional.gelu(x)
    out = act_(nn.GELU(), x)
    assert out.data_ptr() == x.data_ptr() and out.shape == (2, 16, 6, 5)
    torch.testing.assert_close(out, want, rtol=1e-6, atol=1e-6)


def test_may_overwrite_only_where_no_graph_or_tracer_records():
    w = nn.Parameter(torch.randn(3))
    x = torch.randn(3)
    assert may_overwrite(x, None)
    assert not may_overwrite(x, w)  # autograd records what w feeds
    with torch.no_grad():
        assert may_overwrite(x, w)
    seen = []

    def f(t):
        seen.append(may_overwrite(t))
        return t + 1
    torch.jit.trace(f, torch.randn(2), check_trace=False)
    assert seen == [False]


def test_linear_act_in_inference_folds_the_bias_into_the_activation(monkeypatch):
    # small GEMM (not oneDNN's): F.linear without bias, then bias + GELU in one pass
    calls = []
    real = activation.bias_gelu_
    monkeypatch.setattr(activation, 'bias_gelu_', lambda y, b=None: calls.append(b) or real(y, b))
    torch.manual_seed(0)
    linear = nn.Linear(24, 40)
    x = torch.randn(2, 5, 7, 24)
    want = nn.functional.gelu(linear(x))
    with torch.no_grad():
        out = fused_linear.linear_act(x, linear, nn.GELU())
    assert len(calls) == 1 and calls[0] is linear.bias
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
    out = fused_linear.linear_act(x, linear, nn.GELU())  # autograd: the module, no kernel
    assert len(calls) == 1 and out.grad_fn is not None
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


def test_backbone_inference_is_unchanged(monkeypatch):
    """Every in-place or fused site (stem, DCNv3 offset branch, MLP) against the modules: the
    same outputs to float32 rounding. Without packed weights, whose kernels fuse the MLP's
    GELU instead (test_packed_weights.py)."""
    monkeypatch.setattr(packed_weights, '_enabled', False)
    torch.manual_seed(0)
    model = InternImage(channels=32, depths=(1, 1, 2, 1), groups=(2, 4, 8, 16)).eval()
    # non-zero offsets and masks, so the offset branch's GELU matters
    for name, p in model.named_parameters():
        if 'offset' in name or 'mask' in name:
            nn.init.normal_(p, std=0.1)
    x = torch.randn(2, 3, 64, 64)
    calls, branch = [], []
    real, real_branch = activation.bias_gelu_, dcnv3.ops_dcnv3.dwconv_ln
    monkeypatch.setattr(activation, 'bias_gelu_', lambda y, b=None: calls.append(1) or real(y, b))
    monkeypatch.setattr(dcnv3.ops_dcnv3, 'dwconv_ln',
                        lambda *a, **k: branch.append(1) or real_branch(*a, **k))
    with torch.no_grad():
        outs = model(x)
        # the GELU of the stem and of the 5 blocks' MLPs (small: not oneDNN's); the offset
        # branch of each block in one kernel
        assert len(calls) == 1 + 5 and len(branch) == 5
        for mod in (fused_linear, dcnv3, intern_image):
            monkeypatch.setattr(mod, 'may_overwrite', lambda *t: False)
        refs = model(x)
    assert len(outs) == 4
    for out, ref in zip(outs, refs):
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    assert len(calls) == 6 and len(branch) == 5  # the reference run took the modules


def test_autocast_keeps_the_offset_branch_modules(monkeypatch):
    calls = []
    real = dcnv3.ops_dcnv3.dwconv_ln
    monkeypatch.setattr(dcnv3.ops_dcnv3, 'dwconv_ln',
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    model = InternImage(channels=16, depths=(1, 1, 1, 1), groups=(1, 2, 4, 8)).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        with torch.autocast('cpu', dtype=torch.bfloat16):  # autocast picks the conv's dtype
            model(x)
        assert calls == []
        model(x)
        assert len(calls) == 4
