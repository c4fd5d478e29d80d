"""Inference on images with any config of the three tasks: the OpenMMLab inferencers, picked
by the config's scope (``DetInferencer``, ``MMSegInferencer``, ``ImageClassificationInferencer``).

Checkpoints may be ours or the official releases (files or URLs): a model with an InternImage
backbone converts an official layout in memory when it loads it.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.utils import import_modules_from_strings

from .builder import config_task, load_config

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def init_inferencer(config: str | Config, checkpoint: str | None = None,
                    device: str | None = None, cfg_options: dict | None = None) -> Any:
    """The inferencer of ``config``'s task with the weights of ``checkpoint`` (a path or URL;
    None: random weights, with a warning)."""
    cfg = load_config(config, cfg_options)
    task = config_task(cfg)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    if checkpoint is None:
        print_log(f'{task} inferencer: no checkpoint given, the model has random weights',
                  logger='current', level=logging.WARNING)
    if task == 'detection':
        from mmdet.apis import DetInferencer
        return DetInferencer(model=cfg, weights=checkpoint, device=device, show_progress=False)
    if task == 'segmentation':
        from mmseg.apis import MMSegInferencer
        return MMSegInferencer(model=cfg, weights=checkpoint, device=device)
    from mmpretrain.apis import ImageClassificationInferencer
    return ImageClassificationInferencer(model=cfg, pretrained=checkpoint or False,
                                         device=device)


def list_images(source: str | os.PathLike) -> list[str]:
    """``source`` itself if it is a file, else the images in the folder (sorted)."""
    path = Path(source)
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise FileNotFoundError(f'image or folder {source} does not exist')
    images = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f'no image ({", ".join(IMAGE_SUFFIXES)}) in {source}')
    return images


def infer_and_draw(inferencer: Any, images: list[str], out_dir: str | os.PathLike) -> list[Path]:
    """Run ``inferencer`` on ``images``; drawn predictions go to ``out_dir/vis`` and the raw
    predictions to ``out_dir/preds`` (JSON). Returns the drawn files."""
    out = Path(out_dir)
    vis = out / 'vis'
    name = type(inferencer).__name__
    if name == 'ImageClassificationInferencer':
        vis.mkdir(parents=True, exist_ok=True)
        results = inferencer(images, show_dir=str(vis))
        preds = out / 'preds'
        preds.mkdir(parents=True, exist_ok=True)
        for image, result in zip(images, results):
            keep = {k: v for k, v in result.items() if k in ('pred_label', 'pred_score',
                                                              'pred_class')}
            (preds / f'{Path(image).stem}.json').write_text(json.dumps(keep, default=float))
    elif name == 'MMSegInferencer':
        inferencer(images, out_dir=str(out), img_out_dir='vis', pred_out_dir='preds')
    else:  # DetInferencer
        inferencer(images, out_dir=str(out), no_save_pred=False)
    return sorted(p for p in vis.iterdir() if p.is_file()) if vis.is_dir() else []
