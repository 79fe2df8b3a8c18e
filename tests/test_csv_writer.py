"""The vectorised CSV writer writes the bytes `to_csv` writes (reporting/csv_writer.py)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from reporting import csv_writer
from reporting.csv_writer import write_csv

TRICKY = ["plain", 'say "hi"', "a,b", "line\nbreak", "cr\ronly", "crlf\r\n", "", "é ü 日本",
          "'=quoted", " lead", "tail ", '"', ",", "\t=1"]  # fmt: skip


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    text = pd.Series([TRICKY[i % len(TRICKY)] for i in range(rows)], dtype="str")
    text[rng.random(rows) < 0.1] = None
    seconds = rng.integers(1_780_000_000, 1_790_000_000, rows).astype("datetime64[s]")
    stamps = pd.Series(seconds).dt.tz_localize("UTC")
    stamps[rng.random(rows) < 0.05] = pd.NaT
    floats = rng.lognormal(0, 5, rows)
    floats[rng.random(rows) < 0.1] = np.nan
    floats[:4] = [0.0, 2.0, 1e-05, 1e20]
    return pd.DataFrame({
        "text": text, "object_text": text.astype(object), "value": floats,
        "count": rng.integers(-5, 10**12, rows), "flag": rng.random(rows) < 0.5,
        "ended_at": stamps, 'odd "name", here': np.arange(rows) / 7,
    })  # fmt: skip


def _ours(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    write_csv(frame, buffer)
    return buffer.getvalue()


def test_large_frames_match_to_csv_byte_for_byte(monkeypatch) -> None:
    monkeypatch.setattr(csv_writer, "SLICE_ROWS", 7_000)  # several slices
    frame = _frame(25_000)
    assert csv_writer._supported(frame)  # the fast path is the one tested
    expected = frame.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
    assert _ours(frame) == expected


def test_frames_it_does_not_cover_go_through_to_csv() -> None:
    frame = _frame(12_000).assign(mixed=[1, "a", None] * 4_000)  # object with numbers in it
    assert not csv_writer._supported(frame)
    assert _ours(frame) == frame.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
    small = _frame(50)
    assert _ours(small) == small.to_csv(index=False, lineterminator="\r\n").encode("utf-8")
