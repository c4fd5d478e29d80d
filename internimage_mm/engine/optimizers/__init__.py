"""Optimizer wrapper constructors (registered in mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS``)."""
from .layer_decay_optim_wrapper_constructor import InternImageLayerDecayOptimizerConstructor

__all__ = ['InternImageLayerDecayOptimizerConstructor']
