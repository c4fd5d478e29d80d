"""The CUDA kernels executed on the CPU: ``dcnv3_cuda_kernel.cu``, unmodified, compiled as C++
against stand-in CUDA headers (``cuda_host/``) and run on CPU threads, compared with the
pure-PyTorch reference and the CPU kernels in float32/float64/float16/bfloat16.

What the emulation checks: the index arithmetic, the grid-stride loops (with fewer blocks than
the work and in reverse block order), the atomics (blocks race on two OS threads), that every
output element is written (buffers start as NaN), the float16/bfloat16 conversions (no implicit
ones exist), and the launch configuration against the driver's limits. What it cannot check:
warp-level timing, memory coalescing, anything that needs a real GPU (``make gpu-check``).
"""
from __future__ import annotations

import math

import pytest
import torch

import ops_dcnv3
from ops_dcnv3 import dcnv3, dcnv3_pytorch

from ._cases import Args, make_inputs
from .cuda_host.build import HostKernels, LaunchMode, build, compiler

pytestmark = pytest.mark.skipif(compiler() is None, reason='g++ not found')

TOL = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 2e-3, torch.bfloat16: 2e-2}
THREADS = 256  # kThreads of the kernel file
# Fewer blocks than the work (one block; two blocks racing on two OS threads) makes the
# grid-stride loops wrap; reversed block order catches order assumptions.
MODES = [LaunchMode('plain'), LaunchMode('one_block', max_blocks=1),
         LaunchMode('two_blocks', max_blocks=2), LaunchMode('reversed', reverse=True)]

# name: (args, batch, height, width, offset_range)
CASES = {
    'default': (Args(), 2, 9, 8, 3.0),
    'stride2': (Args(stride_h=2, stride_w=2), 2, 9, 8, 3.0),
    'dilation2': (Args(dilation_h=2, dilation_w=2, pad_h=2, pad_w=2), 2, 9, 8, 3.0),
    'stride2_dilation2': (Args(stride_h=2, stride_w=2, dilation_h=2, dilation_w=2), 2, 11, 10, 3.0),
    'kernel1': (Args(kernel_h=1, kernel_w=1, pad_h=0, pad_w=0), 2, 9, 8, 3.0),
    'kernel5': (Args(kernel_h=5, kernel_w=5, pad_h=2, pad_w=2), 2, 9, 8, 3.0),
    'kernel3x5': (Args(kernel_h=3, kernel_w=5, pad_h=1, pad_w=2), 2, 9, 8, 3.0),
    'kernel5x3_pad_h_only': (Args(kernel_h=5, kernel_w=3, pad_h=2, pad_w=0), 2, 9, 8, 3.0),
    'group1': (Args(group=1, group_channels=8), 2, 9, 8, 3.0),
    'group3_gc5': (Args(group=3, group_channels=5), 2, 9, 8, 3.0),
    'group4_gc16': (Args(group=4, group_channels=16), 1, 8, 8, 3.0),
    'group8_gc2': (Args(group=8, group_channels=2), 2, 9, 8, 3.0),
    'remove_center': (Args(remove_center=True), 2, 9, 8, 3.0),
    'remove_center_kernel5': (Args(kernel_h=5, kernel_w=5, pad_h=2, pad_w=2, remove_center=True),
                              1, 8, 9, 3.0),
    'offset_scale_half': (Args(offset_scale=0.5), 2, 9, 8, 3.0),
    'offset_scale2': (Args(offset_scale=2.0), 2, 9, 8, 3.0),
    'far_outside': (Args(), 2, 9, 8, 40.0),
    'four_images': (Args(group=3, group_channels=3), 4, 9, 8, 3.0),
    'one_pixel_image': (Args(), 3, 1, 1, 1.5),
    'wide_strip': (Args(kernel_h=3, kernel_w=5, pad_h=1, pad_w=2, group=2), 2, 3, 21, 4.0),
}


@pytest.fixture(scope='module')
def host(tmp_path_factory) -> HostKernels:
    return HostKernels(build(tmp_path_factory.getbasetemp() / 'cuda_host'))


def _case(name: str, dtype: torch.dtype):
    args, batch, height, width, offset_range = CASES[name]
    seed = sum(map(ord, name))
    x, off, mask = make_inputs(args, batch, height, width, dtype, offset_range,
                               generator=torch.Generator().manual_seed(seed))
    grad_out = torch.randn(batch, off.shape[1], off.shape[2], x.shape[3],
                           generator=torch.Generator().manual_seed(seed + 1),
                           dtype=torch.float64).to(dtype)
    return args, (x, off, mask), grad_out


def _reference(args: Args, inputs, grad_out):
    """float64 reference on the (already rounded) inputs: output and input/offset/mask grads."""
    leaves = [t.detach().to(torch.float64, copy=True).requires_grad_() for t in inputs]
    out = dcnv3_pytorch(*leaves, *args.tuple())
    (out * grad_out.double()).sum().backward()
    return out.detach(), [t.grad for t in leaves]


