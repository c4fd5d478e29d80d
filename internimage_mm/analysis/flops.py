"""Parameter and FLOPs counting with the official InternImage convention.

The official ``get_flops.py`` scripts count a model with a module-hook counter (one multiply-add
= one FLOP) and then *add* the cost of the DCNv3 sampling core analytically, because the
compiled operator is invisible to the counter: for each stage ``i``

    depth_i * 5 * n_i * K * C_i,   n_i = (H / (4 * 2**i)) * (W / (4 * 2**i))  (float division)

with ``K`` sampling points (3x3 = 9) and ``C_i`` the stage width (bilinear sampling and
modulation of the K points). The linear/conv layers inside DCNv3 are counted by the counter.

Here the counter is mmengine's :class:`~mmengine.analysis.FlopAnalyzer` (jit tracing, one
multiply-add = one FLOP). When the compiled operator is built it appears in the trace as the
unsupported op ``ops_dcnv3::dcnv3_forward`` and counts 0; when the pure-PyTorch path runs
instead, its ``grid_sampler`` FLOPs inside DCNv3 modules are taken out again, so the core is
counted exactly once, analytically, either way.

Two conventions (``count_model(..., convention=...)``):

* ``'mmengine'`` (default): every operator the jit trace sees and FlopAnalyzer has a rule for
  (conv, linear, matmul/bmm/einsum, norms, upsampling, ...), whichever module it runs in.
* ``'mmcv1'``: what the official mmcv 1.x ``get_model_complexity_info`` counted, as closely
  as FlopAnalyzer allows. That counter hooks modules, and only modules whose *exact* type is
  in its table (``nn.Conv*``, ``nn.Linear``, norms, pooling, ``nn.Upsample`` and a few
  activations at one FLOP per output element): work done in functional code (einsum mask
  predictions, the projections inside ``nn.MultiheadAttention``, whose ``out_proj`` is a
  ``Linear`` *subclass*, deformable sampling) is invisible to it. Here: FlopAnalyzer's count
  restricted to the modules of that table, plus what mmcv 1.x added on top (the activations,
  and one FLOP per output element for a convolution's bias). Norms, pooling and upsampling
  keep FlopAnalyzer's formulas (mmcv's differ by small factors; these layers are a fraction
  of a percent of the models here). Use it to compare with paper numbers of heads built on
  attention (Mask2Former); for the conv/linear models the two conventions agree closely.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from torch import Tensor, nn

from ..models.backbones.intern_image import InternImage
from ..models.layers.dcnv3 import DCNv3
from ..models.layers.norm import LayerNorm

__all__ = [
    'CONVENTIONS', 'ModelComplexity', 'count_model', 'dcnv3_flops', 'format_flops',
    'format_params', 'pad_hw'
]


def pad_hw(hw: Sequence[int], divisor: int = 32) -> tuple[int, int]:
    """``(H, W)`` rounded up to multiples of ``divisor`` (the official ``--size-divisor``)."""
    h, w = (int(v) for v in hw)
    if divisor and divisor > 0:
        h, w = math.ceil(h / divisor) * divisor, math.ceil(w / divisor) * divisor
    return h, w


#: the FLOPs conventions :func:`count_model` implements (see the module doc)
CONVENTIONS = ('mmengine', 'mmcv1')

#: activations mmcv 1.x counted at one FLOP per output element (exact types)
_MMCV1_ACTIVATIONS = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6)


def _mmcv1_wrappers(*names: str) -> set[type]:
    """mmcv's empty-tensor-safe wrappers of these names (in mmcv 1.x's table too)."""
    try:
        from mmcv.cnn.bricks import wrappers
    except ImportError:
        return set()
    return {getattr(wrappers, n) for n in names if hasattr(wrappers, n)}


def _mmcv1_conv_types() -> frozenset[type]:
    """Convolutions in mmcv 1.x's table: a bias adds one FLOP per output element there."""
    return frozenset({nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d,
                      *_mmcv1_wrappers('Conv2d', 'Conv3d', 'ConvTranspose2d')})


