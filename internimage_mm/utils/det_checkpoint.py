"""Official InternImage detection checkpoints (mmdet 2.x era) -> this toolbox's mmdet 3.x models.

The official detectors (``detection/`` of the InternImage repository, mmdet 2.28 / mmcv 1.x)
save their weights under these names; the converted names are those of the models built from
``configs/detection/`` (checked by building them and listing their keys, see
``tests/test_tools/test_det_converter.py``):

* **Backbone** (``backbone.patch_embed.*``, ``backbone.levels.*``): identical.
* **Mask R-CNN / Cascade Mask R-CNN**: the FPN (``neck.lateral_convs``/``fpn_convs``), the RPN
  head (``rpn_head.rpn_conv``/``rpn_cls``/``rpn_reg``), the box heads
  (``roi_head.bbox_head[.i].shared_convs.k.{conv,bn}``, ``shared_fcs``, ``fc_cls``,
  ``fc_reg``) and the mask heads (``roi_head.mask_head[.i].convs.k.conv``, ``upsample``,
  ``conv_logits``) kept their names and shapes in mmdet 3.x: identity renames, restricted to
  these modules so that anything else is reported.
* **DINO**: the official head owned the whole transformer (``bbox_head.transformer.*``, mmcv 1.x
  ``BaseTransformerLayer`` lists ``attentions``/``ffns``/``norms``); mmdet 3.x moved it into the
  detector with named sub-modules. :data:`DINO_RULES` is the table; in short (``T.`` =
  ``bbox_head.transformer.``, official -> mmdet 3.x :class:`LegacyDINO`):

  - ``T.level_embeds`` -> ``level_embed``
  - ``T.enc_output.*`` -> ``memory_trans_fc.*``; ``T.enc_output_norm.*`` -> ``memory_trans_norm.*``
  - ``T.query_embed.weight`` -> ``query_embedding.weight``
  - ``T.encoder.layers.N.attentions.0.*`` -> ``encoder.layers.N.self_attn.*``
  - ``T.decoder.layers.N.attentions.0.attn.*`` -> ``decoder.layers.N.self_attn.attn.*``
  - ``T.decoder.layers.N.attentions.1.*`` -> ``decoder.layers.N.cross_attn.*``
  - ``T.{encoder,decoder}.layers.N.ffns.0.layers.{0.0,1}.*`` ->
    ``{encoder,decoder}.layers.N.ffn.layers.{0.0,1}.*``
  - ``T.{encoder,decoder}.layers.N.norms.K.*`` -> ``{encoder,decoder}.layers.N.norms.K.*``
  - ``T.decoder.ref_point_head.{0,2}.*`` -> ``decoder.ref_point_head.layers.{0,1}.*``
  - ``T.decoder.norm.*`` -> ``decoder.norm.*``
  - ``bbox_head.label_embedding.weight`` -> ``dn_query_generator.label_embedding.weight``
  - ``bbox_head.cls_branches.*``, ``bbox_head.reg_branches.*`` and the ChannelMapper
    ``neck.*``: unchanged.

  The official ``ref_point_head`` takes 512 inputs (128 sine features per box coordinate)
  where mmdet 3.x's ``DINO`` takes 1024, so the configs use
  :class:`~internimage_mm.models.detectors.LegacyDINO`, which has the official shape. No
  tensor is reshaped or permuted by the conversion.

Keys of the mmdet 2.x ``ExpMomentumEMAHook`` (``ema_<param_name_with_underscores>``, the
Cascade 3x checkpoints) are dropped and listed: they hold the *raw* weights, the EMA weights
being swapped into the parameters before the official checkpoint was saved. Any other key
that no rule matches is reported by name, and the conversion refuses to return silently
incomplete output unless ``allow_missing=True``.
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint import extract_state_dict, strip_wrapper_prefixes

ARCHS = ('mask-rcnn', 'cascade', 'dino')


@dataclass(frozen=True)
class RenameRule:
    """``pattern`` (a full-match regular expression on an official key) -> ``replacement``
    (``re`` template with back references); ``what`` names the module, for reports."""
    pattern: str
    replacement: str
    what: str

    def apply(self, key: str) -> str | None:
        m = re.fullmatch(self.pattern, key)
        return None if m is None else m.expand(self.replacement)


_WB = r'(weight|bias)'
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_MSDA = r'((?:sampling_offsets|attention_weights|value_proj|output_proj)\.(?:weight|bias))'
_T = r'bbox_head\.transformer\.'

_BACKBONE = RenameRule(r'backbone\.((?:patch_embed|levels)\..+)', r'backbone.\1',
                       'InternImage backbone (same keys)')
_FPN = RenameRule(r'neck\.((?:lateral_convs|fpn_convs)\.\d+\.conv\.' + _WB + ')', r'neck.\1',
                  'FPN (same keys)')
_RPN = RenameRule(r'rpn_head\.((?:rpn_conv|rpn_cls|rpn_reg)\.' + _WB + ')', r'rpn_head.\1',
                  'RPN head (same keys)')
_MASK_HEAD_PARTS = r'(?:convs\.\d+\.conv|upsample|conv_logits)\.' + _WB

#: Mask R-CNN (FPN, Shared2FC box head, FCN mask head): identity on the known modules.
MASK_RCNN_RULES: tuple[RenameRule, ...] = (
    _BACKBONE, _FPN, _RPN,
    RenameRule(r'roi_head\.bbox_head\.((?:shared_fcs\.\d+|fc_cls|fc_reg)\.' + _WB + ')',
               r'roi_head.bbox_head.\1', 'Shared2FC box head (same keys)'),
    RenameRule(r'roi_head\.mask_head\.(' + _MASK_HEAD_PARTS + ')', r'roi_head.mask_head.\1',
               'FCN mask head (same keys)'),
)

#: Cascade Mask R-CNN (3 stages of 4conv1fc SyncBN box heads and FCN mask heads): identity.
CASCADE_RULES: tuple[RenameRule, ...] = (
    _BACKBONE, _FPN, _RPN,
    RenameRule(r'roi_head\.bbox_head\.(\d+\.shared_convs\.\d+\.(?:conv\.' + _WB + r'|bn\.' + _BN
               + '))', r'roi_head.bbox_head.\1', 'box head shared convs (same keys)'),
    RenameRule(r'roi_head\.bbox_head\.(\d+\.(?:shared_fcs\.\d+|fc_cls|fc_reg)\.' + _WB + ')',
               r'roi_head.bbox_head.\1', 'box head fcs (same keys)'),
    RenameRule(r'roi_head\.mask_head\.(\d+\.' + _MASK_HEAD_PARTS + ')', r'roi_head.mask_head.\1',
               'FCN mask heads (same keys)'),
)

#: DINO: the official DINOHead / DinoTransformer layout -> mmdet 3.x DINO (LegacyDINO).
DINO_RULES: tuple[RenameRule, ...] = (
    _BACKBONE,
    RenameRule(r'neck\.((?:convs|extra_convs)\.\d+\.(?:conv|gn)\.' + _WB + ')', r'neck.\1',
               'ChannelMapper (same keys)'),
    RenameRule(_T + r'level_embeds', 'level_embed', 'level embeddings'),
    RenameRule(_T + r'enc_output\.' + _WB, r'memory_trans_fc.\1', 'encoder output projection'),
    RenameRule(_T + r'enc_output_norm\.' + _WB, r'memory_trans_norm.\1', 'encoder output norm'),
    RenameRule(_T + r'query_embed\.weight', 'query_embedding.weight', 'content queries'),
    RenameRule(_T + r'encoder\.layers\.(\d+)\.attentions\.0\.' + _MSDA,
               r'encoder.layers.\1.self_attn.\2', 'encoder deformable self-attention'),
    RenameRule(_T + r'decoder\.layers\.(\d+)\.attentions\.0\.attn\.'
               r'(in_proj_weight|in_proj_bias|out_proj\.weight|out_proj\.bias)',
               r'decoder.layers.\1.self_attn.attn.\2', 'decoder self-attention'),
    RenameRule(_T + r'decoder\.layers\.(\d+)\.attentions\.1\.' + _MSDA,
               r'decoder.layers.\1.cross_attn.\2', 'decoder deformable cross-attention'),
    RenameRule(_T + r'(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.layers\.(0\.0|1)\.' + _WB,
               r'\1.layers.\2.ffn.layers.\3.\4', 'FFN'),
    RenameRule(_T + r'(encoder|decoder)\.layers\.(\d+)\.norms\.(\d+)\.' + _WB,
               r'\1.layers.\2.norms.\3.\4', 'layer norms'),
    RenameRule(_T + r'decoder\.ref_point_head\.0\.' + _WB, r'decoder.ref_point_head.layers.0.\1',
               'query position MLP, layer 1'),
    RenameRule(_T + r'decoder\.ref_point_head\.2\.' + _WB, r'decoder.ref_point_head.layers.1.\1',
               'query position MLP, layer 2'),
    RenameRule(_T + r'decoder\.norm\.' + _WB, r'decoder.norm.\1', 'decoder final norm'),
    RenameRule(r'bbox_head\.label_embedding\.weight', 'dn_query_generator.label_embedding.weight',
               'denoising label embedding'),
    RenameRule(r'bbox_head\.cls_branches\.(\d+)\.' + _WB, r'bbox_head.cls_branches.\1.\2',
               'classification branches (same keys)'),
    RenameRule(r'bbox_head\.reg_branches\.(\d+)\.([024])\.' + _WB,
               r'bbox_head.reg_branches.\1.\2.\3', 'box branches (same keys)'),
)

RULES: dict[str, tuple[RenameRule, ...]] = {
    'mask-rcnn': MASK_RCNN_RULES, 'cascade': CASCADE_RULES, 'dino': DINO_RULES}

#: Keys that are not model weights and are dropped (and listed): mmdet 2.x EMA hook buffers.
DROPPED_PATTERNS = (r'ema_\w+', )


class IncompleteConversionError(RuntimeError):
    """Raised when keys are left unmapped (or, against a reference model, missing)."""


@dataclass
class DetConversionReport:
    """What :func:`convert_official_detector` did.

    ``renamed``: official key -> new key (identity renames included); ``dropped``: known
    non-weight keys (EMA buffers); ``unmapped``: official keys no rule matches; with a
    ``reference`` state dict also ``missing`` (reference keys not produced), ``unexpected``
    (produced keys the reference lacks) and ``shape_mismatch`` (``'key: src vs reference'``).
    """
    arch: str
    renamed: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.unmapped or self.missing or self.unexpected or self.shape_mismatch)

    def problems(self) -> list[str]:
        """One line per problem key, for error messages."""
        lines = [f'unmapped (no rename rule): {k}' for k in self.unmapped]
        lines += [f'missing (the model needs it, the checkpoint lacks it): {k}'
                  for k in self.missing]
        lines += [f'unexpected (the model has no such key): {k}' for k in self.unexpected]
        lines += [f'shape mismatch: {k}' for k in self.shape_mismatch]
        return lines

    def summary(self) -> str:
        renamed = sum(1 for a, b in self.renamed.items() if a != b)
        return (f'{self.arch}: {len(self.renamed)} tensors converted ({renamed} renamed), '
                f'{len(self.dropped)} dropped (EMA buffers), {len(self.unmapped)} unmapped, '
                f'{len(self.missing)} missing, {len(self.unexpected)} unexpected, '
                f'{len(self.shape_mismatch)} shape mismatches')


def detect_arch(state_dict: Mapping[str, Any]) -> str:
    """``'dino'``, ``'cascade'`` or ``'mask-rcnn'`` from an official state dict's keys."""
    keys = list(state_dict)
    if any(k.startswith('bbox_head.transformer.') for k in keys):
        return 'dino'
    if any(re.match(r'roi_head\.bbox_head\.\d+\.', k) for k in keys):
        return 'cascade'
    if any(k.startswith('roi_head.bbox_head.') for k in keys):
        return 'mask-rcnn'
    raise ValueError('cannot tell the detector from the keys (no bbox_head.transformer.* or '
                     'roi_head.bbox_head.*); pass arch= one of ' + ', '.join(ARCHS))


