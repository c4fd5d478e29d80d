"""Training-engine components: importing this package registers them in mmengine's roots."""
from .optimizers import InternImageLayerDecayOptimizerConstructor

__all__ = ['InternImageLayerDecayOptimizerConstructor']
