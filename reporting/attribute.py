"""The attribute stage: usage rows → ledger rows with energy, carbon, cost and owners.

Each finished run is split over the UTC days it ran on, in proportion to its time on each day,
so a day's (and a quarter's) energy is the energy used in it. Every linear quantity (kWh, kg,
cost, GPU-hours) is split the same way, so the slices of a run add back to the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reporting import carbon, cost, energy, owners
from reporting.config import Config
from reporting.factors import Factor
from reporting.ingest.slurm import FINAL_STATES
from reporting.schema import LEDGER_SCHEMA
from reporting.site_params import parameters
from reporting.telemetry import usage_telemetry

S_PER_HOUR = 3_600
LINEAR_COLUMNS = (
    "it_energy_kwh",
    "facility_energy_kwh",
    "co2e_location_kg",
    "co2e_market_kg",
    "co2e_embodied_kg",
    "cost",
    "gpu_hours",
    "cpu_core_hours",
    "gpu_energy_kwh",
    "cpu_energy_kwh",
    "memory_energy_kwh",
    "gpu_energy_telemetry_kwh",
    "idle_gpu_hours",
    "idle_gpu_energy_kwh",
)


@dataclass(frozen=True)
class Attribution:
    ledger: pd.DataFrame  # LEDGER_COLUMNS, one row per run and UTC day
    factors: list[Factor]  # every factor the rows reference
    not_attributed: pd.DataFrame  # state, jobs: runs counted but not attributed (not over yet)


def attribute_usage(
    usage: pd.DataFrame, config: Config, run_id: str, telemetry: pd.DataFrame | None = None
) -> Attribution:
    """Ledger rows of the finished runs; `telemetry` (DCGM samples with their site) measures
    the GPU energy and utilisation of the runs it covers."""
    over = usage["state"].isin(FINAL_STATES) & usage["ended_at"].notna()
    waiting = usage.loc[~over, "state"].replace("", "UNKNOWN").value_counts().sort_index()
    not_attributed = waiting.rename_axis("state").reset_index(name="jobs")
    runs = usage[over]
    if telemetry is not None and not telemetry.empty:
        measured = usage_telemetry(runs, telemetry, config.audit.idle_gpu.threshold)
        runs = _with_telemetry(runs, measured)
    params, used = parameters(runs, config)
    per_run = _per_run(runs, params, config)
    ledger = to_ledger(split_by_day(per_run), run_id)
    return Attribution(ledger, used, not_attributed)


def _with_telemetry(runs: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """Runs joined with their telemetry; DCGM's GPU utilisation replaces the scheduler's."""
    joined = runs.join(measured.set_index("usage_id"), on="usage_id")
    util = joined["telemetry_gpu_util_ratio"]
    joined["gpu_util_ratio"] = util.where(util.notna(), joined["gpu_util_ratio"])
    return joined


def _per_run(runs: pd.DataFrame, params: pd.DataFrame, config: Config) -> pd.DataFrame:
    it = energy.it_energy(runs, params)
    hours = runs["duration_s"].fillna(0) / S_PER_HOUR
    facility_kwh = it["it_energy_kwh"] * params["pue"]
    gpu_hours = runs["n_gpus"].fillna(0) * hours
    core_hours = runs["n_cpus"].fillna(0) * hours
    idle_s = runs.get("telemetry_idle_gpu_s", 0.0)
    idle_kwh = runs.get("telemetry_idle_energy_kwh", 0.0)
    frame = runs.assign(
        **{f"{p}_energy_kwh": it[f"{p}_energy_kwh"] for p in ("gpu", "cpu", "memory")},
        gpu_energy_telemetry_kwh=it["gpu_energy_telemetry_kwh"],
        telemetry_coverage_ratio=it["telemetry_coverage_ratio"],
        idle_gpu_hours=pd.Series(idle_s, index=runs.index).fillna(0.0) / S_PER_HOUR,
        idle_gpu_energy_kwh=pd.Series(idle_kwh, index=runs.index).fillna(0.0),
        it_energy_kwh=it["it_energy_kwh"],
        facility_energy_kwh=facility_kwh,
        energy_method=it["energy_method"],
        energy_note=_energy_notes(runs, it),
        gpu_hours=gpu_hours,
        cpu_core_hours=core_hours,
        **params.drop(columns=["currency", "rate_card_id"]),
        **carbon.operational_co2e(facility_kwh, params),
        **carbon.embodied_co2e(gpu_hours, core_hours, params),
        **cost.rate_card_cost(
            gpu_hours, core_hours, runs["mem_requested_gb"] * hours, facility_kwh, params
        ),
    )
    _allocated_cost(frame, runs)
    modelled = frame["energy_method"].isin(["modelled", "telemetry"])  # CPU, memory modelled
    frame["gpu_util_factor_id"] = frame["gpu_util_factor_id"].where(it["gpu_util_defaulted"])
    frame["gpu_power_factor_id"] = frame["gpu_power_factor_id"].where(it["gpu_model_used"])
    frame["cpu_util_factor_id"] = frame["cpu_util_factor_id"].where(
        it["cpu_util_defaulted"] & modelled
    )
    frame["energy_check_factor_id"] = frame["energy_check_factor_id"].where(
        runs["measured_energy_kwh"].notna()
    )
    frame["cpu_power_factor_id"] = frame["cpu_power_factor_id"].where(modelled)
    frame["memory_factor_id"] = frame["memory_factor_id"].where(modelled)
    frame["scope"] = "2"
    return owners.attribute_owners(frame, config.owners)


def _allocated_cost(frame: pd.DataFrame, runs: pd.DataFrame) -> None:
    """Rows whose source carries its own cost (OpenCost allocations) keep it, not the rate card."""
    if "cost" not in runs.columns:
        return
    own = runs["cost"].notna()
    frame.loc[own, "cost"] = runs.loc[own, "cost"].astype("float64")
    frame.loc[own, "currency"] = runs.loc[own, "currency"]
    frame.loc[own, "cost_basis"] = runs.loc[own, "source"].astype(str) + " allocation"
    frame.loc[own, "rate_card_id"] = None


def _energy_notes(runs: pd.DataFrame, it: pd.DataFrame) -> pd.Series:
    """Why a row's energy is what it is, where that is not the plain case."""
    notes = pd.Series(None, index=runs.index, dtype=object)
    rejected = it["measured_energy_rejected"]
    notes[rejected] = [
        f"measured {kwh:.6g} kWh rejected as implausible, modelled instead"
        for kwh in runs.loc[rejected, "measured_energy_kwh"]
    ]
    coverage = it["telemetry_coverage_ratio"].fillna(0.0)
    complete = it["energy_method"] == "telemetry"
    notes[complete] = "GPU energy measured by DCGM; CPU and memory modelled"
    partial = (coverage > 0) & ~complete & (it["energy_method"] != "measured")
    notes[partial] = [
        f"GPU energy measured by DCGM for {c:.0%} of GPU-time, the rest modelled"
        for c in coverage[partial]
    ]
    # A default CPU utilisation is recorded in cpu_util_factor_id, not repeated here.
    memory = it["memory_unknown"]
    notes[memory] = notes[memory].fillna("") + "; no ReqMem: memory power not counted"
    return notes.str.lstrip("; ")


