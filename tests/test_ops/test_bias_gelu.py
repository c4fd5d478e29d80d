"""bias_gelu_: GELU(y + bias) in place, the compiled CPU kernel (erf form) and its fallbacks.

The kernel's erf is a rational fit (max error 3.7e-7 evaluated in float32 with FMA, 5.1e-7
without: the baseline x86-64 version), so its GELU is within ``|x| / 2 * 6e-7`` plus a couple
of roundings of the exact value: the size of the error of ATen's own ``gelu``, which the tests
also measure.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from ops_dcnv3 import bias_gelu_, extension_available

needs_ext = pytest.mark.skipif(not extension_available(), reason='ops_dcnv3 not built')


def exact_gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU in float64 (erf to double precision) of float32 inputs."""
    x = x.double()
    return x * 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def gelu_error_bound(x: torch.Tensor) -> torch.Tensor:
    """The kernel's error bound per element: |x|/2 times the erf error, and two float32
    roundings of the result (and of 1 + erf near 0)."""
    x = x.double()
    eps = torch.finfo(torch.float32).eps
    return x.abs() * 0.5 * 6e-7 + 2 * eps * exact_gelu(x).abs() + 1e-38


def check_gelu_accuracy() -> float:
    """The worst error of ``bias_gelu_`` relative to its bound on a dense grid and random
    values with a bias (also run by every kernel version's subprocess)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.linspace(-12, 12, 400_003), torch.randn(100_000, generator=gen) * 3,
                   torch.tensor([0., -0., 1e-30, -1e-30, 3.9, -3.9, 5.4, -5.4])])
    worst = 0.
    for n in (x.numel(), 1, 7, 17, 1023):  # whole vectors, tails, shorter than one vector
        y = x[:n].clone()
        bias_gelu_(y)
        worst = max(worst, ((y.double() - exact_gelu(x[:n])).abs() / gelu_error_bound(x[:n]))
                    .max().item())
    y = torch.randn(37, 45, generator=gen) * 4
    b = torch.randn(45, generator=gen)
    z = y + b  # the float32 sum the kernel forms
    bias_gelu_(y, b)
    worst = max(worst, ((y.double() - exact_gelu(z)).abs() / gelu_error_bound(z)).max().item())
    return worst


@needs_ext
def test_kernel_is_within_its_error_bound():
    assert check_gelu_accuracy() <= 1.0


@needs_ext
def test_kernel_error_is_the_size_of_atens():
    x = torch.linspace(-10, 10, 1_000_001)
    y = x.clone()
    bias_gelu_(y)
    ours = (y.double() - exact_gelu(x)).abs().max().item()
    aten = (F.gelu(x).double() - exact_gelu(x)).abs().max().item()
    assert ours < 1.5e-6 and ours <= 4 * aten, (ours, aten)


@needs_ext
def test_special_values():
    """+inf stays inf (ATen's AVX-512 GELU gives NaN there), -inf gives NaN as in ATen
    (-inf * Phi(-inf) = -inf * 0), large values are exact."""
    x = torch.tensor([math.inf, -math.inf, math.nan, 0., 100., -100., 1e4, -1e4, 3.84, -3.84])
    y = x.clone()
    bias_gelu_(y)
    assert y[0] == math.inf and y[1].isnan() and y[2].isnan()
    assert y[3] == 0 and y[4] == 100 and y[6] == 1e4
    assert y[5] == 0 and y[7] == 0  # large negative: exactly zero, not a tiny residue
    assert ((y[8:].double() - exact_gelu(x[8:])).abs() <= gelu_error_bound(x[8:])).all()


@needs_ext
@pytest.mark.parametrize('shape', [(8, 14, 14, 1024), (3, 5), (1, 1), (0, 4), (2, 3, 1)])
@pytest.mark.parametrize('with_bias', [False, True])
def test_in_place_with_bias_is_gelu_of_the_sum(shape, with_bias):
    """Against the exact GELU, not ATen's: ATen's own float32 GELU differs between its vector
    versions by more than its error (AVX-512 against AVX2: up to 1.3e-6)."""
    y = torch.randn(shape) * 3
    b = torch.randn(shape[-1]) if with_bias else None
    z = y + b if with_bias else y.clone()  # the float32 sum the kernel forms
    out = bias_gelu_(y, b)
    assert out is y or out.data_ptr() == y.data_ptr()  # written over y
    assert ((y.double() - exact_gelu(z)).abs() <= gelu_error_bound(z)).all()


@pytest.mark.parametrize('make', [
    lambda: (torch.randn(6, 5, dtype=torch.float64) * 3, None),  # float64: ATen's ops
    lambda: (torch.randn(5, 6).t(), None),  # not contiguous
    lambda: (torch.randn(5, 6).t(), torch.randn(5)),
    lambda: (torch.randn(4, 6), torch.randn(1, 6)),  # a bias the kernel does not take
])
def test_other_inputs_take_atens_ops(make):
    y, b = make()
    want = F.gelu(y + b) if b is not None else F.gelu(y)
    out = bias_gelu_(y, b)
    torch.testing.assert_close(out, want.to(out.dtype))
    assert out.data_ptr() == y.data_ptr()


def test_refuses_a_tensor_that_requires_grad():
    with pytest.raises(RuntimeError, match='requires grad'):
        bias_gelu_(torch.randn(3, requires_grad=True))
    with torch.no_grad():  # no graph records it there
        bias_gelu_(torch.randn(3, requires_grad=True))


@needs_ext
@pytest.mark.parametrize('y, b, error, message', [
    (torch.randn(4, 6, dtype=torch.float64), None, TypeError, 'y must be float32'),
    (torch.randn(6, 4).t(), None, ValueError, 'y must be contiguous'),
    (torch.randn(4, 6), torch.randn(5), ValueError, "bias must be a contiguous 1-D tensor of y's "
     r'last size \(6\), got shape \[5\]'),
    (torch.randn(4, 6), torch.randn(6, dtype=torch.float64), TypeError, 'bias must be float32'),
])
def test_the_compiled_entry_point_rejects_bad_arguments(y, b, error, message):
    from ops_dcnv3 import _C
    with pytest.raises(error, match=message):
        _C.bias_gelu_(y, b)
