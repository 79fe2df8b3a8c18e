"""The ingest stage: read every configured input (or only the files given), account for every
row, and hand the canonical tables on. Only this stage reads input files.

Slurm dumps become `usage` rows; cloud billing exports `charges`; providers' own carbon exports
`vendor_carbon` rows (shown beside our estimate, never added). Per source file the intake records
rows read, accepted and quarantined (they must add up), and the data-quality gate's failures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from reporting.billing_intake import cost_by_currency, read_billing_input, refuse_double_views
from reporting.config import BILLING_KINDS, VENDOR_CARBON_KINDS, Config, Input
from reporting.errors import InputError
from reporting.ingest.billing.dispatch import empty_charges
from reporting.ingest.billing.vendor_carbon import empty_vendor_carbon, read_vendor_carbon
from reporting.ingest.dcgm import empty_samples
from reporting.ingest.limits import Limits
from reporting.ingest.lines import Span
from reporting.ingest.opencost import read_opencost
from reporting.ingest.slurm import FINAL_STATES, SlurmRead, read_slurm
from reporting.schema import empty_quarantine, empty_usage
from reporting.serving import concat_serving, empty_serving, read_serving_input
from reporting.site_params import check_config, resolve_gpu_models
from reporting.telemetry_intake import coupled_usage_files, read_telemetry_input, site_span

log = logging.getLogger("reporting")


@dataclass(frozen=True)
class Intake:
    usage: pd.DataFrame
    quarantine: pd.DataFrame
    files: dict[
        str, dict[str, Any]
    ]  # per source file: kind, rows_read/accepted/quarantined, waiting
    gate_failures: list[str] = field(default_factory=list)
    charges: pd.DataFrame = field(default_factory=empty_charges)  # cloud billing lines
    vendor_carbon: pd.DataFrame = field(default_factory=empty_vendor_carbon)  # providers' own
    limits: dict[str, float] = field(default_factory=dict)  # per file: max_quarantined_ratio
    file_errors: dict[str, str] = field(default_factory=dict)  # per file: why it was unreadable
    telemetry: pd.DataFrame = field(default_factory=empty_samples)  # DCGM samples, with site
    serving: pd.DataFrame = field(default_factory=empty_serving)  # requests, tokens per model, day


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


def all_input_files(config: Config) -> dict[str, Path]:
    """Every file of every input, by its name in reports (fails on an input matching nothing)."""
    return {
        n: p
        for i, spec in enumerate(config.inputs)
        for n, p in input_paths(config, i, spec).items()
    }


def ingest(
    config: Config, only: set[str] | None = None, recorded: dict[str, dict[str, Any]] | None = None
) -> Intake:
    """Read the configured inputs (`only` these files, if given); bad lines go to quarantine.

    Telemetry is read first: with `only`, the usage files of `recorded` (the intake records of
    the ledger) whose runs overlap new telemetry of their site are read again, to be joined."""
    check_config(config)
    usages, quarantines, files, gate = [], [empty_quarantine()], {}, []
    limits: dict[str, float] = {}
    errors: dict[str, str] = {}
    charges: list[pd.DataFrame] = []
    vendor: list[pd.DataFrame] = []
    served: list[pd.DataFrame] = []
    telemetry: list[pd.DataFrame] = [empty_samples()]
    for index, spec in enumerate(config.inputs):
        paths = _selected(config, index, spec, only)
        if spec.kind != "dcgm" or not paths:
            continue
        limits.update(dict.fromkeys(paths, spec.max_quarantined_ratio))
        samples, rejected, stats, file_errors = read_telemetry_input(paths, spec)
        telemetry.append(samples)
        quarantines.append(rejected)
        files.update(stats)
        gate += _gate(stats, file_errors, spec.max_quarantined_ratio)
        errors.update(file_errors)
    all_samples = pd.concat(telemetry, ignore_index=True)
    if only is not None and not all_samples.empty:
        only = only | coupled_usage_files(recorded or {}, all_samples)
    for index, spec in enumerate(config.inputs):
        paths = _selected(config, index, spec, only)
        if spec.kind == "dcgm" or not paths:
            continue
        limits.update(dict.fromkeys(paths, spec.max_quarantined_ratio))
        bounds = Limits(spec.max_field_bytes, spec.max_rows)  # field and row limits per file
        if spec.kind in VENDOR_CARBON_KINDS:
            for name, path in paths.items():
                rows, rejected, rows_read = read_vendor_carbon(path, name, spec.kind, bounds)
                vendor.append(rows)
                quarantines.append(rejected)
                files[name] = _vendor_stats(name, spec.kind, rows_read, len(rows), len(rejected))
                gate += _gate({name: files[name]}, {}, spec.max_quarantined_ratio)
            continue
        if spec.kind == "serving_volume":  # requests and tokens per model and day (serving.py)
            serving = read_serving_input(paths, bounds)
            served.append(serving.rows)
            quarantines.append(serving.quarantine)
            files.update(serving.files)
            gate += _gate(serving.files, serving.file_errors, spec.max_quarantined_ratio)
            errors.update(serving.file_errors)
            continue
        if spec.kind in BILLING_KINDS:
            billing, stats = read_billing_input(paths, spec)
            charges.append(billing.charges)
            quarantines.append(billing.quarantine)
            files.update(stats)
            gate += _gate(stats, billing.file_errors, spec.max_quarantined_ratio)
            errors.update(billing.file_errors)
            continue
        if spec.kind == "opencost":
            pods = read_opencost(
                paths, site=str(spec.site), cluster=spec.cluster, currency=spec.currency,
                limits=bounds,
            )  # fmt: skip
            pod_usage = _pod_usage(pods.usage, config)
            stats = {
                name: _file_stats(pod_usage, pods.quarantine, name, count, spec.kind)
                for name, count in pods.rows_read.items()
            }
            files.update(stats)
            gate += _gate(stats, pods.file_errors, spec.max_quarantined_ratio)
            errors.update(pods.file_errors)
            usages.append(pod_usage)
            quarantines.append(pods.quarantine)
            continue
        read, stats = _read_slurm_input(config, spec, paths)
        files.update(stats)
        gate += _gate(stats, read.file_errors, spec.max_quarantined_ratio)
        errors.update(read.file_errors)
        usages.append(read.usage)
        quarantines.append(read.quarantine)
    non_empty = [u for u in usages if not u.empty]
    usage = pd.concat(non_empty, ignore_index=True) if non_empty else empty_usage()
    billed = [c for c in charges if not c.empty]
    all_charges = pd.concat(billed, ignore_index=True) if billed else empty_charges()
    refuse_double_views(all_charges, {n: f.get("view") for n, f in files.items()})
    quarantine = pd.concat(quarantines, ignore_index=True)
    log.info(
        "ingested %s files: %s rows read, %s runs and %s billing lines accepted, %s rows quarantined",
        len(files),
        sum(f["rows_read"] for f in files.values()),
        len(usage),
        len(all_charges),
        len(quarantine),
    )
    vendor_rows = [v for v in vendor if not v.empty]
    vendor_all = pd.concat(vendor_rows, ignore_index=True) if vendor_rows else empty_vendor_carbon()
    return Intake(
        usage, quarantine, files, gate, all_charges, vendor_all, limits, errors, all_samples,
        serving=concat_serving(served),
    )  # fmt: skip


def _read_slurm_input(
    config: Config, spec: Input, paths: dict[str, Path], spans: dict[str, Span] | None = None
) -> tuple[SlurmRead, dict[str, dict[str, Any]]]:
    """Runs and quarantine of a Slurm input's files (or slices of them), and per-file stats."""
    site = config.site(str(spec.site))
    read = read_slurm(
        paths, site=site.name, timezone=site.timezone, delimiter=spec.delimiter,
        fields=spec.fields, resolve_gpu=lambda frame: resolve_gpu_models(frame, config),
        limits=Limits(spec.max_field_bytes, spec.max_rows), spans=spans,
    )  # fmt: skip
    stats = {
        source_file: _file_stats(read.usage, read.quarantine, source_file, rows_read, spec.kind)
        for source_file, rows_read in read.rows_read.items()
    }
    return read, stats


