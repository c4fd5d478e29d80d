"""Official InternImage detection checkpoints (mmdet 2.x era) -> our mmdet 3.x models.

The official detectors (``detection/`` of the InternImage repository, mmdet 2.28 / mmcv 1.x)
save their weights under these names; the converted names are those of the models built from
``configs/detection/`` (checked by building them and listing their keys in the tests):

* **Backbone** (``backbone.patch_embed.*``, ``backbone.levels.*``): identical.
* **Mask R-CNN / Cascade Mask R-CNN**: the FPN, the RPN head, the box heads and the mask heads
  kept their names and shapes in mmdet 3.x: identity rules, restricted to these modules so that
  anything else is reported.
* **DINO**: the official head owned the whole transformer (``bbox_head.transformer.*``, mmcv 1.x
  ``BaseTransformerLayer`` lists ``attentions``/``ffns``/``norms``); mmdet 3.x moved it into the
  detector with named sub-modules. :data:`DINO_RULES` is the table; in short (``T.`` =
  ``bbox_head.transformer.``, official -> our :class:`LegacyDINO`):

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

  The official ``ref_point_head`` takes 512 inputs where mmdet 3.x's ``DINO`` takes 1024, so the
  configs use :class:`~internimage_mm.models.detectors.LegacyDINO`. No tensor is reshaped.
* **CB-DINO** (CB-InternImage-H): ``backbone.cb_modules.{0,1}.*`` and ``backbone.cb_linears.*``
  keep their names (:class:`CBInternImage` has the official layout); the list-built official
  neck ``neck.0.*`` becomes ``neck.*``; the head as DINO's.

Keys of the mmdet 2.x ``ExpMomentumEMAHook`` (``ema_<param_name_with_underscores>``, the
Cascade 3x checkpoints) are dropped and listed: they hold the *raw* weights, the EMA weights
being swapped into the parameters before the official checkpoint was saved.
"""
from __future__ import annotations

from .base import Converter
from .rules import RenameRule, same

_WB = r'(weight|bias)'
_BN = r'(weight|bias|running_mean|running_var|num_batches_tracked)'
_MSDA = r'((?:sampling_offsets|attention_weights|value_proj|output_proj)\.(?:weight|bias))'
_T = r'bbox_head\.transformer\.'

BACKBONE = same(r'backbone\.(?:patch_embed|levels)\..+', 'InternImage backbone (same keys)')
_FPN = same(r'neck\.(?:lateral_convs|fpn_convs)\.\d+\.conv\.' + _WB, 'FPN (same keys)')
_RPN = same(r'rpn_head\.(?:rpn_conv|rpn_cls|rpn_reg)\.' + _WB, 'RPN head (same keys)')
_MASK_HEAD_PARTS = r'(?:convs\.\d+\.conv|upsample|conv_logits)\.' + _WB

#: Mask R-CNN (FPN, Shared2FC box head, FCN mask head): identity on the known modules.
MASK_RCNN_RULES: tuple[RenameRule, ...] = (
    BACKBONE, _FPN, _RPN,
    same(r'roi_head\.bbox_head\.(?:shared_fcs\.\d+|fc_cls|fc_reg)\.' + _WB,
         'Shared2FC box head (same keys)'),
    same(r'roi_head\.mask_head\.' + _MASK_HEAD_PARTS, 'FCN mask head (same keys)'),
)

#: Cascade Mask R-CNN (3 stages of 4conv1fc SyncBN box heads and FCN mask heads): identity.
CASCADE_RULES: tuple[RenameRule, ...] = (
    BACKBONE, _FPN, _RPN,
    same(r'roi_head\.bbox_head\.\d+\.shared_convs\.\d+\.(?:conv\.' + _WB + r'|bn\.' + _BN + ')',
         'box head shared convs (same keys)'),
    same(r'roi_head\.bbox_head\.\d+\.(?:shared_fcs\.\d+|fc_cls|fc_reg)\.' + _WB,
         'box head fcs (same keys)'),
    same(r'roi_head\.mask_head\.\d+\.' + _MASK_HEAD_PARTS, 'FCN mask heads (same keys)'),
)

#: The DINO transformer and head: official DINOHead / DinoTransformer -> mmdet 3.x DINO.
DINO_HEAD_RULES: tuple[RenameRule, ...] = (
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
    same(r'bbox_head\.cls_branches\.\d+\.' + _WB, 'classification branches (same keys)'),
    same(r'bbox_head\.reg_branches\.\d+\.[024]\.' + _WB, 'box branches (same keys)'),
)

#: DINO: backbone, ChannelMapper and the head.
DINO_RULES: tuple[RenameRule, ...] = (
    BACKBONE,
    same(r'neck\.(?:convs|extra_convs)\.\d+\.(?:conv|gn)\.' + _WB, 'ChannelMapper (same keys)'),
    *DINO_HEAD_RULES,
)

#: DINO on CB-InternImage (``CBDINO``): the two backbones and their composite connections keep
#: their names; the official neck was built from a list (``neck.0.*``, an mmcv Sequential).
CB_DINO_RULES: tuple[RenameRule, ...] = (
    same(r'backbone\.cb_modules\.[01]\.(?:patch_embed|levels|gamma\d)(?:\..+)?',
         'CB-InternImage backbones (same keys)'),
    same(r'backbone\.cb_linears\.\d\.\d\.' + _WB, 'composite connections (same keys)'),
    RenameRule(r'neck\.0\.((?:convs|extra_convs)\.\d+\.(?:conv|gn)\.' + _WB + ')', r'neck.\1',
               'shared ChannelMapper (list-built neck.0 -> neck)'),
    *DINO_HEAD_RULES,
)

#: mmdet 2.x EMA hook buffers: not weights.
EMA_BUFFERS = (r'ema_\w+', )

MASK_RCNN = Converter('detection/mask-rcnn', MASK_RCNN_RULES,
                      signature=r'(module\.)?roi_head\.bbox_head\.(shared_fcs|fc_cls|fc_reg)\.',
                      dropped=EMA_BUFFERS)
CASCADE = Converter('detection/cascade', CASCADE_RULES,
                    signature=r'(module\.)?roi_head\.bbox_head\.\d+\.', dropped=EMA_BUFFERS)
DINO = Converter('detection/dino', DINO_RULES, signature=r'(module\.)?' + _T,
                 dropped=EMA_BUFFERS)
CB_DINO = Converter('detection/cb-dino', CB_DINO_RULES,
                    signature=r'(module\.)?backbone\.cb_modules\.', dropped=EMA_BUFFERS)
#: By the names used in the tools' ``--arch`` option.
DETECTORS: dict[str, Converter] = {'mask-rcnn': MASK_RCNN, 'cascade': CASCADE, 'dino': DINO,
                                   'cb-dino': CB_DINO}
