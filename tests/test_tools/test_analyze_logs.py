"""analyze_logs.py: mmengine JSON logs -> curves of several runs in one PNG; clear errors."""
from __future__ import annotations

import json

import pytest

from internimage_mm.analysis.logs import load_json_log, plot_curves

from ..conftest import REPO


def _write_log(path, losses, maps):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, loss in enumerate(losses, 1):
        lines.append({'lr': 1e-4, 'loss': loss, 'loss_cls': loss / 2, 'step': i * 10})
        if i % 2 == 0:  # as mmengine logs it in iteration-based runs: step = epoch = 0
            lines.append({'coco/bbox_mAP': maps[i // 2 - 1], 'step': 0})
    path.write_text('\n'.join(json.dumps(x) for x in lines) + '\n')
    return path


def test_reads_train_and_val_records(tmp_path):
    log = load_json_log(_write_log(tmp_path / 'a' / '20261203_010101' / 'vis_data' /
                                   'scalars.json', [3., 2., 1., .5], [.1, .4]))
    assert len(log.train) == 4 and len(log.val) == 2
    assert log.series('coco/bbox_mAP') == ([20, 40], [.1, .4])
    assert {'loss', 'loss_cls', 'lr', 'coco/bbox_mAP'} <= set(log.keys())


def test_plots_several_runs_to_png(tmp_path):
    a = _write_log(tmp_path / 'mask' / '20261203_010101' / 'vis_data' / 'scalars.json',
                   [3., 2., 1., .5], [.1, .4])
    b = _write_log(tmp_path / 'dino' / '20261203_020202' / 'vis_data' / 'scalars.json',
                   [4., 3., 2.], [.2])
    out = plot_curves([load_json_log(a), load_json_log(b)], ['loss', 'coco/bbox_mAP'],
                      tmp_path / 'curves.png')
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and out.stat().st_size > 5000


def test_cli_and_clear_errors(tmp_path):
    import subprocess
    import sys
    a = _write_log(tmp_path / 'r.json', [1., .5], [.3])
    proc = subprocess.run([sys.executable, str(REPO / 'tools/analysis_tools/analyze_logs.py'),
                           'plot_curve', str(a), '--keys', 'loss', '--out',
                           str(tmp_path / 'o.png')], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / 'o.png').is_file()
    with pytest.raises(KeyError, match="none of the keys.*'mIoU'.*has"):
        plot_curves([load_json_log(a)], ['mIoU'], tmp_path / 'x.png')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_json_log(tmp_path / 'missing.json')
    (tmp_path / 'bad.json').write_text('{"loss": 1}\nnot json\n')
    with pytest.raises(ValueError, match='bad.json:2'):
        load_json_log(tmp_path / 'bad.json')
