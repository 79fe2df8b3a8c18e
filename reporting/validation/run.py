"""Run the expectation suites on the canonical tables and turn their results into quarantine rows,
warnings and gate failures.

One Great Expectations context per run (it is slow to build); every suite validates a whole
DataFrame batch with `result_format=COMPLETE`, whose `unexpected_index_list` names the failing
rows. A row failing several expectations is quarantined once, under the first one in GX's
result order.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
import pandas as pd

from reporting.schema import empty_quarantine, quarantine_frame
from reporting.validation.suites import J_PER_KWH, SUITE_VERSION, SUITES, build_suite

log = logging.getLogger("reporting")


@dataclass
class Failure:
    """One failed expectation of one suite."""

    check: str  # expectation type[:column], the quarantine `check`
    rule: str  # human wording
    on_failure: str  # quarantine | warn | gate
    index: list[Any]  # failing row labels ([] for table-level failures)


@dataclass
class SuiteResult:
    suite: str
    evaluated: int
    failures: list[Failure] = field(default_factory=list)

    def as_dict(self, rows_quarantined: int) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "expectations": self.evaluated,
            "failed": [
                {"check": f.check, "rule": f.rule, "on_failure": f.on_failure, "rows": len(f.index)}
                for f in self.failures
            ],
            "rows_quarantined": rows_quarantined,
        }


class Validator:
    """Holds the run's one GX context and its suites; `check(name, frame)` runs one suite."""

    def __init__(self) -> None:
        self.context = gx.get_context(mode="ephemeral")
        self.context.delete_data_docs_site("local_site")  # ours is added by write_data_docs
        self.context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(
            globally=False
        )
        source = self.context.data_sources.add_pandas("greenops")
        self.batches = {
            name: source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
            for name in SUITES
        }
        self.suites = {name: self.context.suites.add(build_suite(name)) for name in SUITES}
        self.results: dict[str, Any] = {}  # suite → GX validation result (for Data Docs)

    def check(self, name: str, frame: pd.DataFrame) -> SuiteResult:
        batch = self.batches[name].get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(self.suites[name], result_format={"result_format": "COMPLETE"})
        self.results[name] = result
        outcome = SuiteResult(name, int(result.statistics["evaluated_expectations"]))
        for item in result.results:
            if item.success:
                continue
            config = item.expectation_config
            column = config.kwargs.get("column") or config.kwargs.get("column_A")
            outcome.failures.append(
                Failure(
                    check=f"{config.type}:{column}" if column else config.type,
                    rule=str(config.meta.get("rule", config.type)),
                    on_failure=str(config.meta.get("on_failure", "gate")),
                    index=list(item.result.get("unexpected_index_list") or []),
                )
            )
        return outcome


def usage_view(usage: pd.DataFrame) -> pd.DataFrame:
    """The usage table plus the derived columns the suite checks (see suites.py)."""
    nodes = usage["n_nodes"].where(usage["n_nodes"] > 0)
    seconds = usage["duration_s"].where(usage["duration_s"] > 0)
    return usage.assign(
        gpus_per_node=usage["n_gpus"] / nodes,
        measured_node_power_w=usage["measured_energy_kwh"] * J_PER_KWH / seconds / nodes,
    )


def reasons(frame: pd.DataFrame, outcome: SuiteResult, action: str) -> dict[Any, tuple[str, str]]:
    """Row label → (check, reason) of the failures with this action; first failure wins.

    For uniqueness the first occurrence (file order) is kept: only the later copies fail."""
    found: dict[Any, tuple[str, str]] = {}
    for failure in outcome.failures:
        if failure.on_failure != action or not failure.index:
            continue
        rows = frame.loc[failure.index]
        column = failure.check.partition(":")[2]
        if "unique" in failure.check:
            rows = rows[rows[column].duplicated(keep="first")]
        for label, row in rows.iterrows():
            found.setdefault(label, (failure.check, f"{failure.rule}: {_values(row, failure)}"))
    return found


def _values(row: pd.Series, failure: Failure) -> str:
    column = failure.check.partition(":")[2]
    if failure.check.startswith("expect_column_pair"):
        other = "started_at" if column == "ended_at" else "charge_period_start"
        return f"{column}={row[column]}, {other}={row[other]}"
    value = row[column]
    if column in ("gpus_per_node", "measured_node_power_w"):
        return f"{column}={value:.1f} (n_gpus={row['n_gpus']}, n_nodes={row['n_nodes']})"
    return f"{column}={value!r}" if isinstance(value, str) else f"{column}={value}"


