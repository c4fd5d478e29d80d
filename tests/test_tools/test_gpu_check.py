"""`make gpu-check` on a machine without a GPU: says so, still builds, tests and benchmarks the
CPU part, and writes its report."""
import subprocess
import sys

import torch

from ..conftest import REPO


def test_gpu_check_runs_the_cpu_part_without_a_gpu(tmp_path):
    out = tmp_path / 'gpu_check'
    proc = subprocess.run(
        [sys.executable, 'tools/misc/gpu_check.py', '--out', str(out),
         '--pytest-args', '-k "golden or bad_input"',
         '--bench-args', '--repeats 1 --shapes 1,8,8,16,2'],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (out / 'report.md').read_text()
    for log in ('build.log', 'tests.log', 'benchmark.log'):
        assert (out / log).is_file()
    assert '| build ops_dcnv3' in report and '| ok |' in report
    assert 'passed' in report and 'failed' not in report
    assert '| 1,8,8,16,2 | 1,8,8,16,2 | float32 |' in report
    if not torch.cuda.is_available():
        assert 'No CUDA GPU' in proc.stdout
        assert 'True / False' in report
        assert 'Overall: PASS (CPU only: no GPU)' in report
