"""Slurm `sacct` dumps → `usage` rows (one per job run), with bad lines quarantined.

Handles `--parsable2` dumps with a header and header-less dumps with configured fields; job
lines merged with their step lines (allocation from the job line, MaxRSS, GPU utilisation and
energy from steps — energy never summed over job + steps, which repeat it); array (`123_4`),
heterogeneous (`123+0`) and requeued jobs; naive timestamps read in the site's timezone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from reporting.ingest import slurm_values as sv
from reporting.ingest.limits import DEFAULT_LIMITS, Limits
from reporting.ingest.lines import FileProblem, Span, quarantine_all, split_delimited
from reporting.ingest.slurm_runs import (
    FINAL_STATES,
    drop_superseded,
    mask,
    text_array,
    with_run_keys,
)
from reporting.schema import CARRIED, empty_quarantine, empty_usage, quarantine_frame

# sacct field name (lower-case) → our column name. Only these fields are used.
FIELDS = {
    "jobid": "job_id",
    "jobname": "job_name",
    "user": "user",
    "account": "account",
    "partition": "partition",
    "wckey": "wckey",
    "comment": "comment",
    "nodelist": "node_list",
    "nnodes": "n_nodes",
    "ncpus": "n_cpus",
    "alloccpus": "n_cpus",
    "state": "state",
    "submit": "submit",
    "start": "start",
    "end": "end",
    "elapsed": "elapsed",
    "timelimit": "timelimit",
    "totalcpu": "total_cpu",
    "reqmem": "req_mem",
    "maxrss": "max_rss",
    "alloctres": "alloc_tres",
    "tresusageintot": "tres_usage_in_tot",
    "consumedenergyraw": "consumed_energy_raw",
}
REQUIRED = ("job_id", "state", "start", "end", "elapsed")
USED = {*FIELDS.values(), "line", "raw"}
# Fields copied into usage rows as they are printed.
PASSED_THROUGH = ["job_id", "partition", "user", "account", "job_name", "comment", "wckey"]
PASSED_THROUGH += ["node_list", "raw"]
GPU_UTIL_PCT_PER_GPU = 100.0  # gres/gpuutil sums per-GPU % over a step's GPUs (slurm2sql#18)

GpuResolver = Callable[[pd.DataFrame], tuple[pd.Series, pd.Series]]


@dataclass(frozen=True)
class SlurmRead:
    usage: pd.DataFrame  # USAGE_COLUMNS
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    rows_read: dict[str, int]  # per source file
    file_errors: dict[str, str]  # source file → why it could not be read at all


def read_slurm(
    paths: dict[str, Path],
    *,
    site: str,
    timezone: str,
    delimiter: str | None,
    fields: list[str] | None,
    resolve_gpu: GpuResolver,
    limits: Limits = DEFAULT_LIMITS,
    spans: dict[str, Span] | None = None,
) -> SlurmRead:
    """Read every dump of one input (source name → path); a run in several dumps is kept once.
    With `spans`, only that slice of a dump is read (streaming, see reporting/slices.py)."""
    usages, quarantines, rows_read, errors = [], [], {}, {}
    for name, path in paths.items():
        split = split_delimited(
            path, delimiter=delimiter, fields=fields, header_marker="JobID", source_name=name,
            limits=limits, span=(spans or {}).get(name),
        )  # fmt: skip
        rows_read[name] = split.rows_read
        if split.error:
            errors[name] = split.error
        quarantines.append(split.quarantine)
        if split.records.empty:  # empty dump (a quiet night), or nothing readable in it
            continue
        try:
            records = _canonical(split.records)
        except FileProblem as problem:
            quarantines.append(quarantine_all(split.records, name, problem))
            continue
        usage, quarantine = _jobs_with_steps(records, name, site, timezone, resolve_gpu)
        usages.append(usage)
        quarantines.append(quarantine)
    usage = pd.concat(usages, ignore_index=True) if usages else empty_usage()
    usage, duplicates = drop_superseded(usage)
    quarantine = (
        pd.concat([*quarantines, duplicates], ignore_index=True)
        if quarantines
        else empty_quarantine()
    )
    return SlurmRead(usage.reset_index(drop=True), quarantine, rows_read, errors)


def _canonical(records: pd.DataFrame) -> pd.DataFrame:
    renamed = {c: FIELDS[c.strip().lower()] for c in records.columns if c.strip().lower() in FIELDS}
    frame = records.rename(columns=renamed)
    missing = [f for f in REQUIRED if f not in frame.columns]
    if missing and not records.empty:
        raise FileProblem(
            "missing_fields",
            f"the dump has no {', '.join(missing)} field (it has {', '.join(records.columns[:-2])}); "
            "dump with sacct --format including JobID,State,Start,End,Elapsed, or fix `fields` in the config",
        )
    for column in FIELDS.values():
        if column not in frame.columns:
            frame[column] = ""
    frame = frame.loc[:, ~frame.columns.duplicated()]
    return frame[[c for c in frame.columns if c in USED]]  # fewer columns to filter and copy


def _jobs_with_steps(
    records: pd.DataFrame, source_file: str, site: str, timezone: str, resolve_gpu: GpuResolver
) -> tuple[pd.DataFrame, pd.DataFrame]:
    records, is_step = with_run_keys(records)
    jobs, job_problems = _parse_jobs(records[~is_step], site, timezone, resolve_gpu)
    steps, step_problems = _parse_steps(records[is_step])
    accepted_keys = set(jobs.loc[job_problems["check"].isna(), "run_key"])
    orphan = ~steps["run_key"].isin(set(jobs["run_key"]))
    parent_bad = ~orphan & ~steps["run_key"].isin(accepted_keys) & step_problems["check"].isna()
    step_problems.loc[orphan & step_problems["check"].isna(), ["check", "reason"]] = [
        "orphan_step",
        "step line without a readable job line of its job above it in this file",
    ]
    step_problems.loc[parent_bad, ["check", "reason"]] = [
        "job_quarantined",
        "its job line is quarantined",
    ]
    good_steps = steps[step_problems["check"].isna()]
    usage = _merge_steps(jobs[job_problems["check"].isna()], good_steps, source_file, site)
    carried = _carried(jobs, job_problems, steps, step_problems, source_file, site)
    quarantine = pd.concat(
        [
            _quarantine_rows(jobs, job_problems, source_file).assign(**{CARRIED: carried}),
            _quarantine_rows(steps, step_problems, source_file),
        ],
        ignore_index=True,
    )
    return usage, quarantine


def _carried(
    jobs: pd.DataFrame, job_problems: pd.DataFrame, steps: pd.DataFrame,
    step_problems: pd.DataFrame, source_file: str, site: str,
) -> list[dict[str, Any]]:  # fmt: skip
    """Each quarantined job's run as far as its fields parsed (unparsed ones are NaN), merged
    with its steps: what the validate stage estimates the row's energy and cost from."""
    bad = job_problems["check"].notna()
    if not bad.any():
        return []
    own = steps["run_key"].isin(set(jobs.loc[bad, "run_key"]))
    own &= step_problems["check"] == "job_quarantined"
    runs = _merge_steps(jobs[bad], steps[own], source_file, site)
    return [{"usage": run} for run in runs.drop(columns="raw").to_dict("records")]


