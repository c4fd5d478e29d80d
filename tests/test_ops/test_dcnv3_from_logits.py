"""``dcnv3_from_logits``: the CPU kernels with the mask softmax inside (forward and backward)
against the composition ``dcnv3(input, offset, softmax(logits))`` they stand for."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ops_dcnv3
from ops_dcnv3 import dcnv3_from_logits, output_size, softmax_kernel_applies

from ._cases import Args, composed_from_logits, make_offset_mask, value_and_grads

pytestmark = pytest.mark.skipif(not ops_dcnv3.extension_available(),
                                reason='compiled extension not built')

TOL = {torch.float64: 1e-12, torch.float32: 2e-6}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kernel=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2), group=st.integers(1, 5),
       group_channels=st.sampled_from([1, 3, 8, 16, 32, 64]), remove_center=st.booleans(),
       size=st.integers(1, 9), batch=st.integers(0, 2),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2**16))
def test_fused_softmax_matches_composition(kernel, stride, group, group_channels, remove_center,
                                           size, batch, dtype, seed):
    args = Args(kernel_h=kernel, kernel_w=kernel, stride_h=stride, stride_w=stride,
                pad_h=kernel // 2, pad_w=kernel // 2, group=group, group_channels=group_channels,
                remove_center=remove_center and kernel > 1)
    input, offset_mask = make_offset_mask(args, batch, size, size, dtype, seed)
    with torch.no_grad():
        assert softmax_kernel_applies(input, offset_mask)
        out = dcnv3_from_logits(input, offset_mask, *args.tuple())
        ref = composed_from_logits(input, offset_mask, args)
    torch.testing.assert_close(out, ref, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize('scale', [0.0, 1.0, 40.0, 400.0])
def test_fused_softmax_extreme_logits(scale):
    """Equal logits, and spreads far past exp's float32 range (weights underflow to 0)."""
    args = Args(group=4, group_channels=16)
    input, offset_mask = make_offset_mask(args, 2, 7, 6, torch.float32, 0, logit_scale=scale)
    with torch.no_grad():
        out = dcnv3_from_logits(input, offset_mask, *args.tuple())
        ref = composed_from_logits(input, offset_mask, args)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=TOL[torch.float32], atol=TOL[torch.float32])


def test_fused_softmax_masked_points():
    """-inf logits (points masked out) get weight 0, as with F.softmax."""
    args = Args(group=2, group_channels=8)
    input, offset_mask = make_offset_mask(args, 1, 6, 5, torch.float32, 5)
    logits = offset_mask[..., 2 * args.group * args.points:]
    logits[..., ::4] = float('-inf')  # never a whole group
    with torch.no_grad():
        out = dcnv3_from_logits(input, offset_mask, *args.tuple())
        ref = composed_from_logits(input, offset_mask, args)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=TOL[torch.float32], atol=TOL[torch.float32])


def test_kernels_are_used_with_and_without_autograd(monkeypatch):
    C = ops_dcnv3.function._ops._C
    calls = []
    for name in ('forward_softmax', 'backward_softmax'):
        kernel = getattr(C, name)
        monkeypatch.setattr(C, name, lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    args = Args()
    input, offset_mask = make_offset_mask(args, 1, 5, 5, torch.float64, 1)
    with torch.no_grad():
        dcnv3_from_logits(input, offset_mask, *args.tuple())
    assert calls == ['forward_softmax']
    leaves = [input.clone().requires_grad_(), offset_mask.clone().requires_grad_()]
    assert softmax_kernel_applies(*leaves)
    torch.autograd.gradcheck(lambda i, om: dcnv3_from_logits(i, om, *args.tuple()), leaves)
    assert 'backward_softmax' in calls


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kernel=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2), group=st.integers(1, 5),
       group_channels=st.sampled_from([1, 3, 8, 16]), remove_center=st.booleans(),
       size=st.integers(1, 8), batch=st.integers(1, 3), seed=st.integers(0, 2**16),
       strategy=st.sampled_from([0, 1, 2, 3]))
