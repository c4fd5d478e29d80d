"""Randomised comparison of the compiled op against the pure-PyTorch reference."""
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_dcnv3 import dcnv3, dcnv3_pytorch, output_size
from ops_dcnv3.ops import dcnv3_backward

from ._cases import Args, make_inputs, num_threads, value_and_grads

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


@st.composite
def calls(draw):
    kernel_h = draw(st.sampled_from([1, 3, 5]))
    kernel_w = draw(st.sampled_from([1, 3, 5]))
    args = Args(kernel_h=kernel_h, kernel_w=kernel_w,
                stride_h=draw(st.integers(1, 2)), stride_w=draw(st.integers(1, 2)),
                pad_h=draw(st.integers(0, 2)), pad_w=draw(st.integers(0, 2)),
                dilation_h=draw(st.integers(1, 2)), dilation_w=draw(st.integers(1, 2)),
                group=draw(st.integers(1, 4)), group_channels=draw(st.sampled_from([1, 3, 8, 16])),
                offset_scale=draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])),
                remove_center=draw(st.booleans()) and kernel_h * kernel_w > 1)
    height = draw(st.integers(1, 9))
    width = draw(st.integers(1, 9))
    ho = output_size(height, args.pad_h, args.dilation_h, args.kernel_h, args.stride_h)
    wo = output_size(width, args.pad_w, args.dilation_w, args.kernel_w, args.stride_w)
    if ho < 1 or wo < 1:
        height += args.dilation_h * (args.kernel_h - 1)
        width += args.dilation_w * (args.kernel_w - 1)
    batch = draw(st.integers(0, 3))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**16))
    return args, batch, height, width, dtype, seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
def test_compiled_matches_reference(call):
    args, batch, height, width, dtype, seed = call
    inputs = make_inputs(args, batch, height, width, dtype,
                         generator=torch.Generator().manual_seed(seed))
    out, grads = value_and_grads(dcnv3, inputs, args, seed)
    ref_inputs = [t.double() for t in inputs]
    ref_out, ref_grads = value_and_grads(dcnv3_pytorch, ref_inputs, args, seed)
    tol = TOL[dtype]
    torch.testing.assert_close(out.double(), ref_out, rtol=tol, atol=tol)
    for name, a, b in zip(('input', 'offset', 'mask'), grads, ref_grads):
        torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol, msg=f'grad_{name}')


