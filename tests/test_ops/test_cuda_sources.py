"""The CUDA kernels never rot untested: nvcc compiles them here even without a GPU."""
import shutil
import subprocess
from pathlib import Path

import pytest

KERNEL = (Path(__file__).resolve().parents[2] / 'ops_dcnv3' / 'csrc' / 'cuda' /
          'dcnv3_cuda_kernel.cu')


@pytest.mark.parametrize('arch', ['sm_80', 'sm_90'])
def test_kernel_compiles_with_nvcc(arch, tmp_path):
    nvcc = shutil.which('nvcc')
    if nvcc is None:
        pytest.skip('nvcc not on PATH')
    obj = tmp_path / f'dcnv3_{arch}.o'
    proc = subprocess.run([nvcc, '-c', '-std=c++17', '-O2', f'-arch={arch}', str(KERNEL), '-o',
                           str(obj)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert obj.stat().st_size > 0
    # Every launcher dtype is instantiated (float, double, half, bfloat16).
    syms = subprocess.run(['nm', '-C', str(obj)], capture_output=True, text=True).stdout
    for name in ('launch_forward', 'launch_backward'):
        assert f'dcnv3::{name}' in syms
    for t in ('__half', '__nv_bfloat16', 'double', 'float'):
        assert f'forward_kernel<{t}>' in syms, t
