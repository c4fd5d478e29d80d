"""Write a small COCO-format instance segmentation set of coloured shapes.

Layout (mmdet ``CocoDataset``, as ``data/coco``)::

    OUT/annotations/instances_train2017.json   OUT/train2017/000000000001.jpg ...
    OUT/annotations/instances_val2017.json     OUT/val2017/000000000001.jpg ...

Images have different sizes (sides drawn from ``[min_size, max_size]``) and hold a few shapes
(``internimage_mm.datasets.synthetic``), one category per shape kind, each with its typical colour.
Every visible shape is an instance: polygon ``segmentation`` (an RLE where the mask has a hole,
which polygons cannot express), ``area`` (visible pixels), ``bbox`` and ``iscrowd=0``. The cases
a loader and the COCO metric must handle are all there:

* category ids with gaps (1, 3, 5, ...), as in COCO's 1..90, so the id -> label mapping matters;
* crowds: some images hold a clump of small shapes of one category annotated as a single
  ``iscrowd=1`` region with an uncompressed RLE (as COCO's crowds);
* a few images with no annotation at all (every 10th, from the 4th);
* slivers of occluded shapes smaller than ``min_area`` pixels are not annotated;
* train split only: tiny shapes (a few pixels) annotated as ordinary instances, and a few
  degenerate boxes under one pixel wide (as the handful in COCO train2017) that mmdet skips.

    python tools/misc/make_synthetic_coco.py data/synthetic_coco --num-classes 3
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from internimage_mm.datasets.synthetic import (
    SHAPES,
    background,
    check_num_classes,
    draw_shape,
    mask_bbox,
    mask_has_holes,
    mask_to_polygons,
    mask_to_rle,
    paint,
    random_shapes,
)

SPLITS = ('train2017', 'val2017')


def category_id(label: int) -> int:
    """COCO category id of 0-based label ``label``: 1, 3, 5, ... (ids with gaps)."""
    return 2 * label + 1


def _overlay(img: np.ndarray, rng: np.random.Generator, masks: list[np.ndarray],
             category: int, centres: list[tuple[float, float]], radii: list[float]) -> np.ndarray:
    """Paint shapes of ``category`` on top of ``img``; hide them from ``masks``; return union."""
    h, w = img.shape[:2]
    union = np.zeros((h, w), dtype=np.uint8)
    for (cx, cy), r in zip(centres, radii):
        m = draw_shape(SHAPES[category][0], (w, h), cx, cy, r)
        paint(img, m, category, rng)
        union |= m
    for m in masks:
        m[union.astype(bool)] = 0
    return union


def _scene(rng: np.random.Generator, index: int, size: tuple[int, int], num_classes: int,
           max_shapes: int, train: bool):
    """One image: (RGB array, [(category, mask, iscrowd)], degenerate box or None)."""
    w, h = size
    if index % 10 == 3:  # no annotation at all
        return background(rng, size), [], None
    img, shapes = random_shapes(rng, size, num_classes, max_shapes, min_radius=0.1,
                                max_radius=0.25)
    objects = [(s.category, s.mask, 0) for s in shapes]
    side = min(w, h)
    if index % 5 == 1:  # a crowd: a clump of small shapes of one category
        cat = int(rng.integers(num_classes))
        spread = 0.12 * side
        cx, cy = rng.uniform(spread, w - spread), rng.uniform(spread, h - spread)
        n = int(rng.integers(4, 7))
        centres = [(float(cx + rng.uniform(-spread, spread) * 0.7),
                    float(cy + rng.uniform(-spread, spread) * 0.7)) for _ in range(n)]
        radii = [float(rng.uniform(0.03, 0.05) * side) for _ in range(n)]
        union = _overlay(img, rng, [m for _, m, _ in objects], cat, centres, radii)
        objects.append((cat, union, 1))
    if train and index % 4 == 2:  # tiny shapes (a few pixels)
        for _ in range(int(rng.integers(1, 3))):
            cat, r = int(rng.integers(num_classes)), float(rng.uniform(3.5, 5.0))
            centre = (float(rng.uniform(r, w - r)), float(rng.uniform(r, h - r)))
            m = _overlay(img, rng, [m for _, m, _ in objects], cat, [centre], [r])
            objects.append((cat, m, 0))
    degenerate = None
    if train and index % 8 == 0:  # a sub-pixel-wide box (mmdet's CocoDataset drops it)
        x, y = float(rng.uniform(0, w - 3)), float(rng.uniform(0, h - 3))
        degenerate = (int(rng.integers(num_classes)), [x, y, 0.6, 2.0])
    return img, objects, degenerate


def _annotation(ann_id: int, img_id: int, category: int, mask: np.ndarray, iscrowd: int,
                min_area: int) -> dict | None:
    area = int(mask.sum())
    box = mask_bbox(mask)
    if box is None or area < min_area:
        return None
    if iscrowd or mask_has_holes(mask):
        segmentation: list | dict = mask_to_rle(mask)
    else:
        segmentation = mask_to_polygons(mask, min_area=min(4.0, min_area))
        if not segmentation:
            return None
    return dict(id=ann_id, image_id=img_id, category_id=category_id(category),
                segmentation=segmentation, area=float(area), bbox=list(box), iscrowd=iscrowd)


def make_split(out: Path, split: str, num_images: int, rng: np.random.Generator,
               num_classes: int, min_size: int, max_size: int, max_shapes: int,
               min_area: int) -> dict:
    """Write ``out/<split>/*.jpg`` and return the split's COCO dict (not yet saved)."""
    (out / split).mkdir(parents=True, exist_ok=True)
    train = split.startswith('train')
    images, annotations = [], []
    for index in range(num_images):
        img_id = index + 1
        w, h = (int(v) for v in rng.integers(min_size, max_size + 1, size=2))
        img, objects, degenerate = _scene(rng, index, (w, h), num_classes, max_shapes, train)
        file_name = f'{img_id:012d}.jpg'
        Image.fromarray(img).save(out / split / file_name, quality=95)
        images.append(dict(id=img_id, file_name=file_name, width=w, height=h))
        for category, mask, iscrowd in objects:
            ann = _annotation(len(annotations) + 1, img_id, category, mask, iscrowd, min_area)
            if ann is not None:
                annotations.append(ann)
        if degenerate is not None:
            category, (x, y, bw, bh) = degenerate
            annotations.append(dict(
                id=len(annotations) + 1, image_id=img_id, category_id=category_id(category),
                segmentation=[[x, y, x + bw, y, x + bw, y + bh, x, y + bh]],
                area=float(bw * bh), bbox=[x, y, bw, bh], iscrowd=0))
    categories = [dict(id=category_id(i), name=name, supercategory='shape')
                  for i, (name, _) in enumerate(SHAPES[:num_classes])]
    return dict(
        info=dict(description=f'synthetic shapes ({split})', version='1.0', year=2023,
                  contributor='internimage-mm tools/misc/make_synthetic_coco.py'),
        licenses=[], images=images, annotations=annotations, categories=categories)


def make_synthetic_coco(out: str | Path, num_classes: int = 3, train_images: int = 120,
                        val_images: int = 30, min_size: int = 160, max_size: int = 320,
                        max_shapes: int = 4, min_area: int = 16, seed: int = 0) -> Path:
    """Generate the set under ``out`` (see the module docstring) and return its path."""
    check_num_classes(num_classes)
    if not 32 <= min_size <= max_size:
        raise ValueError(f'need 32 <= min_size <= max_size, got {min_size}, {max_size}')
    if train_images < 1 or val_images < 1:
        raise ValueError(f'need at least one image per split, got {train_images}, {val_images}')
    out = Path(out)
    (out / 'annotations').mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in zip(SPLITS, (train_images, val_images)):
        coco = make_split(out, split, n, rng, num_classes, min_size, max_size, max_shapes,
                          min_area)
        (out / 'annotations' / f'instances_{split}.json').write_text(json.dumps(coco))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out', help='output folder (e.g. data/synthetic_coco)')
    parser.add_argument('--num-classes', type=int, default=3,
                        help=f'categories, the first N of {[n for n, _ in SHAPES]}')
    parser.add_argument('--train-images', type=int, default=120)
    parser.add_argument('--val-images', type=int, default=30)
    parser.add_argument('--min-size', type=int, default=160, help='smallest image side')
    parser.add_argument('--max-size', type=int, default=320, help='largest image side')
    parser.add_argument('--max-shapes', type=int, default=4, help='most shapes per image')
    parser.add_argument('--min-area', type=int, default=16,
                        help='visible pixels below which a shape is not annotated')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    out = make_synthetic_coco(args.out, args.num_classes, args.train_images, args.val_images,
                              args.min_size, args.max_size, args.max_shapes, args.min_area,
                              args.seed)
    counts = {s: len(json.loads((out / 'annotations' / f'instances_{s}.json').read_text())[
        'annotations']) for s in SPLITS}
    print(f'wrote {out}: {args.num_classes} classes, {args.train_images} train images '
          f'({counts["train2017"]} annotations), {args.val_images} val images '
          f'({counts["val2017"]} annotations)')


if __name__ == '__main__':
    main()
