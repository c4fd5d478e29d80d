"""Bad input raises a ValueError/TypeError naming the argument, on every path, never a crash."""
import pytest
import torch

from ops_dcnv3 import DCNv3Function, dcnv3, dcnv3_pytorch

from ._cases import Args, make_inputs


def _good():
    args = Args(group=2, group_channels=4)
    return args, list(make_inputs(args, batch=1, height=5, width=5))


def _call(fn, tensors, args):
    return fn(*tensors, *args.tuple())


@pytest.mark.parametrize('fn', [dcnv3, dcnv3_pytorch], ids=['compiled', 'reference'])
@pytest.mark.parametrize('mutate, error, match', [
    (lambda t, a: t.__setitem__(0, t[0][0]), ValueError, 'input must be a 4-D'),
    (lambda t, a: t.__setitem__(1, t[1].flatten(0, 1)), ValueError, 'offset must be a 4-D'),
    (lambda t, a: t.__setitem__(0, t[0][..., :6]), ValueError, 'group \\* group_channels'),
    (lambda t, a: t.__setitem__(1, t[1][..., :-2]), ValueError, 'offset must have shape'),
    (lambda t, a: t.__setitem__(2, t[2][..., :-1]), ValueError, 'mask must have shape'),
    (lambda t, a: t.__setitem__(2, t[2].float()), TypeError, 'dtype mismatch'),
    (lambda t, a: t.__setitem__(0, t[0].long()), TypeError, 'input must be a floating'),
    (lambda t, a: t.__setitem__(1, t[1].to('meta')), ValueError, 'device mismatch'),
    (lambda t, a: t.__setitem__(0, t[0].numpy()), TypeError, 'input must be a torch.Tensor'),
    (lambda t, a: setattr(a, 'kernel_h', -3), ValueError, 'kernel_h must be positive'),
    (lambda t, a: setattr(a, 'stride_w', 0), ValueError, 'stride_w must be positive'),
    (lambda t, a: setattr(a, 'pad_h', -1), ValueError, 'pad_h must be non-negative'),
    (lambda t, a: setattr(a, 'group', 0), ValueError, 'group must be positive'),
    (lambda t, a: setattr(a, 'group_channels', 2.0), TypeError, 'group_channels must be an int'),
    (lambda t, a: setattr(a, 'dilation_h', 9), ValueError, 'too small for kernel'),
])
def test_bad_input(fn, mutate, error, match):
    args, tensors = _good()
    mutate(tensors, args)
    with pytest.raises(error, match=match):
        _call(fn, tensors, args)


def test_remove_center_with_1x1_kernel():
    args = Args(kernel_h=1, kernel_w=1, pad_h=0, pad_w=0, remove_center=True)
    x = torch.randn(1, 4, 4, 8)
    with pytest.raises(ValueError, match='no sampling point'):
        dcnv3(x, torch.zeros(1, 4, 4, 0), torch.zeros(1, 4, 4, 0), *args.tuple())


def test_official_api_checks_im2col_step():
    args, (x, off, mask) = _good()
    a = args.tuple()
    with pytest.raises(ValueError, match='im2col_step'):
        DCNv3Function.apply(x, off, mask, *a[:-1], 0, a[-1])


def test_official_api_matches_and_accepts_any_batch():
    # The official op asserts batch % im2col_step == 0; ours takes any batch size.
    args = Args(group=2, group_channels=4)
    x, off, mask = (t.requires_grad_() for t in make_inputs(args, batch=3))
    a = args.tuple()
    out = DCNv3Function.apply(x, off, mask, *a[:-1], 2, a[-1])
    ref = dcnv3_pytorch(x, off, mask, *a)
    torch.testing.assert_close(out, ref)
    grads = torch.autograd.grad(out.sum(), (x, off, mask))
    ref_grads = torch.autograd.grad(ref.sum(), (x, off, mask))
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)


def test_compiled_binding_rejects_bad_sizes_without_crashing():
    # Direct callers of the C++ binding get a ValueError, not an out-of-bounds read.
    from ops_dcnv3 import _C
    x = torch.randn(1, 5, 5, 8)
    with pytest.raises(ValueError, match="offset has shape"):
        _C.forward(x, torch.randn(1, 5, 5, 3), torch.randn(1, 5, 5, 18), 3, 3, 1, 1, 1, 1, 1, 1,
                   2, 4, 1.0, False)


