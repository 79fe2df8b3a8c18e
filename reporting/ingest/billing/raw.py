"""Billing-style files as text, within the input's limits: CSV (optionally gzip), parquet, JSON
lines. Shared by the billing, vendor carbon and OpenCost CSV readers.

Every value comes out as a string: a reader decides how each vendor column is parsed. Rows that
cannot even be split (wrong field count, bad bytes, a field longer than `max_field_bytes`, JSON
that is not an object or nests too deep) are quarantined here. A file that cannot be read at all
(gone, truncated gzip, corrupt parquet, more rows than `max_rows`, a gzip bomb, a header wider
than any export) is an `error` with no rows read.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reporting.ingest.billing.csvlines import (
    bad_bytes,
    csv_text,
    physical_lines,
    split_csv_batches,
    text_columns,
    visible,
)
from reporting.ingest.limits import (
    DEFAULT_LIMITS,
    FIELD_TOO_LONG,
    GZIP_SLACK_BYTES,
    MAX_GZIP_RATIO,
    MAX_JSON_DEPTH,
    Limits,
    TooLarge,
    check_columns,
    cut_raw,
    json_too_deep,
    long_field,
    open_binary,
    too_many_rows,
)
from reporting.schema import empty_quarantine, quarantine_frame

_BATCH_ROWS = 20_000  # rows split before they become columns: bounds the Python strings held
_STR = {pa.string(): pd.StringDtype("pyarrow", na_value=np.nan)}  # pandas' default `str`


@dataclass
class RawTable:
    """One file as text: `records` has one column per header field plus `line` and `raw`."""

    records: pd.DataFrame
    columns: list[str]  # header fields as written (BOM and surrounding spaces removed)
    quarantine: pd.DataFrame  # rows that could not even be split (wrong field count, bad bytes)
    rows_read: int  # data rows seen, including the quarantined ones
    error: str | None = None  # the file cannot be read at all (gone, unreadable, truncated gzip)


@dataclass
class _Rows:
    """Rows of one file as they are read: kept ones, and quarantined ones with their reason."""

    limits: Limits
    good: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    raws: list[str] = field(default_factory=list)
    bad: list[tuple[int, str, str, str]] = field(default_factory=list)

    def keep(self, line: int, row: Any, raw: str) -> None:
        self.good.append(row)
        self.lines.append(line)
        self.raws.append(raw)
        self._check_count()

    def refuse(self, line: int, raw: str, check: str, reason: str) -> None:
        self.bad.append((line, cut_raw(raw, self.limits), check, reason))
        self._check_count()

    def _check_count(self) -> None:
        # Stop at the first row too many: a refused file costs no more than max_rows rows.
        self.count(len(self.good) + len(self.bad))

    def count(self, rows: int) -> None:
        """Refuse the file when `rows` rows seen so far are more than max_rows."""
        if error := too_many_rows(rows, self.limits):
            raise TooLarge(error)

    def quarantine(self, source_name: str) -> pd.DataFrame:
        return quarantine_frame(
            source_file=source_name,
            line=[b[0] for b in self.bad],
            raw=[b[1] for b in self.bad],
            check=[b[2] for b in self.bad],
            reason=[b[3] for b in self.bad],
        )


def open_text(path: Path) -> io.TextIOBase:
    """A text stream of a CSV/JSON file, gunzipped if its name ends in .gz; BOM removed.

    Bytes that are not UTF-8 come through as lone surrogates (`surrogateescape`), so that the
    row holding them is quarantined (`encoding`) instead of the whole file being unreadable."""
    return io.TextIOWrapper(
        open_binary(path), encoding="utf-8-sig", errors="surrogateescape", newline=""
    )


def read_raw(path: Path, source_name: str, limits: Limits = DEFAULT_LIMITS) -> RawTable:
    """Read a billing file as text: CSV (optionally gzip), parquet, or JSON lines."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            return _read_parquet(path, source_name, limits)
        if name.endswith((".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")):
            return _read_json_lines(path, source_name, limits)
        return _read_csv(path, source_name, limits)
    except TooLarge as exc:
        return _unreadable(str(exc))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        return _unreadable(f"cannot read the file: {exc}")
    except Exception as exc:  # pyarrow raises its own types for corrupt parquet
        if type(exc).__module__.startswith("pyarrow"):
            return _unreadable(f"cannot read the file as parquet: {exc}")
        raise


