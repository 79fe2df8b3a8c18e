"""Billing CSV rows become arrow columns a batch at a time (csvlines.text_columns): the columns
hold the fields, and each row's raw text is exactly what csv.writer makes of it (its hash is
the charge ID, and a quarantined row shows it)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reporting.ingest.billing.csvlines import csv_text, text_columns

# Lone surrogates (bytes that were not UTF-8) never reach the columns: such rows are quarantined.
FIELD = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6) | st.sampled_from(
    ["", ",", '"', '""', "a,b", 'x"y', "\n", "\r", " ", "NULL"]
)
ROWS = st.integers(1, 4).flatmap(
    lambda width: st.tuples(
        st.just(width), st.lists(st.lists(FIELD, min_size=width, max_size=width), max_size=6)
    )
)


@given(ROWS)
def test_columns_hold_the_fields_and_raw_is_csv_writers_text(case: tuple[int, list[list[str]]]):
    width, rows = case
    columns = text_columns(rows, width)
    assert len(columns) == width + 1
    for position, column in enumerate(columns[:-1]):
        assert column.to_pylist() == [row[position] for row in rows]
    assert columns[-1].to_pylist() == [csv_text(row) for row in rows]
