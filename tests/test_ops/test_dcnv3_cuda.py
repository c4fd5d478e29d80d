"""The same checks on a GPU (skipped without one): goldens, reference agreement, fp16/bf16."""
import pytest
import torch

import ops_dcnv3
from ops_dcnv3 import dcnv3, dcnv3_pytorch

from ..conftest import data_file
from ._cases import Args, make_inputs

pytestmark = pytest.mark.gpu

CASES = [Args(), Args(stride_h=2, stride_w=2, dilation_h=2, dilation_w=2, pad_h=2, pad_w=2),
         Args(remove_center=True, offset_scale=2.0), Args(kernel_h=5, kernel_w=3, pad_h=2, pad_w=0)]


def test_cuda_kernels_built():
    assert ops_dcnv3.cuda_kernels_available()


@pytest.mark.parametrize('args', CASES)
@pytest.mark.parametrize('dtype, tol', [(torch.float64, 1e-10), (torch.float32, 1e-4),
                                        (torch.float16, 2e-2), (torch.bfloat16, 1e-1)])
def test_cuda_matches_reference(args, dtype, tol):
    inputs = make_inputs(args, batch=3, height=9, width=8, dtype=dtype, device='cuda')
    leaves = [t.clone().requires_grad_() for t in inputs]
    out = dcnv3(*leaves, *args.tuple())
    assert out.dtype == dtype
    grad_out = torch.randn_like(out)
    (out * grad_out).sum().backward()
    ref_leaves = [t.detach().double().cpu().requires_grad_() for t in inputs]
    ref = dcnv3_pytorch(*ref_leaves, *args.tuple())
    (ref * grad_out.double().cpu()).sum().backward()
    torch.testing.assert_close(out.double().cpu(), ref, rtol=tol, atol=tol)
    for a, b in zip(leaves, ref_leaves):
        assert a.grad.dtype == dtype
        torch.testing.assert_close(a.grad.double().cpu(), b.grad, rtol=tol, atol=tol)


def test_cuda_gradcheck():
    args = Args()
    inputs = [t.requires_grad_() for t in make_inputs(args, batch=2, device='cuda')]
    assert torch.autograd.gradcheck(lambda *t: dcnv3(*t, *args.tuple()), inputs, eps=1e-6,
                                    atol=1e-6)


def test_cuda_golden():
    golden = torch.load(data_file('golden/dcnv3_op_cases_seed0.pth'), weights_only=True)
    names = ('kernel_h', 'kernel_w', 'stride_h', 'stride_w', 'pad_h', 'pad_w', 'dilation_h',
             'dilation_w', 'group', 'group_channels', 'offset_scale', 'remove_center')
    for case, c in golden.items():
        if case.startswith('_'):
            continue
        leaves = [c[k].cuda().requires_grad_() for k in ('input', 'offset', 'mask')]
        out = dcnv3(*leaves, *[c['args'][k] for k in names])
        (out * c['grad_output'].cuda()).sum().backward()
        torch.testing.assert_close(out.cpu(), c['output'], rtol=0, atol=1e-5)
        for t, k in zip(leaves, ('grad_input', 'grad_offset', 'grad_mask')):
            torch.testing.assert_close(t.grad.cpu(), c[k], rtol=0, atol=1e-5)
