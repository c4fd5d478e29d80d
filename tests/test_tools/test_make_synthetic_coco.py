"""tools/misc/make_synthetic_coco.py: a valid COCO instances set with the cases loaders meet."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from internimage_mm.datasets.synthetic import (
    draw_shape,
    mask_has_holes,
    mask_to_polygons,
    mask_to_rle,
)

from ..conftest import load_tool

# pycocotools' decode under numpy 2 (third-party noise).
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning:pycocotools.*')


def _tool():
    return load_tool('misc/make_synthetic_coco.py')


@pytest.fixture(scope='module')
def coco_set(tmp_path_factory):
    out = tmp_path_factory.mktemp('coco')
    _tool().make_synthetic_coco(out, num_classes=8, train_images=24, val_images=12,
                                min_size=64, max_size=128, seed=1)
    return out


def _load(root, split):
    return COCO(str(root / 'annotations' / f'instances_{split}.json'))


@pytest.mark.parametrize('split', ['train2017', 'val2017'])
def test_files_and_images(coco_set, split):
    coco = _load(coco_set, split)
    sizes = set()
    for img in coco.loadImgs(coco.getImgIds()):
        with Image.open(coco_set / split / img['file_name']) as im:
            assert im.size == (img['width'], img['height'])
            assert im.format == 'JPEG'
        sizes.add(im.size)
    assert len(sizes) > 1, 'images should have different sizes'
    assert all(64 <= s <= 128 for size in sizes for s in size)


@pytest.mark.parametrize('split', ['train2017', 'val2017'])
def test_annotations_are_consistent(coco_set, split):
    coco = _load(coco_set, split)
    cats = coco.loadCats(coco.getCatIds())
    assert [c['id'] for c in cats] == [1, 3, 5, 7, 9, 11, 13, 15]
    assert [c['name'] for c in cats][:3] == ['circle', 'square', 'triangle']
    anns = coco.loadAnns(coco.getAnnIds())
    assert len({a['id'] for a in anns}) == len(anns)
    for a in anns:
        assert a['category_id'] in coco.cats and a['image_id'] in coco.imgs
        img = coco.imgs[a['image_id']]
        x, y, w, h = a['bbox']
        assert 0 <= x and 0 <= y and x + w <= img['width'] and y + h <= img['height']
        if w < 1:  # a degenerate box, train only
            assert split == 'train2017'
            continue
        mask = coco.annToMask(a)
        if isinstance(a['segmentation'], dict):  # RLE: exact
            assert mask.sum() == a['area']
        else:  # polygons through the boundary pixels' centres
            assert 0.4 * a['area'] <= mask.sum() <= 1.05 * a['area']
        ys, xs = np.nonzero(mask)
        assert xs.min() >= x - 1 and xs.max() < x + w + 1
    empty = [i for i in coco.getImgIds() if not coco.getAnnIds(imgIds=[i])]
    assert 4 in empty  # every 10th image from the 4th has no annotation
    assert any(a['iscrowd'] for a in anns)
    assert all(isinstance(a['segmentation'], dict) for a in anns if a['iscrowd'])
    if split == 'train2017':
        assert any(a['bbox'][2] < 1 for a in anns)
        assert any(a['area'] < 60 and a['bbox'][2] >= 1 for a in anns)  # tiny shapes


def test_same_seed_same_set(tmp_path):
    tool = _tool()
    for name in ('a', 'b'):
        tool.make_synthetic_coco(tmp_path / name, train_images=3, val_images=2, seed=5)
    for split in ('train2017', 'val2017'):
        f = f'annotations/instances_{split}.json'
        assert json.loads((tmp_path / 'a' / f).read_text()) == json.loads(
            (tmp_path / 'b' / f).read_text())


def test_bad_arguments(tmp_path):
    tool = _tool()
    with pytest.raises(ValueError, match='num_classes'):
        tool.make_synthetic_coco(tmp_path, num_classes=9)
    with pytest.raises(ValueError, match='min_size'):
        tool.make_synthetic_coco(tmp_path, min_size=200, max_size=100)


def test_mask_encodings():
    ring = draw_shape('ring', (40, 30), 20, 15, 12)
    assert mask_has_holes(ring)
    assert not mask_has_holes(draw_shape('circle', (40, 30), 20, 15, 12))
    rle = mask_to_rle(ring)
    from pycocotools import mask as mask_utils
    decoded = mask_utils.decode(mask_utils.frPyObjects(rle, 30, 40))
    np.testing.assert_array_equal(decoded, ring)
    corner = np.zeros((5, 4), np.uint8)
    corner[0, 0] = 1
    assert mask_to_rle(corner)['counts'][:2] == [0, 1]
    two = np.zeros((30, 60), np.uint8)
    two[5:15, 5:15] = 1
    two[5:25, 30:50] = 1
    two[28, 2] = 1  # one pixel: below min_area, skipped
    polys = mask_to_polygons(two, min_area=4)
    assert len(polys) == 2 and all(len(p) >= 6 and len(p) % 2 == 0 for p in polys)
