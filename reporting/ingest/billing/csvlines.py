"""Billing CSV (and JSON lines) text (opened by `raw.open_text`): split into rows, and keep every physical line counted.

A CSV row may legitimately span lines (a quoted description with a line break), so the text is
split by `csv.reader`. A broken quote, though, makes the reader swallow the following lines
into one field, and then the rest of the file falls out of step. So when a row that spans
several lines cannot be a row (wrong field count, bytes that are not UTF-8, a field over the
csv module's limit), only its first line is quarantined and the lines after it are read again
as rows of their own: one bad line never takes its neighbours with it.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a non-UTF-8 byte


def visible(text: str) -> str:
    """Text as it can be stored and shown: a byte that was not UTF-8 becomes `\\xff`."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def bad_bytes(text: str) -> str | None:
    """The reason a row's text is not UTF-8, or None."""
    match = _NOT_UTF8.search(text)
    if match is None:
        return None
    byte = ord(match.group()) - 0xDC00
    return f"not valid UTF-8 (byte 0x{byte:02x} at column {match.start() + 1})"


def csv_text(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def text_columns(rows: list[list[str]], width: int) -> list[pa.Array]:
    """Rows of `width` fields as one arrow array per field, then each row's `csv_text` (what
    csv.writer makes of it, computed a column at a time: a field holding a comma or a quote is
    quoted, its quotes doubled; line ends are not quoted, as lineterminator is empty)."""
    # One array of every field (large: a batch may pass 2 GiB), then a column is every
    # width-th field: no Python loop over rows or fields.
    fields = pa.array(
        itertools.chain.from_iterable(rows), pa.large_string(), size=len(rows) * width
    )
    starts = np.arange(len(rows), dtype=np.int64) * width
    columns = [fields.take(pa.array(starts + i)).cast(pa.string()) for i in range(width)]
    written = []
    for column in columns:
        quoted = pc.or_(pc.match_substring(column, ","), pc.match_substring(column, '"'))
        if pc.any(quoted).as_py():  # most columns never hold either
            doubled = pc.replace_substring(column, '"', '""')
            column = pc.if_else(quoted, pc.binary_join_element_wise('"', doubled, '"', ""), column)
        written.append(column)
    if width == 1:  # csv.writer writes a row of one empty field as ""
        written[0] = pc.if_else(pc.equal(columns[0], ""), '""', written[0])
    raw = pc.binary_join_element_wise(*written, ",") if width else pa.array([""] * len(rows))
    return [*columns, raw]


def physical_lines(stream: io.TextIOBase) -> Iterator[str]:
    """The stream's lines, each ending in \n (or at the file's end). A stream opened with
    newline="" also ends lines at a lone \r; that is not a line end here, as for `wc -l` and
    the Slurm reader, so a stray \r does not shift the numbers of the lines after it."""
    pending = ""
    for piece in stream:
        if piece.endswith("\r"):
            pending += piece
            continue
        yield pending + piece
        pending = ""
    if pending:
        yield pending


class _Lines:
    """A stream's physical lines for csv.reader, numbered; remembers the lines of the row being
    read so that all but the first can be handed back and read again."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream = physical_lines(stream)
        self.again: deque[tuple[int, str]] = deque()
        self.row: list[tuple[int, str]] = []
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.again:
            number, line = self.again.popleft()
        else:
            line = next(self.stream)
            self.number += 1
            number = self.number
        self.row.append((number, line))
        return line

    def keep_first(self) -> tuple[int, str]:
        """The row's first line (number, text without its end); the rest will be read again."""
        first, rest = self.row[0], self.row[1:]
        self.again.extendleft(reversed(rest))
        self.row = []
        return first[0], first[1].rstrip("\r\n")


@dataclass
class CsvSplit:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # physical line each row starts on
    bad: list[tuple[int, str, str, str]] = field(default_factory=list)  # line, raw, check, reason


def split_csv(
    stream: io.TextIOBase, on_header: Callable[[list[str]], None] | None = None
) -> CsvSplit:
    """The header and rows of a CSV text; rows that cannot be rows are in `bad`. `on_header`
    sees the header before any row is read (it may raise to refuse the file)."""
    batches = split_csv_batches(stream, on_header)
    split = next(batches)
    for batch in batches:
        split.rows += batch.rows
        split.lines += batch.lines
        split.bad += batch.bad
    return split


def split_csv_batches(
    stream: io.TextIOBase,
    on_header: Callable[[list[str]], None] | None = None,
    batch_rows: int = 1 << 62,
) -> Iterator[CsvSplit]:
    """`split_csv` in pieces of at most `batch_rows` rows (all with the same header), so that a
    caller can turn each piece into columns before the next is read."""
    lines = _Lines(stream)
    reader = csv.reader(lines)
    header = _header(reader, lines, on_header)
    split = CsvSplit(header)
    width = len(header)
    while True:
        if len(split.rows) >= batch_rows:
            yield split
            split = CsvSplit(header)
        lines.row = []
        try:
            fields = next(reader)
        except StopIteration:
            yield split
            return
        except csv.Error as exc:  # a field over the limit: a quote that never closed
            reader = csv.reader(lines)  # the old one is mid-field
            _reject(split, lines, "field_count", f"cannot split the row: {exc}")
            continue
        if not any(map(str.strip, fields)):  # a blank line is not a row
            continue
        # Only text that is not ASCII can hold a byte that was not UTF-8 (rare: check then).
        if not "".join(fields).isascii() and (problem := bad_bytes(csv_text(fields))):
            _reject(split, lines, "encoding", problem)
        elif len(fields) != width:
            count = f"{len(fields)} fields where the header has {width}"
            _reject(split, lines, "field_count", count)
        else:
            split.rows.append(fields)
            split.lines.append(lines.row[0][0])


def _header(
    reader: Iterator[list[str]], lines: _Lines, on_header: Callable[[list[str]], None] | None
) -> list[str]:
    """The header row, from its first line alone if a broken quote ran it into the next."""
    try:
        fields = next(reader, [])
    except csv.Error:
        fields = []
    if len(lines.row) > 1 or (not fields and lines.row):
        _, text = lines.keep_first()
        try:
            fields = next(csv.reader([text]), [])
        except csv.Error:  # e.g. a stray \r outside quotes: no header can be read
            fields = []
    if on_header is not None:  # before the fields are copied: a refused header costs no more
        on_header(fields)
    return [visible(f.replace("\ufeff", "").strip()) for f in fields]


def _reject(split: CsvSplit, lines: _Lines, check: str, reason: str) -> None:
    """Quarantine the row's first line; its other lines (if any) are read again as rows."""
    spanned = len(lines.row) > 1
    number, text = lines.keep_first()
    if spanned and check == "field_count" and "cannot split" not in reason:
        reason = f"{reason} (a quote in this line runs into the next)"
    split.bad.append((number, visible(text), check, reason))
