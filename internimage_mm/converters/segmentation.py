"""Official InternImage segmentation checkpoints (mmseg 0.x era) -> mmseg 1.x.

The official ADE20K models are ``EncoderDecoder`` (UperNet) and ``EncoderDecoderMask2Former``
checkpoints written by mmseg 0.27 / mmcv 1.5:

* ``backbone.*``: InternImage, the same keys as :class:`~internimage_mm.models.InternImage`.
* UperNet: ``decode_head.*`` (UPerHead) and ``auxiliary_head.*`` (FCNHead) keep their names.
* Mask2Former: the official custom ``Mask2FormerHead`` is built from mmcv 1.x transformer
  layers (``attentions.N`` / ``ffns.N`` / ``norms.N`` in the order of ``operation_order``);
  mmseg 1.x reuses mmdet 3.x's Mask2Former layers, which name the sub-layers by role:

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
"""
from __future__ import annotations

from .base import Converter
from .detection import BACKBONE
from .rules import RenameRule, same

_ENC = r'(decode_head\.pixel_decoder\.encoder\.layers\.\d+\.)'
_DEC = r'(decode_head\.transformer_decoder\.layers\.\d+\.)'

#: UperNet: UPerHead and the FCNHead auxiliary head, same names.
UPERNET_RULES: tuple[RenameRule, ...] = (
    BACKBONE,
    same(r'decode_head\.(?:conv_seg|psp_modules|bottleneck|lateral_convs|fpn_convs|'
         r'fpn_bottleneck)\..+', 'UPerHead (same keys)'),
    same(r'auxiliary_head\.(?:conv_seg|convs|conv_cat)\..+', 'FCN auxiliary head (same keys)'),
)

#: Mask2Former: the table above; everything else keeps its name.
MASK2FORMER_RULES: tuple[RenameRule, ...] = (
    BACKBONE,
    RenameRule(_ENC + r'attentions\.0\.(.+)', r'\1self_attn.\2',
               'pixel decoder deformable self-attention'),
    RenameRule(_ENC + r'ffns\.0\.(.+)', r'\1ffn.\2', 'pixel decoder FFN'),
    RenameRule(_DEC + r'attentions\.0\.(.+)', r'\1cross_attn.\2', 'decoder cross-attention'),
    RenameRule(_DEC + r'attentions\.1\.(.+)', r'\1self_attn.\2', 'decoder self-attention'),
    RenameRule(_DEC + r'ffns\.0\.(.+)', r'\1ffn.\2', 'decoder FFN'),
    same(_ENC[1:-1] + r'norms\.\d+\..+', 'pixel decoder layer norms (same keys)'),
    same(_DEC[1:-1] + r'norms\.\d+\..+', 'decoder layer norms (same keys)'),
    same(r'decode_head\.pixel_decoder\.(?:input_convs|level_encoding|lateral_convs|'
         r'output_convs|mask_feature)\..+', 'pixel decoder convs (same keys)'),
    same(r'decode_head\.transformer_decoder\.post_norm\..+', 'decoder final norm (same keys)'),
    same(r'decode_head\.(?:query_embed|query_feat|level_embed|cls_embed|mask_embed|'
         r'decoder_input_projs)\..+', 'queries and embeddings (same keys)'),
)

UPERNET = Converter('segmentation/upernet', UPERNET_RULES,
                    signature=r'(module\.)?decode_head\.(psp_modules|fpn_bottleneck)\.')
MASK2FORMER = Converter('segmentation/mask2former', MASK2FORMER_RULES,
                        signature=r'(module\.)?decode_head\.pixel_decoder\.')
SEGMENTORS: dict[str, Converter] = {'upernet': UPERNET, 'mask2former': MASK2FORMER}