def rename_key(key: str, arch: str) -> str | None:
    """The new name of official ``key`` under ``arch``'s rules, or None when no rule matches."""
    for rule in RULES[arch]:
        new = rule.apply(key)
        if new is not None:
            return new
    return None


def convert_official_detector(
        checkpoint: Mapping[str, Any],
        arch: str | None = None,
        reference: Mapping[str, Any] | None = None,
        allow_missing: bool = False) -> tuple[OrderedDict, DetConversionReport]:
    """Convert an official InternImage detection state dict (or checkpoint) to our names.

    Args:
        checkpoint: the loaded checkpoint or its state dict (``state_dict``/``model`` entries
            and ``module.`` prefixes are handled).
        arch: ``'mask-rcnn'``, ``'cascade'`` or ``'dino'``; detected from the keys if None.
        reference: optional target state dict (tensors, or anything with ``.shape``, e.g. a
            meta-device model's): keys and shapes are then checked against it.
        allow_missing: return the partial result instead of raising when keys are unmapped,
            missing, unexpected or of the wrong shape (they are still reported).

    Returns:
        The converted state dict (official order) and a :class:`DetConversionReport`.

    Raises:
        IncompleteConversionError: listing every problem key by name, unless
            ``allow_missing``.
    """
    state_dict = strip_wrapper_prefixes(extract_state_dict(checkpoint))
    arch = detect_arch(state_dict) if arch is None else arch
    if arch not in RULES:
        raise ValueError(f'arch must be one of {ARCHS}, got {arch!r}')
    report = DetConversionReport(arch=arch)
    out: OrderedDict[str, Any] = OrderedDict()
    sources: dict[str, str] = {}
    for key, value in state_dict.items():
        new = rename_key(key, arch)
        if new is None:
            if any(re.fullmatch(p, key) for p in DROPPED_PATTERNS):
                report.dropped.append(key)
            else:
                report.unmapped.append(key)
            continue
        if new in out:
            raise ValueError(f'{key!r} and {sources[new]!r} both convert to {new!r}')
        out[new], sources[new] = value, key
        report.renamed[key] = new

    if reference is not None:
        report.missing = [k for k in reference if k not in out]
        report.unexpected = [k for k in out if k not in reference]
        for key, value in out.items():
            if key in reference:
                src, ref = tuple(getattr(value, 'shape', ())), tuple(reference[key].shape)
                if src != ref:
                    report.shape_mismatch.append(f'{key} ({sources[key]}): checkpoint {src} '
                                                 f'vs model {ref}')
    if not report.complete and not allow_missing:
        raise IncompleteConversionError(
            f'official {arch} checkpoint: conversion incomplete ({report.summary()}):\n  '
            + '\n  '.join(report.problems()))
    return out, report


