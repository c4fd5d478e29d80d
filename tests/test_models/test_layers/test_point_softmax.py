"""point_softmax: F.softmax over the last dimension (values and gradients within float rounding),
faster on CPU; exporters see F.softmax."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from internimage_mm.models.layers.point_softmax import point_softmax


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-6), (torch.float64, 1e-14)])
def test_values_and_gradients_equal_softmax(dtype, tol):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 6, 4, 9, generator=gen, dtype=dtype) * 8
    x[0, 0, 0, 0, 3] = 800.  # large logits: the max shift keeps exp finite
    x.requires_grad_()
    g = torch.randn(x.shape, generator=gen, dtype=dtype)
    ours = point_softmax(x)
    (grad_ours, ) = torch.autograd.grad(ours, x, g)
    ref = F.softmax(x, dim=-1)
    (grad_ref, ) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(ours, ref, rtol=0, atol=tol)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=0, atol=tol * 10)
    with torch.no_grad():  # the in-place inference path
        torch.testing.assert_close(point_softmax(x), ref.detach(), rtol=0, atol=tol)
    assert not torch.isnan(point_softmax(x.detach())).any()


def test_low_precision_is_computed_and_returned_in_float32():
    x = torch.randn(3, 9).to(torch.bfloat16)
    y = point_softmax(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, F.softmax(x.float(), -1))


def test_the_input_is_not_modified():
    x = torch.randn(4, 9)
    before = x.clone()
    with torch.no_grad():
        point_softmax(x)
    assert torch.equal(x, before)


def test_tracing_sees_softmax():
    traced = torch.jit.trace(lambda t: point_softmax(t), torch.randn(2, 9))
    assert 'aten::softmax' in str(traced.graph)
