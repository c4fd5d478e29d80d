"""A converter: the rename table of one official model family, applied to a checkpoint."""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models.backbones.checkpoint import extract_state_dict, strip_wrapper_prefixes
from .report import ConversionReport, compare_with_model
from .rules import RenameRule, rename


@dataclass(frozen=True)
class Converter:
    """The official layout of one model family -> ours.

    ``name``: ``task/model`` (e.g. ``detection/dino``); ``rules``: every official key must
    match one (else it is reported as unmapped); ``signature``: a regular expression that only
    keys of this official layout match (used to recognise a checkpoint); ``dropped``: full-match
    patterns of keys that are not weights (dropped and listed); ``wrapper_prefixes``: stripped
    first (DDP's ``module.``).
    """

    name: str
    rules: tuple[RenameRule, ...]
    signature: str
    dropped: tuple[str, ...] = ()
    wrapper_prefixes: tuple[str, ...] = ('module.', )

    def matches(self, keys: list[str]) -> bool:
        """Whether ``keys`` (an official state dict's) look like this layout."""
        sig = re.compile(self.signature)
        return any(sig.match(k) for k in keys)

    def rename(self, key: str) -> str | None:
        return rename(key, self.rules)

    def convert(self, checkpoint: Mapping[str, Any], reference: Mapping[str, Any] | None = None,
                allow_incomplete: bool = False) -> tuple[OrderedDict, ConversionReport]:
        """Convert an official checkpoint (or its state dict) to our key names.

        Args:
            checkpoint: the loaded checkpoint or its state dict (``state_dict``/``model``
                entries and wrapper prefixes are handled).
            reference: optional model ``state_dict()`` (any values with ``.shape``, e.g. on the
                meta device): keys and shapes are then checked against it.
            allow_incomplete: return the partial result instead of raising when keys are
                unmapped, missing, unexpected or of another shape (they are still reported).

        Returns:
            The converted state dict (official order) and its :class:`ConversionReport`.

        Raises:
            IncompleteConversionError: naming the problem keys, unless ``allow_incomplete``.
        """
        state_dict = strip_wrapper_prefixes(extract_state_dict(checkpoint),
                                            self.wrapper_prefixes)
        report = ConversionReport(converter=self.name)
        out: OrderedDict[str, Any] = OrderedDict()
        for key, value in state_dict.items():
            new = self.rename(key)
            if new is None:
                if any(re.fullmatch(p, key) for p in self.dropped):
                    report.dropped.append(key)
                else:
                    report.unmapped.append(key)
                continue
            if new in out:
                old = next(k for k, v in report.renamed.items() if v == new)
                raise ValueError(f'{self.name}: {key!r} and {old!r} both convert to {new!r}')
            out[new] = value
            report.renamed[key] = new
        if reference is not None:
            compare_with_model(report, out, reference)
        if not report.complete and not allow_incomplete:
            raise report.error(f'official {self.name} checkpoint')
        return out, report


def dataset_meta(checkpoint: Any) -> dict[str, Any]:
    """mmengine ``dataset_meta`` from an mmdet 2.x / mmseg 0.x checkpoint's ``meta``
    (``CLASSES``, ``PALETTE``); empty when it has none."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, Mapping) else None
    out: dict[str, Any] = {}
    if isinstance(meta, Mapping):
        if meta.get('CLASSES'):
            out['classes'] = tuple(meta['CLASSES'])
        if meta.get('PALETTE') is not None:
            out['palette'] = [list(c) for c in meta['PALETTE']]
    return out
