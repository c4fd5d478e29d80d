"""Every CPU kernel version (x86-64, x86-64-v3, x86-64-v4) against the reference.

The extension holds one version per x86-64 level, each with its own vector width, and runs the
highest the CPU supports. ``DCNV3_CPU_ISA`` selects a lower one, so each version this machine
can run is checked here, in a subprocess (the choice is made once per process), for every
compile-time group width and a runtime one, float32 and float64, with and without the fused
mask softmax, and the in-place GELU, offset-branch and LayerNorm kernels (``bias_gelu_``,
``dwconv_ln``, ``layer_norm``).
"""
import os
import subprocess
import sys

import pytest

from ops_dcnv3 import extension_available

pytestmark = pytest.mark.skipif(not extension_available(), reason='ops_dcnv3 not built')

LEVELS = ('x86-64', 'x86-64-v3', 'x86-64-v4')
NOT_SUPPORTED = 3  # the subprocess's exit code when the CPU lacks the level


def _running_version() -> str:
    """The version this process runs; skips where the build has one version only."""
    from ops_dcnv3 import _C
    isa = _C.cpu_kernel_isa()
    if isa not in LEVELS:
        pytest.skip('one kernel version (not a GCC x86-64 Linux build)')
    return isa

_CHECK = r'''
import sys
import torch
from ops_dcnv3 import _C, dcnv3, dcnv3_from_logits, dcnv3_pytorch
from tests.test_ops._cases import (Args, composed_from_logits, make_inputs, make_offset_mask,
                                   value_and_grads)

try:
    isa = _C.cpu_kernel_isa()
except RuntimeError as e:
    print(e)
    sys.exit(3 if 'supports at most' in str(e) else 1)
assert isa == sys.argv[1], (isa, sys.argv[1])

# 8, 16, 32, 64: compile-time widths (1, 2 or more vectors per group); 12: the runtime width
for gc in (8, 16, 32, 64, 12):
    for dtype, tol in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
        args = Args(group=3, group_channels=gc)
        inputs = make_inputs(args, 2, 7, 6, dtype)
        out, grads = value_and_grads(dcnv3, inputs, args, 1)
        ref, ref_grads = value_and_grads(dcnv3_pytorch, [t.double() for t in inputs], args, 1)
        for name, a, b in zip(('output', 'input', 'offset', 'mask'), [out, *grads],
                              [ref, *ref_grads]):
            torch.testing.assert_close(a.double(), b, rtol=tol, atol=tol,
                                       msg=f'{name} gc={gc} {dtype}')
        # the fused mask softmax (offsets and mask logits in one tensor), values and gradients
        x_om = make_offset_mask(args, 2, 7, 6, dtype, 0)
        out, grads = value_and_grads(dcnv3_from_logits, x_om, args, 1)
        ref, ref_grads = value_and_grads(lambda x, om, *a: composed_from_logits(x, om, args),
                                         x_om, args, 1)
        for name, a, b in zip(('output', 'input', 'offset_mask'), [out, *grads],
                              [ref, *ref_grads]):
            torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=f'fused {name} gc={gc}')
# the in-place GELU kernel of the same version
from tests.test_ops.test_bias_gelu import check_gelu_accuracy
worst = check_gelu_accuracy()
assert worst <= 1.0, f'bias_gelu_: error {worst:.2f}x its bound'
from tests.test_ops.test_dwconv_ln import check_dwconv_ln
worst = check_dwconv_ln()
assert worst < 2e-5, f'dwconv_ln: differs from the composition by {worst}'
from tests.test_ops.test_layer_norm import check_layer_norm
worst = check_layer_norm()
assert worst <= 2.0, f'layer_norm: error {worst:.2f}x ATen float32 error'
print('ok', isa)
'''


# A kernel call under a bad DCNV3_CPU_ISA: a RuntimeError on the calling thread, not a crash in
# a worker thread.
_CALL = r'''
import torch
from ops_dcnv3 import dcnv3
from tests.test_ops._cases import Args, make_inputs

args = Args(group=2, group_channels=16)
try:
    dcnv3(*make_inputs(args, 2, 7, 6, torch.float32), *args.tuple())
except RuntimeError as e:
    print(e)
    raise SystemExit(1)
'''


def _run(level: str, script: str = _CHECK) -> subprocess.CompletedProcess:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, DCNV3_CPU_ISA=level)
    return subprocess.run([sys.executable, '-c', script, level], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize('level', LEVELS)
def test_each_kernel_version_matches_reference(level):
    _running_version()
    result = _run(level)
    if result.returncode == NOT_SUPPORTED:
        pytest.skip(f'this CPU cannot run {level}: {result.stdout.strip()}')
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'ok {level}' in result.stdout


def test_default_is_the_highest_supported_version():
    isa = _running_version()
    flags = open('/proc/cpuinfo').read().split()
    expected = 'x86-64-v4' if 'avx512bw' in flags else 'x86-64-v3' if 'avx2' in flags \
        else 'x86-64'
    assert isa == expected


@pytest.mark.parametrize('value, message', [
    ('avx9', 'expected x86-64, x86-64-v3 or x86-64-v4'),
])
@pytest.mark.parametrize('script', [_CHECK, _CALL], ids=['kernel_isa', 'dcnv3'])
def test_unknown_version_is_a_clear_error(value, message, script):
    _running_version()
    result = _run(value, script)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f'DCNV3_CPU_ISA={value}: {message}' in result.stdout
