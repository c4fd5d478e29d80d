"""mmengine's FSDP strategy with gradient-norm clipping over the whole (sharded) model."""
from __future__ import annotations

from typing import Any

import torch
from mmengine._strategy import FSDPStrategy
from mmengine.optim import BaseOptimWrapper, OptimWrapper, OptimWrapperDict
from mmengine.registry import STRATEGIES


@STRATEGIES.register_module()
class InternImageFSDPStrategy(FSDPStrategy):
    """:class:`mmengine._strategy.FSDPStrategy` whose ``clip_grad`` by norm clips globally.

    Clipping by norm rescales every gradient by ``min(1, max_norm / ||g||)`` with ``||g||``
    the norm of *all* gradients. Under FSDP each rank holds only its shard of ``g``, and
    mmengine's :class:`~mmengine.optim.OptimWrapper` calls ``torch.nn.utils.clip_grad_norm_``
    on the local shard: every rank then clips with a different ``||g_shard||`` and the
    model silently diverges from the single-process/DDP result whenever clipping is active
    (DINO clips at 0.1, so it always is). Here the optimizer wrappers clip through the root
    FSDP module's ``clip_grad_norm_``, which all-reduces the shard norms first: the update
    is the same as DDP's.

    It also fixes resuming: mmengine calls ``FSDP.optim_state_dict_to_load`` with the
    argument order of torch < 2.1 (state dict, model, optimizer), which torch 2.13 rejects
    (``unhashable type: 'dict'``) when ``--resume`` loads the optimizer state. Everything
    else is mmengine's strategy.
    """

    def build_optim_wrapper(self, optim_wrapper: Any,
                            model: torch.nn.Module | None = None) -> BaseOptimWrapper:
        built = super().build_optim_wrapper(optim_wrapper, model)
        root = model if model is not None else getattr(self, 'model', None)
        wrappers = built.values() if isinstance(built, OptimWrapperDict) else [built]
        clipping = [w for w in wrappers if isinstance(w, OptimWrapper)
                    and getattr(w, 'grad_name', None) == 'grad_norm']
        if clipping and (root is None or isinstance(built, OptimWrapperDict)):
            # FSDP clips the whole root module: one optimizer over one model only
            raise ValueError(f'{type(self).__name__}: clip_grad by norm needs a single optim '
                             'wrapper over the FSDP-wrapped model')
        for wrapper in clipping:
            wrapper.clip_func = _global_clip_grad_norm(root)
        return built


    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load a saved (full or local) optimizer state into the sharded optimizer."""
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        state_dict = dict(state_dict)
        # keys of the optimizer wrapper (AmpOptimWrapper's loss scaler, ...), not torch's
        extra = {k: state_dict.pop(k) for k in list(state_dict)
                 if k not in ('state', 'param_groups')}
        optim_state = FSDP.optim_state_dict_to_load(
            model=self.model, optim=self.optim_wrapper.optimizer, optim_state_dict=state_dict)
        self.optim_wrapper.load_state_dict({**optim_state, **extra})


def _global_clip_grad_norm(root: torch.nn.Module):
    """``clip_grad_norm_(params, max_norm, norm_type)`` over every rank's shards of ``root``
    (the parameters the optimizer wrapper passes are this rank's shards, i.e. the same set)."""

    def clip(_params, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
             **_kwargs) -> torch.Tensor:
        norm = root.clip_grad_norm_(max_norm, norm_type)
        if error_if_nonfinite and not torch.isfinite(norm):
            raise RuntimeError(f'The total norm of order {norm_type} of the gradients is '
                               f'non-finite ({norm.item()}), so it cannot be clipped')
        return norm

    return clip
