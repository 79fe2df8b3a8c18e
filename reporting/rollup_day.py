"""One day partition of the ledger grouped for the rollup (rollup.py).

The day's rows are never made pandas: what is worked out per text value (scope masks, factor
values, report keys) is worked out once per dictionary value of the column as the file stores
it and spread by the row's index, the rest is numpy on the Arrow columns; the operations are
those of the per-row definitions (uncertainty.case_inputs, quarterly.with_report_keys), in the
same order, so the figures are the same to the last digit (tests/test_rollup_parts.py).
A column holding one value in every row (or none; most text columns of a day) takes no part
in the grouping and its per-value results are that value's. Groups are numbered in the order
in which their first row appears, so a section that takes the first value of a column
(location_table's grid factor id) finds the one the rows would give.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting import counts, quarterly
from reporting.scratch import Scratch

NEVER = np.iinfo(np.int64).max  # the end of a run without one: it may go on
DAY_MS = 86_400_000
COUNTS = [counts.ROWS, counts.RUNS, counts.TELEMETRY_RUNS, counts.BILLING_LINES]


class FirstRows:
    """Which rows are the first of their key (a usage id, a billing line) in the days read so
    far. Only keys whose run may still have rows on a later day are remembered (those ending
    after the day, or without an end), with their latest end: the runs that span midnight."""

    def __init__(self) -> None:
        self._keys = pa.array([], pa.string())  # distinct
        self._ends = np.empty(0, np.int64)  # each key's latest end, ms since the epoch

    def first(self, keys: pa.Array, ends: np.ndarray, midnight: int) -> np.ndarray:
        open_now = self._ends >= midnight
        if not open_now.all():
            self._keys, self._ends = self._keys.filter(pa.array(open_now)), self._ends[open_now]
        ordered = in_order(keys)
        first = first_of_key(keys, ordered)
        known = np.zeros(len(keys), bool)
        start, stop = self._candidates(keys, ordered)
        at = pc.index_in(keys.slice(start, stop - start), value_set=self._keys)
        known[start:stop] = pc.is_valid(at).to_numpy(zero_copy_only=False)
        first &= ~known
        going_on = ends >= midnight + DAY_MS
        again = going_on[start:stop] & known[start:stop]
        if again.any():  # remembered runs going on again: their latest end
            self._ends = self._ends.copy()
            slots = pc.fill_null(at, 0).to_numpy()[again]
            np.maximum.at(self._ends, slots, ends[start:stop][again])
        self._remember(keys, ends, going_on & ~known)
        return first

    def _candidates(self, keys: pa.Array, ordered: bool) -> tuple[int, int]:
        """The rows whose keys may be remembered ones: all, or when the keys are in order those
        between the smallest and the largest remembered key (runs going on from an earlier day
        are those of the lowest job ids, often a small part of the day's)."""
        if not len(self._keys):
            return 0, 0
        if not ordered:
            return 0, len(keys)
        bounds = pc.min_max(self._keys)
        texts = _Texts(keys)
        start = bisect.bisect_left(texts, bounds["min"].as_py())
        return start, max(start, bisect.bisect_right(texts, bounds["max"].as_py()))

    def _remember(self, keys: pa.Array, ends: np.ndarray, new: np.ndarray) -> None:
        """Remember the keys of the `new` rows (going on past the day, not remembered yet),
        each with its latest end."""
        if new.any():
            encoded = pc.dictionary_encode(keys.filter(pa.array(new)))
            latest = np.full(len(encoded.dictionary), np.iinfo(np.int64).min)
            np.maximum.at(latest, encoded.indices.to_numpy(), ends[new])
            self._keys = pa.concat_arrays([self._keys, encoded.dictionary])
            self._ends = np.concatenate([self._ends, latest])


class _Texts:
    """A text array as a sequence of str, for `bisect` (str order is UTF-8 byte order, the
    order Arrow compares in)."""

    def __init__(self, array: pa.Array) -> None:
        self._array = array

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, index: int) -> str:
        return self._array[index].as_py()


def in_order(keys: pa.Array) -> bool:
    """Whether the keys are sorted, none missing."""
    if keys.null_count or len(keys) < 2:
        return not keys.null_count
    return pc.all(pc.less_equal(keys.slice(0, len(keys) - 1), keys.slice(1))).as_py()


def first_of_key(keys: pa.Array, ordered: bool | None = None) -> np.ndarray:
    """Whether each row is the first of its key. A day's ledger rows are stored sorted by usage
    id, so equal keys are next to each other: compared with the row before, when the keys are
    in order (`ordered`, checked when not given); else hashed."""
    if len(keys) > 1 and (in_order(keys) if ordered is None else ordered):
        before, after = keys.slice(0, len(keys) - 1), keys.slice(1)
        return np.concatenate([[True], pc.not_equal(before, after).to_numpy(zero_copy_only=False)])  # fmt: skip
    # Codes are numbered in order of first appearance: a row is its key's first when its code
    # is above every earlier row's.
    codes = pc.dictionary_encode(keys).indices.to_numpy().astype(np.int64)
    return codes > np.maximum.accumulate(np.concatenate([[-1], codes[:-1]]))