def ingest_slice(config: Config, index: int, source_file: str, path: Path, span: Span) -> Intake:
    """The intake of one slice of a Slurm dump (reporting/slices.py): its runs, quarantine and
    the file's counts for that slice (added up over the slices by `merge_intakes`)."""
    spec = config.inputs[index]
    read, stats = _read_slurm_input(config, spec, {source_file: path}, {source_file: span})
    gate = _gate(stats, read.file_errors, spec.max_quarantined_ratio, log_errors=False)
    limits = {source_file: spec.max_quarantined_ratio}
    return Intake(
        read.usage, read.quarantine, stats, gate, limits=limits, file_errors=read.file_errors
    )


def merge_intakes(whole: Intake, parts: list[Intake]) -> Intake:
    """The run's intake from the whole-read inputs and the slices' intakes (their usage rows are
    not kept: they are attributed slice by slice). Per-file counts add up over the slices."""
    files = dict(whole.files)
    for part in parts:
        for name, record in part.files.items():
            files[name] = _added(files[name], record) if name in files else record
    frames = [whole.quarantine, *[p.quarantine for p in parts]]
    merged = replace(
        whole,
        quarantine=pd.concat([f for f in frames if not f.empty] or [whole.quarantine], ignore_index=True),
        files=files,
        limits={**whole.limits, **{k: v for p in parts for k, v in p.limits.items()}},
        file_errors={**whole.file_errors, **{k: v for p in parts for k, v in p.file_errors.items()}},
    )  # fmt: skip
    gate = _gate(files, merged.file_errors, merged.limits, log_errors=False)
    return replace(
        merged,
        gate_failures=[*whole.gate_failures, *[g for g in gate if g not in whole.gate_failures]],
    )


