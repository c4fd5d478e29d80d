"""The one report type of the converters and the one key/shape comparison with a model."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class IncompleteConversionError(ValueError):
    """A checkpoint did not convert completely: keys no rule maps, or (against a model) keys
    missing, unexpected or of another shape. The message lists them by name."""


@dataclass
class ConversionReport:
    """What a conversion did.

    ``converter``: which table was used (e.g. ``'detection/dino'``); ``renamed``: official key
    -> new key (identity renames included); ``dropped``: known non-weight keys (EMA buffers);
    ``unmapped``: official keys no rule matches; after :func:`compare_with_model` also
    ``missing`` (model keys not produced), ``unexpected`` (produced keys the model lacks) and
    ``shape_mismatch`` (``'key (official key): checkpoint S vs model S'``).
    """

    converter: str
    renamed: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.unmapped or self.missing or self.unexpected or self.shape_mismatch)

    def problems(self) -> list[str]:
        """One line per problem key: unmapped, then shape mismatches (another size shows
        there first), missing, unexpected."""
        lines = [f'unmapped (no rename rule): {k}' for k in self.unmapped]
        lines += [f'shape mismatch: {k}' for k in self.shape_mismatch]
        lines += [f'missing (the model needs it, the checkpoint lacks it): {k}'
                  for k in self.missing]
        lines += [f'unexpected (the model has no such key): {k}' for k in self.unexpected]
        return lines

    def summary(self) -> str:
        renamed = sum(1 for a, b in self.renamed.items() if a != b)
        return (f'{self.converter}: {len(self.renamed)} tensors converted ({renamed} renamed), '
                f'{len(self.dropped)} dropped (EMA buffers), {len(self.unmapped)} unmapped, '
                f'{len(self.missing)} missing, {len(self.unexpected)} unexpected, '
                f'{len(self.shape_mismatch)} shape mismatches')

    def error(self, what: str, limit: int = 20) -> IncompleteConversionError:
        """An error naming the first ``limit`` problem keys."""
        lines = self.problems()
        more = f'\n  ... and {len(lines) - limit} more' if len(lines) > limit else ''
        return IncompleteConversionError(
            f'{what}: conversion incomplete ({self.summary()}):\n  ' +
            '\n  '.join(lines[:limit]) + more)


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(getattr(value, 'shape', ()))


def compare_with_model(report: ConversionReport, state_dict: Mapping[str, Any],
                       model_state: Mapping[str, Any]) -> ConversionReport:
    """Fill ``report.missing``/``unexpected``/``shape_mismatch`` from a converted state dict and
    a model's ``state_dict()`` (names and shapes only: it may live on the meta device)."""
    source = {new: old for old, new in report.renamed.items()}
    report.missing = [k for k in model_state if k not in state_dict]
    report.unexpected = [k for k in state_dict if k not in model_state]
    report.shape_mismatch = [
        f'{k}{f" ({source[k]})" if source.get(k, k) != k else ""}: checkpoint '
        f'{_shape(v)} vs model {_shape(model_state[k])}'
        for k, v in state_dict.items() if k in model_state and _shape(v) != _shape(model_state[k])
    ]
    return report
