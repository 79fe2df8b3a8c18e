"""Run-level expectations: they look at a run as a whole and only ever warn (never quarantine).

- drift: a table's row count this run, against the trailing median of earlier nights (kept in
  the ledger folder, `_validation_history.json`, one entry per run date, rewritten atomically);
- freshness: the inputs reach the run date — the latest `ended_at` (usage) and
  `charge_period_end` (charges) are no older than run date − `max_input_lag_days` (billing
  exports lag a day or two behind usage; the default, 2 days, allows for that).

Both are skipped for a table with no rows this run (nothing new came in: no drift to measure).
"""

from __future__ import annotations

import json
import os
import statistics
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd

HISTORY_FILE = "_validation_history.json"
RESULTS_FILE = "_validation.json"


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
        # a relative link, only when this output folder holds the docs (never their content)
        "data_docs": f"{docs_index.parent.name}/{docs_index.name}" if docs_index.exists() else None,
    }
