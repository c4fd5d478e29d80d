"""Convert an official InternImage segmentation checkpoint (mmseg 0.x era) to this toolbox's
mmseg 1.x models (configs/segmentation/).

    python tools/model_converters/internimage_seg_official_to_mmseg.py \
        upernet_internimage_t_512_160k_ade20k.pth upernet_internimage-t_ade20k_mmseg.pth \
        --config configs/segmentation/upernet_internimage-t_512x512_160k_ade20k.py

UperNet (UPerHead + FCNHead) keys keep their names; the official Mask2Former head's mmcv 1.x
layer names (``attentions.N``/``ffns.N``) become mmdet 3.x's (``self_attn``/``cross_attn``/
``ffn``), per the explicit table in ``internimage_mm/utils/seg_checkpoint.py``. The official
``meta.CLASSES``/``PALETTE`` become ``meta.dataset_meta``.

Keys no rule maps are listed by name and nothing is written, unless ``--allow-missing`` (then
they are dropped, still listed). With ``--config`` the result is also compared key for key and
shape for shape with the model that config builds (on the meta device: no memory, no
weights); missing, unexpected and mismatched keys are listed and likewise stop the conversion
unless ``--allow-missing`` (e.g. the COCO-Stuff Mask2Former, whose 171-class ``cls_embed``
does not fit the ADE20K config: mmengine's ``load_from`` skips it with a warning). Exit status:
0 written, 1 incomplete (not written).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official segmentation checkpoint (path or URL)')
    parser.add_argument('dst', help='output path of the converted checkpoint')
    parser.add_argument('--config', default=None,
                        help='check the result against the model of this config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override settings of --config, key=value')
    parser.add_argument('--allow-missing', action='store_true',
                        help='write the result even if keys are unmapped, missing, unexpected '
                        'or mismatched (they are still listed)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import torch
    from mmengine.runner.checkpoint import CheckpointLoader

    from internimage_mm.utils.checkpoint import config_state_dict
    from internimage_mm.utils.seg_checkpoint import (compare_with_model,
                                                     convert_official_segmentor, format_keys)

    args = parse_args(argv)
    checkpoint = CheckpointLoader.load_checkpoint(args.src, map_location='cpu')
    result = convert_official_segmentor(checkpoint)
    problems = []
    if result.unmapped:
        problems.append(f'{len(result.unmapped)} key(s) of {args.src} match no rename rule '
                        f'(not an official InternImage UperNet/Mask2Former checkpoint?):\n'
                        f'{format_keys(result.unmapped)}')
    if args.config:
        missing, unexpected, mismatched = compare_with_model(
            result.state_dict, config_state_dict(args.config, args.cfg_options, 'mmseg'))
        for what, keys in (('missing (the model has them, the checkpoint does not)', missing),
                           ('unexpected (not in the model)', unexpected),
                           ('with a different shape', mismatched)):
            if keys:
                problems.append(f'{len(keys)} key(s) {what} for {args.config}:\n'
                                f'{format_keys(keys)}')
    print(f'{args.src}: {len(result.state_dict)} keys mapped, {len(result.renamed)} of them '
          'renamed')
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems and not args.allow_missing:
        print(f'nothing written to {args.dst} (use --allow-missing to write the mapped keys '
              'anyway)', file=sys.stderr)
        return 1
    meta = dict(result.meta, converted_from=str(args.src))
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=result.state_dict, meta=meta), args.dst)
    print(f'saved {len(result.state_dict)} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
