"""Official InternImage segmentation checkpoints (mmseg 0.x era) -> mmseg 1.x.

The official ADE20K models are ``EncoderDecoder`` (UperNet) and ``EncoderDecoderMask2Former``
checkpoints written by mmseg 0.27 / mmcv 1.5:

* ``backbone.*``: InternImage, the same keys as :class:`~internimage_mm.models.InternImage`.
* UperNet: ``decode_head.*`` (UPerHead: ``psp_modules``, ``bottleneck``, ``lateral_convs``,
  ``fpn_convs``, ``fpn_bottleneck``, ``conv_seg``) and ``auxiliary_head.*`` (FCNHead: ``convs``,
  ``conv_seg``) keep their names in mmseg 1.x.
* Mask2Former: the official custom ``Mask2FormerHead`` is built from mmcv 1.x transformer
  layers (``attentions.N`` / ``ffns.N`` / ``norms.N`` in the order of ``operation_order``);
  mmseg 1.x reuses mmdet 3.x's Mask2Former layers, which name the sub-layers by role. The
  renames are the explicit table :data:`MASK2FORMER_RENAMES`:

  ==========================================================  ==============================
  official (``operation_order``)                               mmseg 1.x
  ==========================================================  ==============================
  ``pixel_decoder.encoder.layers.N.attentions.0`` (self_attn)  ``...layers.N.self_attn``
  ``pixel_decoder.encoder.layers.N.ffns.0``                    ``...layers.N.ffn``
  ``transformer_decoder.layers.N.attentions.0`` (cross_attn)   ``...layers.N.cross_attn``
  ``transformer_decoder.layers.N.attentions.1`` (self_attn)    ``...layers.N.self_attn``
  ``transformer_decoder.layers.N.ffns.0``                      ``...layers.N.ffn``
  ==========================================================  ==============================

  ``norms.0/1/2`` keep their indices (official order cross_attn, norm, self_attn, norm, ffn,
  norm = mmdet 3.x's ``norms[0..2]``); the pixel decoder's ``input_convs``, ``level_encoding``,
  ``lateral_convs``, ``output_convs``, ``mask_feature``, the decoder's ``post_norm`` and the
  head's ``query_embed``, ``query_feat``, ``level_embed``, ``cls_embed``, ``mask_embed`` and
  ``decoder_input_projs`` keep their names.

Every key must match a rule of the table or an explicitly unchanged name
(:data:`UNCHANGED_PATTERNS`); anything else is reported by name, never passed on silently.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .checkpoint import extract_state_dict, strip_wrapper_prefixes

__all__ = [
    'MASK2FORMER_RENAMES', 'UNCHANGED_PATTERNS', 'SegConversion', 'compare_with_model',
    'convert_official_segmentor', 'official_to_mmseg_key', 'mmseg_to_official_key',
    'to_official_segmentor'
]

_ENC = r'decode_head\.pixel_decoder\.encoder\.layers\.\d+\.'
_DEC = r'decode_head\.transformer_decoder\.layers\.\d+\.'

#: (layer prefix regex, official sub-module, mmseg 1.x sub-module).
MASK2FORMER_RENAMES: tuple[tuple[str, str, str], ...] = (
    (_ENC, 'attentions.0.', 'self_attn.'),
    (_ENC, 'ffns.0.', 'ffn.'),
    (_DEC, 'attentions.0.', 'cross_attn.'),
    (_DEC, 'attentions.1.', 'self_attn.'),
    (_DEC, 'ffns.0.', 'ffn.'),
)

#: Keys (regexes, matched at the start) whose names are the same in both layouts.
UNCHANGED_PATTERNS: tuple[str, ...] = (
    # InternImage
    r'backbone\.(patch_embed|levels)\.',
    # UperNet: UPerHead and the FCNHead auxiliary head
    r'decode_head\.(conv_seg|psp_modules|bottleneck|lateral_convs|fpn_convs|fpn_bottleneck)\.',
    r'auxiliary_head\.(conv_seg|convs|conv_cat)\.',
    # Mask2Former head
    r'decode_head\.pixel_decoder\.(input_convs|level_encoding|lateral_convs|output_convs|'
    r'mask_feature)\.',
    _ENC + r'norms\.\d+\.',
    _DEC + r'norms\.\d+\.',
    r'decode_head\.transformer_decoder\.post_norm\.',
    r'decode_head\.(query_embed|query_feat|level_embed|cls_embed|mask_embed|'
    r'decoder_input_projs)\.',
)

_UNCHANGED_RE = [re.compile(p) for p in UNCHANGED_PATTERNS]
_TO_MMSEG = [(re.compile(f'^({prefix}){re.escape(old)}'), new)
             for prefix, old, new in MASK2FORMER_RENAMES]
_TO_OFFICIAL = [(re.compile(f'^({prefix}){re.escape(new)}'), old)
                for prefix, old, new in MASK2FORMER_RENAMES]


def _rename(key: str, rules: list[tuple[re.Pattern, str]]) -> str | None:
    for pattern, replacement in rules:
        m = pattern.match(key)
        if m:
            return m.group(1) + replacement + key[m.end():]
    if any(p.match(key) for p in _UNCHANGED_RE):
        return key
    return None


def official_to_mmseg_key(key: str) -> str | None:
    """The mmseg 1.x name of an official key, or None when no rule covers it."""
    return _rename(key, _TO_MMSEG)


def mmseg_to_official_key(key: str) -> str | None:
    """The official (mmseg 0.x) name of an mmseg 1.x key, or None when no rule covers it."""
    return _rename(key, _TO_OFFICIAL)


@dataclass
class SegConversion:
    """Result of :func:`convert_official_segmentor`.

    ``state_dict``: the converted tensors; ``renamed``: ``(official, mmseg)`` pairs whose name
    changed; ``unmapped``: official keys no rule covers (left out of ``state_dict``);
    ``meta``: mmseg 1.x checkpoint meta (``dataset_meta`` from the official ``CLASSES`` /
    ``PALETTE``), empty when the checkpoint had none.
    """
    state_dict: OrderedDict
    renamed: list[tuple[str, str]] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def convert_official_segmentor(checkpoint: Mapping[str, Any]) -> SegConversion:
    """Official segmentation checkpoint (or its state dict) -> mmseg 1.x layout.

    Takes the ``state_dict``/``model`` entry (or the mapping itself) and strips ``module.``
    prefixes (DDP). Keys no rule covers are returned in ``unmapped``, not in the state dict.
    """
    state_dict = strip_wrapper_prefixes(extract_state_dict(checkpoint), ('module.', ))
    result = SegConversion(state_dict=OrderedDict())
    for key, value in state_dict.items():
        new = official_to_mmseg_key(key)
        if new is None:
            result.unmapped.append(key)
            continue
        if new != key:
            result.renamed.append((key, new))
        result.state_dict[new] = value
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    if isinstance(meta, Mapping):
        dataset_meta = {}
        if meta.get('CLASSES') is not None:
            dataset_meta['classes'] = tuple(meta['CLASSES'])
        if meta.get('PALETTE') is not None:
            dataset_meta['palette'] = [list(c) for c in meta['PALETTE']]
        if dataset_meta:
            result.meta['dataset_meta'] = dataset_meta
    return result


def to_official_segmentor(state_dict: Mapping[str, Any]) -> OrderedDict:
    """mmseg 1.x segmentor state dict -> the official layout (inverse of the table).

    Used to check the conversion round trip; raises a ValueError naming the keys no rule
    covers.
    """
    out: OrderedDict = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        old = mmseg_to_official_key(key)
        if old is None:
            unknown.append(key)
        else:
            out[old] = value
    if unknown:
        raise ValueError(f'no official name for key(s): {unknown}')
    return out


def compare_with_model(state_dict: Mapping[str, Any], model_state: Mapping[str, Any]
                       ) -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, mismatched)`` of a converted state dict against a model's
    ``state_dict()`` (which may live on the meta device: only names and shapes are used)."""
    missing = [k for k in model_state if k not in state_dict]
    unexpected = [k for k in state_dict if k not in model_state]
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(model_state[k].shape)}'
        for k in state_dict
        if k in model_state and tuple(state_dict[k].shape) != tuple(model_state[k].shape)
    ]
    return missing, unexpected, mismatched


def format_keys(keys: Iterable[str], limit: int = 50) -> str:
    """One key per line (at most ``limit``, then a count)."""
    keys = list(keys)
    lines = [f'  {k}' for k in keys[:limit]]
    if len(keys) > limit:
        lines.append(f'  ... and {len(keys) - limit} more')
    return '\n'.join(lines)
