"""CSV exports neutralise spreadsheet formulas in attacker-controlled text."""

from __future__ import annotations

import pandas as pd

from reporting.outputs import csv_safe


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
