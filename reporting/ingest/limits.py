"""Resource limits on input files, so hostile or broken files cost bounded time and memory.

Per `[[inputs]]` entry (config keys `max_field_bytes`, `max_rows`):

* a field longer than `max_field_bytes` (UTF-8 bytes) quarantines its row, check
  `field_too_long`, with the raw text cut to RAW_KEPT_CHARS;
* a file with more than `max_rows` rows is refused whole: nothing of it is read into the
  ledger, the data-quality gate fails naming the file (rows read = accepted = quarantined = 0).

Fixed limits, far above any real export, stop the rest: headers wider than MAX_COLUMNS, JSON
nested deeper than MAX_JSON_DEPTH, and gzip files that inflate more than MAX_GZIP_RATIO times
(plus GZIP_SLACK_BYTES) are file or row problems, never a crash or an exhausted memory.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
DEFAULT_MAX_FIELD_BYTES = MIB
# An AWS CUR with every cost-allocation tag as a column has a few thousand columns.
MAX_COLUMNS = 20_000
# Billing and telemetry documents nest a handful of levels; Python's parser gives up near 1,000.
MAX_JSON_DEPTH = 64
# Real exports deflate 5–30×; a bomb of zeros about 1,000×.
MAX_GZIP_RATIO = 100
GZIP_SLACK_BYTES = 8 * MIB  # small files may inflate beyond the ratio
RAW_KEPT_CHARS = 2_000  # raw text kept of a quarantined over-long row
FIELD_TOO_LONG = "field_too_long"


@dataclass(frozen=True)
class Limits:
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    max_rows: int | None = None  # None: no limit


DEFAULT_LIMITS = Limits()


class TooLarge(ValueError):
    """A file beyond a fixed limit: the message says which and by how much."""


def too_many_rows(rows: int, limits: Limits) -> str | None:
    """The file error for a file of `rows` rows, or None when within `max_rows`."""
    if limits.max_rows is None or rows <= limits.max_rows:
        return None
    return (
        f"more than {limits.max_rows:,} rows (max_rows of its input): the file was not read. "
        "Split it, or raise max_rows; the next run reads it again"
    )


def long_field(fields: Iterable[Any], limits: Limits, names: Sequence[str] = ()) -> str | None:
    """The quarantine reason if a field is longer than `max_field_bytes`, else None; `names`
    (the header) names the field."""
    limit = limits.max_field_bytes
    texts = fields if isinstance(fields, list | tuple) else list(fields)
    try:
        total = sum(map(len, texts))  # every row of every file comes here: no copy when text
    except TypeError:  # numbers or None among JSON values
        texts = [f if isinstance(f, str) else str(f) for f in texts]
        total = sum(map(len, texts))
    # A character is 1–4 UTF-8 bytes: encode only what might be too long (rarely anything).
    if total * 4 <= limit:
        return None
    for position, text in enumerate(texts, start=1):
        if len(text) * 4 > limit and len(size := text.encode("utf-8", "replace")) > limit:
            name = f" ({names[position - 1]})" if position <= len(names) else ""
            return (
                f"field {position}{name} is {len(size):,} bytes, longer than max_field_bytes "
                f"({limit:,}); fix the export or raise max_field_bytes"
            )
    return None


def cut_raw(raw: str, limits: Limits) -> str:
    """A quarantined row's raw text, cut to RAW_KEPT_CHARS when longer than max_field_bytes."""
    return raw if len(raw) <= limits.max_field_bytes else raw[:RAW_KEPT_CHARS] + "…"


def check_columns(count: int) -> None:
    if count > MAX_COLUMNS:
        raise TooLarge(
            f"the header has {count:,} columns, more than the {MAX_COLUMNS:,} any known export has"
        )


def json_too_deep(value: Any) -> bool:
    """Whether a parsed JSON value nests deeper than MAX_JSON_DEPTH (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, depth + 1) for child in children)
    return False


def json_leaves(value: Any) -> list[Any]:
    """Keys and scalar values of a parsed JSON value at any depth (check json_too_deep first)."""
    if isinstance(value, dict):
        return [*value, *(leaf for child in value.values() for leaf in json_leaves(child))]
    if isinstance(value, list):
        return [leaf for child in value for leaf in json_leaves(child)]
    return [value]


class _Inflated(io.RawIOBase):
    """A gzip file's decompressed bytes, refusing to inflate beyond the ratio limit."""

    def __init__(self, path: Path) -> None:
        self._gzip = gzip.open(path, "rb")  # noqa: SIM115  # closed by close(), as a file is
        self._left = MAX_GZIP_RATIO * path.stat().st_size + GZIP_SLACK_BYTES

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._gzip.readinto(buffer)
        self._left -= count
        if self._left < 0:
            raise TooLarge(
                f"it inflates more than {MAX_GZIP_RATIO}× its size (a gzip bomb?); "
                "decompress and check it"
            )
        return count

    def close(self) -> None:
        self._gzip.close()
        super().close()


def open_binary(path: Path) -> io.BufferedIOBase:
    """A file's bytes, gunzipped (within the ratio limit) if its name ends in .gz."""
    if path.name.lower().endswith(".gz"):
        return io.BufferedReader(_Inflated(path))
    return open(path, "rb")


def read_bytes(path: Path) -> bytes:
    with open_binary(path) as stream:
        return stream.read()