def _problems(index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "check": pd.Series(None, index=index, dtype=object),
            "reason": pd.Series(None, index=index, dtype=object),
        }
    )


def _flag(
    problems: pd.DataFrame,
    mask: pd.Series,
    check: str,
    reason: str | Callable[[pd.Series], pd.Series],
) -> None:
    """Record the first problem of each row (later checks don't overwrite earlier ones).
    `reason`: a text, or a function giving the reasons of the rows it is given a mask of."""
    new = mask & problems["check"].isna()
    if not new.any():
        return
    problems.loc[new, "check"] = check
    problems.loc[new, "reason"] = reason if isinstance(reason, str) else reason(new)


def _unparseable(
    problems: pd.DataFrame, frame: pd.DataFrame, column: str, field: str, bad: pd.Series
) -> None:
    def reasons(rows: pd.Series) -> pd.Series:
        return f"unparseable {field} value " + frame.loc[rows, column].astype(object).map(repr)

    _flag(problems, bad, "unparseable", reasons)


def _parse_jobs(
    jobs: pd.DataFrame, site: str, timezone: str, resolve_gpu: GpuResolver
) -> tuple[pd.DataFrame, pd.DataFrame]:
    problems = _problems(jobs.index)
    tres = sv.tres_values(jobs["alloc_tres"], ["cpu", "gres/gpu", "gpu_type"])
    out = jobs.assign(site=site, state=sv.parse_state(jobs["state"]))
    for column, field in (("submit", "Submit"), ("start", "Start"), ("end", "End")):
        out[column], bad = sv.parse_local_time(jobs[column], timezone)
        _unparseable(problems, jobs, column, field, bad)
    for column, field in (
        ("elapsed", "Elapsed"),
        ("timelimit", "Timelimit"),
        ("total_cpu", "TotalCPU"),
    ):
        out[column], bad = sv.parse_duration_s(jobs[column])
        _unparseable(problems, jobs, column, field, bad)
    for column, field in (("n_nodes", "NNodes"), ("n_cpus", "NCPUS")):
        out[column], bad = sv.parse_count(jobs[column])
        _unparseable(problems, jobs, column, field, bad)
    out["n_cpus"] = out["n_cpus"].fillna(sv.parse_count(tres.get("cpu", _empty(jobs)))[0])
    out["n_gpus"], bad = sv.parse_count(tres.get("gres/gpu", _empty(jobs)))
    _unparseable(problems, jobs, "alloc_tres", "AllocTRES gres/gpu", bad)
    out["n_gpus"] = out["n_gpus"].fillna(0.0)
    out["gpu_type"] = tres.get("gpu_type", None)
    out["req_mem"], bad = sv.parse_memory_gb(jobs["req_mem"], out["n_cpus"], out["n_nodes"])
    _unparseable(problems, jobs, "req_mem", "ReqMem", bad)
    out["energy_kwh"], bad = sv.parse_energy_kwh(jobs["consumed_energy_raw"])
    _unparseable(problems, jobs, "consumed_energy_raw", "ConsumedEnergyRaw", bad)
    _check_runs(out, problems, resolve_gpu)
    return out, problems


