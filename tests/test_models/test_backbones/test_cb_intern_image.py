"""CB-InternImage (the composite backbone of the paper's record COCO row): the official key layout
and parameter count, the dense higher-level composition, and clear errors for bad settings."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from internimage_mm.models import CBInternImage, InternImage

from ...conftest import load_json
from .._helpers import perturb_

TINY = dict(arch=dict(channels=16, depths=(1, 1, 2, 1), groups=(1, 2, 4, 8)), drop_path_rate=0.)


def _cb(**kwargs) -> CBInternImage:
    torch.manual_seed(0)
    return CBInternImage(**{**TINY, **kwargs}).eval()


def test_h_keys_and_shapes_equal_the_official_checkpoint():
    manifest = load_json('spec/official_detseg/dino_4scale_cbinternimage_h_objects365_coco_ss.json')
    official = {k[len('backbone.'):]: shape for k, (shape, _) in manifest['state_dict'].items()
                if k.startswith('backbone.')}
    with torch.device('meta'):
        model = CBInternImage(arch='h', drop_path_rate=0.5, with_cp=True)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(official)  # the same keys in the same order
    assert ours == official
    assert sum(p.numel() for p in model.parameters()) == 2_152_954_720
    assert model.out_channels == (640, 1280, 2560) and model.depths == [6, 6, 32, 6]


def test_lead_with_zero_gammas_is_a_plain_internimage_on_the_shared_stem():
    cb = _cb()
    perturb_(cb)
    with torch.no_grad():
        for i in range(4):
            getattr(cb.cb_modules[1], f'gamma{i}').zero_()
    plain = InternImage(**TINY, out_indices=(1, 2, 3)).eval()
    state = {k[len('cb_modules.1.'):]: v for k, v in cb.state_dict().items()
             if k.startswith('cb_modules.1.levels')}
    state.update({k[len('cb_modules.0.'):]: v for k, v in cb.state_dict().items()
                  if k.startswith('cb_modules.0.patch_embed')})
    plain.load_state_dict(state)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        assist, lead = cb(x)
        for a, b in zip(lead, plain(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        # the assisting backbone is a complete InternImage: its stages 1-3
        alone = InternImage(**TINY, out_indices=(1, 2, 3)).eval()
        alone.load_state_dict({k[len('cb_modules.0.'):]: v for k, v in cb.state_dict().items()
                               if k.startswith('cb_modules.0.')})
        for a, b in zip(assist, alone(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_dense_higher_level_composition():
    """Lead level i's input gets gamma_i (rounded to float16, as officially) times the sum of
    the assisting outputs of levels i..3, projected by 1x1 convs at their own resolution and
    nearest-resized; checked level by level against that formula."""
    cb = _cb()
    perturb_(cb, scale=0.3)
    assist, lead = cb.cb_modules
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        stem = assist.forward_stem(x)
        ys = [o.permute(0, 3, 1, 2) for o in assist.forward_levels(stem)]
        h = stem
        expected = []
        for i, level in enumerate(lead.levels):
            feed = 0
            for j in range(i, 4):
                y = ys[j] if j == i else cb.cb_linears[i][j - i](ys[j])
                feed = feed + F.interpolate(y, size=h.shape[1:3], mode='nearest')
            gamma = getattr(lead, f'gamma{i}').half().float()
            h = h + gamma * feed.permute(0, 2, 3, 1)
            out, h = level(h)
            expected.append(out.permute(0, 3, 1, 2))
        _, got = cb(x)
    for a, b in zip(got, expected[1:]):
        torch.testing.assert_close(a, b)
    assert any(getattr(lead, f'gamma{i}').abs().sum() > 0 for i in range(4))


def test_per_backbone_run_settings():
    cb = CBInternImage(**{**TINY, 'drop_path_rate': (0.0, 0.3)}, with_cp=(False, True))
    assist, lead = cb.cb_modules
    assert [b.blocks[0].with_cp for b in (assist.levels[0], lead.levels[0])] == [False, True]
    assert assist.levels[3].blocks[-1].drop_path.__class__.__name__ == 'Identity'
    assert lead.levels[3].blocks[-1].drop_path.drop_prob == pytest.approx(0.3)


@pytest.mark.parametrize('out_indices, match', [
    (((0, 1, 2, 3), (2, 3)), 'must return the same levels'),
    (((1, 2), (1, 2, 3)), 'must return the same levels'),
    (((0, 1, 2, 3),), 'of each of the two backbones'),
])
def test_mismatched_out_indices_are_refused(out_indices, match):
    with pytest.raises(ValueError, match=match):
        CBInternImage(**TINY, out_indices=out_indices)


def test_bad_per_backbone_value_is_refused():
    with pytest.raises(ValueError, match='drop_path_rate must be one value or one per backbone'):
        CBInternImage(**{**TINY, 'drop_path_rate': (0.1, 0.2, 0.3)})
