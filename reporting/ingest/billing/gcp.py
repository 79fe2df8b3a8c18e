"""Google Cloud Billing export (BigQuery standard/detailed tables) → charges.

Two shapes reach this reader as text:
- JSON lines of the BigQuery export: `service`, `sku`, `project`, `location`, `usage`, `invoice`,
  `resource` are records (JSON object text); `credits`, `labels`, `system_labels`, `tags` lists.
- Flattened CSV (koku style): dotted headers (`service.description`) and the lists written as
  Python repr (`[{'key': 'a', 'value': 'b'}]`, `None` for null), parsed with `ast.literal_eval`.

`cost` is gross; the credits of a row are negative amounts inside it, so billed and effective
cost are the net `cost + sum(credits.amount)`: a credit never becomes a row of its own and so
cannot be lost or double-counted downstream.
"""

from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

import pandas as pd

from reporting.ingest.billing.common import (
    NULL_TEXT,
    FamilyRead,
    RawTable,
    RowProblems,
    column_lookup,
    finish_charges,
    missing_columns,
    normalise_name,
    normalise_tags,
    parse_decimal,
    parse_time,
    tags_json,
    text,
)

FAMILY = "gcp_billing"
_REQUIRED = ("cost", "currency", "usage_start_time", "usage_end_time")
_CATEGORIES = {
    "regular": "Usage",
    "tax": "Tax",
    "adjustment": "Adjustment",
    "rounding error": "Adjustment",  # the documented spelling
    "rounding_error": "Adjustment",  # the spelling focus_converters matches
    "credit": "Credit",
}
# Coarse FOCUS categories for the services the reports single out; others stay None.
_SERVICE_CATEGORIES = {
    "compute engine": "Compute",
    "cloud storage": "Storage",
    "networking": "Networking",
    "vertex ai": "AI and Machine Learning",
}
_MACHINE_SPEC = "compute.googleapis.com/machine_spec"
_MAX_CELL = 1_000_000  # longer list/record cells are refused before parsing (memory guard)
_INVOICE_MONTH = re.compile(r"\d{4}(0[1-9]|1[0-2])")
_BAD = object()  # a cell that does not parse


def detect(columns: list[str]) -> bool:
    names = {normalise_name(c) for c in columns}
    described = names & {"service", "servicedescription", "sku", "skuid", "credits"}
    return {"usagestarttime", "cost"} <= names and bool(described)


def read(table: RawTable, source_file: str) -> FamilyRead:
    records = table.records
    problems = RowProblems()
    fields = _Fields(records, table.columns, problems)
    missing = [c for c in _REQUIRED if not fields.has(c)]
    if missing:
        return missing_columns(
            records,
            FAMILY,
            source_file,
            f"the file has no {', '.join(missing)} column (a GCP billing export has it)",
        )
    frame = pd.DataFrame(index=records.index)
    _costs(frame, fields, problems)
    _times(frame, fields, problems)
    _describe(frame, fields, problems)
    _labels(frame, fields)
    frame["line"] = records["line"]
    frame["raw"] = records["raw"]
    bad = problems.mask(records.index)
    return FamilyRead(
        finish_charges(frame[~bad], FAMILY, source_file), problems.quarantine(records, source_file)
    )


