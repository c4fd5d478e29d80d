"""One-command check of the DCNv3 operator on a CUDA machine (``make gpu-check``).

Made for a bare GPU machine that has PyTorch with CUDA, nvcc, pytest and hypothesis but none of
the OpenMMLab packages and no package registry (e.g. Python 3.12, torch 2.11 + CUDA 13):

1. builds ``ops_dcnv3`` in place (CUDA kernels for the GPU's architecture when a GPU and nvcc
   are there), against the torch that runs this script;
2. runs the operator tests (``tests/test_ops``), the GPU ones included;
3. runs ``benchmark_dcnv3.py``: CUDA rows in float32/float16/bfloat16 against a depthwise
   conv when a GPU is there, else the CPU rows;
4. prints a short report and writes it to ``--out`` (``report.md`` + the logs).

Without a GPU it says so and still runs the CPU part, so CI and a laptop can run it too.

Usage: python tools/misc/gpu_check.py [--out DIR] [--pytest-args ARGS] [--bench-args ARGS]
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / 'ops_dcnv3'


def _run(cmd: list[str], log: Path, env: dict[str, str], timeout: int,
         cwd: Path = REPO) -> tuple[int, float, str]:
    """Run ``cmd`` in ``cwd``, its output saved to ``log``; (exit code, seconds, output)."""
    start = time.perf_counter()
    print('$', shlex.join(cmd), flush=True)
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        code = 124
        out = ((e.stdout or b'').decode(errors='replace') if isinstance(e.stdout, bytes)
               else (e.stdout or '')) + f'\n[timed out after {timeout} s]'
    log.write_text(out)
    return code, time.perf_counter() - start, out


def _environment() -> dict[str, str]:
    import torch
    info = {
        'python': platform.python_version(),
        'torch': torch.__version__,
        'torch CUDA': str(torch.version.cuda),
        'CPU cores': str(os.cpu_count()),
        'GPU': 'none (torch.cuda.is_available() is False)',
    }
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        info['GPU'] = f'{torch.cuda.get_device_name()} (sm_{major}{minor})'
    nvcc = shutil.which('nvcc') or (Path(os.environ.get('CUDA_HOME', '/usr/local/cuda')) /
                                    'bin' / 'nvcc')
    try:
        out = subprocess.run([str(nvcc), '--version'], capture_output=True, text=True).stdout
        info['nvcc'] = re.search(r'release ([\d.]+)', out).group(1)
    except (OSError, AttributeError):
        info['nvcc'] = 'not found'
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=REPO / 'work_dirs' / 'gpu_check')
    parser.add_argument('--pytest-args', default='', help='extra pytest arguments, e.g. "-k gpu"')
    parser.add_argument('--bench-args', default='', help='extra benchmark_dcnv3.py arguments')
    parser.add_argument('--skip-build', action='store_true', help='use the extension as built')
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import torch
    gpu = torch.cuda.is_available()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(OPS), str(REPO), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
        PYTHONUNBUFFERED='1', MAX_JOBS=os.environ.get('MAX_JOBS', str(os.cpu_count() or 2)))
    if gpu and 'TORCH_CUDA_ARCH_LIST' not in env:
        env['TORCH_CUDA_ARCH_LIST'] = '{}.{}'.format(*torch.cuda.get_device_capability())
    info = _environment()
    print('\n'.join(f'{k}: {v}' for k, v in info.items()), flush=True)
    if not gpu:
        print('\nNo CUDA GPU: building and testing the CPU part only (GPU tests will skip).',
              flush=True)

    steps: list[tuple[str, str, float]] = []  # (step, result, seconds)
    ok = True

    if args.skip_build:
        steps.append(('build', 'skipped', 0.0))
    else:
        code, secs, out = _run([sys.executable, 'setup.py', 'build_ext', '--inplace'],
                               args.out / 'build.log', env, 1800, cwd=OPS)
        ok &= code == 0
        steps.append(('build ops_dcnv3' + (' (CPU + CUDA kernels)' if gpu else ' (CPU kernels)'),
                      'ok' if code == 0 else f'FAILED (exit {code}, see build.log)', secs))
        if code != 0:
            print(out[-4000:])

    probe = ('import ops_dcnv3, torch; print(ops_dcnv3.extension_available(), '
             'ops_dcnv3.cuda_kernels_available())')
    code, _, out = _run([sys.executable, '-c', probe], args.out / 'probe.log', env, 120)
    built = out.strip().splitlines()[-1] if code == 0 and out.strip() else 'import failed'
    kernels_ok = built == f'True {gpu}'
    ok &= kernels_ok
    steps.append(('extension / CUDA kernels available', built.replace(' ', ' / '), 0.0))

    pytest_cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rfEs',
                  'tests/test_ops', *shlex.split(args.pytest_args)]
    code, secs, out = _run(pytest_cmd, args.out / 'tests.log', env, 1800)
    summary = next((line.strip('= ') for line in reversed(out.splitlines())
                    if re.search(r'\d+ (passed|failed|error)', line)), f'no summary (exit {code})')
    ok &= code == 0
    steps.append(('operator tests (tests/test_ops)', summary, secs))

    bench_cmd = [sys.executable, 'tools/analysis_tools/benchmark_dcnv3.py',
                 '--device', 'cuda' if gpu else 'cpu', *shlex.split(args.bench_args)]
    code, secs, out = _run(bench_cmd, args.out / 'benchmark.log', env, 1200)
    ok &= code == 0
    steps.append(('benchmark_dcnv3.py', 'ok' if code == 0 else f'FAILED (exit {code})', secs))
    table = '\n'.join(line for line in out.splitlines()
                      if line.startswith(('|', '###', 'Targets')))

    report = ['# DCNv3 GPU check', '', *(f'- {k}: {v}' for k, v in info.items()), '',
              '| step | result | seconds |', '|---|---|---|',
              *(f'| {s} | {r} | {t:.0f} |' for s, r, t in steps), '', table, '',
              f'Overall: {"PASS" if ok else "FAIL"}' + ('' if gpu else ' (CPU only: no GPU)')]
    text = '\n'.join(report)
    (args.out / 'report.md').write_text(text + '\n')
    print('\n' + text, flush=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
