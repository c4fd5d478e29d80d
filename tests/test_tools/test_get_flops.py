"""tools/analysis_tools/get_flops.py and internimage_mm.analysis.flops: the official FLOPs
convention (counter + analytic DCNv3 term) and the classification configs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import internimage_mm  # noqa: F401  (registers the modules)
from internimage_mm.analysis.flops import count_model, dcnv3_flops, pad_hw
from internimage_mm.models import InternImage

from ..conftest import load_json, load_tool

REPO = Path(__file__).resolve().parents[2]
CLS_CONFIGS = REPO / 'configs' / 'classification'
# The classification rows of paper_tables.md: config -> (variant, paper GFLOPs).
CLS_ROWS = {
    'internimage-t_32xb128_in1k-224px': ('t', 5),
    'internimage-s_32xb128_in1k-224px': ('s', 8),
    'internimage-b_32xb128_in1k-224px': ('b', 16),
    'internimage-l_in22k-pre_32xb16_in1k-384px': ('l', 108),
    'internimage-xl_in22k-pre_32xb16_in1k-384px': ('xl', 163),
    'internimage-h_in22k-pre_32xb16_in1k-640px': ('h', 1478),
}


def _load_tool():
    return load_tool('analysis_tools/get_flops.py')


@pytest.fixture(scope='module')
def variants():
    return load_json('spec/variants.json')


def _close_to_paper(gflops: float, paper: int) -> bool:
    """Within 3% of the paper, or equal to it after the paper's rounding to whole GFLOPs.

    The paper rounds the small models to integers: InternImage-S counts 8.36G (the linear and
    conv layers alone give 8.2G), printed as "8G" (4.5% off)."""
    return abs(gflops - paper) <= 0.03 * paper or round(gflops) == paper


def test_dcnv3_flops_official_examples():
    """official_configs.md §3.4: T adds 2.03 GFLOPs at 800x1280 and 2.08 at 512x2048."""
    with torch.device('meta'):
        backbone = InternImage(arch='t')
    assert round(dcnv3_flops(backbone, (800, 1280)) / 1e9, 2) == 2.03
    assert round(dcnv3_flops(backbone, (512, 2048)) / 1e9, 2) == 2.08
    # The formula itself: sum_i depth_i * 5 * n_i * 9 * C_i, float division.
    h, w = 800, 1280
    expect = sum(d * 5 * (h / (4 * 2**i)) * (w / (4 * 2**i)) * 9 * 64 * 2**i
                 for i, d in enumerate((4, 4, 18, 4)))
    assert dcnv3_flops(backbone, (h, w)) == pytest.approx(expect, rel=1e-12)
    # Float division: a size not divisible by 32 is not rounded.
    assert dcnv3_flops(backbone, (225, 225)) == pytest.approx(
        dcnv3_flops(backbone, (224, 224)) * (225 / 224)**2, rel=1e-12)


def test_dcnv3_flops_kernel_points_and_composites():
    """K follows the real kernel (remove_center -> 8 points); every InternImage inside a
    module is counted; no InternImage -> 0."""
    with torch.device('meta'):
        full = InternImage(arch='t')
        no_center = InternImage(arch='t', remove_center=True)
    hw = (224, 224)
    assert dcnv3_flops(no_center, hw) == pytest.approx(dcnv3_flops(full, hw) * 8 / 9)
    holder = torch.nn.ModuleList([full, no_center])
    assert dcnv3_flops(holder, hw) == pytest.approx(
        dcnv3_flops(full, hw) + dcnv3_flops(no_center, hw))
    assert dcnv3_flops(torch.nn.Conv2d(3, 3, 1), hw) == 0.0


def test_pad_hw():
    assert pad_hw((800, 1333)) == (800, 1344)
    assert pad_hw((224, 224)) == (224, 224)
    assert pad_hw((225, 100), 0) == (225, 100)


def test_count_model_counts_dcnv3_once():
    """The pure-PyTorch core (grid_sample) and the compiled op count the same: the core is
    left to the analytic term either way."""
    arch = dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8))
    torch.manual_seed(0)
    compiled = InternImage(arch=arch, core_op='DCNv3')
    pure = InternImage(arch=arch, core_op='DCNv3_pytorch')
    a = count_model(compiled, (64, 64))
    b = count_model(pure, (64, 64))
    assert a.counted_flops == b.counted_flops > 0
    assert a.dcnv3_flops == b.dcnv3_flops == dcnv3_flops(compiled, (64, 64))
    assert a.flops == a.counted_flops + a.dcnv3_flops
    assert a.params == sum(p.numel() for p in compiled.parameters())
    assert a.input_shape == (3, 64, 64)
    # Padding to a multiple of 32 as the official script.
    assert count_model(compiled, (3, 50, 60)).input_shape == (3, 64, 64)


@pytest.mark.parametrize('name', ['internimage-t_32xb128_in1k-224px',
                                  'internimage-s_32xb128_in1k-224px'])
def test_get_flops_classification(name, variants, capsys):
    """The printed row: params exactly those of the official model, FLOPs as in the paper."""
    size, paper = CLS_ROWS[name]
    result = _load_tool().main([str(CLS_CONFIGS / f'{name}.py')])
    row = [line for line in capsys.readouterr().out.splitlines()
           if line.startswith(f'| {name} |')]
    assert len(row) == 1, row
    match = re.fullmatch(rf'\| {re.escape(name)} \| ([\d,]+) \(([\d.]+)M\) \| ([\d.]+)G \| '
                         r'3x224x224 \|', row[0])
    assert match, row[0]
    params, gflops = int(match.group(1).replace(',', '')), float(match.group(3))
    assert params == result['params'] == variants[size]['classification']['num_params']
    assert gflops == pytest.approx(result['flops'] / 1e9, abs=0.005)
    assert _close_to_paper(gflops, paper), (gflops, paper)
    assert abs(gflops - paper) <= 0.05 * paper  # S: 8.36 vs 8


def _config_files():
    return sorted(p for p in CLS_CONFIGS.glob('*.py'))


def test_every_table_row_has_a_config():
    names = {p.stem for p in _config_files()}
    assert set(CLS_ROWS) <= names, set(CLS_ROWS) - names


@pytest.mark.parametrize('path', _config_files(), ids=lambda p: p.stem)
def test_classification_config_builds(path, variants):
    """Every classification config parses and its model builds in the mmpretrain scope (on the
    meta device: no memory, no time); the table rows have the official parameter counts."""
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.custom_imports['imports'] == ['internimage_mm.tasks.classification']
    init_default_scope(cfg.default_scope)
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'ImageClassifier'
    if path.stem in CLS_ROWS:
        size, _ = CLS_ROWS[path.stem]
        assert sum(p.numel() for p in model.parameters()) == \
            variants[size]['classification']['num_params']
        assert model.backbone.out_indices == ((2, 3) if size == 'h' else (3, ))
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.clip_grad == dict(max_norm=5.0)
        # fine-tuned rows start from the official pre-trained classifier's release URL
        assert cfg.load_from is None or cfg.load_from.startswith(
            'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_')


def test_two_stage_detectors_are_counted_like_the_official_forward_dummy():
    """1000 proposals through every bbox stage, masks on the first 100 (official convention:
    mmdet 3.x's own tensor forward runs cascade masks on all proposals)."""
    from internimage_mm.analysis.flops import _two_stage_dummy_forward

    from ..test_configs._det_helpers import build_model, load_config, shrink_model_cfg
    cfg = load_config('cascade-mask-rcnn_internimage-l_fpn_8xb2-1x_coco')
    model = build_model(shrink_model_cfg(cfg.model)).eval()
    with torch.no_grad():
        outs = _two_stage_dummy_forward(model, torch.randn(1, 3, 64, 64))
    cls_scores, masks = outs[1:4], outs[4:]
    assert [c.shape[0] for c in cls_scores] == [1000] * 3
    assert [m.shape[0] for m in masks] == [100] * 3


class _Mixed(torch.nn.Module):
    """Modules mmcv 1.x counted (Conv2d, ReLU, Linear) beside work it did not see (a Linear
    subclass, nn.MultiheadAttention, a functional einsum)."""

    class _SubLinear(torch.nn.Linear):
        pass

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)  # 8x8 output
        self.relu = torch.nn.ReLU()
        self.fc = torch.nn.Linear(8, 16)
        self.sub = self._SubLinear(16, 16)
        self.attn = torch.nn.MultiheadAttention(16, 2, batch_first=True)

    def forward(self, x):
        x = self.relu(self.conv(x)).flatten(2).transpose(1, 2)  # (1, 64, 8)
        x = self.relu(self.fc(x))  # the ReLU runs twice: mmcv 1.x counted every call
        x = self.sub(x)
        x = self.attn(x, x, x, need_weights=False)[0]
        return torch.einsum('bqc,bkc->bqk', x, x)


