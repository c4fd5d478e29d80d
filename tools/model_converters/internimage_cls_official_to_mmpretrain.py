"""Convert an official InternImage classification checkpoint to mmpretrain's layout.

    python tools/model_converters/internimage_cls_official_to_mmpretrain.py \
        internimage_t_1k_224.pth internimage-t_in1k_mmpretrain.pth

The result loads into ``ImageClassifier(backbone=InternImage(...), head=InternImageClsHead(...))``
(or ``InternImageAttnPoolHead`` for H), e.g. with ``load_from`` or ``tools/test.py``. The backbone
itself needs no conversion: ``init_cfg=dict(type='Pretrained', checkpoint=<official .pth>)``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from internimage_mm.utils.checkpoint import convert_official_classifier


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output path of the converted checkpoint')
    parser.add_argument('--key', default=None,
                        help="checkpoint entry holding the weights, e.g. 'model_ema' "
                        "(default: 'state_dict', else 'model', else the file itself)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    if args.key is not None:
        if args.key not in checkpoint:
            raise SystemExit(f'{args.src} has no entry {args.key!r}; entries: {list(checkpoint)}')
        checkpoint = checkpoint[args.key]
    state_dict = convert_official_classifier(checkpoint)
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=dict(converted_from=str(args.src))), args.dst)
    print(f'saved {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
