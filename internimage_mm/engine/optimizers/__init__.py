"""Optimizer wrappers and their constructors (registered in mmengine's root registries)."""
from .autocast_optim_wrapper import AutocastOptimWrapper
from .layer_decay_optim_wrapper_constructor import InternImageLayerDecayOptimizerConstructor

__all__ = ['AutocastOptimWrapper', 'InternImageLayerDecayOptimizerConstructor']