def _cpu_kernels(args: Args, inputs, grad_out):
    """The C++ CPU kernels (float16/bfloat16 run there in float32)."""
    assert ops_dcnv3.extension_available(), 'ops_dcnv3._C is not built'
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = dcnv3(*leaves, *args.tuple())
    (out * grad_out).sum().backward()
    return out.detach(), [t.grad for t in leaves]


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, what: str) -> None:
    assert not actual.isnan().any(), f'{what}: NaN (an element the kernel never wrote?)'
    scale = max(1.0, expected.abs().max().item()) if expected.numel() else 1.0
    torch.testing.assert_close(actual.double(), expected.double(), rtol=tol, atol=tol * scale,
                               msg=lambda m: f'{what}: {m}')


_REFERENCES: dict = {}


def _cached_reference(name: str, dtype: torch.dtype):
    if (name, dtype) not in _REFERENCES:
        args, inputs, grad_out = _case(name, dtype)
        _REFERENCES[name, dtype] = (args, inputs, grad_out, _reference(args, inputs, grad_out),
                                    _cpu_kernels(args, inputs, grad_out))
    return _REFERENCES[name, dtype]


@pytest.mark.parametrize('mode', MODES, ids=lambda m: m.name)
@pytest.mark.parametrize('dtype', list(TOL), ids=lambda d: str(d).split('.')[-1])
@pytest.mark.parametrize('name', list(CASES))
def test_cuda_kernels_match_reference_and_cpu(host, name, dtype, mode):
    args, inputs, grad_out, (ref_out, ref_grads), (cpu_out, cpu_grads) = \
        _cached_reference(name, dtype)
    tol = TOL[dtype]
    out = host.forward(*inputs, args.tuple(), mode)
    assert out.dtype == dtype
    _assert_close(out, ref_out, tol, 'output vs reference')
    _assert_close(out, cpu_out, tol, 'output vs CPU kernels')
    grads = host.backward(grad_out, *inputs, args.tuple(), mode)
    for what, g, r, c in zip(('grad_input', 'grad_offset', 'grad_mask'), grads, ref_grads,
                             cpu_grads):
        assert g.dtype == dtype
        _assert_close(g, r, tol, f'{what} vs reference')
        _assert_close(g, c, tol, f'{what} vs CPU kernels')


def test_capped_modes_make_the_grid_stride_loops_wrap():
    """The capped modes test the loops only where the work exceeds their blocks."""
    wraps = {m.name: [0, 0] for m in MODES if m.max_blocks}
    for name in CASES:
        args, (x, off, _), _ = _case(name, torch.float32)
        pixels = off.shape[0] * off.shape[1] * off.shape[2]
        for m in MODES:
            if m.max_blocks:
                wraps[m.name][0] += pixels * x.shape[3] > m.max_blocks * THREADS
                wraps[m.name][1] += pixels * args.group > m.max_blocks * THREADS
    assert wraps['one_block'][0] >= len(CASES) - 1 and wraps['one_block'][1] >= len(CASES) // 2
    assert wraps['two_blocks'][0] >= len(CASES) - 3


def _non_finite_case(integer_locations: bool):
    args = Args()
    x, off, mask = make_inputs(args, 2, 6, 6, torch.float64)
    off, mask = off.clone(), mask.clone()
    if integer_locations:
        off[:, ::2] = 0.0  # rows 0, 2, 4: two corners of each point weigh exactly 0
    mask[..., ::3] = 0.0  # mask * weight is 0 at every corner of these points
    grad_out = torch.randn(x.shape, dtype=torch.float64)
    grad_out[0, 2, 2, :3] = float('nan')
    grad_out[1, 4, 0, 5] = float('nan')
    grad_out[1, 3, 5, 5] = float('inf')
    grad_out[0, 1, 0, 1] = float('-inf')
    return args, (x, off, mask), grad_out


