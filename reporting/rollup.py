"""The period's ledger for the report, read one day partition at a time and grouped.

The report's sections group and sum (kWh, kg CO2e, cost, GPU-hours per team, site, month...).
So each day's rows are grouped by every column a section groups by, filters on or lists (DIMS),
summing the additive figures, and the small per-day groups are concatenated: the sections run
on that rollup as on the rows and give the same figures, and memory holds one day's rows at a
time instead of the period's (1.1 GB per million rows). What does not add up is prepared per
row before grouping:
- distinct runs and billing lines: counts.py (RUNS on a run's first row in the period, found
  with `_FirstRows`);
- the model cards' measured idle energy and telemetry-covered GPU-hours: per-row products
  (quarterly_tables.idle_products), summed;
- the uncertainty ranges recompute every row under other PUE, utilisation and grid cases:
  their KPI figures are sums, worked out per day and added (uncertainty.figures_of).
The day's rows are never made pandas: what is worked out per text value (scope masks, factor
values, report keys) is worked out once per dictionary value of the column as the file stores
it and spread by the row's index, the rest is numpy on the Arrow columns; the operations are
those of the per-row definitions (uncertainty.case_inputs, quarterly.with_report_keys), in the
same order, so the figures are the same to the last digit (tests/test_rollup_parts.py).
Groups keep the order in which their first row appears (days in order, `sort=False`), so a
section that takes the first value of a column (location_table's grid factor id) finds the
one the rows would give.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting import counts, quarterly, uncertainty
from reporting import ledger as store
from reporting.quarterly_tables import IDLE_INPUTS, IDLE_SUMS, idle_products_of
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
COUNTS = [counts.ROWS, counts.RUNS, counts.TELEMETRY_RUNS, counts.BILLING_LINES]
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
NEVER = np.iinfo(np.int64).max  # the end of a run without one: it may go on
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Rollup:
    rows: pd.DataFrame  # the period's ledger grouped by DIMS: SUMS, COUNTS, n_gpus (max)
    uncertainty: dict[str, dict[str, float]]  # uncertainty.scenario_figures of the period
    history: pd.DataFrame  # every day grouped by HISTORY_DIMS: HISTORY_SUMS
    held: pd.DataFrame  # Scope 3.1 rows of every day grouped by HELD: cost


class _FirstRows:
    """Which rows are the first of their key (a usage id, a billing line) in the days read so
    far. Only keys whose run may still have rows on a later day are remembered (those ending
    after the day, or without an end), so the memory is the runs that span midnight."""

    def __init__(self) -> None:
        self._keys = pa.array([], pa.string())
        self._ends = np.empty(0, np.int64)  # each key's latest end, ms since the epoch

    def first(self, keys: pa.Array, ends: np.ndarray, midnight: int) -> np.ndarray:
        open_now = self._ends >= midnight
        self._keys, self._ends = self._keys.filter(pa.array(open_now)), self._ends[open_now]
        first = _first_of_key(keys)
        first &= ~pc.is_in(keys, value_set=self._keys).to_numpy(zero_copy_only=False)
        going_on = ends >= midnight + DAY_MS
        if going_on.any():
            both = pa.table({
                "key": pa.concat_arrays([self._keys, keys.filter(pa.array(going_on))]),
                "end": np.concatenate([self._ends, ends[going_on]]),
            })  # fmt: skip
            latest = both.group_by("key", use_threads=False).aggregate([("end", "max")])
            self._keys = latest.column("key").combine_chunks()
            self._ends = latest.column("end_max").to_numpy()
        return first


def _first_of_key(keys: pa.Array) -> np.ndarray:
    """Whether each row is the first of its key. A day's ledger rows are stored sorted by usage
    id, so equal keys are next to each other: compared with the row before, when the keys are
    in order (checked); else hashed."""
    if len(keys) > 1 and keys.null_count == 0:
        before, after = keys.slice(0, len(keys) - 1), keys.slice(1)
        if pc.all(pc.less_equal(before, after)).as_py():
            return np.concatenate([[True], pc.not_equal(before, after).to_numpy(zero_copy_only=False)])  # fmt: skip
    # Codes are numbered in order of first appearance: a row is its key's first when its code
    # is above every earlier row's.
    codes = pc.dictionary_encode(keys).indices.to_numpy().astype(np.int64)
    return codes > np.maximum.accumulate(np.concatenate([[-1], codes[:-1]]))


def _milliseconds(column: pa.ChunkedArray) -> np.ndarray:
    """Timestamps as ms since the epoch, missing ones NEVER."""
    stamps = pc.cast(column, pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    return pc.fill_null(stamps, NEVER).to_numpy()


@dataclass
class _Counters:
    runs: _FirstRows
    telemetry: _FirstRows
    lines: _FirstRows

    def flags(self, table: pa.Table, per_row: dict[str, np.ndarray], day: date) -> dict[str, np.ndarray]:  # fmt: skip
        """COUNTS per row: 1 on the first row of a run, of a covered run, of a billing line."""
        midnight = int(pd.Timestamp(day, tz="UTC").value // 10**6)
        ids = pc.fill_null(table.column("usage_id"), "").combine_chunks()
        ends = _milliseconds(table.column("ended_at"))
        coverage = per_row["telemetry_coverage_ratio"]
        covered = per_row["s2"] & (np.where(np.isnan(coverage), 0.0, coverage) > 0)
        cloud = per_row["s31"]
        telemetry, lines = np.zeros(table.num_rows, bool), np.zeros(table.num_rows, bool)
        if covered.any():
            telemetry[covered] = self.telemetry.first(ids.filter(pa.array(covered)), ends[covered], midnight)  # fmt: skip
        if cloud.any():
            line_ids = pc.list_element(pc.split_pattern(ids.filter(pa.array(cloud)), "#"), 0)
            lines[cloud] = self.lines.first(line_ids, ends[cloud], midnight)
        return {
            counts.ROWS: np.ones(table.num_rows, np.int64),
            counts.RUNS: self.runs.first(ids, ends, midnight).astype(np.int64),
            counts.TELEMETRY_RUNS: telemetry.astype(np.int64),
            counts.BILLING_LINES: lines.astype(np.int64),
        }


def _codes(column: pa.Array | np.ndarray) -> np.ndarray:
    """A code per row for its value (-1 or above), missing values one code of their own;
    integer arrays are codes already."""
    if isinstance(column, pa.DictionaryArray):  # the file's own dictionary, no text hashed
        return pc.fill_null(column.indices, -1).to_numpy()
    if isinstance(column, np.ndarray) and column.dtype.kind == "i":  # codes already
        return column
    if isinstance(column, pa.Array):
        column = column.to_numpy(zero_copy_only=False)
    return pd.factorize(column, use_na_sentinel=False)[0]


def _group_ids(columns: list[pa.Array | np.ndarray]) -> np.ndarray:
    """A group number per row for its combination of values, numbered in the order the
    groups' first rows appear. The columns' codes are combined as digits of one number
    (renumbered only when it could overflow), so most days hash one integer column."""
    ids, size = np.zeros(len(columns[0]), dtype=np.int64), 1
    for column in columns:
        codes = _codes(column).astype(np.int64)
        radix = int(codes.max(initial=-1)) + 2
        if size * radix >= 2**62:
            ids = pd.factorize(ids)[0]
            size = int(ids.max(initial=0)) + 1
        ids, size = ids * radix + codes + 1, size * radix
    return pd.factorize(ids)[0]


def _slots(column: pa.ChunkedArray) -> tuple[list[Any], np.ndarray]:
    """A dictionary column's values, missing last (None), and each row's slot in them."""
    array = column.combine_chunks()
    if not pa.types.is_dictionary(array.type):  # an empty period's columns
        array = pc.dictionary_encode(array)
    values = [*array.dictionary.to_pylist(), None]
    return values, pc.fill_null(array.indices, len(values) - 1).to_numpy()


def _firsts(ids: np.ndarray) -> np.ndarray:
    """Each group's first row, by group number (`_group_ids` numbers groups in the order of
    their first rows: a first row's number is above every earlier row's; no sort)."""
    return np.flatnonzero(ids > np.maximum.accumulate(np.concatenate([[-1], ids[:-1]])))


def _per_value(column: pa.ChunkedArray, function: Any, dtype: Any) -> np.ndarray:
    """`function` of each row's value of a dictionary column (None when missing), called
    once per dictionary value."""
    values, slots = _slots(column)
    return np.array([function(v) for v in values], dtype=dtype)[slots]


def _sums(values: pd.DataFrame, ids: np.ndarray, sums: list[str], extra: list[str]) -> list[pd.DataFrame]:  # fmt: skip
    """Per group (ids 0..n): `sums` (missing when all rows are: min_count=1, as the rows'
    `notna` filters expect), `extra` counts summed and n_gpus the largest."""
    grouped = values.groupby(ids)
    parts = [grouped[sums].sum(min_count=1)]
    if extra:
        parts.append(grouped[[c for c in extra if c != "n_gpus"]].sum())
        parts.append(grouped[["n_gpus"]].max())
    return [p.reset_index(drop=True) for p in parts]


def _grouped(frame: pd.DataFrame, dims: list[str], sums: list[str]) -> pd.DataFrame:
    """`frame`'s `sums` per distinct `dims`, in order of first appearance (missing values a
    group of their own)."""
    ids = _group_ids([frame[c] for c in dims])
    firsts = _firsts(ids)
    keys = frame[dims].iloc[firsts].reset_index(drop=True)
    return pd.concat([keys, *_sums(frame[sums], ids, sums, [])], axis=1)


def _floats(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy().astype(float, copy=False)  # missing: NaN


def _per_row(table: pa.Table, register: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The uncertainty cases' inputs (uncertainty.case_inputs: the same values, from the
    dictionary columns' values instead of decoded rows) and the idle products' inputs."""
    values = {str(f["factor_id"]): float(f["value"]) for f in register}
    found = {c: _floats(table, c) for c in {*uncertainty.MEASURES, *IDLE_INPUTS, "n_gpus"}}
    scope = table.column("scope")
    found["s2"] = _per_value(scope, lambda v: v == "2", bool)
    found["s31"] = _per_value(scope, lambda v: v == "3.1", bool)
    found["pue"] = np.where(np.isnan(found["pue"]), 1.0, found["pue"])
    defaults = uncertainty.default_pues(register)
    is_default = _per_value(table.column("pue_factor_id"), lambda v: v in defaults, bool)
    found["pue_low"], found["pue_high"] = uncertainty.pue_cases(found["pue"], is_default)
    util_ids, power_ids = table.column("gpu_util_factor_id"), table.column("gpu_power_factor_id")
    modelled = _per_value(table.column("energy_method"), lambda v: v == "modelled", bool)
    found["util_low"] = uncertainty.util_scale(
        modelled & pc.is_valid(util_ids).to_numpy(zero_copy_only=False),
        _per_value(util_ids, lambda i: uncertainty.default_util(i, values), float),
        _per_value(power_ids, lambda t: uncertainty.gpu_power_w(t, values, "min"), float),
        _per_value(power_ids, lambda t: uncertainty.gpu_power_w(t, values, "max"), float),
    )
    return found


