"""tools/model_converters/internimage_seg_official_to_mmseg.py and
internimage_mm/converters/segmentation.py: official (mmseg 0.x) UperNet / Mask2Former
checkpoints to mmseg 1.x, key for key and tensor for tensor.

The official layouts are synthesised from our own models with the official names written out
by hand below (an inverse independent of the converter's table)."""
from __future__ import annotations

import pytest
import torch

from internimage_mm.converters import MASK2FORMER, UPERNET

from .._official import mmseg_to_official_key, to_official_segmentor
from ..conftest import load_tool
from ..test_configs._seg_helpers import (
    PAPER_ROWS,
    SEG_CONFIGS,
    build_model,
    load_config,
    shrink_model_cfg,
)
from ..test_models.conftest import single_thread  # noqa: F401  (autouse fixture)

TINY = {'upernet': 'upernet_internimage-tiny_1xb4-600iter_synthetic-128x128',
        'mask2former': 'mask2former_internimage-tiny_1xb4-600iter_synthetic-128x128'}
CLASSES = ('circle', 'square', 'triangle', 'cross')
PALETTE = [[220, 40, 40], [40, 200, 60], [50, 80, 230], [230, 200, 30]]


def official_to_mmseg_key(key: str) -> str | None:
    return MASK2FORMER.rename(key) or UPERNET.rename(key)


def _tool():
    return load_tool('model_converters/internimage_seg_official_to_mmseg.py')


def _tiny_model(kind: str):
    cfg = load_config(TINY[kind])
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.init_weights()
    return model


def test_official_names_of_the_table():
    """The documented renames (official operation_order -> mmdet 3.x roles), written out."""
    cases = {
        'decode_head.pixel_decoder.encoder.layers.5.attentions.0.sampling_offsets.weight':
            'decode_head.pixel_decoder.encoder.layers.5.self_attn.sampling_offsets.weight',
        'decode_head.pixel_decoder.encoder.layers.0.attentions.0.value_proj.bias':
            'decode_head.pixel_decoder.encoder.layers.0.self_attn.value_proj.bias',
        'decode_head.pixel_decoder.encoder.layers.2.ffns.0.layers.0.0.weight':
            'decode_head.pixel_decoder.encoder.layers.2.ffn.layers.0.0.weight',
        'decode_head.pixel_decoder.encoder.layers.2.norms.1.weight':
            'decode_head.pixel_decoder.encoder.layers.2.norms.1.weight',
        'decode_head.transformer_decoder.layers.8.attentions.0.attn.in_proj_weight':
            'decode_head.transformer_decoder.layers.8.cross_attn.attn.in_proj_weight',
        'decode_head.transformer_decoder.layers.8.attentions.1.attn.out_proj.bias':
            'decode_head.transformer_decoder.layers.8.self_attn.attn.out_proj.bias',
        'decode_head.transformer_decoder.layers.0.ffns.0.layers.1.weight':
            'decode_head.transformer_decoder.layers.0.ffn.layers.1.weight',
        'decode_head.transformer_decoder.layers.0.norms.2.bias':
            'decode_head.transformer_decoder.layers.0.norms.2.bias',
        'decode_head.transformer_decoder.post_norm.weight':
            'decode_head.transformer_decoder.post_norm.weight',
        'decode_head.query_embed.weight': 'decode_head.query_embed.weight',
        'decode_head.mask_embed.4.bias': 'decode_head.mask_embed.4.bias',
        'decode_head.pixel_decoder.input_convs.0.gn.weight':
            'decode_head.pixel_decoder.input_convs.0.gn.weight',
        'decode_head.pixel_decoder.level_encoding.weight':
            'decode_head.pixel_decoder.level_encoding.weight',
        'decode_head.psp_modules.3.1.bn.running_mean':
            'decode_head.psp_modules.3.1.bn.running_mean',
        'decode_head.fpn_bottleneck.conv.weight': 'decode_head.fpn_bottleneck.conv.weight',
        'auxiliary_head.convs.0.bn.num_batches_tracked':
            'auxiliary_head.convs.0.bn.num_batches_tracked',
        'backbone.levels.2.post_norms.4.weight': 'backbone.levels.2.post_norms.4.weight',
    }
    for official, ours in cases.items():
        assert official_to_mmseg_key(official) == ours, official
        assert mmseg_to_official_key(ours) == official, ours
    for unknown in ('decode_head.transformer_decoder.layers.0.attentions.2.attn.in_proj_weight',
                    'neck.fpn.0.weight', 'decode_head.pixel_decoder.encoder.layers.0.ffns.1.x',
                    'backbone.cls_token', 'head.fc.weight'):
        assert official_to_mmseg_key(unknown) is None, unknown


