"""Forward parity with the official detectors and segmentors (tests/data/golden/official_forward):
the official state dict, converted by our converters, loads strictly into the model of our
config (shrunk by the golden's ``project_overrides``), and every stored output of the official
code is reproduced within 1e-4 of its max magnitude: FPN/RPN (Mask R-CNN), UperNet logits,
DINO encoder proposals, decoder references, class scores and boxes, Mask2Former class/mask
predictions and the official semantic map."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from internimage_mm.apis import build_model, load_config
from internimage_mm.converters import detect_converter

from ..conftest import REPO, data_file

CONFIGS = {
    'mask_rcnn_t': 'detection/mask-rcnn_internimage-t_fpn_8xb2-1x_coco',
    'dino_4scale_t': 'detection/dino-4scale_internimage-t_8xb2-12e_coco',
    'upernet_t': 'segmentation/upernet_internimage-t_8xb2-160k_ade20k-512x512',
    'mask2former_h':
        'segmentation/mask2former_internimage-h_cocostuff164k-pre_16xb1-80k_ade20k-896x896',
}
REL_TOL = 1e-4


def _golden(name: str) -> dict:
    return torch.load(data_file(f'golden/official_forward/{name}.pth'), weights_only=True)


def _model(name: str, golden: dict):
    """Our config's model with the golden's shrink, the official weights converted and loaded
    strictly."""
    cfg = load_config(str(REPO / 'configs' / f'{CONFIGS[name]}.py'), golden['project_overrides'])
    model = build_model(cfg, pretrained=False).eval()
    official = golden['state_dict']
    converter = detect_converter(official)
    assert converter is not None, 'the golden state dict is an official layout we know'
    converted, report = converter.convert(official, reference=model.state_dict())
    assert report.complete, report.problems()
    model.load_state_dict(converted, strict=True)
    return model


def assert_matches(ours: torch.Tensor, official: torch.Tensor, what: str) -> None:
    assert ours.shape == official.shape, (what, ours.shape, official.shape)
    scale = official.abs().max().item()
    err = (ours - official).abs().max().item()
    assert err <= REL_TOL * max(scale, 1e-12), f'{what}: max error {err:.3g} of {scale:.3g}'


def assert_all_match(ours, official, what: str) -> None:
    assert len(ours) == len(official), what
    for i, (a, b) in enumerate(zip(ours, official)):
        assert_matches(a, b, f'{what}[{i}]')


def _metas(golden: dict) -> list[dict]:
    """The golden's mmdet 2.x / mmseg 0.x img_metas with the 2.x-era (H, W, C) shapes as the
    (H, W) of mmengine's meta."""
    shapes = ('img_shape', 'ori_shape', 'pad_shape')
    return [{k: tuple(v[:2]) if k in shapes else v for k, v in meta.items()}
            for meta in golden['img_metas']]


@torch.no_grad()
def test_mask_rcnn_fpn_and_rpn():
    golden = _golden('mask_rcnn_t')
    model = _model('mask_rcnn_t', golden)
    out = golden['outputs']
    feats = model.extract_feat(golden['input'])
    assert_all_match(feats, out['fpn'], 'fpn')
    cls, reg = model.rpn_head(feats)
    assert_all_match(cls, out['rpn_cls'], 'rpn_cls')
    assert_all_match(reg, out['rpn_reg'], 'rpn_reg')


@torch.no_grad()
def test_upernet_logits():
    golden = _golden('upernet_t')
    model = _model('upernet_t', golden)
    out = golden['outputs']
    feats = model.extract_feat(golden['input'])
    assert_all_match(feats, out['backbone'], 'backbone')
    assert_matches(model.decode_head(feats), out['decode_logits'], 'decode_logits')
    assert_matches(model.encode_decode(golden['input'], _metas(golden)), out['seg_logits'],
                   'seg_logits')


@torch.no_grad()
def test_dino_proposals_references_scores_and_boxes():
    from mmdet.structures import DetDataSample
    golden = _golden('dino_4scale_t')
    model = _model('dino_4scale_t', golden)
    out = golden['outputs']
    samples = [DetDataSample(metainfo=m) for m in _metas(golden)]
    feats = model.extract_feat(golden['input'])
    assert_all_match(feats, out['neck'], 'neck')

    # encoder proposals over all tokens (the official top-k input)
    encoder_inputs, decoder_inputs = model.pre_transformer(feats, samples)
    memory = model.forward_encoder(**encoder_inputs)['memory']
    output_memory, _ = model.gen_encoder_output_proposals(
        memory, encoder_inputs['feat_mask'], encoder_inputs['spatial_shapes'])
    num = model.decoder.num_layers
    assert_matches(model.bbox_head.cls_branches[num](output_memory), out['enc_outputs_class'],
                   'enc_outputs_class')
    assert_matches(model.bbox_head.reg_branches[num](output_memory), out['enc_reg_deltas'],
                   'enc_reg_deltas')

    # decoder: references, then scores and boxes of every layer (the head's refinement)
    head_inputs = model.forward_transformer(feats, samples)
    references = torch.stack(head_inputs['references'])
    assert_matches(references, out['all_references'], 'all_references')
    all_cls, all_boxes = model.bbox_head(head_inputs['hidden_states'],
                                         head_inputs['references'])
    assert_matches(all_cls, out['all_cls_scores'], 'all_cls_scores')
    assert_matches(all_boxes, out['all_bbox_preds'], 'all_bbox_preds')
    assert_matches(all_cls[-1], out['cls_scores'], 'cls_scores')
    assert_matches(all_boxes[-1], out['bbox_preds'], 'bbox_preds')


