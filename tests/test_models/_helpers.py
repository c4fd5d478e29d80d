"""Small models and official-data helpers shared by the model tests."""
from __future__ import annotations

import json
from pathlib import Path

import torch

import internimage_mm  # noqa: F401  (registers the modules)

VARIANTS = ('t', 's', 'b', 'l', 'xl', 'h')
# A tiny H-like backbone (every option on) and a tiny T-like one: fast on CPU.
TINY_T = dict(arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8)),
              drop_path_rate=0.)
TINY_H = dict(arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8), dw_kernel_size=5,
                        res_post_norm=True, level2_post_norm=True,
                        level2_post_norm_block_ids=(0, 1), center_feature_scale=True),
              drop_path_rate=0.)


def load_json(shared: Path, name: str):
    return json.loads((shared / 'spec' / name).read_text())


def perturb_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> None:
    """Move every parameter off its initial value, so zero-initialised branches are exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
