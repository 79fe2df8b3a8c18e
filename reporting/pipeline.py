"""The stages in order: ingest → attribute → ledger → summary and report. Nothing else."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from reporting import engine, manifest, notify, outputs, quarterly, rollup, serving
from reporting import ledger as store
from reporting.attribute import attribute_usage
from reporting.attribute_cloud import attribute_charges
from reporting.audit_findings import Findings
from reporting.audit_scan import audit_period
from reporting.billing_intake import superseded_files
from reporting.cloud_nodes import split_node_bills
from reporting.config import BILLING_KINDS, VENDOR_CARBON_KINDS, Config
from reporting.factors import register_frame
from reporting.intake import Intake, all_input_files, ingest, input_paths, merge_intakes
from reporting.memory import release_freed_memory
from reporting.runstate import file_fingerprint, ledger_lock, read_state, write_state
from reporting.schema import empty_quarantine, empty_usage
from reporting.staging import Staged
from reporting.summary import Period, build_context, build_summary
from reporting.summary_cloud import cloud_block, vendor_in_period
from reporting.telemetry_intake import telemetry_summary
from reporting.telemetry_store import telemetry_for_runs, write_telemetry
from reporting.validation import runlevel

__all__ = ["Intake", "ingest", "ledger_root", "report", "run"]  # ingest lives in intake.py

log = logging.getLogger("reporting")


@dataclass(frozen=True)
class Reported:
    summary: dict[str, Any]
    findings: Findings  # ranked by wasted kg CO2e, held on disk


@dataclass(frozen=True)
class RunResult:
    summary: dict[str, Any]
    gate_failures: list[str]
    out_dir: Path
    notify_errors: list[str] = field(default_factory=list)


def ledger_root(config: Config, out_dir: Path) -> Path:
    return config.resolve(config.ledger.path) if config.ledger.path else out_dir / "ledger"


STAGES = ("ingest", "attribute_and_ledger", "report", "notify")


@dataclass(frozen=True)
class RunOptions:
    started_at: datetime  # wall-clock start, from the CLI: for the lock and the manifest only
    force: bool = False  # re-read every input even if unchanged (backfill)
    after_step: Callable[[int], None] | None = None  # ledger commit hook (crash tests)
    on_stage: Callable[[str], None] | None = None  # called as each stage ends (progress bar)
    notify: Literal["send", "dry-run", "off"] = "send"  # "send" only if [notify] enabled
    smtp_password: str | None = None  # read by the CLI from the environment or a file
    engine: Literal["local", "dask"] = "local"  # where streamed slices are processed
    scheduler: str | None = None  # Dask scheduler address (None: a local cluster for the run)


def run(
    config: Config, run_date: date, period: Period, out_dir: Path, options: RunOptions
) -> RunResult:
    """The nightly job under the ledger lock: new or changed inputs → ledger → the period's report."""
    root = ledger_root(config, out_dir)
    with ledger_lock(root, options.started_at):
        store.recover(root)
        timer = manifest.Timer(options.on_stage)
        files = all_input_files(config)
        fingerprints = {name: file_fingerprint(path) for name, path in files.items()}
        changed = _with_whole_billing_inputs(config, _changed(root, fingerprints, options.force))
        gate: list[str] = []
        intake = None
        if changed:
            # Imported here: Great Expectations takes seconds to import, and the report and
            # notify verbs never need it.
            from reporting.validation.stage import Validator

            validator = Validator()
            intake, record, streamed, processed = _ingest_and_validate(
                config, root, (fingerprints, changed), (run_date, validator), options
            )
            changed = set(processed)
            timer.lap("ingest")
            release_freed_memory()  # the slices' frames are gone: the commit starts from less
            gate = _store(config, root, intake, processed, options,
                          (validator, record, run_date, out_dir), streamed)  # fmt: skip
        else:
            timer.lap("ingest")
        timer.lap("attribute_and_ledger")
        release_freed_memory()  # the commit's frames are gone: the report starts from less
        reported = report(config, period, out_dir, run_date, gate)
        store.write_first_seen(root, reported.findings)
        timer.lap("report")
        notified = _notify(config, root, out_dir, run_date, reported.findings, options)
        reported.findings.close()
        timer.lap("notify")
        manifest.write(
            out_dir,
            config,
            run_date,
            period,
            options.started_at,
            fingerprints,
            changed,
            intake,
            timer,
            gate,
        )
    return RunResult(reported.summary, gate, out_dir, notified.errors if notified else [])


