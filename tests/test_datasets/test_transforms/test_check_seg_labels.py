"""CheckSegLabels: bad ADE20K-style annotations fail with a message naming the file, in the
transform itself and through the synthetic config's real dataset and pipeline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

import internimage_mm.tasks.segmentation  # noqa: F401  (registers the transform)
from internimage_mm.datasets.transforms.check_seg_labels import CheckSegLabels

from ...conftest import REPO, load_tool

CONFIG = (REPO / 'configs' / 'segmentation' /
          'upernet_internimage-tiny_1xb4-600iter_synthetic-128x128.py')


def _results(seg, ori_shape=None, reduce_zero_label=True):
    seg = np.asarray(seg, dtype=np.uint8)
    return dict(gt_seg_map=seg, ori_shape=ori_shape or seg.shape, img_path='a/img.jpg',
                seg_map_path='a/img.png', reduce_zero_label=reduce_zero_label)


def test_valid_labels_pass_unchanged():
    seg = np.array([[0, 1, 2, 3], [255, 255, 0, 3]])
    results = _results(seg)
    assert CheckSegLabels(num_classes=4)(results) is results
    np.testing.assert_array_equal(results['gt_seg_map'], seg)


def test_out_of_range_ids_name_the_file_and_the_ids():
    # after reduce_zero_label: 6 and 9 are file values 7 and 10
    with pytest.raises(ValueError, match=r'a/img\.png: label id\(s\) \[6, 9\] \(values '
                       r'\[7, 10\] in the file.*outside the 4 classes 0\.\.3'):
        CheckSegLabels(num_classes=4)(_results([[0, 6, 9], [1, 2, 255]]))
    with pytest.raises(ValueError, match=r'label id\(s\) \[4\] outside the 4 classes'):
        CheckSegLabels(num_classes=4)(_results([[0, 4]], reduce_zero_label=False))
    # another ignore index: 255 is then a wrong id
    with pytest.raises(ValueError, match=r'\[255\]'):
        CheckSegLabels(num_classes=4, ignore_index=250)(_results([[0, 255]]))


def test_size_mismatch_names_label_and_image():
    with pytest.raises(ValueError, match=r'a/img\.png: label map is 2x3 \(HxW\) but its image '
                       r'a/img\.jpg is 4x6'):
        CheckSegLabels(num_classes=4)(_results(np.zeros((2, 3)), ori_shape=(4, 6)))
    # check_size=False: only the ids are checked
    CheckSegLabels(num_classes=4, check_size=False)(_results(np.zeros((2, 3)), ori_shape=(4, 6)))


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match='num_classes must be a positive int'):
        CheckSegLabels(num_classes=0)
    # an annotated sample whose label map was not loaded: the transform is misplaced
    with pytest.raises(ValueError, match='no `gt_seg_map`.*x.png.*after LoadAnnotations'):
        CheckSegLabels(num_classes=4)(dict(img_path='x.jpg', seg_map_path='x.png'))
    # an image without annotation (inference): nothing to check, passed on unchanged
    results = dict(img_path='x.jpg', img=np.zeros((4, 4, 3)))
    assert CheckSegLabels(num_classes=4)(dict(results)).keys() == results.keys()
    with pytest.raises(ValueError, match='single-channel label map'):
        CheckSegLabels(num_classes=4)(_results(np.zeros((2, 3, 3))))
    assert repr(CheckSegLabels(4)) == 'CheckSegLabels(num_classes=4, ignore_index=255, ' \
        'check_size=True)'


def test_registered_in_every_scope():
    from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
    from mmseg.registry import TRANSFORMS
    for registry in (TRANSFORMS, DET_TRANSFORMS):
        assert isinstance(registry.build(dict(type='CheckSegLabels', num_classes=3)),
                          CheckSegLabels)


# ------------------------------------------------------------------ through the real dataset
def _make_set(root: Path) -> Path:
    return load_tool('misc/make_synthetic_ade20k.py').make_synthetic_ade20k(
        root, num_classes=4, train_images=2, val_images=3)


def _dataset(root: Path, split: str):
    cfg = Config.fromfile(str(CONFIG))
    loader = cfg.train_dataloader if split == 'training' else cfg.test_dataloader
    loader.dataset.data_root = str(root)
    init_default_scope('mmseg')
    from mmseg.registry import DATASETS
    return DATASETS.build(loader.dataset)


@pytest.mark.parametrize('split', ['training', 'validation'])
def test_bad_annotations_through_the_pipeline(tmp_path, split):
    """The synthetic config's train and test pipelines (mmseg BaseSegDataset,
    reduce_zero_label) on a set with one broken annotation of each kind."""
    root = _make_set(tmp_path / 'set')
    prefix = 'train' if split == 'training' else 'val'
    ann = root / 'annotations' / split
    good = _dataset(root, split)
    assert len(good) == (2 if split == 'training' else 3)
    sample = good[0]
    assert set(np.unique(sample['data_samples'].gt_sem_seg.data.numpy())) <= {0, 1, 2, 3, 255}

    # 1. a class id outside 1..4 (file value 7 -> id 6 after reduce_zero_label)
    first = ann / f'ADE_{prefix}_00000001.png'
    labels = np.array(Image.open(first))
    labels[:3, :3] = 7
    Image.fromarray(labels).save(first)
    with pytest.raises(ValueError, match=rf'{first.name}: label id\(s\) \[6\] \(values \[7\]'):
        _dataset(root, split)[0]
    # 2. label map and image of different sizes
    second = ann / f'ADE_{prefix}_00000002.png'
    Image.fromarray(np.zeros((40, 50), dtype=np.uint8)).save(second)
    with pytest.raises(ValueError, match=rf'{second.name}: label map is 40x50 \(HxW\) but its '
                       r'image .*ADE_\w+_00000002\.jpg is'):
        _dataset(root, split)[1]
    # 3. a missing annotation file: mmengine's FileNotFoundError names it
    second.unlink()
    with pytest.raises(FileNotFoundError, match=rf'{second.name}'):
        _dataset(root, split)[1]
