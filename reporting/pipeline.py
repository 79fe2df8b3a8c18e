"""The stages in order: ingest → attribute → ledger → summary and report. Nothing else."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from reporting import ledger as store
from reporting import outputs
from reporting.attribute import attribute_usage
from reporting.config import Config, Input
from reporting.errors import InputError
from reporting.factors import register_frame
from reporting.ingest.slurm import FINAL_STATES, read_slurm
from reporting.schema import empty_quarantine
from reporting.site_params import check_config, resolve_gpu_models
from reporting.summary import Period, build_context, build_summary

log = logging.getLogger("reporting")


@dataclass(frozen=True)
class Intake:
    usage: pd.DataFrame
    quarantine: pd.DataFrame
    files: dict[
        str, dict[str, Any]
    ]  # per source file: kind, rows_read/accepted/quarantined, waiting
    gate_failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunResult:
    summary: dict[str, Any]
    gate_failures: list[str]
    out_dir: Path


def input_paths(config: Config, index: int, spec: Input) -> dict[str, Path]:
    """Files of an input, named by their path relative to the config file (portable in reports)."""
    pattern = config.resolve(spec.path)
    paths = (
        sorted(p for p in pattern.parent.glob(pattern.name) if not p.is_dir())
        if pattern.parent.is_dir()
        else []
    )
    if not paths:
        raise InputError(
            f"{config.config_file}: inputs[{index}].path: no file matches {str(pattern)!r}. Check the path "
            "(it is relative to the config file) or remove the input."
        )
    return {config.display_path(p): p for p in paths}


def ingest(config: Config) -> Intake:
    """Read every configured input; bad lines go to quarantine, never an exception."""
    check_config(config)
    usages, quarantines, files, gate = [], [empty_quarantine()], {}, []
    for index, spec in enumerate(config.inputs):
        site = config.site(spec.site)
        read = read_slurm(
            input_paths(config, index, spec),
            site=site.name,
            timezone=site.timezone,
            delimiter=spec.delimiter,
            fields=spec.fields,
            resolve_gpu=lambda frame: resolve_gpu_models(frame, config),
        )
        for source_file, rows_read in read.rows_read.items():
            stats = _file_stats(read.usage, read.quarantine, source_file, rows_read, spec.kind)
            files[source_file] = stats
            if source_file in read.file_errors:
                log.error("%s: %s", source_file, read.file_errors[source_file])
                gate.append(f"{source_file}: {read.file_errors[source_file]}")
            if rows_read and stats["rows_quarantined"] / rows_read > spec.max_quarantined_ratio:
                gate.append(
                    f"{source_file}: {stats['rows_quarantined']} of {rows_read} rows quarantined "
                    f"(limit {spec.max_quarantined_ratio:.0%})"
                )
        usages.append(read.usage)
        quarantines.append(read.quarantine)
    usage = pd.concat(usages, ignore_index=True)
    quarantine = pd.concat(quarantines, ignore_index=True)
    log.info(
        "ingested %s files: %s rows read, %s runs accepted, %s rows quarantined",
        len(files),
        sum(f["rows_read"] for f in files.values()),
        len(usage),
        len(quarantine),
    )
    return Intake(usage, quarantine, files, gate)


def _file_stats(
    usage: pd.DataFrame, quarantine: pd.DataFrame, source_file: str, rows_read: int, kind: str
) -> dict[str, Any]:
    mine = usage[usage["source_file"] == source_file]
    accepted = int(mine["lines_merged"].sum())
    quarantined = int((quarantine["source_file"] == source_file).sum())
    if accepted + quarantined != rows_read:  # conservation: a bug if it fails, never a user error
        raise AssertionError(
            f"{source_file}: {rows_read} read != {accepted} accepted + {quarantined} quarantined"
        )
    waiting = mine.loc[~mine["state"].isin(FINAL_STATES) | mine["ended_at"].isna(), "state"]
    return {
        "source_file": source_file,
        "kind": kind,
        "rows_read": rows_read,
        "rows_accepted": accepted,
        "rows_quarantined": quarantined,
        "runs": len(mine),
        "not_attributed": {str(k): int(v) for k, v in waiting.value_counts().sort_index().items()},
    }


def run_id_for(run_date: date, files: dict[str, dict[str, Any]]) -> str:
    """Stable id of a run: its date and a digest of what it read (no clock, no randomness)."""
    digest = hashlib.sha256(
        repr(sorted((k, v["rows_read"]) for k, v in files.items())).encode()
    ).hexdigest()
    return f"{run_date.isoformat()}-{digest[:12]}"


def ledger_root(config: Config, out_dir: Path) -> Path:
    return config.resolve(config.ledger.path) if config.ledger.path else out_dir / "ledger"


def run(config: Config, run_date: date, period: Period, out_dir: Path) -> RunResult:
    """The nightly job: ingest, attribute, write the ledger, render the period's report."""
    intake = ingest(config)
    run_id = run_id_for(run_date, intake.files)
    attribution = attribute_usage(intake.usage, config, run_id)
    root = ledger_root(config, out_dir)
    written = store.write_ledger(root, attribution.ledger, intake.files)
    store.write_factors(root, register_frame(attribution.factors))
    store.write_intake(root, intake.files, intake.quarantine)
    log.info(
        "attributed %s runs in %s ledger rows: %.1f kWh facility energy; wrote %s day partitions",
        attribution.ledger["usage_id"].nunique(),
        len(attribution.ledger),
        attribution.ledger["facility_energy_kwh"].sum(),
        len(written),
    )
    summary = report(config, period, out_dir, run_date, intake.gate_failures)
    return RunResult(summary, intake.gate_failures, out_dir)


def report(
    config: Config,
    period: Period,
    out_dir: Path,
    run_date: date,
    gate_failures: list[str] | None = None,
) -> dict[str, Any]:
    """Render the period from the ledger alone: summary.json, report.html, report.pdf, quarantine.csv."""
    root = ledger_root(config, out_dir)
    rows = store.read_ledger(root, period.start, period.end)
    intake = store.read_intake(root)
    inputs = [
        {k: f[k] for k in ("source_file", "kind", "rows_read", "rows_accepted", "rows_quarantined")}
        for f in intake.values()
    ]
    summary = build_summary(rows, period, inputs, gate_failures)
    waiting: dict[str, int] = {}
    for f in intake.values():
        for state, jobs in f["not_attributed"].items():
            waiting[state] = waiting.get(state, 0) + jobs
    context = build_context(
        summary,
        rows,
        store.read_factors(root),
        organisation=config.organisation.name,
        run_date=run_date,
        quarantine=store.read_quarantine(root),
        not_attributed=pd.DataFrame({"state": list(waiting), "jobs": list(waiting.values())}),
        methodology=outputs.METHODOLOGY,
    )
    outputs.write_all(out_dir, summary, context, store.read_quarantine(root))
    log.info(
        "reported %s: %.1f kWh, %.1f kg CO2e location-based, %.1f kg market-based -> %s",
        period.label,
        summary["totals"]["facility_energy_kwh"],
        summary["totals"]["co2e_location_kg"],
        summary["totals"]["co2e_market_kg"],
        out_dir,
    )
    return summary
