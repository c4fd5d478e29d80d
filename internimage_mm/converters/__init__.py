"""Official InternImage checkpoint layouts -> this toolbox's models, in one place.

One rename-rule type (:class:`RenameRule`), one converter type (:class:`Converter`), one report
(:class:`ConversionReport`) and one key/shape comparison (:func:`compare_with_model`) serve the
classification, detection and segmentation tables, the ``tools/model_converters/`` scripts and
the in-memory conversion when a model loads an official checkpoint
(:mod:`internimage_mm.converters.loading`).
"""
from __future__ import annotations

from collections.abc import Iterable

from .base import Converter, dataset_meta
from .classification import CLASSIFIER, classifier_cfg_from_official, convert_official_classifier
from .detection import CASCADE, CB_DINO, DETECTORS, DINO, MASK_RCNN
from .report import ConversionReport, IncompleteConversionError, compare_with_model
from .rules import RenameRule
from .segmentation import MASK2FORMER, SEGMENTORS, UPERNET

#: Every official layout, most specific signature first.
CONVERTERS: tuple[Converter, ...] = (CB_DINO, DINO, CASCADE, MASK_RCNN, MASK2FORMER, UPERNET,
                                     CLASSIFIER)


def detect_converter(keys: Iterable[str]) -> Converter | None:
    """The converter whose official layout ``keys`` have, or None."""
    keys = list(keys)
    return next((c for c in CONVERTERS if c.matches(keys)), None)


__all__ = [
    'CASCADE', 'CB_DINO', 'CLASSIFIER', 'CONVERTERS', 'DETECTORS', 'DINO', 'MASK2FORMER',
    'MASK_RCNN',
    'SEGMENTORS', 'UPERNET', 'ConversionReport', 'Converter', 'IncompleteConversionError',
    'RenameRule', 'classifier_cfg_from_official', 'compare_with_model',
    'convert_official_classifier', 'dataset_meta', 'detect_converter'
]
