"""DINO's box head with the official InternImage refinement clamp."""
from __future__ import annotations

import torch
from mmdet.models.dense_heads import DINOHead
from mmdet.models.layers.transformer.utils import inverse_sigmoid
from mmengine.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class LegacyDINOHead(DINOHead):
    r"""mmdet 3.x :class:`~mmdet.models.dense_heads.DINOHead` refining boxes as the official
    InternImage DINO head (mmdet 2.x era) does.

    Each decoder layer :math:`l` predicts boxes relative to its reference boxes :math:`r_l`:

    .. math::

        b_l = \sigma\big(\Delta_l + \sigma^{-1}_\epsilon(r_l)\big), \qquad
        \sigma^{-1}_\epsilon(x) = \log\frac{\max(x, \epsilon)}{\max(1 - x, \epsilon)}

    with :math:`\epsilon` = ``refine_eps`` = 1e-3 as in the official head; mmdet 3.x's head uses
    1e-5, which gives other boxes wherever a reference coordinate is below 1e-3 or above
    1 - 1e-3 (small boxes, boxes at the image border), so official weights would not give the
    official boxes. (The decoder's own refinement already uses 1e-3 in both.)

    Args:
        refine_eps: the clamp of the inverse sigmoid of the references.
        Other arguments: those of ``DINOHead``.
    """

    def __init__(self, *args, refine_eps: float = 1e-3, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refine_eps = refine_eps

    def forward(self, hidden_states: Tensor, references: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Class scores and sigmoid boxes of every decoder layer, as in the parent, with the
        references in inverse-sigmoid space clamped at ``refine_eps``."""
        all_cls, all_boxes = [], []
        for layer_id in range(hidden_states.shape[0]):
            reference = inverse_sigmoid(references[layer_id], eps=self.refine_eps)
            hidden_state = hidden_states[layer_id]
            deltas = self.reg_branches[layer_id](hidden_state)
            if reference.shape[-1] == 4:
                deltas = deltas + reference
            else:  # (cx, cy) references: refine the centre only
                deltas = torch.cat((deltas[..., :2] + reference, deltas[..., 2:]), -1)
            all_cls.append(self.cls_branches[layer_id](hidden_state))
            all_boxes.append(deltas.sigmoid())
        return torch.stack(all_cls), torch.stack(all_boxes)