def split_by_day(per_run: pd.DataFrame, extra_linear: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per run and UTC day, linear columns scaled by the share of the run's time that day."""
    start = per_run["started_at"].fillna(per_run["ended_at"])
    end = per_run["ended_at"]
    first_day = start.dt.floor("D")
    last_day = (end - pd.Timedelta(seconds=1)).dt.floor("D").where(end > start, end.dt.floor("D"))
    n_days = ((last_day - first_day).dt.days + 1).clip(lower=1).astype("int64")
    sliced = per_run.loc[per_run.index.repeat(n_days)].copy()
    # 0, 1, ... n-1 for each run's n days, without a Python loop over the runs
    counts = n_days.to_numpy()
    offset = np.arange(counts.sum(), dtype="int64") - np.repeat(np.cumsum(counts) - counts, counts)
    day = first_day.loc[sliced.index] + pd.to_timedelta(offset, unit="D")
    run_start, run_end, next_day = (
        start.loc[sliced.index],
        end.loc[sliced.index],
        day + pd.Timedelta(days=1),
    )
    slice_start = run_start.where(run_start > day, day)
    slice_end = run_end.where(run_end < next_day, next_day)
    window_s = (end - start).dt.total_seconds().loc[sliced.index]
    ratio = ((slice_end - slice_start).dt.total_seconds() / window_s).where(window_s > 0, 1.0)
    sliced = sliced.assign(
        day=day.dt.date, slice_start_at=slice_start, slice_end_at=slice_end, slice_ratio=ratio
    )
    for column in (*LINEAR_COLUMNS, *extra_linear):
        if column in sliced.columns:  # cloud lines carry no telemetry columns
            sliced[column] = sliced[column] * ratio
    return sliced.reset_index(drop=True)


def to_ledger(sliced: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """LEDGER_COLUMNS, sorted by day and run; text columns hold objects, None where missing.
    Built column by column in the sorted order: each text column is converted once (sorting the
    frame first would move every object column twice)."""
    keys = sliced[["day", "usage_id"]].reset_index(drop=True)
    order = keys.sort_values(["day", "usage_id"], kind="stable").index.to_numpy()
    index = pd.RangeIndex(len(order))
    columns: dict[str, pd.Series] = {}
    for field in LEDGER_SCHEMA:
        if field.name == "run_id" or field.name not in sliced.columns:
            fill = run_id if field.name == "run_id" else None
            columns[field.name] = pd.Series(np.full(len(order), fill), index=index, dtype=object)
        elif str(field.type) == "string":
            text = sliced[field.name].to_numpy(dtype=object, na_value=None)[order]
            columns[field.name] = pd.Series(text, index=index, dtype=object)
        else:
            columns[field.name] = sliced[field.name].iloc[order].set_axis(index)
    return pd.DataFrame(columns, index=index)
