"""Layer-wise learning-rate decay for InternImage (BEiT-style), for mmdet, mmseg and mmpretrain.

Layer-wise lr decay was introduced for fine-tuning BEiT (Bao et al., "BEiT: BERT Pre-Training of
Image Transformers", ICLR 2022, arXiv:2106.08254) and is used by InternImage (Wang et al.,
"InternImage: Exploring Large-Scale Vision Foundation Models with Deformable Convolutions",
CVPR 2023, arXiv:2211.05778) for its large detection, segmentation and classification models.
"""
from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from numbers import Real
from typing import Any

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

DEFAULT_OFFSET_LR_SCALE_KEYS = ('dcn.offset.', 'dcn.mask.', 'sampling_offsets', 'reference_points')
# The keys of the official constructors, for reproducing them exactly.
OFFICIAL_DETECTION_OFFSET_KEYS = ('sampling_offsets', 'reference_points')
OFFICIAL_CLASSIFICATION_OFFSET_KEYS = ('offset', 'attention_weights',
                                       'center_feature_scale_proj', 'alpha_beta')

_RULES = ('detection', 'classification')
_KNOWN_KEYS = frozenset({'num_layers', 'layer_decay_rate', 'decay_rule', 'offset_lr_scale',
                         'offset_lr_scale_keys', 'custom_keys', 'bypass_duplicate',
                         'decay_cb_backbones'})
# CB-InternImage: a backbone's parameters, its composite projections and their gammas.
_CB_MODULE_RE = re.compile(r'^backbone\.cb_modules\.\d+\.')
_CB_FEED_RE = re.compile(r'^backbone\.(?:cb_linears\.|cb_modules\.\d+\.gamma)(\d+)')
# Mask2Former's query, class and mask embeddings (mmseg decode head): layer 0 in the official rule.
_M2F_EMBED_PREFIXES = tuple(f'decode_head.{n}' for n in (
    'mask_embed', 'cls_embed', 'level_embed', 'query_embed', 'query_feat'))
# backbone.levels.{stage}.{part}[.{index}]...
_DET_LEVEL_RE = re.compile(r'^backbone\.levels\.(\d+)\.([^.]+)(?:\.(\d+))?')
# Inserted into parameter names by FSDP (use_orig_params), torch's checkpoint_wrapper and
# torch.compile; the rules apply to the model's own names.
_WRAPPER_PREFIX_RE = re.compile(r'(_fsdp_wrapped_module|_checkpoint_wrapped_module|_orig_mod)\.')
# Classification names with or without the `backbone.` prefix (mmpretrain ImageClassifier or a
# bare backbone).
_CLS_LEVEL_RE = re.compile(r'^(?:backbone\.)?levels\.(\d+)\.([^.]+)(?:\.(\d+))?')
_CLS_STEM_RE = re.compile(r'^(?:backbone\.)?patch_embed\.')
_DET_NO_DECAY_KEYS = ('norm', 'relative_position', 'sampling_offsets')


