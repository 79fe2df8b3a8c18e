"""The period's ledger for the report, read one day partition at a time and grouped.

The report's sections group and sum (kWh, kg CO2e, cost, GPU-hours per team, site, month...).
So each day's rows are grouped by every column a section groups by, filters on or lists (DIMS),
summing the additive figures, and the small per-day groups are concatenated: the sections run
on that rollup as on the rows and give the same figures, and memory holds one day's rows at a
time instead of the period's (1.1 GB per million rows). What does not add up is prepared per
row before grouping:
- distinct runs and billing lines: counts.py (RUNS on a run's first row in the period, found
  with `rollup_day.FirstRows`);
- the model cards' measured idle energy and telemetry-covered GPU-hours: per-row products
  (quarterly_tables.idle_products), summed;
- the uncertainty ranges recompute every row under other PUE, utilisation and grid cases:
  their KPI figures are sums, worked out per day and added (uncertainty.figures_of).
How a day is grouped, and why the figures are the same to the last digit: rollup_day.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting import ledger as store
from reporting import rollup_day as grouping
from reporting import uncertainty
from reporting.quarterly_tables import IDLE_INPUTS, IDLE_SUMS, idle_products_of
from reporting.rollup_day import Counters, FirstRows, array, per_value
from reporting.scratch import Scratch
from reporting.summary import FACTOR_ID_COLUMNS

DIMS = [
    "day", "team", "model", "phase", "site", "scope", "provider", "charge_category", "currency",
    "cost_basis", "energy_method", "energy_note", "region", "gpu_type", "pue",
    "grid_intensity_g_per_kwh", "market_intensity_g_per_kwh", *FACTOR_ID_COLUMNS, "run_id",
    "source_file",
]  # fmt: skip
SUMS = [
    "it_energy_kwh", "facility_energy_kwh", "co2e_location_kg", "co2e_market_kg",
    "co2e_embodied_kg", "gpu_hours", "cost", "gpu_energy_kwh", "gpu_energy_telemetry_kwh",
    *IDLE_SUMS,
]  # fmt: skip
FLOAT_DIMS = ["pue", "grid_intensity_g_per_kwh", "market_intensity_g_per_kwh"]
TEXT_DIMS = [c for c in DIMS if c not in ("day", "region", "gpu_type", *FLOAT_DIMS)]
# Read per row (decoded): the report keys, the uncertainty cases, the idle products, counting.
PER_ROW = [
    "scope", "gpu_model", "grid_zone", "n_gpus", "pue", "pue_factor_id", "gpu_util_factor_id",
    "energy_method", "gpu_power_factor_id", "idle_gpu_energy_kwh", "grid_intensity_g_per_kwh",
    "market_intensity_g_per_kwh", "gpu_hours", "telemetry_coverage_ratio", *uncertainty.MEASURES,
]  # fmt: skip
MEASURED = [c for c in SUMS if c not in IDLE_SUMS]
READ = list(dict.fromkeys([*TEXT_DIMS, *FLOAT_DIMS, *PER_ROW, *MEASURED, "usage_id", "ended_at"]))
DICTIONARY = list(dict.fromkeys([*TEXT_DIMS, "gpu_model", "grid_zone"]))
# Every day of the ledger, for the comparisons, trailing quarters and cost reconciliation.
HISTORY_DIMS = [
    "day", "currency", "scope", "energy_method", "grid_factor_id", "grid_intensity_g_per_kwh",
    "market_factor_id", "market_intensity_g_per_kwh", "pue_factor_id", "pue",
]  # fmt: skip
HISTORY_SUMS = [
    "facility_energy_kwh", "co2e_location_kg", "co2e_market_kg", "co2e_embodied_kg",
    "gpu_hours", "cost",
]  # fmt: skip
HELD = ["source_file", "currency", "cost_basis", "scope"]  # billing rows' cost, all days


@dataclass(frozen=True)
class Rollup:
    rows: pd.DataFrame  # the period's ledger grouped by DIMS: SUMS, COUNTS, n_gpus (max)
    uncertainty: dict[str, dict[str, float]]  # uncertainty.scenario_figures of the period
    history: pd.DataFrame  # every day grouped by HISTORY_DIMS: HISTORY_SUMS
    held: pd.DataFrame  # Scope 3.1 rows of every day grouped by HELD: cost


def _grouped(frame: pd.DataFrame, dims: list[str], sums: list[str]) -> pd.DataFrame:
    """`frame`'s `sums` per distinct `dims`, in order of first appearance (missing values a
    group of their own)."""
    ids = grouping.group_ids([frame[c] for c in dims])
    firsts = grouping.firsts(ids)
    keys = frame[dims].iloc[firsts].reset_index(drop=True)
    return pd.concat([keys, frame[sums].groupby(ids).sum(min_count=1).reset_index(drop=True)], axis=1)  # fmt: skip


def _floats(table: pa.Table, name: str, scratch: Scratch) -> np.ndarray:
    """A float column as numpy (missing: NaN), without a copy when none is missing."""
    column = array(table, name)
    if column.null_count and column.null_count == len(column):
        found = scratch.array(f"missing {name}", len(column))
        found.fill(np.nan)
        return found
    return column.to_numpy(zero_copy_only=False).astype(float, copy=False)


def _per_row(table: pa.Table, register: list[dict[str, Any]], scratch: Scratch) -> dict[str, np.ndarray]:  # fmt: skip
    """The uncertainty cases' inputs (uncertainty.case_inputs: the same values, from the
    dictionary columns' values instead of decoded rows) and the idle products' inputs."""
    values = {str(f["factor_id"]): float(f["value"]) for f in register}
    found = {c: _floats(table, c, scratch) for c in {*uncertainty.MEASURES, *IDLE_INPUTS, "n_gpus"}}  # fmt: skip
    scope = array(table, "scope")
    found["s2"] = per_value(scope, lambda v: v == "2", bool)
    found["s31"] = per_value(scope, lambda v: v == "3.1", bool)
    if np.isnan(np.sum(found["pue"])):  # a missing PUE (NaN makes the sum NaN) is 1.0
        pue = scratch.array("pue", table.num_rows)
        np.copyto(pue, found["pue"])
        np.copyto(pue, 1.0, where=np.isnan(found["pue"]))
        found["pue"] = pue
    defaults = uncertainty.default_pues(register)
    is_default = per_value(array(table, "pue_factor_id"), lambda v: v in defaults, bool)
    found["pue_low"], found["pue_high"] = uncertainty.pue_cases(found["pue"], is_default, scratch)
    util_ids, power_ids = array(table, "gpu_util_factor_id"), array(table, "gpu_power_factor_id")
    modelled = per_value(array(table, "energy_method"), lambda v: v == "modelled", bool)
    defaulted = modelled & pc.is_valid(util_ids).to_numpy(zero_copy_only=False)
    if defaulted.any():
        found["util_low"] = uncertainty.util_scale(
            defaulted,
            per_value(util_ids, lambda i: uncertainty.default_util(i, values), float),
            per_value(power_ids, lambda t: uncertainty.gpu_power_w(t, values, "min"), float),
            per_value(power_ids, lambda t: uncertainty.gpu_power_w(t, values, "max"), float),
        )
    else:  # what util_scale gives where no row is at the default
        found["util_low"] = scratch.array("util low", table.num_rows)
        found["util_low"].fill(1.0)
    return found


@dataclass
class _DayGroups:
    keys: pa.Table  # the groups' TEXT_DIMS and FLOAT_DIMS, decoded
    labels: dict[str, np.ndarray]  # the groups' day, region and gpu_type
    sums: dict[str, np.ndarray]  # grouping.group_sums of the groups


@dataclass
class _Reading:
    """What reading the days one by one carries from day to day."""

    register: list[dict[str, Any]]
    counters: Counters = field(default_factory=lambda: Counters(FirstRows(), FirstRows(), FirstRows()))  # fmt: skip
    scratch: Scratch = field(default_factory=Scratch)


def _day(table: pa.Table, day: date, reading: _Reading) -> tuple[_DayGroups, dict[str, dict[str, float]]]:  # fmt: skip
    """One day's groups and uncertainty figures."""
    register, counters, scratch = reading.register, reading.counters, reading.scratch
    per_row = _per_row(table, register, scratch)
    figures = uncertainty.figures_of(per_row, scratch)
    keyed = grouping.report_keys(table, per_row["n_gpus"])
    dims = [array(table, c) for c in [*TEXT_DIMS, *FLOAT_DIMS]]
    ids = grouping.group_ids([*dims, *(codes for codes, texts in keyed.values() if len(texts) > 1)])  # fmt: skip
    firsts = grouping.firsts(ids)
    products = idle_products_of(per_row, scratch)
    values = {c: products[c] if c in products else per_row[c] if c in per_row else _floats(table, c, scratch) for c in SUMS}  # fmt: skip
    flags = counters.flags(table, per_row, day)
    sums = grouping.group_sums(values, flags, per_row["n_gpus"], ids, len(firsts), scratch)
    keys = _plain(table.select([*TEXT_DIMS, *FLOAT_DIMS]).take(firsts))
    labels = {"day": np.array([day] * len(firsts), dtype=object)}
    labels |= {name: texts[codes[firsts]] for name, (codes, texts) in keyed.items()}
    return _DayGroups(keys, labels, sums), figures


