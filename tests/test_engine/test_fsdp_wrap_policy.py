"""internimage_auto_wrap_policy: one FSDP unit per InternImage block."""
from torch.distributed.fsdp.wrap import _recursive_wrap

from internimage_mm.engine import internimage_auto_wrap_policy
from internimage_mm.models import InternImage
from internimage_mm.models.backbones.intern_image import InternImageLayer


def test_policy_picks_the_blocks_only():
    net = InternImage(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8))
    picked = [name for name, m in net.named_modules()
              if internimage_auto_wrap_policy(m, recurse=False, nonwrapped_numel=10**6)]
    assert picked == [f'levels.{i}.blocks.{j}' for i, d in enumerate((1, 1, 2, 1))
                      for j in range(d)]
    assert all(isinstance(net.get_submodule(n), InternImageLayer) for n in picked)
    # it always recurses, and skips blocks under min_num_params
    assert internimage_auto_wrap_policy(net, recurse=True, nonwrapped_numel=0)
    block = net.get_submodule(picked[0])
    assert not internimage_auto_wrap_policy(block, recurse=False, nonwrapped_numel=10,
                                            min_num_params=100)


def test_policy_drives_torch_recursive_wrap():
    """Through torch's own wrapping walk (what FSDP runs), with a stand-in wrapper class."""
    import torch.nn as nn

    class Unit(nn.Module):
        def __init__(self, module, **kwargs):
            super().__init__()
            self.module = module

    net = InternImage(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8))
    _recursive_wrap(net, auto_wrap_policy=internimage_auto_wrap_policy, wrapper_cls=Unit,
                    ignored_modules=set(), ignored_params=set(), only_wrap_children=True)
    units = [n for n, m in net.named_modules() if isinstance(m, Unit)]
    assert len(units) == 5 and all(isinstance(net.get_submodule(n).module, InternImageLayer)
                                   for n in units)
