"""DCNv3: the deformable sampling operator of InternImage, with C++ CPU and CUDA kernels.

>>> from ops_dcnv3 import dcnv3
>>> out = dcnv3(x, offset, mask, 3, 3, 1, 1, 1, 1, 1, 1, group, group_channels, 1.0)
"""
from .function import (
                       DCNv3Function,
                       bias_gelu_,
                       cuda_kernels_available,
                       dcnv3,
                       dcnv3_from_logits,
                       dwconv_ln,
                       extension_available,
                       layer_norm,
                       softmax_kernel_applies,
)
from .official import dcnv3_official_pytorch
from .reference import dcnv3_pytorch
from .validation import check_args, output_size

__version__ = '0.1.0'

__all__ = [
    'DCNv3Function', 'bias_gelu_', 'check_args', 'cuda_kernels_available', 'dcnv3',
    'dcnv3_from_logits', 'dcnv3_official_pytorch', 'dcnv3_pytorch', 'dwconv_ln',
    'extension_available', 'layer_norm', 'output_size', 'softmax_kernel_applies'
]
