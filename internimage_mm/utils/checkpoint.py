"""Official InternImage checkpoints: loading into the backbone, and conversion to mmpretrain.

Official classification checkpoints (``internimage_<size>_*.pth``) hold a flat state dict under
``model``: backbone keys (``patch_embed.*``, ``levels.*``) and classifier keys (``conv_head.*``
and ``head.*``; for H ``dcnv3_head_x4.*``, ``dcnv3_head_x3.*``, ``clip_projector.*``,
``fc_norm.*`` and ``head.*``). The backbone keys are exactly those of
:class:`~internimage_mm.models.InternImage`, so the backbone loads them as they are; an
mmpretrain ``ImageClassifier`` needs them under ``backbone.``/``head.``, which
:func:`convert_official_classifier` does.
"""
from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

#: Leading key prefixes added by wrappers (DDP, EMA/Lightning-style holders); always stripped.
WRAPPER_PREFIXES = ('module.', 'model.')
#: Official backbone key prefixes.
BACKBONE_PREFIXES = ('patch_embed.', 'levels.')
#: Official classifier-only key prefixes (ignored, and reported, when loading a backbone).
CLASSIFIER_PREFIXES = ('conv_head.', 'head.', 'dcnv3_head_x4.', 'dcnv3_head_x3.',
                       'clip_projector.', 'fc_norm.')

# Official classification-model kwargs -> where they go in our ImageClassifier config.
_ARCH_KWARGS = ('channels', 'depths', 'groups', 'offset_scale', 'post_norm', 'layer_scale',
                'dw_kernel_size', 'res_post_norm', 'level2_post_norm',
                'level2_post_norm_block_ids', 'center_feature_scale')
_BACKBONE_KWARGS = ('core_op', 'mlp_ratio', 'drop_rate', 'drop_path_rate', 'drop_path_type',
                    'act_layer', 'norm_layer', 'remove_center', 'with_cp')
_HEAD_KWARGS = ('num_classes', 'cls_scale', 'use_clip_projector')


@dataclass
class LoadReport:
    """What :func:`load_backbone_checkpoint` did with the keys.

    ``missing``: model keys absent from the checkpoint (left at their initial values);
    ``unexpected``: checkpoint keys the model does not have; ``ignored``: checkpoint keys that
    belong to other parts of a model on purpose (classifier heads, necks, detector heads).
    """
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def extract_state_dict(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict in a checkpoint: its ``state_dict`` or ``model`` entry, or itself."""
    for key in ('state_dict', 'model'):
        inner = checkpoint.get(key) if isinstance(checkpoint, Mapping) else None
        if isinstance(inner, Mapping):
            return dict(inner)
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f'checkpoint must be a mapping, got {type(checkpoint).__name__}')
    return dict(checkpoint)


def strip_wrapper_prefixes(state_dict: Mapping[str, Any],
                           prefixes: tuple[str, ...] = WRAPPER_PREFIXES) -> dict[str, Any]:
    """Remove leading ``module.``/``model.`` (repeatedly, in any order) from every key."""
    out = {}
    for key, value in state_dict.items():
        stripped = True
        while stripped:
            stripped = False
            for p in prefixes:
                if key.startswith(p):
                    key, stripped = key[len(p):], True
        out[key] = value
    return out


def load_backbone_checkpoint(module: nn.Module,
                             checkpoint: str | os.PathLike | Mapping[str, Any],
                             map_location: str = 'cpu',
                             prefix: str | None = None,
                             logger: str | logging.Logger | None = 'current') -> LoadReport:
    """Load an official (or mmpretrain/mmdet/mmseg) checkpoint into an InternImage backbone.

    Takes the checkpoint's ``state_dict`` or ``model`` entry (or the dict itself), strips the
    wrapper prefixes ``module.``/``model.``, then keeps the keys under ``prefix`` (default
    ``backbone.`` when any key has it; prefix removed) and reports the others as ignored.
    Official classifier keys (``conv_head.*``, ``head.*``, ...) are ignored too. Missing and
    unexpected keys are logged by name (warning); a key whose shape differs raises a
    RuntimeError naming it with both shapes. Nothing is dropped silently.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = CheckpointLoader.load_checkpoint(str(checkpoint), map_location=map_location)
    state_dict = strip_wrapper_prefixes(extract_state_dict(checkpoint))
    report = LoadReport()

    if prefix is None and any(k.startswith('backbone.') for k in state_dict):
        prefix = 'backbone.'
    if prefix:
        selected = {}
        for key, value in state_dict.items():
            if key.startswith(prefix):
                selected[key[len(prefix):]] = value
            else:
                report.ignored.append(key)
        state_dict = selected

    own = module.state_dict()
    to_load, mismatched = {}, []
    for key, value in state_dict.items():
        if key in own:
            if tuple(getattr(value, 'shape', ())) != tuple(own[key].shape):
                mismatched.append(f'{key}: checkpoint {tuple(getattr(value, "shape", ()))} '
                                  f'vs model {tuple(own[key].shape)}')
            to_load[key] = value
        elif not prefix and key.startswith(CLASSIFIER_PREFIXES):
            report.ignored.append(key)
        else:
            report.unexpected.append(key)
    if mismatched:
        raise RuntimeError(f'{type(module).__name__}: {len(mismatched)} checkpoint key(s) do '
                           'not match the model shape (wrong variant or options?):\n  ' +
                           '\n  '.join(mismatched))
    report.missing = [k for k in own if k not in to_load]
    module.load_state_dict(to_load, strict=False)

    name = type(module).__name__
    print_log(f'{name}: loaded {len(to_load)}/{len(own)} keys from the checkpoint', logger,
              logging.INFO)
    if report.ignored:
        print_log(f'{name}: ignored {len(report.ignored)} checkpoint key(s) of other model '
                  f'parts: {report.ignored}', logger, logging.INFO)
    if report.missing:
        print_log(f'{name}: missing key(s) in the checkpoint, left at their initial values: '
                  f'{report.missing}', logger, logging.WARNING)
    if report.unexpected:
        print_log(f'{name}: unexpected key(s) in the checkpoint, not loaded: '
                  f'{report.unexpected}', logger, logging.WARNING)
    return report


def convert_official_classifier(state_dict: Mapping[str, Any]) -> OrderedDict:
    """Official classification state dict -> mmpretrain ``ImageClassifier`` layout.

    ``patch_embed.*``/``levels.*`` -> ``backbone.*``; ``head.*`` (the final Linear) ->
    ``head.fc.*``; the other classifier parts keep their names under ``head.`` (the heads
    :class:`InternImageClsHead` and :class:`InternImageAttnPoolHead` use the official names).
    Accepts a whole checkpoint too (``model``/``state_dict`` entry, ``module.`` prefixes).
    Unknown keys raise a ValueError naming them.
    """
    state_dict = strip_wrapper_prefixes(extract_state_dict(state_dict), ('module.', ))
    out: OrderedDict = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        if key.startswith(BACKBONE_PREFIXES):
            out['backbone.' + key] = value
        elif key.startswith('head.'):
            out['head.fc.' + key[len('head.'):]] = value
        elif key.startswith(CLASSIFIER_PREFIXES):
            out['head.' + key] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f'not an official InternImage classification state dict; unknown '
                         f'key(s): {unknown[:20]}{" ..." if len(unknown) > 20 else ""}')
    return out


