"""Run the expectation suites on the canonical tables and turn their results into quarantine rows,
warnings and gate failures.

One Great Expectations context per run (it is slow to build); every suite validates a whole
DataFrame batch with `result_format=COMPLETE`, whose `unexpected_index_list` names the failing
rows. Each raw format's suite (formats.py) runs first on its own rows, then the table's suite on
all of them. A row failing several expectations is quarantined once, under the first one.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.validator.v1_validator import Validator as SuiteRunner

from reporting.schema import CARRIED, empty_quarantine, quarantine_frame
from reporting.validation.formats import FORMATS, rows_of
from reporting.validation.suites import J_PER_KWH, SUITE_VERSION, SUITES, build_suite

log = logging.getLogger("reporting")

# The order a run's suite records come in: per table its raw formats' suites, then its own.
SUITE_ORDER = [
    name
    for table in ("usage", "charges", "vendor_carbon", "telemetry", "ledger")
    for name in [*[n for n, f in FORMATS.items() if f.table == table], table]
]


@dataclass
class Failure:
    """One failed expectation of one suite."""

    check: str  # expectation type[:column], the quarantine `check`
    rule: str  # human wording
    on_failure: str  # quarantine | warn | gate
    index: list[Any]  # failing row labels ([] for table-level failures)
    columns: list[str] = field(default_factory=list)  # the columns it looks at


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
        declared = {name: make() for name, make in SUITES.items()}
        declared |= {name: fmt.expectations() for name, fmt in FORMATS.items()}
        self.batches = {
            name: source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")
            for name in declared
        }
        self.suites = {
            name: self.context.suites.add(build_suite(name, expectations))
            for name, expectations in declared.items()
        }
        self.columns = {name: _looked_at(e) for name, e in declared.items()}
        self.results: dict[str, Any] = {}  # suite → GX validation result (for Data Docs)

    def check(self, name: str, frame: pd.DataFrame) -> SuiteResult:
        # GX fingerprints every batch by hashing all of its cells: handing it only the columns
        # the suite looks at (row labels kept) spares it the raw text and the ledger's 70 columns.
        looked_at = frame[[c for c in self.columns[name] if c in frame.columns]]
        # What `batch.validate` and a ValidationDefinition's `run` do inside, without their extra
        # steps: the batch is fetched (and fingerprinted) once, not twice; nothing is stored; the
        # result is the same (meta included).
        result = SuiteRunner(
            batch_definition=self.batches[name],
            batch_parameters={"dataframe": looked_at},
            result_format={"result_format": "COMPLETE"},
        ).validate_expectation_suite(self.suites[name])
        self.results[name] = result
        outcome = SuiteResult(name, int(result.statistics["evaluated_expectations"]))
        for item in result.results:
            if item.success:
                continue
            config = item.expectation_config
            columns = _columns(config.kwargs)
            outcome.failures.append(
                Failure(
                    check=_check_name(config.type, config.kwargs),
                    rule=str(config.meta.get("rule", config.type)),
                    on_failure=str(config.meta.get("on_failure", "gate")),
                    index=list(item.result.get("unexpected_index_list") or []),
                    columns=columns,
                )
            )
        return outcome


def _looked_at(expectations: list[Any]) -> list[str]:
    """The columns a suite's expectations look at, in declaration order."""
    columns = (c for e in expectations for c in _columns(e.configuration.kwargs))
    return list(dict.fromkeys(columns))


def _columns(kwargs: dict[str, Any]) -> list[str]:
    if kwargs.get("column_list"):
        return list(kwargs["column_list"])
    if kwargs.get("column_A"):
        return [kwargs["column_A"], kwargs["column_B"]]
    return [kwargs["column"]] if kwargs.get("column") else []


def _check_name(kind: str, kwargs: dict[str, Any]) -> str:
    """`type:column`; a pair names its first column, a compound key all of them (`a+b`)."""
    column = (
        kwargs.get("column") or kwargs.get("column_A") or "+".join(kwargs.get("column_list") or [])
    )
    return f"{kind}:{column}" if column else kind


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
        if "unique" in failure.check:
            rows = rows.sort_index()
            rows = rows[rows.duplicated(subset=failure.columns, keep="first")]
        for label, row in rows.iterrows():
            reason = f"{outcome.suite} suite: {failure.rule}: {_values(row, failure)}"
            found.setdefault(label, (failure.check, reason))
    return found


