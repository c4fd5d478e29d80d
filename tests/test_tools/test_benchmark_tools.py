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


def test_benchmark_model_inference_and_train_step(tmp_path):
    png = tmp_path / 'speed.png'
    out = _run(REPO / 'tools/analysis_tools/benchmark_model.py', TINY, '--shape', '64',
               '--batch', '2', '--iters', '1', '--train', '--no-compare', '--modes', 'eager',
               'bf16', 'onnxruntime', '--profile', '--plot', png)
    rows = [line.split(' | ')[1] for line in out.splitlines()
            if line.startswith('| internimage-tiny')]
    assert rows == ['inference', 'inference, bf16', 'inference, onnxruntime', 'train step',
                    'train step, bf16']
    assert '(ONNX: DCNv3 as GridSample)' in out
    shares = [float(line.split(' | ')[1].rstrip('% |')) for line in out.splitlines()
              if line.startswith(('| projections', '| depthwise', '| norms', '| DCNv3 core',
                                  '| MLP', '| rest'))]
    assert len(shares) == 6 and abs(sum(shares) - 100) < 0.5 and min(shares) >= 0
    assert png.read_bytes()[:4] == b'\x89PNG'
