"""The stack imports and the compatibility fixes work (each in a fresh interpreter)."""
import subprocess
import sys

import pytest

from internimage_mm import version


def _run(code: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)


def test_mmpretrain_models_import_with_cuda_torchvision(tmp_path):
    proc = _run('import internimage_mm, torchvision.transforms, mmpretrain.models, '
                'mmpretrain.datasets, mmdet.models, mmseg.models; print("ok")', tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith('ok')


def test_mmseg_scope_configs_parse_after_import(tmp_path):
    (tmp_path / 'cfg.py').write_text("_base_ = 'mmseg::_base_/models/upernet_r50.py'\n")
    proc = _run('import internimage_mm\nfrom mmengine.config import Config\n'
                'print(Config.fromfile("cfg.py").model.decode_head.type)', tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == 'UPerHead'


def test_no_cuda_torch_packages_installed():
    proc = subprocess.run([sys.executable, '-m', 'pip', 'list', '--format=freeze'],
                          capture_output=True, text=True, timeout=120)
    nvidia = [line for line in proc.stdout.splitlines() if line.lower().startswith('nvidia-')]
    assert not nvidia, f'CUDA packages were pulled into the environment: {nvidia}'


def test_installed_stack_is_the_pinned_one():
    pins = {'mmengine': '0.10.12', 'mmcv': '2.3.6', 'mmdet': '3.5.1', 'mmseg': '1.4.2',
            'mmpretrain': '1.3.6'}
    for module, pinned in pins.items():
        assert version.installed_version(module) == pinned, module


def test_incompatible_version_gives_clear_error(monkeypatch):
    monkeypatch.setattr(version, 'installed_version',
                        lambda m: ('0.9.0' if m == 'mmengine' else
                                   '99.0.0' if m == 'mmdet' else None))
    with pytest.raises(ImportError, match=r'needs mmengine>=0\.10\.7,<1\.0\.0, found 0\.9\.0'):
        version.check_dependencies()
    monkeypatch.setattr(version, 'installed_version', lambda m: None)
    with pytest.raises(ImportError, match='needs mmengine .* not installed; run `make env`'):
        version.check_dependencies()


def test_mmcv_cpu_kernels_take_bfloat16_after_the_patch():
    """(e) mmcv's NMS and RoIAlign CPU kernels are float32-only; after the patch bfloat16
    inputs give the float32 results (RoIAlign backward too), in the input's dtype."""
    import torch
    from mmcv.ops import RoIAlign, nms

    from internimage_mm import compat
    torch.manual_seed(0)
    feats = torch.randn(1, 4, 16, 16).bfloat16()
    rois = torch.tensor([[0, 1.0, 1.0, 9.0, 12.0], [0, 4.0, 2.0, 15.0, 8.0]])
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert not compat.patch_mmcv_cpu_kernels()  # applied on import already, idempotent

    align = RoIAlign((4, 4), spatial_scale=1.0, sampling_ratio=2)
    x16 = feats.clone().requires_grad_()
    x32 = feats.float().requires_grad_()
    out16, out32 = align(x16, rois.bfloat16()), align(x32, rois)
    assert out16.dtype == torch.bfloat16
    torch.testing.assert_close(out16.float(), out32, rtol=2e-2, atol=2e-2)
    out16.float().sum().backward()
    out32.sum().backward()
    assert x16.grad.dtype == torch.bfloat16
    torch.testing.assert_close(x16.grad.float(), x32.grad, rtol=2e-2, atol=2e-2)

    # max mode would keep rounded sample coordinates for its backward: refused by name
    with pytest.raises(RuntimeError, match="pool_mode='max'"):
        RoIAlign((4, 4), 1.0, 2, pool_mode='max')(feats, rois.bfloat16())
    # float64 stays float64 (only bfloat16/float16 are routed through float32)
    out64 = align(feats.double(), rois.double())
    assert out64.dtype == torch.float64

    dets16, keep16 = nms(boxes.bfloat16(), scores.bfloat16(), 0.5)
    _, keep32 = nms(boxes, scores, 0.5)
    assert keep16.tolist() == keep32.tolist() == [0, 2]
