"""InternImage warns once when bfloat16 autocast runs on a CPU without bfloat16 instructions
(oneDNN emulates them there: several times slower than float32), and only then."""
from __future__ import annotations

import warnings

import pytest
import torch

from internimage_mm.models.backbones import intern_image
from internimage_mm.models.backbones.intern_image import InternImage


@pytest.fixture
def model():
    return InternImage(channels=16, depths=(1, 1, 1, 1), groups=(1, 2, 4, 8)).eval()


def _run(model, autocast: bool) -> list[warnings.WarningMessage]:
    x = torch.randn(1, 3, 32, 32)
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter('always')
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            model(x)
    return [w for w in caught if 'bfloat16 autocast' in str(w.message)]


def test_warns_once_where_bf16_is_emulated(model, monkeypatch):
    monkeypatch.setattr(intern_image, '_bf16_warned', False)
    monkeypatch.setattr(intern_image, 'cpu_has_native_bf16', lambda: False)
    assert _run(model, autocast=False) == []  # float32: nothing to say
    caught = _run(model, autocast=True)
    assert len(caught) == 1 and 'AVX512-BF16 or AMX' in str(caught[0].message)
    assert _run(model, autocast=True) == []  # once per process


def test_silent_where_the_cpu_has_bf16(model, monkeypatch):
    monkeypatch.setattr(intern_image, '_bf16_warned', False)
    monkeypatch.setattr(intern_image, 'cpu_has_native_bf16', lambda: True)
    assert _run(model, autocast=True) == []


def test_native_bf16_detection_agrees_with_cpu_flags():
    from internimage_mm.analysis.machine import cpu_has_native_bf16
    try:
        flags = open('/proc/cpuinfo').read().split()
    except OSError:
        pytest.skip('no /proc/cpuinfo')
    assert cpu_has_native_bf16() == ('avx512_bf16' in flags or 'amx_tile' in flags)
