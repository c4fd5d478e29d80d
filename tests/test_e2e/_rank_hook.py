"""Test-only hook: every rank saves its model parameters after training (loaded through
``custom_imports`` by the distributed tests)."""
from pathlib import Path

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DumpRankParamsHook(Hook):

    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.out_dir.mkdir(parents=True, exist_ok=True)
        params = {k: v.detach().cpu() for k, v in model.named_parameters()}
        torch.save(params, self.out_dir / f'rank{get_rank()}.pth')
