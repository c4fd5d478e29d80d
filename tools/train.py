"""Train a detector, segmentor or classifier from a config (mmdet / mmseg / mmpretrain).

The config's ``default_scope`` decides which package's registries build it; mmengine's Runner
does the rest. Examples::

    python tools/train.py configs/detection/mask-rcnn_internimage-t_fpn_8xb2-1x_coco.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume            # latest checkpoint
    python tools/train.py CONFIG --cfg-options train_dataloader.batch_size=4
    bash tools/dist_train.sh CONFIG 8                                        # torchrun
    bash tools/dist_train.sh CONFIG 8 --strategy fsdp --amp                  # H models
"""
from __future__ import annotations

import argparse
import os

from mmengine.config import Config, DictAction

from internimage_mm.apis import STRATEGIES, prepare_train_cfg, run, work_dir_for


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (mmdet/mmseg/mmpretrain config)')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or (no value) from the latest '
                        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (GPU: AmpOptimWrapper; CPU: bfloat16 '
                        'AutocastOptimWrapper)')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default=None,
                        help='autocast dtype for --amp (default: float16 on GPU, bfloat16 on '
                        'CPU)')
    parser.add_argument('--strategy', choices=list(STRATEGIES), default=None,
                        help="shard the model with mmengine's FlexibleRunner: fsdp (torch "
                        'FSDP, CPU or GPU) or deepspeed (ZeRO-3, GPU); needs a distributed '
                        'launcher (dist_train.sh / slurm_train.sh)')
    parser.add_argument('--accumulative-counts', type=int, default=None, metavar='N',
                        help='gradient accumulation: one optimizer step every N iterations')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale the lr by total batch / the config's auto_scale_lr")
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
    prepare_train_cfg(cfg, launcher=args.launcher, resume=args.resume, amp=args.amp,
                      amp_dtype=args.amp_dtype, accumulative_counts=args.accumulative_counts,
                      auto_scale_lr=args.auto_scale_lr, strategy=args.strategy,
                      work_dir=work_dir_for(cfg, args.config, args.work_dir))
    run(cfg, 'train')


if __name__ == '__main__':
    main()
