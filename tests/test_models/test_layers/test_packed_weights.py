"""layers/packed_weights.py: eval-mode modules keep oneDNN-packed copies of their linear weights
for CPU inference. Outputs equal the plain ops' (float32 rounding); a copy never outlives its
weights (in-place writes, load_state_dict, replaced parameters, .to(), mode switches); training,
autograd, other dtypes, autocast and tracers never use them; the module adds no state-dict
entries and survives deepcopy and pickling."""
from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn

from internimage_mm.models.backbones.intern_image import InternImage, InternImageLayer, MLPLayer
from internimage_mm.models.layers import fused_linear as fl
from internimage_mm.models.layers import packed_weights as pw
from internimage_mm.models.layers.packed_weights import PackedWeights

from .._helpers import TINY_T, perturb_

pytestmark = pytest.mark.skipif(not fl.fused_available(),
                                reason='this PyTorch build has no oneDNN fused linear')


@pytest.fixture
def kernel_weights(monkeypatch):
    """Records the layout of every weight handed to the fused kernel."""
    layouts = []
    ops = fl._ops

    class Spy:
        def __call__(self, x, weight, *args):
            layouts.append(weight.layout)
            return ops(x, weight, *args)

        def binary(self, x, other, weight, *args):
            layouts.append(weight.layout)
            return ops.binary(x, other, weight, *args)

    monkeypatch.setattr(fl, '_ops', Spy())
    monkeypatch.setattr(pw, '_enabled', True)
    return layouts


def _block(channels: int = 16, groups: int = 2, seed: int = 0) -> InternImageLayer:
    torch.manual_seed(seed)
    block = InternImageLayer('DCNv3', channels=channels, groups=groups)
    for p in block.parameters():
        p.data.normal_(0, 0.2)  # off the zero init of offsets/masks
    return block.eval()


def _plain(module: nn.Module, *args):
    """``module(*args)`` with the packing off (oneDNN or MKL on the plain weights)."""
    before = pw.weight_packing_enabled()
    pw.set_weight_packing(False)
    try:
        with torch.no_grad():
            return module(*args)
    finally:
        pw.set_weight_packing(before)


def test_an_eval_block_runs_every_linear_on_packed_weights(kernel_weights):
    block = _block()
    x = torch.randn(2, 9, 11, 16)  # 198 rows: far below the unpacked kernel's size threshold
    with torch.no_grad():
        out = block(x)
    # input_proj, offset+mask (one GEMM), output_proj+skip, fc1+GELU, fc2+skip
    assert kernel_weights == [torch._mkldnn] * 5
    assert block.dcn.packed_weights.num_entries == 3
    assert block.mlp.packed_weights.num_entries == 2
    del kernel_weights[:]
    torch.testing.assert_close(out, _plain(block, x), rtol=1e-5, atol=1e-5)
    assert torch._mkldnn not in kernel_weights
    with torch.no_grad():  # packed once: the second call reuses the copies
        entries = [e[1] for e in block.dcn.packed_weights._entries.values()]
        block(x)
        assert [e[1] for e in block.dcn.packed_weights._entries.values()] == entries