def _mmcv1_counted_types() -> frozenset[type]:
    """The module types (matched exactly, as mmcv 1.x did) whose FLOPs mmcv 1.x counted;
    our LayerNorm stands where the official model has ``nn.LayerNorm``."""
    return _mmcv1_conv_types() | {
        nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm,
        nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, LayerNorm,
        nn.Upsample,
        nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
        nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
        nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, *_MMCV1_ACTIVATIONS,
        *_mmcv1_wrappers('Linear', 'MaxPool2d', 'MaxPool3d')
    }


def _internimages(backbone: nn.Module) -> list[InternImage]:
    """Every InternImage in ``backbone`` (itself, or the copies of a composite backbone)."""
    return [m for m in backbone.modules() if isinstance(m, InternImage)]


def dcnv3_flops(backbone: nn.Module, input_hw: Sequence[int]) -> float:
    """The official analytic FLOPs of the DCNv3 sampling cores for an ``H x W`` input.

    Sum over the stages ``i`` of ``depth_i * 5 * n_i * K * C_i`` with
    ``n_i = (H / (4 * 2**i)) * (W / (4 * 2**i))`` (float division, no rounding), ``K`` the
    kernel points of the stage's DCNv3 (``kernel_size**2``, minus one with
    ``remove_center``) and ``C_i`` its channels. ``backbone`` may be an
    :class:`~internimage_mm.models.InternImage`, a model holding one, or a composite backbone
    holding several (each is counted). Returns 0.0 when there is no InternImage.

    Example: InternImage-T at 800 x 1280 gives 2.03e9, at 512 x 2048 2.08e9.
    """
    h, w = (float(v) for v in input_hw)
    total = 0.0
    for net in _internimages(backbone):
        for i, level in enumerate(net.levels):
            stride = 4 * 2**i
            n = (h / stride) * (w / stride)
            for block in level.blocks:
                dcn: DCNv3 = block.dcn
                k = dcn.kernel_size * dcn.kernel_size - int(dcn.remove_center)
                total += 5 * n * k * dcn.channels
    return total


@dataclass
class ModelComplexity:
    """Result of :func:`count_model`.

    ``flops`` = ``counted_flops`` (mmengine's counter, DCNv3 cores excluded) +
    ``dcnv3_flops`` (the official analytic term). ``input_shape`` is ``(C, H, W)`` after
    padding. ``unsupported_ops`` lists what the counter saw but does not count (elementwise ops,
    activations, the DCNv3 core, ...).
    """
    params: int
    flops: float
    counted_flops: float
    dcnv3_flops: float
    input_shape: tuple[int, int, int]
    unsupported_ops: dict[str, int] = field(default_factory=dict)
    convention: str = 'mmengine'


class _TensorForward(nn.Module):
    """Wraps a model so that the counter calls its tensor forward with one argument."""

    def __init__(self, model: nn.Module, data_samples: Any = None) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples
        # mmengine BaseModel (mmpretrain/mmdet/mmseg): forward(inputs, data_samples, mode)
        self.mm_model = hasattr(model, 'data_preprocessor')

    def forward(self, inputs: Tensor) -> Any:
        if _is_two_stage_detector(self.model):
            return _two_stage_dummy_forward(self.model, inputs)
        if _seg_head_needs_samples(self.model):
            # mmseg's tensor mode calls decode_head.forward(x) without the data samples that
            # Mask2FormerHead needs; do the same (backbone, neck, decode head) with them.
            return self.model.decode_head(self.model.extract_feat(inputs), self.data_samples)
        if self.mm_model:
            return self.model(inputs, self.data_samples, mode='tensor')
        return self.model(inputs)


def _is_detector(model: nn.Module) -> bool:
    try:
        from mmdet.models.detectors import BaseDetector
    except ImportError:
        return False
    return isinstance(model, BaseDetector)


