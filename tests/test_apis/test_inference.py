"""Inference on images with every paper config and the tiny synthetic ones (random weights):
mmdet's DetInferencer, mmseg's MMSegInferencer / inference_model and mmpretrain's
ImageClassificationInferencer, several in one process in any order, and
tools/demo/image_demo.py for the three tasks. The paper configs keep their test pipelines (label
checks included); only the model is shrunk and the test resize made small, for speed."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from internimage_mm.apis.inference import init_inferencer

from ..conftest import REPO, load_tool
from ..test_configs._det_helpers import shrink_model_cfg as shrink_detector
from ..test_configs._seg_helpers import shrink_model_cfg as shrink_segmentor
from ..test_configs._tiny import TINY_WIDTHS, shrink_backbone

CONFIGS = REPO / 'configs'
PAPER = {task: sorted(p for p in (CONFIGS / task).glob('*.py') if 'synthetic' not in p.stem)
         for task in ('detection', 'segmentation', 'classification')}
TINY = {
    'detection': CONFIGS / 'detection' / 'mask-rcnn_internimage-tiny_fpn_1xb4-600iter_synthetic.py',
    'segmentation': (CONFIGS / 'segmentation' /
                     'mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128.py'),
    'classification': CONFIGS / 'classification' / 'internimage-tiny_1xb16-12e_synthetic-64px.py',
}


def _small_resizes(pipeline: list, size: int) -> None:
    for t in pipeline:
        if t['type'] in ('Resize', 'ResizeEdge'):
            t['scale'] = size if t['type'] == 'ResizeEdge' else (2 * size, size)
        elif t['type'] == 'CenterCrop':
            t['crop_size'] = size


def shrunk(path, task: str) -> Config:
    """The config with a tiny model and a small test resize (the pipeline otherwise as is)."""
    cfg = Config.fromfile(str(path))
    if 'synthetic' not in path.stem:
        if task == 'detection':
            cfg.model = shrink_detector(cfg.model)
        elif task == 'segmentation':
            cfg.model = shrink_segmentor(cfg.model)
        else:
            shrink_backbone(cfg.model.backbone)
            cfg.model.head.in_channels = TINY_WIDTHS[-1]
    _small_resizes(cfg.test_dataloader.dataset.pipeline, 64)
    if 'test_pipeline' in cfg:
        _small_resizes(cfg.test_pipeline, 64)
    return cfg


@pytest.fixture(scope='module')
def image(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('images') / 'photo.jpg'
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)).save(path)
    return str(path)


def _check(task: str, result) -> None:
    if task == 'detection':
        pred = result['predictions'][0]
        assert {'labels', 'scores', 'bboxes'} <= set(pred)
    elif task == 'segmentation':
        assert np.asarray(result['predictions']).shape == (72, 96)
    else:
        assert {'pred_label', 'pred_score', 'pred_scores'} <= set(result[0])


def _run(task: str, cfg: Config, image: str):
    inferencer = init_inferencer(copy.deepcopy(cfg), device='cpu')
    result = inferencer(image) if task != 'detection' else inferencer(image, return_vis=False)
    _check(task, result)
    return inferencer


@pytest.mark.parametrize('task, path', [(t, p) for t, ps in PAPER.items() for p in ps] +
                         list(TINY.items()), ids=lambda x: getattr(x, 'stem', x))
def test_inferencer_on_every_config(task, path, image):
    _run(task, shrunk(path, task), image)


@pytest.mark.parametrize('order', [('detection', 'segmentation', 'classification'),
                                   ('classification', 'segmentation', 'detection'),
                                   ('segmentation', 'classification', 'detection')])
def test_several_inferencers_in_one_process_in_any_order(order, image):
    """A notebook using all three: each inferencer keeps working after the others were built,
    whatever the default scope the last one left behind."""
    cfgs = {task: shrunk(TINY[task], task) for task in order}
    built = {task: _run(task, cfgs[task], image) for task in order}
    for task in reversed(order):  # call the earlier ones again, after the others
        result = built[task](image) if task != 'detection' else built[task](image,
                                                                            return_vis=False)
        _check(task, result)


def test_mmseg_inference_model_with_the_label_check_in_the_pipeline(image):
    """mmseg.apis.inference_model on the paper UperNet config, whose test pipeline holds
    CheckSegLabels: there is no annotation at inference, and the check does not block."""
    from mmseg.apis import inference_model, init_model
    cfg = shrunk(CONFIGS / 'segmentation' / 'upernet_internimage-t_8xb2-160k_ade20k-512x512.py',
                 'segmentation')
    assert any(t['type'] == 'CheckSegLabels' for t in cfg.test_pipeline)
    import internimage_mm.tasks.segmentation  # noqa: F401
    model = init_model(cfg, None, device='cpu')
    result = inference_model(model, image)
    assert tuple(result.pred_sem_seg.data.shape) == (1, 72, 96)


@pytest.mark.parametrize('task', list(TINY))
def test_image_demo_draws_predictions(task, image, tmp_path):
    tool = load_tool('demo/image_demo.py')
    out = tmp_path / 'out'
    assert tool.main([image, str(TINY[task]), '--out-dir', str(out), '--device', 'cpu']) == 0
    drawn = list((out / 'vis').iterdir())
    assert len(drawn) == 1 and drawn[0].stat().st_size > 0
    with Image.open(drawn[0]) as im:
        assert im.size[0] >= 96
    preds = list((out / 'preds').iterdir())
    assert preds
    if task == 'classification':
        assert 'pred_label' in json.loads(preds[0].read_text())


def test_image_demo_refuses_a_missing_image(tmp_path):
    tool = load_tool('demo/image_demo.py')
    with pytest.raises(FileNotFoundError, match='nowhere.jpg does not exist'):
        tool.main([str(tmp_path / 'nowhere.jpg'), str(TINY['detection'])])
