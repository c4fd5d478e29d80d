"""Write a small ImageNet-format classification set of coloured shapes.

Layout (mmpretrain ``CustomDataset``), for ``--format folder``::

    OUT/train/<class>/<class>_00000.png    OUT/val/<class>/<class>_00000.png

and for ``--format annfile`` the images live in ``OUT/train`` / ``OUT/val`` with
``OUT/meta/{train,val}.txt`` lines ``<relative path> <label>`` and ``OUT/meta/classes.txt``.

    python tools/misc/make_synthetic_imagenet.py data/synthetic_imagenet --num-classes 4
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from internimage_mm.datasets.synthetic import SHAPES, check_num_classes, classification_image


def make_synthetic_imagenet(out: str | Path, num_classes: int = 4, train_per_class: int = 40,
                            val_per_class: int = 10, size: int = 64, fmt: str = 'folder',
                            seed: int = 0) -> Path:
    """Generate the set under ``out`` and return its path (see the module docstring)."""
    check_num_classes(num_classes)
    if fmt not in ('folder', 'annfile'):
        raise ValueError(f"format must be 'folder' or 'annfile', got {fmt!r}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    classes = [name for name, _ in SHAPES[:num_classes]]
    for split, per_class in (('train', train_per_class), ('val', val_per_class)):
        lines = []
        for label, name in enumerate(classes):
            folder = out / split / name if fmt == 'folder' else out / split
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = classification_image(rng, (size, size), label)
                path = folder / f'{name}_{i:05d}.png'
                Image.fromarray(img).save(path)
                lines.append(f'{path.relative_to(out / split).as_posix()} {label}')
        if fmt == 'annfile':
            (out / 'meta').mkdir(parents=True, exist_ok=True)
            (out / 'meta' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    if fmt == 'annfile':
        (out / 'meta' / 'classes.txt').write_text('\n'.join(classes) + '\n')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='output folder')
    parser.add_argument('--num-classes', type=int, default=4)
    parser.add_argument('--train-per-class', type=int, default=40)
    parser.add_argument('--val-per-class', type=int, default=10)
    parser.add_argument('--size', type=int, default=64, help='image side in pixels')
    parser.add_argument('--format', dest='fmt', default='folder', choices=['folder', 'annfile'])
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    out = make_synthetic_imagenet(args.out, args.num_classes, args.train_per_class,
                                  args.val_per_class, args.size, args.fmt, args.seed)
    print(f'wrote {out} ({args.num_classes} classes, {args.train_per_class}+{args.val_per_class} '
          f'images per class, {args.fmt} format)')


if __name__ == '__main__':
    main()
