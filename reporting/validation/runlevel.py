"""Run-level expectations: they look at a run as a whole and only ever warn (never quarantine).

- drift: a table's row count this run, against the trailing median of earlier nights (kept in
  the ledger folder, `_validation_history.json`, one entry per run date, rewritten atomically);
- freshness: the inputs reach the run date — the latest `ended_at` (usage) and
  `charge_period_end` (charges) are no older than run date − `max_input_lag_days` (billing
  exports lag a day or two behind usage; the default, 2 days, allows for that);
- sums: each billing period's charges total per currency, against the previous period's, within
  [`sum_min_ratio`, `sum_max_ratio`] × (see `sums_warnings`; history in `_billing_totals.json`).

All are skipped for a table with no rows this run (nothing new came in: no drift to measure).
"""

from __future__ import annotations

import json
import os
import statistics
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from reporting.config import VENDOR_CARBON_KINDS
from reporting.ledger import read_intake

HISTORY_FILE = "_validation_history.json"
RESULTS_FILE = "_validation.json"
TOTALS_FILE = "_billing_totals.json"
# A period covered for less than a week is not compared: a few days of a month say too little
# about its total (weekends, month-start purchases and taxes land unevenly).
MIN_DAYS_TO_COMPARE = 7


def drift_warnings(
    counts: dict[str, int],
    history: dict[str, dict[str, int]],
    run_date: date,
    nights: int,
    tolerance_ratio: float,
) -> list[str]:
    """Tables whose row count is further than tolerance from the median of the last nights."""
    earlier = [history[d] for d in sorted(history) if d < run_date.isoformat()][-nights:]
    warnings = []
    for table, count in counts.items():
        past = [night[table] for night in earlier if night.get(table)]
        if not past or not count:
            continue
        median = statistics.median(past)
        if abs(count - median) > tolerance_ratio * median:
            warnings.append(
                f"{table}: {count:,} rows this run, {count / median - 1:+.0%} from the median "
                f"of {median:,.0f} over the previous {len(past)} nights (tolerance "
                f"±{tolerance_ratio:.0%})"
            )
    return warnings


def freshness_warnings(
    usage: pd.DataFrame, charges: pd.DataFrame, run_date: date, max_lag_days: int
) -> list[str]:
    """Tables whose latest timestamp does not reach run date − max_lag_days."""
    cutoff = datetime.combine(run_date - timedelta(days=max_lag_days), time(), UTC)
    warnings = []
    for table, frame, column in (
        ("usage", usage, "ended_at"),
        ("charges", charges, "charge_period_end"),
    ):
        latest = frame[column].max() if not frame.empty else None
        if latest is None or pd.isna(latest):
            continue
        if latest < cutoff:
            warnings.append(
                f"{table}: the latest {column} is {latest:%Y-%m-%d %H:%M} UTC, older than "
                f"{cutoff:%Y-%m-%d} (run date {run_date} − {max_lag_days} days): an input may be "
                "stale or missing"
            )
    return warnings


def billing_totals(charges: pd.DataFrame, cost_column: str) -> dict[str, dict[str, Any]]:
    """This run's charges per family|billing account|month (the restatement unit: a re-read
    export replaces its billing periods whole): cost per currency and the latest period end."""
    if charges.empty:
        return {}
    month = charges["billing_period_start"].fillna(charges["charge_period_start"])
    frame = charges.assign(
        _key=charges["family"] + "|" + charges["billing_account_id"].fillna("") + "|"
        + month.dt.strftime("%Y-%m"),
    )  # fmt: skip
    totals = {}
    for key, rows in frame.groupby("_key", sort=True):
        cost = rows.groupby("currency")[cost_column].sum()
        totals[str(key)] = {
            "cost": {str(c): round(float(v), 6) for c, v in cost.sort_index().items()},
            "covered_until": rows["charge_period_end"].max().isoformat(),
        }
    return totals


def sums_warnings(
    now: dict[str, dict[str, Any]], history: dict[str, dict[str, Any]], low: float, high: float
) -> list[str]:
    """Billing periods (months) of this run whose total per currency lies outside
    [low, high] × the previous month's total.

    A month still in progress is compared pro rata: each total is divided by the share of its
    month that its lines cover so far (up to the latest charge period end), so the first half
    of a month is held to half of the month before. Months covered for less than a week, and
    months whose previous month is unknown in that currency, are not compared."""
    merged = {**history, **now}
    warnings = []
    for currency, month in sorted(
        {(c, k.rsplit("|", 1)[1]) for k, v in now.items() for c in v["cost"]}
    ):
        total, share, days = _month_total(merged, currency, month)
        before = _previous_month(month)
        previous, previous_share, previous_days = _month_total(merged, currency, before)
        if min(days, previous_days) < MIN_DAYS_TO_COMPARE or previous == 0:
            continue
        expected = previous / previous_share * share
        ratio = total / expected
        if not low <= ratio <= high:
            pro_rata = "" if share >= 1 else f", pro rata for the {days:.0f} days covered so far"
            warnings.append(
                f"charges: the {month} total of {currency} {total:,.2f} is {ratio:.2f}× the "
                f"{currency} {previous:,.2f} of {before}{pro_rata} (expected "
                f"{low:g}×–{high:g}×): a billing export may be missing, partial or doubled"
            )
    return warnings


