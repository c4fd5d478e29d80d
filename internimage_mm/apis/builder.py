"""Build a config's model in its scope: the one helper the tools and APIs share."""
from __future__ import annotations

import contextlib
import importlib
from typing import Any

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings
from torch import nn

#: default_scope -> (task, registry module)
TASKS: dict[str, tuple[str, str]] = {
    'mmpretrain': ('classification', 'mmpretrain.registry'),
    'mmdet': ('detection', 'mmdet.registry'),
    'mmseg': ('segmentation', 'mmseg.registry'),
}


def load_config(config: str | Config, cfg_options: dict[str, Any] | None = None) -> Config:
    """``config`` (a path or a Config) with ``cfg_options`` merged in."""
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def config_task(cfg: Config) -> str:
    """``'classification'``, ``'detection'`` or ``'segmentation'``, from the default scope."""
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(f'default_scope {scope!r} is not one of {sorted(TASKS)}')
    return TASKS[scope][0]


def build_model(config: str | Config, cfg_options: dict[str, Any] | None = None, *,
                pretrained: bool = True, device: str | torch.device = 'cpu') -> nn.Module:
    """Build ``cfg.model`` as the Runner does: the config's ``custom_imports`` imported, its
    ``default_scope`` made the default (globally, like the Runner), the top-level
    ``data_preprocessor`` used when the model has none.

    ``pretrained=False`` drops the ``init_cfg`` of the model and its backbone, so that nothing
    is downloaded or read (for names/shapes, FLOPs, tests). ``device='meta'`` builds without
    memory: a state dict of names and shapes only.
    """
    cfg = load_config(config, cfg_options)
    config_task(cfg)  # a clear error for a config of another scope
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    scope = cfg.default_scope
    init_default_scope(scope)
    registry = importlib.import_module(TASKS[scope][1]).MODELS
    model_cfg = cfg.model.copy()
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor') is not None:
        model_cfg['data_preprocessor'] = cfg.data_preprocessor
    if not pretrained:
        model_cfg.pop('init_cfg', None)
        if isinstance(model_cfg.get('backbone'), dict):
            model_cfg.backbone = dict(model_cfg.backbone, init_cfg=None)
    meta = str(device) == 'meta'
    with torch.device('meta') if meta else contextlib.nullcontext():
        model = registry.build(model_cfg)
    return model if meta else model.to(device)


def config_state_dict(config: str | Config,
                      cfg_options: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Names and shapes (meta tensors) of the model ``config`` builds: what the converters check
    their output against."""
    return build_model(config, cfg_options, pretrained=False, device='meta').state_dict()