def _is_two_stage_detector(model: nn.Module) -> bool:
    return _is_detector(model) and getattr(model, 'roi_head', None) is not None and getattr(
        model, 'rpn_head', None) is not None


def _two_stage_dummy_forward(model: nn.Module, inputs: Tensor) -> tuple:
    """The official ``forward_dummy`` of two-stage detectors (mmdet 2.x), which the paper's
    FLOPs were counted with: RPN head, 1000 random proposals through every bbox stage, and the
    mask head(s) on the first 100 of them. (mmdet 3.x's tensor forward runs the cascade mask
    heads on every proposal, about twice the official count for Cascade Mask R-CNN.)"""
    from mmdet.structures.bbox import bbox2roi
    x = model.extract_feat(inputs)
    outs = (model.rpn_head(x), )
    proposals = torch.rand(1000, 4, device=inputs.device, dtype=inputs.dtype)
    proposals[:, 2:] += proposals[:, :2]
    rois = bbox2roi([proposals * inputs.shape[-1]])
    head = model.roi_head
    stages = list(range(head.num_stages)) if hasattr(head, 'num_stages') else [None]
    for stage in stages:
        args = (x, rois) if stage is None else (stage, x, rois)
        outs += (head._bbox_forward(*args)['cls_score'], )
    if getattr(head, 'with_mask', False):
        for stage in stages:
            args = (x, rois[:100]) if stage is None else (stage, x, rois[:100])
            outs += (head._mask_forward(*args)['mask_preds'], )
    return outs


def _seg_head_needs_samples(model: nn.Module) -> bool:
    """An mmseg segmentor whose decode head's forward takes data samples (Mask2Former)."""
    try:
        from mmseg.models.segmentors import BaseSegmentor
    except ImportError:
        return False
    if not isinstance(model, BaseSegmentor):
        return False
    head = getattr(model, 'decode_head', None)
    return head is not None and 'batch_data_samples' in inspect.signature(
        head.forward).parameters


def _dummy_data_samples(model: nn.Module, hw: tuple[int, int], batch: int) -> Any:
    """Data samples with the image meta information that mmdet's tensor forward (and mmseg's
    Mask2Former head) needs."""
    if _seg_head_needs_samples(model):
        from mmseg.structures import SegDataSample
        meta = dict(img_shape=hw, ori_shape=hw, pad_shape=hw, batch_input_shape=hw)
        return [SegDataSample(metainfo=meta) for _ in range(batch)]
    if not _is_detector(model):
        return None
    from mmdet.structures import DetDataSample
    meta = dict(img_shape=hw, ori_shape=hw, pad_shape=hw, batch_input_shape=hw,
                scale_factor=(1.0, 1.0))
    return [DetDataSample(metainfo=meta) for _ in range(batch)]


