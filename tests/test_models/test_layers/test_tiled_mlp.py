"""layers/tiled_mlp.py: the MLP in row tiles for CPU inference equals the layers (float32
rounding), with and without the residual and biases, with tiles of unequal size; it is taken
only in inference, on CPU float32, for hidden activations too large for the caches."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from internimage_mm.models.backbones.intern_image import MLPLayer
from internimage_mm.models.layers import packed_weights
from internimage_mm.models.layers import tiled_mlp as tm


def _layers(mlp: MLPLayer, x, residual=None):
    y = mlp.fc2(mlp.act(mlp.fc1(x)))
    return y if residual is None else residual + y


@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('with_residual', [True, False])
@pytest.mark.parametrize('act', [nn.GELU(), nn.ReLU()])
def test_tiles_equal_the_layers(monkeypatch, bias, with_residual, act):
    # 3 tiles: 2 x 7 rows and a last one of 6 (20 rows of 2 * 4 * 24 bytes)
    monkeypatch.setattr(tm, 'TILE_BYTES', 7 * 24 * 4)
    torch.manual_seed(0)
    mlp = MLPLayer(8, 24).eval()
    mlp.act = act
    if not bias:
        mlp.fc1.bias = mlp.fc2.bias = None
    x = torch.randn(2, 5, 2, 8)
    r = torch.randn(2, 5, 2, 8) if with_residual else None
    with torch.no_grad():
        out = tm.tiled_mlp(x, mlp.fc1, mlp.act, mlp.fc2, r)
        ref = _layers(mlp, x, r)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_applies_only_to_large_cpu_float32_inference(monkeypatch):
    mlp = MLPLayer(8, 32)
    x = torch.randn(4, 16, 16, 8)  # 1024 rows x 32 hidden x 4 bytes = 128 KiB
    assert not tm.tiled_mlp_applies(x, mlp.fc1, mlp.fc2)  # below MIN_HIDDEN_BYTES
    monkeypatch.setattr(tm, 'MIN_HIDDEN_BYTES', 1)
    with torch.no_grad():
        assert tm.tiled_mlp_applies(x, mlp.fc1, mlp.fc2)
        assert tm.tiled_mlp_applies(x, mlp.fc1, mlp.fc2, torch.randn(4, 16, 16, 8))
        assert not tm.tiled_mlp_applies(x, mlp.fc1, mlp.fc2, torch.randn(1, 16, 16, 8))
        assert not tm.tiled_mlp_applies(x.double(), mlp.fc1, mlp.fc2)
        with torch.autocast('cpu', dtype=torch.bfloat16):  # autocast's GEMMs, not ours
            assert not tm.tiled_mlp_applies(x, mlp.fc1, mlp.fc2)
    assert not tm.tiled_mlp_applies(x, mlp.fc1, mlp.fc2)  # autograd records the parameters


def test_mlp_layer_takes_the_tiles_in_inference_only(monkeypatch):
    # without packed weights (those take precedence: test_packed_weights.py)
    monkeypatch.setattr(packed_weights, '_enabled', False)
    monkeypatch.setattr(tm, 'MIN_HIDDEN_BYTES', 1)
    monkeypatch.setattr(tm, 'TILE_BYTES', 1000)
    calls = []
    from internimage_mm.models.backbones import intern_image
    real = intern_image.tiled_mlp
    monkeypatch.setattr(intern_image, 'tiled_mlp', lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(0)
    mlp = MLPLayer(16, 64).eval()
    x, r = torch.randn(2, 6, 6, 16), torch.randn(2, 6, 6, 16)
    with torch.no_grad():
        out = mlp(x, residual=r)
    assert calls == [1]
    ref = _layers(mlp, x, r)  # with grad: the layers
    assert calls == [1] and ref.grad_fn is not None
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    out = mlp(x, residual=r)  # under autograd: the layers, not the tiles
    assert calls == [1] and out.grad_fn is not None


def test_onnx_export_with_a_dynamic_batch(monkeypatch, tmp_path):
    # Under an exporter the size test must not run: on the symbolic batch it adds a guard
    # (batch >= 2 here, as batch >= 3 did for InternImage-T at batch 8) that contradicts the
    # dynamic batch range, and the export fails.
    ort = pytest.importorskip('onnxruntime')
    monkeypatch.setattr(tm, 'MIN_HIDDEN_BYTES', 48 << 10)  # 32 KiB at batch 1, 64 KiB at 2
    torch.manual_seed(0)
    mlp = MLPLayer(8, 32).eval()
    batch = torch.export.Dim('batch', min=1, max=64)
    with torch.no_grad():
        assert tm.tiled_mlp_applies(torch.randn(2, 16, 16, 8), mlp.fc1, mlp.fc2)  # eager
        torch.onnx.export(mlp, (torch.randn(2, 16, 16, 8), ), str(tmp_path / 'mlp.onnx'),
                          input_names=['x'], dynamo=True, dynamic_shapes=({0: batch}, ),
                          external_data=False)
        session = ort.InferenceSession(str(tmp_path / 'mlp.onnx'),
                                       providers=['CPUExecutionProvider'])
        for n in (1, 3):
            x = torch.randn(n, 16, 16, 8)
            out, = session.run(None, {'x': x.numpy()})
            torch.testing.assert_close(torch.from_numpy(out), _layers(mlp, x), rtol=1e-5,
                                       atol=1e-5)
