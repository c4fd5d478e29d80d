"""The DCNv3 module: the learnable projections around the deformable sampling operator."""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

import ops_dcnv3

from .activation import act_, may_overwrite
from .fused_linear import linear_act, linear_add, linear_cat
from .norm import ToChannelsLast, build_act_layer, build_layout_norm
from .packed_weights import PackedWeights
from .point_softmax import point_softmax

#: ``core_op`` name -> sampling core (both take the same arguments; see :mod:`ops_dcnv3`).
CORE_OPS = {
    'DCNv3': ops_dcnv3.dcnv3,  # compiled CPU/CUDA kernels (reference fallback when unbuilt)
    'DCNv3_pytorch': ops_dcnv3.dcnv3_pytorch,  # pure PyTorch
}


@MODELS.register_module()
class DCNv3(nn.Module):
    r"""Deformable convolution v3 (InternImage, CVPR 2023, eq. 5).

    .. math::
        y(p_0) = \sum_{g=1}^{G} \sum_{k=1}^{K} w_g\, m_{gk}\, x_g(p_0 + p_k + \Delta p_{gk})

    The channels are split into ``G`` groups that share one projection ``w_g`` (here
    ``input_proj`` before and ``output_proj`` after the sampling, as in the paper's separable
    form); each group has its own offsets :math:`\Delta p_{gk}` and modulation scalars
    :math:`m_{gk}`, predicted from a depthwise-convolved copy of the input. The modulation
    scalars are softmax-normalised over the ``K`` points of each group (paper §3.2), which keeps
    training stable. ``offset_scale`` scales both the regular grid :math:`p_k` and the offsets.

    Optional (InternImage-H): ``center_feature_scale`` blends the sampled features with the
    projected input by a learned per-group gate,
    ``out = out * (1 - s) + input_proj(x) * s`` with ``s = sigmoid(W f + b)`` computed from the
    depthwise features ``f`` and expanded to each group's channels. ``remove_center`` drops the
    kernel's centre point (``K = k*k - 1``).

    Args:
        channels: C, the input and output channels.
        kernel_size: k, the sampling kernel (k*k points per group).
        dw_kernel_size: kernel of the depthwise conv feeding offsets and masks
            (default ``kernel_size``).
        pad: padding of the sampling grid; default ``dilation * (k - 1) // 2`` keeps the size.
        dilation: dilation of the sampling grid.
        group: G; ``channels`` must be divisible by it.
        offset_scale: scale of the grid and of the predicted offsets.
        act_layer / norm_layer: activation and norm after the depthwise conv.
        center_feature_scale: enable the centre feature gate (adds
            ``center_feature_scale_proj_weight`` [G, C] and ``_bias`` [G]).
        remove_center: drop the centre sampling point (odd ``kernel_size`` only).
        core_op: ``'DCNv3'`` (compiled kernels) or ``'DCNv3_pytorch'`` (pure PyTorch).

    Shape: input and output are channels-last, ``[N, H, W, C]``.
    """

    def __init__(self,
                 channels: int = 64,
                 kernel_size: int = 3,
                 dw_kernel_size: int | None = None,
                 pad: int | None = None,
                 dilation: int = 1,
                 group: int = 4,
                 offset_scale: float = 1.0,
                 act_layer: str = 'GELU',
                 norm_layer: str = 'LN',
                 center_feature_scale: bool = False,
                 remove_center: bool = False,
                 core_op: str = 'DCNv3') -> None:
        super().__init__()
        if group < 1 or channels % group != 0:
            raise ValueError(f'DCNv3: channels ({channels}) must be divisible by group ({group})')
        if remove_center and kernel_size % 2 == 0:
            raise ValueError(f'DCNv3: remove_center needs an odd kernel_size, got {kernel_size}')
        group_channels = channels // group
        if group_channels & (group_channels - 1) != 0:
            # Same advice as the official module: the CUDA kernels are tuned for powers of 2.
            warnings.warn(f'DCNv3: channels per group ({group_channels}) is not a power of 2; '
                          'the CUDA kernels are less efficient.', stacklevel=2)
        dw_kernel_size = kernel_size if dw_kernel_size is None else dw_kernel_size
        self.channels = channels
        self.kernel_size = kernel_size
        self.dw_kernel_size = dw_kernel_size
        self.dilation = dilation
        self.pad = dilation * (kernel_size - 1) // 2 if pad is None else pad
        self.group = group
        self.group_channels = group_channels
        self.offset_scale = offset_scale
        self.center_feature_scale = center_feature_scale
        self.remove_center = bool(remove_center)
        self.set_core_op(core_op)
        num_points = kernel_size * kernel_size - int(self.remove_center)

        # Registration order follows the official module, so state-dict keys come out in the
        # same order: dw_conv.0 (conv), dw_conv.1.1 (LN after a permute), dw_conv.2 (act).
        self.dw_conv = nn.Sequential(
            nn.Conv2d(channels, channels, dw_kernel_size, stride=1,
                      padding=(dw_kernel_size - 1) // 2, groups=channels),
            build_layout_norm(channels, norm_layer, 'channels_first', 'channels_last'),
            build_act_layer(act_layer))
        self.offset = nn.Linear(channels, group * num_points * 2)
        self.mask = nn.Linear(channels, group * num_points)
        self.input_proj = nn.Linear(channels, channels)
        self.output_proj = nn.Linear(channels, channels)
        if center_feature_scale:
            self.center_feature_scale_proj_weight = nn.Parameter(torch.zeros(group, channels))
            self.center_feature_scale_proj_bias = nn.Parameter(torch.zeros(group))
        self.packed_weights = PackedWeights()  # CPU inference; no state-dict entries
        self.reset_parameters()

    def set_core_op(self, core_op: str) -> None:
        """Switch the sampling core (e.g. to ``'DCNv3_pytorch'`` for ONNX export)."""
        if core_op not in CORE_OPS:
            raise ValueError(f'DCNv3: core_op must be one of {sorted(CORE_OPS)}, got {core_op!r}')
        self.core_op = core_op
        self._core = CORE_OPS[core_op]

    def reset_parameters(self) -> None:
        """Official init: zero offsets and uniform masks at start (the op then samples the
        regular grid with equal weights), Xavier-uniform projections with zero bias."""
        for layer in (self.offset, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.input_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        """``x``: [N, H, W, C] -> [N, H, W, C], plus ``residual`` when given (a skip
        connection: on CPU it is added inside output_proj's kernel)."""
        n, h, w, _ = x.shape
        x_proj = linear_act(x, self.input_proj, packed=self.packed_weights)
        # Offsets, masks and the centre gate come from the depthwise features of the *input*
        # (not of the projection), as in the official module.
        feat = self._offset_features(x)
        args = (self.kernel_size, self.kernel_size, 1, 1, self.pad, self.pad, self.dilation,
                self.dilation, self.group, self.group_channels, self.offset_scale,
                self.remove_center)
        if self.core_op == 'DCNv3' and ops_dcnv3.softmax_kernel_applies(x_proj, feat):
            # CPU: one GEMM for offsets and mask logits, the softmax inside the kernels.
            logits = linear_cat(feat, self.offset, self.mask, packed=self.packed_weights)
            out = ops_dcnv3.dcnv3_from_logits(x_proj, logits, *args)
        else:
            offset = linear_act(feat, self.offset)
            mask = linear_act(feat, self.mask).reshape(n, h, w, self.group, -1)
            # Softmax over the K points of each group, in float32 under autocast.
            mask = point_softmax(mask).reshape(n, h, w, -1).to(x_proj.dtype)
            out = self._core(x_proj, offset, mask, *args)
        if self.center_feature_scale:
            scale = torch.sigmoid(F.linear(feat, self.center_feature_scale_proj_weight,
                                           self.center_feature_scale_proj_bias))
            scale = scale.repeat_interleave(self.group_channels, dim=-1)  # [N, H, W, C]
            out = out * (1 - scale) + x_proj * scale
        if residual is None:
            return linear_act(out, self.output_proj, packed=self.packed_weights)
        return linear_add(out, self.output_proj, residual, self.packed_weights)

    def _offset_features(self, x: Tensor) -> Tensor:
        """``dw_conv`` of channels-last ``x``: depthwise conv, norm, activation; in CPU
        float32 inference (no autocast) with the module's LayerNorm and GELU, one compiled pass
        (``ops_dcnv3.dwconv_ln``), else the modules (the activation in place where it may)."""
        conv, norm, act = self.dw_conv
        ln = norm[-1]
        if (x.device.type == 'cpu' and not torch.is_autocast_enabled('cpu')
                and len(norm) == 2 and type(norm[0]) is ToChannelsLast
                and isinstance(ln, nn.LayerNorm) and ln.normalized_shape == (self.channels, )
                and ln.elementwise_affine and ln.bias is not None
                and (type(act) is nn.GELU and act.approximate == 'none'
                     or type(act) is nn.Identity)
                and conv.stride == (1, 1) and conv.dilation == (1, 1)
                and conv.padding == ((conv.kernel_size[0] - 1) // 2, ) * 2
                and conv.kernel_size[0] == conv.kernel_size[1] and conv.groups == self.channels
                and conv.padding_mode == 'zeros'
                and may_overwrite(x, conv.weight, conv.bias, ln.weight, ln.bias)):
            return ops_dcnv3.dwconv_ln(x.contiguous(), conv.weight, conv.bias, ln.weight,
                                       ln.bias, ln.eps, gelu=type(act) is nn.GELU)
        feat = norm(conv(x.permute(0, 3, 1, 2)))
        return act_(act, feat) if may_overwrite(feat) else act(feat)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, kernel_size={self.kernel_size}, '
                f'group={self.group}, offset_scale={self.offset_scale}, '
                f'center_feature_scale={self.center_feature_scale}, '
                f'remove_center={self.remove_center}, core_op={self.core_op!r}')


def set_core_op(model: nn.Module, core_op: str) -> int:
    """Switch every DCNv3 module of ``model`` to ``core_op``; returns how many were switched."""
    modules = [m for m in model.modules() if isinstance(m, DCNv3)]
    for m in modules:
        m.set_core_op(core_op)
    return len(modules)
