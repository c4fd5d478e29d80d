"""Synthetic, learnable images of coloured shapes for tests and demos (no download needed).

Every category is a shape with a characteristic colour (jittered), drawn on a noisy background,
so a small network learns it in minutes on a CPU. The same drawing code feeds the ImageNet-
style classification set, the COCO instance set and the ADE20K-style semantic set
(``tools/misc/make_synthetic_*.py``): it returns the pixel mask of each shape too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

#: name, RGB base colour. Index = category id (0-based).
SHAPES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ('circle', (220, 40, 40)),
    ('square', (40, 200, 60)),
    ('triangle', (50, 80, 230)),
    ('cross', (230, 200, 30)),
    ('ring', (200, 60, 210)),
    ('diamond', (40, 200, 210)),
    ('bar', (240, 130, 20)),
    ('star', (150, 150, 150)),
)


@dataclass
class Shape:
    """One drawn shape: category index, binary mask [H, W] and its bounding box (x, y, w, h)."""

    category: int
    mask: np.ndarray
    bbox: tuple[float, float, float, float]


def _polygon(kind: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if kind == 'triangle':
        return [(cx, cy - r), (cx - r * 0.95, cy + r * 0.8), (cx + r * 0.95, cy + r * 0.8)]
    if kind == 'diamond':
        return [(cx, cy - r), (cx + r * 0.7, cy), (cx, cy + r), (cx - r * 0.7, cy)]
    if kind == 'star':
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            a = np.pi / 2 + i * np.pi / 5
            pts.append((cx + rad * np.cos(a), cy - rad * np.sin(a)))
        return pts
    return None


def draw_shape(kind: str, size: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    """Binary mask [H, W] (uint8) of shape ``kind`` centred at (cx, cy) with radius r."""
    w, h = size
    img = Image.new('L', (w, h), 0)
    d = ImageDraw.Draw(img)
    box = [cx - r, cy - r, cx + r, cy + r]
    poly = _polygon(kind, cx, cy, r)
    if poly is not None:
        d.polygon(poly, fill=1)
    elif kind == 'circle':
        d.ellipse(box, fill=1)
    elif kind == 'square':
        d.rectangle([cx - r * 0.8, cy - r * 0.8, cx + r * 0.8, cy + r * 0.8], fill=1)
    elif kind == 'cross':
        t = r * 0.35
        d.rectangle([cx - r, cy - t, cx + r, cy + t], fill=1)
        d.rectangle([cx - t, cy - r, cx + t, cy + r], fill=1)
    elif kind == 'ring':
        d.ellipse(box, fill=1)
        d.ellipse([cx - r * 0.5, cy - r * 0.5, cx + r * 0.5, cy + r * 0.5], fill=0)
    elif kind == 'bar':
        d.rectangle([cx - r, cy - r * 0.3, cx + r, cy + r * 0.3], fill=1)
    else:
        raise ValueError(f'unknown shape {kind!r}; known: {[s for s, _ in SHAPES]}')
    return np.array(img, dtype=np.uint8)  # a writable copy (random_shapes edits masks)


def background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A dim, noisy RGB background [H, W, 3] (uint8)."""
    w, h = size
    base = rng.integers(20, 90, size=3)
    noise = rng.normal(0, 12, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def paint(img: np.ndarray, mask: np.ndarray, category: int, rng: np.random.Generator) -> None:
    """Fill ``mask`` in ``img`` (in place) with the category colour, jittered."""
    colour = np.array(SHAPES[category][1], dtype=np.float64) + rng.normal(0, 18, size=3)
    shade = np.clip(colour + rng.normal(0, 8, size=img.shape), 0, 255)
    img[mask.astype(bool)] = shade[mask.astype(bool)].astype(np.uint8)


def check_num_classes(num_classes: int) -> None:
    if not 1 <= num_classes <= len(SHAPES):
        raise ValueError(f'num_classes must be in [1, {len(SHAPES)}], got {num_classes}')


def random_shapes(rng: np.random.Generator, size: tuple[int, int], num_classes: int,
                  max_shapes: int, min_radius: float = 0.08,
                  max_radius: float = 0.22) -> tuple[np.ndarray, list[Shape]]:
    """An image with 1..max_shapes shapes (later ones occlude earlier ones).

    Returns the RGB image [H, W, 3] and the *visible* mask of each shape, with its box.
    """
    check_num_classes(num_classes)
    w, h = size
    img = background(rng, size)
    drawn: list[tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        cat = int(rng.integers(num_classes))
        r = float(rng.uniform(min_radius, max_radius) * min(w, h))
        cx, cy = float(rng.uniform(r, w - r)), float(rng.uniform(r, h - r))
        mask = draw_shape(SHAPES[cat][0], size, cx, cy, r)
        paint(img, mask, cat, rng)
        covered = mask.astype(bool)
        for _, earlier in drawn:  # the new shape hides what it covers
            earlier[covered] = 0
        drawn.append((cat, mask))
    return img, [Shape(cat, mask, mask_bbox(mask)) for cat, mask in drawn
                 if np.count_nonzero(mask) >= 4]


def classification_image(rng: np.random.Generator, size: tuple[int, int],
                         category: int) -> np.ndarray:
    """An image whose label is ``category``: one large shape of that class, plus clutter of
    small shapes of other classes at most a third of its size."""
    w, h = size
    img = background(rng, size)
    for _ in range(int(rng.integers(0, 3))):
        other = int(rng.integers(len(SHAPES)))
        if other == category:
            continue
        r = float(rng.uniform(0.04, 0.08) * min(w, h))
        mask = draw_shape(SHAPES[other][0], size, float(rng.uniform(r, w - r)),
                          float(rng.uniform(r, h - r)), r)
        paint(img, mask, other, rng)
    r = float(rng.uniform(0.22, 0.38) * min(w, h))
    mask = draw_shape(SHAPES[category][0], size, float(rng.uniform(r, w - r)),
                      float(rng.uniform(r, h - r)), r)
    paint(img, mask, category, rng)
    return img


# --------------------------------------------------------------------------- COCO encodings
def mask_to_polygons(mask: np.ndarray, min_area: float = 4.0) -> list[list[float]]:
    """COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` of the outer contours of a binary mask.

    One polygon per connected part (an occluded shape can be split in several); parts whose
    polygon area is below ``min_area`` pixels, or with fewer than 3 points, are skipped.
    Points are pixel centres (``+0.5``) in COCO's continuous coordinates. Holes cannot be
    expressed by COCO polygons: use :func:`mask_has_holes` and :func:`mask_to_rle` for those.
    """
    import cv2  # opencv comes with mmcv; imported here so the module needs only numpy/PIL
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8),
                                   cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if len(contour) < 3 or cv2.contourArea(contour) < min_area:
            continue
        points = contour.reshape(-1, 2).astype(np.float64) + 0.5
        polygons.append([round(float(v), 2) for v in points.reshape(-1)])
    return polygons


def mask_has_holes(mask: np.ndarray) -> bool:
    """Whether the binary mask has a hole (a background region enclosed by the mask)."""
    import cv2
    _, hierarchy = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8),
                                    cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    # RETR_CCOMP: two levels; an entry with a parent (index 3 >= 0) is a hole.
    return hierarchy is not None and bool((hierarchy[0][:, 3] >= 0).any())