def test_mmcv1_convention_counts_only_the_modules_mmcv1_hooked():
    model = _Mixed()
    conv = 8 * 8 * 8 * 3 * 9  # output elements x (C_in x 3 x 3) multiply-adds
    bias = 8 * 8 * 8  # mmcv 1.x: one per output element of a convolution with bias
    relu = 8 * 64 + 64 * 16  # one per output element, both calls
    fc = 64 * 8 * 16  # no bias term for Linear in mmcv 1.x
    old = count_model(model, (3, 8, 8), size_divisor=0, convention='mmcv1')
    assert old.counted_flops == conv + bias + relu + fc
    assert old.dcnv3_flops == 0 and old.convention == 'mmcv1'
    new = count_model(model, (3, 8, 8), size_divisor=0)
    # mmengine also counts the Linear subclass and the einsum (in eval, torch runs the
    # attention as one fused op, which neither convention counts).
    assert new.counted_flops >= conv + fc + 64 * 16 * 16 + 64 * 64 * 16
    with pytest.raises(ValueError, match='convention'):
        count_model(model, (3, 8, 8), convention='fvcore')


def test_mmcv1_convention_on_internimage_counts_like_the_default():
    """The backbone is conv/linear/norm modules only: both conventions agree, and both leave
    the DCNv3 core to the analytic term."""
    arch = dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8))
    for core_op in ('DCNv3', 'DCNv3_pytorch'):
        torch.manual_seed(0)
        net = InternImage(arch=arch, core_op=core_op)
        old = count_model(net, (64, 64), convention='mmcv1')
        new = count_model(net, (64, 64))
        assert old.dcnv3_flops == new.dcnv3_flops > 0
        assert abs(old.counted_flops - new.counted_flops) <= 0.01 * new.counted_flops, core_op
