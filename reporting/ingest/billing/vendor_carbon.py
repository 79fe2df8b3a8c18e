"""Cloud providers' own carbon exports → `vendor_carbon` rows (kg CO2e, UTC, end exclusive),
shown beside our estimate and never added to it (their scope, model and allocation differ).

* `aws_carbon`: AWS Data Exports table CARBON_EMISSIONS, CSV (gzip) or Parquet ("Carbon emissions
  columns", https://docs.aws.amazon.com/cur/latest/userguide/carbon-emissions-columns.html):
  `usage_period_start`/`_end` (UTC), `usage_account_id`, `payer_account_id`, `region_code` (null
  for global services), `product_code`, `model_version`, `total_lbm_emissions_value`/`_unit`,
  `total_mbm_emissions_value`/`_unit`. The unit is documented as MTCO2e (metric tonnes: × 1000
  here); an empty unit is read as MTCO2e, kg and lb are converted, other units quarantine the
  row. Whether `usage_period_end` is inclusive is undocumented: 23:59:59, or midnight on a
  month's last day for a period from the 1st, becomes the exclusive end.
* `gcp_carbon`: Carbon Footprint BigQuery export ("Carbon Footprint export data schema",
  https://cloud.google.com/carbon-footprint/docs/data-schema), monthly: `usage_month` (DATE;
  `202403`, `2024-03` also read), `billing_account_id`, `project.id`/`.number`, `service.id`/
  `.description`, `location.region`, `carbon_model_version`, `carbon_footprint_total_kgCO2e.`
  `location_based`/`.market_based` (kg), and `carbon_footprint_kgCO2e.scope1`/`.scope2.`
  `location_based`/`.scope2.market_based`/`.scope3`, summed when a total is empty. Records may
  be nested (JSON lines) or flattened to dotted headers. `account_id`: the project id, else its
  number, else the billing account.

The older AWS Customer Carbon Footprint Tool download has no documented columns: it is
quarantined as an unknown header.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reporting.ingest.billing.common import (
    NULL_TEXT,
    RawTable,
    RowProblems,
    column_lookup,
    normalise_name,
    parse_decimal,
    parse_time,
    read_raw,
    text,
)
from reporting.ingest.limits import DEFAULT_LIMITS, Limits
from reporting.schema import empty_quarantine, quarantine_frame

VENDOR_COLUMNS = [
    "provider",  # aws, gcp
    "source_file",
    "line",
    "period_start",  # UTC
    "period_end",  # UTC, exclusive
    "account_id",  # AWS usage account; GCP project (else billing account)
    "region_id",  # region code; None for global services
    "service",  # AWS product code, GCP service description
    "co2e_location_kg",  # vendor's location-based total, kg CO2e
    "co2e_market_kg",  # vendor's market-based total, kg CO2e
    "model_version",  # as text; AWS delivers old and new versions together: pick one to sum
]
KINDS = ("aws_carbon", "gcp_carbon")
_AWS_VALUES = ("total_lbm_emissions_value", "total_mbm_emissions_value")
_GCP_TOTAL = "carbon_footprint_total_kgCO2e"
_GCP_SCOPES = "carbon_footprint_kgCO2e"
_TONNE, _POUND = 1000.0, 0.45359237
_KG_PER_UNIT = (
    dict.fromkeys(("mtco2e", "tco2e", "t", "tonnes", "metrictons", "metrictonnes"), _TONNE)
    | dict.fromkeys(("kgco2e", "kg"), 1.0)
    | dict.fromkeys(("lbco2e", "lbsco2e", "lb", "lbs", "pounds"), _POUND)
)
_BAD = object()  # a record cell that is not a JSON object
Getter = Callable[[str], pd.Series]


def detect(columns: list[str]) -> str | None:
    names = {normalise_name(c) for c in columns}
    if "usageperiodstart" in names and names & {normalise_name(c) for c in _AWS_VALUES}:
        return "aws_carbon"
    if "usagemonth" in names and any(n.startswith("carbonfootprint") for n in names):
        return "gcp_carbon"
    return None


def empty_vendor_carbon() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in VENDOR_COLUMNS}))


def read_vendor_carbon(
    path: Path, name: str, kind: str, limits: Limits = DEFAULT_LIMITS
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """One vendor carbon file → (rows, quarantine, rows_read); rows_read = accepted + quarantined.

    `kind` is `aws_carbon`, `gcp_carbon` or `vendor_carbon` (from the header). A file that cannot
    be read counts as one quarantined row (line 0) so its reason reaches the report."""
    if kind not in (*KINDS, "vendor_carbon"):
        raise ValueError(f"unknown vendor carbon kind {kind!r}")
    try:
        table = read_raw(path, name, limits)
    except (csv.Error, ValueError) as exc:  # an oversized CSV field; pyarrow's ArrowInvalid
        table = RawTable(pd.DataFrame(), [], empty_quarantine(), 0, f"cannot read the file: {exc}")
    if table.error:
        lost = quarantine_frame(source_file=name, line=[0], raw=[""], check="file",
                                reason=[table.error])  # fmt: skip
        return empty_vendor_carbon(), lost, 1
    records, problems = table.records, RowProblems()
    found = detect(table.columns)
    if found is None or (kind != "vendor_carbon" and found != kind):
        reason = (
            f"the header looks like a {found} export, but the input's kind is {kind!r}"
            if found
            else "the header matches no vendor carbon export (AWS CARBON_EMISSIONS, GCP Carbon "
            f"Footprint); first columns: {', '.join(table.columns[:6])}"
        )
        problems.add(pd.Series(True, index=records.index), "format", reason)
        rows = empty_vendor_carbon()
    else:
        get = _getter(records, table.columns, problems)
        fields = _aws(get, problems) if found == "aws_carbon" else _gcp(get, problems)
        frame = pd.DataFrame(fields, index=records.index)
        frame["provider"] = "aws" if found == "aws_carbon" else "gcp"
        frame["source_file"] = name
        frame["line"] = records["line"]
        rows = _typed(frame[~problems.mask(records.index)])
    parts = [q for q in (table.quarantine, problems.quarantine(records, name)) if not q.empty]
    quarantine = pd.concat(parts, ignore_index=True) if parts else empty_quarantine()
    return rows, quarantine, table.rows_read


def _aws(get: Getter, problems: RowProblems) -> dict[str, pd.Series]:
    start = _time(get, problems, "usage_period_start")
    end = _exclusive_end(start, _time(get, problems, "usage_period_end"))
    problems.add(end <= start, "time_order", "usage_period_end is not after usage_period_start")
    values = {}
    for method, column in (("location", "lbm"), ("market", "mbm")):
        raw = _number(get, problems, f"total_{column}_emissions_value")
        factor = _unit(get, problems, f"total_{column}_emissions_unit", raw.notna())
        values[method] = raw * factor
    _need_value(problems, values, _AWS_VALUES)
    return {
        "period_start": start,
        "period_end": end,
        "account_id": get("usage_account_id").fillna(get("payer_account_id")),
        "region_id": get("region_code").str.lower(),
        "service": get("product_code"),
        "co2e_location_kg": values["location"],
        "co2e_market_kg": values["market"],
        "model_version": get("model_version"),
    }


def _gcp(get: Getter, problems: RowProblems) -> dict[str, pd.Series]:
    month = get("usage_month").str.replace(r"^(\d{4})-?(\d{2})$", r"\1-\2-01", regex=True)
    when, bad = parse_time(month)
    problems.add(bad, "timestamp", "usage_month is not a date: " + get("usage_month").fillna(""))
    problems.add(when.isna(), "required_value", "usage_month is empty")
    start = when.dt.normalize() - pd.to_timedelta(when.dt.day - 1, unit="D")
    scope1, scope3 = (_number(get, problems, f"{_GCP_SCOPES}.scope{n}") for n in (1, 3))
    values = {}
    for method in ("location", "market"):
        total = _number(get, problems, f"{_GCP_TOTAL}.{method}_based")
        scope2 = _number(get, problems, f"{_GCP_SCOPES}.scope2.{method}_based")
        values[method] = total.fillna(scope1 + scope2 + scope3)
    _need_value(problems, values, (f"{_GCP_TOTAL}.location_based", f"{_GCP_TOTAL}.market_based"))
    return {
        "period_start": start,
        "period_end": start + pd.DateOffset(months=1),
        "account_id": get("project.id")
        .fillna(get("project.number"))
        .fillna(get("billing_account_id")),
        "region_id": get("location.region").str.lower(),
        "service": get("service.description").fillna(get("service.id")),
        "co2e_location_kg": values["location"],
        "co2e_market_kg": values["market"],
        "model_version": get("carbon_model_version"),
    }


def _getter(records: pd.DataFrame, columns: list[str], problems: RowProblems) -> Getter:
    """Text by dotted path: a flattened column `a.b.c`, or a key inside a JSON record column."""
    col = column_lookup(columns)
    parsed: dict[str, pd.Series] = {}

    def record(head: str) -> pd.Series:
        if head not in parsed:
            cells = text(records, col[normalise_name(head)]).map(_json_object)
            bad = cells.map(lambda c: c is _BAD)
            problems.add(bad, "record", f"{head} is not a JSON object")
            parsed[head] = cells.where(~bad, None)
        return parsed[head]

    def get(path: str) -> pd.Series:
        parts = path.split(".")
        flat = col.get(normalise_name(path))
        if flat is None:
            for cut in range(len(parts) - 1, 0, -1):
                head = ".".join(parts[:cut])
                if normalise_name(head) in col:
                    keys = parts[cut:]
                    return record(head).map(lambda r, keys=keys: _leaf(r, keys)).astype(object)
        return text(records, flat)

    return get


def _json_object(cell: str | None) -> Any:
    if cell is None:
        return None
    try:
        value = json.loads(cell)
    except (json.JSONDecodeError, RecursionError):
        return _BAD
    return value if isinstance(value, dict) else _BAD


def _leaf(value: Any, keys: list[str]) -> str | None:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dict | list | bool):
        return json.dumps(value)  # not a number: quarantined by whoever needs one
    clean = str(value).strip()
    return None if clean.lower() in NULL_TEXT else clean


def _number(get: Getter, problems: RowProblems, column: str) -> pd.Series:
    raw = get(column)
    values, bad = parse_decimal(raw)
    problems.add(bad | np.isinf(values), "number", f"{column} is not a number: " + raw.fillna(""))
    return values.where(np.isfinite(values))


def _unit(get: Getter, problems: RowProblems, column: str, used: pd.Series) -> pd.Series:
    """kg per unit of the unit column (empty → the documented MTCO2e); unknown → quarantine."""
    raw = get(column)
    key = raw.map(lambda u: re.sub(r"[\s_.\-]", "", u.lower()) if isinstance(u, str) else "mtco2e")
    factor = key.map(_KG_PER_UNIT).astype("float64")
    reason = f"{column} is not a known unit (MTCO2e, kgCO2e or lbCO2e): " + raw.fillna("")
    problems.add(factor.isna() & used, "unit", reason)
    return factor


def _time(get: Getter, problems: RowProblems, column: str) -> pd.Series:
    values, bad = parse_time(get(column))
    problems.add(bad, "timestamp", f"{column} is not a valid time: " + get(column).fillna(""))
    problems.add(values.isna(), "required_value", f"{column} is empty")
    return values


def _exclusive_end(start: pd.Series, end: pd.Series) -> pd.Series:
    """An inclusive end (23:59:59, or a month's last day for a period from the 1st) → exclusive."""
    end = end.where(
        (end - end.dt.normalize()) != pd.Timedelta("23:59:59"), end + pd.Timedelta(1, "s")
    )
    next_day = end + pd.Timedelta(days=1)
    inclusive = (end == end.dt.normalize()) & (next_day.dt.day == 1) & (start.dt.day == 1)
    return end.where(~(inclusive & (end > start)), next_day)


def _need_value(problems: RowProblems, values: dict[str, pd.Series], names: tuple) -> None:
    missing = values["location"].isna() & values["market"].isna()
    problems.add(missing, "required_value", f"no emissions value: {' and '.join(names)} are empty")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for column in VENDOR_COLUMNS:
        values = frame[column] if column in frame.columns else pd.Series(None, index=frame.index)
        if column.startswith("period_"):
            out[column] = pd.to_datetime(values, utc=True).astype("datetime64[s, UTC]")
        elif column.startswith("co2e_"):
            out[column] = pd.to_numeric(values, errors="coerce").astype("float64")
        elif column == "line":
            out[column] = values.astype("int64")
        else:
            out[column] = values.astype(object).where(values.notna(), None)
    return out.reset_index(drop=True)
