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
    result = {a: pd.Series(None, index=usage.index, dtype=object) for a in ATTRIBUTES}
    for rule in rules:
        open_attrs = [a for a in ATTRIBUTES if getattr(rule, a) and result[a].isna().any()]
        if not open_attrs:
            continue
        matched, groups = _match(usage, rule)
        for attr in open_attrs:
            value = _fill(getattr(rule, attr), groups)
            take = matched & result[attr].isna() & value.notna() & (value != "")
            result[attr] = result[attr].where(~take, value)
    return usage.assign(**{a: s.fillna(UNALLOCATED) for a, s in result.items()})


def _match(usage: pd.DataFrame, rule: OwnerRule) -> tuple[pd.Series, pd.DataFrame]:
    """Rows where every field matches, and the named groups captured (text, NaN if absent)."""
    matched = pd.Series(True, index=usage.index)
    groups = pd.DataFrame(index=usage.index)
    for field, pattern in rule.match.items():
        # Fields repeat (accounts, users, partitions): each distinct text is matched once.
        codes, distinct = pd.factorize(_field_text(usage, field))
        compiled = re.compile(pattern)
        hits = np.array([compiled.search(t) is not None for t in distinct], dtype=bool)
        matched &= pd.Series(hits[codes], index=usage.index, dtype=bool)
        if compiled.groupindex:
            found = pd.Series(distinct, dtype=object).str.extract(compiled)[
                list(compiled.groupindex)
            ]
            named = found.iloc[codes].set_axis(usage.index)
            groups = pd.concat([groups, named.loc[:, ~named.columns.isin(groups.columns)]], axis=1)
    return matched, groups


def _field_text(usage: pd.DataFrame, field: str) -> pd.Series:
    """A rule field as text ("" where absent): a column, or `tag:<key>` from the tags JSON."""
    if field.startswith("tag:"):
        key = field[4:].strip().lower()
        tags = usage["tags"] if "tags" in usage.columns else pd.Series(None, index=usage.index)
        return tags.map(lambda t: str(_parse(t).get(key, "")) if isinstance(t, str) else "")
    if field not in usage.columns:
        return pd.Series("", index=usage.index, dtype=object)
    return usage[field].astype(object).where(usage[field].notna(), "").astype(str)


@functools.lru_cache(maxsize=65_536)
def _parse(tags: str) -> dict[str, object]:
    try:
        parsed = json.loads(tags)
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _fill(template: str, groups: pd.DataFrame) -> pd.Series:
    """Expand `{group}` placeholders column-wise; rows where a used group is missing give NaN."""
    pieces = list(string.Formatter().parse(template))
    result = pd.Series("", index=groups.index, dtype=object)
    for literal, field, _, _ in pieces:
        result = result + literal
        if field:
            if field not in groups.columns:
                raise ValueError(
                    f"owner rule value {template!r} uses {{{field}}}, which its regex does not capture"
                )
            result = result + groups[field]
    return result