def _unreadable(reason: str) -> RawTable:
    return RawTable(pd.DataFrame({"line": [], "raw": []}), [], empty_quarantine(), 0, reason)


def clean_header(fields: list[str]) -> list[str]:
    return [f.replace("\ufeff", "").strip() for f in fields]


@contextlib.contextmanager
def _csv_field_limit(chars: int) -> Iterator[None]:
    """csv's field limit (characters, process-wide) set to the input's, then restored."""
    previous = csv.field_size_limit(chars)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_csv(path: Path, source_name: str, limits: Limits) -> RawTable:
    """Rows split by `csvlines.split_csv` (a broken quote costs one line, not the rest of the
    file), then held to the input's limits. Rows are split in batches and each batch turned
    into text columns at once, so no more than a batch of rows is held as Python strings."""
    rows = _Rows(limits)
    unsplit: list[tuple[int, str, str, str]] = []  # quarantined by the split, in file order
    too_long: list[tuple[int, str, str, str]] = []  # then rows with a field over the limit
    batches: list[list[pa.Array]] = []  # per batch: one array per header field, then `raw`
    lines: list[int] = []
    with open_text(path) as stream, _csv_field_limit(limits.max_field_bytes):
        split_rows = split_csv_batches(stream, _check_header, batch_rows=_BATCH_ROWS)
        for split in split_rows:
            header = split.header
            unsplit += split.bad
            kept: list[list[str]] = []
            for line, fields in zip(split.lines, split.rows, strict=True):
                if problem := long_field(fields, limits, header):
                    too_long.append((line, csv_text(fields), FIELD_TOO_LONG, problem))
                else:
                    kept.append(fields)
                    lines.append(line)
            rows.count(len(lines) + len(unsplit) + len(too_long))
            batches.append(text_columns(kept, len(header)))
    for line, raw, check, reason in unsplit:
        if "field larger than field limit" in reason:
            check, reason = _csv_problem(limits)
        rows.refuse(line, raw, check, reason)
    for line, raw, check, reason in too_long:
        rows.refuse(line, raw, check, reason)
    if lines:
        records = _records(header, batches, lines)
    else:
        records = _empty(header)
        records["line"] = pd.array(lines, dtype="int64")
        records["raw"] = []
    return RawTable(records, header, rows.quarantine(source_name), len(lines) + len(rows.bad))


def _check_header(fields: list[str]) -> None:
    check_columns(len(fields))


def _records(header: list[str], batches: list[list[pa.Array]], lines: list[int]) -> pd.DataFrame:
    """Text columns (pandas `str`, held by arrow) named by the header, then `line` and `raw`."""
    columns = [
        pa.chunked_array([b[i] for b in batches], pa.string()) for i in range(len(header) + 1)
    ]
    text = [c.to_pandas(types_mapper=_STR.get) for c in columns]
    records = pd.DataFrame(dict(zip(_unique(header), text[:-1], strict=True)))
    records["line"] = pd.array(lines, dtype="int64")
    records["raw"] = text[-1]
    return records


def _csv_problem(limits: Limits) -> tuple[str, str]:
    return FIELD_TOO_LONG, (
        f"a field is longer than max_field_bytes ({limits.max_field_bytes:,}); "
        "fix the export or raise max_field_bytes"
    )


def _empty(header: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in _unique(header)})


def _unique(header: list[str]) -> list[str]:
    """Header names made unique (a repeated name gets `#2`, `#3`): pandas needs unique columns."""
    seen: dict[str, int] = {}
    result = []
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return result


