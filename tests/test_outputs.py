"""CSV exports neutralise spreadsheet formulas in attacker-controlled text."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from reporting.outputs import csv_safe, csv_safe_table


def test_formula_prefixes_are_neutralised_and_other_text_kept() -> None:
    frame = pd.DataFrame(
        {
            "raw": ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "plain", None],
            "line": [1, 2, 3, 4, 5, 6, 7],
        }
    )
    safe = csv_safe(frame)
    assert safe["raw"].tolist()[:6] == [
        "'=cmd|' /C calc'!A0",
        "'+1",
        "'-2+3",
        "'@SUM(A1)",
        "'\tx",
        "plain",
    ]
    assert pd.isna(safe["raw"].iloc[6])
    assert safe["line"].tolist() == frame["line"].tolist()


def test_the_arrow_guard_of_findings_csv_neutralises_the_same_cells() -> None:
    """findings.csv goes through `csv_safe_table` (Arrow), other exports through `csv_safe`:
    the same cells get the apostrophe, next to empty, missing and non-ASCII cells, in whole
    tables and slices of them."""
    raw = [
        "x",
        "=cmd|' /C calc'!A0",
        "",
        None,
        "+1",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rr",
        "plain",
        "é=",
    ]
    table = pa.table({"raw": pa.array(raw, pa.string()), "cost": [-1.0] * len(raw)})
    for piece in (table, table.slice(1), table.slice(3, 4)):
        expected = csv_safe(piece.to_pandas())["raw"].tolist()
        got = csv_safe_table(piece)
        assert got["raw"].to_pylist() == [None if pd.isna(v) else v for v in expected]
        assert got["cost"].equals(piece["cost"])
