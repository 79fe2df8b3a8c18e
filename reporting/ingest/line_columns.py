"""Split a dump's lines into Arrow string columns without a Python loop over its lines.

Most lines of a dump are valid UTF-8, shorter than `max_field_bytes` and have as many fields as
the header: pyarrow splits those. Every other non-blank line (bad bytes, a long line, a wrong
field count, a trailing delimiter) is handed back to be read one by one, so it is quarantined,
or kept, exactly as a line-by-line reader would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TEXT = pa.large_string()  # a whole dump read at once may hold more than 2 GiB of text
TEXT_DTYPE = pd.ArrowDtype(TEXT)
BLANK = " \t\n\r\x0b\x0c"  # what bytes.strip() removes: a line of only these is not a row


@dataclass(frozen=True)
class NumberedLines:
    """The non-blank lines of a buffer: decoded ones as Arrow text, the rest as bytes."""

    texts: pa.Array  # valid UTF-8 lines without their CR
    numbers: np.ndarray  # 1-based line number of each text
    undecodable: list[tuple[int, bytes]]  # (line number, bytes without CR), not UTF-8

    @property
    def count(self) -> int:
        return len(self.texts) + len(self.undecodable)


def numbered_lines(data: bytes, start: int, first_number: int) -> NumberedLines:
    """The lines of `data` from byte `start` on (as `data[start:].split(b"\\n")` cuts them),
    numbered from `first_number`; blank lines are left out."""
    newlines = np.flatnonzero(np.frombuffer(data, np.uint8, offset=start) == ord("\n"))
    offsets = np.empty(len(newlines) + 2, np.int64)
    offsets[0], offsets[-1] = start, len(data)
    offsets[1:-1] = newlines + start + 1
    raw = pa.Array.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    numbers = np.arange(first_number, first_number + len(raw), dtype=np.int64)
    undecodable: list[tuple[int, bytes]] = []
    try:
        texts = raw.cast(TEXT)
    except pa.ArrowInvalid:  # some line is not UTF-8: find which, once, in Python
        valid = np.ones(len(raw), dtype=bool)
        for index, line in enumerate(data[start:].split(b"\n")):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                valid[index] = False
                undecodable.append((int(numbers[index]), line.rstrip(b"\r")))
        texts, numbers = raw.filter(pa.array(valid)).cast(TEXT), numbers[valid]
    # Lines hold no "\n" but their own end, so this strips it and every CR before it.
    texts = pc.utf8_rtrim(texts, characters="\r\n")
    filled = pc.not_equal(pc.utf8_length(pc.utf8_trim(texts, characters=BLANK)), 0)
    return NumberedLines(
        texts.filter(filled), numbers[filled.to_numpy(zero_copy_only=False)], undecodable
    )


@dataclass(frozen=True)
class Columns:
    """The lines that split into exactly the header's fields, and the positions of the rest."""

    fields: list[pa.Array]  # one text array per header field
    rows: np.ndarray  # positions (in the texts) of the lines split here
    others: np.ndarray  # positions of the lines left to be read one by one


def split_columns(texts: pa.Array, n_fields: int, sep: str, max_field_bytes: int) -> Columns:
    """Split lines on a one-character `sep` into `n_fields` columns (see the module docstring).
    A line of n_fields + 1 parts whose last one is empty (sacct --parsable) is split too."""
    parts = pc.split_pattern(texts, pattern=sep)
    counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    values = pc.list_flatten(parts)
    first = np.cumsum(counts) - counts  # every line has at least one part
    last_empty = pc.equal(pc.binary_length(values.take(pa.array(first + counts - 1))), 0)
    trailing = (counts == n_fields + 1) & _mask(last_empty)
    short = ~_mask(pc.greater(pc.binary_length(texts), max_field_bytes))
    fits = ((counts == n_fields) | trailing) & short
    rows = np.flatnonzero(fits)
    fields = [values.take(pa.array(first[rows] + j)) for j in range(n_fields)]
    return Columns(fields, rows, np.flatnonzero(~fits))


def _mask(values: pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def records_frame(
    names: list[str], fields: list[pa.Array], numbers: np.ndarray, raw: pa.Array
) -> pd.DataFrame:
    """Records of a file: one text column per field (Arrow-backed), then `line` and `raw`."""
    texts = [pd.arrays.ArrowExtensionArray(f) for f in [*fields, raw]]
    columns = {i: column for i, column in enumerate([*texts[:-1], numbers, texts[-1]])}
    frame = pd.DataFrame(columns, copy=False)
    frame.columns = pd.Index([*names, "line", "raw"])
    return frame
