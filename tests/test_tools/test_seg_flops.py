"""tools/analysis_tools/get_flops.py on the segmentation configs (official convention: the
encoder-decoder's test-time forward, i.e. backbone + decode head, and the parameters of the
whole model, auxiliary head included; analytic DCNv3 term)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ..conftest import load_tool
from ..test_models.conftest import single_thread  # noqa: F401  (autouse fixture)

REPO = Path(__file__).resolve().parents[2]
SEG = REPO / 'configs' / 'segmentation'


def _tool():
    return load_tool('analysis_tools/get_flops.py')


@pytest.mark.parametrize('name', ['upernet_internimage-tiny_1xb4-600iter_synthetic-128x128',
                                  'mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128'])
def test_get_flops_small_segmentors(name, capsys):
    """Both heads count (Mask2Former's decode head needs data samples, which mmseg's tensor
    mode does not pass); the default segmentation input is 512 x 2048."""
    result = _tool().main([str(SEG / f'{name}.py'), '--shape', '128', '160'])
    out = capsys.readouterr().out
    assert result['task'] == 'segmentation' and result['input_shape'] == (3, 128, 160)
    assert result['flops'] > result['dcnv3_flops'] > 0
    assert re.search(rf'\| {name} \| [\d,]+ \([\d.]+[KM]\) \| [\d.]+G \| 3x128x160 \|', out)
    from internimage_mm.analysis.flops import count_model
    from internimage_mm.apis import build_model
    model = build_model(str(SEG / f'{name}.py'))
    assert count_model(model, (128, 160)).params == sum(p.numel() for p in model.parameters())


@pytest.mark.slow  # ~70 s on the shared 2-core machine (the full-size model at 512 x 2048)
def test_get_flops_upernet_t_matches_the_paper(capsys):
    """paper_tables.md: UperNet + InternImage-T, 59M params and 944G FLOPs at 512 x 2048
    (observed: 59,077,148 and 945.6G)."""
    name = 'upernet_internimage-t_8xb2-160k_ade20k-512x512'
    result = _tool().main([str(SEG / f'{name}.py')])
    row = [line for line in capsys.readouterr().out.splitlines()
           if line.startswith(f'| {name} |')]
    assert len(row) == 1 and row[0].endswith('| 3x512x2048 |'), row
    assert abs(result['params'] - 59e6) <= 0.01 * 59e6, result['params']
    assert abs(result['flops'] / 1e9 - 944) <= 0.03 * 944, result['flops']


def test_mmcv1_convention_on_the_segmentors():
    """``--convention mmcv1`` (the official mmcv 1.x counter's view): UperNet is conv/norm
    modules, so both conventions nearly agree; Mask2Former's einsum mask predictions,
    functional attention projections and deformable sampling drop out."""
    tool = _tool()
    counts = {}
    for name in ('upernet_internimage-tiny_1xb4-600iter_synthetic-128x128',
                 'mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128'):
        for convention in ('mmengine', 'mmcv1'):
            counts[name, convention] = tool.main([str(SEG / f'{name}.py'), '--shape', '128',
                                                  '160', '--convention', convention])
    up_new = counts['upernet_internimage-tiny_1xb4-600iter_synthetic-128x128', 'mmengine']
    up_old = counts['upernet_internimage-tiny_1xb4-600iter_synthetic-128x128', 'mmcv1']
    assert up_old['convention'] == 'mmcv1' and up_old['dcnv3_flops'] == up_new['dcnv3_flops']
    assert abs(up_old['flops'] - up_new['flops']) <= 0.02 * up_new['flops']
    m2f_new = counts['mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128', 'mmengine']
    m2f_old = counts['mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128', 'mmcv1']
    assert m2f_old['params'] == m2f_new['params']
    assert m2f_old['counted_flops'] < 0.97 * m2f_new['counted_flops']


@pytest.mark.slow  # ~3 min on the shared 2-core machine (1.3B parameters at 896 x 896)
def test_get_flops_mask2former_h_matches_the_paper_with_the_mmcv1_convention(capsys):
    """paper_tables.md: Mask2Former + InternImage-H, 1.31B params and 4635G FLOPs at 896 x 896,
    counted by mmcv 1.x (observed: 1,313,496,135 and 4640.3G)."""
    name = 'mask2former_internimage-h_cocostuff164k-pre_16xb1-80k_ade20k-896x896'
    result = _tool().main([str(SEG / f'{name}.py'), '--shape', '896', '896',
                           '--convention', 'mmcv1'])
    assert abs(result['params'] - 1.31e9) <= 0.01 * 1.31e9, result['params']
    assert abs(result['flops'] / 1e9 - 4635) <= 0.03 * 4635, result['flops']
