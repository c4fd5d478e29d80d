"""Official checkpoints loaded as they are: recognised and converted in memory on load.

Every model whose ``backbone`` is an InternImage (a detector, segmentor or classifier of any
config) gets a ``load_state_dict`` pre-hook when the backbone is assigned to it (a torch module
registration hook, installed once by ``import internimage_mm``). When a state dict reaches the
model, by ``load_from``, ``tools/test.py CONFIG OFFICIAL.pth``, an inferencer's weights or a
plain ``model.load_state_dict``, the hook:

1. does nothing if every key is already one of the model's (our own checkpoints, resuming);
2. else recognises the official layout (:func:`~internimage_mm.converters.detect_converter`)
   and converts it with the same rename tables as ``tools/model_converters/``, logging one line;
3. refuses, naming the converter tried and the first keys or shapes that do not fit, a
   checkpoint of another model or size: keys no rule maps, an official classifier loaded as a
   whole detector/segmentor, a backbone of another size, or a head of another model family.
   Heads that differ only in their class count are left to the loader's own report (strict
   loading refuses them, non-strict fine-tuning skips them with a warning), as before.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from mmengine.logging import print_log
from torch import nn

from ..models.backbones import CBInternImage, InternImage
from . import detect_converter
from .classification import CLASSIFIER
from .report import ConversionReport, IncompleteConversionError, compare_with_model

_installed: Any = None


def _backbone_types() -> tuple[type, ...]:
    return (InternImage, CBInternImage)


def _first(keys: list[str], n: int = 5) -> str:
    return ', '.join(keys[:n]) + (f' (+{len(keys) - n} more)' if len(keys) > n else '')


def convert_for_model(model: nn.Module, state_dict: Mapping[str, Any],
                      model_state: Mapping[str, Any] | None = None
                      ) -> tuple[dict[str, Any], ConversionReport] | None:
    """``state_dict`` converted for ``model`` when it is an official layout that ``model`` does
    not already have; None when it needs no conversion (or is no official layout we know).

    Raises:
        IncompleteConversionError: the checkpoint is recognised but does not fit ``model``
            (the message names the converter and the first keys or shapes).
    """
    own = model.state_dict(keep_vars=True) if model_state is None else model_state
    keys = list(state_dict)
    if all(k in own for k in keys):
        _check_backbone_shapes(model, state_dict, own)
        return None
    converter = detect_converter(keys)
    if converter is None:
        _check_fits(model, state_dict, own)
        return None
    what = f'{type(model).__name__}: official {converter.name} checkpoint'
    if converter is CLASSIFIER and not hasattr(model, 'head'):
        raise IncompleteConversionError(
            f'{what} (keys {_first(keys, 3)}) holds only a classifier; to start a '
            f'{type(model).__name__} from it, set model.backbone.init_cfg=dict(type='
            "'Pretrained', checkpoint=...) instead of loading it as the whole model")
    converted, report = converter.convert(state_dict, allow_incomplete=True)
    compare_with_model(report, converted, own)
    problems = [f'unmapped (no rename rule): {k}' for k in report.unmapped]
    backbone = [p for p in report.problems() if ': backbone.' in p]
    problems += [p for p in backbone if p not in problems]
    head_keys = [k for k in own if not k.startswith('backbone.')]
    head_missing = [k for k in report.missing if not k.startswith('backbone.')]
    if head_keys and len(head_missing) > len(head_keys) // 2:
        # the first of both kinds: what the model lacks and what the checkpoint holds instead
        problems += [f'missing (the model needs it, the checkpoint lacks it): {k}'
                     for k in head_missing[:6]]
        problems += [f'unexpected (the model has no such key): {k}'
                     for k in report.unexpected[:6]]
    if problems:
        more = f'\n  ... and {len(problems) - 12} more' if len(problems) > 12 else ''
        raise IncompleteConversionError(
            f'{what} does not fit this model (converter {converter.name} tried; a checkpoint '
            f'of another model or size?):\n  ' + '\n  '.join(problems[:12]) + more)
    return dict(converted), report


def _check_backbone_shapes(model: nn.Module, state_dict: Mapping[str, Any],
                           own: Mapping[str, Any]) -> None:
    """A backbone of another size never loads, whatever the strictness."""
    shape = lambda v: tuple(getattr(v, 'shape', ()))  # noqa: E731
    wrong = [f'{k}: checkpoint {shape(v)} vs model {shape(own[k])}'
             for k, v in state_dict.items()
             if k.startswith('backbone.') and k in own and shape(v) != shape(own[k])]
    if wrong:
        raise IncompleteConversionError(
            f'{type(model).__name__}: {len(wrong)} backbone key(s) of the checkpoint have '
            'another shape (a checkpoint of another size or variant?):\n  ' +
            '\n  '.join(wrong[:12]))


def _check_fits(model: nn.Module, state_dict: Mapping[str, Any],
                own: Mapping[str, Any]) -> None:
    """A checkpoint in no official layout: refuse it when it is of another model (most of the
    model's non-backbone keys absent and keys the model does not have); a backbone-only
    checkpoint (no foreign keys) is a deliberate partial load and passes."""
    _check_backbone_shapes(model, state_dict, own)
    keys = list(state_dict)
    present = set(keys)
    head_keys = [k for k in own if not k.startswith('backbone.')]
    head_missing = [k for k in head_keys if k not in present]
    foreign = [k for k in keys if k not in own]
    if foreign and head_keys and len(head_missing) > len(head_keys) // 2:
        raise IncompleteConversionError(
            f'{type(model).__name__}: the checkpoint does not fit this model (no official '
            f'InternImage layout recognised; a checkpoint of another model?): '
            f'{len(head_missing)} of its {len(head_keys)} non-backbone keys are missing, e.g. '
            f'{_first(head_missing)}; the checkpoint has keys the model does not, e.g. '
            f'{_first(foreign)}')


def _pre_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook of a model with an InternImage backbone (see the module
    docstring); converts the keys under ``prefix`` in place."""
    ours = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    result = convert_for_model(module, ours)
    if result is None:
        return
    converted, report = result
    for key in list(state_dict):
        if key.startswith(prefix):
            del state_dict[key]
    state_dict.update({prefix + k: v for k, v in converted.items()})
    renamed = sum(1 for a, b in report.renamed.items() if a != b)
    dropped = f', {len(report.dropped)} EMA buffers dropped' if report.dropped else ''
    print_log(f'{type(module).__name__}: official InternImage checkpoint layout recognised '
              f'({report.converter}): converted in memory, {len(converted)} tensors '
              f'({renamed} renamed{dropped})', logger='current', level=logging.INFO)


def _on_submodule(parent: nn.Module, name: str, submodule: Any) -> None:
    if (name == 'backbone' and isinstance(submodule, _backbone_types())
            and not getattr(parent, '_internimage_checkpoint_hook', None)):
        parent._internimage_checkpoint_hook = parent.register_load_state_dict_pre_hook(
            _pre_hook)


def install() -> None:
    """Give every model built from now on whose ``backbone`` is an InternImage the in-memory
    conversion of official checkpoints (idempotent)."""
    global _installed
    if _installed is None:
        _installed = torch.nn.modules.module.register_module_module_registration_hook(
            _on_submodule)