class _Fields:
    """Values by dotted path (`usage.amount`) from whichever shape the file has: a flattened
    column of that name, or the key inside a record column (`usage` holding an object)."""

    def __init__(self, records: pd.DataFrame, columns: list[str], problems: RowProblems) -> None:
        self.records = records
        self.col = column_lookup(columns)
        self.problems = problems
        self._records: dict[str, pd.Series] = {}

    def has(self, path: str) -> bool:
        head = path.partition(".")[0]
        return normalise_name(path) in self.col or (
            head != path and normalise_name(head) in self.col
        )

    def value(self, path: str) -> pd.Series:
        """Text from a flattened column, or the Python value found inside a record."""
        flat = self.col.get(normalise_name(path))
        head, _, key = path.partition(".")
        if flat is not None or not key:
            return text(self.records, flat)
        return self._record(head).map(lambda r: r.get(key) if isinstance(r, dict) else None)

    def scalar(self, path: str) -> pd.Series:
        return self.value(path).map(_scalar_text).astype(object)

    def listed(self, path: str) -> pd.Series:
        """A repeated field as a list per row ([] when empty); a non-list quarantines the row."""
        parsed = self.value(path).map(lambda v: _parse_cell(v) if isinstance(v, str) else v)
        parsed = parsed.map(lambda v: [] if _absent(v) else v)
        bad = parsed.map(lambda v: not isinstance(v, list))
        self.flag(bad, "list", path, f"{path} is not a readable list: ")
        return parsed.map(lambda v: v if isinstance(v, list) else [])

    def _record(self, head: str) -> pd.Series:
        if head not in self._records:
            parsed = text(self.records, self.col.get(normalise_name(head))).map(_parse_cell)
            bad = parsed.map(lambda v: v is not None and not isinstance(v, dict))
            self.flag(bad, "record", head, f"{head} is not a record: ")
            self._records[head] = parsed.where(~bad, None)
        return self._records[head]

    def flag(self, bad: pd.Series, check: str, path: str, message: str) -> None:
        """Quarantine the `bad` rows, quoting the start of the value (built only when needed)."""
        if bad.any():
            shown = self.value(path)[bad].map(lambda v: "" if _absent(v) else str(v)[:80])
            self.problems.add(bad, check, message + shown)


def _parse_cell(value: str | None) -> Any:
    """JSON (the JSON-lines shape) or a Python literal (koku's CSV); `_BAD` if neither.

    `literal_eval` only builds literals, never runs code; the size cap and the RecursionError
    catch keep a hostile cell (huge, or `[[[[…`) from exhausting memory or the stack."""
    if not isinstance(value, str):
        return None
    if len(value) > _MAX_CELL:
        return _BAD
    try:
        return json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        pass
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _BAD


