"""Ingest of billing inputs: read, account for every row, and refuse double-counting exports.

Per file the intake records rows read/accepted/quarantined and the cost it carried per
currency (billed and effective), so the report can reconcile what was attributed to what came
in. Two exports of the same account and month in different shapes (a legacy CUR and a CUR 2.0,
or Azure actual and amortised views) would count the same spend twice: that is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reporting.config import Input
from reporting.errors import InputError
from reporting.ingest.billing.common import map_distinct
from reporting.ingest.billing.dispatch import BillingRead, read_billing
from reporting.ingest.limits import Limits


def read_billing_input(
    paths: dict[str, Path], spec: Input
) -> tuple[BillingRead, dict[str, dict[str, Any]]]:
    """Read one billing input; return the read and per-file intake statistics."""
    limits = Limits(spec.max_field_bytes, spec.max_rows)
    read = read_billing(paths, spec.kind, day_first=spec.day_first, limits=limits)
    files = {}
    for name, rows_read in read.rows_read.items():
        mine = read.charges[read.charges["source_file"] == name]
        quarantined = int((read.quarantine["source_file"] == name).sum())
        if len(mine) + quarantined != rows_read:  # conservation: a bug if it fails
            raise AssertionError(f"{name}: {rows_read} read != {len(mine)} + {quarantined}")
        files[name] = {
            "source_file": name,
            "kind": read.families.get(name, spec.kind),
            "view": read.views.get(name),
            "rows_read": rows_read,
            "rows_accepted": len(mine),
            "rows_quarantined": quarantined,
            "runs": len(mine),
            "not_attributed": {},
            "cost_in": cost_by_currency(mine),
            "billing_periods": sorted(set(billing_period_keys(mine))),
        }
    return read, files


def billing_period_keys(charges: pd.DataFrame) -> pd.Series:
    """Restatement key of each line: family|billing account|billing period start. A re-issued
    export replaces every ledger row of the keys it carries (see ledger.write_ledger)."""
    start = formatted(charges["billing_period_start"], "%Y-%m-%d").fillna("")
    return charges["family"] + "|" + charges["billing_account_id"].fillna("") + "|" + start


def formatted(times: pd.Series, form: str) -> pd.Series:
    """`times.dt.strftime(form)` (missing → None), each distinct time formatted once: millions
    of lines share a few billing periods and months."""
    return map_distinct(times, lambda t: t.strftime(form) if pd.notna(t) else None)


def superseded_files(
    old: dict[str, dict[str, Any]], read_now: dict[str, Any], periods: set[str]
) -> set[str]:
    """Billing files recorded earlier whose every billing period this run restated: they hold
    no ledger rows any more, so their intake records (and reconciliation lines) go too."""
    return {
        name
        for name, record in old.items()
        if name not in read_now
        and record.get("billing_periods")
        and set(record["billing_periods"]) <= periods
    }


def cost_by_currency(charges: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Billed and effective cost per currency, as read (before any attribution)."""
    sums = charges.groupby("currency")[["billed_cost", "effective_cost"]].sum()
    return {
        str(currency): {
            "billed": float(row["billed_cost"]),
            "effective": float(row["effective_cost"]),
        }
        for currency, row in sums.sort_index().iterrows()
    }


def refuse_double_views(charges: pd.DataFrame, views: dict[str, str | None]) -> None:
    """A billing account's month must come in one shape only (see the module docstring)."""
    if charges.empty:
        return
    month = formatted(charges["billing_period_start"].fillna(charges["charge_period_start"]), "%Y-%m")  # fmt: skip
    frame = pd.DataFrame({
        "family": charges["family"], "account": charges["billing_account_id"].fillna(""),
        "sub": charges["sub_account_id"].fillna(""), "month": month,
        "view": charges["source_file"].map(views), "file": charges["source_file"],
    })  # fmt: skip
    frame = frame[frame["family"].isin(["aws_cur", "azure_cost"])]
    keys = ["family", "account", "month"]
    keys += ["sub"] if (frame["family"] == "azure_cost").any() else []
    views = frame.groupby(keys)["view"].nunique()
    clash = views[views > 1]
    if clash.empty:
        return
    key = clash.index[0]
    rows = frame.set_index(keys).loc[key]
    files = sorted(set(rows["file"]))
    shapes = sorted(set(rows["view"]))
    raise InputError(
        f"{', '.join(files)}: the same billing account and month {key[2]} come as "
        f"both {' and '.join(shapes)} exports; ingesting both would count the spend twice. "
        "Keep one of them in the input's path."
    )