def _notify(config: Config, root: Path, out_dir: Path, run_date: date, findings: Findings,
            options: RunOptions) -> notify.NotifyResult | None:  # fmt: skip
    """Send (or write to the outbox) the owners' digests of findings not yet notified."""
    if options.notify == "off" or (options.notify == "send" and not config.notify.enabled):
        return None
    settings = config.notify
    directory = _directory(config)
    result = notify.notify_findings(
        findings, settings, state_dir=root, out_dir=out_dir, run_date=run_date,
        dry_run=options.notify == "dry-run", password=options.smtp_password,
        directory=directory, organisation=config.organisation.name,
    )  # fmt: skip
    log.info("notified %s findings (%s pending, %s owners without an address)%s",
             len(result.sent), len(result.pending), len(result.unresolved),
             f"; wrote {len(result.outbox)} e-mails to {out_dir / 'outbox'}" if result.outbox else "")  # fmt: skip
    for error in result.errors:
        log.error("notify: %s", error)
    return result


def _directory(config: Config) -> pd.DataFrame | None:
    """The owners' directory CSV of [notify], if one is configured."""
    path = config.notify.directory
    return notify.load_directory(config.resolve(path)) if path else None


def notify_only(config: Config, out_dir: Path, run_date: date, findings: Findings,
                options: RunOptions) -> list[str]:  # fmt: skip
    """The notify stage alone, under the ledger lock (its state lives with the ledger)."""
    root = ledger_root(config, out_dir)
    with ledger_lock(root, options.started_at):
        result = _notify(config, root, out_dir, run_date, findings, options)
    return result.errors if result else []


def _with_whole_billing_inputs(config: Config, changed: set[str]) -> set[str]:
    """A billing input is re-read whole when any of its files changed: its billing periods are
    then replaced entirely (restatements), so its unchanged files must come along. With a
    Kubernetes input on cloud nodes (`cloud_nodes`), it and every billing input are read
    together whenever either changed: the node bills are split over its pods (cloud_nodes.py)."""
    result = set(changed)
    coupled: set[str] = set()
    for index, spec in enumerate(config.inputs):
        names = set(input_paths(config, index, spec))
        if spec.kind in BILLING_KINDS and names & changed:
            result |= names
        if spec.kind in BILLING_KINDS or spec.cloud_nodes:
            coupled |= names
    if any(s.cloud_nodes for s in config.inputs) and coupled & changed:
        result |= coupled
    return result


def _changed(root: Path, fingerprints: dict[str, dict[str, Any]], force: bool) -> set[str]:
    state = read_state(root)
    changed = {
        n for n, f in fingerprints.items() if force or state.get(n) != f or f["sha256"] is None
    }
    skipped = len(fingerprints) - len(changed)
    log.info(
        "inputs: %s new or changed, %s unchanged since the last run (skipped)",
        len(changed),
        skipped,
    )
    return changed