def _absent(value: Any) -> bool:
    """None, or the NaN pandas puts in its place when a Series is built or mapped."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _scalar_text(value: Any) -> str | None:
    if _absent(value) or value is _BAD:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    clean = str(value).strip()
    return None if clean.lower() in NULL_TEXT else clean


def _costs(frame: pd.DataFrame, fields: _Fields, problems: RowProblems) -> None:
    cost_text = fields.scalar("cost")
    cost, bad = parse_decimal(cost_text)
    problems.add(bad, "number", "cost is not a number: " + cost_text.fillna(""))
    problems.add(cost.isna(), "required_value", "cost is empty")
    credits = fields.listed("credits").map(_credit_total)
    fields.flag(
        credits.map(lambda c: not isinstance(c, tuple)),
        "credits",
        "credits",
        "credits is not a list of records with a numeric amount: ",
    )
    frame["billed_cost"] = cost + credits.map(
        lambda c: c[0] if isinstance(c, tuple) else 0.0
    ).astype("float64")
    frame["effective_cost"] = frame["billed_cost"]
    committed = credits.map(lambda c: isinstance(c, tuple) and c[1])
    frame["pricing_category"] = committed.map({True: "Committed", False: "Standard"})
    for target, path in (("list_cost", "cost_at_list"), ("consumed_quantity", "usage.amount")):
        values = fields.scalar(path)
        frame[target], bad = parse_decimal(values)
        problems.add(bad, "number", f"{path} is not a number: " + values.fillna(""))
    frame["currency"] = fields.scalar("currency").str.upper()
    problems.add(
        ~frame["currency"].fillna("").str.fullmatch(r"[A-Z]{3}"),
        "currency",
        "currency is not an ISO 4217 code: " + fields.scalar("currency").fillna("(empty)"),
    )


def _credit_total(credits: list) -> tuple[float, bool] | None:
    """(sum of amounts, any committed-use discount) or None if a credit is malformed."""
    amounts = []
    committed = False
    for credit in credits:
        amount = credit.get("amount") if isinstance(credit, dict) else None
        if isinstance(amount, bool) or not isinstance(amount, int | float | str):
            return None
        try:
            amounts.append(float(amount))
        except ValueError:
            return None
        if not math.isfinite(amounts[-1]):
            return None
        committed |= str(credit.get("type") or "").upper().startswith("COMMITTED_USAGE_DISCOUNT")
    return math.fsum(amounts), committed


def _times(frame: pd.DataFrame, fields: _Fields, problems: RowProblems) -> None:
    for target, path in (("charge_period_start", "usage_start_time"),
                         ("charge_period_end", "usage_end_time")):  # fmt: skip
        # BigQuery's own JSON export writes `2020-11-09 23:00:00 UTC`; flattenings write offsets.
        values = fields.scalar(path)
        frame[target], bad = parse_time(values.str.replace(r"\s*UTC$", "", regex=True))
        problems.add(bad, "timestamp", f"{path} is not a valid time: " + values.fillna(""))
        problems.add(frame[target].isna(), "required_value", f"{path} is empty")
    problems.add(
        frame["charge_period_end"] < frame["charge_period_start"],
        "time_order",
        "usage_end_time is before usage_start_time",
    )
    month = fields.scalar("invoice.month")
    bad = month.notna() & ~month.fillna("").str.fullmatch(_INVOICE_MONTH)
    problems.add(bad, "timestamp", "invoice.month is not YYYYMM: " + month.fillna(""))
    # The first day of the invoice month at UTC midnight. focus_converters reads it as Pacific
    # time, but the period only groups rows for restatement, so a fixed UTC label is kept.
    frame["billing_period_start"], _ = parse_time(month.where(~bad, None), formats=("%Y%m",))


def _describe(frame: pd.DataFrame, fields: _Fields, problems: RowProblems) -> None:
    frame["provider"] = "gcp"
    frame["billing_account_id"] = fields.scalar("billing_account_id")
    frame["sub_account_id"] = fields.scalar("project.id")
    frame["sub_account_name"] = fields.scalar("project.name")
    frame["service_name"] = fields.scalar("service.description")
    frame["service_category"] = frame["service_name"].map(
        lambda s: _SERVICE_CATEGORIES.get(s.lower()) if s else None
    )
    frame["usage_type"] = fields.scalar("sku.description")
    frame["charge_description"] = frame["usage_type"]
    frame["sku_id"] = fields.scalar("sku.id")
    frame["resource_id"] = fields.scalar("resource.name").fillna(
        fields.scalar("resource.global_name")
    )
    region = fields.scalar("location.region").str.lower()
    frame["region_id"] = region.where(region.fillna("global") != "global", None)
    frame["consumed_unit"] = fields.scalar("usage.unit")
    cost_type = fields.scalar("cost_type")
    frame["charge_category"] = cost_type.map(
        lambda t: _CATEGORIES.get(t.lower()) if t else "Usage"  # no cost_type: usage (as FOCUS)
    )
    problems.add(
        frame["charge_category"].isna(),
        "enum",
        "cost_type is not one of " + ", ".join(_CATEGORIES) + ": " + cost_type.fillna(""),
    )
    frame["commitment_status"] = None


def _labels(frame: pd.DataFrame, fields: _Fields) -> None:
    system = fields.listed("system_labels").map(_key_values)
    # machine_spec labels every SKU line of a VM (its core, RAM and GPU lines alike), so it
    # names the machine, not what the line measures; vcpus stays None for the same reason: a
    # core line's usage.amount already counts vCPU-seconds.
    frame["resource_type"] = system.map(lambda s: _dict(s).get(_MACHINE_SPEC))
    project = fields.listed("project.labels").map(_key_values)
    resource_tags = fields.listed("tags").map(_key_values)
    row = fields.listed("labels").map(_key_values)
    for name, values in (("project.labels", project), ("tags", resource_tags), ("labels", row)):
        fields.problems.add(values.isna(), "tags", f"{name} holds an entry without a key")
    # Precedence: the row's own labels, then resource tags, then the project's labels.
    frame["tags"] = [
        tags_json(
            {**normalise_tags(_dict(p)), **normalise_tags(_dict(t)), **normalise_tags(_dict(r))}
        )
        for p, t, r in zip(project, resource_tags, row, strict=True)
    ]


def _key_values(entries: list) -> dict[str, Any] | None:
    """[{key, value}, …] → {key: value}; None when an entry is not a record with a key."""
    result: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not str(entry.get("key") or "").strip():
            return None
        result[str(entry["key"])] = entry.get("value")
    return result