def test_a_whole_backbone_gives_the_same_features():
    torch.manual_seed(0)
    model = InternImage(**TINY_T)
    perturb_(model)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model(x)
    assert sum(m.num_entries for m in model.modules() if isinstance(m, PackedWeights)) > 0
    for f, ref in zip(feats, _plain(model, x)):
        torch.testing.assert_close(f, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('change', ['in_place', 'load_state_dict', 'new_parameter',
                                    'new_bias', 'data_then_eval'])
def test_a_copy_never_outlives_its_weights(kernel_weights, change):
    block = _block()
    x = torch.randn(2, 5, 6, 16)
    with torch.no_grad():
        before = block(x)
    fc1, proj = block.mlp.fc1, block.dcn.offset  # offset: one half of the stacked GEMM
    torch.manual_seed(1)
    new_w, new_o = torch.randn_like(fc1.weight), torch.randn_like(proj.weight) * 0.1
    if change == 'in_place':  # an optimizer step, copy_ under no_grad
        with torch.no_grad():
            fc1.weight.copy_(new_w)
            proj.weight.copy_(new_o)
    elif change == 'load_state_dict':
        state = block.state_dict()
        state['mlp.fc1.weight'], state['dcn.offset.weight'] = new_w, new_o
        block.load_state_dict(state)
    elif change == 'new_parameter':
        fc1.weight, proj.weight = nn.Parameter(new_w), nn.Parameter(new_o)
    elif change == 'new_bias':
        fc1.bias = nn.Parameter(torch.randn_like(fc1.bias))
        proj.bias = nn.Parameter(torch.randn_like(proj.bias))
    else:  # .data escapes the version counter (mmengine's EMA swap); the mode switch drops
        fc1.weight.data.copy_(new_w)
        proj.weight.data.copy_(new_o)
        block.eval()
        assert block.mlp.packed_weights.num_entries == 0
    with torch.no_grad():
        after = block(x)
    assert not torch.allclose(after, before, atol=1e-3)
    torch.testing.assert_close(after, _plain(block, x), rtol=1e-5, atol=1e-5)


def test_training_autograd_dtypes_and_autocast_leave_the_weights_unpacked(kernel_weights):
    block = _block().train()
    x = torch.randn(2, 5, 6, 16, requires_grad=True)
    block(x).sum().backward()  # training mode
    block.eval()
    block(x).sum().backward()  # eval mode under autograd (e.g. gradients w.r.t. the input)
    assert x.grad is not None and block.mlp.fc1.weight.grad is not None
    with torch.no_grad():
        block.double()(x.detach().double())
        block.float()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            block(x.detach())
        pw.set_weight_packing(False)
        block(x.detach())
    assert torch._mkldnn not in kernel_weights
    assert block.dcn.packed_weights.num_entries == block.mlp.packed_weights.num_entries == 0


def test_mode_switches_and_to_drop_the_copies():
    block = _block()
    with torch.no_grad():
        block(torch.randn(1, 4, 4, 16))
    assert block.mlp.packed_weights.num_entries == 2
    block.to(torch.float32)
    assert block.mlp.packed_weights.num_entries == 0
    with torch.no_grad():
        block(torch.randn(1, 4, 4, 16))
    block.train()
    assert block.mlp.packed_weights.num_entries == 0 and block.mlp.packed_weights.training


def test_no_state_dict_entries_and_copies_start_empty():
    block = _block()
    fresh = InternImageLayer('DCNv3', channels=16, groups=2)
    x = torch.randn(1, 4, 4, 16)
    with torch.no_grad():
        out = block(x)
    assert list(block.state_dict()) == list(fresh.state_dict())
    clone = copy.deepcopy(block)  # mmengine's EMA model is a deepcopy
    assert clone.mlp.packed_weights.num_entries == 0 and not clone.mlp.packed_weights.training
    buffer = io.BytesIO()
    torch.save(block, buffer)  # oneDNN's packed tensors cannot be pickled: never saved
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert loaded.mlp.packed_weights.num_entries == 0
    with torch.no_grad():
        torch.testing.assert_close(clone(x), out)
        torch.testing.assert_close(loaded(x), out)
    assert 'PackedWeights(entries=2)' in repr(block.mlp)


def test_stacked_linears_with_and_without_bias():
    torch.manual_seed(0)
    a, b, c = nn.Linear(16, 24), nn.Linear(16, 12, bias=False), nn.Linear(16, 5)
    cache = PackedWeights().eval()
    x = torch.randn(3, 7, 16)
    with torch.no_grad():
        out = fl.linear_cat(x, a, b, c, packed=cache)
        torch.testing.assert_close(out, torch.cat((a(x), b(x), c(x)), -1), rtol=1e-5,
                                   atol=1e-5)
        b.bias = nn.Parameter(torch.ones(12))  # a bias appears: packed again
        torch.testing.assert_close(fl.linear_cat(x, a, b, c, packed=cache),
                                   torch.cat((a(x), b(x), c(x)), -1), rtol=1e-5, atol=1e-5)
        nobias = nn.Linear(16, 8, bias=False)
        torch.testing.assert_close(fl.linear_act(x, nobias, nn.SiLU(), packed=cache),
                                   nn.functional.silu(nobias(x)), rtol=1e-5, atol=1e-5)
    assert cache.num_entries == 2  # (a, b, c) and nobias


def test_the_mlp_takes_packed_weights_over_row_tiles(kernel_weights, monkeypatch):
    from internimage_mm.models.layers import tiled_mlp as tm
    monkeypatch.setattr(tm, 'MIN_HIDDEN_BYTES', 1)
    mlp = MLPLayer(16, 64).eval()
    x, r = torch.randn(2, 6, 6, 16), torch.randn(2, 6, 6, 16)
    with torch.no_grad():
        out = mlp(x, residual=r)
    assert kernel_weights == [torch._mkldnn] * 2  # fc1+GELU, fc2+skip; no tiles
    torch.testing.assert_close(out, _plain(mlp, x, r), rtol=1e-5, atol=1e-5)


def test_a_failing_reorder_falls_back_to_the_plain_ops(monkeypatch):
    def broken(*args):
        raise RuntimeError('no such op')

    monkeypatch.setattr(torch.ops.mkldnn, '_reorder_linear_weight', broken, raising=False)
    monkeypatch.setattr(fl, '_enabled', True)
    monkeypatch.setattr(pw, '_enabled', True)
    block = _block()
    x = torch.randn(1, 4, 5, 16)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match='fused linear failed'):
        out = block(x)
    assert not fl.fused_available()
    monkeypatch.undo()
    torch.testing.assert_close(out, _plain(block, x), rtol=1e-5, atol=1e-5)