def mask_to_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE ``{'counts': [...], 'size': [h, w]}`` of a binary mask.

    Runs alternate background/foreground over the mask in column-major order, starting with
    background (a leading 0 when the first pixel is set), as in COCO's ``iscrowd=1`` entries.
    """
    h, w = mask.shape
    flat = np.asarray(mask, dtype=bool).reshape(-1, order='F')
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {'counts': [int(c) for c in counts], 'size': [int(h), int(w)]}


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """COCO box ``(x, y, w, h)`` enclosing the set pixels, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


# --------------------------------------------------------------------------- semantic maps
def semantic_image(rng: np.random.Generator, size: tuple[int, int], num_classes: int,
                   max_shapes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """An image of 1..max_shapes shapes and its ADE20K-style label map.

    Returns the RGB image [H, W, 3] and a uint8 label map [H, W] with the ADE20K convention:
    0 for the background ("other", ignored with ``reduce_zero_label=True``) and ``k + 1`` for
    the visible pixels of a shape of category ``k`` (classes 1..num_classes).
    """
    img, shapes = random_shapes(rng, size, num_classes, max_shapes)
    w, h = size
    labels = np.zeros((h, w), dtype=np.uint8)
    for s in shapes:
        labels[s.mask.astype(bool)] = s.category + 1
    return img, labels
