"""Write a small ADE20K-format semantic-segmentation set of coloured shapes.

Layout (the ADEChallengeData2016 layout that mmseg's ``ADE20KDataset`` reads)::

    OUT/images/training/ADE_train_00000001.jpg     OUT/annotations/training/ADE_train_00000001.png
    OUT/images/validation/ADE_val_00000001.jpg     OUT/annotations/validation/ADE_val_00000001.png

Label maps are single-channel PNGs with the ADE20K convention: 0 is "other"/background (ignored
with ``reduce_zero_label=True``, which maps it to 255) and 1..K are the classes (the shapes
circle, square, triangle, ... of :mod:`internimage_mm.datasets.synthetic`). Images come in a few
different sizes. ``OUT/classes.txt`` lists the K class names.

    python tools/misc/make_synthetic_ade20k.py data/synthetic_ade20k --num-classes 4
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from internimage_mm.datasets.synthetic import SHAPES, check_num_classes, semantic_image

#: Default image sizes (width, height): landscape, square and portrait.
DEFAULT_SIZES = ((160, 120), (128, 128), (112, 144))
SPLITS = (('training', 'train'), ('validation', 'val'))


def parse_size(text: str) -> tuple[int, int]:
    """``'160x120'`` -> (160, 120) (width x height); ``'128'`` -> (128, 128)."""
    parts = text.lower().split('x')
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 32:
        raise ValueError(f'size must be S or WxH with sides >= 32 pixels, got {text!r}')
    return (values[0], values[-1])


def class_names(num_classes: int) -> list[str]:
    """The names of classes 1..num_classes (label 0 is "other")."""
    check_num_classes(num_classes)
    return [name for name, _ in SHAPES[:num_classes]]


def make_synthetic_ade20k(out: str | Path, num_classes: int = 4, train_images: int = 48,
                          val_images: int = 12,
                          sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
                          max_shapes: int = 5, seed: int = 0) -> Path:
    """Generate the set under ``out`` and return its path (see the module docstring).

    Image ``i`` of a split has size ``sizes[i % len(sizes)]``.
    """
    check_num_classes(num_classes)
    if train_images < 1 or val_images < 1:
        raise ValueError(f'need at least one image per split, got train_images={train_images}, '
                         f'val_images={val_images}')
    if not sizes:
        raise ValueError('sizes must not be empty')
    out = Path(out)
    rng = np.random.default_rng(seed)
    for (split, prefix), count in zip(SPLITS, (train_images, val_images)):
        img_dir, ann_dir = out / 'images' / split, out / 'annotations' / split
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img, labels = semantic_image(rng, tuple(sizes[i % len(sizes)]), num_classes,
                                         max_shapes)
            name = f'ADE_{prefix}_{i + 1:08d}'
            Image.fromarray(img).save(img_dir / f'{name}.jpg', quality=95)
            Image.fromarray(labels).save(ann_dir / f'{name}.png')
    (out / 'classes.txt').write_text('\n'.join(class_names(num_classes)) + '\n')
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='output folder')
    parser.add_argument('--num-classes', type=int, default=4,
                        help=f'classes 1..K, K <= {len(SHAPES)} (0 is background)')
    parser.add_argument('--train-images', type=int, default=48)
    parser.add_argument('--val-images', type=int, default=12)
    parser.add_argument('--size', nargs='+', type=parse_size, default=list(DEFAULT_SIZES),
                        metavar='WxH', help='image sizes, cycled (default: 160x120 128x128 '
                        '112x144)')
    parser.add_argument('--max-shapes', type=int, default=5, help='shapes per image, at most')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    out = make_synthetic_ade20k(args.out, args.num_classes, args.train_images, args.val_images,
                                args.size, args.max_shapes, args.seed)
    print(f'wrote {out} ({args.num_classes} classes, {args.train_images} training and '
          f'{args.val_images} validation images)')


if __name__ == '__main__':
    main()
