"""dwconv_ln: GELU(LayerNorm(depthwise conv(x))) of channels-last x, the DCNv3 offset branch's
features; the compiled CPU kernel against the composition of ATen ops, its fallbacks and its
argument errors."""
import pytest
import torch
import torch.nn.functional as F

from ops_dcnv3 import dwconv_ln, extension_available

needs_ext = pytest.mark.skipif(not extension_available(), reason='ops_dcnv3 not built')


def composed(x, weight, conv_bias, ln_weight, ln_bias, eps, gelu):
    """The official module's dw_conv: conv (channels-first), permute, LayerNorm, GELU."""
    y = F.conv2d(x.permute(0, 3, 1, 2), weight, conv_bias, padding=weight.shape[-1] // 2,
                 groups=x.shape[-1]).permute(0, 2, 3, 1)
    y = F.layer_norm(y, (x.shape[-1], ), ln_weight, ln_bias, eps)
    return F.gelu(y) if gelu else y


def make(n, h, w, c, k, with_bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, w, c, generator=g)
    weight = torch.randn(c, 1, k, k, generator=g) * 0.3
    conv_bias = torch.randn(c, generator=g) if with_bias else None
    return x, weight, conv_bias, 1 + 0.5 * torch.randn(c, generator=g), torch.randn(c, generator=g)


def check_dwconv_ln() -> float:
    """The worst difference of the kernel from the composition over group widths (whole
    vectors, a tail, fewer channels than a vector), kernel sizes, image sizes down to 1x1
    (every tap in the padding but the centre), with and without conv bias and GELU (also run by
    every kernel version's subprocess)."""
    worst = 0.
    for n, h, w, c, k in [(2, 7, 6, 64, 3), (1, 5, 9, 20, 3), (2, 4, 4, 3, 5), (1, 1, 1, 16, 3),
                          (1, 3, 2, 40, 1), (1, 9, 8, 256, 5)]:
        for with_bias, gelu in [(True, True), (False, False)]:
            x, *params = make(n, h, w, c, k, with_bias)
            with torch.no_grad():
                out = dwconv_ln(x, *params, 1e-6, gelu)
            ref = composed(x.double(), *[p.double() if p is not None else None for p in params],
                           1e-6, gelu)
            worst = max(worst, (out.double() - ref).abs().max().item())
    return worst


@needs_ext
def test_kernel_equals_the_composition():
    assert check_dwconv_ln() < 2e-5


@needs_ext
def test_kernel_runs_in_inference_and_a_big_input_matches():
    from ops_dcnv3 import _C
    x, *params = make(8, 14, 14, 256, 3)
    with torch.no_grad():
        out = _C.dwconv_ln(x, *params, 1e-6, True)
        torch.testing.assert_close(out, composed(x, *params, 1e-6, True), rtol=1e-5, atol=1e-5)


def test_autograd_takes_the_differentiable_composition():
    x, weight, conv_bias, ln_weight, ln_bias = make(2, 5, 5, 16, 3)
    weight.requires_grad_(True)
    out = dwconv_ln(x, weight, conv_bias, ln_weight, ln_bias, 1e-6, True)
    out.sum().backward()
    ref_w = weight.detach().clone().requires_grad_(True)
    composed(x, ref_w, conv_bias, ln_weight, ln_bias, 1e-6, True).sum().backward()
    torch.testing.assert_close(weight.grad, ref_w.grad)


def test_other_inputs_take_the_composition():
    x, *params = make(2, 5, 4, 12, 3)
    x64 = x.double()
    p64 = [p.double() for p in params]
    with torch.no_grad():
        torch.testing.assert_close(dwconv_ln(x64, *p64, 1e-6, True),
                                   composed(x64, *p64, 1e-6, True))
        xt = x.transpose(1, 2).contiguous().transpose(1, 2)  # not contiguous
        torch.testing.assert_close(dwconv_ln(xt, *params, 1e-6, False),
                                   composed(xt, *params, 1e-6, False), rtol=1e-5, atol=1e-5)


@needs_ext
@pytest.mark.parametrize('change, error, message', [
    (lambda a: a.update(x=a['x'].double()), TypeError, 'x must be float32'),
    (lambda a: a.update(x=a['x'][0]), ValueError, r'x must be a contiguous \[N, H, W, C\]'),
    (lambda a: a.update(weight=torch.randn(8, 1, 2, 2)), ValueError,
     r'weight must be a depthwise \[8, 1, k, k\] kernel with k odd, got shape \[8, 1, 2, 2\]'),
    (lambda a: a.update(weight=torch.randn(8, 2, 3, 3)), ValueError, 'depthwise'),
    (lambda a: a.update(ln_weight=torch.randn(7)), ValueError,
     r'ln_weight must be a contiguous \[8\] tensor, got shape \[7\]'),
    (lambda a: a.update(conv_bias=torch.randn(8, dtype=torch.float64)), TypeError,
     'conv_bias must be float32'),
    (lambda a: a.update(eps=-1.0), ValueError, 'eps must be >= 0'),
])
def test_the_compiled_entry_point_rejects_bad_arguments(change, error, message):
    from ops_dcnv3 import _C
    x, weight, conv_bias, ln_weight, ln_bias = make(1, 4, 4, 8, 3)
    args = dict(x=x, weight=weight, conv_bias=conv_bias, ln_weight=ln_weight, ln_bias=ln_bias,
                eps=1e-6, gelu=True)
    change(args)
    with pytest.raises(error, match=message):
        _C.dwconv_ln(**args)
