"""The column-at-once sacct parsers answer as the general per-cell ones do, for any text.

slurm_values reads the forms sacct prints with pyarrow and hands every other cell to
slurm_general; these properties feed both near-misses of those forms (padding, other digits,
placeholders, junk) and check the answers agree cell for cell.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.ingest import slurm_general as general
from reporting.ingest import slurm_values as sv
from reporting.ingest.line_columns import TEXT_DTYPE

PIECES = ["0", "7", "12", "59", "123456", "1234567890123456", "٣", ".", ":", "-", "T", " ", "\t"]
PIECES += ["\xa0", "K", "M", "G", "P", "n", "c", "x", "+", "=", ",", "Unknown", "UNLIMITED"]
PIECES += ["None", "INVALID", "2026-07-01", "2026-02-30", "21:45:17", "25:00:00", "\u212a"]
PIECES += ["cpu=8", "gres/gpu=2", "GRES/GPU:A100=1", "gres/gpu:h100=1", "mem=10G", "gpu_type=x"]
PIECES += ["gres/gpuutil=90", "Mem=3K", " cpu=1", "cpu", "CANCELLED by 5", "completed+"]
CELLS = st.lists(st.sampled_from(PIECES), max_size=5).map("".join)
COLUMNS = st.lists(CELLS, min_size=1, max_size=30)
EXAMPLES = settings(max_examples=60, deadline=None)


def _columns(cells: list[str]) -> list[pd.Series]:
    """The same cells as the reader holds them (Arrow text) and as plain Python strings."""
    return [pd.Series(cells, dtype=TEXT_DTYPE), pd.Series(cells, dtype=object)]


def _same(fast: pd.Series, reference: pd.Series) -> None:
    pd.testing.assert_series_equal(fast, reference, check_names=False, check_exact=True)


@EXAMPLES
@given(COLUMNS)
def test_durations_counts_and_energy(cells: list[str]) -> None:
    for column in _columns(cells):
        for fast, slow in (
            (sv.parse_duration_s, general.general_duration_s),
            (sv.parse_count, general.general_count),
        ):
            values, bad = fast(column)
            expected_values, expected_bad = slow(column.astype(object))
            _same(values, expected_values)
            _same(bad, expected_bad)


@EXAMPLES
@given(COLUMNS, st.sampled_from([1.0, 3.0]), st.sampled_from([1.0, 2.0]))
def test_memory(cells: list[str], n_cpus: float, n_nodes: float) -> None:
    cpus = pd.Series(n_cpus, index=range(len(cells)))
    for column in _columns(cells):
        values, bad = sv.parse_memory_gb(column, cpus, n_nodes)
        expected_values, expected_bad = general.general_memory_gb(
            column.astype(object), cpus, n_nodes
        )
        _same(values, expected_values)
        _same(bad, expected_bad)


@EXAMPLES
@given(COLUMNS)
def test_times(cells: list[str]) -> None:
    for column in _columns(cells):
        times, bad = sv.parse_local_time(column, "America/New_York")
        normalised, blank = general.general_time_text(column.astype(object))
        parsed = pd.to_datetime(normalised, format="%Y-%m-%dT%H:%M:%S", errors="coerce")
        expected = parsed.dt.tz_localize(
            "America/New_York", ambiguous=np.ones(len(parsed), bool), nonexistent="shift_forward"
        )
        _same(times, expected.dt.tz_convert("UTC").dt.as_unit("s"))
        _same(bad, parsed.isna() & ~blank)


@EXAMPLES
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=4).map(",".join), max_size=20))
def test_tres_and_states(cells: list[str]) -> None:
    keys = ["cpu", "gres/gpu", "mem", "gres/gpuutil", "gpu_type"]
    for column in _columns(cells):
        found = sv.tres_values(column, keys)
        table = general.parse_tres(column.astype(object))
        assert sorted(found) == sorted(k for k in keys if k in table.columns)
        for key, values in found.items():
            _same(
                values.astype(object).fillna("<none>"), table[key].astype(object).fillna("<none>")
            )
        _same(sv.parse_state(column), general.general_state(column.astype(object)))


@pytest.mark.parametrize("text", ["12:00:00", "1234567890123456", " 5", "٣", "7 "])
def test_a_cell_the_fast_way_cannot_read_goes_the_general_way(text: str) -> None:
    fast, fast_bad = sv.parse_count(pd.Series(["4", text], dtype=TEXT_DTYPE))
    slow, slow_bad = general.general_count(pd.Series(["4", text], dtype=object))
    assert fast[0] == 4.0
    _same(fast, slow)
    _same(fast_bad, slow_bad)