def _month_total(
    totals: dict[str, dict[str, Any]], currency: str, month: str
) -> tuple[float, float, float]:
    """(total, share of the month covered, days covered) of one currency and month."""
    rows = [v for k, v in totals.items() if k.endswith("|" + month) and currency in v["cost"]]
    if not rows:
        return 0.0, 0.0, 0.0
    start = datetime.fromisoformat(month + "-01").replace(tzinfo=UTC)
    end = datetime.fromisoformat(_next_month(month) + "-01").replace(tzinfo=UTC)
    covered = max(datetime.fromisoformat(v["covered_until"]) for v in rows)
    days = (min(covered, end) - start).total_seconds() / 86_400
    share = max(0.0, min(1.0, days / ((end - start).total_seconds() / 86_400)))
    return sum(v["cost"][currency] for v in rows), share, days


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def _previous_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}"


def record_totals(root: Path, now: dict[str, dict[str, Any]]) -> None:
    """Keep this run's billing totals (a re-read billing period replaces its entry)."""
    if now:
        write_json(root, TOTALS_FILE, {**read_json(root, TOTALS_FILE), **now})


def read_json(root: Path, name: str) -> dict:  # type: ignore[type-arg]
    path = root / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_json(root: Path, name: str, value: dict) -> None:  # type: ignore[type-arg]
    """Atomic: written beside, then renamed over (as the ledger's other state files)."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.tmp"
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, root / name)


def record_counts(root: Path, run_date: date, counts: dict[str, int]) -> None:
    """Keep this run date's row counts in the history (a rerun of a night replaces its entry)."""
    history = read_json(root, HISTORY_FILE)
    history[run_date.isoformat()] = counts
    write_json(root, HISTORY_FILE, dict(sorted(history.items())[-366:]))


def summary_block(root: Path, quarantine: pd.DataFrame, docs_index: Path) -> dict:  # type: ignore[type-arg]
    """summary.json's `validation`: the last validating run's record (suites, failures,
    warnings) and the rows in the ledger's quarantine put there by an expectation."""
    record = read_json(root, RESULTS_FILE)
    suites = record.get("suites", [])
    return {
        "suite_version": record.get("suite_version"),
        "validated_on": record.get("run_date"),  # the run date of the last run that read inputs
        "suites": [s["suite"] for s in suites],
        "expectations_evaluated": sum(s["expectations"] for s in suites),
        "expectations_failed": sum(len(s["failed"]) for s in suites),
        "failed": [{"suite": s["suite"], **f} for s in suites for f in s["failed"]],
        "rows_quarantined": int(quarantine["check"].astype(str).str.startswith("expect_").sum()),
        "warnings": record.get("warnings", []),
        "gate": record.get("gate", []),
        "quarantined_carried": carried_block(read_intake(root)),
        # a relative link, only when this output folder holds the docs (never their content)
        "data_docs": f"{docs_index.parent.name}/{docs_index.name}" if docs_index.exists() else None,
    }


def carried_block(files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the quarantined rows of every recorded file would have carried (estimates, see
    carried.py), for runs (cluster and pod usage) and billing lines apart. Providers' own carbon
    rows and serving-volume rows carry no energy or cost of ours and are left out. Billing
    lines whose energy could not
    be estimated (no readable cost, or no accepted line to scale it from) are counted in
    `energy_not_estimable`."""
    runs: dict[str, Any] = {"copies": 0, "parts": 0, "estimated": 0, "unknown": 0,
                            "facility_energy_kwh": 0.0, "co2e_location_kg": 0.0, "cost": {}}  # fmt: skip
    billing: dict[str, Any] = {"copies": 0, "estimated": 0, "unknown": 0, "cost": {},
                               "facility_energy_kwh": 0.0, "co2e_location_kg": 0.0,
                               "energy_basis": {"service": 0, "provider": 0, "file": 0}}  # fmt: skip
    for record in files.values():
        carried = record.get("quarantine_carried")
        if not carried or record.get("kind") in (*VENDOR_CARBON_KINDS, "serving_volume"):
            continue
        _add(billing if "cost_in" in record else runs, carried)
    runs["cost"] = dict(sorted(runs["cost"].items()))
    billing["cost"] = dict(sorted(billing["cost"].items()))
    billing["energy_not_estimable"] = (
        billing["estimated"] + billing["unknown"] - sum(billing["energy_basis"].values())
    )
    return {"estimate": True, "runs": runs, "billing": billing}


# The block's sums and the per-file record key each adds up.
_SUMMED = {"facility_energy_kwh": "energy_kwh", "co2e_location_kg": "co2e_kg"}


def _add(target: dict[str, Any], carried: dict[str, Any]) -> None:
    """One file's estimates into the block (records written before a key existed lack it)."""
    for currency, amount in carried["cost"].items():
        target["cost"][currency] = round(target["cost"].get(currency, 0.0) + amount, 6)
    for basis, count in carried.get("energy_basis", {}).items():
        if "energy_basis" in target:
            target["energy_basis"][basis] = target["energy_basis"].get(basis, 0) + count
    for key, value in target.items():
        if key in _SUMMED:
            target[key] = round(value + carried.get(_SUMMED[key], 0.0), 6)
        elif isinstance(value, int):
            target[key] = value + carried.get(key, 0)
