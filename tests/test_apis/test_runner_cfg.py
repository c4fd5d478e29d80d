"""The config edits behind tools/train.py and tools/test.py options."""
import pytest
import torch
from mmengine.config import Config

from internimage_mm.apis import prepare_test_cfg, prepare_train_cfg

from ..conftest import REPO

TINY = REPO / 'configs' / 'classification' / 'internimage-tiny_synthetic-64.py'


@pytest.fixture
def cfg():
    return Config.fromfile(TINY)


def test_train_options(cfg, tmp_path):
    prepare_train_cfg(cfg, work_dir=str(tmp_path), resume='auto', accumulative_counts=4)
    assert cfg.resume is True and cfg.load_from is None and cfg.work_dir == str(tmp_path)
    assert cfg.optim_wrapper.accumulative_counts == 4
    with pytest.raises(SystemExit, match='accumulative-counts must be >= 1'):
        prepare_train_cfg(cfg, work_dir='w', accumulative_counts=0)
    with pytest.raises(SystemExit, match='no auto_scale_lr'):
        prepare_train_cfg(cfg, work_dir='w', auto_scale_lr=True)
    with pytest.raises(SystemExit, match='does not exist'):
        prepare_train_cfg(cfg, work_dir='w', resume=str(tmp_path / 'nope.pth'))


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU message')
def test_amp_without_gpu_is_a_clear_error(cfg):
    with pytest.raises(SystemExit, match='--amp needs a CUDA GPU'):
        prepare_train_cfg(cfg, work_dir='w', amp=True)


@pytest.mark.gpu
def test_amp_on_gpu_switches_wrapper(cfg):
    prepare_train_cfg(cfg, work_dir='w', amp=True, amp_dtype='bfloat16')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'


def test_test_options(cfg, tmp_path):
    ckpt = tmp_path / 'c.pth'
    ckpt.write_bytes(b'')
    prepare_test_cfg(cfg, str(ckpt), work_dir='w', out=str(tmp_path / 'r.pkl'),
                     show_dir=str(tmp_path / 'vis'), tta=True)
    assert cfg.load_from == str(ckpt)
    assert cfg.test_evaluator[-1] == dict(type='DumpResults', out_file_path=str(tmp_path / 'r.pkl'))
    assert cfg.default_hooks.visualization.enable is True
    assert cfg.model.type == 'AverageClsScoreTTA' and cfg.model.module.type == 'ImageClassifier'
    with pytest.raises(SystemExit, match='must be a .pkl'):
        prepare_test_cfg(Config.fromfile(TINY), str(ckpt), work_dir='w', out='r.json')