def count_model(model: nn.Module,
                input_shape: Sequence[int],
                size_divisor: int = 32,
                data_samples: Any = None,
                backbone: nn.Module | None = None,
                convention: str = 'mmengine') -> ModelComplexity:
    """Count the parameters and FLOPs of ``model`` on one input, the official way.

    Args:
        model: a module, or an mmpretrain classifier / mmdet detector / mmseg segmentor (its
            tensor forward ``model(inputs, data_samples, mode='tensor')`` is counted, i.e. no
            post-processing, no loss; for an mmseg Mask2Former, whose tensor mode cannot pass
            the data samples, backbone + decode head forward). It is put in eval mode.
        input_shape: ``(H, W)`` or ``(C, H, W)`` (C defaults to 3); H and W are padded up to
            multiples of ``size_divisor`` (0 disables the padding).
        data_samples: passed to the tensor forward; default ``None``, or for mmdet detectors
            (mmseg Mask2Former) one ``DetDataSample`` (``SegDataSample``) with the image meta
            information.
        backbone: where to look for InternImage for the analytic DCNv3 term (default
            ``model.backbone`` when present, else ``model``).
        convention: ``'mmengine'`` or ``'mmcv1'`` (see the module doc).

    Returns:
        A :class:`ModelComplexity`; ``flops`` includes the analytic DCNv3 term.
    """
    shape = tuple(int(v) for v in input_shape)
    if len(shape) == 2:
        shape = (3, ) + shape
    if len(shape) != 3:
        raise ValueError(f'input_shape must be (H, W) or (C, H, W), got {tuple(input_shape)}')
    if convention not in CONVENTIONS:
        raise ValueError(f'convention must be one of {CONVENTIONS}, got {convention!r}')
    hw = pad_hw(shape[1:], size_divisor)
    shape = (shape[0], *hw)

    model.eval()
    try:
        param = next(model.parameters())
        device, dtype = param.device, (param.dtype if param.is_floating_point() else None)
    except StopIteration:
        device, dtype = torch.device('cpu'), None
    inputs = torch.randn((1, *shape), device=device, dtype=dtype or torch.float32)
    if data_samples is None:
        data_samples = _dummy_data_samples(model, hw, 1)
    wrapper = _TensorForward(model, data_samples)

    activations: list[int] = []
    hooks = []
    if convention == 'mmcv1':  # mmcv 1.x's terms FlopAnalyzer has no rule for
        convs = _mmcv1_conv_types()
        hooks = [m.register_forward_hook(lambda _m, _i, out: activations.append(out.numel()))
                 for m in wrapper.modules()
                 if type(m) in _MMCV1_ACTIVATIONS or (type(m) in convs and m.bias is not None)]
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(wrapper, (inputs, ))
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            if convention == 'mmcv1':
                by_module = analyzer.by_module()  # runs the traced forward, and the hooks
                counted = _mmcv1_total(wrapper, by_module) + float(sum(activations))
            else:
                counted = float(analyzer.total())
                # The pure-PyTorch DCNv3 path samples with grid_sample, which the counter would
                # count: take it out so that the core is counted once, analytically, like the
                # compiled op. (mmcv1 never counts it: grid_sample is functional.)
                per_module = analyzer.by_module_and_operator()
                for name, module in wrapper.named_modules():
                    if isinstance(module, DCNv3):
                        counted -= float(per_module.get(name, {}).get('grid_sampler', 0))
            unsupported = dict(analyzer.unsupported_ops())
    finally:
        for hook in hooks:
            hook.remove()

    if backbone is None:
        backbone = getattr(model, 'backbone', model)
    extra = dcnv3_flops(backbone, hw)
    return ModelComplexity(params=int(parameter_count(model)['']), flops=counted + extra,
                           counted_flops=counted, dcnv3_flops=extra, input_shape=shape,
                           unsupported_ops=unsupported, convention=convention)


def _mmcv1_total(wrapper: nn.Module, by_module: dict[str, int]) -> float:
    """FlopAnalyzer's FLOPs of the modules mmcv 1.x hooked: those of an exactly known type,
    outermost only (a known type inside another, e.g. mmcv's Conv2d wrapper, is not counted
    twice)."""
    known = _mmcv1_counted_types()
    total, counted_prefixes = 0.0, []
    for name, module in wrapper.named_modules():
        if type(module) not in known or any(name.startswith(p) for p in counted_prefixes):
            continue
        total += float(by_module.get(name, 0))
        counted_prefixes.append(name + '.')
    return total


def format_params(num: int) -> str:
    """``29918424`` -> ``'29.92M'``, ``1089636760`` -> ``'1.09B'``."""
    if num >= 1e9:
        return f'{num / 1e9:.2f}B'
    if num >= 1e6:
        return f'{num / 1e6:.2f}M'
    return f'{num / 1e3:.2f}K'


def format_flops(flops: float) -> str:
    """FLOPs in giga, two decimals: ``4924000000.0`` -> ``'4.92G'``."""
    return f'{flops / 1e9:.2f}G'
