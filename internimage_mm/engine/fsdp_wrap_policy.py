"""Where FSDP cuts an InternImage model into shards (mmengine ``FUNCTIONS`` registry)."""
from __future__ import annotations

from mmengine.registry import FUNCTIONS
from torch import nn

from ..models.backbones.intern_image import InternImageLayer


@FUNCTIONS.register_module()
def internimage_auto_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int,
                                 min_num_params: int = 0) -> bool:
    """FSDP ``auto_wrap_policy``: one FSDP unit per InternImage block.

    Each block (DCNv3 + MLP, the unit of the paper's stacking rule) becomes a flat parameter
    that is all-gathered just before its forward/backward and freed after, so the peak holds
    one block's full weights instead of the model's: for InternImage-H the 1.08B backbone
    parameters are sharded over the ranks. Everything else (stem, downsampling layers, neck,
    heads) goes to the root unit. Blocks smaller than ``min_num_params`` are left to their
    parent.

    Use it with ``strategy.model_wrapper.auto_wrap_policy =
    dict(type='internimage_auto_wrap_policy')`` (``tools/train.py --strategy fsdp`` does).
    """
    if recurse:
        return True
    return isinstance(module, InternImageLayer) and nonwrapped_numel >= min_num_params
