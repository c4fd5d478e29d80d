"""Validate a loaded semantic-segmentation label map before it reaches a loss or a metric.

mmseg checks neither the label ids nor the size of an annotation. An id >= ``num_classes``
crashes the cross-entropy (a device-side assert on CUDA, an index error on CPU) or, in
:class:`mmseg.evaluation.IoUMetric`, is silently dropped from the histogram (a wrong mIoU); a
label map whose size differs from its image is silently stretched by the resize transforms.
:class:`CheckSegLabels`, placed right after ``LoadAnnotations``, turns both into a ValueError
naming the file.
"""
from __future__ import annotations

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Raise a ValueError naming the annotation file when its labels are out of range or its
    size differs from the image's.

    Valid ids (after ``LoadAnnotations``, i.e. after ``reduce_zero_label`` and ``label_map``)
    are ``0 .. num_classes - 1`` and ``ignore_index``. The size is compared with
    ``ori_shape`` (the image as loaded), so the transform also works in test pipelines where
    the image is resized before the annotation is loaded. With ``reduce_zero_label`` the
    offending ids are also reported as the values stored in the file (id + 1).

    Required keys: ``gt_seg_map`` when the sample has an annotation (``seg_map_path``); a
    sample without one (inference on an image: the inferencers drop ``LoadAnnotations``)
    passes unchecked, so the label check never blocks inference. Used when present:
    ``ori_shape``, ``img_path``, ``reduce_zero_label``.

    Args:
        num_classes (int): number of classes of the dataset.
        ignore_index (int): the ignored label (mmseg's default 255).
        check_size (bool): compare the label map's size with the image's.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, check_size: bool = True) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'CheckSegLabels: num_classes must be a positive int, '
                             f'got {num_classes!r}')
        self.num_classes = num_classes
        self.ignore_index = int(ignore_index)
        self.check_size = check_size

    def transform(self, results: dict) -> dict:
        seg = results.get('gt_seg_map')
        if seg is None:
            if results.get('seg_map_path') is None:
                return results  # inference: no annotation exists, nothing to check
            raise ValueError('CheckSegLabels: no `gt_seg_map` in the results although the '
                             f"sample has the annotation {results['seg_map_path']}; put it after "
                             f"LoadAnnotations (image {results.get('img_path')})")
        name = results.get('seg_map_path', '<in-memory label map>')
        seg = np.asarray(seg)
        if seg.ndim != 2:
            raise ValueError(f'CheckSegLabels: {name}: expected a single-channel label map, got '
                             f'an array of shape {seg.shape}')
        ori_shape = results.get('ori_shape')
        if self.check_size and ori_shape is not None and tuple(seg.shape) != tuple(
                ori_shape[:2]):
            raise ValueError(
                f'CheckSegLabels: {name}: label map is {seg.shape[0]}x{seg.shape[1]} (HxW) but '
                f"its image {results.get('img_path')} is {ori_shape[0]}x{ori_shape[1]}")
        ids = np.unique(seg)
        bad = ids[(ids >= self.num_classes) & (ids != self.ignore_index)]
        if bad.size:
            bad_ids = [int(i) for i in bad]
            hint = ''
            if results.get('reduce_zero_label'):
                hint = (f' (values {[i + 1 for i in bad_ids]} in the file; with '
                        'reduce_zero_label=True the file holds 0 for "other" and 1..'
                        f'{self.num_classes} for the classes)')
            raise ValueError(
                f'CheckSegLabels: {name}: label id(s) {bad_ids}{hint} outside the '
                f'{self.num_classes} classes 0..{self.num_classes - 1} (ignore index '
                f'{self.ignore_index})')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, check_size={self.check_size})')