def classifier_cfg_from_official(model_kwargs: Mapping[str, Any], **backbone_overrides: Any
                                 ) -> dict[str, Any]:
    """mmpretrain ``ImageClassifier`` config equal to the official classification model built
    with ``model_kwargs`` (the keyword arguments of the official ``InternImage`` classifier,
    e.g. ``variants.json[size]['classification']['kwargs']``).

    The backbone returns what the head needs: stage 4 (``out_indices=(3, )``) for the conv head
    of T-XL, stages 3 and 4 (``(2, 3)``) for the attention-pooling head of H
    (``use_clip_projector=True``). ``backbone_overrides`` (e.g. ``core_op``) win.
    """
    known = set(_ARCH_KWARGS) | set(_BACKBONE_KWARGS) | set(_HEAD_KWARGS)
    unknown = sorted(set(model_kwargs) - known)
    if unknown:
        raise ValueError(f'unsupported official InternImage option(s): {unknown}')
    missing = [k for k in ('channels', 'depths', 'groups') if k not in model_kwargs]
    if missing:
        raise ValueError(f'official kwargs lack {missing}')
    arch = {k: model_kwargs[k] for k in _ARCH_KWARGS if k in model_kwargs}
    arch['depths'], arch['groups'] = list(arch['depths']), list(arch['groups'])
    if arch.get('level2_post_norm_block_ids') is not None:
        arch['level2_post_norm_block_ids'] = list(arch['level2_post_norm_block_ids'])
    use_clip = bool(model_kwargs.get('use_clip_projector', False))
    backbone = dict(type='InternImage', arch=arch,
                    drop_path_rate=model_kwargs.get('drop_path_rate', 0.2),
                    out_indices=(2, 3) if use_clip else (3, ))
    backbone.update({k: model_kwargs[k] for k in _BACKBONE_KWARGS
                     if k in model_kwargs and k != 'drop_path_rate'})
    backbone.update(backbone_overrides)
    num_classes = model_kwargs.get('num_classes', 1000)
    last_channels = int(arch['channels'] * 2**(len(arch['depths']) - 1))
    if use_clip:
        head = dict(type='InternImageAttnPoolHead', num_classes=num_classes,
                    in_channels=last_channels, norm_layer=model_kwargs.get('norm_layer', 'LN'))
    else:
        head = dict(type='InternImageClsHead', num_classes=num_classes,
                    in_channels=last_channels, cls_scale=model_kwargs.get('cls_scale', 1.5),
                    act_layer=model_kwargs.get('act_layer', 'GELU'))
    return dict(type='ImageClassifier', backbone=backbone, neck=None, head=head)


def config_state_dict(config: str, cfg_options: dict | None = None,
                      default_scope: str = 'mmdet') -> dict:
    """The state dict (meta tensors, no weights) of the model that ``config`` builds, in its
    ``default_scope`` (else ``default_scope``); the converters check their output against it."""
    import importlib

    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    scope = cfg.get('default_scope', default_scope)
    init_default_scope(scope)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    model_cfg = cfg.model
    if isinstance(model_cfg.get('backbone'), dict):
        model_cfg.backbone.init_cfg = None  # never load weights for the reference
    with torch.device('meta'):
        model = registry.build(model_cfg)
    return model.state_dict()
