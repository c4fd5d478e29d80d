"""DINO with the query-position layout of the official InternImage detection code.

The official InternImage DINO (``detection/mmdet_custom``, mmdet 2.x era) and mmdet 3.x's
:class:`~mmdet.models.detectors.DINO` have the same modules except one: the MLP that turns a
reference box into the decoder's query position (``ref_point_head``).

* official: each of the 4 box coordinates (cx, cy, w, h) is encoded with ``embed_dims / 2``
  sine/cosine features (temperature 10000), so ``ref_point_head`` is
  ``Linear(2 * embed_dims, embed_dims) -> ReLU -> Linear(embed_dims, embed_dims)`` (512 -> 256);
* mmdet 3.x: ``embed_dims`` features per coordinate, ``Linear(4 * embed_dims, embed_dims)``
  (1024 -> 256).

An official checkpoint therefore cannot be loaded into mmdet 3.x's DINO (shape mismatch), and
training mmdet 3.x's DINO is not the paper's model. :class:`LegacyDINO` keeps everything of
mmdet 3.x's DINO and swaps in :class:`SineSubsetRefPointHead`, which selects the official
``embed_dims / 2``-feature encoding out of the ``embed_dims``-feature one that mmdet's decoder
computes. The selection is exact: with ``d = embed_dims`` the official frequency of feature pair
``k`` is ``10000 ** (2k / (d / 2))`` and mmdet's frequency of pair ``2k`` is
``10000 ** (4k / d)``, bit for bit the same number (``2k / (d/2)`` and ``4k / d`` are the same
correctly rounded quotient: doubling numerator and denominator is exact), so the official pair
``k`` is mmdet's features ``4k`` (sine) and ``4k + 1`` (cosine) of each coordinate block.

It also initialises the content queries (``query_embedding``) from N(0, 1) as the official code
(mmdet 3.x uses Xavier uniform); nothing else differs.
"""
from __future__ import annotations

import torch
from mmdet.models.detectors import DINO
from mmdet.models.layers.transformer.utils import MLP
from mmengine.registry import MODELS
from torch import Tensor, nn


class SineSubsetRefPointHead(MLP):
    """Official DINO ``ref_point_head`` fed from mmdet 3.x's sine encoding of a box.

    Input: mmdet's ``coordinate_to_encoding(box, num_feats=embed_dims)``, shape
    ``[..., 4 * embed_dims]`` (blocks y, x, w, h). The official encoding with
    ``embed_dims / 2`` features per coordinate is gathered from it (features ``4k`` and
    ``4k + 1`` of every block, in order), then a 2-layer MLP ``2 * embed_dims -> embed_dims ->
    embed_dims`` is applied. Parameters: ``layers.0`` and ``layers.1`` (the official
    ``ref_point_head.0`` and ``ref_point_head.2``).
    """

    def __init__(self, embed_dims: int = 256) -> None:
        if embed_dims % 4:
            raise ValueError(f'SineSubsetRefPointHead: embed_dims must be a multiple of 4, got '
                             f'{embed_dims}')
        super().__init__(2 * embed_dims, embed_dims, embed_dims, 2)
        self.embed_dims = embed_dims
        index = [block * embed_dims + 4 * k + r
                 for block in range(4) for k in range(embed_dims // 4) for r in (0, 1)]
        self.register_buffer('sine_index', torch.tensor(index, dtype=torch.long),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != 4 * self.embed_dims:
            raise ValueError(f'SineSubsetRefPointHead: expected a [..., {4 * self.embed_dims}] '
                             f'box encoding, got shape {tuple(x.shape)}')
        return super().forward(x.index_select(-1, self.sine_index.to(x.device)))


@MODELS.register_module()
class LegacyDINO(DINO):
    """mmdet 3.x :class:`~mmdet.models.detectors.DINO` with the official InternImage (mmdet
    2.x era) query-position MLP (512 -> 256, see the module docstring) and N(0, 1) content
    queries. Same arguments as ``DINO``; official detection checkpoints convert to it key for key
    (``tools/model_converters/internimage_det_official_to_mmdet.py``).
    """

    def _init_layers(self) -> None:
        super()._init_layers()
        self.decoder.ref_point_head = SineSubsetRefPointHead(self.embed_dims)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.normal_(self.query_embedding.weight)