def _assert_same_non_finite(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert torch.equal(actual.isnan(), expected.isnan()), f'{what}: NaN pattern of grad_input'
    assert torch.equal(actual.isinf(), expected.isinf()), f'{what}: inf pattern of grad_input'
    finite = expected.isfinite()
    torch.testing.assert_close(actual[finite], expected[finite], rtol=1e-10, atol=1e-10)
    assert torch.equal(actual[expected.isinf()], expected[expected.isinf()])


def test_non_finite_grad_output_propagates_as_in_the_reference(host):
    """NaN/inf in grad_output reaches grad_input as in the reference, on the CUDA and the CPU
    kernels alike: through corners whose mask * weight is 0 too, and an inf without turning
    into NaN at an out-of-image corner's clamped position."""
    args, inputs, grad_out = _non_finite_case(integer_locations=False)
    ref = _reference(args, inputs, grad_out)[1][0]
    assert ref.isnan().any() and ref.isinf().any()
    _assert_same_non_finite(_cpu_kernels(args, inputs, grad_out)[1][0], ref, 'CPU kernels')
    _assert_same_non_finite(host.backward(grad_out, *inputs, args.tuple())[0], ref,
                            'CUDA kernels')


def test_non_finite_grad_output_at_integer_locations_cpu_equals_cuda(host):
    """At exactly integer locations a corner's bilinear weight is exactly 0 in both kernels, and
    both still pass NaN through it. (The reference is not compared here: grid_sample rounds
    through normalised coordinates, so its weight there is 0 or 1e-16 by chance.)"""
    args, inputs, grad_out = _non_finite_case(integer_locations=True)
    cpu = _cpu_kernels(args, inputs, grad_out)[1][0]
    assert cpu.isnan().any() and cpu.isinf().any()
    _assert_same_non_finite(host.backward(grad_out, *inputs, args.tuple())[0], cpu,
                            'CUDA kernels vs CPU kernels')


# Deliberate bugs: each must make the comparison fail.
MUTANTS = {
    'dx_dy_swapped': {
        'load(offset + oi + 1), s);\n  const A w = location<A>(base_location<A>('
        'centre_w(p, px.wo), grid_dw<A>(p, i)),\n                          load(offset + oi), s);':
        'load(offset + oi), s);\n  const A w = location<A>(base_location<A>('
        'centre_w(p, px.wo), grid_dw<A>(p, i)),\n'
        '                          load(offset + oi + 1), s);',
    },
    'missing_atomic_add': {
        'atomicAdd(grad_image_g + e[k] + c, static_cast<Acc>(a[k] * goc));':
        'if (k != 3) atomicAdd(grad_image_g + e[k] + c, static_cast<Acc>(a[k] * goc));',
    },
    'wrong_image_stride': {
        'const int64_t image_stride = static_cast<int64_t>(p.height_in) * p.width_in * C;\n'
        '  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; '
        'idx < total;\n       idx += static_cast<int64_t>(blockDim.x) * gridDim.x) {\n'
        '    const int channel':
        'const int64_t image_stride = static_cast<int64_t>(p.height_out) * p.width_in * C;\n'
        '  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; '
        'idx < total;\n       idx += static_cast<int64_t>(blockDim.x) * gridDim.x) {\n'
        '    const int channel',
    },
}


@pytest.mark.parametrize('mutant', list(MUTANTS))
def test_broken_kernels_are_caught(tmp_path_factory, mutant):
    broken = HostKernels(build(tmp_path_factory.getbasetemp() / 'cuda_host',
                               mutations=MUTANTS[mutant]))
    failures = []
    for name in ('default', 'stride2'):
        args, inputs, grad_out, (ref_out, ref_grads), _ = _cached_reference(name, torch.float64)
        results = [('output', broken.forward(*inputs, args.tuple()), ref_out)]
        results += zip(('grad_input', 'grad_offset', 'grad_mask'),
                       broken.backward(grad_out, *inputs, args.tuple()), ref_grads)
        for what, actual, expected in results:
            try:
                _assert_close(actual, expected, TOL[torch.float64], what)
            except AssertionError:
                failures.append((name, what))
    assert failures, f'mutant {mutant} passed the comparison'


def test_launch_limits_are_those_of_the_driver(host):
    assert host.try_launch((1, 1, 1), (1024, 1, 1)) == 0
    assert host.try_launch((2**31 - 1, 65535, 65535), (32, 32, 1)) == 0
    assert host.try_launch((1, 1, 1), (1025, 1, 1)) != 0
    assert host.try_launch((1, 1, 1), (32, 32, 2)) != 0
    assert host.try_launch((2**31, 1, 1), (256, 1, 1)) != 0
    assert host.try_launch((1, 65536, 1), (256, 1, 1)) != 0
    assert host.try_launch((0, 1, 1), (256, 1, 1)) != 0
    assert host.try_launch((1, 1, 1), (256, 1, 1), shared_mem=48 * 1024 + 1) != 0


@pytest.mark.parametrize('batch, size, channels', [
    (1, 7, 8),                    # one partial block
    (64, 512, 1024),              # 2^34 outputs: 2^26 blocks
    (2**14, 4096, 4096),          # 2^50 outputs: more blocks than a grid may have
])
def test_grid_for_huge_inputs(host, batch, size, channels):
    """The computed grid stays within the driver's limits and the grid-stride loop covers all
    work, however large the input (nothing is executed)."""
    args = (1, 1, 1, 1, 0, 0, 1, 1, channels // 8, 8, 1.0, False)
    fwd = host.dry_run_forward(args, batch, size, size)
    bwd = host.dry_run_backward(args, batch, size, size)
    for launch, total in ((fwd, batch * size * size * channels),
                          (bwd, batch * size * size * (channels // 8))):
        assert launch['error'] == 0, launch
        gx = launch['grid'][0]
        assert launch['block'] == (THREADS, 1, 1)
        assert 1 <= gx <= 2**31 - 1 and launch['grid'][1:] == (1, 1)
        assert gx == min(math.ceil(total / THREADS), 2**30)
