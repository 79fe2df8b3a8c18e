"""Split delimited text dumps into records, quarantining lines that cannot even be split.

Shared by the readers of delimited dumps: bad bytes and wrong field counts are row problems
(quarantined with line number and the original text), never exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from reporting.ingest.limits import (
    DEFAULT_LIMITS,
    FIELD_TOO_LONG,
    MAX_COLUMNS,
    Limits,
    cut_raw,
    long_field,
    too_many_rows,
)
from reporting.ingest.line_columns import (
    TEXT,
    Columns,
    NumberedLines,
    numbered_lines,
    records_frame,
    split_columns,
)
from reporting.schema import quarantine_frame


@dataclass(frozen=True)
class Span:
    """A slice of a large dump, cut at a line start: bytes [start, end) hold whole lines."""

    start: int  # byte offset of the slice's first line
    end: int  # byte offset just past its last line
    first_line: int  # 1-based number of that line in the file


HEAD_BYTES = 1 << 16  # the top of a file, where its header is looked for when reading a slice


class FileProblem(Exception):
    """A whole file cannot be read in its format: its lines are quarantined with this check."""

    def __init__(self, check: str, reason: str, first_data: int = 0) -> None:
        super().__init__(reason)
        self.check = check
        self.reason = reason
        self.first_data = first_data  # index of the first line that is a row (not a header)


@dataclass(frozen=True)
class SplitLines:
    """Records of one file: one column per header field, plus `line` (1-based) and `raw`."""

    records: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int  # data lines: every non-blank line except the header
    error: str | None = None  # the file could not be read at all (it vanished, no permission)


def quarantine_all(records: pd.DataFrame, source_name: str, problem: FileProblem) -> pd.DataFrame:
    """Every record of a file that cannot be read in its format, with the file-level reason."""
    return quarantine_frame(
        source_file=source_name,
        line=records["line"].tolist(),
        raw=records["raw"].tolist(),
        check=problem.check,
        reason=problem.reason,
    )


def split_delimited(
    path: Path,
    *,
    delimiter: str | None,
    fields: list[str] | None,
    header_marker: str,
    source_name: str,
    limits: Limits = DEFAULT_LIMITS,
    span: Span | None = None,
) -> SplitLines:
    """Split a delimited dump; with `fields` it has no header, else its first line is the header.

    A trailing delimiter (sacct `--parsable`) is accepted: N fields may come as N+1 parts with
    an empty last one. A file of more than `limits.max_rows` data lines is refused (an error).
    With `span`, only that slice's lines are split (numbered as in the file); the header is
    still read from the top of the file.
    """
    try:
        data = read_span(path, span)
        head = (data if span is None else read_span(path, Span(0, HEAD_BYTES, 1))).split(b"\n")
    except OSError as exc:
        reason = f"cannot read ({exc.strerror or type(exc).__name__}); check the file and its permissions"
        return _refused(reason)
    try:
        header, first_data = read_header(head, delimiter, fields, header_marker)
    except FileProblem as problem:
        lines = head if span is None else data.split(b"\n")
        every_line = [
            (n, cut_raw(b.rstrip(b"\r").decode("utf-8", "backslashreplace"), limits))
            for n, b in _data_lines(lines, problem.first_data)
        ]
        records = pd.DataFrame(every_line, columns=["line", "raw"])
        return SplitLines(
            records.iloc[0:0], quarantine_all(records, source_name, problem), len(records)
        )
    if span is None:  # the data lines start after the header's
        start, first_number = sum(len(line) + 1 for line in head[:first_data]), first_data + 1
    else:
        start, first_number = 0, span.first_line
    lines = numbered_lines(data, min(start, len(data)), first_number)
    if error := too_many_rows(lines.count, limits):
        return _refused(error)
    records, bad = _records(lines, header, delimiter or "|", limits)
    quarantine = quarantine_frame(
        source_file=source_name,
        line=[b[0] for b in bad],
        raw=[b[1] for b in bad],
        check=[b[2] for b in bad],
        reason=[b[3] for b in bad],
    )
    return SplitLines(records, quarantine, lines.count)


def _records(
    lines: NumberedLines, header: list[str], sep: str, limits: Limits
) -> tuple[pd.DataFrame, list[tuple[int, str, str, str]]]:
    """Records of the lines that split well and, in line order, the problems of the rest."""
    if len(sep) == 1:
        split = split_columns(lines.texts, len(header), sep, limits.max_field_bytes)
    else:  # a delimiter of several characters: every line is read one by one
        split = Columns([], np.empty(0, np.int64), np.arange(len(lines.texts)))
    other_texts = lines.texts.take(pa.array(split.others)).to_pylist()
    others = [
        (int(n), t.encode()) for n, t in zip(lines.numbers[split.others], other_texts, strict=True)
    ]
    good: list[list[str | int]] = []
    bad: list[tuple[int, str, str, str]] = []
    for number, raw_bytes in sorted([*others, *lines.undecodable]):
        row, problem = _split_line(number, raw_bytes, sep, header, limits)
        if problem:
            bad.append(problem)
        else:
            good.append(row)
    fields = split.fields if len(sep) == 1 else [pa.array([], TEXT)] * len(header)
    numbers, raw = lines.numbers[split.rows], lines.texts.take(pa.array(split.rows))
    if good:  # long lines with no long field, or with a trailing delimiter: rare
        columns = list(zip(*good, strict=True))
        fields = [
            pa.concat_arrays([f, pa.array(c, TEXT)]) for f, c in zip(fields, columns, strict=False)
        ]
        numbers = np.concatenate([numbers, np.array(columns[-2], dtype=np.int64)])
        raw = pa.concat_arrays([raw, pa.array(columns[-1], TEXT)])
        order = pa.array(np.argsort(numbers, kind="stable"))
        fields, numbers, raw = [f.take(order) for f in fields], numbers[order], raw.take(order)
    return records_frame(header, fields, numbers, raw), bad


def _refused(reason: str) -> SplitLines:
    """A file not read at all: no records, no rows, and why."""
    empty = quarantine_frame(source_file=[], line=[], raw=[], check=[], reason=[])
    return SplitLines(pd.DataFrame(columns=["line", "raw"]), empty, 0, reason)


def _split_line(
    number: int, raw_bytes: bytes, sep: str, header: list[str], limits: Limits
) -> tuple[list[str | int], tuple[int, str, str, str] | None]:
    """(fields + [line, raw], None) of a good line, or ([], (line, raw, check, reason))."""
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raw = cut_raw(raw_bytes.decode("utf-8", errors="backslashreplace"), limits)
        reason = f"not valid UTF-8 (byte 0x{raw_bytes[exc.start]:02x} at column {exc.start + 1})"
        return [], (number, raw, "encoding", reason)
    parts = text.split(sep)
    if len(parts) == len(header) + 1 and parts[-1] == "":
        parts.pop()
    # No field is longer than its line: most lines need no look at their fields.
    if len(raw_bytes) > limits.max_field_bytes and (problem := long_field(parts, limits, header)):
        return [], (number, cut_raw(text, limits), FIELD_TOO_LONG, problem)
    if len(parts) != len(header):
        reason = f"expected {len(header)} fields separated by {sep!r}, found {len(parts)}"
        return [], (number, cut_raw(text, limits), "field_count", reason)
    return [*parts, number, text], None


def read_span(path: Path, span: Span | None) -> bytes:
    """The whole file, or the bytes of one slice of it."""
    if span is None:
        return path.read_bytes()
    with path.open("rb") as handle:
        handle.seek(span.start)
        return handle.read(span.end - span.start)


def _data_lines(lines: list[bytes], first: int, offset: int = 0) -> list[tuple[int, bytes]]:
    """(1-based line number, bytes without CR) of every non-blank line from index `first`;
    `offset` lines come before `lines[0]` in the file (a slice)."""
    numbered = enumerate(lines[first:], start=first + 1 + offset)
    stripped = ((n, b.rstrip(b"\r")) for n, b in numbered)
    return [(n, b) for n, b in stripped if b.strip()]


def read_header(
    lines: list[bytes], delimiter: str | None, fields: list[str] | None, marker: str
) -> tuple[list[str], int]:
    """Return (field names, index of the first data line)."""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    first_text = (
        lines[first].decode("utf-8", errors="replace").strip().lstrip("\ufeff")
        if first is not None
        else ""
    )
    sep = delimiter or "|"
    looks_like_header = first_text.lower().startswith(marker.lower())
    if fields is not None:
        # A header line in a file that was configured as header-less is skipped, not counted.
        return list(fields), (first + 1 if looks_like_header and first is not None else 0)
    if first is None:
        return [], len(lines)
    if not looks_like_header:
        raise FileProblem(
            "no_header",
            f"line {first + 1} is not a header (it does not start with {marker!r}); for dumps "
            "without a header (sacct --noheader) set `fields` (and `delimiter`) on the input",
        )
    names = first_text.split(sep)
    if names and names[-1] == "":
        names.pop()
    if len(names) > MAX_COLUMNS:
        reason = f"the header has {len(names):,} fields; sacct prints a few dozen"
        raise FileProblem("wide_header", reason, first_data=first + 1)
    return names, first + 1
