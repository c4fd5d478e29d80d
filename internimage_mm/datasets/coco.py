"""mmdet's ``CocoDataset`` with the annotation file checked before training or testing.

mmdet's loader silently drops annotations whose ``category_id`` is not a category of the file,
maps labels in the file's category order whatever order ``metainfo['classes']`` lists them in
(the metric agrees, the drawn class names do not), and ignores classes missing from the file
(e.g. a config that forgot ``metainfo`` trains on COCO's 80 names). A missing file surfaces as a
traceback from ``open``. This class turns each of those into one clear error message.
"""
from __future__ import annotations

import os.path as osp

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.fileio import LocalBackend, get_file_backend


@DATASETS.register_module()
class ValidatedCocoDataset(CocoDataset):
    """:class:`mmdet.datasets.CocoDataset` that validates paths, categories and annotations.

    Raises ``FileNotFoundError`` naming the path when ``data_root``, the annotation file or
    the image folder (local paths only) does not exist, and ``ValueError`` when

    * a class of ``metainfo['classes']`` is not a category name of the file,
    * category names are duplicated in the file, or the classes are not listed in the file's
      category order (mmdet assigns labels in the file's order),
    * an annotation's ``category_id`` is not a category of the file, or its ``image_id`` is not
      an image of the file.

    Everything else is mmdet's ``CocoDataset`` (crowd regions become ignored instances, boxes
    under one pixel are dropped, annotations of categories not in ``classes`` are skipped).
    """

    def load_data_list(self) -> list[dict]:
        if self.data_root and self._is_local(self.data_root) and not osp.isdir(self.data_root):
            raise FileNotFoundError(
                f'{type(self).__name__}: data_root {self.data_root!r} does not exist '
                f'(absolute: {osp.abspath(self.data_root)}); set data_root to the dataset folder')
        if self._is_local(self.ann_file) and not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'{type(self).__name__}: annotation file {self.ann_file!r} does not exist '
                f'(absolute: {osp.abspath(self.ann_file)}; data_root={self.data_root!r})')
        img_dir = self.data_prefix.get('img')
        if img_dir and self._is_local(img_dir) and not osp.isdir(img_dir):
            raise FileNotFoundError(
                f"{type(self).__name__}: image folder data_prefix['img'] = {img_dir!r} does not "
                f'exist (absolute: {osp.abspath(img_dir)}; data_root={self.data_root!r})')
        self._validated = False
        return super().load_data_list()

    def parse_data_info(self, raw_data_info: dict) -> dict | list[dict]:
        if not self._validated:  # self.coco is loaded and self.cat_ids set by now
            self._validate(self.coco)
            self._validated = True
        return super().parse_data_info(raw_data_info)

    def _is_local(self, path: str) -> bool:
        return isinstance(get_file_backend(path, backend_args=self.backend_args), LocalBackend)

    def _validate(self, coco) -> None:
        name = type(self).__name__
        src = repr(self.ann_file)
        cats = coco.cats
        file_cats = {cid: c.get('name') for cid, c in cats.items()}
        names = [c.get('name') for c in cats.values()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f'{name}: {src} has duplicated category names {dupes}: {file_cats}')
        classes = list(self.metainfo.get('classes') or ())
        missing = [c for c in classes if c not in names]
        if missing:
            raise ValueError(
                f"{name}: class(es) {missing} of metainfo['classes'] are not categories of "
                f'{src} (its categories, id: name: {file_cats}); set the dataset\'s '
                f'metainfo=dict(classes=...) to names of that file')
        in_file_order = [file_cats[cid] for cid in self.cat_ids]
        if in_file_order != classes:
            raise ValueError(
                f"{name}: metainfo['classes'] = {classes} are not in the category order of "
                f'{src} ({in_file_order}); mmdet assigns labels in the file\'s order, so list '
                'the classes in that order')
        bad_cat = [a for a in coco.anns.values() if a.get('category_id') not in cats]
        if bad_cat:
            a = bad_cat[0]
            raise ValueError(
                f'{name}: {src} has {len(bad_cat)} annotation(s) whose category_id is not in its '
                f"'categories' (ids {sorted(cats)}); the first: annotation id {a.get('id')} on "
                f"image id {a.get('image_id')} with category_id {a.get('category_id')!r}")
        bad_img = [a for a in coco.anns.values() if a.get('image_id') not in coco.imgs]
        if bad_img:
            a = bad_img[0]
            raise ValueError(
                f'{name}: {src} has {len(bad_img)} annotation(s) whose image_id is not in its '
                f"'images'; the first: annotation id {a.get('id')} with image_id "
                f"{a.get('image_id')!r}")