def array(table: pa.Table, name: str) -> pa.Array:
    """A column of the table as one array (the tables read are in one chunk: no copy)."""
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _milliseconds(column: pa.Array) -> np.ndarray:
    """Timestamps as ms since the epoch, missing ones NEVER."""
    stamps = pc.cast(column, pa.timestamp("ms", tz="UTC")).cast(pa.int64())
    return pc.fill_null(stamps, NEVER).to_numpy()


@dataclass
class Counters:
    runs: FirstRows
    telemetry: FirstRows
    lines: FirstRows

    def flags(self, table: pa.Table, per_row: dict[str, np.ndarray], day: date) -> dict[str, np.ndarray | None]:  # fmt: skip
        """COUNTS per row: true on the first row of a run, of a covered run, of a billing line
        (ROWS: None, every row)."""
        midnight = int(pd.Timestamp(day, tz="UTC").value // 10**6)
        ids = pc.fill_null(array(table, "usage_id"), "")
        ends = _milliseconds(array(table, "ended_at"))
        covered = per_row["s2"] & (per_row["telemetry_coverage_ratio"] > 0)  # NaN: not covered
        cloud = per_row["s31"]
        telemetry, lines = np.zeros(table.num_rows, bool), np.zeros(table.num_rows, bool)
        if covered.any():
            telemetry[covered] = self.telemetry.first(ids.filter(pa.array(covered)), ends[covered], midnight)  # fmt: skip
        if cloud.any():
            line_ids = pc.list_element(pc.split_pattern(ids.filter(pa.array(cloud)), "#"), 0)
            lines[cloud] = self.lines.first(line_ids, ends[cloud], midnight)
        return {
            counts.ROWS: None,  # every row
            counts.RUNS: self.runs.first(ids, ends, midnight),
            counts.TELEMETRY_RUNS: telemetry,
            counts.BILLING_LINES: lines,
        }


# --- per dictionary value -----------------------------------------------------------------------


def single(column: pa.Array) -> tuple[bool, Any]:
    """Whether every row holds the same value (a dictionary column with one entry and no
    missing value, or missing throughout), and that value (None: missing)."""
    if column.null_count == len(column):
        return True, None
    if pa.types.is_dictionary(column.type) and len(column.dictionary) == 1 and column.null_count == 0:  # fmt: skip
        return True, column.dictionary[0].as_py()
    return False, None


def slots(column: pa.Array) -> tuple[list[Any], np.ndarray]:
    """A dictionary column's values, missing last (None), and each row's slot in them."""
    if not pa.types.is_dictionary(column.type):  # an empty period's columns
        column = pc.dictionary_encode(column)
    values = [*column.dictionary.to_pylist(), None]
    if not column.null_count:
        return values, column.indices.to_numpy()
    return values, pc.fill_null(column.indices, len(values) - 1).to_numpy()


def per_value(column: pa.Array, function: Callable[[Any], Any], dtype: Any) -> np.ndarray:
    """`function` of each row's value of a dictionary column (None when missing), called
    once per dictionary value."""
    one, value = single(column)
    if one:
        return np.full(len(column), function(value), dtype=dtype)
    values, rows = slots(column)
    return np.array([function(v) for v in values], dtype=dtype)[rows]


# --- grouping -----------------------------------------------------------------------------------


def _codes(column: pa.Array | np.ndarray) -> tuple[np.ndarray, int] | None:
    """A code per row for its value (0 up, missing values one of their own) and how many
    codes there may be; None when every row has the same value."""
    if isinstance(column, np.ndarray) and column.dtype.kind in "iu":  # codes already
        if not len(column) or (low := int(column.min())) == (high := int(column.max())):
            return None
        return (column - low if low else column), high - low + 1
    if isinstance(column, pa.Array) and single(column)[0]:
        return None
    if isinstance(column, pa.DictionaryArray):  # the file's own dictionary, no text hashed
        if not column.null_count:
            return column.indices.to_numpy(), len(column.dictionary)
        return pc.fill_null(column.indices, len(column.dictionary)).to_numpy(), len(column.dictionary) + 1  # fmt: skip
    values = column.to_numpy(zero_copy_only=False) if isinstance(column, pa.Array) else column
    floats = isinstance(values, np.ndarray) and values.dtype.kind == "f" and len(values)
    if floats and (values.view(np.int64) == values[:1].view(np.int64)).all():
        return None  # the same bits throughout
    codes = pd.factorize(values, use_na_sentinel=False)[0]
    return codes, int(codes.max(initial=0)) + 1


def group_ids(columns: list[pa.Array | np.ndarray]) -> np.ndarray:
    """A group number per row for its combination of values, numbered in the order the
    groups' first rows appear. The columns' codes are combined as digits of one number
    (renumbered only when it could overflow), so most days hash one integer column; a column
    with one value throughout changes no combination and is left out."""
    ids, size = None, 1
    for column in columns:
        found = _codes(column)
        if found is None:
            continue
        codes, radix = found
        if ids is None:
            ids, size = codes.astype(np.int64), radix
            continue
        if size * radix >= 2**62:
            ids = pd.factorize(ids)[0].astype(np.int64)
            size = int(ids.max(initial=0)) + 1
        ids *= radix
        ids += codes
        size *= radix
    if ids is None:
        return np.zeros(len(columns[0]), np.int64)
    return pd.factorize(ids)[0]


def firsts(ids: np.ndarray) -> np.ndarray:
    """Each group's first row, by group number (`group_ids` numbers groups in the order of
    their first rows: a first row's number is above every earlier row's; no sort)."""
    return np.flatnonzero(ids > np.maximum.accumulate(np.concatenate([[-1], ids[:-1]])))


def group_sums(values: dict[str, np.ndarray], flags: dict[str, np.ndarray | None], n_gpus: np.ndarray, ids: np.ndarray, groups: int, scratch: Scratch) -> dict[str, np.ndarray]:  # fmt: skip
    """Per group (ids 0..groups-1): the `values` summed (missing when all the group's rows
    are: min_count=1, as the rows' `notna` filters expect), the true `flags` counted (None:
    every row) and n_gpus the largest. Sums are pandas' (compensated, in row order): the
    figures grouping the rows in pandas gives."""
    found, summed = {}, []
    for name, column in values.items():
        if _all_zero(column):  # pandas' sums of ±0 are +0.0
            found[name] = np.zeros(groups)
        elif len(column) and np.isnan(column[0]) and np.isnan(column).all():
            found[name] = np.full(groups, np.nan)
        else:
            summed.append(name)
    if summed:
        block = scratch.array("sums", len(summed) * len(ids)).reshape(len(summed), len(ids))
        for row, name in enumerate(summed):
            block[row] = values[name]
        frame = pd.DataFrame(block.T, columns=summed, copy=False)
        sums = frame.groupby(ids, sort=False).sum(min_count=1).to_numpy()
        found |= {name: sums[:, column] for column, name in enumerate(summed)}
    for name, rows in flags.items():
        found[name] = np.bincount(ids if rows is None else ids[rows], minlength=groups)
    found["n_gpus"] = _largest(n_gpus, ids, groups)
    return {name: found[name] for name in [*values, *flags, "n_gpus"]}


def _all_zero(column: np.ndarray) -> bool:
    """Whether every value is ±0 (a NaN is not), looking at the first one before all."""
    return not len(column) or (column[0] == 0 and not column.any())


def _largest(values: np.ndarray, ids: np.ndarray, groups: int) -> np.ndarray:
    """Each group's largest value, missing when all are (pandas' groupby max)."""
    if np.signbit(values).any():  # -0.0 (or below 0): pandas' own, whose ±0 may differ
        return pd.Series(values).groupby(ids, sort=False).max().to_numpy()
    largest = np.full(groups, np.nan)
    np.fmax.at(largest, ids, values)
    return largest


def report_keys(table: pa.Table, n_gpus: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """quarterly.with_report_keys' region and gpu_type: per row a code, one per distinct
    text, and the texts by code (worked out per dictionary value)."""
    rows = table.num_rows
    no_gpu = ~(np.where(np.isnan(n_gpus), 0.0, n_gpus) > 0)
    zones, models = array(table, "grid_zone"), array(table, "gpu_model")
    one_zone, zone = single(zones)
    one_model, model = single(models)
    if one_zone:
        region = (np.zeros(rows, np.intp), [quarterly.UNALLOCATED if zone is None else str(zone)])
    else:
        values, slot = slots(zones)
        region = (slot, [quarterly.UNALLOCATED if v is None else str(v) for v in values])
    if one_model and model is not None:
        gpu_type = (np.zeros(rows, np.intp), [model])
    else:
        values, slot = slots(models)
        missing = len(values) - 1
        gpu_type = (slot + ((slot == missing) & no_gpu), [*values[:-1], quarterly.UNALLOCATED, quarterly.NO_GPU])  # fmt: skip
    keys = {}
    for name, (where, texts) in (("region", region), ("gpu_type", gpu_type)):
        codes, distinct = pd.factorize(np.array(texts, dtype=object))
        rows_codes = codes[where] if len(distinct) > 1 else np.zeros(rows, np.intp)
        keys[name] = (rows_codes, np.asarray(distinct, dtype=object))
    return keys