@torch.no_grad()
def test_mask2former_predictions_and_official_semantic_map():
    from mmseg.structures import SegDataSample
    golden = _golden('mask2former_h')
    model = _model('mask2former_h', golden)
    out = golden['outputs']
    metas = _metas(golden)
    feats = model.extract_feat(golden['input'])
    assert_all_match(feats, out['backbone'], 'backbone')
    head = model.decode_head
    all_cls, all_masks = head(feats, [SegDataSample(metainfo=m) for m in metas])
    assert_matches(torch.stack(all_cls), out['all_cls_scores'], 'all_cls_scores')
    assert_matches(torch.stack(all_masks), out['all_mask_preds'], 'all_mask_preds')
    assert_matches(all_cls[-1], out['cls_scores'], 'cls_scores')
    assert_matches(all_masks[-1], out['mask_preds'], 'mask_preds')
    # the official semantic map: the product at 1/4 scale, resized to the input
    assert head.seg_map_order == 'official'
    official_map = F.interpolate(out['seg_logits_quarter'], size=golden['input'].shape[2:],
                                 mode='bilinear', align_corners=False)
    assert_matches(model.encode_decode(golden['input'], metas), official_map, 'seg map')
    # mmseg's order (still selectable) is another map: what the official order fixes
    head.seg_map_order = 'mmseg'
    mmseg_map = model.encode_decode(golden['input'], metas)
    gap = (mmseg_map - official_map).abs().max() / official_map.abs().max()
    assert gap > 10 * REL_TOL, gap


def test_legacy_dino_head_refines_from_references_clamped_at_1e_3():
    """References below 1e-3 or above 1 - 1e-3 (small boxes, boxes at the border): the boxes
    are the official ones, sigmoid(delta + log(max(r, 1e-3) / max(1 - r, 1e-3))); mmdet's own
    head (eps 1e-5) gives others there."""
    from mmdet.models.dense_heads import DINOHead

    import internimage_mm.tasks.detection  # noqa: F401
    from internimage_mm.models.heads.legacy_dino_head import LegacyDINOHead
    torch.manual_seed(0)
    kwargs = dict(num_classes=3, embed_dims=16, num_reg_fcs=2, share_pred_layer=False,
                  num_pred_layer=3, as_two_stage=True,
                  loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25))
    head = LegacyDINOHead(**kwargs).eval()
    mmdet_head = DINOHead(**kwargs).eval()
    mmdet_head.load_state_dict(head.state_dict())
    hidden = torch.randn(2, 1, 5, 16)
    refs = [torch.tensor([[[1e-4, 0.5, 2e-4, 0.3], [0.9999, 0.2, 0.5, 5e-5],
                           [0.3, 0.4, 0.2, 0.1], [1e-6, 1 - 1e-6, 0.5, 0.5],
                           [0.01, 0.02, 0.03, 0.04]]])] * 3
    with torch.no_grad():
        _, boxes = head(hidden, refs)
        _, mmdet_boxes = mmdet_head(hidden, refs)
        for layer in range(2):
            r = refs[layer].clamp(0, 1)
            official_ref = torch.log(r.clamp(min=1e-3) / (1 - r).clamp(min=1e-3))
            expected = (head.reg_branches[layer](hidden[layer]) + official_ref).sigmoid()
            torch.testing.assert_close(boxes[layer], expected, rtol=0, atol=1e-6)
    assert (boxes - mmdet_boxes).abs().max() > 1e-3  # mmdet's eps=1e-5 differs there
    # references well inside (0, 1): both heads agree
    inside = [torch.full((1, 5, 4), 0.4)] * 3
    with torch.no_grad():
        torch.testing.assert_close(head(hidden, inside)[1], mmdet_head(hidden, inside)[1])


@torch.no_grad()
def test_mask2former_tta_merges_maps_of_the_chosen_order():
    """mmseg's SegTTAModel (tools/test.py --tta) merges what the head's predict returns, so the
    multi-scale + flip path follows seg_map_order too: with two views of the image (as is and
    flipped) the merged label map is the argmax of the mean of the softmaxed official maps."""
    from mmseg.models.data_preprocessor import SegDataPreProcessor
    from mmseg.models.segmentors import SegTTAModel
    from mmseg.structures import SegDataSample
    golden = _golden('mask2former_h')
    model = _model('mask2former_h', golden)
    model.data_preprocessor = SegDataPreProcessor()  # the golden input is already normalised
    image = golden['input'][0]
    meta = _metas(golden)[0]
    views = [(image, dict(meta, flip=False)),
             (image.flip(-1), dict(meta, flip=True, flip_direction='horizontal'))]
    data = dict(inputs=[[v] for v, _ in views],
                data_samples=[[SegDataSample(metainfo=dict(m, img_path='x.jpg'))]
                              for _, m in views])
    expected = 0
    for v, m in views:
        logits = model.encode_decode(v[None], [m]).softmax(1)
        expected = expected + (logits.flip(-1) if m['flip'] else logits)
    label = SegTTAModel(module=model).test_step(data)[0].pred_sem_seg.data
    assert torch.equal(label[0], expected[0].argmax(0))
    model.decode_head.seg_map_order = 'mmseg'
    assert not torch.equal(SegTTAModel(module=model).test_step(data)[0].pred_sem_seg.data, label)
