"""validate_intake: the intake with failing rows moved to quarantine and a record of the checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from reporting.config import Config
from reporting.intake import Intake, restate
from reporting.schema import CARRIED
from reporting.validation import runlevel
from reporting.validation.carried import carried_by_file
from reporting.validation.run import SUITE_VERSION, Validator, validate_ledger, validate_tables

__all__ = ["Validator", "validate_intake", "validate_ledger"]


def validate_intake(
    intake: Intake, config: Config, run_date: date, validator: Validator, root: Path | None = None
) -> tuple[Intake, dict[str, Any]]:
    """Row-level suites (quarantine), run-level checks (warnings); `root` holds the drift
    history (None: read it if given elsewhere, never write — the `validate` verb)."""
    checked = validate_tables(
        validator, intake.usage, intake.charges, intake.vendor_carbon, intake.telemetry
    )
    settings = config.validation
    counts = {"usage": len(intake.usage), "charges": len(intake.charges)}
    history = runlevel.read_json(root, runlevel.HISTORY_FILE) if root else {}
    totals = runlevel.billing_totals(checked.charges, f"{config.billing.cost_basis}_cost")
    warnings = [
        *checked.warnings,
        *runlevel.drift_warnings(
            counts, history, run_date, settings.drift_history_nights, settings.drift_tolerance_ratio
        ),
        *runlevel.freshness_warnings(
            intake.usage, intake.charges, run_date, settings.max_input_lag_days
        ),
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
        "suites": checked.suites,
        "warnings": warnings,
        "gate": checked.gate,
        "billing_totals": totals,  # kept in the history by the run once the ledger is written
    }
    restated = restate(intake, checked.usage, checked.charges, checked.quarantine, checked.gate)
    return with_carried(restated, config), record


def with_carried(intake: Intake, config: Config) -> Intake:
    """Each file's record gains what its quarantined rows would have carried (estimates; billing
    lines scaled from the accepted `charges`); the quarantine loses the `carried` column readers attach, so what is stored keeps its shape."""
    carried = carried_by_file(intake.quarantine, config, intake.charges)
    files = {
        name: {**record, "quarantine_carried": carried[name]} if name in carried else record
        for name, record in intake.files.items()
    }
    quarantine = intake.quarantine.drop(columns=CARRIED, errors="ignore")
    return replace(intake, files=files, quarantine=quarantine)
