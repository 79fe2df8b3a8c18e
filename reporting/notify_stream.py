"""What tonight's e-mails need from findings held on disk (`Findings`), read a chunk at a time.

`notify.notify_findings` judges a frame of findings row by row; a quarter of ten million jobs
has millions. Here suppression and addresses are decided once per distinct job name and per
distinct (owner, user, team), the same way, over a few narrow columns of each ranked chunk.
Only each address's `cap` first findings (the largest: the chunks come ranked) and its count
are kept, plus, on the weekly summary's weekday, the positions of the findings each team lead
is told about; their full rows are then read by position.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting.audit_config import Notify
from reporting.audit_findings import Findings

NARROW = ["finding_id", "rule", "user", "owner", "team", "job_name", "first_seen"]


class IdList(Sequence[str]):
    """Finding ids held as one Arrow array (a night may leave millions pending), read like
    a list and equal to the list of the same ids."""

    def __init__(self, ids: pa.Array) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return self.ids[index].to_pylist()
        return self.ids[index].as_py()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, IdList):
            return self.ids.equals(other.ids)
        return isinstance(other, list) and self.ids.to_pylist() == other

    def __repr__(self) -> str:
        return f"IdList({len(self)} ids)"


def sorted_ids(chunks: list[pa.Array], minus: Sequence[str] = ()) -> IdList:
    ids = pa.concat_arrays([c.cast(pa.string()) for c in chunks] or [pa.array([], pa.string())])
    if len(minus):
        ids = ids.filter(pc.invert(pc.is_in(ids, value_set=pa.array(list(minus), pa.string()))))
    return IdList(pc.take(ids, pc.sort_indices(ids)))


@dataclass
class Due:
    """Tonight's findings to mail (todo: neither suppressed nor notified before), reduced."""

    shown: dict[str, list[int]] = field(default_factory=dict)  # address → first `cap` positions
    counts: Counter[str] = field(default_factory=Counter)  # address → its todo findings
    todo: list[pa.Array] = field(default_factory=list)  # every todo finding id
    suppressed: list[pa.Array] = field(default_factory=list)
    unresolved: set[str] = field(default_factory=set)  # owners of todo findings with no address
    week: list[np.ndarray] = field(default_factory=list)  # kept, first seen this week, led teams


def due(findings: Findings, settings: Notify, notified: Any, *, address: Any, owner_name: Any,
        week: tuple[date, date] | None, led_teams: set[str]) -> Due:  # fmt: skip
    """Reduce the ranked findings to what tonight's digests (and weekly summaries) need.
    `address(owner, user, team)` and `owner_name(owner, user)` are notify's own rules."""
    result = Due()
    sent_before = pa.array(list(notified), pa.string())
    start = 0
    for chunk in findings.chunks(columns=NARROW):
        positions = np.arange(start, start + len(chunk))
        start += len(chunk)
        ids = pa.array(chunk["finding_id"], pa.string())
        suppressed = _suppressed(chunk, settings)
        result.suppressed.append(ids.filter(pa.array(suppressed)))
        kept = ~suppressed
        if week is not None:
            seen = pd.to_datetime(chunk["first_seen"], errors="coerce").dt.date
            in_week = (seen >= week[0]) & (seen <= week[1]) & _text(chunk["team"]).isin(led_teams)
            result.week.append(positions[kept & in_week.to_numpy(dtype=bool)])
        old = pc.is_in(ids, value_set=sent_before).to_numpy(zero_copy_only=False)
        todo = kept & ~old
        result.todo.append(ids.filter(pa.array(todo)))
        _route(chunk[todo], positions[todo], settings, result, address, owner_name)
    return result


def _text(values: pd.Series) -> pd.Series:
    """notify._text of each value: missing → "", else str."""
    return values.astype(object).where(values.notna(), "").astype(str)


def _suppressed(chunk: pd.DataFrame, settings: Notify) -> np.ndarray:
    users, rules = set(settings.suppress_users), set(settings.suppress_rules)
    mask = (
        _text(chunk["user"]).isin(users)
        | _text(chunk["owner"]).isin(users)
        | _text(chunk["rule"]).isin(rules)
    ).to_numpy(dtype=bool)
    if settings.suppress_job_names:
        patterns = [re.compile(p) for p in settings.suppress_job_names]
        codes, names = pd.factorize(_text(chunk["job_name"]))
        hit = np.array([any(p.search(n) for p in patterns) for n in names], dtype=bool)
        mask = mask | (hit[codes] if len(names) else False)
    return mask


def _route(todo: pd.DataFrame, positions: np.ndarray, settings: Notify, result: Due,
           address: Any, owner_name: Any) -> None:  # fmt: skip
    """Each todo finding's address, decided once per (owner, user, team); the first `cap` of
    each address kept (the chunk is ranked), the rest counted."""
    if todo.empty:
        return
    owner, user, team = (_text(todo[c]) for c in ("owner", "user", "team"))
    codes, combos = pd.factorize(owner + "\0" + user + "\0" + team)
    routed = []
    for combo in combos:
        o, u, t = combo.split("\0")
        routed.append(address(o, u, t))
        if routed[-1] is None:
            result.unresolved.add(owner_name(o, u))
    to = np.array(routed, dtype=object)[codes]
    cap = settings.max_findings_per_owner
    for where in pd.Series(np.arange(len(to))).groupby(to, sort=False).indices.values():
        name = to[where[0]]
        shown = result.shown.setdefault(name, [])
        shown.extend(positions[where[: max(cap - len(shown), 0)]].tolist())
        result.counts[name] += len(where)
