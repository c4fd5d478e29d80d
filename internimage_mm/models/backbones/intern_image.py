"""InternImage: large-scale vision foundation models with deformable convolutions.

Wang et al., "InternImage: Exploring Large-Scale Vision Foundation Models with Deformable
Convolutions", CVPR 2023 (arXiv:2211.05778).

The network (paper §3.3, Fig. 3): a stem of two 3x3 stride-2 convolutions (stride 4), then four
stages of basic blocks at strides 4, 8, 16 and 32 with widths C, 2C, 4C, 8C, separated by 3x3
stride-2 downsampling convolutions. A basic block is a transformer-like block whose token mixer
is DCNv3 (:class:`~internimage_mm.models.layers.DCNv3`) followed by an MLP. Module names and
nesting equal the official implementation's, so official checkpoints load key-for-key.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...analysis.machine import cpu_has_native_bf16
from ..layers.activation import act_, may_overwrite
from ..layers.dcnv3 import CORE_OPS, DCNv3
from ..layers.drop_path import DropPath, residual_add
from ..layers.fused_linear import linear_act, linear_add, uses_packed
from ..layers.norm import build_act_layer, build_layout_norm
from ..layers.packed_weights import PackedWeights
from ..layers.tiled_mlp import tiled_mlp, tiled_mlp_applies
from .checkpoint import load_backbone_checkpoint

# Architecture settings per size (paper Table 1; official configs, §1.1 of the spec).
# `layer_scale` is the value of the released ImageNet models (no gammas in T and H); the
# official detection/segmentation configs of T-XL set `layer_scale=1.0` explicitly.
_ARCH_KEYS = ('channels', 'depths', 'groups', 'offset_scale', 'post_norm', 'layer_scale',
              'dw_kernel_size', 'res_post_norm', 'level2_post_norm',
              'level2_post_norm_block_ids', 'center_feature_scale')
_ARCH_DEFAULTS: dict[str, Any] = dict(
    offset_scale=1.0, post_norm=False, layer_scale=None, dw_kernel_size=None,
    res_post_norm=False, level2_post_norm=False, level2_post_norm_block_ids=None,
    center_feature_scale=False)
ARCH_SETTINGS: dict[str, dict[str, Any]] = {
    't': dict(channels=64, depths=(4, 4, 18, 4), groups=(4, 8, 16, 32)),
    's': dict(channels=80, depths=(4, 4, 21, 4), groups=(5, 10, 20, 40), post_norm=True,
              layer_scale=1e-5),
    'b': dict(channels=112, depths=(4, 4, 21, 4), groups=(7, 14, 28, 56), post_norm=True,
              layer_scale=1e-5),
    'l': dict(channels=160, depths=(5, 5, 22, 5), groups=(10, 20, 40, 80), offset_scale=2.0,
              post_norm=True, layer_scale=1e-5),
    'xl': dict(channels=192, depths=(5, 5, 24, 5), groups=(12, 24, 48, 96), offset_scale=2.0,
               post_norm=True, layer_scale=1e-5),
    'h': dict(channels=320, depths=(6, 6, 32, 6), groups=(10, 20, 40, 80), dw_kernel_size=5,
              res_post_norm=True, level2_post_norm=True,
              level2_post_norm_block_ids=(5, 11, 17, 23, 29), center_feature_scale=True),
}
ARCH_ALIASES = {'tiny': 't', 'small': 's', 'base': 'b', 'large': 'l', 'xlarge': 'xl',
                'huge': 'h'}


class _FromArch:
    """Sentinel default: take the value from ``arch`` (None is a meaningful override)."""

    def __repr__(self) -> str:
        return '<from arch>'


FROM_ARCH: Any = _FromArch()


_bf16_warned = False


def _warn_if_bf16_is_emulated(x: Tensor) -> None:
    """Warn once when bfloat16 autocast runs on a CPU that has no bfloat16 instructions."""
    global _bf16_warned
    if _bf16_warned or x.device.type != 'cpu' or not torch.is_autocast_enabled('cpu') \
            or torch.get_autocast_dtype('cpu') != torch.bfloat16 \
            or torch.compiler.is_compiling() or cpu_has_native_bf16():
        return
    _bf16_warned = True
    warnings.warn('InternImage: bfloat16 autocast on a CPU without bfloat16 instructions '
                  '(AVX512-BF16 or AMX): oneDNN emulates them, which makes the model several '
                  'times slower than float32 (7-9x for inference, 23-30x for a training step '
                  'on an AVX2 CPU, docs/benchmarks.md). Run float32 on this CPU.',
                  RuntimeWarning, stacklevel=3)


class StemLayer(nn.Module):
    """Stride-4 stem: conv3x3/s2 (C/2) -> LN -> act -> conv3x3/s2 (C) -> LN; NCHW in, NHWC out."""

    def __init__(self, in_channels: int, out_channels: int, act_layer: str = 'GELU',
                 norm_layer: str = 'LN') -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv1 = nn.Conv2d(in_channels, mid, 3, stride=2, padding=1)
        self.norm1 = build_layout_norm(mid, norm_layer, 'channels_first', 'channels_first')
        self.act = build_act_layer(act_layer)
        self.conv2 = nn.Conv2d(mid, out_channels, 3, stride=2, padding=1)
        self.norm2 = build_layout_norm(out_channels, norm_layer, 'channels_first', 'channels_last')

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type == 'cpu':
            # oneDNN convolves channels-last memory natively, and the LNs between the convs
            # then read and write it without the copies a channels-first tensor costs
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.norm1(self.conv1(x))
        x = act_(self.act, x) if may_overwrite(x) else self.act(x)
        return self.norm2(self.conv2(x))


class DownsampleLayer(nn.Module):
    """conv3x3/s2 without bias (C -> 2C) then LN; NHWC in and out."""

    def __init__(self, channels: int, norm_layer: str = 'LN') -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False)
        self.norm = build_layout_norm(2 * channels, norm_layer, 'channels_first', 'channels_last')

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)))


class MLPLayer(nn.Module):
    """fc1 -> act -> dropout -> fc2 -> dropout, channels-last."""

    def __init__(self, channels: int, hidden_channels: int, act_layer: str = 'GELU',
                 drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden_channels)
        self.act = build_act_layer(act_layer)
        self.fc2 = nn.Linear(hidden_channels, channels)
        self.drop = nn.Dropout(drop)
        self.packed_weights = PackedWeights()  # CPU inference; no state-dict entries

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        """``drop(fc2(drop(act(fc1(x)))))``, plus ``residual`` when given (the block's skip
        connection: on CPU it is added inside fc2's kernel)."""
        packed = self.packed_weights
        # Packed weights (eval mode) beat the row tiles: their kernels fuse every epilogue.
        if (not self.training or self.drop.p == 0) \
                and not uses_packed(packed, x, self.fc1, self.fc2) \
                and tiled_mlp_applies(x, self.fc1, self.fc2, residual):
            return tiled_mlp(x, self.fc1, self.act, self.fc2, residual)
        x = self.drop(linear_act(x, self.fc1, self.act, packed))
        if residual is None:
            return self.drop(linear_act(x, self.fc2, packed=packed))
        if self.training and self.drop.p > 0:
            return residual + self.drop(self.fc2(x))
        return linear_add(x, self.fc2, residual, packed)


class InternImageLayer(nn.Module):
    """Basic block: DCNv3 token mixer and MLP, each in a residual branch.

    Residual rules (official; ``dp`` = drop path, ``g1``/``g2`` = layer-scale gammas):

    * pre-norm (default): ``x = x + dp(g1 * dcn(norm1(x)))``; ``x = x + dp(g2 * mlp(norm2(x)))``
    * ``post_norm``:      ``x = x + dp(g1 * norm1(dcn(x)))``; ``x = x + dp(g2 * norm2(mlp(x)))``
    * ``res_post_norm`` (H): ``x = x + dp(res_post_norm1(dcn(norm1(x))))``, likewise for the MLP.

    Without ``layer_scale`` the gammas are absent (factor 1). As in the official code,
    ``res_post_norm`` only takes effect without ``layer_scale`` (its norms are built anyway) and
    ``post_norm`` wins over it.
    """

    def __init__(self, core_op: str, channels: int, groups: int, mlp_ratio: float = 4.,
                 drop: float = 0., drop_path: float = 0., act_layer: str = 'GELU',
                 norm_layer: str = 'LN', post_norm: bool = False,
                 layer_scale: float | None = None, offset_scale: float = 1.0,
                 with_cp: bool = False, dw_kernel_size: int | None = None,
                 res_post_norm: bool = False, center_feature_scale: bool = False,
                 remove_center: bool = False) -> None:
        super().__init__()
        self.post_norm = post_norm
        self.res_post_norm = res_post_norm
        self.with_cp = with_cp
        self.layer_scale = layer_scale is not None
        if self.layer_scale:
            self.gamma1 = nn.Parameter(torch.full((channels, ), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((channels, ), float(layer_scale)))
        # The block norms are LayerNorms whatever `norm_layer` says (official behaviour).
        self.norm1 = build_layout_norm(channels, 'LN')
        self.dcn = DCNv3(channels=channels, kernel_size=3, dw_kernel_size=dw_kernel_size,
                         pad=1, dilation=1, group=groups, offset_scale=offset_scale,
                         act_layer=act_layer, norm_layer=norm_layer,
                         center_feature_scale=center_feature_scale,
                         remove_center=remove_center, core_op=core_op)
        self.drop_path = DropPath(drop_path) if drop_path > 0. else nn.Identity()
        self.norm2 = build_layout_norm(channels, 'LN')
        self.mlp = MLPLayer(channels, int(channels * mlp_ratio), act_layer, drop)
        if res_post_norm:
            self.res_post_norm1 = build_layout_norm(channels, 'LN')
            self.res_post_norm2 = build_layout_norm(channels, 'LN')

    def _forward(self, x: Tensor) -> Tensor:
        dp = self.drop_path
        # residual_add: the skip, drop path and layer scale in one pass (layers/drop_path.py)
        g1, g2 = (self.gamma1, self.gamma2) if self.layer_scale else (None, None)
        if self.layer_scale or self.post_norm or self.res_post_norm:
            if self.post_norm:
                x = residual_add(x, self.norm1(self.dcn(x)), g1, dp)
                return residual_add(x, self.norm2(self.mlp(x)), g2, dp)
            if self.layer_scale:
                x = residual_add(x, self.dcn(self.norm1(x)), g1, dp)
                return residual_add(x, self.mlp(self.norm2(x)), g2, dp)
            x = residual_add(x, self.res_post_norm1(self.dcn(self.norm1(x))), None, dp)
            return residual_add(x, self.res_post_norm2(self.mlp(self.norm2(x))), None, dp)
        if not self.training or isinstance(dp, nn.Identity):  # no drop path: fuse the skips
            x = self.dcn(self.norm1(x), residual=x)
            return self.mlp(self.norm2(x), residual=x)
        x = residual_add(x, self.dcn(self.norm1(x)), None, dp)
        return residual_add(x, self.mlp(self.norm2(x)), None, dp)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: [N, H, W, C] -> [N, H, W, C]."""
        if self.with_cp and x.requires_grad:
            # Recompute the block in backward instead of storing its activations.
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class InternImageStage(nn.Module):
    """One level: ``depth`` blocks, optional post norms (H stage 3), the level norm, and the
    downsampling to the next level.

    The level norm exists when ``not post_norm or center_feature_scale`` (T and H). ``forward``
    returns the level output (taken before the downsample) and the downsampled input of the
    next level.
    """

    def __init__(self, core_op: str, channels: int, depth: int, groups: int,
                 downsample: bool = True, mlp_ratio: float = 4., drop: float = 0.,
                 drop_path: Sequence[float] = (), act_layer: str = 'GELU',
                 norm_layer: str = 'LN', post_norm: bool = False, offset_scale: float = 1.0,
                 layer_scale: float | None = None, with_cp: bool = False,
                 dw_kernel_size: int | None = None,
                 post_norm_block_ids: Sequence[int] | None = None,
                 res_post_norm: bool = False, center_feature_scale: bool = False,
                 remove_center: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            InternImageLayer(
                core_op, channels, groups, mlp_ratio=mlp_ratio, drop=drop,
                drop_path=drop_path[i], act_layer=act_layer, norm_layer=norm_layer,
                post_norm=post_norm, layer_scale=layer_scale, offset_scale=offset_scale,
                with_cp=with_cp, dw_kernel_size=dw_kernel_size, res_post_norm=res_post_norm,
                center_feature_scale=center_feature_scale, remove_center=remove_center)
            for i in range(depth)
        ])
        self.use_norm = not post_norm or center_feature_scale
        if self.use_norm:
            self.norm = build_layout_norm(channels, 'LN')
        self.post_norm_block_ids = list(post_norm_block_ids or [])
        if self.post_norm_block_ids:
            self.post_norms = nn.ModuleList(
                build_layout_norm(channels, 'LN') for _ in self.post_norm_block_ids)
        self.downsample = DownsampleLayer(channels, norm_layer) if downsample else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.post_norm_block_ids:  # extra norms inside H's deep stage 3
                x = self.post_norms[self.post_norm_block_ids.index(i)](x)
        if self.use_norm:
            x = self.norm(x)
        return x, (x if self.downsample is None else self.downsample(x))


@MODELS.register_module()
class InternImage(BaseModule):
    """InternImage backbone (CVPR 2023) returning NCHW feature maps at strides 4/8/16/32.

    ``arch`` picks a row of :data:`ARCH_SETTINGS` (``'t'``, ``'s'``, ``'b'``, ``'l'``, ``'xl'``,
    ``'h'``, or ``'tiny'`` ... ``'huge'``) or is a dict with at least ``channels``, ``depths``
    and ``groups``. Every architecture option given explicitly overrides the arch value
    (``layer_scale=None`` included). Stage ``i`` has ``channels * 2**i`` channels split into
    ``groups[i]`` DCNv3 groups.

    Args:
        arch: size name or dict of architecture settings.
        channels, depths, groups, offset_scale, post_norm, layer_scale, dw_kernel_size,
            res_post_norm, level2_post_norm, level2_post_norm_block_ids, center_feature_scale:
            architecture overrides (official meaning; see :class:`InternImageLayer` and
            :class:`InternImageStage`).
        core_op: ``'DCNv3'`` (compiled kernels) or ``'DCNv3_pytorch'``.
        mlp_ratio: MLP hidden width / channels.
        drop_rate: dropout after the stem and in the MLPs.
        drop_path_rate: stochastic depth of the last block; ``drop_path_type='linear'`` grows
            it linearly from 0 over all blocks, ``'uniform'`` uses it everywhere.
        act_layer: ``'GELU'``, ``'ReLU'`` or ``'SiLU'``.
        norm_layer: norm of the stem, downsampling and DCNv3 depthwise branch (``'LN'``).
        remove_center: drop the centre point of every DCNv3 kernel.
        with_cp: gradient checkpointing per block (saves memory, costs a recomputation).
        out_indices: levels whose outputs are returned (after the level norm / post norms,
            before the downsample).
        frozen_stages: -1 freezes nothing; ``k >= 0`` freezes the stem and levels ``0..k-1``
            (parameters without gradients, modules kept in eval mode).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads an official or
            mmpretrain/mmdet/mmseg checkpoint (see :meth:`init_weights`).
    """

    def __init__(self,
                 arch: str | dict = 't',
                 channels: int = FROM_ARCH,
                 depths: Sequence[int] = FROM_ARCH,
                 groups: Sequence[int] = FROM_ARCH,
                 offset_scale: float = FROM_ARCH,
                 post_norm: bool = FROM_ARCH,
                 layer_scale: float | None = FROM_ARCH,
                 dw_kernel_size: int | None = FROM_ARCH,
                 res_post_norm: bool = FROM_ARCH,
                 level2_post_norm: bool = FROM_ARCH,
                 level2_post_norm_block_ids: Sequence[int] | None = FROM_ARCH,
                 center_feature_scale: bool = FROM_ARCH,
                 core_op: str = 'DCNv3',
                 mlp_ratio: float = 4.0,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.2,
                 drop_path_type: str = 'linear',
                 act_layer: str = 'GELU',
                 norm_layer: str = 'LN',
                 remove_center: bool = False,
                 with_cp: bool = False,
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1,
                 init_cfg: dict | list[dict] | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        given = dict(channels=channels, depths=depths, groups=groups, offset_scale=offset_scale,
                     post_norm=post_norm, layer_scale=layer_scale, dw_kernel_size=dw_kernel_size,
                     res_post_norm=res_post_norm, level2_post_norm=level2_post_norm,
                     level2_post_norm_block_ids=level2_post_norm_block_ids,
                     center_feature_scale=center_feature_scale)
        cfg = self._resolve_arch(arch, {k: v for k, v in given.items() if v is not FROM_ARCH})
        self.arch_settings = cfg
        depths, groups = list(cfg['depths']), list(cfg['groups'])
        self.num_levels = len(depths)
        self.stage_channels = [int(cfg['channels'] * 2**i) for i in range(self.num_levels)]
        self._check_options(cfg, core_op, drop_path_type, out_indices, frozen_stages)
        self.depths = depths
        self.core_op = core_op
        self.out_indices = tuple(sorted(set(int(i) for i in out_indices)))
        self.frozen_stages = frozen_stages

        total = sum(depths)
        if drop_path_type == 'uniform':
            dpr = [float(drop_path_rate)] * total
        else:  # linear from 0 to drop_path_rate (plain floats: also works on the meta device)
            dpr = [drop_path_rate * i / (total - 1) if total > 1 else 0. for i in range(total)]

        self.patch_embed = StemLayer(3, self.stage_channels[0], act_layer, norm_layer)
        self.pos_drop = nn.Dropout(drop_rate)
        post_norm_ids = cfg['level2_post_norm_block_ids'] if cfg['level2_post_norm'] else None
        self.levels = nn.ModuleList()
        for i in range(self.num_levels):
            self.levels.append(InternImageStage(
                core_op, self.stage_channels[i], depths[i], groups[i],
                downsample=i < self.num_levels - 1, mlp_ratio=mlp_ratio, drop=drop_rate,
                drop_path=dpr[sum(depths[:i]):sum(depths[:i + 1])], act_layer=act_layer,
                norm_layer=norm_layer, post_norm=cfg['post_norm'],
                offset_scale=cfg['offset_scale'], layer_scale=cfg['layer_scale'],
                with_cp=with_cp, dw_kernel_size=cfg['dw_kernel_size'],
                post_norm_block_ids=post_norm_ids if i == 2 else None,
                res_post_norm=cfg['res_post_norm'],
                center_feature_scale=cfg['center_feature_scale'],
                remove_center=remove_center))
        self._freeze_stages()
        self.pretrained_report = None  # filled by init_weights when a checkpoint is loaded

    @staticmethod
    def _resolve_arch(arch: str | dict, overrides: dict[str, Any]) -> dict[str, Any]:
        if isinstance(arch, str):
            key = ARCH_ALIASES.get(arch.lower(), arch.lower())
            if key not in ARCH_SETTINGS:
                raise ValueError(f'InternImage: unknown arch {arch!r}; choose one of '
                                 f'{sorted(ARCH_SETTINGS)} or pass a dict')
            base = ARCH_SETTINGS[key]
        elif isinstance(arch, dict):
            unknown = sorted(set(arch) - set(_ARCH_KEYS))
            if unknown:
                raise ValueError(f'InternImage: unknown arch setting(s) {unknown}; '
                                 f'known: {list(_ARCH_KEYS)}')
            base = arch
        else:
            raise TypeError(f'InternImage: arch must be a str or dict, got {type(arch).__name__}')
        cfg = {**_ARCH_DEFAULTS, **base, **overrides}
        missing = [k for k in ('channels', 'depths', 'groups') if k not in cfg]
        if missing:
            raise ValueError(f'InternImage: arch dict lacks {missing}')
        return cfg

    def _check_options(self, cfg: dict[str, Any], core_op: str, drop_path_type: str,
                       out_indices: Sequence[int], frozen_stages: int) -> None:
        depths, groups = list(cfg['depths']), list(cfg['groups'])
        if len(groups) != len(depths) or not depths:
            raise ValueError(f'InternImage: depths {depths} and groups {groups} must be '
                             'non-empty and of equal length')
        for i, (c, g) in enumerate(zip(self.stage_channels, groups)):
            if g < 1 or c % g != 0:
                raise ValueError(f'InternImage: stage {i} has {c} channels (channels='
                                 f"{cfg['channels']} * 2**{i}), not divisible by groups[{i}]={g}")
        if core_op not in CORE_OPS:
            raise ValueError(f'InternImage: core_op must be one of {sorted(CORE_OPS)}, '
                             f'got {core_op!r}')
        if drop_path_type not in ('linear', 'uniform'):
            raise ValueError("InternImage: drop_path_type must be 'linear' or 'uniform', "
                             f'got {drop_path_type!r}')
        if isinstance(out_indices, int) or not out_indices or any(
                not 0 <= int(i) < self.num_levels for i in out_indices):
            raise ValueError(f'InternImage: out_indices must be a non-empty sequence of level '
                             f'indices in [0, {self.num_levels - 1}], got {out_indices!r}')
        if not -1 <= frozen_stages <= self.num_levels:
            raise ValueError(f'InternImage: frozen_stages must be in [-1, {self.num_levels}], '
                             f'got {frozen_stages}')
        if cfg['level2_post_norm']:
            ids = cfg['level2_post_norm_block_ids']
            if self.num_levels < 3 or not ids or any(
                    not 0 <= i < depths[2] for i in ids):
                raise ValueError('InternImage: level2_post_norm=True needs '
                                 'level2_post_norm_block_ids, block indices of level 2 (depth '
                                 f'{depths[2] if self.num_levels > 2 else 0}), got {ids!r}')

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        modules = [self.patch_embed, *self.levels[:self.frozen_stages]]
        for m in modules:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> InternImage:
        """Set the train mode, keeping frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    def init_official_weights(self) -> None:
        """The official initialisation: truncated-normal (std 0.02) Linear weights with zero
        bias, unit/zero LayerNorms, then the DCNv3 reset (zero offsets/masks, Xavier
        projections). Convolutions keep PyTorch's default."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, DCNv3):
                m.reset_parameters()

    def init_weights(self) -> None:
        """Official init, other ``init_cfg`` entries, then a ``Pretrained`` checkpoint if any.

        The checkpoint (a path or URL) is loaded by :func:`.checkpoint.load_backbone_checkpoint`:
        ``state_dict`` or ``model`` entry, ``module.``/``model.``/``backbone.`` prefixes
        stripped, classifier keys ignored (reported), missing and unexpected keys logged by
        name, shape mismatches and checkpoints of other models raised.
        """
        if self.is_init:
            return super().init_weights()  # mmengine logs the repeated call
        cfgs = self.init_cfg if isinstance(self.init_cfg, list) else (
            [self.init_cfg] if self.init_cfg else [])
        pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
        others = [c for c in cfgs if c.get('type') != 'Pretrained']
        self.init_official_weights()
        init_cfg, self.init_cfg = self.init_cfg, (others or None)
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        for c in pretrained:
            self.pretrained_report = load_backbone_checkpoint(
                self, c['checkpoint'], map_location=c.get('map_location', 'cpu'),
                prefix=c.get('prefix'))

    def forward_stem(self, x: Tensor) -> Tensor:
        """``x``: [N, 3, H, W] -> the stem output, channels-last [N, H/4, W/4, C]."""
        _warn_if_bf16_is_emulated(x)
        return self.pos_drop(self.patch_embed(x))

    def forward_levels(self, x: Tensor,
                       level_input: Callable[[int, Tensor], Tensor] | None = None
                       ) -> list[Tensor]:
        """The output of every level (channels-last, before its downsample) from the stem
        output ``x``. ``level_input(i, x)``, when given, returns the input that level ``i``
        takes instead of ``x`` (the composite connections of
        :class:`~internimage_mm.models.backbones.CBInternImage`)."""
        outs = []
        for i, level in enumerate(self.levels):
            if level_input is not None:
                x = level_input(i, x)
            out, x = level(x)
            outs.append(out)
        return outs

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """``x``: [N, 3, H, W] -> tuple of [N, C_i, H/2**(i+2), W/2**(i+2)] for out_indices."""
        outs = self.forward_levels(self.forward_stem(x))
        return tuple(outs[i].permute(0, 3, 1, 2).contiguous() for i in self.out_indices)
