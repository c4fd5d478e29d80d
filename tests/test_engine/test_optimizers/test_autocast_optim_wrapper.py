"""AutocastOptimWrapper: bfloat16 autocast without loss scaling (the CPU --amp path)."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch import nn

from internimage_mm.engine import AutocastOptimWrapper
from internimage_mm.models import InternImage


def test_forward_runs_in_bfloat16_and_master_weights_stay_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    wrapper = build_optim_wrapper(model, dict(type='AutocastOptimWrapper',
                                              optimizer=dict(type='SGD', lr=0.1)))
    assert isinstance(wrapper, AutocastOptimWrapper)
    before = model[0].weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(4, 8))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert model[0].weight.dtype == torch.float32 and model[0].weight.grad is None
    assert not torch.equal(before, model[0].weight)
    # outside the context the model is float32 again
    assert model(torch.randn(4, 8)).dtype == torch.float32


def test_internimage_trains_under_cpu_autocast():
    """The compiled DCNv3 op takes bfloat16 through autocast (computed in float32 on CPU)
    and the loss and gradients are finite."""
    torch.manual_seed(0)
    net = InternImage(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8), core_op='DCNv3')
    wrapper = build_optim_wrapper(net, dict(type='AutocastOptimWrapper', clip_grad=dict(
        max_norm=1.0), optimizer=dict(type='AdamW', lr=1e-3)))
    with wrapper.optim_context(net):
        feats = net(torch.randn(2, 3, 64, 64))
    assert all(f.dtype == torch.bfloat16 for f in feats)
    loss = sum(f.float().mean() for f in feats)
    wrapper.update_params(loss)
    assert torch.isfinite(loss)


def test_float16_is_refused():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match='dtype must be bfloat16'):
        AutocastOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), dtype='float16')
