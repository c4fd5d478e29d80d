from .attention_pooling import AttentionPoolingBlock, CrossAttention
from .dcnv3 import CORE_OPS, DCNv3, set_core_op
from .norm import ToChannelsFirst, ToChannelsLast, build_act_layer, build_layout_norm

__all__ = [
    'AttentionPoolingBlock', 'CORE_OPS', 'CrossAttention', 'DCNv3', 'ToChannelsFirst',
    'ToChannelsLast', 'build_act_layer', 'build_layout_norm', 'set_core_op'
]
