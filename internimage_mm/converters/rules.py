"""The one rename-rule type of the converters: a full-match regular expression on an official
key and its replacement template."""
from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RenameRule:
    """``pattern`` (full match on an official key) -> ``replacement`` (an ``re`` template with
    back references); ``what`` names the module, for reports and docs."""

    pattern: str
    replacement: str
    what: str
    _regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, '_regex', re.compile(self.pattern))

    def apply(self, key: str) -> str | None:
        m = self._regex.fullmatch(key)
        return None if m is None else m.expand(self.replacement)


def same(pattern: str, what: str) -> RenameRule:
    """A rule for keys whose name is the same in both layouts (listed, so that a key no rule
    names is reported instead of passed on)."""
    return RenameRule(f'({pattern})', r'\1', what)


def rename(key: str, rules: tuple[RenameRule, ...]) -> str | None:
    """The new name of ``key`` under the first matching rule, or None."""
    for rule in rules:
        new = rule.apply(key)
        if new is not None:
            return new
    return None
