"""Small models and official-data helpers shared by the model tests."""
from __future__ import annotations

import torch

import internimage_mm  # noqa: F401  (registers the modules)
from internimage_mm.models import InternImage

VARIANTS = ('t', 's', 'b', 'l', 'xl', 'h')
# A tiny H-like backbone (every option on) and a tiny T-like one: fast on CPU.
TINY_T = dict(arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8)),
              drop_path_rate=0.)
TINY_H = dict(arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8), dw_kernel_size=5,
                        res_post_norm=True, level2_post_norm=True,
                        level2_post_norm_block_ids=(0, 1), center_feature_scale=True),
              drop_path_rate=0.)


def perturb_(module: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> None:
    """Move every parameter off its initial value, so zero-initialised branches are exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)


#: The classifier keys of an official T-like classification checkpoint.
CLASSIFIER_KEYS = ('conv_head.0.weight', 'conv_head.1.0.weight', 'conv_head.1.0.bias',
                   'conv_head.1.0.running_mean', 'conv_head.1.0.running_var',
                   'conv_head.1.0.num_batches_tracked', 'head.weight', 'head.bias')


def official_classifier_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A tiny official-layout classification state dict (TINY_T backbone + conv head, 10
    classes), every parameter moved off its initial value."""
    torch.manual_seed(seed)
    backbone = InternImage(**TINY_T)
    perturb_(backbone, seed)
    sd = dict(backbone.state_dict())
    sd.update({'conv_head.0.weight': torch.randn(192, 128, 1, 1),
               'conv_head.1.0.weight': torch.rand(192), 'conv_head.1.0.bias': torch.randn(192),
               'conv_head.1.0.running_mean': torch.randn(192),
               'conv_head.1.0.running_var': torch.rand(192),
               'conv_head.1.0.num_batches_tracked': torch.tensor(5),
               'head.weight': torch.randn(10, 192), 'head.bias': torch.randn(10)})
    return sd