def _empty(frame: pd.DataFrame) -> pd.Series:
    return pd.Series("", index=frame.index, dtype=object)


def _check_runs(jobs: pd.DataFrame, problems: pd.DataFrame, resolve_gpu: GpuResolver) -> None:
    """Checks on runs that are over: times in order, a GPU model we can power-model."""
    over = jobs["state"].isin(FINAL_STATES) & jobs["end"].notna()
    backwards = over & jobs["start"].notna() & (jobs["end"] < jobs["start"])

    def reasons(rows: pd.Series) -> pd.Series:
        end, start = jobs.loc[rows, "end"].astype(str), jobs.loc[rows, "start"].astype(str)
        return "End " + end + " is before Start " + start

    _flag(problems, backwards, "end_before_start", reasons)
    negative = over & (jobs["elapsed"] < 0)
    _flag(problems, negative, "negative_duration", "Elapsed is negative")
    model, problem = resolve_gpu(jobs.assign(gpu_type=jobs["gpu_type"].where(jobs["n_gpus"] > 0)))
    jobs["gpu_model"] = model
    _flag(
        problems, over & (jobs["n_gpus"] > 0) & problem.notna(), "unknown_gpu_model",
        lambda rows: problem[rows],
    )  # fmt: skip


def _parse_steps(steps: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    problems = _problems(steps.index)
    usage_tres = sv.tres_values(steps["tres_usage_in_tot"], ["mem", "gres/gpuutil"])
    alloc_tres = sv.tres_values(steps["alloc_tres"], ["gres/gpu"])
    step_name = pc.list_element(pc.split_pattern(text_array(steps["job_id"]), ".", max_splits=1), 1)
    out = steps.assign(is_extern=mask(pc.equal(step_name, "extern")))
    max_rss_gb, bad = sv.parse_memory_gb(steps["max_rss"], 1.0, 1.0)
    _unparseable(problems, steps, "max_rss", "MaxRSS", bad)
    # MaxRSS is the largest single task; TRESUsageInTot mem= adds the step's tasks up, which is
    # what a multi-task, multi-node step holds. Use it when the dump has it.
    total_gb, bad = sv.parse_memory_gb(usage_tres.get("mem", _empty(steps)), 1.0, 1.0)
    _unparseable(problems, steps, "tres_usage_in_tot", "TRESUsageInTot mem", bad)
    out["max_rss_gb"] = total_gb.fillna(max_rss_gb)
    gpu_util_pct, bad = sv.parse_count(usage_tres.get("gres/gpuutil", _empty(steps)))
    _unparseable(problems, steps, "tres_usage_in_tot", "TRESUsageInTot gres/gpuutil", bad)
    step_gpus = sv.parse_count(alloc_tres.get("gres/gpu", _empty(steps)))[0]
    out["gpu_util_ratio"] = (gpu_util_pct / (GPU_UTIL_PCT_PER_GPU * step_gpus)).clip(upper=1.0)
    # The extern step holds the allocation open and does no work: its 0 % is not utilisation.
    out.loc[out["is_extern"], "gpu_util_ratio"] = np.nan
    out["energy_kwh"], bad = sv.parse_energy_kwh(steps["consumed_energy_raw"])
    _unparseable(problems, steps, "consumed_energy_raw", "ConsumedEnergyRaw", bad)
    return out, problems


def _merge_steps(
    jobs: pd.DataFrame, steps: pd.DataFrame, source_file: str, site: str
) -> pd.DataFrame:
    by_parent = steps.groupby("run_key").agg(
        mem_used_max_gb=("max_rss_gb", "max"),
        gpu_util_ratio=("gpu_util_ratio", "max"),
        step_energy_kwh=("energy_kwh", "max"),  # steps repeat the job's energy: never sum them
        step_lines=("line", "size"),
    )
    merged = jobs.join(by_parent, on="run_key")
    # The dump's own text leaves as Python strings (object columns), as the usage schema has it.
    merged = merged.assign(**{c: merged[c].astype(object) for c in PASSED_THROUGH})
    duration_s = merged["elapsed"]
    measured = merged["energy_kwh"].fillna(merged["step_energy_kwh"])
    measured_source = np.where(
        merged["energy_kwh"].notna(),
        "slurm:ConsumedEnergyRaw(job)",
        np.where(measured.notna(), "slurm:ConsumedEnergyRaw(max step)", None),
    )
    submit_key = merged["submit"].dt.strftime("%Y%m%dT%H%M%SZ").fillna("unknown")
    usage = pd.DataFrame(
        {
            "usage_id": "slurm:" + site + ":" + merged["job_id"] + ":" + submit_key,
            "source": "slurm",
            "source_file": source_file,
            "line": merged["line"],
            "lines_merged": 1 + merged["step_lines"].fillna(0).astype("int64"),
            "site": site,
            "partition": merged["partition"],
            "submitted_at": merged["submit"],
            "started_at": merged["start"],
            "ended_at": merged["end"],
            "duration_s": duration_s,
            "user": merged["user"],
            "account": merged["account"],
            "namespace": None,
            "job_name": merged["job_name"],
            "comment": merged["comment"],
            "wckey": merged["wckey"],
            "state": merged["state"],
            "node_list": merged["node_list"],
            "n_nodes": merged["n_nodes"],
            "n_cpus": merged["n_cpus"],
            "n_gpus": merged["n_gpus"],
            "gpu_type": merged["gpu_type"],
            "gpu_model": merged["gpu_model"],
            "mem_requested_gb": merged["req_mem"],
            "mem_used_max_gb": merged["mem_used_max_gb"],
            "cpu_time_s": merged["total_cpu"],
            "cpu_util_ratio": _cpu_util_ratio(merged["total_cpu"], duration_s, merged["n_cpus"]),
            "gpu_util_ratio": merged["gpu_util_ratio"].where(merged["n_gpus"] > 0),
            "timelimit_s": merged["timelimit"],
            "measured_energy_kwh": measured,
            "measured_energy_source": measured_source,
            "raw": merged["raw"],
        }
    )
    return usage


def _cpu_util_ratio(total_cpu_s: pd.Series, duration_s: pd.Series, n_cpus: pd.Series) -> pd.Series:
    """TotalCPU / (Elapsed × NCPUS), capped at 1. A TotalCPU of exactly 0 on a run that lasted is
    read as "not recorded" (its steps were not accounted), as GreenAlgorithms4HPC does."""
    recorded = (total_cpu_s > 0) & (duration_s > 0)
    return (total_cpu_s / (duration_s * n_cpus)).where(recorded).clip(upper=1.0)


def _quarantine_rows(frame: pd.DataFrame, problems: pd.DataFrame, source_file: str) -> pd.DataFrame:
    bad = problems["check"].notna()
    return quarantine_frame(
        source_file=source_file,
        line=frame.loc[bad, "line"].tolist(),
        raw=frame.loc[bad, "raw"].tolist(),
        check=problems.loc[bad, "check"].tolist(),
        reason=problems.loc[bad, "reason"].tolist(),
    )
