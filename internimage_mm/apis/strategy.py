"""``tools/train.py --strategy``: train through mmengine's FlexibleRunner with FSDP or DeepSpeed.

The large models (InternImage-H detectors and segmentors, 1-1.3B parameters) do not fit one
GPU's memory with plain DDP, where every rank holds all weights, gradients and AdamW states
(16 bytes per parameter: about 21 GB for the H backbone alone). FSDP shards all three over the
ranks and gathers one block's weights at a time (:func:`internimage_auto_wrap_policy`);
DeepSpeed ZeRO does the same with its own engine. Both run through mmengine's
:class:`~mmengine.runner.FlexibleRunner`, with the config's model, data, optimizer constructor
(layer-wise decay included), schedule and hooks unchanged; the backbone's ``with_cp`` still
checkpoints the activations block by block.
"""
from __future__ import annotations

import importlib.util

import torch
from mmengine.config import Config

STRATEGIES = ('fsdp', 'deepspeed')


def _set_strategy(cfg: Config, defaults: dict) -> None:
    """``cfg.strategy`` = ``defaults`` updated by the config's own ``strategy`` entries (mmengine's
    nested merge), so ``--cfg-options strategy.model_wrapper.sharding_strategy=...`` still wins."""
    user = cfg.get('strategy')
    cfg.strategy = defaults
    if user:
        cfg.merge_from_dict(dict(strategy=user))


def fsdp_strategy(cpu: bool) -> dict:
    """``InternImageFSDPStrategy`` settings (mmengine's FSDPStrategy, clipping by the global
    gradient norm) for InternImage models.

    Full sharding, one FSDP unit per InternImage block, the parameters' original names kept
    (``use_orig_params``: the layer-decay constructor gives each its own lr/decay), and full
    (unsharded) state dicts saved by rank 0, so that checkpoints load in a plain
    ``tools/test.py`` key for key. On CPU the module stays on the CPU (``device_id='cpu'``:
    FSDP otherwise requires an accelerator) and state dicts are not "offloaded to CPU": torch
    2.13's offload of tensors already on the CPU crashes the process.
    """
    state = dict(type='FullStateDictConfig', offload_to_cpu=not cpu, rank0_only=True)
    optim_state = dict(type='FullOptimStateDictConfig', offload_to_cpu=not cpu, rank0_only=True)
    wrapper = dict(type='MMFullyShardedDataParallel', sharding_strategy='FULL_SHARD',
                   use_orig_params=True,
                   auto_wrap_policy=dict(type='internimage_auto_wrap_policy'))
    if cpu:
        wrapper['device_id'] = 'cpu'
    return dict(type='InternImageFSDPStrategy', model_wrapper=wrapper,
                state_dict_cfg=dict(state_dict_type='FULL_STATE_DICT', state_dict_config=state,
                                    optim_state_dict_config=optim_state))


def deepspeed_strategy() -> dict:
    """mmengine ``DeepSpeedStrategy`` settings: ZeRO stage 3 (parameters, gradients and
    optimizer states sharded), bf16, no clipping (:func:`enable_strategy` moves the config's
    ``clip_grad`` and ``accumulative_counts`` here, since DeepSpeed's engine does both)."""
    # DeepSpeed keeps the model in bf16/fp16: the preprocessed images must be cast too.
    return dict(type='DeepSpeedStrategy', bf16=dict(enabled=True),
                zero_optimization=dict(stage=3, overlap_comm=True, contiguous_gradients=True,
                                       stage3_gather_16bit_weights_on_model_save=True),
                gradient_clipping=0.0, inputs_to_half=['inputs'])


def enable_strategy(cfg: Config, strategy: str) -> None:
    """Switch ``cfg`` to ``FlexibleRunner`` with ``strategy`` (``'fsdp'`` or ``'deepspeed'``).

    Raises SystemExit with the reason when the run cannot work: no distributed launcher
    (both shard over a process group: use ``tools/dist_train.sh`` or ``slurm_train.sh``),
    DeepSpeed not installed or without a GPU, or an optimizer wrapper the strategy cannot use.
    """
    if strategy not in STRATEGIES:
        raise SystemExit(f'--strategy must be one of {STRATEGIES}, got {strategy!r}')
    if cfg.get('launcher', 'none') == 'none':
        raise SystemExit(f'--strategy {strategy} shards the model over a process group: launch '
                         'with tools/dist_train.sh CONFIG N (or slurm_train.sh), not plain '
                         'python')
    cfg.runner_type = 'FlexibleRunner'
    if strategy == 'fsdp':
        _set_strategy(cfg, fsdp_strategy(cpu=not torch.cuda.is_available()))
        return
    if importlib.util.find_spec('deepspeed') is None:
        raise SystemExit('--strategy deepspeed: the deepspeed package is not installed '
                         '(pip install deepspeed, on a CUDA machine)')
    if not torch.cuda.is_available():
        raise SystemExit('--strategy deepspeed needs CUDA GPUs (use --strategy fsdp on CPU)')
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise SystemExit(f"--strategy deepspeed: the config's optim_wrapper type is "
                         f'{wrapper.type!r}; only OptimWrapper/AmpOptimWrapper can be switched')
    ds = deepspeed_strategy()
    # DeepSpeed's engine clips, accumulates and casts: move those settings over to it.
    clip = wrapper.get('clip_grad')
    if clip:
        if (clip.get('type', 'norm') != 'norm' or float(clip.get('norm_type', 2)) != 2.0
                or 'max_norm' not in clip):
            raise SystemExit(f'--strategy deepspeed: clip_grad={dict(clip)} cannot be moved to '
                             'DeepSpeed, which clips by the 2-norm only (max_norm)')
        ds['gradient_clipping'] = float(clip.max_norm)
    if wrapper.get('accumulative_counts'):
        ds['gradient_accumulation_steps'] = int(wrapper.accumulative_counts)
    if wrapper.get('type') == 'AmpOptimWrapper' and wrapper.get('dtype') in (None, 'float16'):
        ds.pop('bf16')
        scale = wrapper.get('loss_scale', 'dynamic')
        # DeepSpeed: loss_scale 0 is dynamic scaling, a number a static scale
        ds['fp16'] = dict(enabled=True,
                          loss_scale=float(scale) if isinstance(scale, (int, float)) else 0)
    _set_strategy(cfg, ds)
    wrapper.type = 'DeepSpeedOptimWrapper'
    for key in ('clip_grad', 'loss_scale', 'dtype', 'accumulative_counts'):
        wrapper.pop(key, None)
