"""Map usage rows to team, model, phase and owner with ordered regex rules from the config.

For each of the four attributes, the first rule that matches the row *and sets that attribute*
wins, so one rule can name the team from the account and a later one the model from the job
name. `{name}` in a rule's value inserts the regex's named group. No match → `unallocated`.
"""

from __future__ import annotations

import functools
import json
import re
import string

import numpy as np
import pandas as pd

from reporting.config import UNALLOCATED, OwnerRule

ATTRIBUTES = ("team", "model", "phase", "owner")


def attribute_owners(usage: pd.DataFrame, rules: list[OwnerRule]) -> pd.DataFrame:
    """Add team, model, phase, owner columns (text; `unallocated` where no rule matched)."""
    texts = _Texts(usage)
    result = {a: np.full(len(usage), None, dtype=object) for a in ATTRIBUTES}
    unset = {a: np.ones(len(usage), dtype=bool) for a in ATTRIBUTES}
    for rule in rules:
        open_attrs = [a for a in ATTRIBUTES if getattr(rule, a) and unset[a].any()]
        if not open_attrs:
            continue
        matched, groups = _match(texts, rule)
        for attr in open_attrs:
            value = _fill(getattr(rule, attr), groups, len(usage))
            take = matched & unset[attr] & (value != "")
            result[attr][take] = value[take]
            unset[attr] &= ~take
    for attr, values in result.items():
        values[unset[attr]] = UNALLOCATED
    return usage.assign(**{a: pd.Series(v, index=usage.index, dtype=object) for a, v in result.items()})  # fmt: skip


class _Texts:
    """Each rule field's text per row, as codes into its distinct texts: fields repeat
    (accounts, users, partitions), so each distinct text is matched once, and a field used by
    several rules is read once."""

    def __init__(self, usage: pd.DataFrame) -> None:
        self.usage = usage
        self.seen: dict[str, tuple[np.ndarray, list[str]]] = {}

    def of(self, field: str) -> tuple[np.ndarray, list[str]]:
        if field not in self.seen:
            self.seen[field] = self._read(field)
        return self.seen[field]

    def _read(self, field: str) -> tuple[np.ndarray, list[str]]:
        """A column's text ("" where absent), or `tag:<key>` from the tags JSON."""
        column = "tags" if field.startswith("tag:") else field
        if column not in self.usage.columns:
            return np.zeros(len(self.usage), dtype=np.intp), [""]
        codes, uniques = pd.factorize(self.usage[column])  # missing → -1, the "" appended
        if field.startswith("tag:"):
            key = field[4:].strip().lower()
            distinct = [str(_parse(t).get(key, "")) if isinstance(t, str) else "" for t in uniques]
        else:
            distinct = [str(value) for value in uniques]
        return np.where(codes < 0, len(distinct), codes), [*distinct, ""]


def _match(texts: _Texts, rule: OwnerRule) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows where every field matches, and the named groups captured (None if absent); a
    group name captured by two fields keeps the first field's."""
    matched = np.ones(len(texts.usage), dtype=bool)
    groups: dict[str, np.ndarray] = {}
    for field, pattern in rule.match.items():
        codes, distinct = texts.of(field)
        compiled = re.compile(pattern)
        found = [compiled.search(t) for t in distinct]
        matched &= np.array([m is not None for m in found], dtype=bool)[codes]
        for name in compiled.groupindex:
            if name not in groups:
                captured = [m.group(name) if m is not None else None for m in found]
                groups[name] = np.array(captured, dtype=object)[codes]
    return matched, groups


@functools.lru_cache(maxsize=65_536)
def _parse(tags: str) -> dict[str, object]:
    try:
        parsed = json.loads(tags)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _fill(template: str, groups: dict[str, np.ndarray], rows: int) -> np.ndarray:
    """Expand `{group}` placeholders row-wise; rows where a used group is missing give ""
    (never taken)."""
    result = np.full(rows, "", dtype=object)
    missing = np.zeros(rows, dtype=bool)
    for literal, field, _, _ in string.Formatter().parse(template):
        result = result + literal
        if field:
            if field not in groups:
                raise ValueError(
                    f"owner rule value {template!r} uses {{{field}}}, which its regex does not capture"
                )
            absent = np.equal(groups[field], None)
            missing |= absent
            result = result + np.where(absent, "", groups[field])
    result[missing] = ""
    return result
