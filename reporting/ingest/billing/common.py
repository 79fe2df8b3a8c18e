"""The `charges` table every billing reader produces, and the helpers they share.

A reader turns one vendor family (FOCUS, AWS CUR, GCP export, Azure export) into charges:
one row per billing line, FOCUS-shaped, costs in their billing currency, timestamps UTC.
Files are read as text (`RawTable`, see `raw.py`): every value a string, so a reader decides how
each vendor column is parsed and a value it cannot parse quarantines the row, naming the column.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# Files are read as text by `raw`; re-exported where the readers and tests have found them.
from reporting.ingest.billing.raw import RawTable, open_text, read_raw  # noqa: F401
from reporting.schema import empty_quarantine, quarantine_frame

CHARGE_COLUMNS = [
    "charge_id",  # family:hash of the raw row[:occurrence], stable when a file is rewritten
    "family",  # focus, aws_cur, gcp_billing, azure_cost: which reader made the row
    "provider",  # aws, gcp, azure, oracle, ... (lower case)
    "source_file",
    "line",  # 1-based data row number in the file (CSV: physical line of the row's start)
    "billing_account_id",
    "sub_account_id",  # AWS usage account, GCP project, Azure subscription
    "sub_account_name",
    "billing_period_start",  # UTC; restatements replace a whole billing period
    "charge_period_start",  # UTC
    "charge_period_end",  # UTC, exclusive
    "charge_category",  # Usage, Purchase, Tax, Credit, Adjustment
    "charge_description",
    "service_name",
    "service_category",
    "usage_type",  # vendor detail used to classify the line: CUR UsageType, Azure meter, GCP SKU
    "sku_id",
    "resource_id",
    "resource_type",  # instance / machine / VM size where known (e.g. p4d.24xlarge)
    "region_id",  # provider region code (us-east-1, europe-west4, uksouth); None if global
    "consumed_quantity",  # in consumed_unit, multipliers already applied
    "consumed_unit",
    "vcpus",  # vCPUs of the instance when the line says so (CUR product/vcpu, Azure VCPUs)
    "billed_cost",  # invoice basis (cash)
    "effective_cost",  # amortised basis
    "list_cost",
    "currency",  # ISO 4217
    "tags",  # JSON object text, keys normalised (see normalise_tags), sorted; "{}" if none
    "pricing_category",  # Standard, Dynamic (spot), Committed, Other, or None
    "commitment_status",  # Used, Unused or None
    "line_item_id",  # the export's own line id where it has one (CUR identity/LineItemId)
]
TIME_COLUMNS = ("billing_period_start", "charge_period_start", "charge_period_end")
NUMBER_COLUMNS = ("consumed_quantity", "vcpus", "billed_cost", "effective_cost", "list_cost")
INT_COLUMNS = ("line",)
CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
NULL_TEXT = frozenset({"", "null", "none", "nan", "n/a"})  # placeholders read as missing


@dataclass(frozen=True)
class FamilyRead:
    """What a family reader returns for one file: accepted charges and quarantined rows."""

    charges: pd.DataFrame  # CHARGE_COLUMNS (use finish_charges)
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS


class RowProblems:
    """Collects row-level failures (row label → check, reason); the first one per row wins."""

    def __init__(self) -> None:
        self.reasons: dict[Any, tuple[str, str]] = {}

    def add(self, mask: pd.Series, check: str, reason: str | pd.Series) -> None:
        rows = mask[mask.fillna(False).astype(bool)].index
        for label in rows:
            if label not in self.reasons:
                text = reason if isinstance(reason, str) else str(reason.loc[label])
                self.reasons[label] = (check, text)

    def mask(self, index: pd.Index) -> pd.Series:
        return pd.Series(index.isin(list(self.reasons)), index=index)

    def quarantine(self, records: pd.DataFrame, source_file: str) -> pd.DataFrame:
        if not self.reasons:
            return empty_quarantine()
        rows = records.loc[list(self.reasons)]
        return quarantine_frame(
            source_file=source_file,
            line=rows["line"].tolist(),
            raw=rows["raw"].tolist(),
            check=[c for c, _ in self.reasons.values()],
            reason=[r for _, r in self.reasons.values()],
        )


# ---- parsing values ------------------------------------------------------------------------


def column_lookup(columns: list[str]) -> dict[str, str]:
    """Header names by a normalised key (lower case, no BOM/spaces/underscores/slashes/dots)."""
    return {normalise_name(c): c for c in reversed(columns)}


def normalise_name(name: str) -> str:
    return re.sub(r"[\s_/.\-:]", "", name.replace("\ufeff", "")).lower()


def text(records: pd.DataFrame, column: str | None) -> pd.Series:
    """A column as stripped text with placeholders (`NULL`, empty) as None; absent → all None."""
    if column is None or column not in records.columns:
        return pd.Series([None] * len(records), index=records.index, dtype=object)
    # Cleaned once per distinct text, then spread over the rows: the rows share the cleaned
    # strings (a million lines of "USD" are one string, not a million).
    codes, distinct = pd.factorize(records[column], use_na_sentinel=True)
    values = pd.Series(distinct, dtype=object).astype(str).str.strip()
    missing = values.str.lower().isin(NULL_TEXT)
    cleaned = np.append(values.astype(object).where(~missing, None).to_numpy(), None)
    return pd.Series(cleaned[codes], index=records.index, dtype=object)


def map_distinct(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """`values.map(func)` (same values, same dtype), calling `func` once per distinct value:
    billing columns repeat the same few texts on millions of lines."""
    codes, distinct = pd.factorize(values.astype(object), use_na_sentinel=True)
    mapped = pd.Series([*distinct, None], dtype=object).map(func)  # last: a missing value
    result = mapped.iloc[np.where(codes < 0, len(distinct), codes)]
    return result.set_axis(values.index)


def parse_decimal(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers (plain or `mEn`) → float; returns (numbers, bad) where bad = text not a number."""
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = values.notna() & numbers.isna()
    return numbers, bad