def test_fused_backward_matches_composition(kernel, stride, group, group_channels,
                                            remove_center, size, batch, seed, strategy):
    """float64 gradients of input and of offsets + logits equal the composition's, for every
    CPU backward strategy (owner tasks over blocks of groups, atomic adds, row bands)."""
    args = Args(kernel_h=kernel, kernel_w=kernel, stride_h=stride, stride_w=stride,
                pad_h=kernel // 2, pad_w=kernel // 2, group=group, group_channels=group_channels,
                remove_center=remove_center and kernel > 1)
    input, offset_mask = make_offset_mask(args, batch, size, size, torch.float64, seed)
    ref, ref_grads = value_and_grads(lambda i, om, *a: composed_from_logits(i, om, args),
                                     (input, offset_mask), args, 0)
    out = dcnv3_from_logits(input, offset_mask, *args.tuple())
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=out.dtype)
    grads = ops_dcnv3.function._ops._C.backward_softmax(g, input, offset_mask, *args.tuple(),
                                                        strategy)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('scale', [0.0, 40.0, 400.0])
def test_fused_backward_extreme_and_masked_logits(scale):
    """float32 gradients stay finite and equal F.softmax's for equal, far-spread and -inf
    logits (a masked point gets no gradient)."""
    args = Args(group=4, group_channels=16)
    input, offset_mask = make_offset_mask(args, 2, 7, 6, torch.float32, 0, logit_scale=scale)
    logits = offset_mask[..., 2 * args.group * args.points:]
    logits[..., ::4] = float('-inf')
    ref, ref_grads = value_and_grads(lambda i, om, *a: composed_from_logits(i, om, args),
                                     (input, offset_mask), args, 0)
    out, grads = value_and_grads(dcnv3_from_logits, (input, offset_mask), args, 0)
    torch.testing.assert_close(out, ref, rtol=TOL[torch.float32], atol=TOL[torch.float32])
    for a, b in zip(grads, ref_grads):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert (grads[1][..., 2 * args.group * args.points:][..., ::4] == 0).all()


def test_half_precision_falls_back_in_float32_softmax():
    args = Args(group=2, group_channels=8)
    input, offset_mask = make_offset_mask(args, 1, 5, 5, torch.float32, 2)
    with torch.no_grad():
        ref = dcnv3_from_logits(input, offset_mask, *args.tuple())
        out = dcnv3_from_logits(input.bfloat16(), offset_mask.bfloat16(), *args.tuple())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


def test_bad_offset_mask_is_named():
    args = Args(group=2, group_channels=4)
    input, offset_mask = make_offset_mask(args, 1, 5, 5, torch.float32, 3)
    with pytest.raises(ValueError, match='offset_mask must be a 4-D'):
        dcnv3_from_logits(input, offset_mask[..., :-1], *args.tuple())
    with pytest.raises(ValueError, match='offset_mask must be a 4-D'):
        dcnv3_from_logits(input, offset_mask[0], *args.tuple())
    with pytest.raises(ValueError, match='offset'):  # G*K*3 of another kernel size
        dcnv3_from_logits(input, offset_mask[..., :-6], *args.tuple())
    ho = output_size(5, 1, 1, 3, 1)
    assert offset_mask.shape[1] == ho


def test_direct_binding_checks_shapes_and_device():
    """The C++ entry point itself refuses a bad layout (the last line of defence)."""
    C = ops_dcnv3.function._ops._C
    args = Args(group=2, group_channels=4)
    input, offset_mask = make_offset_mask(args, 1, 5, 5, torch.float32, 4)
    with pytest.raises(ValueError, match='offset_mask'):
        C.forward_softmax(input, offset_mask[..., :-1], *args.tuple())
    with pytest.raises(ValueError, match='offset has shape'):
        C.forward_softmax(input, offset_mask[..., :-3], *args.tuple())
    with pytest.raises(TypeError, match='dtype'):
        C.forward_softmax(input, offset_mask.double(), *args.tuple())
    g = torch.zeros(1, 5, 5, 8)
    with pytest.raises(ValueError, match='grad_output has shape'):
        C.backward_softmax(g[:, :4], input, offset_mask, *args.tuple(), 0)
    with pytest.raises(TypeError, match='grad_output must have'):
        C.backward_softmax(g.double(), input, offset_mask, *args.tuple(), 0)
    with pytest.raises(ValueError, match='strategy'):
        C.backward_softmax(g, input, offset_mask, *args.tuple(), 4)
    with pytest.raises(ValueError, match='offset_mask'):
        C.backward_softmax(g, input, offset_mask[..., :-1], *args.tuple(), 0)