def _values(row: pd.Series, failure: Failure) -> str:
    if len(failure.columns) != 1:
        return ", ".join(f"{c}={_show(row[c])}" for c in failure.columns)
    column = failure.columns[0]
    value = row[column]
    if column in ("gpus_per_node", "measured_node_power_w"):
        return f"{column}={value:.1f} (n_gpus={row['n_gpus']}, n_nodes={row['n_nodes']})"
    return f"{column}={_show(value)}"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def usage_quarantine(usage: pd.DataFrame, found: dict[Any, tuple[str, str]]) -> pd.DataFrame:
    """A quarantined run counts every line merged into it (job and step lines), as the
    reader's `duplicate` does, so rows read = accepted + quarantined still holds. The run's
    first line carries the run (for the estimate of what it would have carried), the others
    are marked as parts of it."""
    if not found:
        return empty_quarantine()
    labels = list(found)
    repeats = usage.loc[labels, "lines_merged"].astype(int).clip(lower=1)
    rows = usage.loc[labels].loc[lambda f: f.index.repeat(repeats.loc[f.index])]
    runs = usage.loc[labels].drop(columns="raw").to_dict("index")
    first = ~rows.index.duplicated(keep="first")
    return quarantine_frame(
        source_file=rows["source_file"].tolist(),
        line=rows["line"].tolist(),
        raw=rows["raw"].tolist(),
        check=[found[label][0] for label in rows.index],
        reason=[found[label][1] for label in rows.index],
    ).assign(**{CARRIED: [{"usage": runs[label]} if is_first else {"part": True}
                          for label, is_first in zip(rows.index, first, strict=True)]})  # fmt: skip


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
    ).assign(**{CARRIED: [
        {"cost": float(cost), "currency": currency, "provider": _text(provider), "service": _text(service)}
        if pd.notna(cost) and isinstance(currency, str) and re.fullmatch("[A-Z]{3}", currency)
        else None
        for cost, currency, provider, service in zip(
            rows["billed_cost"], rows["currency"], rows["provider"], rows["service_name"], strict=True
        )
    ]})  # fmt: skip


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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


@dataclass
class TableChecks:
    """One table's suites (its formats' first, then its own), each with the rows it saw."""

    seen: list[tuple[SuiteResult, pd.DataFrame]]
    found: dict[Any, tuple[str, str, str]]  # quarantined row label → (check, reason, suite)

    def messages(self, action: str) -> list[str]:
        return [line for outcome, rows in self.seen for line in messages(rows, outcome, action)]

    def records(self, lines: pd.Series | None = None) -> list[dict[str, Any]]:
        """Each suite's record; rows quarantined counted as input lines (`lines` per label)."""
        records = []
        for outcome, _ in self.seen:
            mine = [label for label, (_, _, suite) in self.found.items() if suite == outcome.suite]
            count = int(lines.loc[mine].sum()) if lines is not None else len(mine)
            records.append(outcome.as_dict(count))
        return records


def check_table(validator: Validator, table: str, frame: pd.DataFrame) -> TableChecks:
    """Run the suites of the raw formats read into `table`, then the table's own suite."""
    seen = []
    for name, fmt in FORMATS.items():
        rows = rows_of(name, frame) if fmt.table == table else frame.iloc[0:0]
        if not rows.empty:
            seen.append((validator.check(name, rows), rows))
    if table in SUITES:
        seen.append((validator.check(table, frame), frame))
    found: dict[Any, tuple[str, str, str]] = {}
    for outcome, rows in seen:
        for label, (check, reason) in reasons(rows, outcome, "quarantine").items():
            found.setdefault(label, (check, reason, outcome.suite))
    return TableChecks(seen, found)


def validate_tables(
    validator: Validator,
    usage: pd.DataFrame,
    charges: pd.DataFrame,
    vendor_carbon: pd.DataFrame | None = None,
    telemetry: pd.DataFrame | None = None,
    charges_suite: bool = True,
) -> Validated:
    """Validate usage and charges (and the providers' carbon rows, which only ever warn);
    return the rows that pass and the quarantine of the rest. `charges_suite=False` (a slice of
    a Slurm dump, no billing lines): the charges suite is left to the run's own validation,
    which always runs it and gives the same record (a GX call on no rows costs 0.1 s)."""
    view = usage_view(usage)
    on_usage = check_table(validator, "usage", view)
    on_charges = (
        check_table(validator, "charges", charges) if charges_suite else TableChecks([], {})
    )
    tables = [on_usage, on_charges]
    if vendor_carbon is not None and not vendor_carbon.empty:
        tables.append(check_table(validator, "vendor_carbon", vendor_carbon))
    if telemetry is not None and not telemetry.empty:  # warnings only: no sample is dropped
        tables.append(check_table(validator, "telemetry", telemetry))
    bad_usage = {label: found[:2] for label, found in on_usage.found.items()}
    bad_charges = {label: found[:2] for label, found in on_charges.found.items()}
    quarantine = pd.concat(
        [usage_quarantine(usage, bad_usage), charges_quarantine(charges, bad_charges)],
        ignore_index=True,
    )
    log.info(
        "validated %s runs and %s billing lines: %s failed expectations, %s rows quarantined",
        len(usage), len(charges),
        sum(len(o.failures) for t in tables for o, _ in t.seen), len(quarantine),
    )  # fmt: skip
    lines = usage["lines_merged"].astype("int64").clip(lower=1)
    return Validated(
        usage.drop(index=list(bad_usage)),
        charges.drop(index=list(bad_charges)),
        quarantine,
        [line for t in tables for line in t.messages("warn")],
        [line for t in tables for line in t.messages("gate")],
        [
            *on_usage.records(lines),
            *on_charges.records(),
            *[r for t in tables[2:] for r in t.records()],
        ],
    )


def validate_ledger(validator: Validator, rows: pd.DataFrame) -> tuple[list[str], dict[str, Any]]:
    """Ledger rows before they are written: gate messages and the suite's record."""
    outcome = validator.check("ledger", rows.reset_index(drop=True))
    return messages(rows.reset_index(drop=True), outcome, "gate"), outcome.as_dict(0)


__all__ = [
    "SUITE_ORDER",
    "SUITE_VERSION",
    "Validated",
    "Validator",
    "validate_ledger",
    "validate_tables",
]
