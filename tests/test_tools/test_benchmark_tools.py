"""The benchmark tools run and print their tables (smoke tests: timings are not asserted)."""
import subprocess
import sys

from ..conftest import REPO

TINY = REPO / 'configs' / 'classification' / 'internimage-tiny_1xb16-12e_synthetic-64px.py'


def _run(*args):
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_benchmark_dcnv3_prints_table_and_targets():
    out = _run(REPO / 'tools/analysis_tools/benchmark_dcnv3.py', '--device', 'cpu',
               '--repeats', '1', '--shapes', '1,8,8,32,2')
    assert '| 1,8,8,32,2 |' in out and 'official/op f+b' in out and 'bwd/fwd <= 3x' in out
    assert 'Targets:' in out


def test_benchmark_model_inference_and_train_step():
    out = _run(REPO / 'tools/analysis_tools/benchmark_model.py', TINY, '--shape', '64',
               '--batch', '2', '--iters', '1', '--train', '--no-compare')
    rows = [line for line in out.splitlines() if line.startswith('| internimage-tiny')]
    assert len(rows) == 2 and 'inference' in rows[0] and 'train step' in rows[1]
