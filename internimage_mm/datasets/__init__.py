"""Datasets, data transforms and synthetic data generators.

Task-specific modules (``coco`` needs mmdet, ``transforms`` mmcv) are imported through
:mod:`internimage_mm.tasks`; ``synthetic`` needs only numpy and Pillow.
"""
