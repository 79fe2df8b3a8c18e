"""Serving volume: requests and tokens per model and UTC day, an optional input
(`[[inputs]] kind = "serving_volume"`) kept with the ledger like the providers' carbon figures.

The file is a table with exactly the columns `model`, `day` (ISO date, YYYY-MM-DD), `requests`
and `tokens` (whole numbers ≥ 0), in any order: CSV (or .csv.gz, parquet, JSON lines), read as
text within the input's limits (`ingest.billing.raw`, `max_field_bytes`, `max_rows`). A missing
or unknown column is a user mistake about the whole file (InputError naming file and column);
a bad row is quarantined with its line and why, so rows read = accepted + quarantined. A model
and day repeated inside one file is quarantined (the first one counts); across files the volumes
add up (several serving deployments of one model).

Stored as `<ledger>/_serving_volume.parquet`; a run that reads a file replaces that file's rows.
The report divides the inference-phase footprint by it (serving_intensity.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reporting.errors import InputError
from reporting.ingest.billing.common import RowProblems, read_raw, text
from reporting.ingest.limits import Limits
from reporting.ledger import replace_file_rows
from reporting.schema import empty_quarantine

KIND = "serving_volume"
COLUMNS = ("model", "day", "requests", "tokens")
SERVING_SCHEMA = pa.schema([
    ("model", pa.string()), ("day", pa.date32()), ("requests", pa.int64()),
    ("tokens", pa.int64()), ("source_file", pa.string()), ("line", pa.int64()),
])  # fmt: skip
SERVING_FILE = "_serving_volume.parquet"  # leading _: parquet dataset readers skip it
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNT = re.compile(r"\d{1,18}")  # fits int64
SHOWN_CHARS = 60  # of a bad value, in a quarantine reason


@dataclass(frozen=True)
class ServingRead:
    """What the intake takes from the serving-volume files of one input."""

    rows: pd.DataFrame  # SERVING_SCHEMA columns
    quarantine: pd.DataFrame
    files: dict[str, dict[str, Any]]  # per file: rows read, accepted, quarantined
    file_errors: dict[str, str] = field(default_factory=dict)  # per file: why it was not read


def empty_serving() -> pd.DataFrame:
    return SERVING_SCHEMA.empty_table().to_pandas()


def concat_serving(parts: list[pd.DataFrame]) -> pd.DataFrame:
    found = [p for p in parts if not p.empty]
    return pd.concat(found, ignore_index=True) if found else empty_serving()


def read_serving_input(paths: dict[str, Path], limits: Limits) -> ServingRead:
    """Every file of a serving-volume input (name in reports → path)."""
    rows, quarantines, files, errors = [empty_serving()], [empty_quarantine()], {}, {}
    for name, path in paths.items():
        accepted, rejected, rows_read, error = read_serving(path, name, limits)
        if error:
            errors[name] = error
        rows.append(accepted)
        quarantines.append(rejected)
        files[name] = _stats(name, rows_read, len(accepted), len(rejected))
    found = concat_serving(rows)
    lost = pd.concat([q for q in quarantines if not q.empty] or quarantines[:1], ignore_index=True)
    return ServingRead(found, lost, files, errors)


def _stats(name: str, read: int, accepted: int, quarantined: int) -> dict[str, Any]:
    if read != accepted + quarantined:  # conservation: a bug if it fails, never a user error
        raise AssertionError(f"{name}: {read} read != {accepted} + {quarantined}")
    return {"source_file": name, "kind": KIND, "rows_read": read, "rows_accepted": accepted,
            "rows_quarantined": quarantined, "runs": 0, "not_attributed": {}}  # fmt: skip


def read_serving(
    path: Path, name: str, limits: Limits
) -> tuple[pd.DataFrame, pd.DataFrame, int, str | None]:
    """One file → (rows, quarantine, rows_read, file error); a file that cannot be read at all
    (or has more rows than max_rows) reads no rows and says why."""
    table = read_raw(path, name, limits)
    if table.error:
        return empty_serving(), empty_quarantine(), 0, table.error
    column = _columns(name, table.columns)
    records, problems = table.records, RowProblems()
    model = text(records, column["model"])
    problems.add(model.isna(), "required_value", "model is empty")
    day = _day(text(records, column["day"]), problems)
    counts = {c: _count(text(records, column[c]), c, problems) for c in ("requests", "tokens")}
    frame = pd.DataFrame(
        {"model": model, "day": day, **counts, "source_file": name, "line": records["line"]},
        index=records.index,
    )
    _repeats(frame, problems)
    accepted = frame[~problems.mask(records.index)]
    parts = [q for q in (table.quarantine, problems.quarantine(records, name)) if not q.empty]
    quarantine = pd.concat(parts, ignore_index=True) if parts else empty_quarantine()
    return _typed(accepted), quarantine, table.rows_read, None


def _columns(name: str, header: list[str]) -> dict[str, str]:
    """The header's name of each column; a missing, unknown or repeated one is an InputError."""
    found: dict[str, str] = {}
    for raw in header:
        key = raw.strip().lower()
        if key not in COLUMNS:
            raise InputError(
                f"{name}: column {raw!r} is not a serving-volume column; the file must have "
                f"exactly the columns {', '.join(COLUMNS)} (a header line first)."
            )
        if key in found:
            raise InputError(f"{name}: column {key!r} appears twice in the header.")
        found[key] = raw
    for key in COLUMNS:
        if key not in found:
            raise InputError(
                f"{name}: column {key!r} is missing; a serving-volume file has the columns "
                f"{', '.join(COLUMNS)} (a header line first)."
            )
    return found


