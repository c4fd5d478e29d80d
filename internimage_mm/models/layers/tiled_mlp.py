"""The MLP ``fc2(act(fc1(x))) (+ residual)`` in row tiles, for CPU inference.

Computed layer by layer, the hidden activation (4x the channels) goes to memory and back: at
InternImage-T stage 1 (batch 8, 224 px) 25.7 MB written by fc1 and read by fc2 in each block,
more than the caches hold. Row by row the MLP is independent, so it can run on tiles of rows
whose hidden activation (~2 MB) stays in cache from fc1 to fc2: fc1 into one reused tile
buffer, bias and activation over it in place (``layers/activation.py``), and fc2 with the skip
connection written straight into the output's rows. The same products and sums as the layers
(float32 rounding: the bias and the skip are added in a different order).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .activation import act_, may_overwrite

#: Bytes of hidden activation per tile: with the tile's input and output rows, within a
#: core's share of the last-level cache.
TILE_BYTES = 2 << 20
#: Tiles are used when the whole hidden activation would take more than this: below it, it
#: stays in cache anyway (InternImage-T at batch 8, 224 px: stages 1 and 2, 25.7 and 12.8 MB;
#: at stages 3 and 4, 6.4 and 3.2 MB, the layers measured as fast).
MIN_HIDDEN_BYTES = 8 << 20


def tiled_mlp_applies(x: Tensor, fc1: nn.Linear, fc2: nn.Linear,
                      residual: Tensor | None = None) -> bool:
    """Whether :func:`tiled_mlp` takes ``x``: CPU float32, no autograd graph or tracer
    (see :func:`~.activation.may_overwrite`), outside autocast, a residual of the output's
    shape and dtype, and a hidden activation of at least :data:`MIN_HIDDEN_BYTES`."""
    # Tracers and exporters first: on their symbolic shapes the size tests below would become
    # guards on the batch (an ONNX export with a dynamic batch then fails).
    if not may_overwrite(x, fc1.weight, fc1.bias, fc2.weight, fc2.bias, residual):
        return False
    if torch.is_autocast_enabled('cpu'):  # autocast picks the GEMMs' dtype itself
        return False
    tensors = (x, fc1.weight, fc2.weight) + ((residual, ) if residual is not None else ())
    if any(t.device.type != 'cpu' or t.dtype != torch.float32 for t in tensors):
        return False
    if residual is not None and residual.shape != (*x.shape[:-1], fc2.out_features):
        return False
    return x.numel() // max(x.shape[-1], 1) * fc1.out_features * 4 >= MIN_HIDDEN_BYTES


def tiled_mlp(x: Tensor, fc1: nn.Linear, act: nn.Module | None, fc2: nn.Linear,
              residual: Tensor | None = None) -> Tensor:
    """``residual + fc2(act(fc1(x)))`` (or without the residual), ``x`` [..., C_in], in tiles
    of rows; callers check :func:`tiled_mlp_applies`."""
    rows = x.numel() // x.shape[-1]
    hidden = fc1.out_features
    x2 = x.reshape(rows, x.shape[-1])
    out = torch.empty(rows, fc2.out_features, dtype=x.dtype)
    if residual is not None:
        r2 = residual.reshape(rows, fc2.out_features)
    tiles = -(-rows * hidden * 4 // TILE_BYTES)
    step = -(-rows // tiles)  # tiles of equal size, the last one at most smaller
    buffer = x.new_empty(min(step, rows), hidden)
    w1, w2 = fc1.weight.t(), fc2.weight.t()
    for start in range(0, rows, step):
        end = min(rows, start + step)
        h = buffer[:end - start]
        torch.mm(x2[start:end], w1, out=h)
        h = act_(act, h, fc1.bias)
        o = out[start:end]
        if residual is not None:
            torch.addmm(r2[start:end], h, w2, out=o)
            if fc2.bias is not None:
                o.add_(fc2.bias)
        elif fc2.bias is not None:
            torch.addmm(fc2.bias, h, w2, out=o)
        else:
            torch.mm(h, w2, out=o)
    return out.view(*x.shape[:-1], fc2.out_features)
