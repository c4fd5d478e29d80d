"""bfloat16 mixed precision without loss scaling, on any device (the CPU included)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from torch import nn


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """:class:`~mmengine.optim.OptimWrapper` whose forward runs under ``torch.autocast``.

    Mixed precision (Micikevicius et al., 2018) keeps float32 master weights and runs the
    forward in a 16-bit type; with float16 the loss must be scaled, ``L' = s * L`` and
    ``g = g' / s``, because small gradients underflow float16's 5-bit exponent. bfloat16 has
    float32's 8-bit exponent, so ``s = 1`` suffices and no ``GradScaler`` is needed. That is
    what this wrapper does, which also makes mixed precision available where mmengine's
    :class:`~mmengine.optim.AmpOptimWrapper` refuses to run (it asserts a CUDA/NPU/MLU/MUSA
    device because of its scaler): training on CPU with ``tools/train.py --amp``.

    Args:
        dtype: the autocast type; only ``'bfloat16'`` (float16 needs loss scaling: use
            ``AmpOptimWrapper`` on a GPU).
        device_type: the autocast device; default the device of the model's first parameter.
        **kwargs: :class:`~mmengine.optim.OptimWrapper`'s arguments.
    """

    def __init__(self, *args, dtype: str | torch.dtype = 'bfloat16',
                 device_type: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(f'{type(self).__name__}: dtype must be bfloat16, got {dtype!r} '
                             '(float16 needs loss scaling: use AmpOptimWrapper on a GPU)')
        self.cast_dtype = torch.bfloat16
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """Gradient-accumulation context of the base class plus bf16 autocast."""
        device_type = self.device_type
        if device_type is None:
            param = next(model.parameters(), None)
            device_type = param.device.type if param is not None else 'cpu'
        with super().optim_context(model), torch.autocast(device_type, dtype=self.cast_dtype):
            yield