def convert_official_detector_checkpoint(
        src: str | os.PathLike, dst: str | os.PathLike, arch: str | None = None,
        reference: Mapping[str, Any] | None = None,
        allow_missing: bool = False) -> DetConversionReport:
    """Load ``src``, convert it (see :func:`convert_official_detector`) and save
    ``{'state_dict': ..., 'meta': ...}`` to ``dst``, loadable by mmengine (``load_from``,
    ``tools/test.py``). The class names of the official ``meta['CLASSES']`` are kept as
    ``meta['dataset_meta']['classes']``. Nothing is written when the conversion raises."""
    checkpoint = CheckpointLoader.load_checkpoint(str(src), map_location='cpu')
    state_dict, report = convert_official_detector(checkpoint, arch, reference, allow_missing)
    meta: dict[str, Any] = dict(converted_from=os.path.basename(str(src)), arch=report.arch,
                                converter='internimage_mm.utils.det_checkpoint')
    old_meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if isinstance(old_meta, Mapping) and old_meta.get('CLASSES'):
        meta['dataset_meta'] = dict(classes=tuple(old_meta['CLASSES']))
    dst_dir = os.path.dirname(os.path.abspath(str(dst)))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save({'state_dict': state_dict, 'meta': meta}, str(dst))
    return report