_TIME_FORMATS = ("ISO8601", "%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p")


def parse_time(
    values: pd.Series, *, formats: tuple[str, ...] = _TIME_FORMATS
) -> tuple[pd.Series, pd.Series]:
    """Timestamps → UTC; naive values are read as UTC (FOCUS mandates UTC; the official sample
    omits the `Z`). Each value may use any of `formats`. Returns (times, bad)."""
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s, UTC]")
    todo = values.notna()
    for fmt in formats:
        if not todo.any():
            break
        parsed = pd.to_datetime(values[todo], format=fmt, utc=True, errors="coerce")
        ok = parsed.notna()
        result.loc[ok[ok].index] = parsed[ok].dt.as_unit("s")
        todo.loc[ok[ok].index] = False
    return result, todo


def normalise_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Tag keys trimmed and lower-cased, `user:` prefix dropped; valueless tags → "true"."""
    result: dict[str, str] = {}
    for key, value in tags.items():
        clean = str(key).strip().lower()
        clean = clean.removeprefix("user:").strip()
        if not clean:
            continue
        text_value = "true" if value is None or value is True else str(value).strip()
        if value is False:
            text_value = "false"
        result.setdefault(clean, text_value)
    return result


def tags_json(tags: dict[str, Any]) -> str:
    return json.dumps(normalise_tags(tags), sort_keys=True, ensure_ascii=False)


def parse_tags_object(value: str | None) -> dict[str, Any] | None:
    """A JSON object text (also Azure's form without braces) → dict; None if not parseable."""
    if not isinstance(value, str) or not value.strip():
        return {}
    body = value.strip()
    if not body.startswith("{"):
        body = "{" + body + "}"
    try:
        parsed = json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def missing_columns(
    records: pd.DataFrame, family: str, source_file: str, reason: str
) -> FamilyRead:
    """A file lacking a required column: no charges, every row quarantined with `reason`."""
    problems = RowProblems()
    problems.add(pd.Series(True, index=records.index), "required_column", reason)
    return FamilyRead(
        finish_charges(records.iloc[0:0], family, source_file),
        problems.quarantine(records, source_file),
    )


def finish_charges(frame: pd.DataFrame, family: str, source_file: str) -> pd.DataFrame:
    """Complete a reader's frame: every CHARGE_COLUMN present and typed, charge ids assigned.

    `frame` must hold `raw` and `line`; missing canonical columns become None.
    """
    out = pd.DataFrame(index=frame.index)
    for column in CHARGE_COLUMNS:
        out[column] = frame[column] if column in frame.columns else None
    out["family"] = family
    out["source_file"] = source_file
    for column in TIME_COLUMNS:
        out[column] = pd.to_datetime(out[column], utc=True).astype("datetime64[s, UTC]")
    for column in NUMBER_COLUMNS:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    out["line"] = out["line"].astype("int64")
    out["tags"] = out["tags"].fillna("{}")
    out["charge_id"] = _charge_ids(frame["raw"], family)
    for column in CHARGE_COLUMNS:
        if column not in TIME_COLUMNS + NUMBER_COLUMNS + INT_COLUMNS:
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out.reset_index(drop=True)


def _charge_ids(raw: pd.Series, family: str) -> list[str]:
    """`family:hash[:n]`: a hash of the row's text, with n counting identical rows (n ≥ 2)."""
    seen: dict[str, int] = {}
    ids = []
    for text_value in raw:
        digest = hashlib.sha1(str(text_value).encode("utf-8")).hexdigest()[:16]
        seen[digest] = seen.get(digest, 0) + 1
        n = seen[digest]
        ids.append(f"{family}:{digest}" + (f":{n}" if n > 1 else ""))
    return ids