def _original_ndims(model: nn.Module) -> dict[str, int]:
    """``{name: ndim}`` of the parameters inside FSDP units (``use_orig_params``), whose
    ``param.ndim`` is 1 on every rank (each holds a flat 1-D slice of the weight), with names
    relative to the model FSDP wraps and without wrapper prefixes. Empty without FSDP."""
    ndims: dict[str, int] = {}
    for prefix, sub in model.named_modules():
        flat = getattr(sub, '_flat_param', None)
        if flat is None or not hasattr(flat, '_fqns') or not hasattr(flat, '_shapes'):
            continue
        for fqn, shape in zip(flat._fqns, flat._shapes):
            name = _WRAPPER_PREFIX_RE.sub('', f'{prefix}.{fqn}' if prefix else fqn)
            ndims[name] = len(shape)
    return ndims


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class InternImageLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    r"""Layer-wise lr decay for InternImage: one parameter group per parameter.

    Registered in mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS``, so
    ``constructor='InternImageLayerDecayOptimizerConstructor'`` works in the mmdet, mmseg and
    mmpretrain scopes. The rule is BEiT's layer-wise decay (Bao et al., ICLR 2022) as used by
    InternImage (Wang et al., CVPR 2023): the closer a parameter is to the input, the smaller its
    lr. Each group's lr is absolute, ``lr = base_lr * lr_scale``; mmengine's schedulers then
    scale all groups by the same factor.

    **Detection/segmentation rule** (``decay_rule='detection'``, the default; the official
    ``CustomLayerDecayOptimizerConstructor``). With :math:`r` = ``layer_decay_rate``,
    :math:`d` = ``depths``, :math:`D_s = \sum_{i<s} d_i` and :math:`S` the last stage index:

    .. math::

        N = \mathrm{num\_layers} + 2, \qquad
        \mathrm{lr\_scale} = r^{\,N - 1 - \mathrm{layer\_id}}

        \mathrm{layer\_id} = \begin{cases}
          0 & \texttt{backbone.patch\_embed*}, \text{ names containing } \texttt{level\_embeds},
              \text{ the mmdet-3 DINO/Deformable-DETR parameter } \texttt{level\_embed},\\
            & \texttt{decode\_head.\{mask\_embed,cls\_embed,level\_embed,query\_embed,
              query\_feat\}*} \text{ (Mask2Former)}\\
          k + 1 + D_s & \texttt{backbone.levels.}s\texttt{.\{blocks,post\_norms\}.}k\texttt{.*}\\
          1 + D_{s+1} & \texttt{backbone.levels.}s\texttt{.\{downsample,norm\}.*},\ s < S\\
          1 + D_S & \texttt{backbone.levels.}S\texttt{.norm.*}
              \text{ (shares the id of the last stage's block 0)}\\
          N - 1 & \text{everything else (neck, heads): } \mathrm{lr\_scale} = 1
        \end{cases}

    so the last backbone block gets :math:`r` (not 1) and the stem :math:`r^{N-1}`. For
    ``post_norms`` (InternImage-H stage 3) :math:`k` is the index in the post-norm list. The
    official configs use ``num_layers = sum(depths)``. mmdet 3.x renamed DINO's
    ``bbox_head.transformer.level_embeds`` to the detector parameter ``level_embed``; it is
    matched too, so DINO keeps the official smallest lr for it. Weight decay is 0 for 1-D
    parameters, names ending in ``.bias`` and names containing ``norm``, ``relative_position``
    or ``sampling_offsets``.

    **Classification rule** (``decay_rule='classification'``, the official ImageNet
    ``optimizer.py`` with ``InternImage.lr_decay_keywords``). Blocks are counted from the last
    one: with :math:`L = \sum_i d_i` and :math:`g = D_s + k` the global index of block
    :math:`k` of stage :math:`s`,

    .. math::

        \mathrm{lr\_scale} = r^{\,L - \mathrm{layer\_id}}, \qquad
        \mathrm{layer\_id} = \begin{cases}
          g + 1 & \texttt{levels.}s\texttt{.blocks.}k\texttt{.*}
                  \text{ (the last block gets } r^0 = 1)\\
          1 & \texttt{patch\_embed.*} \text{ (same as stage-1 block 0)}\\
          1 + D_{s+1} & \texttt{levels.}s\texttt{.\{downsample,norm\}.*},\ s < S
                  \text{ (same as block 0 of stage } s+1)\\
          L & \text{everything else, incl. } \texttt{levels.}S\texttt{.norm},
              \texttt{post\_norms}, \text{ the head}: \mathrm{lr\_scale} = 1
        \end{cases}

    Names may carry a ``backbone.`` prefix (mmpretrain ``ImageClassifier``) or not (a bare
    backbone). ``num_layers`` is not used by this rule (optional; if given it must be
    ``>= sum(depths)``). Weight decay is 0 for 1-D parameters and names ending in ``.bias``.

    **Composite backbones** (CB-InternImage, ``backbone.cb_modules.{0,1}.*``). The official rule
    names only ``backbone.levels.*``, so in the official CB-DINO run neither backbone was decayed
    (scale 1); that is the default here too. ``decay_cb_backbones=True`` applies the rule to
    both backbones block by block (each as if it were ``backbone``), the composite projections
    ``cb_linears.i`` and gammas ``gamma{i}`` taking the id of lead level ``i``'s first block.

    **Offsets.** ``lr_scale`` is further multiplied by ``offset_lr_scale`` for names containing
    any of ``offset_lr_scale_keys`` (default ``('dcn.offset.', 'dcn.mask.', 'sampling_offsets',
    'reference_points')``). This deliberately differs from the official det/seg constructor,
    whose ``offset_lr_scale`` only matches MSDeformAttn ``sampling_offsets``/
    ``reference_points`` and therefore never touches InternImage's own DCNv3 offset and mask
    layers (``dcn.offset``, ``dcn.mask``); in its segmentation copy it matched nothing at all.
    To reproduce the official detection behaviour exactly set
    ``offset_lr_scale_keys=('sampling_offsets', 'reference_points')``. The official
    classification ``DCN_LR_MUL`` multiplies names containing ``offset``,
    ``attention_weights``, ``center_feature_scale_proj`` or ``alpha_beta`` (not ``dcn.mask``):
    reproduce it with ``offset_lr_scale=DCN_LR_MUL`` and
    ``offset_lr_scale_keys=('offset', 'attention_weights', 'center_feature_scale_proj',
    'alpha_beta')``.

    **custom_keys.** mmengine's ``custom_keys`` (longest matching key wins, ties broken
    alphabetically) multiply on top: ``lr *= lr_mult``, ``weight_decay *= decay_mult``, and the
    key's other items are copied into the group as in mmengine. The other mmengine paramwise
    options (``bias_lr_mult``, ``norm_decay_mult``, ...) are rejected, not silently ignored.

    Every group holds one parameter and carries ``lr``, ``weight_decay`` (omitted only when the
    optimizer config has no ``weight_decay`` and the parameter decays, so the optimizer default
    applies), ``layer_id``, ``lr_scale`` (= lr / base_lr, all multipliers included),
    ``param_name`` and torch's ``param_names`` list. Parameters with ``requires_grad=False`` are
    skipped. A summary (parameters and lr scale per layer id) is logged.

    The model owns its facts: the depths (blocks per stage) are read from the model's backbone
    when the optimizer is built, and ``num_layers`` defaults to ``sum(depths)`` as in every
    official config.

    Args:
        optim_wrapper_cfg (dict): the ``optim_wrapper`` config (``optimizer`` needs ``lr``).
        paramwise_cfg (dict): ``layer_decay_rate`` (in (0, 1]), optional ``decay_rule``,
            ``num_layers`` (>= sum(depths); default sum(depths)), ``offset_lr_scale`` (default
            1.0), ``offset_lr_scale_keys``, ``custom_keys``, ``decay_cb_backbones``.

    Example:
        >>> optim_wrapper = dict(
        ...     type='OptimWrapper',
        ...     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
        ...     constructor='InternImageLayerDecayOptimizerConstructor',
        ...     paramwise_cfg=dict(layer_decay_rate=0.9, offset_lr_scale=1.0))
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        self._orig_ndims: dict[str, int] = {}  # set per model by __call__ (FSDP shapes)
        cfg = self.paramwise_cfg
        if 'depths' in cfg:
            raise self._err('depths', 'is read from the model (its backbone\'s `depths`): '
                            'remove it from the config')
        unknown = sorted(set(cfg) - _KNOWN_KEYS)
        if unknown:
            raise ValueError(f'{type(self).__name__}: unsupported paramwise_cfg key(s) {unknown}; '
                             f'supported: {sorted(_KNOWN_KEYS)}')
        if self.base_lr is None:
            raise ValueError(f'{type(self).__name__}: optimizer config needs `lr`')
        self.decay_rule = cfg.get('decay_rule', 'detection')
        if self.decay_rule not in _RULES:
            raise ValueError(f'{type(self).__name__}: paramwise_cfg `decay_rule` must be one of '
                             f'{_RULES}, got {self.decay_rule!r}')
        self._num_layers_cfg = cfg.get('num_layers')
        if self._num_layers_cfg is not None and (isinstance(self._num_layers_cfg, bool) or
                                                 not isinstance(self._num_layers_cfg, int) or
                                                 self._num_layers_cfg < 1):
            raise self._err('num_layers', f'must be a positive int, got {self._num_layers_cfg!r}')
        self.decay_rate = self._check_rate(cfg.get('layer_decay_rate'))
        self.offset_lr_scale = cfg.get('offset_lr_scale', 1.0)
        if (isinstance(self.offset_lr_scale, bool) or not isinstance(self.offset_lr_scale, Real)
                or not math.isfinite(self.offset_lr_scale) or self.offset_lr_scale < 0):
            raise ValueError(f'{type(self).__name__}: paramwise_cfg `offset_lr_scale` must be a '
                             f'finite number >= 0, got {self.offset_lr_scale!r}')
        keys = cfg.get('offset_lr_scale_keys', DEFAULT_OFFSET_LR_SCALE_KEYS)
        if isinstance(keys, str):
            keys = (keys, )
        if (not isinstance(keys, Sequence) or not keys
                or not all(isinstance(k, str) and k for k in keys)):
            raise ValueError(f'{type(self).__name__}: paramwise_cfg `offset_lr_scale_keys` must '
                             f'be a non-empty sequence of non-empty strings, got {keys!r}')
        self.offset_lr_scale_keys = tuple(keys)
        self.decay_cb_backbones = bool(cfg.get('decay_cb_backbones', False))
        if self.decay_cb_backbones and self.decay_rule != 'detection':
            raise self._err('decay_cb_backbones', "needs decay_rule='detection'")

    def configure(self, model: nn.Module) -> None:
        """Read the depths from ``model`` (its ``backbone``, or the model itself when it is the
        backbone; through FSDP/checkpoint/compile wrappers) and set the number of layers:
        ``num_layers`` of the config, else ``sum(depths)`` as in every official config."""
        for name, module in model.named_modules():
            if _WRAPPER_PREFIX_RE.sub('', name + '.') not in ('.', 'backbone.'):
                continue
            depths = getattr(module, 'depths', None)
            if not isinstance(depths, str) and isinstance(depths, Sequence) and depths and all(
                    isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in depths):
                break
        else:
            backbone = getattr(model, 'backbone', model)
            raise ValueError(f'{type(self).__name__}: the model\'s backbone '
                             f'({type(backbone).__name__}) has no `depths` (blocks per stage); '
                             'this constructor is for InternImage backbones')
        self.depths = [int(d) for d in depths]
        self.num_layers = self._check_num_layers(self._num_layers_cfg)
        # detection: N = num_layers + 2, ids from 0 (stem) to N - 1 (neck and heads)
        self.max_layer_id = (self.num_layers + 1 if self.decay_rule == 'detection'
                             else sum(self.depths))

    # ------------------------------------------------------------------ validation
    def _err(self, key: str, msg: str) -> ValueError:
        return ValueError(f'{type(self).__name__}: paramwise_cfg `{key}` {msg}')

    def _check_num_layers(self, num_layers: Any) -> int:
        total = sum(self.depths)
        if num_layers is None:
            return total
        if total > num_layers:
            raise self._err('num_layers', f'= {num_layers} is smaller than sum(depths) = '
                            f'{total} (depths={self.depths})')
        if total != num_layers:
            print_log(f'{type(self).__name__}: num_layers={num_layers} != sum(depths)={total}; '
                      'the official configs use num_layers = sum(depths)',
                      logger='current', level=logging.WARNING)
        return num_layers

    def _check_rate(self, rate: Any) -> float:
        if rate is None:
            raise self._err('layer_decay_rate', 'is required (in (0, 1]; 1.0 disables decay)')
        if isinstance(rate, bool) or not isinstance(rate, Real) or not 0 < rate <= 1:
            raise self._err('layer_decay_rate', f'must be a number in (0, 1], got {rate!r}')
        return float(rate)

    # ------------------------------------------------------------------ rules
    def _stage_offset(self, stage: int, name: str) -> int:
        """sum(depths[:stage]), checking that the stage exists."""
        if stage >= len(self.depths):
            raise ValueError(f'{type(self).__name__}: the backbone has {len(self.depths)} stages '
                             f'(depths {self.depths}) but parameter {name!r} is in stage {stage}')
        return sum(self.depths[:stage])

    def _check_block(self, stage: int, part: str, index: int, name: str) -> None:
        if part == 'blocks' and index >= self.depths[stage]:
            raise ValueError(f'{type(self).__name__}: the backbone\'s depths {self.depths} give '
                             f'stage {stage} {self.depths[stage]} block(s) but the model has '
                             f'{name!r}')

    def get_layer_id(self, name: str) -> int:
        """Layer id of parameter ``name`` under the configured rule (see the class docs)."""
        if self.decay_rule == 'detection':
            return self._detection_layer_id(name)
        return self._classification_layer_id(name)

    def _detection_layer_id(self, name: str) -> int:
        if self.decay_cb_backbones:
            feed = _CB_FEED_RE.match(name)
            if feed:  # the composite input of lead level i: the id of its first block
                stage = int(feed.group(1))
                return 1 + self._stage_offset(stage, name)
            name = _CB_MODULE_RE.sub('backbone.', name)
        if (name.startswith('backbone.patch_embed') or 'level_embeds' in name
                or name == 'level_embed' or name.startswith(_M2F_EMBED_PREFIXES)):
            return 0
        m = _DET_LEVEL_RE.match(name)
        if m is None:
            return self.max_layer_id
        stage, part, index = int(m.group(1)), m.group(2), m.group(3)
        offset = self._stage_offset(stage, name)
        last = len(self.depths) - 1
        if part in ('downsample', 'norm'):
            return 1 + offset + (self.depths[stage] if stage < last else 0)
        if index is None:  # an unknown, non-indexed part of a level
            return self.max_layer_id
        self._check_block(stage, part, int(index), name)
        return int(index) + 1 + offset

    def _classification_layer_id(self, name: str) -> int:
        if _CLS_STEM_RE.match(name):
            return 1
        m = _CLS_LEVEL_RE.match(name)
        if m is None:
            return self.max_layer_id
        stage, part, index = int(m.group(1)), m.group(2), m.group(3)
        offset = self._stage_offset(stage, name)
        if part == 'blocks' and index is not None:
            self._check_block(stage, part, int(index), name)
            return offset + int(index) + 1
        if part in ('downsample', 'norm') and stage < len(self.depths) - 1:
            return 1 + offset + self.depths[stage]
        return self.max_layer_id  # last-stage norm, post_norms, anything else: scale 1

    def get_layer_scale(self, layer_id: int) -> float:
        """Layer-decay scale of ``layer_id``: ``r ** (max_layer_id - layer_id)``."""
        return self.decay_rate**(self.max_layer_id - layer_id)

    def __call__(self, model: nn.Module) -> Any:
        # Before mmengine unwraps the model: FSDP's root unit holds the stem/neck/head shapes.
        self._orig_ndims = _original_ndims(model)
        self.configure(model.module if hasattr(model, 'module') else model)  # DDP wrapper
        return super().__call__(model)

    def _no_weight_decay(self, name: str, param: nn.Parameter) -> bool:
        ndim = self._orig_ndims.get(name, param.ndim)
        if ndim == 1 or name.endswith('.bias'):
            return True
        return self.decay_rule == 'detection' and any(k in name for k in _DET_NO_DECAY_KEYS)

    # ------------------------------------------------------------------ groups
    def add_params(self, params: list[dict], module: nn.Module, prefix: str = '',
                   **kwargs: Any) -> None:
        """Append one group per trainable parameter of ``module`` to ``params``."""
        if not hasattr(self, 'depths'):
            self.configure(module)
        custom_keys = self.paramwise_cfg.get('custom_keys', {})
        sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)
        per_layer: dict[int, int] = defaultdict(int)
        no_decay = offset_scaled = custom = skipped = 0
        for name, param in module.named_parameters(prefix=prefix):
            # FSDP / activation-checkpoint wrappers insert these between the real names
            name = _WRAPPER_PREFIX_RE.sub('', name)
            if not param.requires_grad:
                skipped += 1
                continue
            layer_id = self.get_layer_id(name)
            per_layer[layer_id] += 1
            scale = self.get_layer_scale(layer_id)
            if any(k in name for k in self.offset_lr_scale_keys):
                scale *= self.offset_lr_scale
                offset_scaled += 1
            if self._no_weight_decay(name, param):
                weight_decay = 0.
                no_decay += 1
            else:
                weight_decay = self.base_wd
            group: dict[str, Any] = {'params': [param]}
            key = next((k for k in sorted_keys if k in name), None)
            if key is not None:
                custom += 1
                scale *= custom_keys[key].get('lr_mult', 1.)
                if weight_decay is not None:
                    weight_decay *= custom_keys[key].get('decay_mult', 1.)
                group.update(custom_keys[key])  # as mmengine: the key's items go in the group
            group['lr'] = self.base_lr * scale
            if weight_decay is not None:
                group['weight_decay'] = weight_decay
            group.update(layer_id=layer_id, lr_scale=scale, param_name=name, param_names=[name])
            params.append(group)
        self._log_summary(per_layer, no_decay, offset_scaled, custom, skipped)

    def _log_summary(self, per_layer: dict[int, int], no_decay: int, offset_scaled: int,
                     custom: int, skipped: int) -> None:
        total = sum(per_layer.values())
        head = (f'{type(self).__name__}: rule={self.decay_rule}, depths={self.depths} (from '
                'the backbone), '
                f'layer_decay_rate={self.decay_rate}, ')
        head += (f'num_layers={self.num_layers} (N={self.num_layers + 2})'
                 if self.decay_rule == 'detection' else f'sum(depths)={sum(self.depths)}')
        lines = [head + f'; {total} trainable parameter tensors ({skipped} frozen, skipped)',
                 '  layer_id  params  lr_scale']
        lines += [f'  {i:>8d}  {per_layer[i]:>6d}  {self.get_layer_scale(i):.6g}'
                  for i in sorted(per_layer)]
        lines.append(f'  weight decay 0: {no_decay}; offset_lr_scale={self.offset_lr_scale} on '
                     f'{offset_scaled} (keys {list(self.offset_lr_scale_keys)}); '
                     f'custom_keys matched: {custom}')
        print_log('\n'.join(lines), logger='current')
        if total and self.decay_rate < 1 and set(per_layer) == {self.max_layer_id}:
            print_log(f'{type(self).__name__}: layer_decay_rate={self.decay_rate} but no '
                      'parameter matched a backbone rule (expected names like '
                      "'backbone.levels.0.blocks.0...'): every lr is scaled by 1",
                      logger='current', level=logging.WARNING)
        if total and self.offset_lr_scale != 1 and not offset_scaled:
            print_log(f'{type(self).__name__}: offset_lr_scale={self.offset_lr_scale} matched '
                      f'no parameter (keys {list(self.offset_lr_scale_keys)})',
                      logger='current', level=logging.WARNING)