def _ingest_and_validate(
    config: Config, root: Path, inputs: tuple[dict[str, dict[str, Any]], set[str]],
    checking: tuple[date, Any], options: RunOptions,
) -> tuple[Intake, dict[str, Any], Any, dict[str, dict[str, Any]]]:  # fmt: skip
    """Read and validate the changed inputs. Large Slurm inputs are streamed: their slices are
    read, validated, attributed and staged one by one (reporting/engine.py); the rest is read
    whole. This run's telemetry is stored first, as the slices' attribution reads it there."""
    from reporting.validation.stage import Streamed, added_messages, added_suites, validate_intake

    (fingerprints, changed), (run_date, validator) = inputs, checking
    slices = engine.streamed_files(config, changed)
    sliced = {s.source_file for s in slices}
    intake = ingest(config, only=changed - sliced, recorded=store.read_intake(root))
    telemetry_files = [n for n, f in intake.files.items() if f["kind"] == "dcgm"]
    if telemetry_files:
        write_telemetry(root, intake.telemetry, telemetry_files)
    # with the usage files new telemetry touches (read again to be joined with it)
    processed = {n: fingerprints[n] for n in changed | set(intake.files)}
    run_id = manifest.batch_id(processed)
    results = engine.run_slices(slices, config, run_id, root, options.engine, options.scheduler,
                                validator)  # fmt: skip
    ends = [r.latest_end for r in results if r.latest_end is not None]
    streamed = Streamed(
        merge_intakes(Intake(empty_usage(), empty_quarantine(), {}), [r.intake for r in results]),
        runs=sum(r.runs for r in results),
        latest_end=max(ends) if ends else None,
        suites=added_suites(*[r.suites for r in results]),
        gate=added_messages(*[r.gate for r in results]),
        warnings=added_messages(*[r.warnings for r in results]),
        attributed_runs=sum(r.attributed_runs for r in results),
        factors=[f for r in results for f in r.factors],
        folder=engine.staging_root(root, run_id) if results else None,
        ledger_rows=sum(r.ledger_rows for r in results),
        facility_energy_kwh=sum(r.facility_energy_kwh for r in results),
    )  # fmt: skip
    intake, record = validate_intake(intake, config, run_date, validator, root, streamed)
    return intake, record, streamed, processed


def _store(config: Config, root: Path, intake: Intake, processed: dict[str, dict[str, Any]],
           options: RunOptions, checked: tuple[Any, dict[str, Any], date, Path],
           streamed: Any) -> list[str]:  # fmt: skip
    """Attribute the validated intake and commit it with the streamed slices' staged rows:
    ledger, factors, intake records, validation record, then the input state. Returns the gate
    failures (intake's and the ledger suite's)."""
    run_id = manifest.batch_id(processed)
    attribution = attribute_usage(intake.usage, config, run_id, _telemetry(root, intake))
    cloud = attribute_charges(intake.charges, config, run_id)
    cluster_rows, cloud_rows = split_node_bills(attribution.ledger, cloud.ledger)
    rows = pd.concat([r for r in (cluster_rows, cloud_rows) if not r.empty] or [cluster_rows], ignore_index=True)  # fmt: skip
    periods = set(cloud.ledger["billing_period"].dropna())
    # Imported here, not at the top: Great Expectations takes seconds to import, and the
    # report and notify verbs never need it.
    from reporting.validation.docs import write_data_docs
    from reporting.validation.stage import added_suites, validate_ledger

    validator, record, run_date, out_dir = checked
    ledger_gate, ledger_suite = validate_ledger(validator, rows)
    record = {**record, "suites": added_suites(record["suites"], [ledger_suite]),
              "gate": [*record["gate"], *ledger_gate]}  # fmt: skip
    staged = Staged(streamed.folder) if streamed.folder else None
    written = store.write_ledger(root, rows, intake.files, options.after_step, periods, staged)
    if streamed.folder:
        shutil.rmtree(streamed.folder.parent)
    store.write_factors(
        root, register_frame(attribution.factors + cloud.factors + streamed.factors)
    )
    vendor_files = [n for n, f in intake.files.items() if f["kind"] in VENDOR_CARBON_KINDS]
    if vendor_files:
        store.write_vendor_carbon(root, intake.vendor_carbon, vendor_files)
    serving.store(root, intake)  # the serving volume of the files read
    superseded = superseded_files(store.read_intake(root), intake.files, periods)
    store.write_intake(root, intake.files, intake.quarantine, superseded)
    runlevel.write_json(root, runlevel.RESULTS_FILE, record)
    runlevel.record_counts(root, run_date, record["counts"])
    runlevel.record_totals(root, record.get("billing_totals", {}))
    write_data_docs(validator, out_dir, run_date)
    # Last: a run killed before this point is redone next time. A file that could not be read
    # (or was refused, e.g. over max_rows) is not recorded, so every run reads it and fails the
    # gate again until it is fixed, instead of once.
    write_state(root, {n: f for n, f in processed.items() if n not in intake.file_errors})
    log.info(
        "attributed %s runs and %s billing lines in %s ledger rows: %.1f kWh facility energy "
        "(streamed slices included); wrote %s day partitions",
        attribution.ledger["usage_id"].nunique() + streamed.attributed_runs,
        cloud.ledger["usage_id"].nunique(),
        len(rows) + streamed.ledger_rows,
        rows["facility_energy_kwh"].sum() + streamed.facility_energy_kwh,
        len(written),
    )
    return [*intake.gate_failures, *ledger_gate]


