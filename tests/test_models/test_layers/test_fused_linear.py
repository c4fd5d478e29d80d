"""fused_linear: oneDNN's fused linear+activation / linear+residual on CPU, equal to the plain
ops within float32 rounding, with addmm's gradients under autograd; small outputs, other dtypes
and exporters take the plain ops; a block and the whole backbone give the same output and
gradients either way."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from internimage_mm.models.backbones.intern_image import InternImageLayer, MLPLayer
from internimage_mm.models.layers import fused_linear as fl

pytestmark = pytest.mark.skipif(not fl.fused_available(),
                                reason='this PyTorch build has no oneDNN fused linear')


@pytest.fixture
def calls(monkeypatch):
    """Counts the fused kernel calls, and makes every output size eligible."""
    counter = {'fused': 0}
    ops = fl._ops

    class Spy:
        def __call__(self, *args):
            counter['fused'] += 1
            return ops(*args)

        def binary(self, *args):
            counter['fused'] += 1
            return ops.binary(*args)

    monkeypatch.setattr(fl, '_ops', Spy())
    monkeypatch.setattr(fl, 'MIN_FUSED_NUMEL', 1)
    monkeypatch.setattr(fl, 'MIN_FUSED_ROWS', 1)
    return counter


@pytest.mark.parametrize('act', [None, nn.GELU(), nn.GELU(approximate='tanh'), nn.ReLU()])
def test_linear_act_equals_the_plain_ops(calls, act):
    torch.manual_seed(0)
    linear = nn.Linear(24, 40)
    x = torch.randn(2, 5, 7, 24)
    ref = linear(x) if act is None else act(linear(x))
    with torch.no_grad():
        out = fl.linear_act(x, linear, act)
    assert calls['fused'] == 1
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('fused', [True, False])
def test_linear_cat_is_the_concatenated_outputs(calls, monkeypatch, fused):
    torch.manual_seed(0)
    a, b, c = nn.Linear(16, 24), nn.Linear(16, 12), nn.Linear(16, 5, bias=False)
    x = torch.randn(2, 5, 7, 16)
    if not fused:
        monkeypatch.setattr(fl, 'MIN_FUSED_ROWS', 10**9)
    with torch.no_grad():
        out = fl.linear_cat(x, a, b, c)
    assert calls['fused'] == int(fused)
    torch.testing.assert_close(out, torch.cat((a(x), b(x), c(x)), -1), rtol=1e-5, atol=1e-5)
    out = fl.linear_cat(x, a, b)  # autograd: gradients reach every layer
    out.sum().backward()
    assert calls['fused'] == 2 * int(fused)
    assert a.weight.grad is not None and b.weight.grad is not None


def test_linear_add_equals_the_plain_ops(calls):
    torch.manual_seed(0)
    linear = nn.Linear(40, 24)
    x, r = torch.randn(3, 6, 40), torch.randn(3, 6, 24)
    with torch.no_grad():
        out = fl.linear_add(x, linear, r)
        out_t = fl.linear_add(x.transpose(0, 1), linear, r.transpose(0, 1))  # strided views
    assert calls['fused'] == 2
    torch.testing.assert_close(out, r + linear(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_t, (r + linear(x)).transpose(0, 1), rtol=1e-5, atol=1e-5)


def _grads(fn, tensors):
    out = fn()
    w = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    return out, torch.autograd.grad((out * w).sum(), tensors)


@pytest.mark.parametrize('kind', ['act', 'gelu', 'cat', 'add', 'add-view'])
@pytest.mark.parametrize('bias', [True, False])
def test_autograd_gives_the_plain_ops_values_and_gradients(calls, monkeypatch, kind, bias):
    """Under autograd the bias (and skip) is fused in the forward, the backward is addmm's."""
    torch.manual_seed(0)
    lin, other = nn.Linear(24, 40, bias=bias), nn.Linear(24, 12)
    x = torch.randn(3, 5, 7, 24, requires_grad=True)
    r = torch.randn(3, 5, 7, 40, requires_grad=True)
    if kind == 'add-view':  # strided input and skip
        x = torch.randn(5, 3, 7, 24).transpose(0, 1).requires_grad_()
        r = torch.randn(5, 3, 7, 40).transpose(0, 1).requires_grad_()
    act = nn.GELU() if kind == 'gelu' else None
    params = [x, *lin.parameters()]
    fns = {'act': lambda: fl.linear_act(x, lin, act), 'gelu': lambda: fl.linear_act(x, lin, act),
           'cat': lambda: fl.linear_cat(x, lin, other), 'add': lambda: fl.linear_add(x, lin, r),
           'add-view': lambda: fl.linear_add(x, lin, r)}
    tensors = params + [r] if kind.startswith('add') else params
    out, grads = _grads(fns[kind], tensors)
    assert calls['fused'] == 1 and out.grad_fn is not None
    monkeypatch.setattr(fl, '_enabled', False)
    ref, ref_grads = _grads(fns[kind], tensors)
    assert calls['fused'] == 1
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, rg in zip(grads, ref_grads):
        torch.testing.assert_close(g, rg, rtol=1e-4, atol=1e-4)


