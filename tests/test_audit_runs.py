"""A run's slices fold into one run as GroupBy would fold them (reporting/audit.py runs_of)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reporting.audit import PER_RUN, SUMMED, runs_of
from reporting.distinct import map_distinct


def _slices() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame({c: rng.random(n) for c in SUMMED})
    frame["usage_id"] = pd.Series([f"run-{i}" for i in rng.integers(0, 80, n)], dtype="str")
    for column in PER_RUN:
        frame[column] = pd.Series([f"{column}-{i % 5}" for i in range(n)], dtype="str")
    frame["ended_at"] = pd.Timestamp("2026-09-30T12:00:00Z")
    frame["gpu_util_ratio"] = np.where(rng.random(n) < 0.5, np.nan, rng.random(n))  # gaps
    frame["team"] = pd.Series(np.where(rng.random(n) < 0.5, None, "vision"), dtype="str")
    frame["namespace"] = pd.Series([None] * n, dtype="str")  # nothing but gaps
    frame.loc[3, "cost"] = np.nan
    frame.loc[5, "usage_id"] = None  # belongs to no run
    return frame


def test_runs_of_folds_slices_like_groupby_first_and_sum() -> None:
    slices = _slices()
    grouped = slices.groupby("usage_id", sort=True)
    expected = grouped[list(SUMMED)].sum(min_count=1).join(grouped[list(PER_RUN)].first())
    runs = runs_of(slices).set_index("usage_id").sort_index()
    pd.testing.assert_frame_equal(runs[expected.columns], expected, check_names=False)


def test_map_distinct_maps_like_map() -> None:
    values = pd.Series(["b", None, "a", "b", None], dtype="str")
    function = lambda v: f"<{v}>"
    pd.testing.assert_series_equal(
        map_distinct(values, function), values.map(function).astype(object)
    )
    numbers = pd.Series([2.0, np.nan, 2.0])
    assert map_distinct(numbers, lambda v: v * 2).tolist()[::2] == [4.0, 4.0]
    assert np.isnan(map_distinct(numbers, lambda v: v * 2).iloc[1])
