"""ONNX export of InternImage classifiers and backbones with DCNv3 in standard ONNX ops.

The DCNv3 modules are switched to the pure-PyTorch core (``grid_sample``), which the exporter
maps to the standard ``GridSample`` operator (opset >= 16): the ONNX model runs in any runtime,
no custom-op plugin needed. The batch dimension is dynamic.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from torch import nn

from ..models.layers.dcnv3 import set_core_op
from .builder import TASKS, build_model


class _ClassifierLogits(nn.Module):
    """images -> logits of an mmpretrain ImageClassifier (its tensor-mode forward)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images, mode='tensor')


@dataclass
class ExportReport:
    onnx_file: Path
    output_names: list[str]
    max_abs_error: float
    max_rel_error: float
    batch_sizes: tuple[int, ...]


def build_exportable(config: str, checkpoint: str | None,
                     part: str = 'auto') -> tuple[nn.Module, list[str]]:
    """The module to export and its output names.

    ``part``: ``'classifier'`` (mmpretrain ImageClassifier -> logits), ``'backbone'`` (the
    backbone of any task -> its feature maps) or ``'auto'`` (classifier for mmpretrain configs,
    else an error naming what is unsupported).
    """
    cfg = Config.fromfile(config)
    scope = cfg.get('default_scope', 'mmpretrain')
    if scope not in TASKS:
        raise ValueError(f'export: unsupported default_scope {scope!r} in {config}; '
                         f'supported: {sorted(TASKS)}')
    if part == 'auto':
        part = 'classifier' if scope == 'mmpretrain' else 'unsupported'
    if part == 'unsupported' or (part == 'classifier' and scope != 'mmpretrain'):
        raise ValueError(f'export: the whole {scope} model ({cfg.model.type}) is not supported '
                         '(its post-processing, e.g. NMS or resizing to the input, is not part '
                         'of this exporter); export its backbone with --part backbone')
    if part not in ('classifier', 'backbone'):
        raise ValueError(f"export: part must be 'classifier', 'backbone' or 'auto', got {part!r}")
    model = build_model(cfg, pretrained=checkpoint is None)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.eval()
    if part == 'classifier':
        if cfg.model.type != 'ImageClassifier':
            raise ValueError(f'export: classifier export supports ImageClassifier, got '
                             f'{cfg.model.type}')
        module, names = _ClassifierLogits(model), ['logits']
    else:
        module = model.backbone
        names = [f'stage{i + 1}' for i in getattr(module, 'out_indices', (0, 1, 2, 3))]
    if set_core_op(module, 'DCNv3_pytorch') == 0:
        raise ValueError(f'export: no DCNv3 module in the {part} of {config}: this exporter is '
                         'for InternImage models')
    return module.eval(), names


def export_onnx(module: nn.Module, output_names: list[str], onnx_file: str | Path,
                input_shape: tuple[int, int, int, int], opset: int = 18,
                check_batch_sizes: tuple[int, ...] = (1, 2)) -> ExportReport:
    """Export with a dynamic batch axis, then compare onnxruntime with PyTorch on random inputs
    of each of ``check_batch_sizes``."""
    import onnxruntime as ort

    onnx_file = Path(onnx_file)
    onnx_file.parent.mkdir(parents=True, exist_ok=True)
    n, c, h, w = input_shape
    example = torch.randn(max(n, 2), c, h, w)
    batch = torch.export.Dim('batch', min=1, max=1024)
    with torch.no_grad():
        torch.onnx.export(module, (example, ), str(onnx_file), input_names=['images'],
                          output_names=output_names, opset_version=opset, dynamo=True,
                          dynamic_shapes=({0: batch}, ), external_data=False)
    session = ort.InferenceSession(str(onnx_file), providers=['CPUExecutionProvider'])
    max_abs = max_rel = 0.0
    gen = torch.Generator().manual_seed(0)
    for b in check_batch_sizes:
        x = torch.randn(b, c, h, w, generator=gen)
        with torch.no_grad():
            ref = module(x)
        refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
        outs = session.run(None, {'images': x.numpy()})
        if len(outs) != len(refs):
            raise RuntimeError(f'export: ONNX model has {len(outs)} outputs, PyTorch {len(refs)}')
        for o, r in zip(outs, refs):
            r = r.numpy()
            if o.shape != r.shape:
                raise RuntimeError(f'export: output shape {o.shape} != PyTorch {r.shape}')
            err = float(np.abs(o - r).max())
            max_abs = max(max_abs, err)
            max_rel = max(max_rel, err / max(float(np.abs(r).max()), 1e-12))
    return ExportReport(onnx_file, output_names, max_abs, max_rel, tuple(check_batch_sizes))
