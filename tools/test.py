"""Evaluate a checkpoint: COCO (mmdet), ADE20K (mmseg) or ImageNet (mmpretrain) metrics.

    python tools/test.py CONFIG CHECKPOINT [--out results.pkl] [--show-dir vis/] [--tta]
    bash tools/dist_test.sh CONFIG CHECKPOINT 8
"""
from __future__ import annotations

import argparse
import os

from mmengine.config import Config, DictAction

from internimage_mm.apis import prepare_test_cfg, run, work_dir_for


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint (mmdet/mmseg/mmpretrain)')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the test logs and metrics go')
    parser.add_argument('--out', help='dump the raw predictions to this .pkl file')
    parser.add_argument('--show-dir', help='draw the predictions into this folder')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation (the config's tta_model/tta_pipeline)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    prepare_test_cfg(cfg, args.checkpoint, launcher=args.launcher, out=args.out,
                     show_dir=args.show_dir, tta=args.tta,
                     work_dir=work_dir_for(cfg, args.config, args.work_dir))
    run(cfg, 'test')


if __name__ == '__main__':
    main()
