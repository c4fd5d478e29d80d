"""layer_norm: LayerNorm over the last dimension; the compiled CPU kernel against float64
LayerNorm (the same bound as ATen's float32 one), its fallbacks, argument errors, and the
model's LayerNorm module taking it in inference only."""
import pytest
import torch
import torch.nn.functional as F

from internimage_mm.models.layers.norm import LayerNorm
from ops_dcnv3 import extension_available, layer_norm

needs_ext = pytest.mark.skipif(not extension_available(), reason='ops_dcnv3 not built')


def make(shape, seed=0, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    c = shape[-1]
    x = torch.randn(shape, generator=g) * 3 + offset
    return x, 1 + 0.5 * torch.randn(c, generator=g), torch.randn(c, generator=g)


def check_layer_norm() -> float:
    """The worst error of the kernel over float64 LayerNorm, as a multiple of ATen's float32
    error on the same rows (or 1e-6 where that is smaller): row counts that leave 1-3 rows
    after the groups of four, rows of whole vectors, with a tail, shorter than a vector, a large
    mean (cancellation), eps large and zero (also run by every kernel version's
    subprocess)."""
    worst = 0.
    for shape, offset, eps in [((2, 7, 6, 64), 0., 1e-6), ((5, 20), 0., 1e-6),
                               ((3, 3), 0., 1e-5), ((1, 1, 1), 0., 1e-6), ((7, 80), 1e3, 1e-6),
                               ((2, 9, 8, 256), -5., 0.1), ((6, 512), 0., 0.),
                               ((4, 3, 16), 0., 1e-6)]:
        x, w, b = make(shape, offset=offset)
        with torch.no_grad():
            out = layer_norm(x, w, b, eps)
        ref = F.layer_norm(x.double(), (shape[-1], ), w.double(), b.double(), eps)
        aten = (F.layer_norm(x, (shape[-1], ), w, b, eps).double() - ref).abs().max().item()
        worst = max(worst, (out.double() - ref).abs().max().item() / max(aten, 1e-6))
    return worst


@needs_ext
def test_kernel_is_as_exact_as_atens():
    assert check_layer_norm() <= 2.0


@needs_ext
def test_big_input_and_empty_inputs():
    from ops_dcnv3 import _C
    x, w, b = make((8, 56, 56, 64))
    with torch.no_grad():
        torch.testing.assert_close(_C.layer_norm(x, w, b, 1e-6),
                                   F.layer_norm(x, (64, ), w, b, 1e-6), rtol=1e-5, atol=1e-5)
        assert _C.layer_norm(torch.empty(0, 5, 8), *make((8, ))[1:], 1e-6).shape == (0, 5, 8)
        assert _C.layer_norm(torch.empty(3, 0), torch.empty(0), torch.empty(0), 1e-6).shape \
            == (3, 0)


def test_autograd_and_other_inputs_take_atens():
    x, w, b = make((3, 4, 16))
    w.requires_grad_(True)
    layer_norm(x, w, b, 1e-6).sum().backward()
    ref_w = w.detach().clone().requires_grad_(True)
    F.layer_norm(x, (16, ), ref_w, b, 1e-6).sum().backward()
    torch.testing.assert_close(w.grad, ref_w.grad)
    with torch.no_grad():
        x64, w64, b64 = x.double(), w.double(), b.double()
        torch.testing.assert_close(layer_norm(x64, w64, b64, 1e-6),
                                   F.layer_norm(x64, (16, ), w64, b64, 1e-6))
        xt = x.transpose(0, 1)  # not contiguous
        torch.testing.assert_close(layer_norm(xt, w, b, 1e-6),
                                   F.layer_norm(xt, (16, ), w, b, 1e-6), rtol=1e-5, atol=1e-5)


@needs_ext
@pytest.mark.parametrize('change, error, message', [
    (lambda a: a.update(x=a['x'].double()), TypeError, 'x must be float32'),
    (lambda a: a.update(x=a['x'].transpose(0, 1)), ValueError, 'x must be a contiguous'),
    (lambda a: a.update(x=torch.tensor(1.)), ValueError, 'at least one dimension'),
    (lambda a: a.update(weight=torch.randn(7)), ValueError,
     r'layer_norm: weight must be a contiguous \[8\] tensor, got shape \[7\]'),
    (lambda a: a.update(bias=torch.randn(8, dtype=torch.float64)), TypeError,
     'bias must be float32'),
    (lambda a: a.update(eps=-1.0), ValueError, 'eps must be >= 0'),
])
def test_the_compiled_entry_point_rejects_bad_arguments(change, error, message):
    from ops_dcnv3 import _C
    x, weight, bias = make((4, 3, 8))
    args = dict(x=x, weight=weight, bias=bias, eps=1e-6)
    change(args)
    with pytest.raises(error, match=message):
        _C.layer_norm(**args)


@needs_ext
def test_the_module_takes_the_kernel_in_inference_only(monkeypatch):
    import ops_dcnv3
    calls = []
    real = ops_dcnv3.layer_norm
    monkeypatch.setattr(ops_dcnv3, 'layer_norm', lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(0)
    norm = LayerNorm(32, eps=1e-6)
    torch.nn.init.normal_(norm.weight)
    ref_norm = torch.nn.LayerNorm(32, eps=1e-6)
    ref_norm.load_state_dict(norm.state_dict())  # same keys as nn.LayerNorm
    x = torch.randn(2, 5, 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(norm(x), ref_norm(x), rtol=1e-5, atol=1e-5)
    assert calls == [1]
    out = norm(x)  # autograd records the parameters: nn.LayerNorm's forward
    assert calls == [1] and out.grad_fn is not None
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        norm(x)
    traced = torch.jit.trace(norm.eval(), x.detach(), check_trace=False)
    assert calls == [1] and 'layer_norm' in str(traced.graph)