def test_autograd_without_input_gradient_and_a_failing_kernel(calls, monkeypatch):
    torch.manual_seed(0)
    lin = nn.Linear(16, 8)
    x = torch.randn(30, 16)
    out = fl.linear_act(x, lin)  # only the parameters need gradients
    out.sum().backward()
    torch.testing.assert_close(lin.bias.grad, torch.full((8, ), 30.))
    torch.testing.assert_close(lin.weight.grad, x.sum(0).expand(8, 16), rtol=1e-5, atol=1e-5)

    def broken(*args):
        raise RuntimeError('changed signature')

    monkeypatch.setattr(fl, '_ops', broken)
    monkeypatch.setattr(fl, '_enabled', True)  # restored after the test
    lin.zero_grad()
    with pytest.warns(RuntimeWarning, match='fused linear failed'):
        out2 = fl.linear_act(x, lin)
    torch.testing.assert_close(out2, out)
    out2.sum().backward()
    torch.testing.assert_close(lin.bias.grad, torch.full((8, ), 30.))
    assert not fl.fused_available()


def test_other_dtypes_activations_and_shapes_take_the_plain_ops(calls):
    linear = nn.Linear(8, 16)
    x = torch.randn(4, 8)
    with torch.no_grad():
        fl.linear_act(x.double(), linear.double(), nn.GELU())
        fl.linear_act(x, linear.float(), nn.Tanh())  # no oneDNN epilogue wired for it
        fl.linear_add(torch.randn(4, 16), nn.Linear(16, 8), torch.randn(1, 8))  # broadcast
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert fl.linear_act(x, linear, nn.GELU()).dtype == torch.bfloat16
    assert calls['fused'] == 0


def test_small_outputs_take_the_plain_ops(calls, monkeypatch):
    monkeypatch.setattr(fl, 'MIN_FUSED_ROWS', 4096)
    monkeypatch.setattr(fl, 'MIN_FUSED_NUMEL', 1 << 20)
    with torch.no_grad():
        fl.linear_act(torch.randn(4095, 512), nn.Linear(512, 512))  # too few rows
        fl.linear_act(torch.randn(8192, 64), nn.Linear(64, 64))  # output cache-resident
        assert calls['fused'] == 0
        fl.linear_act(torch.randn(8192, 64), nn.Linear(64, 128))
    assert calls['fused'] == 1


class _MLPWithSkip(nn.Module):

    def __init__(self) -> None:
        super().__init__()
        self.mlp = MLPLayer(8, 32)

    def forward(self, x, r):
        return self.mlp(x, residual=r)


def test_tracing_sees_the_plain_ops(calls):
    model = _MLPWithSkip().eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, (torch.randn(2, 3, 8), torch.randn(2, 3, 8)),
                                 check_trace=False)
    assert calls['fused'] == 0
    assert 'mkldnn' not in str(traced.graph)


def test_a_failing_kernel_falls_back_to_the_plain_ops_for_good(monkeypatch):
    def broken(*args):
        raise RuntimeError('changed signature')

    monkeypatch.setattr(fl, '_ops', broken)
    monkeypatch.setattr(fl, '_enabled', True)
    monkeypatch.setattr(fl, 'MIN_FUSED_NUMEL', 1)
    monkeypatch.setattr(fl, 'MIN_FUSED_ROWS', 1)
    linear = nn.Linear(4, 4)
    x = torch.randn(3, 4)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match='fused linear failed'):
        out = fl.linear_act(x, linear, nn.GELU())
    torch.testing.assert_close(out, nn.GELU()(linear(x)))
    assert not fl.fused_available()


@pytest.mark.parametrize('drop_path', [0.0, 0.3])
def test_block_output_is_unchanged_by_the_fused_skips(calls, monkeypatch, drop_path):
    torch.manual_seed(0)
    block = InternImageLayer('DCNv3', channels=16, groups=2, drop_path=drop_path)
    for p in block.parameters():
        p.data.normal_(0, 0.2)  # off the zero init of offsets/masks
    block.eval()
    x = torch.randn(2, 9, 11, 16)
    with torch.no_grad():
        fused = block(x)
        # fc1, fc2+skip, input_proj, offset+mask (one GEMM), output_proj+skip
        assert calls['fused'] == 5
        monkeypatch.setattr(fl, '_enabled', False)
        plain = block(x)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)


def test_training_keeps_the_drop_path_and_autograd():
    torch.manual_seed(0)
    block = InternImageLayer('DCNv3', channels=16, groups=2, drop_path=0.5).train()
    x = torch.randn(4, 5, 5, 16, requires_grad=True)
    block(x).sum().backward()
    assert x.grad is not None and block.mlp.fc1.weight.grad is not None
    torch.manual_seed(1)
    with torch.no_grad():
        outs = {tuple(block(x).flatten(1).sum(1).tolist()) for _ in range(6)}
    assert len(outs) > 1  # random per call: the drop path is active in training


@pytest.mark.parametrize('drop_path', [0.0, 0.3])
def test_block_training_step_is_unchanged_by_the_fused_linears(calls, monkeypatch, drop_path):
    """A training forward and backward of a block: the same loss and parameter gradients with
    the fused linears (every linear of the block) as with the plain ops, same drop-path draws."""
    torch.manual_seed(0)
    block = InternImageLayer('DCNv3', channels=16, groups=2, drop_path=drop_path).train()
    for p in block.parameters():
        p.data.normal_(0, 0.2)
    x = torch.randn(4, 9, 11, 16, requires_grad=True)
    tensors = [x, *block.parameters()]

    def step():
        torch.manual_seed(3)
        return _grads(lambda: block(x), tensors)

    out, grads = step()
    # input_proj, offset+mask (one GEMM), output_proj(+skip), fc1, fc2(+skip)
    assert calls['fused'] == 5
    monkeypatch.setattr(fl, '_enabled', False)
    ref, ref_grads = step()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for g, rg in zip(grads, ref_grads):
        torch.testing.assert_close(g, rg, rtol=1e-4, atol=1e-4)
