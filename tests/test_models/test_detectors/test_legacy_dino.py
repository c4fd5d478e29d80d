"""LegacyDINO: mmdet 3.x DINO with the official InternImage (mmdet 2.x era) query-position MLP."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from internimage_mm.models.detectors.legacy_dino import SineSubsetRefPointHead

from ...test_configs._det_helpers import build_model, load_config, shrink_model_cfg, synthetic_batch


def official_box_encoding(boxes: torch.Tensor, embed_dims: int = 256) -> torch.Tensor:
    """The official ``gen_sineembed_for_position``: embed_dims / 2 sine/cosine features per
    coordinate (temperature 10000, scale 2 pi), blocks ordered y, x, w, h."""
    feats = embed_dims // 2
    dim_t = torch.arange(feats, dtype=torch.float32)
    dim_t = 10000**(2 * (dim_t // 2) / feats)
    blocks = []
    for coord in (1, 0, 2, 3):
        e = boxes[..., coord, None] * (2 * math.pi) / dim_t
        blocks.append(torch.stack((e[..., 0::2].sin(), e[..., 1::2].cos()), dim=-1).flatten(-2))
    return torch.cat(blocks, dim=-1)


def test_sine_subset_is_the_official_encoding_bit_for_bit():
    # (imported here: `import internimage_mm` must come first, see internimage_mm.compat)
    from mmdet.models.layers.transformer.utils import coordinate_to_encoding
    boxes = torch.rand(3, 11, 4)
    mmdet_encoding = coordinate_to_encoding(boxes, num_feats=256)  # what mmdet's decoder feeds
    head = SineSubsetRefPointHead(256)
    official = official_box_encoding(boxes)
    assert official.shape == (3, 11, 512)
    assert torch.equal(mmdet_encoding.index_select(-1, head.sine_index), official)

    w0, b0 = head.layers[0].weight, head.layers[0].bias
    w1, b1 = head.layers[1].weight, head.layers[1].bias
    assert w0.shape == (256, 512) and w1.shape == (256, 256)
    expected = F.linear(F.relu(F.linear(official, w0, b0)), w1, b1)
    torch.testing.assert_close(head(mmdet_encoding), expected, rtol=0, atol=0)
    assert 'sine_index' not in head.state_dict()  # a non-persistent buffer


def test_legacy_dino_builds_inits_and_predicts():
    torch.manual_seed(0)
    cfg = shrink_model_cfg(load_config('dino-4scale_internimage-t_8xb2-12e_coco').model)
    model = build_model(cfg)
    model.init_weights()
    assert type(model).__name__ == 'LegacyDINO'
    assert isinstance(model.decoder.ref_point_head, SineSubsetRefPointHead)
    assert model.state_dict()['decoder.ref_point_head.layers.0.weight'].shape == (256, 512)
    # Content queries from N(0, 1) as the official code (mmdet 3.x: Xavier uniform, std ~0.09).
    assert 0.8 < model.query_embedding.weight.std().item() < 1.2

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(synthetic_batch(64, num_images=1, with_mask=False),
                                       False)
        (result, ) = model(**data, mode='predict')
    pred = result.pred_instances
    assert len(pred.bboxes) == cfg.test_cfg.max_per_img == 100
    assert torch.isfinite(pred.bboxes).all() and torch.isfinite(pred.scores).all()