def _added(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Two slices' records of one file: counts added, the time span widened."""
    result = dict(total)
    for key, value in part.items():
        if key == "span":
            spans = [s for s in (total.get("span"), value) if s]
            result[key] = [min(s[0] for s in spans), max(s[1] for s in spans)] if spans else None
        elif isinstance(value, dict):
            result[key] = _added(total.get(key, {}), value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            result[key] = total.get(key, 0) + value
        elif key not in result or not result[key]:
            result[key] = value
    return result


def _selected(config: Config, index: int, spec: Input, only: set[str] | None) -> dict[str, Path]:
    paths = input_paths(config, index, spec)
    return {n: p for n, p in paths.items() if only is None or n in only}


def restate(
    intake: Intake, usage: pd.DataFrame, charges: pd.DataFrame, extra: pd.DataFrame,
    extra_gate: list[str],
) -> Intake:  # fmt: skip
    """The intake after validation moved rows to quarantine (`extra`): per-file stats recounted
    (conservation re-checked), the gate re-evaluated with the validation's own failures."""
    if extra.empty and not extra_gate:
        return intake
    quarantine = pd.concat([intake.quarantine, extra], ignore_index=True)
    files = dict(intake.files)
    for name in set(extra["source_file"]):
        before = files[name]
        if "cost_in" in before:  # a billing file
            mine = charges[charges["source_file"] == name]
            quarantined = int((quarantine["source_file"] == name).sum())
            files[name] = {**before, "rows_accepted": len(mine), "runs": len(mine),
                           "rows_quarantined": quarantined, "cost_in": cost_by_currency(mine)}  # fmt: skip
            if len(mine) + quarantined != before["rows_read"]:
                raise AssertionError(f"{name}: {before['rows_read']} read != {len(mine)} + {quarantined}")  # fmt: skip
        else:
            files[name] = _file_stats(usage, quarantine, name, before["rows_read"], before["kind"])
    gate = [*_gate(files, intake.file_errors, intake.limits, log_errors=False), *extra_gate]
    return replace(intake, usage=usage, charges=charges, quarantine=quarantine, files=files,
                   gate_failures=gate)  # fmt: skip


def _vendor_stats(
    name: str, kind: str, read: int, accepted: int, quarantined: int
) -> dict[str, Any]:
    if read != accepted + quarantined:  # conservation: a bug if it fails
        raise AssertionError(f"{name}: {read} read != {accepted} + {quarantined}")
    return {"source_file": name, "kind": kind, "rows_read": read, "rows_accepted": accepted,
            "rows_quarantined": quarantined, "runs": 0, "not_attributed": {}}  # fmt: skip


def _pod_usage(usage: pd.DataFrame, config: Config) -> pd.DataFrame:
    """OpenCost rows ready for attribution.

    Pod labels act as tags (owner rules match them with `tag:<key>`); the node stands in for a
    partition, so `[[sites.partitions]]` named after nodes give their GPU and CPU models. Idle
    rows are node capacity minus allocations: negative when a node is overcommitted, which
    means no idle capacity, not negative hardware, so their quantities are floored at 0 (their
    cost is kept as OpenCost computed it).
    """
    pods = usage.assign(
        tags=usage["labels"], partition=usage["node"], resource_id=usage["provider_id"]
    )
    idle = pods["allocation_kind"] == "idle"
    for column in ("n_cpus", "n_gpus", "mem_requested_gb"):
        pods.loc[idle, column] = pods.loc[idle, column].clip(lower=0)
    model, _ = resolve_gpu_models(pods.assign(gpu_type=None), config)
    pods["gpu_model"] = pods["gpu_model"].where(pods["gpu_model"].notna(), model)
    return pods


def _gate(
    stats: dict[str, dict[str, Any]], errors: dict[str, str], limit: float | dict[str, float],
    log_errors: bool = True,
) -> list[str]:  # fmt: skip
    """Gate failures of files: unreadable files, too many quarantined rows (limit per file)."""
    failures = []
    for source_file, file_stats in stats.items():
        rows_read = file_stats["rows_read"]
        file_limit = limit.get(source_file, 1.0) if isinstance(limit, dict) else limit
        if source_file in errors:
            if log_errors:
                log.error("%s: %s", source_file, errors[source_file])
            failures.append(f"{source_file}: {errors[source_file]}")
        if rows_read and file_stats["rows_quarantined"] / rows_read > file_limit:
            failures.append(
                f"{source_file}: {file_stats['rows_quarantined']} of {rows_read} rows quarantined "
                f"(limit {file_limit:.0%})"
            )
    return failures


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
        **site_span(
            str(mine["site"].iloc[0]) if len(mine) else "", mine["started_at"], mine["ended_at"]
        ),
        "source_file": source_file,
        "kind": kind,
        "rows_read": rows_read,
        "rows_accepted": accepted,
        "rows_quarantined": quarantined,
        "runs": len(mine),
        "not_attributed": {str(k): int(v) for k, v in waiting.value_counts().sort_index().items()},
    }
