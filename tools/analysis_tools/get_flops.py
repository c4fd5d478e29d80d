"""Parameters and FLOPs of a config's model, with the official InternImage DCNv3 convention.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W | --shape S] [--cfg-options ...]

Works for every task: the config's ``default_scope`` (``mmpretrain``, ``mmdet``, ``mmseg``)
picks the registry that builds the model. The model's tensor forward (no post-processing, no
loss) is counted by mmengine's FlopAnalyzer (one multiply-add = one FLOP) on one random input,
padded to a multiple of ``--size-divisor``, and the official analytic cost of the DCNv3
sampling cores is added (see :mod:`internimage_mm.analysis.flops`).

``--convention mmcv1`` counts like the official mmcv 1.x counter (only modules of the types it
knew; no einsum, no functional attention, no deformable sampling): use it for the rows of heads
built on attention (Mask2Former, DINO), whose paper FLOPs were counted that way.

Default input (H x W): classification the config's test crop size; detection 800 x 1280;
segmentation 512 x 2048 (the official scripts' defaults).
"""
from __future__ import annotations

import argparse
import os.path as osp
import time
from collections.abc import Sequence

from mmengine.config import Config, DictAction

#: task -> default (H, W) of the official scripts (classification: the config's crop size)
DEFAULT_HW = {'classification': None, 'detection': (800, 1280), 'segmentation': (512, 2048)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Count the parameters and FLOPs of a model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='input size: H W, or S for S x S (default: see the module doc)')
    parser.add_argument('--size-divisor', type=int, default=32,
                        help='pad H and W up to a multiple of this (0: no padding)')
    parser.add_argument('--convention', choices=['mmengine', 'mmcv1'], default='mmengine',
                        help='what is counted: every traced op with a FLOPs rule (mmengine), or '
                        'only the module types the official mmcv 1.x counter hooked (mmcv1)')
    parser.add_argument('--device', default='cpu', help='device to build and run the model on')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (mmengine syntax)')
    args = parser.parse_args(argv)
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error('--shape takes one value (square) or two (H W)')
    return args


def _crop_size(cfg: Config) -> tuple[int, int] | None:
    """(H, W) of a classification config's test input: the last crop of its test (else val)
    pipeline, else its last resize. mmpretrain sizes are ints or (w, h)."""
    for key in ('test_dataloader', 'val_dataloader'):
        pipeline = ((cfg.get(key) or {}).get('dataset') or {}).get('pipeline') or []
        crop = resize = None
        for step in pipeline:
            kind = step.get('type', '')
            if 'Crop' in kind and step.get('crop_size') is not None:
                crop = step['crop_size']
            elif 'Resize' in kind and step.get('scale') is not None:
                resize = step['scale']
        size = crop if crop is not None else resize
        if size is not None:
            return (int(size), int(size)) if isinstance(size, int) else (int(size[1]),
                                                                          int(size[0]))
    return None


def main(argv: Sequence[str] | None = None) -> dict:
    """Print the table row for the config; return the numbers (also used by the tests)."""
    from internimage_mm.analysis.flops import count_model, format_flops, format_params
    from internimage_mm.apis import build_model, config_task

    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)

    try:
        task = config_task(cfg)
    except ValueError as e:
        raise SystemExit(str(e)) from e
    model = build_model(cfg, device=args.device).eval()
    if args.shape is not None:
        hw = (args.shape[0], args.shape[-1])
    else:
        hw = DEFAULT_HW[task] or _crop_size(cfg) or (224, 224)

    start = time.perf_counter()
    result = count_model(model, hw, size_divisor=args.size_divisor,
                         convention=args.convention)
    elapsed = time.perf_counter() - start
    c, h, w = result.input_shape

    name = osp.splitext(osp.basename(args.config))[0]
    if (h, w) != tuple(hw):
        print(f'input {hw[0]}x{hw[1]} padded to {h}x{w} (size divisor {args.size_divisor})')
    print(f'{task}: counted {format_flops(result.counted_flops)} ({args.convention} convention) '
          f'+ DCNv3 (analytic) {format_flops(result.dcnv3_flops)}; counting took {elapsed:.1f} s')
    print('| config | params | FLOPs | input shape |')
    print('|---|---|---|---|')
    print(f'| {name} | {result.params:,} ({format_params(result.params)}) | '
          f'{format_flops(result.flops)} | {c}x{h}x{w} |')
    return dict(config=name, task=task, params=result.params, flops=result.flops,
                counted_flops=result.counted_flops, dcnv3_flops=result.dcnv3_flops,
                input_shape=result.input_shape, convention=args.convention)


if __name__ == '__main__':
    main()
