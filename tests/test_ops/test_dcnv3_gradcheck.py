"""float64 gradcheck of the compiled op (and of the reference) on small random cases."""
import pytest
import torch

from ops_dcnv3 import dcnv3, dcnv3_pytorch

from ._cases import Args, make_inputs

CASES = {
    'basic': Args(),
    'stride2': Args(stride_h=2, stride_w=2),
    'dilation2': Args(dilation_h=2, dilation_w=2, pad_h=2, pad_w=2),
    'kernel1': Args(kernel_h=1, kernel_w=1, pad_h=0, pad_w=0),
    'kernel5': Args(kernel_h=5, kernel_w=5, pad_h=2, pad_w=2, group=1),
    'kernel7': Args(kernel_h=7, kernel_w=7, pad_h=3, pad_w=3, group=1, group_channels=2),
    'remove_center': Args(remove_center=True),
    'offset_scale2': Args(offset_scale=2.0),
    'offset_scale_half': Args(offset_scale=0.5),
    'nonsquare': Args(kernel_h=3, kernel_w=5, pad_h=0, pad_w=2, stride_h=1, stride_w=2),
    'pad_h_only': Args(pad_h=2, pad_w=0),
}


@pytest.mark.parametrize('name', list(CASES))
def test_gradcheck_compiled(name):
    args = CASES[name]
    x, off, mask = (t.requires_grad_() for t in make_inputs(args, batch=2, height=7, width=6))
    assert torch.autograd.gradcheck(lambda *t: dcnv3(*t, *args.tuple()), (x, off, mask),
                                    eps=1e-6, atol=1e-6)


def test_gradcheck_far_outside():
    # Offsets up to 20 px push many points entirely outside the image (zero contributions).
    args = Args()
    x, off, mask = (t.requires_grad_() for t in make_inputs(args, offset_range=20.0))
    assert torch.autograd.gradcheck(lambda *t: dcnv3(*t, *args.tuple()), (x, off, mask),
                                    eps=1e-6, atol=1e-6)


@pytest.mark.parametrize('name', ['basic', 'nonsquare', 'remove_center'])
def test_gradcheck_reference(name):
    args = CASES[name]
    x, off, mask = (t.requires_grad_() for t in make_inputs(args))
    assert torch.autograd.gradcheck(lambda *t: dcnv3_pytorch(*t, *args.tuple()), (x, off, mask),
                                    eps=1e-6, atol=1e-6)