def _shown(values: pd.Series) -> pd.Series:
    return values.fillna("").map(lambda v: v if len(v) <= SHOWN_CHARS else v[:SHOWN_CHARS] + "…")


def _day(values: pd.Series, problems: RowProblems) -> pd.Series:
    problems.add(values.isna(), "required_value", "day is empty")
    days = values.map(_iso_day)
    bad = values.notna() & days.isna()
    problems.add(bad, "date", "day is not an ISO date (YYYY-MM-DD): " + _shown(values))
    return days


def _iso_day(value: str | None) -> date | None:
    if value is None or not _ISO_DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:  # 2026-02-30
        return None


def _count(values: pd.Series, column: str, problems: RowProblems) -> pd.Series:
    problems.add(values.isna(), "required_value", f"{column} is empty")
    good = values.map(lambda v: v is not None and _COUNT.fullmatch(v) is not None).astype(bool)
    reason = f"{column} is not a whole number ≥ 0 (digits only): " + _shown(values)
    problems.add(values.notna() & ~good, "number", reason)
    return values.where(good, None).map(lambda v: int(v) if v is not None else None)


def _repeats(frame: pd.DataFrame, problems: RowProblems) -> None:
    """A model and day seen again in the same file: the later lines are quarantined."""
    ok = frame[~problems.mask(frame.index) & frame["model"].notna() & frame["day"].notna()]
    first_line = ok.groupby(["model", "day"])["line"].transform("min")
    repeated = ok["line"] != first_line
    reason = "model and day repeat line " + first_line.astype(str) + " of this file"
    problems.add(
        repeated.reindex(frame.index, fill_value=False), "duplicate", reason.reindex(frame.index)
    )


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    table = pa.Table.from_pandas(
        frame[list(SERVING_SCHEMA.names)], schema=SERVING_SCHEMA, preserve_index=False
    )
    return table.to_pandas()


# --- kept with the ledger ------------------------------------------------------------------------


def write_serving(root: Path, rows: pd.DataFrame, source_files: Iterable[str]) -> None:
    """Store the files' rows, replacing earlier rows of the same files (atomically)."""
    if not set(source_files):
        return
    path = root / SERVING_FILE
    replace_file_rows(path, read_serving_volume(root), rows, source_files, SERVING_SCHEMA)


def store(root: Path, intake: Any) -> None:
    """The pipeline's call with its `Intake`: keep the serving volume of the files this run read.
    A file that could not be read keeps its earlier rows (it is read again next run)."""
    names = [
        n for n, f in intake.files.items() if f["kind"] == KIND and n not in intake.file_errors
    ]
    write_serving(root, intake.serving, names)


def read_serving_volume(root: Path) -> pd.DataFrame:
    path = root / SERVING_FILE
    return (
        pq.read_table(path, schema=SERVING_SCHEMA).to_pandas() if path.exists() else empty_serving()
    )


def supplied(root: Path) -> bool:
    """Whether any serving-volume file was ever stored with this ledger."""
    return (root / SERVING_FILE).exists()