@pytest.mark.parametrize('name', list(PAPER_ROWS))
def test_every_key_of_our_models_has_an_official_name(name):
    """Every parameter/buffer of each paper config's model (shrunk: same names) is covered by
    the table, and the round trip official -> mmseg gives the same names back."""
    with torch.device('meta'):
        model = build_model(shrink_model_cfg(load_config(name).model))
    keys = list(model.state_dict())
    official = [mmseg_to_official_key(k) for k in keys]
    assert [official_to_mmseg_key(k) for k in official] == keys
    if name.startswith('mask2former'):
        assert sum('.attentions.1.' in k for k in official) == 9 * 4  # 9 decoder self-attns
        assert not any('.self_attn.' in k or '.cross_attn.' in k or '.ffn.' in k
                       for k in official)
        assert any(k.startswith('decode_head.pixel_decoder.encoder.layers.5.attentions.0.')
                   for k in official)


@pytest.mark.parametrize('kind', ['upernet', 'mask2former'])
def test_convert_round_trip_with_the_tool(kind, tmp_path, capsys):
    """Synthesise an official checkpoint from our model by the inverse renames (with DDP
    prefixes and mmseg 0.x meta), convert it with the tool checked against the config, and
    get every tensor back under its name; the result loads strictly."""
    model = _tiny_model(kind)
    ours = model.state_dict()
    official = {f'module.{k}': v.clone() for k, v in to_official_segmentor(ours).items()}
    if kind == 'mask2former':
        assert any('.attentions.0.' in k for k in official)
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save(dict(state_dict=official, meta=dict(CLASSES=CLASSES, PALETTE=PALETTE)), src)
    config = str(SEG_CONFIGS / f'{TINY[kind]}.py')
    assert _tool().main([str(src), str(dst), '--config', config]) == 0
    assert 'saved' in capsys.readouterr().out
    converted = torch.load(dst, map_location='cpu', weights_only=False)
    state = converted['state_dict']
    assert list(state) == list(ours)
    for key, value in ours.items():
        assert torch.equal(state[key], value), key
    assert converted['meta']['dataset_meta'] == dict(classes=CLASSES, palette=PALETTE)
    fresh = _tiny_model(kind)
    fresh.load_state_dict(state, strict=True)


def test_unknown_and_missing_keys_are_reported(tmp_path, capsys):
    model = _tiny_model('mask2former')
    official = dict(to_official_segmentor(model.state_dict()))
    official['decode_head.transformer_decoder.layers.0.attentions.2.attn.in_proj_weight'] = \
        torch.zeros(3)
    official['neck.some.weight'] = torch.zeros(1)
    del official['decode_head.query_feat.weight']
    src, dst = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    torch.save(dict(state_dict=official), src)
    tool = _tool()
    config = str(SEG_CONFIGS / f'{TINY["mask2former"]}.py')
    assert tool.main([str(src), str(dst), '--config', config]) == 1
    err = capsys.readouterr().err
    assert ('unmapped (no rename rule): decode_head.transformer_decoder.layers.0.attentions.2.'
            'attn.in_proj_weight') in err
    assert 'unmapped (no rename rule): neck.some.weight' in err
    assert ('missing (the model needs it, the checkpoint lacks it): '
            'decode_head.query_feat.weight') in err
    assert 'nothing written' in err and not dst.exists()
    # --allow-missing: written without the unmapped keys, still listed
    assert tool.main([str(src), str(dst), '--config', config, '--allow-missing']) == 0
    assert 'neck.some.weight' in capsys.readouterr().err
    state = torch.load(dst, map_location='cpu', weights_only=False)['state_dict']
    assert 'neck.some.weight' not in state and len(state) == len(official) - 2
    # without --config only the unmapped keys count
    assert tool.main([str(src), str(tmp_path / 'x.pth')]) == 1


def test_shape_mismatch_against_the_config(tmp_path, capsys):
    """E.g. the COCO-Stuff Mask2Former (171 classes) checked against an ADE20K config."""
    model = _tiny_model('upernet')
    official = dict(to_official_segmentor(model.state_dict()))
    official['decode_head.conv_seg.weight'] = torch.zeros(7, 64, 1, 1)
    torch.save(official, tmp_path / 'o.pth')
    config = str(SEG_CONFIGS / f'{TINY["upernet"]}.py')
    assert _tool().main([str(tmp_path / 'o.pth'), str(tmp_path / 'c.pth'), '--config',
                         config]) == 1
    assert ('shape mismatch: decode_head.conv_seg.weight: checkpoint (7, 64, 1, 1) vs model '
            '(4, 64, 1, 1)') in capsys.readouterr().err


def test_function_api_reports_unmapped_keys():
    state, report = MASK2FORMER.convert({'backbone.patch_embed.conv1.weight': torch.zeros(1),
                                         'foo.bar': torch.zeros(1)}, allow_incomplete=True)
    assert report.unmapped == ['foo.bar'] and list(state) == ['backbone.patch_embed.conv1.weight']
    assert report.converter == 'segmentation/mask2former'
