"""The config edits behind tools/train.py and tools/test.py options."""
import importlib.util

import pytest
import torch
from mmengine.config import Config

from internimage_mm.apis import prepare_test_cfg, prepare_train_cfg

from ..conftest import REPO

TINY = REPO / 'configs' / 'classification' / 'internimage-tiny_1xb16-12e_synthetic-64px.py'


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


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_amp_without_gpu_is_bfloat16_autocast(cfg):
    prepare_train_cfg(cfg, work_dir='w', amp=True)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=5.0)  # the rest is kept


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_amp_float16_without_gpu_is_a_clear_error(cfg):
    with pytest.raises(SystemExit, match='--amp-dtype float16: without a CUDA GPU'):
        prepare_train_cfg(cfg, work_dir='w', amp=True, amp_dtype='float16')


def test_amp_refuses_other_wrappers(cfg):
    cfg.optim_wrapper.type = 'SomeOtherWrapper'
    with pytest.raises(SystemExit, match="optim_wrapper type is 'SomeOtherWrapper'"):
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


# ------------------------------------------------------------------ --strategy
@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU settings')
def test_strategy_fsdp_switches_to_flexible_runner(cfg):
    cfg.strategy = dict(model_wrapper=dict(sharding_strategy='SHARD_GRAD_OP'))  # user's wins
    prepare_train_cfg(cfg, work_dir='w', launcher='pytorch', strategy='fsdp',
                      accumulative_counts=2)
    assert cfg.runner_type == 'FlexibleRunner'
    s = cfg.strategy
    assert s.type == 'InternImageFSDPStrategy'
    assert s.model_wrapper == dict(type='MMFullyShardedDataParallel',
                                   sharding_strategy='SHARD_GRAD_OP', use_orig_params=True,
                                   auto_wrap_policy=dict(type='internimage_auto_wrap_policy'),
                                   device_id='cpu')
    assert s.state_dict_cfg.state_dict_type == 'FULL_STATE_DICT'
    assert s.state_dict_cfg.state_dict_config.offload_to_cpu is False  # crashes on CPU torch
    assert cfg.optim_wrapper.accumulative_counts == 2  # the optim wrapper is unchanged


def test_strategy_needs_a_launcher(cfg):
    with pytest.raises(SystemExit, match='launch with tools/dist_train.sh'):
        prepare_train_cfg(cfg, work_dir='w', strategy='fsdp')


def test_strategy_unknown(cfg):
    with pytest.raises(SystemExit, match="--strategy must be one of"):
        prepare_train_cfg(cfg, work_dir='w', launcher='pytorch', strategy='zero')


@pytest.mark.skipif(importlib.util.find_spec('deepspeed') is not None,
                    reason='checks the message without deepspeed')
def test_strategy_deepspeed_not_installed(cfg):
    with pytest.raises(SystemExit, match='deepspeed package is not installed'):
        prepare_train_cfg(cfg, work_dir='w', launcher='pytorch', strategy='deepspeed')


def test_deepspeed_settings_move_from_the_optim_wrapper(cfg, monkeypatch):
    """What --strategy deepspeed writes (DeepSpeed itself is absent here: its presence and a
    GPU are faked, the config is only inspected)."""
    from internimage_mm.apis import strategy
    monkeypatch.setattr(strategy.importlib.util, 'find_spec', lambda name: object())
    monkeypatch.setattr(strategy.torch.cuda, 'is_available', lambda: True)
    cfg.optim_wrapper.accumulative_counts = 4
    cfg.launcher = 'pytorch'
    strategy.enable_strategy(cfg, 'deepspeed')
    s = cfg.strategy
    assert cfg.runner_type == 'FlexibleRunner' and s.type == 'DeepSpeedStrategy'
    assert s.zero_optimization.stage == 3 and s.bf16 == dict(enabled=True)
    assert s.gradient_clipping == 5.0 and s.gradient_accumulation_steps == 4
    assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'
    assert 'clip_grad' not in cfg.optim_wrapper and 'accumulative_counts' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert s.inputs_to_half == ['inputs']  # the model is bf16 in DeepSpeed: cast the images


def test_deepspeed_refuses_clipping_it_cannot_do(cfg, monkeypatch):
    from internimage_mm.apis import strategy
    monkeypatch.setattr(strategy.importlib.util, 'find_spec', lambda name: object())
    monkeypatch.setattr(strategy.torch.cuda, 'is_available', lambda: True)
    cfg.launcher = 'pytorch'
    cfg.optim_wrapper.clip_grad = dict(type='value', clip_value=1.0)
    with pytest.raises(SystemExit, match='clips by the 2-norm only'):
        strategy.enable_strategy(cfg, 'deepspeed')
