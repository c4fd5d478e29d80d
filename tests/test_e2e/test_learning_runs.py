"""Every pipeline learns (#15): seeded runs of the tiny synthetic configs through tools/train.py,
each against a threshold set from measured runs with margin, and against the score of the same
model before training (the optimizer at lr 0 for one iteration: the weights stay at their
initialisation). `make test-slow`; the figures and curves are in docs/learning_runs.md.
Each run takes 4-14 minutes on the 2-core machine (CB-DINO the longest).

Mask R-CNN and UperNet have their learning runs in test_detection_e2e.py and
test_segmentation_e2e.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ._cli import REPO, metric, run_tool

DET = REPO / 'configs' / 'detection'
SEG = REPO / 'configs' / 'segmentation'

# name: config, iterations, metrics and the thresholds they must pass after training. Measured
# here (2-core Xeon, 2026-12-03, seed 0): Cascade bbox/segm mAP 0.698/0.719 (untrained 0.000),
# DINO 0.274 at 400 iterations (0.001), CB-DINO 0.379 at 400 iterations (0.000), Mask2Former
# mIoU 98.97 (6.15);
# the thresholds leave a margin of about a quarter below those.
RUNS = {
    'cascade': (DET / 'cascade-mask-rcnn_internimage-tiny_fpn_1xb4-600iter_synthetic.py', 300,
                {'coco/bbox_mAP': 0.55, 'coco/segm_mAP': 0.55}),
    'dino': (DET / 'dino-4scale_internimage-tiny_1xb4-600iter_synthetic.py', 400,
             {'coco/bbox_mAP': 0.20}),
    'cb-dino': (DET / 'dino-4scale_cb-internimage-tiny_1xb4-600iter_synthetic.py', 400,
                {'coco/bbox_mAP': 0.28}),
    'mask2former': (SEG / 'mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128.py', 600,
                    {'mIoU': 85.0}),
}


def _data(kind: str, root: Path) -> list[str]:
    """Synthetic data under ``root`` and the cfg-options that point the config at it."""
    if kind == 'mask2former':
        data = root / 'ade'
        run_tool('misc/make_synthetic_ade20k.py', data, '--num-classes', 4, '--train-images', 64,
                 '--val-images', 16, cwd=root)
        return [f'{k}.dataset.data_root={data}'
                for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    run_tool('misc/make_synthetic_coco.py', root / 'data' / 'synthetic_coco', cwd=root)
    return []


def _run(config: Path, root: Path, work: Path, iters: int, options: list[str],
         *extra: str) -> str:
    return run_tool('train.py', config, '--work-dir', work, '--cfg-options', *options,
                    f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={max(1, iters // 3)}',
                    f'default_hooks.checkpoint.interval={iters}', 'randomness.seed=0', *extra,
                    cwd=root, timeout=3600)


@pytest.mark.slow
@pytest.mark.parametrize('kind', list(RUNS))
def test_learns(kind, tmp_path):
    config, iters, thresholds = RUNS[kind]
    options = _data(kind, tmp_path)
    untrained = _run(config, tmp_path, tmp_path / 'untrained', 1, options,
                     'optim_wrapper.optimizer.lr=0.0')
    out = _run(config, tmp_path, tmp_path / 'work', iters, options,
               f'param_scheduler.1.end={iters}')
    for name, threshold in thresholds.items():
        before, after = metric(untrained, name), metric(out, name)
        print(f'{kind}, {iters} iterations: {name} {before:.3f} untrained -> {after:.3f}')
        assert after >= threshold, (name, after)
        assert after > before + threshold / 2, (name, before, after)
    logs = list((tmp_path / 'work').rglob('vis_data/scalars.json'))
    assert logs, 'no mmengine JSON log'
    out = run_tool('analysis_tools/analyze_logs.py', 'plot_curve', logs[0], '--keys', 'loss',
                   *thresholds, '--out', tmp_path / 'curves.png', cwd=tmp_path)
    assert (tmp_path / 'curves.png').is_file()
