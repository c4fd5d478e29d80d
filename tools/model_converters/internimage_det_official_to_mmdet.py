"""Convert an official InternImage detection checkpoint (mmdet 2.x era) to this toolbox's
mmdet 3.x models (configs/detection/).

    python tools/model_converters/internimage_det_official_to_mmdet.py \
        cascade_internimage_xl_fpn_3x_coco.pth cascade-mask-rcnn_internimage-xl_3x.pth \
        --config configs/detection/cascade-mask-rcnn_internimage-xl_fpn_ms-3x_coco.py

``--arch`` (``mask-rcnn``, ``cascade`` or ``dino``) is detected from the keys when omitted.
With ``--config`` the result is also checked key for key and shape for shape against the model
that config builds (on the meta device: no memory, no weights). Keys that no rename rule maps
(and, with ``--config``, keys the model needs but the checkpoint lacks) are listed by name and
nothing is written, unless ``--allow-missing``. The rename table is in
``internimage_mm/utils/det_checkpoint.py``. Exit status: 0 written, 1 incomplete (not written).
"""
from __future__ import annotations

import argparse
import sys

from internimage_mm.utils.checkpoint import config_state_dict
from internimage_mm.utils.det_checkpoint import (ARCHS, IncompleteConversionError,
                                                 convert_official_detector_checkpoint)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official detection checkpoint (path or URL)')
    parser.add_argument('dst', help='output path of the converted checkpoint')
    parser.add_argument('--arch', choices=ARCHS, default=None,
                        help='detector of the checkpoint (default: detected from its keys)')
    parser.add_argument('--config', default=None,
                        help='check the result against the model of this config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override settings of --config, e.g. model.num_queries=900')
    parser.add_argument('--allow-missing', action='store_true',
                        help='write the result even if keys are unmapped or missing '
                        '(they are still listed)')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reference = (config_state_dict(args.config, args.cfg_options, 'mmdet')
                 if args.config else None)
    try:
        report = convert_official_detector_checkpoint(
            args.src, args.dst, arch=args.arch, reference=reference,
            allow_missing=args.allow_missing)
    except IncompleteConversionError as err:
        print(f'error: {err}\nnothing written; pass --allow-missing to write it anyway',
              file=sys.stderr)
        return 1
    for line in report.problems():
        print(f'warning: {line}', file=sys.stderr)
    if report.dropped:
        print(f'dropped {len(report.dropped)} EMA buffer(s) (ema_*): the parameters already '
              'hold the EMA weights', file=sys.stderr)
    print(f'{report.summary()}\nsaved to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
