"""ImageNet-style pipeline end to end: synthetic data -> tools/train.py -> tools/test.py."""
import pickle

import pytest

from ._cli import REPO, metric, run_tool

CONFIG = REPO / 'configs' / 'classification' / 'internimage-tiny_1xb16-12e_synthetic-64px.py'


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic_imagenet')
    run_tool('misc/make_synthetic_imagenet.py', out, '--num-classes', 4, '--train-per-class', 32,
             '--val-per-class', 12, '--size', 64, cwd=out)
    return out


def _root(data):
    return [f'{k}.dataset.data_root={data}'
            for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]


def test_train_then_test_learns(data, tmp_path):
    work = tmp_path / 'work'
    out = run_tool('train.py', CONFIG, '--work-dir', work, '--cfg-options', *_root(data),
                   'train_cfg.max_epochs=8', cwd=tmp_path)
    ckpt = work / 'epoch_8.pth'
    assert ckpt.is_file(), out[-3000:]
    assert (work / 'last_checkpoint').read_text().strip().endswith('epoch_8.pth')

    preds, vis = tmp_path / 'preds.pkl', tmp_path / 'vis'
    out = run_tool('test.py', CONFIG, ckpt, '--work-dir', tmp_path / 'test', '--out', preds,
                   '--show-dir', vis, '--cfg-options', *_root(data), cwd=tmp_path)
    top1 = metric(out, 'accuracy/top1')
    assert top1 >= 60.0, f'top-1 {top1:.1f}% on held-out images; chance is 25%'
    results = pickle.loads(preds.read_bytes())
    assert len(results) == 4 * 12
    assert {'pred_label', 'gt_label'} <= set(results[0])
    assert len(list(vis.rglob('*.png'))) == 4 * 12

    out = run_tool('test.py', CONFIG, ckpt, '--tta', '--work-dir', tmp_path / 'tta',
                   '--cfg-options', *_root(data), cwd=tmp_path)
    assert metric(out, 'accuracy/top1') >= 60.0  # flip TTA (AverageClsScoreTTA) evaluated


def test_resume_continues_from_the_last_checkpoint(data, tmp_path):
    work = tmp_path / 'work'
    common = ['--work-dir', work, '--cfg-options', *_root(data), 'train_cfg.val_interval=100',
              'default_hooks.checkpoint.interval=1']
    run_tool('train.py', CONFIG, *common, 'train_cfg.max_epochs=1', cwd=tmp_path)
    out = run_tool('train.py', CONFIG, '--resume', *common, 'train_cfg.max_epochs=2',
                   cwd=tmp_path)
    assert 'resumed epoch: 1' in out
    assert (work / 'epoch_2.pth').is_file()


def test_amp_and_accumulation_flags_on_cpu(data, tmp_path):
    """``--amp`` without a GPU trains in bfloat16 autocast (AutocastOptimWrapper, no loss
    scaling) and learns; ``--accumulative-counts`` steps the optimizer every N iterations."""
    work = tmp_path / 'work'
    out = run_tool('train.py', CONFIG, '--amp', '--accumulative-counts', 2, '--work-dir', work,
                   '--cfg-options', *_root(data), 'train_cfg.max_epochs=8',
                   'train_cfg.val_interval=8', cwd=tmp_path)
    assert "type='AutocastOptimWrapper'" in out and 'accumulative_counts=2' in out
    assert (work / 'epoch_8.pth').is_file()
    top1 = metric(out, 'accuracy/top1')
    assert top1 >= 50.0, f'top-1 {top1:.1f}% after bf16 training; chance is 25%'


def test_bad_paths_give_clear_errors(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, str(REPO / 'tools' / 'test.py'), str(CONFIG),
                           str(tmp_path / 'missing.pth')], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode != 0
    assert 'missing.pth does not exist' in proc.stderr