@pytest.mark.parametrize('shape, offset_shape, mask_shape', [
    ((1, 0, 4, 4), (1, 2, 6, 2), (1, 2, 6, 1)),   # height 0 (+ padding): used to segfault
    ((1, 4, 0, 4), (1, 6, 2, 2), (1, 6, 2, 1)),   # width 0
])
@pytest.mark.parametrize('fn', [dcnv3, dcnv3_pytorch], ids=['compiled', 'reference'])
def test_empty_image_with_padding_is_refused(fn, shape, offset_shape, mask_shape):
    args = (1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1.0)
    with pytest.raises(ValueError, match='input height and width must be at least 1'):
        fn(torch.randn(shape), torch.full(offset_shape, 0.5), torch.ones(mask_shape), *args)


@pytest.mark.parametrize('shape, offset_shape, mask_shape', [
    ((1, 0, 4, 4), (1, 2, 6, 2), (1, 2, 6, 1)),
    ((1, 4, 0, 4), (1, 6, 2, 2), (1, 6, 2, 1)),
])
def test_binding_refuses_empty_image(shape, offset_shape, mask_shape):
    # The C++ checks shared by the CPU and CUDA launchers, for direct callers of _C.
    from ops_dcnv3 import _C
    x, off, mask = torch.randn(shape), torch.full(offset_shape, 0.5), torch.ones(mask_shape)
    args = (1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1.0, False)
    with pytest.raises(ValueError, match='input height and width must be at least 1'):
        _C.forward(x, off, mask, *args)
    with pytest.raises(ValueError, match='input height and width must be at least 1'):
        _C.backward(torch.zeros(offset_shape[:3] + (4,)), x, off, mask, *args, 0)


def test_binding_output_size_floors_like_python():
    # (2 - 3) / 2 + 1 is 1 with C++ truncation but 0 with floor division (Python, Conv2d): the
    # binding must refuse what the Python layer refuses instead of returning a 1x1 output.
    from ops_dcnv3 import _C, output_size
    assert output_size(2, 0, 1, 3, 2) == 0
    x = torch.randn(1, 2, 2, 8)
    with pytest.raises(ValueError, match='too small for kernel'):
        _C.forward(x, torch.zeros(1, 1, 1, 36), torch.zeros(1, 1, 1, 18), 3, 3, 2, 2, 0, 0, 1, 1,
                   2, 4, 1.0, False)


@pytest.mark.parametrize('index, value, name', [
    (0, 2**32 + 3, 'kernel_h'),       # used to wrap to 3 when narrowed to int
    (2, 2**32 + 1, 'stride_h'),
    (4, 2**31, 'pad_h'),
    (6, -2**32 + 1, 'dilation_h'),
    (8, 2**32 + 2, 'group'),
    (9, 2**33 + 4, 'group_channels'),
])
def test_binding_range_checks_integer_arguments(index, value, name):
    from ops_dcnv3 import _C
    args = [3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0, False]
    args[index] = value
    x, off, mask = make_inputs(Args(), batch=1, height=5, width=5, dtype=torch.float32)
    with pytest.raises(ValueError, match=name):
        _C.forward(x, off, mask, *args)


def test_binding_range_checks_padded_extent():
    from ops_dcnv3 import _C
    x = torch.randn(1, 5, 5, 8)
    with pytest.raises(ValueError, match='input height \\+ 2 \\* pad_h'):
        _C.forward(x, torch.zeros(1, 5, 5, 36), torch.zeros(1, 5, 5, 18), 3, 3, 1, 1,
                   2**30, 1, 1, 1, 2, 4, 1.0, False)


def test_kernel_with_more_points_than_the_cpu_tables_hold_is_refused():
    # 33x33 = 1089 sampling points per group; the CPU point tables hold 1024.
    from ops_dcnv3.ops import dcnv3_backward
    args = Args(kernel_h=33, kernel_w=33, pad_h=0, pad_w=0, group=1, group_channels=2)
    x = torch.randn(1, 33, 33, 2)
    off, mask = torch.zeros(1, 1, 1, 2 * 1089), torch.full((1, 1, 1, 1089), 1 / 1089)
    with pytest.raises(RuntimeError, match='1089 sampling points per group .*up to 1024'):
        dcnv3(x, off, mask, *args.tuple())
    with pytest.raises(RuntimeError, match='1089 sampling points per group'):
        dcnv3_backward(torch.ones(1, 1, 1, 2), x, off, mask, *args.tuple())
