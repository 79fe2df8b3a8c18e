"""validate_intake: the intake with failing rows moved to quarantine and a record of the checks."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from reporting.config import Config
from reporting.intake import Intake, restate
from reporting.validation import runlevel
from reporting.validation.run import SUITE_VERSION, Validator, validate_ledger, validate_tables

__all__ = ["Validator", "validate_intake", "validate_ledger"]


def validate_intake(
    intake: Intake, config: Config, run_date: date, validator: Validator, root: Path | None = None
) -> tuple[Intake, dict[str, Any]]:
    """Row-level suites (quarantine), run-level checks (warnings); `root` holds the drift
    history (None: read it if given elsewhere, never write — the `validate` verb)."""
    checked = validate_tables(validator, intake.usage, intake.charges)
    settings = config.validation
    counts = {"usage": len(intake.usage), "charges": len(intake.charges)}
    history = runlevel.read_json(root, runlevel.HISTORY_FILE) if root else {}
    warnings = [
        *checked.warnings,
        *runlevel.drift_warnings(
            counts, history, run_date, settings.drift_history_nights, settings.drift_tolerance_ratio
        ),
        *runlevel.freshness_warnings(
            intake.usage, intake.charges, run_date, settings.max_input_lag_days
        ),
    ]
    record = {
        "suite_version": SUITE_VERSION,
        "run_date": run_date.isoformat(),
        "suites": checked.suites,
        "warnings": warnings,
        "gate": checked.gate,
    }
    restated = restate(intake, checked.usage, checked.charges, checked.quarantine, checked.gate)
    return restated, record