def _telemetry(root: Path, intake: Intake) -> pd.DataFrame:
    """This run's DCGM samples and those stored with the ledger for the runs' sites and times
    (the stored copies of files read again this run left out)."""
    stored = telemetry_for_runs(root, intake.usage, exclude=intake.files)
    if stored is None:
        return intake.telemetry
    frames = [f for f in (stored, intake.telemetry) if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else intake.telemetry


def check_inputs(
    config: Config, run_date: date, docs_dir: Path | None = None
) -> tuple[Intake, dict[str, Any]]:
    """Ingest and validate every input, write nothing (GX Data Docs under `docs_dir` if given).
    Drift needs the nightly history and is left to `run`; freshness uses `run_date`."""
    from reporting.validation.docs import write_data_docs
    from reporting.validation.stage import Validator, validate_intake

    validator = Validator()
    intake, record = validate_intake(ingest(config), config, run_date, validator)
    if docs_dir is not None:
        write_data_docs(validator, docs_dir, run_date)
    return intake, record


def report(
    config: Config,
    period: Period,
    out_dir: Path,
    run_date: date,
    gate_failures: list[str] | None = None,
) -> Reported:
    """Render the period from the ledger alone: summary.json, report.html, report.pdf, quarantine.csv."""
    root = ledger_root(config, out_dir)
    intake = store.read_intake(root)
    inputs = [
        {
            k: f[k]
            for k in (
                "source_file",
                "kind",
                "rows_read",
                "rows_accepted",
                "rows_quarantined",
                "cost_in",
            )
            if k in f
        }
        for f in intake.values()
    ]
    findings = audit_period(root, period.start, period.end, config.audit,
                            store.read_first_seen_table(root), run_date)  # fmt: skip
    factors = store.read_factors(root)
    # The sections run on the period's ledger grouped one day at a time, never on all its rows.
    grouped = rollup.read(root, period.start, period.end, factors)
    rows = grouped.rows
    vendor = store.read_vendor_carbon(root)
    cloud = cloud_block(rows, grouped.held, intake, vendor_in_period(vendor, period))
    summary = build_summary(rows, period, inputs, findings, gate_failures, cloud)
    summary["telemetry"] = telemetry_summary(intake)
    summary["validation"] = runlevel.summary_block(
        root, store.read_quarantine(root), out_dir / "data_docs" / "index.html"
    )
    waiting: dict[str, int] = {}
    for f in intake.values():
        for state, jobs in f["not_attributed"].items():
            waiting[state] = waiting.get(state, 0) + jobs
    context = build_context(
        summary,
        rows,
        factors,
        organisation=config.organisation.name,
        run_date=run_date,
        quarantine=store.read_quarantine(root),
        not_attributed=pd.DataFrame({"state": list(waiting), "jobs": list(waiting.values())}),
        methodology=outputs.METHODOLOGY,
        assurance=manifest.assurance(config, read_state(root)),
        findings=findings,
        unresolved_owners=notify.unresolved_owners(findings, config.notify, _directory(config)),
    )
    summary, context = quarterly.complete(root, grouped, period, run_date, summary, context)
    outputs.write_all(out_dir, summary, context, store.read_quarantine(root), findings)
    log.info(
        "reported %s: %.1f kWh, %.1f kg CO2e location-based, %.1f kg market-based -> %s",
        period.label,
        summary["totals"]["facility_energy_kwh"],
        summary["totals"]["co2e_location_kg"],
        summary["totals"]["co2e_market_kg"],
        out_dir,
    )
    return Reported(summary, findings)
