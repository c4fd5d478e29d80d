"""Official InternImage classification checkpoints -> mmpretrain ``ImageClassifier``.

Official classification checkpoints (``internimage_<size>_*.pth``) hold a flat state dict under
``model``: backbone keys (``patch_embed.*``, ``levels.*``) and classifier keys (``conv_head.*``
and ``head.*``; for H ``dcnv3_head_x4.*``, ``dcnv3_head_x3.*``, ``clip_projector.*``,
``fc_norm.*`` and ``head.*``). The backbone keys are exactly those of
:class:`~internimage_mm.models.InternImage`; an ``ImageClassifier`` needs them under
``backbone.``, the final Linear ``head`` becomes ``head.fc`` and the other classifier parts keep
their names under ``head.`` (:class:`InternImageClsHead`, :class:`InternImageAttnPoolHead`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Converter
from .rules import RenameRule

CLASSIFIER_RULES: tuple[RenameRule, ...] = (
    RenameRule(r'((?:patch_embed|levels)\..+)', r'backbone.\1', 'InternImage backbone'),
    RenameRule(r'head\.(weight|bias)', r'head.fc.\1', 'final Linear'),
    RenameRule(r'((?:conv_head|dcnv3_head_x4|dcnv3_head_x3|clip_projector|fc_norm)\..+)',
               r'head.\1', 'classification head parts'),
)
CLASSIFIER = Converter('classification/internimage', CLASSIFIER_RULES,
                       signature=r'((module|model)\.)*levels\.\d+\.',
                       wrapper_prefixes=('module.', 'model.'))

# Official classification-model kwargs -> where they go in our ImageClassifier config.
_ARCH_KWARGS = ('channels', 'depths', 'groups', 'offset_scale', 'post_norm', 'layer_scale',
                'dw_kernel_size', 'res_post_norm', 'level2_post_norm',
                'level2_post_norm_block_ids', 'center_feature_scale')
_BACKBONE_KWARGS = ('core_op', 'mlp_ratio', 'drop_rate', 'drop_path_rate', 'drop_path_type',
                    'act_layer', 'norm_layer', 'remove_center', 'with_cp')
_HEAD_KWARGS = ('num_classes', 'cls_scale', 'use_clip_projector')


def convert_official_classifier(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """Official classification checkpoint (or state dict) -> ``ImageClassifier`` state dict.
    Unknown keys raise an :class:`IncompleteConversionError` naming them."""
    return CLASSIFIER.convert(checkpoint)[0]


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


