"""What the ``tools/model_converters/`` scripts share: convert an official checkpoint file,
optionally check it against a config's model, write it in mmengine's layout."""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import torch

from ..converters import (
    ConversionReport,
    Converter,
    IncompleteConversionError,
    dataset_meta,
    detect_converter,
)
from ..models.backbones.checkpoint import extract_state_dict, read_checkpoint
from .builder import config_state_dict


def convert_checkpoint(src: str, dst: str, converter: Converter | None = None, *,
                       config: str | None = None, cfg_options: dict[str, Any] | None = None,
                       key: str | None = None,
                       allow_incomplete: bool = False) -> ConversionReport:
    """Load ``src`` (path or URL), convert it (``converter`` detected from its keys when None;
    checked key for key and shape for shape against ``config``'s model when given) and save
    ``{'state_dict': ..., 'meta': ...}`` to ``dst``, loadable by mmengine (``load_from``,
    ``tools/test.py``). The official ``meta['CLASSES']``/``['PALETTE']`` become
    ``meta['dataset_meta']``. Nothing is written when the conversion raises.

    Raises:
        IncompleteConversionError: keys unmapped (or, against ``config``, missing, unexpected,
            of another shape), unless ``allow_incomplete``.
        ValueError: ``src`` has no official layout we know, or no entry ``key``.
    """
    checkpoint = read_checkpoint(src)
    weights = checkpoint
    if key is not None:
        if key not in checkpoint:
            raise ValueError(f'{src} has no entry {key!r}; entries: {list(checkpoint)}')
        weights = checkpoint[key]
    if converter is None:
        converter = detect_converter(extract_state_dict(weights))
        if converter is None:
            keys = list(extract_state_dict(weights))[:5]
            raise ValueError(f'{src} is not an official InternImage checkpoint we know (first '
                             f'keys: {keys})')
    reference = config_state_dict(config, cfg_options) if config else None
    state_dict, report = converter.convert(weights, reference, allow_incomplete)
    meta: dict[str, Any] = dict(converted_from=os.path.basename(str(src)),
                                converter=converter.name)
    classes = dataset_meta(checkpoint)
    if classes:
        meta['dataset_meta'] = classes
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    torch.save({'state_dict': state_dict, 'meta': meta}, dst)
    return report


def converter_cli(description: str, converters: dict[str, Converter],
                  argv: Sequence[str] | None = None) -> int:
    """The command line of a converter script; exit status 0 written, 1 not written."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='official checkpoint (path or URL)')
    parser.add_argument('dst', help='output path of the converted checkpoint')
    if len(converters) > 1:
        parser.add_argument('--arch', choices=list(converters), default=None,
                            help='model of the checkpoint (default: detected from its keys)')
    parser.add_argument('--config', default=None,
                        help='check the result against the model of this config')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override settings of --config, key=value')
    parser.add_argument('--key', default=None,
                        help="checkpoint entry holding the weights, e.g. 'model_ema' "
                        "(default: 'state_dict', else 'model', else the file itself)")
    parser.add_argument('--allow-missing', action='store_true',
                        help='write the result even if keys are unmapped, missing, unexpected '
                        'or of another shape (they are still listed)')
    args = parser.parse_args(argv)
    arch = getattr(args, 'arch', None)
    converter = converters[arch] if arch else (
        next(iter(converters.values())) if len(converters) == 1 else None)
    try:
        report = convert_checkpoint(args.src, args.dst, converter, config=args.config,
                                    cfg_options=args.cfg_options, key=args.key,
                                    allow_incomplete=args.allow_missing)
    except (IncompleteConversionError, ValueError) as err:
        print(f'error: {err}\nnothing written to {args.dst} (--allow-missing writes the mapped '
              'keys anyway)', file=sys.stderr)
        return 1
    if report.converter not in {c.name for c in converters.values()}:
        print(f'warning: {args.src} is a {report.converter} checkpoint', file=sys.stderr)
    for line in report.problems():
        print(f'warning: {line}', file=sys.stderr)
    if report.dropped:
        print(f'dropped {len(report.dropped)} EMA buffer(s) (ema_*): the parameters already '
              'hold the EMA weights', file=sys.stderr)
    print(f'{report.summary()}\nsaved to {args.dst}')
    return 0
