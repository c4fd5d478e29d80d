"""torch.use_deterministic_algorithms: the CPU backward picks its deterministic strategy, and the
non-deterministic ones (atomic adds: CPU strategy 2, every CUDA backward) raise or warn."""
import pytest
import torch

from ops_dcnv3 import dcnv3
from ops_dcnv3.ops import dcnv3_backward

from ._cases import Args, make_inputs


@pytest.fixture
def deterministic():
    before, warn_only = (torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled())
    yield lambda warn_only=False: torch.use_deterministic_algorithms(True, warn_only=warn_only)
    torch.use_deterministic_algorithms(before, warn_only=warn_only)


def _call(device='cpu'):
    args = Args(group=2, group_channels=8)
    x, off, mask = make_inputs(args, batch=1, height=9, width=9, dtype=torch.float32,
                               device=device)
    go = torch.randn(1, 9, 9, 16, device=device)
    return (go, x, off, mask, *args.tuple())


def test_cpu_atomic_strategy_alerts(deterministic):
    deterministic()
    with pytest.raises(RuntimeError, match='dcnv3_backward_cpu'):
        dcnv3_backward(*_call(), strategy=2)
    deterministic(warn_only=True)
    with pytest.warns(UserWarning, match='dcnv3_backward_cpu'):
        dcnv3_backward(*_call(), strategy=2)


def test_cpu_auto_strategy_is_deterministic_when_asked(deterministic):
    deterministic()
    call = _call()
    first = dcnv3_backward(*call)  # auto: would pick atomics for a single image and group
    owner = dcnv3_backward(*call, strategy=1)
    for a, b in zip(first, owner):
        assert torch.equal(a, b)
    for _ in range(3):
        for a, b in zip(dcnv3_backward(*call), first):
            assert torch.equal(a, b)


@pytest.mark.gpu
def test_cuda_backward_alerts(deterministic):
    go, x, off, mask, *args = _call('cuda')
    leaves = [t.requires_grad_() for t in (x, off, mask)]
    out = dcnv3(*leaves, *args)
    deterministic()
    with pytest.raises(RuntimeError, match='dcnv3_backward_cuda'):
        out.backward(go)