def _plain(table: pa.Table) -> pa.Table:
    """The table with its dictionary columns decoded."""
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c
               for c in table.columns]  # fmt: skip
    return pa.table(columns, names=table.column_names)


def _rollup_rows(days: list[_DayGroups]) -> pd.DataFrame:
    """The days' groups as one frame: DIMS, then the sums; the keys made pandas at once (per
    day, pandas' per-column cost would outweigh the few groups)."""
    keys = pa.concat_tables([d.keys for d in days]).to_pandas()
    for name in ("day", "region", "gpu_type"):
        values = np.concatenate([d.labels[name] for d in days])
        keys[name] = pd.Series(values, dtype=object) if name == "day" else values
    sums = pd.DataFrame({name: np.concatenate([d.sums[name] for d in days]) for name in days[0].sums})  # fmt: skip
    return pd.concat([keys[DIMS], sums], axis=1)


def register_of(factors: pd.DataFrame) -> list[dict[str, Any]]:
    """The factor table as summary.factor_register lists it, every factor (not only those
    used): uncertainty looks up the values and default PUEs of the ids the rows name."""
    ordered = factors.sort_values(["kind", "factor_id"])
    return [{**row, "is_default": bool(row["is_default"])} for row in ordered.to_dict("records")]


def _history(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day's history and held (Scope 3.1) cost groups (of its rows or its rollup)."""
    held = _grouped(rows[rows["scope"] == "3.1"], HELD, ["cost"])
    return _grouped(rows, HISTORY_DIMS, HISTORY_SUMS), held


def _other_days(root: Path, start: date, end: date) -> Iterator[tuple[date, pd.DataFrame]]:
    """The rows of the days outside start..end, the history's columns only."""
    columns = list(dict.fromkeys([*HISTORY_DIMS, *HISTORY_SUMS, *HELD]))
    if start > date.min:
        yield from store.read_days(root, date.min, start - timedelta(days=1), columns)
    if end < date.max:
        yield from store.read_days(root, end + timedelta(days=1), date.max, columns)


def read(root: Path, start: date, end: date, factors: pd.DataFrame) -> Rollup:
    """The rollup of days start..end (inclusive), with every day's history; each partition
    read once."""
    register = register_of(factors)
    reading = _Reading(register)
    groups, figures = [], None
    earlier: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    later: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    for day, rows in _other_days(root, start, end):
        (earlier if day < start else later).append(_history(rows))
    for day, table in store.read_day_tables(root, start, end, READ, DICTIONARY):
        found_groups, found = _day(table, day, reading)
        groups.append(found_groups)
        figures = found if figures is None else uncertainty.added(figures, found)
    if not groups:
        empty = pa.Table.from_pandas(store.empty_rows(READ), preserve_index=False)
        found_groups, figures = _day(empty, start, reading)
        groups.append(found_groups)
    rows = _rollup_rows(groups)
    days = [*earlier, _history(rows), *later]  # the period's groups, grouped further
    history = pd.concat([h for h, _ in days], ignore_index=True)
    held = pd.concat([h for _, h in days], ignore_index=True)
    return Rollup(rows, figures, history, held)
