"""ValidatedCocoDataset: mmdet's CocoDataset with clear errors for broken inputs."""
import json

import pytest

pytest.importorskip('mmdet')

from internimage_mm.datasets.coco import ValidatedCocoDataset  # noqa: E402

CATEGORIES = [dict(id=1, name='circle'), dict(id=3, name='square'), dict(id=5, name='triangle')]
CLASSES = ('circle', 'square', 'triangle')


def _write(root, annotations, categories=CATEGORIES):
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    (root / 'train2017').mkdir(exist_ok=True)
    images = [dict(id=1, file_name='a.jpg', width=64, height=48),
              dict(id=2, file_name='b.jpg', width=50, height=70)]
    (root / 'annotations' / 'train.json').write_text(json.dumps(dict(
        images=images, annotations=annotations, categories=categories)))


def _ann(ann_id, image_id, category_id, bbox=(2, 3, 10, 12), iscrowd=0):
    x, y, w, h = bbox
    return dict(id=ann_id, image_id=image_id, category_id=category_id, bbox=list(bbox),
                area=w * h, iscrowd=iscrowd,
                segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]])


def _dataset(root, classes=CLASSES, **kw):
    return ValidatedCocoDataset(
        data_root=str(root), ann_file='annotations/train.json',
        data_prefix=dict(img='train2017/'), metainfo=dict(classes=classes), pipeline=[],
        filter_cfg=dict(filter_empty_gt=False), **kw)


def test_valid_file_loads_like_coco_dataset(tmp_path):
    _write(tmp_path, [_ann(1, 1, 3), _ann(2, 1, 5, iscrowd=1), _ann(3, 1, 1, (0, 0, 0.5, 3))])
    ds = _dataset(tmp_path)
    assert len(ds) == 2  # the image without annotations is kept (filter_empty_gt=False)
    first = ds.get_data_info(0)
    assert [i['bbox_label'] for i in first['instances']] == [1, 2]  # sub-pixel box dropped
    assert [i['ignore_flag'] for i in first['instances']] == [0, 1]  # crowd -> ignored
    assert ds.get_data_info(1)['instances'] == []


def test_bad_category_id(tmp_path):
    _write(tmp_path, [_ann(1, 1, 3), _ann(7, 2, 4)])
    with pytest.raises(ValueError, match=r"1 annotation\(s\) whose category_id is not in its "
                       r"'categories' \(ids \[1, 3, 5\]\); the first: annotation id 7 on image "
                       r'id 2 with category_id 4'):
        _dataset(tmp_path)


def test_unknown_image_id(tmp_path):
    _write(tmp_path, [_ann(1, 9, 3)])
    with pytest.raises(ValueError, match='annotation id 1 with image_id 9'):
        _dataset(tmp_path)


def test_class_not_in_file(tmp_path):
    _write(tmp_path, [_ann(1, 1, 3)])
    with pytest.raises(ValueError, match=r"class\(es\) \['person'\] of metainfo\['classes'\] "
                       'are not categories'):
        _dataset(tmp_path, classes=('person', 'circle'))


def test_classes_in_another_order(tmp_path):
    _write(tmp_path, [_ann(1, 1, 3)])
    with pytest.raises(ValueError, match="not in the category order"):
        _dataset(tmp_path, classes=('square', 'circle', 'triangle'))


def test_subset_of_classes_in_file_order_is_fine(tmp_path):
    _write(tmp_path, [_ann(1, 1, 3), _ann(2, 1, 5)])
    ds = _dataset(tmp_path, classes=('circle', 'triangle'))
    assert [i['bbox_label'] for i in ds.get_data_info(0)['instances']] == [1]


def test_duplicated_category_names(tmp_path):
    _write(tmp_path, [_ann(1, 1, 3)], CATEGORIES + [dict(id=9, name='circle')])
    with pytest.raises(ValueError, match=r"duplicated category names \['circle'\]"):
        _dataset(tmp_path)


@pytest.mark.parametrize('what', ['data_root', 'ann_file', 'img'])
def test_missing_paths_are_named(tmp_path, what):
    _write(tmp_path, [_ann(1, 1, 3)])
    if what == 'data_root':
        root = tmp_path / 'nowhere'
        with pytest.raises(FileNotFoundError, match=f"data_root '{root}' does not exist"):
            _dataset(root)
    elif what == 'ann_file':
        (tmp_path / 'annotations' / 'train.json').unlink()
        with pytest.raises(FileNotFoundError,
                           match=f"annotation file '{tmp_path}/annotations/train.json' does not"):
            _dataset(tmp_path)
    else:
        (tmp_path / 'train2017').rmdir()
        with pytest.raises(FileNotFoundError, match=r"data_prefix\['img'\] = "
                           f"'{tmp_path}/train2017/' does not exist"):
            _dataset(tmp_path)
