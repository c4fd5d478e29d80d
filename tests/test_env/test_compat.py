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
                        lambda m: '0.9.0' if m == 'mmengine' else '99.0.0' if m == 'mmdet' else None)
    with pytest.raises(ImportError, match=r'needs mmengine>=0\.10\.7,<1\.0\.0, found 0\.9\.0'):
        version.check_dependencies()
    monkeypatch.setattr(version, 'installed_version', lambda m: None)
    with pytest.raises(ImportError, match='needs mmengine .* not installed; run `make env`'):
        version.check_dependencies()
