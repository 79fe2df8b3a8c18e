"""The rollup's per-day building blocks (rollup.py) on small hand-made columns: the shortcuts
(sorted keys compared with their neighbour, codes combined as digits, per-dictionary-value
functions) must give what the plain per-row definitions give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from reporting import rollup, rollup_day, uncertainty
from reporting.scratch import Scratch

KEYS = ["b#1", "a", "b#1", "c", "a", "a", "d", "c"]


def _first_by_definition(keys: list[str]) -> list[bool]:
    return [key not in keys[:i] for i, key in enumerate(keys)]


@pytest.mark.parametrize("keys", [KEYS, sorted(KEYS), ["x"], [], ["a", "a", "a"]])
def test_first_of_key_marks_each_keys_first_row_sorted_or_not(keys: list[str]) -> None:
    found = rollup_day.first_of_key(pa.array(keys, pa.string()))
    assert found.tolist() == _first_by_definition(keys)


def test_first_rows_remember_a_run_going_on_past_midnight() -> None:
    day_ms = rollup_day.DAY_MS
    first = rollup_day.FirstRows()
    ends = np.array([2 * day_ms, day_ms // 2, 2 * day_ms])  # a and c go on to the next day
    assert first.first(pa.array(["a", "b", "c"]), ends, 0).tolist() == [True, True, True]
    later = first.first(pa.array(["a", "b", "d"]), np.full(3, 2 * day_ms), day_ms)
    assert later.tolist() == [False, True, True]  # b ended before: a new run of the same id


def test_group_ids_number_combinations_in_order_of_first_appearance() -> None:
    team = pa.array(["x", "y", "x", None, "y", None]).dictionary_encode()
    pue = pa.array([1.2, 1.2, 1.2, np.nan, 1.3, np.nan])
    codes = np.array([0, 0, 0, 1, 0, 1])
    ids = rollup_day.group_ids([team, pue, codes])
    assert ids.tolist() == [0, 1, 0, 2, 3, 2]


def test_group_ids_renumber_before_the_digits_overflow() -> None:
    # 40 columns of 3 values: 3**40 would overflow an int64 without renumbering.
    rng = np.random.default_rng(7)
    columns = [rng.integers(0, 3, size=200) for _ in range(40)]
    ids = rollup_day.group_ids(columns)
    expected = pd.factorize(pd.Series(list(zip(*columns, strict=True))))[0]
    assert ids.tolist() == expected.tolist()


def test_per_value_applies_the_function_once_per_dictionary_value_and_to_missing() -> None:
    column = pa.array(["gpu:a", None, "gpu:b", "gpu:a"]).dictionary_encode()
    calls: list[object] = []

    def length(value: object) -> float:
        calls.append(value)
        return -1.0 if value is None else float(len(str(value)))

    assert rollup_day.per_value(column, length, float).tolist() == [5.0, -1.0, 5.0, 5.0]
    assert len(calls) == 3
    assert set(calls) == {"gpu:a", "gpu:b", None}


def test_case_arrays_from_arrow_equal_those_from_pandas_rows() -> None:
    register = [
        {"factor_id": "pue:default", "kind": "pue", "value": 1.58, "is_default": True},
        {"factor_id": "util:default", "kind": "gpu_util", "value": 0.8, "is_default": True},
        {"factor_id": "p:min", "kind": "gpu_power", "value": 100.0, "is_default": True},
        {"factor_id": "p:max", "kind": "gpu_power", "value": 700.0, "is_default": True},
    ]
    rows = pd.DataFrame({
        "scope": ["2", "3.1", "2", None], "pue": [1.58, np.nan, 1.2, 1.4],
        "pue_factor_id": ["pue:default", None, "config:x", "pue:default"],
        "gpu_util_factor_id": ["util:default", None, "util:default", None],
        "gpu_power_factor_id": ["p:min;p:max", None, "p:min;p:max", "p:min;p:max"],
        "energy_method": ["modelled", "provider", "measured", "modelled"],
        **{m: [1.0, 2.0, np.nan, 0.5] for m in uncertainty.MEASURES},
        **{c: [0.1, np.nan, 0.3, 0.0] for c in ["idle_gpu_energy_kwh", "gpu_hours",
           "telemetry_coverage_ratio", "grid_intensity_g_per_kwh",
           "market_intensity_g_per_kwh", "n_gpus"]},
    })  # fmt: skip
    text = [c for c in rows.columns if rows[c].dtype != float]
    table = pa.table({c: pa.array(rows[c]).dictionary_encode() if c in text else pa.array(rows[c]) for c in rows.columns})  # fmt: skip
    found = rollup._per_row(table, register, Scratch())
    expected = uncertainty.case_inputs(rows, register)
    for name, values in expected.items():
        np.testing.assert_array_equal(found[name], values, err_msg=name)
    assert uncertainty.figures_of(found) == uncertainty.scenario_figures(rows, register)


def test_firsts_are_each_groups_first_row_in_group_order() -> None:
    ids = rollup_day.group_ids([np.array([3, 1, 3, 2, 1, 2, 4])])
    assert rollup_day.firsts(ids).tolist() == np.unique(ids, return_index=True)[1].tolist()
    assert rollup_day.firsts(ids).tolist() == [0, 1, 3, 6]
    assert rollup_day.firsts(np.array([], dtype=np.int64)).tolist() == []


def test_day_tables_made_from_statistics_hold_what_the_file_holds(tmp_path) -> None:
    """One-value text columns are made from the file's statistics, not decoded: also with a
    value too long for statistics, two row groups of different values, and missing ones."""
    from datetime import date

    import pyarrow.parquet as pq

    from reporting import ledger

    day = date(2026, 7, 2)
    path = ledger.partition_path(tmp_path, day)
    path.parent.mkdir(parents=True)
    rows = 6
    table = pa.table({
        "scope": ["2"] * rows, "provider": pa.nulls(rows, pa.string()),
        "team": ["a", "b", None, "a", "b", "b"], "site": ["x"] * 3 + ["y"] * 3,
        "energy_note": ["n" * 5000] * rows, "currency": ["USD"] * 3 + [None] * 3,
        "cost": [1.0, 2.0, None, 4.0, 5.0, 6.0],
    })  # fmt: skip
    pq.write_table(table, path, row_group_size=3, write_statistics=True)
    columns = [*table.column_names, "run_id"]  # run_id: not in the file
    (found_day, found), = ledger.read_day_tables(tmp_path, day, day, columns, columns[:-2] + ["run_id"])  # fmt: skip
    assert found_day == day
    for name in table.column_names:
        column = found.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        assert column.to_pylist() == table.column(name).to_pylist(), name
    assert found.column("run_id").null_count == rows
    assert pa.types.is_dictionary(found.column("scope").type)


def test_group_sums_are_pandas_groupby_sums_and_max() -> None:
    rng = np.random.default_rng(3)
    size, groups = 500, 7
    ids = pd.factorize(rng.integers(0, groups, size))[0]
    values = {
        "some": rng.choice([np.nan, 1.5, -2.25, 1e17, 3.0], size), "zeros": np.where(rng.random(size) < 0.5, 0.0, -0.0),
        "missing": np.full(size, np.nan), "plain": rng.random(size),
    }  # fmt: skip
    n_gpus = rng.choice([np.nan, 0.0, 1.0, 8.0], size)
    flags = {"rows": None, "firsts": rng.random(size) < 0.3}
    found = rollup_day.group_sums(values, flags, n_gpus, ids, groups, Scratch())
    frame = pd.DataFrame({**values, "n_gpus": n_gpus, "firsts": flags["firsts"].astype(np.int64)})  # fmt: skip
    grouped = frame.groupby(ids)
    expected = {name: grouped[name].sum(min_count=1).to_numpy() for name in values}
    expected |= {"rows": grouped.size().to_numpy(), "firsts": grouped["firsts"].sum().to_numpy()}
    expected["n_gpus"] = grouped["n_gpus"].max().to_numpy()
    assert list(found) == [*values, *flags, "n_gpus"]
    for name, column in expected.items():
        assert found[name].dtype == column.dtype, name
        assert found[name].tobytes() == column.tobytes(), name
    with_negative_zero = np.where(rng.random(size) < 0.5, -0.0, 0.0)
    largest = rollup_day.group_sums({}, {}, with_negative_zero, ids, groups, Scratch())["n_gpus"]
    assert (
        largest.tobytes() == pd.Series(with_negative_zero).groupby(ids).max().to_numpy().tobytes()
    )


@pytest.mark.parametrize("ordered", [True, False])
def test_first_rows_over_days_are_the_first_by_definition(ordered: bool) -> None:
    """Day after day, a row is first when no earlier row of its key, that day or on an earlier
    day whose run was still open at the day's start (its latest end at or after midnight), had
    it: sorted days (looked up between the remembered keys' bounds) and unsorted ones."""
    rng = np.random.default_rng(11)
    day_ms, first = rollup_day.DAY_MS, rollup_day.FirstRows()
    latest: dict[str, int] = {}  # by definition: every key's latest end so far
    for day in range(6):
        midnight = day * day_ms
        keys = [f"job:{k:03d}" for k in rng.integers(0, 60, 40)]
        keys = sorted(keys) if ordered else keys
        ends = midnight + rng.integers(0, 3 * day_ms, len(keys))
        expected = []
        for i, key in enumerate(keys):
            seen = key in keys[:i] or latest.get(key, -1) >= midnight
            expected.append(not seen)
        found = first.first(pa.array(keys, pa.string()), ends, midnight)
        assert found.tolist() == expected, day
        for key, end in zip(keys, ends, strict=True):
            if end >= midnight + day_ms or latest.get(key, -1) >= midnight:
                latest[key] = max(end, latest.get(key, -1)) if latest.get(key, -1) >= midnight else end  # fmt: skip
