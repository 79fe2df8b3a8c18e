"""CSV of a large DataFrame, byte for byte what `DataFrame.to_csv(index=False,
lineterminator="\\r\\n")` writes, built with vectorised Arrow string kernels.

pandas hands every cell to the csv module one by one; for the findings of a quarter (millions of
rows) that was most of the report's time. Here a slice of rows at a time, each column becomes its
cells at once, the way pandas makes them (numbers with numpy's `astype(str)`, missing values
empty, UTC times as `YYYY-MM-DD HH:MM:SS+00:00`), quoted where the csv module would (its
QUOTE_MINIMAL: a delimiter, quote, CR or LF in the cell), and the lines are joined in Arrow.
Frames it does not cover (small ones, one column, other dtypes or zones) go through `to_csv`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting.text import float_text

LINE_END = "\r\n"
MIN_FAST_ROWS = 10_000  # below this, to_csv is quick: it is used as it is
SLICE_ROWS = 250_000  # rows formatted at a time (bounds the memory of the text)
TEXT = pa.large_string()  # 64-bit offsets: a slice's text may pass 2 GiB
QUOTE, COMMA, EMPTY, EOL = (pa.scalar(t, TEXT) for t in ('"', ",", "", LINE_END))


class _Unsupported(Exception):
    """A column this writer cannot format exactly like pandas: to_csv writes the frame."""


def write_csv(frame: pd.DataFrame, handle: BinaryIO) -> None:
    """Write the CSV of `frame` (header, no index, CRLF line ends) as UTF-8 to `handle`."""
    if len(frame) >= MIN_FAST_ROWS and frame.shape[1] >= 2 and _supported(frame):
        start = handle.tell()
        try:
            handle.write(_header(frame))
            handle.writelines(
                _body(frame.iloc[first : first + SLICE_ROWS])
                for first in range(0, len(frame), SLICE_ROWS)
            )
            return
        except _Unsupported:  # e.g. text Arrow cannot hold: start again with to_csv
            handle.seek(start)
            handle.truncate()
    handle.write(frame.to_csv(index=False, lineterminator=LINE_END).encode("utf-8"))


def write_csv_tables(tables: Iterable[pa.Table], columns: list[str], handle: BinaryIO) -> None:
    """Write the CSV of the tables one after the other (`columns`, in that order) as
    `write_csv` writes their frames' concatenation: one header, then each one's rows, its
    columns formatted as the frame's would be without making a frame. A table holding a column
    type formatted differently here goes through pandas' `to_csv`."""
    handle.write(_header(pd.DataFrame(columns=columns)))
    for table in tables:
        try:
            handle.writelines(
                _lines([_arrow_cells(c) for c in table.slice(first, SLICE_ROWS).columns])
                for first in range(0, table.num_rows, SLICE_ROWS)
            )
        except _Unsupported:
            frame = table.to_pandas()
            handle.write(
                frame.to_csv(index=False, header=False, lineterminator=LINE_END).encode("utf-8")
            )


def _arrow_cells(column: pa.ChunkedArray) -> pa.Array:
    """`_cells` of an Arrow column: float64, text, or whole-second UTC times."""
    values = column.combine_chunks()
    kind = values.type
    if pa.types.is_float64(kind):
        return pc.fill_null(float_text(values.to_numpy(zero_copy_only=False)), EMPTY)
    if pa.types.is_timestamp(kind) and kind.unit == "s" and kind.tz in ("UTC", "+00:00"):
        return _utc_text(values.cast(pa.timestamp("s")))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _quoted(pc.fill_null(values.cast(TEXT), EMPTY))
    raise _Unsupported(str(kind))


def _supported(frame: pd.DataFrame) -> bool:
    if not frame.columns.is_unique:
        return False
    for column in (frame.iloc[:, i] for i in range(frame.shape[1])):
        dtype = column.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            if str(dtype.tz) != "UTC" or dtype.unit != "s":
                return False
        elif isinstance(dtype, np.dtype) and dtype.kind in "fiub":
            continue
        elif not pd.api.types.is_string_dtype(dtype) or pd.api.types.infer_dtype(column) not in (
            "string",
            "empty",
        ):
            return False
    return True


