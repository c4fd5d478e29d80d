"""torch.use_deterministic_algorithms: the CPU backward picks its deterministic strategy, and the
non-deterministic ones (atomic adds: CPU strategy 2, every CUDA backward) raise or warn."""
import pytest
import torch

from ops_dcnv3 import dcnv3
from ops_dcnv3.ops import dcnv3_backward

from ._cases import Args, make_inputs, num_threads


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


@pytest.mark.parametrize('threads, expected', [(2, 1), (32, 3)])
def test_cpu_auto_strategy_is_deterministic_when_asked(deterministic, threads, expected):
    # 1 image x 2 groups: owner tasks at 2 threads; at 32, too few (image, group) pairs, so
    # auto takes replicas (deterministic too), never atomics, and raises no alert.
    deterministic()
    call = _call()
    with num_threads(threads):
        first = dcnv3_backward(*call)
        chosen = dcnv3_backward(*call, strategy=expected)
        reruns = [dcnv3_backward(*call) for _ in range(3)]
    for a, b in zip(first, chosen):
        assert torch.equal(a, b)
    for rerun in reruns:
        for a, b in zip(rerun, first):
            assert torch.equal(a, b)


@pytest.mark.gpu
def test_cuda_backward_alerts(deterministic):
    go, x, off, mask, *args = _call('cuda')
    leaves = [t.requires_grad_() for t in (x, off, mask)]
    out = dcnv3(*leaves, *args)
    deterministic()
    with pytest.raises(RuntimeError, match='dcnv3_backward_cuda'):
        out.backward(go)
