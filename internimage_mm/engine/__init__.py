"""Training-engine components: importing this package registers them in mmengine's roots."""
from .fsdp_strategy import InternImageFSDPStrategy
from .fsdp_wrap_policy import internimage_auto_wrap_policy
from .optimizers import AutocastOptimWrapper, InternImageLayerDecayOptimizerConstructor

__all__ = [
    'AutocastOptimWrapper', 'InternImageFSDPStrategy', 'InternImageLayerDecayOptimizerConstructor',
    'internimage_auto_wrap_policy'
]
