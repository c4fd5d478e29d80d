"""Official checkpoint layouts synthesised from our models, with the official names written
out by hand (independent of the converters' tables): what the converter and loading tests feed
to the converters."""
from __future__ import annotations

import re

_T = 'bbox_head.transformer.'


def to_official(key: str) -> str:
    """Our mmdet 3.x key -> the official mmdet 2.x key (InternImage ``mmdet_custom`` DINOHead /
    DinoTransformer with mmcv 1.x BaseTransformerLayer; R-CNN keys are unchanged)."""
    fixed = {
        'level_embed': _T + 'level_embeds',
        'query_embedding.weight': _T + 'query_embed.weight',
        'dn_query_generator.label_embedding.weight': 'bbox_head.label_embedding.weight',
    }
    if key in fixed:
        return fixed[key]
    m = re.fullmatch(r'memory_trans_(fc|norm)\.(weight|bias)', key)
    if m:
        return _T + ('enc_output.' if m[1] == 'fc' else 'enc_output_norm.') + m[2]
    m = re.fullmatch(r'decoder\.ref_point_head\.layers\.(\d)\.(weight|bias)', key)
    if m:  # nn.Sequential(Linear, ReLU, Linear)
        return _T + f'decoder.ref_point_head.{2 * int(m[1])}.{m[2]}'
    if re.fullmatch(r'decoder\.norm\.(weight|bias)', key):
        return _T + key
    m = re.fullmatch(r'(encoder|decoder)\.layers\.(\d+)\.(self_attn|cross_attn|ffn|norms)\.(.+)',
                     key)
    if m:
        coder, layer, part, rest = m.groups()
        part = {'self_attn': 'attentions.0', 'cross_attn': 'attentions.1', 'ffn': 'ffns.0',
                'norms': 'norms'}[part]
        return _T + f'{coder}.layers.{layer}.{part}.{rest}'
    return key  # backbone, necks, R-CNN heads, DINO cls/reg branches


def to_official_detector(state_dict: dict) -> dict:
    """Our detector state dict in the official (mmdet 2.x) layout."""
    return {to_official(k): v for k, v in state_dict.items()}


_ENC = r'(decode_head\.pixel_decoder\.encoder\.layers\.\d+\.)'
_DEC = r'(decode_head\.transformer_decoder\.layers\.\d+\.)'


def mmseg_to_official_key(key: str) -> str:
    """Our (mmseg 1.x / mmdet 3.x role names) key -> the official mmcv 1.x operation_order
    name, written out by hand."""
    for prefix, ours, official in ((_ENC, 'self_attn.', 'attentions.0.'),
                                   (_ENC, 'ffn.', 'ffns.0.'),
                                   (_DEC, 'cross_attn.', 'attentions.0.'),
                                   (_DEC, 'self_attn.', 'attentions.1.'),
                                   (_DEC, 'ffn.', 'ffns.0.')):
        m = re.match(prefix + re.escape(ours), key)
        if m:
            return m.group(1) + official + key[m.end():]
    return key


def to_official_segmentor(state_dict: dict) -> dict:
    """Our segmentor state dict in the official (mmseg 0.x) layout."""
    return {mmseg_to_official_key(k): v for k, v in state_dict.items()}