def _report_keys(table: pa.Table, n_gpus: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """quarterly.with_report_keys' region and gpu_type: per row a code, one per distinct
    text, and the texts by code (worked out per dictionary value)."""
    values, slots = _slots(table.column("grid_zone"))
    region = [quarterly.UNALLOCATED if v is None else str(v) for v in values]
    models, gpu_slots = _slots(table.column("gpu_model"))
    gpu_type = [*models[:-1], quarterly.UNALLOCATED, quarterly.NO_GPU]
    no_gpu = ~(np.where(np.isnan(n_gpus), 0.0, n_gpus) > 0)
    gpu_slots = gpu_slots + ((gpu_slots == len(models) - 1) & no_gpu)  # missing: by has_gpu
    keys = {}
    for name, texts, rows in (("region", region, slots), ("gpu_type", gpu_type, gpu_slots)):
        codes, distinct = pd.factorize(np.array(texts, dtype=object))
        keys[name] = (codes[rows], np.asarray(distinct, dtype=object))
    return keys


@dataclass
class _DayGroups:
    keys: pa.Table  # the groups' TEXT_DIMS and FLOAT_DIMS, decoded
    labels: dict[str, np.ndarray]  # the groups' day, region and gpu_type
    sums: list[pd.DataFrame]  # _sums of the groups


def _day(table: pa.Table, day: date, register: list[dict[str, Any]], counters: _Counters) -> tuple[_DayGroups, dict[str, dict[str, float]]]:  # fmt: skip
    """One day's groups and uncertainty figures."""
    per_row = _per_row(table, register)
    figures = uncertainty.figures_of(per_row)
    keyed = _report_keys(table, per_row["n_gpus"])
    values = pd.DataFrame({
        **{c: _floats(table, c) for c in MEASURED}, **idle_products_of(per_row),
        **counters.flags(table, per_row, day), "n_gpus": per_row["n_gpus"],
    })  # fmt: skip
    dims = [table.column(c).chunk(0) if table.num_rows else table.column(c).combine_chunks()
            for c in [*TEXT_DIMS, *FLOAT_DIMS]]  # fmt: skip
    ids = _group_ids([*dims, keyed["region"][0], keyed["gpu_type"][0]])
    firsts = _firsts(ids)
    keys = _plain(table.select([*TEXT_DIMS, *FLOAT_DIMS]).take(firsts))
    labels = {"day": np.array([day] * len(firsts), dtype=object)}
    labels |= {name: texts[codes[firsts]] for name, (codes, texts) in keyed.items()}
    return _DayGroups(keys, labels, _sums(values, ids, SUMS, [*COUNTS, "n_gpus"])), figures


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
    sums = [pd.concat(parts, ignore_index=True) for parts in zip(*[d.sums for d in days], strict=True)]  # fmt: skip
    return pd.concat([keys[DIMS], *sums], axis=1)


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
    counters = _Counters(_FirstRows(), _FirstRows(), _FirstRows())
    groups, figures = [], None
    earlier: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    later: list[tuple[pd.DataFrame, pd.DataFrame]] = []
    for day, rows in _other_days(root, start, end):
        (earlier if day < start else later).append(_history(rows))
    for day, table in store.read_day_tables(root, start, end, READ, DICTIONARY):
        found_groups, found = _day(table, day, register, counters)
        groups.append(found_groups)
        figures = found if figures is None else uncertainty.added(figures, found)
    if not groups:
        empty = pa.Table.from_pandas(store.empty_rows(READ), preserve_index=False)
        found_groups, figures = _day(empty, start, register, counters)
        groups.append(found_groups)
    rows = _rollup_rows(groups)
    days = [*earlier, _history(rows), *later]  # the period's groups, grouped further
    history = pd.concat([h for h, _ in days], ignore_index=True)
    held = pd.concat([h for _, h in days], ignore_index=True)
    return Rollup(rows, figures, history, held)