def _read_parquet(path: Path, source_name: str, limits: Limits) -> RawTable:
    """Parquet as text: scalars stringified, map/struct/list columns as JSON text."""
    _check_parquet_size(path, limits)
    frame = pq.read_table(path).to_pandas(types_mapper=None)
    records = pd.DataFrame(index=range(len(frame)))
    for column in frame.columns:
        records[column] = [_to_text(v) for v in frame[column]]
    records["line"] = pd.array(np.arange(1, len(frame) + 1), dtype="int64")
    records["raw"] = [
        json.dumps({c: _to_json(v) for c, v in row.items()}, sort_keys=True, default=str)
        for row in frame.to_dict("records")
    ]
    rows = _Rows(Limits(limits.max_field_bytes))  # the row count was checked on the metadata
    texts = records.drop(columns=["line", "raw"])
    names = list(texts.columns)
    problems = (long_field(row, limits, names) for row in texts.itertuples(False))
    for position, problem in enumerate(problems):
        if problem:
            rows.refuse(position + 1, records["raw"].iloc[position], FIELD_TOO_LONG, problem)
    kept = records[~records["line"].isin([b[0] for b in rows.bad])].reset_index(drop=True)
    return RawTable(kept, list(frame.columns), rows.quarantine(source_name), len(frame))


def _check_parquet_size(path: Path, limits: Limits) -> None:
    """Refuse from the footer alone: too many rows or columns, or data inflating like a bomb."""
    with pq.ParquetFile(path) as parquet:
        meta = parquet.metadata
    if error := too_many_rows(meta.num_rows, limits):
        raise TooLarge(error)
    check_columns(meta.num_columns)
    inflated = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if inflated > MAX_GZIP_RATIO * path.stat().st_size + GZIP_SLACK_BYTES:
        raise TooLarge(f"its data inflates more than {MAX_GZIP_RATIO}× the file's size")


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_to_json(v) for v in value.tolist()]
    if isinstance(value, list) and value and isinstance(value[0], tuple):  # arrow map
        return {str(k): _to_json(v) for k, v in value}
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _to_text(value: Any) -> str:
    value = _to_json(value)
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _read_json_lines(path: Path, source_name: str, limits: Limits) -> RawTable:
    """JSON lines (one object per line): top-level keys become columns, nested values JSON text."""
    rows = _Rows(limits)
    with open_text(path) as stream:
        for number, line in enumerate(physical_lines(stream), start=1):
            text = line.strip()
            if not text:
                continue
            if (problem := bad_bytes(text)) is not None:
                rows.refuse(number, visible(text), "encoding", problem)
                continue
            values, check, reason = _json_row(text, limits)
            if values is None:
                rows.refuse(number, text, check, reason)
            else:
                rows.keep(number, values, text)
    header = sorted({k for row in rows.good for k in row})
    check_columns(len(header))
    records = pd.DataFrame(rows.good, columns=header).fillna("") if rows.good else _empty(header)
    records["line"] = pd.array(rows.lines, dtype="int64")
    records["raw"] = rows.raws
    return RawTable(records, header, rows.quarantine(source_name), len(rows.good) + len(rows.bad))


def _json_row(text: str, limits: Limits) -> tuple[dict[str, str] | None, str, str]:
    """(values as text, "", "") of one JSON line, or (None, check, reason)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError: also ints of > 4,300 digits
        return None, "json", f"not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, "json", "not a JSON object"
    check_columns(len(value))  # one object wider than any export: the file cannot be a table
    if json_too_deep(value):
        return None, "json", f"nested deeper than {MAX_JSON_DEPTH} levels"
    values = {str(k): _to_text(v) for k, v in value.items()}
    if problem := long_field([*values, *values.values()], limits):
        return None, FIELD_TOO_LONG, problem
    return values, "", ""
