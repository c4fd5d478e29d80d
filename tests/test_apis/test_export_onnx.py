"""ONNX export: standard ops only, dynamic batch, onnxruntime matches PyTorch."""
import onnx
import pytest
import torch

from internimage_mm.apis.export import build_exportable, export_onnx

from ..conftest import REPO

CONFIG = REPO / 'configs' / 'classification' / 'internimage-tiny_1xb16-12e_synthetic-64px.py'


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """Random weights everywhere (offsets and masks too, which start at zero)."""
    module, _ = build_exportable(str(CONFIG), None, 'classifier')
    gen = torch.Generator().manual_seed(0)
    state = {k: v + 0.05 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
             for k, v in module.classifier.state_dict().items()}
    path = tmp_path_factory.mktemp('ckpt') / 'random.pth'
    torch.save({'state_dict': state}, path)
    return path


@pytest.mark.parametrize('part, outputs', [('classifier', ['logits']),
                                           ('backbone', ['stage4'])])
def test_export_matches_pytorch(checkpoint, tmp_path, part, outputs):
    module, names = build_exportable(str(CONFIG), str(checkpoint), part)
    assert names == outputs
    report = export_onnx(module, names, tmp_path / 'm.onnx', (1, 3, 64, 64),
                         check_batch_sizes=(1, 3))
    assert report.max_rel_error < 1e-4, report
    model = onnx.load(str(report.onnx_file))
    ops = {n.op_type for n in model.graph.node}
    assert 'GridSample' in ops
    assert all(n.domain in ('', 'ai.onnx') for n in model.graph.node), 'custom-op domain used'
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value  # symbolic: dynamic batch


def test_unsupported_model_is_named(tmp_path):
    cfg = tmp_path / 'det.py'
    cfg.write_text("_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n")
    with pytest.raises(ValueError, match='whole mmdet model \\(MaskRCNN\\) is not supported'):
        build_exportable(str(cfg), None, 'auto')
    with pytest.raises(ValueError, match='no DCNv3 module'):
        build_exportable(str(cfg), None, 'backbone')
