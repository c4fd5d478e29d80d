"""The fused residual drop path equals mmcv's ``x + DropPath(p)(gamma * f)``: same random
draws, same values to float32 rounding, same gradients."""
import pytest
import torch
from mmcv.cnn.bricks import DropPath as MMCVDropPath
from torch import nn

from internimage_mm.models.backbones.intern_image import InternImageLayer
from internimage_mm.models.layers.drop_path import DropPath, residual_add


def _reference(x, f, gamma, p, seed):
    torch.manual_seed(seed)
    dp = MMCVDropPath(p).train()
    return x + dp(f if gamma is None else gamma * f)


def _fused(x, f, gamma, p, seed):
    torch.manual_seed(seed)
    return residual_add(x, f, gamma, DropPath(p).train())


@pytest.mark.parametrize('with_gamma', [False, True])
@pytest.mark.parametrize('p', [0.0, 0.3, 0.9])
def test_matches_mmcv_drop_path_values_and_gradients(with_gamma, p):
    torch.manual_seed(0)
    x = torch.randn(16, 5, 6, 8, dtype=torch.float64, requires_grad=True)
    f = torch.randn(16, 5, 6, 8, dtype=torch.float64, requires_grad=True)
    gamma = torch.rand(8, dtype=torch.float64, requires_grad=True) if with_gamma else None
    inputs = [t for t in (x, f, gamma) if t is not None]
    w = torch.randn_like(x)
    ref = _reference(x, f, gamma, p, seed=3)
    ref_grads = torch.autograd.grad((ref * w).sum(), inputs)
    out = _fused(x, f, gamma, p, seed=3)
    grads = torch.autograd.grad((out * w).sum(), inputs)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-12, atol=1e-12)
    if p > 0:  # the draws were really used: some samples dropped (seeded), the rest scaled
        dropped = (out - x).flatten(1).abs().amax(1) == 0
        assert 0 < int(dropped.sum()) < 16


def test_float32_within_rounding_and_dropped_samples_exact():
    torch.manual_seed(1)
    x, f = torch.randn(32, 7, 7, 16), torch.randn(32, 7, 7, 16)
    ref = _reference(x, f, None, 0.5, seed=5)
    out = _fused(x, f, None, 0.5, seed=5)
    torch.testing.assert_close(out, ref, rtol=2e-7, atol=2e-7)
    dropped = (ref - x).flatten(1).abs().amax(1) == 0
    assert dropped.any() and torch.equal(out[dropped], x[dropped])


def test_eval_mode_and_identity_are_the_plain_skip():
    x, f, gamma = torch.randn(2, 3, 3, 4), torch.randn(2, 3, 3, 4), torch.rand(4)
    assert torch.equal(DropPath(0.5).eval().add(x, f), x + f)
    assert torch.equal(residual_add(x, f, None, nn.Identity()), x + f)
    torch.testing.assert_close(residual_add(x, f, gamma), x + gamma * f)
    # any other module is applied as it is
    assert torch.equal(residual_add(x, f, None, nn.Dropout(0.0)), x + f)


def test_mixed_dtypes_promote_like_the_plain_sum():
    x = torch.randn(4, 3, 3, 8)
    f = torch.randn(4, 3, 3, 8, dtype=torch.bfloat16)
    out = DropPath(0.5).train().add(x, f)
    assert out.dtype == (x + f).dtype == torch.float32


@pytest.mark.parametrize('options', [dict(), dict(layer_scale=0.5), dict(post_norm=True),
                                     dict(res_post_norm=True)])
def test_block_training_output_matches_mmcv_composition(options):
    """The block with the fused skips gives mmcv's ``x + DropPath(f)`` under the same seed."""
    torch.manual_seed(0)
    block = InternImageLayer('DCNv3_pytorch', channels=16, groups=2, drop_path=0.4,
                             **options).train()
    assert isinstance(block.drop_path, DropPath)
    x = torch.randn(8, 5, 6, 16)
    dp = MMCVDropPath(0.4).train()
    g1 = block.gamma1 if block.layer_scale else 1.
    g2 = block.gamma2 if block.layer_scale else 1.
    if options.get('post_norm'):
        def branches(y):
            y = y + dp(g1 * block.norm1(block.dcn(y)))
            return y + dp(g2 * block.norm2(block.mlp(y)))
    elif options.get('res_post_norm'):
        def branches(y):
            y = y + dp(block.res_post_norm1(block.dcn(block.norm1(y))))
            return y + dp(block.res_post_norm2(block.mlp(block.norm2(y))))
    else:
        def branches(y):
            y = y + dp(g1 * block.dcn(block.norm1(y)))
            return y + dp(g2 * block.mlp(block.norm2(y)))
    with torch.no_grad():
        torch.manual_seed(7)
        ref = branches(x)
        torch.manual_seed(7)
        out = block(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, block.eval()(x))  # some branch was dropped or scaled
