"""DINO on a composite backbone (CB-InternImage-H, the paper's record COCO row)."""
from __future__ import annotations

from collections.abc import Sequence

from mmengine.registry import MODELS
from torch import Tensor

from .legacy_dino import LegacyDINO


@MODELS.register_module()
class CBDINO(LegacyDINO):
    r"""DINO whose backbone is a :class:`~internimage_mm.models.backbones.CBInternImage`, with
    one neck and one head serving both of its backbones (the official ``CBDINO`` /
    ``CBChannelMapper`` / ``CBDINOHead``).

    Training: each backbone's features go through the shared neck (a plain ChannelMapper), the
    transformer and the shared head, and the total loss is

    .. math::

        L = w_0 L(\text{assisting}) + w_1 L(\text{lead}),
        \qquad (w_0, w_1) = (0.5, 1) \text{ officially}

    with every term logged under its branch: ``loss_cls0_w0.5``, ``d3.dn_loss_bbox0_w0.5``, ...
    for the assisting branch, ``loss_cls1`` ... for the lead. The branches run one after the
    other on the whole batch, so (unlike the official code, which stacked the branches along
    the batch and split them assuming one image per GPU) any number of images per GPU works
    and gives the losses of one image at a time. Test: only the lead's features reach the head.

    Args:
        branch_loss_weights: :math:`(w_0, w_1)`.
        Other arguments: those of :class:`LegacyDINO`.
    """

    def __init__(self, *args, branch_loss_weights: Sequence[float] = (0.5, 1.0),
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if len(branch_loss_weights) != 2:
            raise ValueError(f'CBDINO: branch_loss_weights must give two weights (assisting, '
                             f'lead), got {branch_loss_weights!r}')
        self.branch_loss_weights = tuple(float(w) for w in branch_loss_weights)
        self._check_neck_fits_backbone()

    def _check_neck_fits_backbone(self) -> None:
        out_channels = getattr(self.backbone, 'out_channels', None)
        if out_channels is None:
            raise ValueError(f'CBDINO: model.backbone ({type(self.backbone).__name__}) is not '
                             'a composite backbone (type CBInternImage)')
        # mmdet's ChannelMapper keeps no in_channels: read them from its 1x1 convs
        in_channels = tuple(c.conv.in_channels for c in getattr(self.neck, 'convs', ()))
        if in_channels != tuple(out_channels):
            raise ValueError(
                f'CBDINO: model.neck.in_channels {list(in_channels)} do not fit the channels of '
                f'the levels model.backbone.out_indices returns ({list(out_channels)})')

    def extract_feat(self, batch_inputs: Tensor) -> tuple[Tensor, ...]:
        """The lead backbone's features through the neck (what the head sees at test time)."""
        return self.neck(self.backbone(batch_inputs)[1])

    def loss(self, batch_inputs: Tensor, batch_data_samples: list) -> dict:
        """The weighted losses of both branches, named by branch."""
        losses: dict = {}
        for branch, (feats, weight) in enumerate(zip(self.backbone(batch_inputs),
                                                     self.branch_loss_weights)):
            head_inputs = self.forward_transformer(self.neck(feats), batch_data_samples)
            branch_losses = self.bbox_head.loss(**head_inputs,
                                                batch_data_samples=batch_data_samples)
            suffix = f'{branch}' if weight == 1 else f'{branch}_w{weight:g}'
            for name, value in branch_losses.items():
                if 'loss' in name:
                    value = ([v * weight for v in value] if isinstance(value, list)
                             else value * weight)
                losses[f'{name}{suffix}'] = value
        return losses
