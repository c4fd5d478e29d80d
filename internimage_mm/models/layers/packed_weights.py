"""oneDNN-packed copies of linear weights, kept by eval-mode modules for CPU inference.

oneDNN multiplies by a weight held in its own blocked layout. Handed the plain ``[out, in]``
matrix, each call first reorders it into that layout, and the GEMMs of InternImage are small
enough for this to show (K = 64/128 at InternImage-T's first stages, 150 linears a forward).
Inductor's ``freezing`` packs constant weights once (``torch.ops.mkldnn._reorder_linear_weight``);
:class:`PackedWeights` does the same for eager inference: an eval-mode module keeps packed
copies of its linears' weights beside the parameters, and ``layers/fused_linear.py`` hands them
to oneDNN's linear with the bias, the activation and the skip connection fused. The products and
sums are those of the unpacked oneDNN kernel (the same result bit for bit; the plain ops' to
float32 rounding). Figures: docs/benchmarks.md.

A packed copy must never outlive the weights it was made from. Each entry is stamped with the
identity, address and version counter of its source tensors, so an in-place write (an
optimizer step, ``load_state_dict``, ``copy_`` under ``no_grad``), a replaced parameter or
``.to()`` repacks at the next call. Writes through ``.data`` escape the version counter, so the
copies are also dropped whenever the mode is set (``train()``/``eval()``): mmengine's EMA hook
swaps weights through ``.data`` and its loops call ``eval()`` afterwards. Code that writes
weights through ``.data`` between two inference calls must call ``eval()`` again, or turn the
packing off (:func:`set_weight_packing`, or ``INTERNIMAGE_MM_PACK_WEIGHTS=0``). The copies cost
memory once more the size of the linear weights while in eval mode.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor, nn

_enabled = os.environ.get('INTERNIMAGE_MM_PACK_WEIGHTS', '1') != '0'


def set_weight_packing(enabled: bool) -> None:
    """Turn the packed copies on or off for every module (off: oneDNN or MKL on the plain
    weights, no extra memory); existing copies are dropped at the next mode switch."""
    global _enabled
    _enabled = bool(enabled)


def weight_packing_enabled() -> bool:
    """Whether eval-mode modules keep packed weights (:func:`set_weight_packing`)."""
    return _enabled


def _stamp(t: Tensor | None) -> tuple[int, int, int] | None:
    return None if t is None else (id(t), t.data_ptr(), t._version)


class PackedWeights(nn.Module):
    """Packed weights of the owner's linears, made on first use in eval mode.

    A child module without parameters or buffers (no state-dict entries), so that the owner's
    ``train()``/``eval()`` reach it and drop the copies; copies of the module (``deepcopy``,
    pickling) start empty, as oneDNN's packed tensors have no storage to copy.
    """

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[tuple[int, ...], tuple[tuple, Tensor, Tensor | None]] = {}

    def get(self, *linears: nn.Linear) -> tuple[Tensor, Tensor | None]:
        """The packed weight of ``linears`` stacked (one GEMM gives their outputs
        concatenated) and their bias (concatenated, zeros for a linear without one; None when
        none has one), packed again only after one of their tensors changed."""
        sources = [t for lin in linears for t in (lin.weight, lin.bias)]
        stamp = tuple(_stamp(t) for t in sources)
        key = tuple(id(lin) for lin in linears)
        entry = self._entries.get(key)
        if entry is None or entry[0] != stamp:
            with torch.no_grad():
                weight = torch.cat([lin.weight for lin in linears]) if len(linears) > 1 \
                    else linears[0].weight
                if all(lin.bias is None for lin in linears):
                    bias = None
                elif len(linears) == 1:
                    bias = linears[0].bias.detach()
                else:
                    bias = torch.cat([lin.weight.new_zeros(lin.out_features) if lin.bias is None
                                      else lin.bias for lin in linears])
                packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous())
            entry = self._entries[key] = (stamp, packed, bias)
        return entry[1], entry[2]

    def clear(self) -> None:
        """Drop every packed copy."""
        self._entries.clear()

    def train(self, mode: bool = True) -> PackedWeights:
        self.clear()  # see the module docstring: writes through .data, EMA swaps
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # .to(), .float(), .share_memory(), ...
        self.clear()
        return super()._apply(fn, recurse)

    @property
    def num_entries(self) -> int:
        return len(self._entries)

    def __deepcopy__(self, memo: dict) -> PackedWeights:
        new = PackedWeights()
        new.train(self.training)
        return new

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state['_entries'] = {}
        return state

    def extra_repr(self) -> str:
        return f'entries={self.num_entries}'
