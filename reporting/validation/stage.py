"""validate_intake: the intake with failing rows moved to quarantine and a record of the checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from reporting.config import Config
from reporting.intake import Intake, merge_intakes, restate
from reporting.schema import CARRIED
from reporting.validation import runlevel
from reporting.validation.carried import carried_by_file
from reporting.validation.run import (
    SUITE_ORDER,
    SUITE_VERSION,
    Validator,
    validate_ledger,
    validate_tables,
)

__all__ = [
    "Streamed",
    "Validator",
    "added_messages",
    "added_suites",
    "validate_intake",
    "validate_ledger",
    "validate_rows",
]


@dataclass(frozen=True)
class Streamed:
    """What the slices of streamed inputs add to the run's checks (reporting/engine.py)."""

    intake: Intake  # their files' counts, quarantine and gate failures (no usage rows)
    runs: int  # usage rows they held after validation (row-count drift)
    latest_end: pd.Timestamp | None  # their latest ended_at (freshness)
    suites: list[dict[str, Any]]  # their suites' records, added up per suite
    gate: list[str]  # their suites' gate failures
    warnings: list[str] = field(default_factory=list)  # their suites' warnings
    factors: list[Any] = field(default_factory=list)  # the factors their rows reference
    folder: Path | None = None  # where their ledger rows are staged (None: no slice)
    ledger_rows: int = 0
    attributed_runs: int = 0
    facility_energy_kwh: float = 0.0


def validate_rows(
    intake: Intake, validator: Validator, whole_run: bool = True
) -> tuple[Intake, dict[str, Any]]:
    """Row-level suites only: failing rows moved to quarantine, the files' counts restated.
    Used per slice (`whole_run=False`: its charges are empty and validate_intake runs their
    suite); `validate_intake` adds the run-level checks and the carried estimates."""
    checked = validate_tables(
        validator, intake.usage, intake.charges, intake.vendor_carbon, intake.telemetry,
        charges_suite=whole_run or not intake.charges.empty,
    )  # fmt: skip
    restated = restate(intake, checked.usage, checked.charges, checked.quarantine, checked.gate)
    return restated, {"suites": checked.suites, "warnings": checked.warnings, "gate": checked.gate,
                      "charges": checked.charges}  # fmt: skip


def validate_intake(
    intake: Intake, config: Config, run_date: date, validator: Validator, root: Path | None = None,
    streamed: Streamed | None = None,
) -> tuple[Intake, dict[str, Any]]:  # fmt: skip
    """Row-level suites (quarantine), run-level checks (warnings); `root` holds the drift
    history (None: read it if given elsewhere, never write — the `validate` verb). `streamed`:
    what the slices of streamed inputs, validated one by one, add to the counts and checks."""
    restated, checked = validate_rows(intake, validator)
    settings = config.validation
    counts = {"usage": len(restated.usage) + (streamed.runs if streamed else 0),
              "charges": len(restated.charges)}  # fmt: skip
    ends = restated.usage[["ended_at"]]
    if streamed is not None and streamed.latest_end is not None:
        ends = pd.concat([ends, pd.DataFrame({"ended_at": [streamed.latest_end]})], ignore_index=True)  # fmt: skip
    history = runlevel.read_json(root, runlevel.HISTORY_FILE) if root else {}
    totals = runlevel.billing_totals(checked["charges"], f"{config.billing.cost_basis}_cost")
    warnings = [
        *added_messages(streamed.warnings if streamed else [], checked["warnings"]),
        *runlevel.drift_warnings(
            counts, history, run_date, settings.drift_history_nights, settings.drift_tolerance_ratio
        ),
        *runlevel.freshness_warnings(ends, restated.charges, run_date, settings.max_input_lag_days),
        *runlevel.sums_warnings(
            totals,
            runlevel.read_json(root, runlevel.TOTALS_FILE) if root else {},
            settings.sum_min_ratio,
            settings.sum_max_ratio,
        ),
    ]
    record = {
        "suite_version": SUITE_VERSION,
        "run_date": run_date.isoformat(),
        "suites": added_suites(checked["suites"], streamed.suites if streamed else []),
        "warnings": warnings,
        "gate": added_messages(streamed.gate if streamed else [], checked["gate"]),
        "billing_totals": totals,  # kept in the history by the run once the ledger is written
        "counts": counts,
    }
    if streamed is not None:
        restated = merge_intakes(restated, [streamed.intake])
        restated = replace(
            restated, gate_failures=[*restated.gate_failures, *added_messages(streamed.gate)]
        )
    return with_carried(restated, config), record


def added_suites(*records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Suite records of several batches, one per suite in the order a whole run gives them:
    rows and failing rows added up."""
    by_suite: dict[str, dict[str, Any]] = {}
    for record in (r for batch in records for r in batch):
        seen = by_suite.get(record["suite"])
        if seen is None:
            by_suite[record["suite"]] = {**record, "failed": [dict(f) for f in record["failed"]]}
            continue
        seen["rows_quarantined"] += record["rows_quarantined"]
        failed = {f["check"]: f for f in seen["failed"]}
        for failure in record["failed"]:
            if failure["check"] in failed:
                failed[failure["check"]]["rows"] += failure["rows"]
            else:
                seen["failed"].append(dict(failure))
    order = {name: i for i, name in enumerate(SUITE_ORDER)}
    return sorted(by_suite.values(), key=lambda r: order.get(r["suite"], len(order)))


_ROWS_FAIL = re.compile(r"^(?P<suite>[^:]+): (?P<rows>\d+) rows fail (?P<rest>.*?), first at (?P<first>.*)$", re.DOTALL)  # fmt: skip


def added_messages(*batches: list[str]) -> list[str]:
    """Failure lines of several batches (in input order) as one run gives them: the rows of the
    same rule added up, the first failing row named from the first batch that had one."""
    merged: dict[tuple[str, ...], list[Any]] = {}
    for line in (line for batch in batches for line in batch):
        match = _ROWS_FAIL.match(line)
        if match is None:
            merged.setdefault((line,), [line])
            continue
        key = (match["suite"], match["rest"])
        if key in merged:
            merged[key][1] += int(match["rows"])
        else:
            merged[key] = [match, int(match["rows"])]
    return [
        item[0] if len(item) == 1 else
        f"{item[0]['suite']}: {item[1]} rows fail {item[0]['rest']}, first at {item[0]['first']}"
        for item in merged.values()
    ]  # fmt: skip


def with_carried(intake: Intake, config: Config) -> Intake:
    """Each file's record gains what its quarantined rows would have carried (estimates; billing
    lines scaled from the accepted `charges`); the quarantine loses the `carried` column
    readers attach, so what is stored keeps its shape."""
    carried = carried_by_file(intake.quarantine, config, intake.charges)
    files = {
        name: {**record, "quarantine_carried": carried[name]} if name in carried else record
        for name, record in intake.files.items()
    }
    quarantine = intake.quarantine.drop(columns=CARRIED, errors="ignore")
    return replace(intake, files=files, quarantine=quarantine)
