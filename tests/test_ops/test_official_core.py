"""The official pure-PyTorch core's algorithm (benchmark baseline) computes the DCNv3 function:
with square padding it equals our reference, values and gradients."""
from __future__ import annotations

import pytest
import torch

from ops_dcnv3 import dcnv3_official_pytorch, dcnv3_pytorch

# kernel_h, kernel_w, stride, pad, dilation, group, group_channels, offset_scale, H, W
CASES = [
    (3, 3, 1, 1, 1, 4, 8, 1.0, 9, 11),
    (3, 3, 2, 1, 1, 2, 4, 1.0, 10, 7),
    (5, 5, 1, 2, 1, 3, 2, 0.5, 8, 8),
    (3, 3, 1, 2, 2, 1, 6, 2.0, 7, 9),
    (1, 1, 1, 0, 1, 2, 3, 1.0, 5, 6),
    (3, 5, 1, 1, 1, 2, 2, 1.0, 6, 7),
]


@pytest.mark.parametrize('case', CASES, ids=str)
def test_equals_our_reference_values_and_gradients(case):
    kh, kw, s, pad, d, g, gc, scale, h, w = case
    gen = torch.Generator().manual_seed(0)
    ho = (h + 2 * pad - (d * (kh - 1) + 1)) // s + 1
    wo = (w + 2 * pad - (d * (kw - 1) + 1)) // s + 1
    p = kh * kw
    x = torch.randn(2, h, w, g * gc, generator=gen, dtype=torch.float64)
    off = torch.rand(2, ho, wo, g * p * 2, generator=gen, dtype=torch.float64) * 6 - 3
    mask = torch.rand(2, ho, wo, g * p, generator=gen, dtype=torch.float64)
    args = (kh, kw, s, s, pad, pad, d, d, g, gc, scale)
    leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
    ours = dcnv3_pytorch(*leaves, *args)
    official = dcnv3_official_pytorch(x, off, mask, *args)
    torch.testing.assert_close(official, ours.detach(), rtol=0, atol=1e-10)
    go = torch.randn(ours.shape, generator=gen, dtype=torch.float64)
    expected = torch.autograd.grad(ours, leaves, go)
    leaves2 = [t.clone().requires_grad_() for t in (x, off, mask)]
    got = torch.autograd.grad(dcnv3_official_pytorch(*leaves2, *args), leaves2, go)
    for name, a, b in zip(('input', 'offset', 'mask'), got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-8, msg=name)


def test_remove_center_is_refused():
    x = torch.zeros(1, 4, 4, 2)
    with pytest.raises(ValueError, match='remove_center'):
        dcnv3_official_pytorch(x, torch.zeros(1, 4, 4, 16), torch.zeros(1, 4, 4, 8), 3, 3, 1, 1,
                               1, 1, 1, 1, 1, 2, 1.0, True)
