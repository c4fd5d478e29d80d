"""Config preparation shared by ``tools/train.py`` and ``tools/test.py`` (all three tasks).

The tools stay thin: they parse arguments and call these functions, which edit an mmengine
``Config`` in the way mmdet's, mmseg's and mmpretrain's own tools do, then build the Runner.
"""
from __future__ import annotations

import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .. import compat
from ..models.backbones.checkpoint import fetch_checkpoint
from .strategy import enable_strategy

_VIS_HOOKS = ('DetVisualizationHook', 'SegVisualizationHook', 'VisualizationHook')


def work_dir_for(cfg: Config, config_path: str, work_dir: str | None) -> str:
    """``--work-dir``, else the config's ``work_dir``, else ``./work_dirs/<config name>``."""
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir') is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def enable_amp(cfg: Config, dtype: str | None = None) -> None:
    """Switch the config's optimizer wrapper to mixed precision.

    On a GPU: mmengine's ``AmpOptimWrapper`` (autocast, dynamic loss scaling), float16 unless
    ``dtype`` says bfloat16. Without one: our :class:`AutocastOptimWrapper` in bfloat16, which
    needs no loss scaling (mmengine's wrapper refuses to run on the CPU); float16 is refused
    there, since CPU autocast does not support it.
    """
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        return
    if kind != 'OptimWrapper':
        raise SystemExit(f"--amp: the config's optim_wrapper type is {kind!r}; only "
                         'OptimWrapper can be switched to mixed precision')
    if torch.cuda.is_available():
        wrapper.type = 'AmpOptimWrapper'
        wrapper.loss_scale = 'dynamic'
        if dtype is not None:
            wrapper.dtype = dtype
        return
    if dtype not in (None, 'bfloat16'):
        raise SystemExit(f'--amp-dtype {dtype}: without a CUDA GPU mixed precision runs in '
                         'bfloat16 only (CPU autocast has no float16); use --amp-dtype bfloat16')
    wrapper.type = 'AutocastOptimWrapper'
    wrapper.dtype = 'bfloat16'


def prepare_train_cfg(cfg: Config, *, launcher: str = 'none', work_dir: str,
                      resume: str | None = None, amp: bool = False, amp_dtype: str | None = None,
                      accumulative_counts: int | None = None,
                      auto_scale_lr: bool = False, strategy: str | None = None) -> Config:
    """Launcher, work dir, resume (``'auto'``: latest checkpoint in the work dir), mixed
    precision, gradient accumulation, linear lr scaling and a FlexibleRunner strategy
    (``'fsdp'`` / ``'deepspeed'``, see :mod:`internimage_mm.apis.strategy`)."""
    cfg.launcher = launcher
    cfg.work_dir = work_dir
    if amp:
        enable_amp(cfg, amp_dtype)
    if accumulative_counts is not None:
        if accumulative_counts < 1:
            raise SystemExit(f'--accumulative-counts must be >= 1, got {accumulative_counts}')
        cfg.optim_wrapper.accumulative_counts = accumulative_counts
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise SystemExit('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if cfg.get('load_from') and not resume:
        cfg.load_from = _local_checkpoint(cfg.load_from)
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        if not osp.isfile(resume):
            raise SystemExit(f'--resume: checkpoint {resume} does not exist')
        cfg.resume, cfg.load_from = True, resume
    if strategy is not None:  # last: it moves the optim wrapper's settings where needed
        enable_strategy(cfg, strategy)
    return cfg


def prepare_test_cfg(cfg: Config, checkpoint: str, *, launcher: str = 'none', work_dir: str,
                     out: str | None = None, show_dir: str | None = None,
                     tta: bool = False) -> Config:
    """Checkpoint (a file or URL, ours or an official release: converted in memory on load),
    result dumping (``out``), prediction drawing (``show_dir``) and TTA."""
    cfg.launcher = launcher
    cfg.work_dir = work_dir
    cfg.load_from = _local_checkpoint(checkpoint)
    if out is not None:
        if not out.endswith(('.pkl', '.pickle')):
            raise SystemExit(f'--out must be a .pkl/.pickle file, got {out}')
        dump = dict(type='DumpResults', out_file_path=out)
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [
            cfg.test_evaluator]
        cfg.test_evaluator = [*evaluators, dump]
    if show_dir is not None:
        _enable_visualization(cfg, osp.abspath(show_dir))
    if tta:
        missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
        if missing:
            raise SystemExit(f'--tta: this config defines no {" / ".join(missing)}')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    return cfg


def _local_checkpoint(source: str) -> str:
    """A local file for a checkpoint path or URL (downloaded once, clear errors)."""
    try:
        return fetch_checkpoint(source)
    except (FileNotFoundError, RuntimeError) as e:
        raise SystemExit(str(e)) from e


def _enable_visualization(cfg: Config, show_dir: str) -> None:
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None or hook.get('type') not in _VIS_HOOKS:
        raise SystemExit('--show-dir: the config has no default_hooks.visualization of type '
                         f'{" / ".join(_VIS_HOOKS)}')
    # Every test image is drawn (the hooks' default intervals skip most of them).
    if hook.type == 'DetVisualizationHook':  # mmdet: drawn files under test_out_dir
        hook.update(draw=True, interval=1, test_out_dir=show_dir)
    elif hook.type == 'SegVisualizationHook':  # mmseg: the visualizer's backend saves them
        hook.update(draw=True, interval=1)
        cfg.visualizer.save_dir = show_dir
    else:  # mmpretrain
        hook.update(enable=True, interval=1, out_dir=show_dir)


def build_runner(cfg: Config) -> Runner:
    """The Runner (or the config's ``runner_type``), CPU distributed runs made to work."""
    compat.prepare_cpu_distributed(cfg)  # a no-op without a launcher or with a GPU
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def run(cfg: Config, mode: str) -> None:
    """Build the config's runner, run its ``train()`` or ``test()``, then end the run cleanly:
    drop the runner and destroy the default process group, if any.

    mmengine leaves the process group to interpreter exit; gloo's threads are then torn down in
    an arbitrary order, and after an FSDP run that aborted the process (``terminate called
    without an active exception``, exit code -6) although training had finished and saved its
    checkpoint. The runner goes first so that its DDP/FSDP wrappers no longer use the group.
    """
    import gc

    import torch.distributed as dist
    if mode not in ('train', 'test'):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    runner = build_runner(cfg)
    getattr(runner, mode)()
    del runner
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        gc.collect()  # the wrappers sit in reference cycles
        dist.destroy_process_group()