@pytest.mark.parametrize('strategy', [1, 2, 3])
def test_backward_strategies_agree(strategy):
    # Every CPU race-avoidance strategy (owner of a grad_input slice / atomic adds / bands of
    # rows with a grad_input copy each) is exact.
    args = Args(group=3, group_channels=5)
    x, off, mask = make_inputs(args, batch=3, height=9, width=8)
    grad_out = torch.randn(3, 9, 8, 15, dtype=torch.float64)
    got = dcnv3_backward(grad_out, x, off, mask, *args.tuple(), strategy=strategy)
    leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
    (dcnv3_pytorch(*leaves, *args.tuple()) * grad_out).sum().backward()
    for a, leaf in zip(got, leaves):
        torch.testing.assert_close(a, leaf.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('group_channels', [8, 3])
@pytest.mark.parametrize('strategy', [1, 2, 3])
def test_more_groups_than_a_point_table_holds(strategy, group_channels):
    # 120 groups of 9 points are 1080 table entries a pixel, more than a CPU point table holds
    # (1024): the forward, atomic adds and (one thread: one task of all groups, zeroing
    # grad_input as it goes) owner tasks take the groups in blocks; replicas have one group a
    # task. 8 channels: a compile-time group width; 3: the runtime one.
    args = Args(group=120, group_channels=group_channels)
    c = 120 * group_channels
    x, off, mask = make_inputs(args, batch=1, height=4, width=3)
    grad_out = torch.randn(1, 4, 3, c, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
    ref = dcnv3_pytorch(*leaves, *args.tuple())
    (ref * grad_out).sum().backward()
    torch.testing.assert_close(dcnv3(x, off, mask, *args.tuple()), ref.detach(), rtol=1e-10,
                               atol=1e-10)
    with num_threads(1):
        got = dcnv3_backward(grad_out, x, off, mask, *args.tuple(), strategy=strategy)
    for a, leaf in zip(got, leaves):
        torch.testing.assert_close(a, leaf.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_grad_input_is_not_at_the_inputs_page_offset(dtype):
    # The CPU backward allocates grad_input 1088 bytes (mod 4 KB) past the input, so that its
    # loads of input rows do not falsely wait on its stores to grad_input (4K aliasing); the
    # result is an ordinary contiguous tensor.
    args = Args()
    x, off, mask = make_inputs(args, batch=2, height=9, width=7, dtype=dtype)
    grad_out = torch.randn(2, 9, 7, x.shape[-1], dtype=dtype)
    for strategy in (1, 2, 3):
        gx = dcnv3_backward(grad_out, x, off, mask, *args.tuple(), strategy=strategy)[0]
        assert gx.shape == x.shape and gx.dtype == dtype and gx.is_contiguous()
        assert (gx.data_ptr() - x.data_ptr()) % 4096 == 1088
    leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
    (dcnv3_pytorch(*leaves, *args.tuple()) * grad_out).sum().backward()
    torch.testing.assert_close(gx, leaves[0].grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('group_channels', [8, 3])
def test_a_kernel_that_fills_a_point_table(group_channels):
    # 32x32 = 1024 points a group, all a CPU point table holds: the setup's vectors end at its
    # capacity (and write lanes past it), runs are one pixel.
    args = Args(kernel_h=32, kernel_w=32, pad_h=1, pad_w=1, group=2,
                group_channels=group_channels)
    x, off, mask = make_inputs(args, batch=1, height=33, width=34)
    assert off.shape[1:3] == (4, 5)
    grad_out = torch.randn(*off.shape[:3], 2 * group_channels, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
    ref = dcnv3_pytorch(*leaves, *args.tuple())
    (ref * grad_out).sum().backward()
    torch.testing.assert_close(dcnv3(x, off, mask, *args.tuple()), ref.detach(), rtol=1e-10,
                               atol=1e-10)
    for strategy in (1, 2, 3):
        got = dcnv3_backward(grad_out, x, off, mask, *args.tuple(), strategy=strategy)
        for a, leaf in zip(got, leaves):
            torch.testing.assert_close(a, leaf.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('batch,group,group_channels,threads', [
    (1, 5, 16, 2), (1, 7, 5, 3), (3, 4, 8, 2), (2, 3, 16, 4), (1, 2, 5, 4)])
def test_owner_strategy_splits_groups_into_blocks_exactly(batch, group, group_channels,
                                                          threads):
    # Owner tasks are (image, block of groups); the block count follows batch and threads
    # (here 1 to `group` blocks, uneven blocks included).
    args = Args(group=group, group_channels=group_channels)
    x, off, mask = make_inputs(args, batch=batch, height=7, width=6)
    grad_out = torch.randn(batch, 7, 6, group * group_channels, dtype=torch.float64)
    with num_threads(threads):
        got = dcnv3_backward(grad_out, x, off, mask, *args.tuple(), strategy=1)
    leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
    (dcnv3_pytorch(*leaves, *args.tuple()) * grad_out).sum().backward()
    for a, leaf in zip(got, leaves):
        torch.testing.assert_close(a, leaf.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('batch,group,height,threads,strategy', [
    (1, 1, 7, 4, 3), (1, 2, 7, 7, 3), (1, 1, 3, 16, 3), (2, 1, 5, 3, 3), (1, 1, 7, 16, 0),
    (1, 2, 6, 32, 0)])
def test_replica_strategy_splits_rows_into_bands_exactly(batch, group, height, threads,
                                                         strategy):
    # Replica tasks are (image, group, band of output rows), one grad_input copy per band:
    # 2 to `height` bands (uneven ones included); auto (0) picks them when batch * group is
    # small against the threads. The copies are summed in a fixed order: bit-identical reruns.
    args = Args(group=group, group_channels=5)
    x, off, mask = make_inputs(args, batch=batch, height=height, width=6)
    grad_out = torch.randn(batch, height, 6, group * 5, dtype=torch.float64)
    with num_threads(threads):
        got = dcnv3_backward(grad_out, x, off, mask, *args.tuple(), strategy=strategy)
        again = dcnv3_backward(grad_out, x, off, mask, *args.tuple(), strategy=strategy)
    leaves = [t.clone().requires_grad_() for t in (x, off, mask)]
    (dcnv3_pytorch(*leaves, *args.tuple()) * grad_out).sum().backward()
    for a, b, leaf in zip(got, again, leaves):
        torch.testing.assert_close(a, leaf.grad, rtol=1e-10, atol=1e-10)
        assert torch.equal(a, b)


@pytest.mark.parametrize('where', ['top_left', 'bottom_right', 'outside'])
@pytest.mark.parametrize('batch,group,threads,strategy', [
    (2, 4, 2, 1), (1, 4, 2, 1), (1, 3, 3, 1), (2, 2, 1, 0), (1, 1, 4, 3), (2, 2, 2, 2)])
def test_grad_input_untouched_pixels_are_zero(where, batch, group, threads, strategy):
    # grad_input starts as uninitialised memory: owner tasks zero their slice just ahead of the
    # scatter (the other strategies zero it first). Points that all land in one corner of the
    # image (or outside it) leave most pixels without a gradient: those must be exactly 0 even
    # when the allocator hands back memory full of NaN.
    args = Args(group=group, group_channels=16, stride_h=2)
    height, width = 12, 9
    x, off, mask = make_inputs(args, batch=batch, height=height, width=width,
                               dtype=torch.float32, offset_range=0.4)
    ho, wo = off.shape[1:3]
    ys = torch.arange(ho, dtype=torch.float32).view(1, ho, 1, 1) * args.stride_h
    xs = torch.arange(wo, dtype=torch.float32).view(1, 1, wo, 1)
    target = {'top_left': (0.3, 0.6), 'bottom_right': (height - 1.7, width - 1.6),
              'outside': (height + 5.0, -6.0)}[where]
    # offsets (dx, dy) that move every point's window near `target`
    off = off.view(batch, ho, wo, -1, 2)
    off = torch.stack([off[..., 0] + (target[1] - xs), off[..., 1] + (target[0] - ys)], -1)
    off = off.reshape(batch, ho, wo, -1).contiguous()
    grad_out = torch.randn(batch, ho, wo, group * 16)
    leaves = [t.double().requires_grad_() for t in (x, off, mask)]
    (dcnv3_pytorch(*leaves, *args.tuple()) * grad_out.double()).sum().backward()
    untouched = leaves[0].grad == 0
    assert untouched.float().mean() > 0.5  # most pixels get no gradient
    for _ in range(2):
        garbage = torch.full_like(x, float('nan'))  # freed: its block may serve grad_input
        del garbage
        with num_threads(threads):
            got = dcnv3_backward(grad_out, x, off, mask, *args.tuple(), strategy=strategy)
        assert torch.equal(got[0][untouched], torch.zeros_like(got[0][untouched]))
        for a, leaf in zip(got, leaves):
            torch.testing.assert_close(a.double(), leaf.grad, rtol=1e-4, atol=1e-4)


def test_non_contiguous_inputs():
    args = Args(group=2, group_channels=4)
    x, off, mask = make_inputs(args, batch=2, height=6, width=6)
    # Same values, strided memory: a transposed copy viewed back, and a channel-sliced tensor.
    x_nc = x.transpose(1, 2).contiguous().transpose(1, 2)
    off_nc = torch.cat([off, torch.zeros_like(off)], dim=-1)[..., :off.shape[-1]]
    mask_nc = mask.transpose(1, 2).contiguous().transpose(1, 2)
    assert not (x_nc.is_contiguous() or off_nc.is_contiguous() or mask_nc.is_contiguous())
    torch.testing.assert_close(dcnv3(x_nc, off_nc, mask_nc, *args.tuple()),
                               dcnv3_pytorch(x, off, mask, *args.tuple()))


def test_empty_batch_forward_backward():
    args = Args()
    x, off, mask = (t.requires_grad_() for t in make_inputs(args, batch=0))
    out = dcnv3(x, off, mask, *args.tuple())
    assert out.shape == (0, 7, 6, 8)
    out.sum().backward()
    assert x.grad.shape == x.shape and off.grad.shape == off.shape


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_reduced_precision_on_cpu_runs_in_float32(dtype):
    args = Args(group=2, group_channels=8)
    x, off, mask = make_inputs(args, batch=1, height=5, width=5, dtype=dtype)
    out = dcnv3(x, off, mask, *args.tuple())
    assert out.dtype == dtype
    ref = dcnv3_pytorch(x.double(), off.double(), mask.double(), *args.tuple())
    torch.testing.assert_close(out.double(), ref, rtol=2e-2, atol=2e-2)