def usage_quarantine(usage: pd.DataFrame, found: dict[Any, tuple[str, str]]) -> pd.DataFrame:
    """A quarantined run counts every line merged into it (job and step lines), as the
    reader's `duplicate` does, so rows read = accepted + quarantined still holds."""
    if not found:
        return empty_quarantine()
    labels = list(found)
    repeats = usage.loc[labels, "lines_merged"].astype(int).clip(lower=1)
    rows = usage.loc[labels].loc[lambda f: f.index.repeat(repeats.loc[f.index])]
    return quarantine_frame(
        source_file=rows["source_file"].tolist(),
        line=rows["line"].tolist(),
        raw=rows["raw"].tolist(),
        check=[found[label][0] for label in rows.index],
        reason=[found[label][1] for label in rows.index],
    )


def charges_quarantine(charges: pd.DataFrame, found: dict[Any, tuple[str, str]]) -> pd.DataFrame:
    """Charges keep no raw text: the record is the canonical row as JSON (line points to the file)."""
    if not found:
        return empty_quarantine()
    rows = charges.loc[list(found)]
    return quarantine_frame(
        source_file=rows["source_file"].tolist(),
        line=rows["line"].tolist(),
        raw=[json.dumps(r, default=str, sort_keys=True) for r in rows.to_dict("records")],
        check=[found[label][0] for label in rows.index],
        reason=[found[label][1] for label in rows.index],
    )


def messages(frame: pd.DataFrame, outcome: SuiteResult, action: str) -> list[str]:
    """One line per failed expectation with this action: rule, row count, first row named."""
    lines = []
    for failure in outcome.failures:
        if failure.on_failure != action:
            continue
        if not failure.index:
            lines.append(f"{outcome.suite}: {failure.rule} failed ({failure.check})")
            continue
        first = frame.loc[failure.index[0]]
        where = f"{first.get('source_file')}:{first.get('line')}"
        lines.append(
            f"{outcome.suite}: {len(failure.index)} rows fail {failure.rule} ({failure.check}), "
            f"first at {where}: {_values(first, failure)}"
        )
    return lines


@dataclass
class Validated:
    usage: pd.DataFrame
    charges: pd.DataFrame
    quarantine: pd.DataFrame  # added by validation
    warnings: list[str]
    gate: list[str]
    suites: list[dict[str, Any]]


def validate_tables(validator: Validator, usage: pd.DataFrame, charges: pd.DataFrame) -> Validated:
    """Validate usage and charges; return the rows that pass and the quarantine of the rest."""
    view = usage_view(usage)
    on_usage = validator.check("usage", view)
    bad_usage = reasons(view, on_usage, "quarantine")
    on_charges = validator.check("charges", charges)
    bad_charges = reasons(charges, on_charges, "quarantine")
    quarantine = pd.concat(
        [usage_quarantine(usage, bad_usage), charges_quarantine(charges, bad_charges)],
        ignore_index=True,
    )
    warnings = messages(view, on_usage, "warn") + messages(charges, on_charges, "warn")
    gate = messages(view, on_usage, "gate") + messages(charges, on_charges, "gate")
    log.info(
        "validated %s runs and %s billing lines: %s failed expectations, %s rows quarantined",
        len(usage), len(charges), len(on_usage.failures) + len(on_charges.failures),
        len(quarantine),
    )  # fmt: skip
    return Validated(
        usage.drop(index=list(bad_usage)),
        charges.drop(index=list(bad_charges)),
        quarantine,
        warnings,
        gate,
        [
            on_usage.as_dict(len(usage_quarantine(usage, bad_usage))),
            on_charges.as_dict(len(bad_charges)),
        ],
    )


def validate_ledger(validator: Validator, rows: pd.DataFrame) -> tuple[list[str], dict[str, Any]]:
    """Ledger rows before they are written: gate messages and the suite's record."""
    outcome = validator.check("ledger", rows.reset_index(drop=True))
    return messages(rows.reset_index(drop=True), outcome, "gate"), outcome.as_dict(0)


__all__ = ["SUITE_VERSION", "Validated", "Validator", "validate_ledger", "validate_tables"]
