"""The benchmark tools run and print their tables (smoke tests: timings are not asserted)."""
import importlib.util
import subprocess
import sys

import pytest

from internimage_mm.analysis.timing import interleave, median_time, quartiles, round_ratios

from ..conftest import REPO

TINY = REPO / 'configs' / 'classification' / 'internimage-tiny_1xb16-12e_synthetic-64px.py'


def _run(*args):
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_benchmark_dcnv3_prints_table_and_targets():
    out = _run(REPO / 'tools/analysis_tools/benchmark_dcnv3.py', '--device', 'cpu',
               '--repeats', '1', '--shapes', '1,8,8,32,2', '4,7,7,512,32', '--strategies')
    assert '| 1,8,8,32,2 |' in out and 'official/op f+b' in out and 'bwd/fwd <= 3x' in out
    assert 'Targets:' in out and 'hypervisor (steal)' in out
    # a shape given by its sizes keeps its InternImage name; the target ratio has quartiles
    row = next(line for line in out.splitlines() if line.startswith('| T stage4 | 4,7,7,512,32'))
    assert row.split(' | ')[8].endswith(']')
    strategy_rows = [line for line in out.split('CPU backward strategies')[1].splitlines()
                     if line.startswith('| 1,8,8,32,2')]
    assert len(strategy_rows) == 1 and strategy_rows[0].count('x)') == 4


def test_benchmark_model_inference_and_train_step(tmp_path):
    png = tmp_path / 'speed.png'
    out = _run(REPO / 'tools/analysis_tools/benchmark_model.py', TINY, '--shape', '64',
               '--batch', '2', '--iters', '1', '--train', '--no-compare', '--modes', 'eager',
               'bf16', 'onnxruntime', '--profile', '--plot', png, '--rounds', '1')
    rows = [line.split(' | ')[1] for line in out.splitlines()
            if line.startswith('| internimage-tiny')]
    assert rows == ['inference', 'inference, bf16', 'inference, onnxruntime', 'train step',
                    'train step, bf16']
    assert '(ONNX: DCNv3 as GridSample)' in out
    parts = [line.split(' | ')[1:] for line in out.splitlines()
             if line.startswith(('| projections', '| offset branch', '| block norms',
                                 '| DCNv3 core', '| MLP', '| rest'))]
    assert len(parts) == 6
    for column in (0, 1):  # plain PyTorch ops, as shipped: shares of the total
        shares = [float(p[column].split('%')[0]) for p in parts]
        assert abs(sum(shares) - 100) < 0.5 and min(shares) >= 0, shares
    assert png.read_bytes()[:4] == b'\x89PNG'
    assert 'CPU time taken by the hypervisor (steal)' in out


def _benchmark_model():
    """tools/analysis_tools/benchmark_model.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location(
        'benchmark_model', REPO / 'tools/analysis_tools/benchmark_model.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_model_benchmark_takes_ratios_within_each_round():
    tool = _benchmark_model()

    alone = {k: dict(params_m=1.0, peak_mb=10.0)
             for k in ('m (compiled DCNv3)', 'm (pure-PyTorch DCNv3)', 'ConvNeXt-T')}
    # the machine halves its speed for rounds 2-3: the per-round ratios stay 1.2 / 0.5
    times = {'m (compiled DCNv3)': [1.0, 2.0, 2.0, 1.0, 1.0],
             'm (pure-PyTorch DCNv3)': [0.5, 1.0, 1.0, 0.5, 0.5],
             'ConvNeXt-T': [1.2, 2.4, 2.4, 1.2, 1.1]}
    row = tool.summarise(alone, times, batch=8)['m (compiled DCNv3)']
    assert row['images_per_s'] == 8.0 and row['peak_mb'] == 10.0
    assert row['vs_convnext'] == 1.2 and row['vs_convnext_q1'] == 1.2
    assert row['vs_pure'] == 0.5
    # the reference against itself
    assert tool.summarise(alone, times, 8)['ConvNeXt-T']['vs_convnext'] == 1.0


def test_rounds_with_hypervisor_steal_are_redone():
    calls = []
    # steal readings (s) before/after each round: rounds 2 and 4 lose 10 s, far above 5%
    readings = iter([0, 0, 0, 10, 10, 10, 10, 20, 20, 20, 20, 20])
    steps = {'a': lambda: calls.append('a'), 'b': lambda: calls.append('b')}
    res = interleave(steps, 3, 0.05, lambda: next(readings), cpus=2)
    assert res['redone'] == 2 and res['steal_share'] == 0.0
    assert len(res['times']['a']) == len(res['times']['b']) == 3
    assert calls == ['a', 'b'] * 5  # every round runs every step, in turn
    # at most `rounds` rounds are redone; no steal reading (not Linux): every round is kept
    res = interleave(steps, 2, 0.05, iter(range(0, 1000, 10)).__next__, cpus=2)
    assert res['redone'] == 2 and len(res['times']['a']) == 2 and res['steal_share'] > 0.5
    res = interleave(steps, 2, 0.05, lambda: None, cpus=2)
    assert res['redone'] == 0 and len(res['times']['b']) == 2


def test_interleave_warms_syncs_and_thins_slow_steps():
    calls = []
    steps = {'fast': lambda: calls.append('fast'), 'slow': lambda: calls.append('slow')}
    res = interleave(steps, 4, steal_seconds=lambda: None, warm=True,
                     sync=lambda: calls.append('sync'), every={'slow': 2})
    # a warm call before each timed one, each followed by sync; the slow step every other round
    round_with_slow = ['fast', 'sync'] * 2 + ['slow', 'sync'] * 2
    assert calls == (round_with_slow + ['fast', 'sync'] * 2) * 2
    assert [t is None for t in res['times']['slow']] == [False, True, False, True]
    assert all(t is not None for t in res['times']['fast'])
    # ratios pair the rounds in which both ran; medians skip the rounds not run
    assert round_ratios([4.0, None, 9.0, 2.0], [2.0, 1.0, 3.0, None]) == [2.0, 3.0]
    assert median_time([3.0, None, 1.0, None, 2.0]) == 2.0
    assert quartiles([5.0]) == (5.0, 5.0, 5.0)
    assert quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)


def test_a_failed_worker_reports_its_whole_traceback(monkeypatch):
    tool = _benchmark_model()

    # a long chained traceback after many warnings: a tail of the output would cut its start
    warnings = 'UserWarning: something deprecated\n' * 200
    trace = ('Traceback (most recent call last):\n  File "a.py", line 1\nKeyError: "x"\n\n'
             'During handling of the above exception, another exception occurred:\n\n'
             'Traceback (most recent call last):\n' + '  File "b.py", line 2\n' * 150
             + 'ValueError: no model named m\n')
    failed = subprocess.CompletedProcess([], 1, stdout='', stderr=warnings + trace)
    monkeypatch.setattr(tool.subprocess, 'run', lambda *a, **k: failed)
    with pytest.raises(SystemExit) as err:
        tool._worker({'name': 'm'})
    message = str(err.value)
    assert message.startswith('benchmark of m failed:\nTraceback (most recent call last):')
    assert 'KeyError: "x"' in message and message.endswith('ValueError: no model named m\n')
    assert 'UserWarning' not in message