def _header(frame: pd.DataFrame) -> bytes:
    names = [str(c) for c in frame.columns]
    quoted = [
        '"' + n.replace('"', '""') + '"' if any(c in n for c in ',"\r\n') else n for n in names
    ]
    return (",".join(quoted) + LINE_END).encode("utf-8")


def _body(rows: pd.DataFrame) -> pa.Buffer:
    return _lines([_cells(column) for _, column in rows.items()])


def _lines(cells: list[pa.Array]) -> pa.Buffer:
    """The CSV lines of these columns' cells, as one buffer."""
    lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*cells, COMMA), EOL, EMPTY)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset :]
    return lines.buffers()[2].slice(int(offsets[0]), int(offsets[len(lines)] - offsets[0]))


def _quoted(cells: pa.Array) -> pa.Array:
    """Cells holding a delimiter, quote, CR or LF in quotes (inner quotes doubled)."""
    needs = _needs_quotes(cells)
    if needs is None:
        return cells
    chosen = cells.filter(needs)
    quoted = pc.binary_join_element_wise(
        QUOTE, pc.replace_substring(chosen, '"', '""'), QUOTE, EMPTY
    )
    return pc.replace_with_mask(cells, needs, quoted)


def _needs_quotes(cells: pa.Array) -> pa.Array | None:
    """Which cells hold one of `,"\r\n` (None if none does): one scan of the text bytes."""
    offsets = np.frombuffer(cells.buffers()[1], dtype=np.int64)[cells.offset :][: len(cells) + 1]
    data = cells.buffers()[2]
    if data is None or offsets[-1] == offsets[0]:
        return None
    text = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
    # Byte comparisons: several times quicker than looking each byte up in a table.
    special = (text == ord(",")) | (text == ord('"'))
    special |= (text == ord("\r")) | (text == ord("\n"))
    hits = np.flatnonzero(special) + offsets[0]
    if not len(hits):
        return None
    mask = np.zeros(len(cells), dtype=bool)
    mask[np.searchsorted(offsets, hits, side="right") - 1] = True
    return pa.array(mask)


def _cells(column: pd.Series) -> pa.Array:
    """Each value as to_csv writes it (missing → empty), as an Arrow string array."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):  # whole-second UTC (see _supported)
        naive = column.dt.tz_convert(None).to_numpy()
        return _utc_text(pa.array(naive, type=pa.timestamp("s"), from_pandas=True))
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "fiub":
        values = column.to_numpy()
        text = float_text(values) if values.dtype.kind == "f" else pa.array(values.astype(str))
        return pc.fill_null(text.cast(TEXT), EMPTY)  # numbers need no quotes
    try:
        text = pa.array(column, from_pandas=True)  # Arrow-backed text: its own array
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError) as exc:
        raise _Unsupported(str(exc)) from exc
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return _quoted(pc.fill_null(text.cast(TEXT), EMPTY))


FOUR_DIGIT_YEARS = (-30_610_224_000, 253_402_300_799)  # 1000-01-01 to 9999-12-31, in seconds


def _utc_text(stamps: pa.TimestampArray) -> pa.Array:
    """Whole-second UTC times (naive) as `YYYY-MM-DD HH:MM:SS+00:00`, missing → empty. Arrow's
    cast to text writes the same digits as strftime for four-digit years, several times faster."""
    seconds = stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)
    low, high = FOUR_DIGIT_YEARS
    if stamps.null_count == len(stamps) or (
        np.nanmin(seconds) >= low and np.nanmax(seconds) <= high
    ):
        text = pc.binary_join_element_wise(stamps.cast(pa.string()), "+00:00", "")
    else:
        text = pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S+00:00")
    return pc.fill_null(text, "").cast(TEXT)
