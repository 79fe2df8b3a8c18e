"""Split delimited text dumps into records, quarantining lines that cannot even be split.

Shared by the readers of delimited dumps: bad bytes and wrong field counts are row problems
(quarantined with line number and the original text), never exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reporting.errors import InputError
from reporting.schema import quarantine_frame


@dataclass(frozen=True)
class SplitLines:
    """Records of one file: one column per header field, plus `line` (1-based) and `raw`."""

    records: pd.DataFrame
    quarantine: pd.DataFrame
    rows_read: int  # data lines: every non-blank line except the header


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise InputError(
            f"{path}: is a folder, not a file. Point the input path at files."
        ) from None
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read ({exc.strerror}). Check the path and permissions."
        ) from exc


def split_delimited(
    path: Path,
    *,
    delimiter: str | None,
    fields: list[str] | None,
    header_marker: str,
    source_name: str,
) -> SplitLines:
    """Split a delimited dump; with `fields` it has no header, else its first line is the header.

    A trailing delimiter (sacct `--parsable`) is accepted: N fields may come as N+1 parts with
    an empty last one.
    """
    lines = read_bytes(path).split(b"\n")
    header, first_data = _header(path, lines, delimiter, fields, header_marker)
    sep = delimiter or "|"
    good: list[list[str]] = []
    bad: list[tuple[int, str, str, str]] = []
    rows_read = 0
    for number, raw_bytes in enumerate(lines[first_data:], start=first_data + 1):
        raw_bytes = raw_bytes.rstrip(b"\r")
        if not raw_bytes.strip():
            continue
        rows_read += 1
        try:
            text = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raw = raw_bytes.decode("utf-8", errors="backslashreplace")
            bad.append(
                (
                    number,
                    raw,
                    "encoding",
                    f"not valid UTF-8 (byte 0x{raw_bytes[exc.start]:02x} at column {exc.start + 1})",
                )
            )
            continue
        parts = text.split(sep)
        if len(parts) == len(header) + 1 and parts[-1] == "":
            parts.pop()
        if len(parts) != len(header):
            bad.append(
                (
                    number,
                    text,
                    "field_count",
                    f"expected {len(header)} fields separated by {sep!r}, found {len(parts)}",
                )
            )
            continue
        good.append([*parts, number, text])
    records = pd.DataFrame(good, columns=[*header, "line", "raw"], dtype=object)
    records["line"] = records["line"].astype("int64")
    quarantine = quarantine_frame(
        source_file=source_name,
        line=[b[0] for b in bad],
        raw=[b[1] for b in bad],
        check=[b[2] for b in bad],
        reason=[b[3] for b in bad],
    )
    return SplitLines(records, quarantine, rows_read)


def _header(
    path: Path, lines: list[bytes], delimiter: str | None, fields: list[str] | None, marker: str
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
        raise InputError(
            f"{path}: line {first + 1} is not a header (it does not start with {marker!r}). "
            "For dumps without a header (sacct --noheader), set `fields` (and `delimiter`) on the input in the config."
        )
    names = first_text.split(sep)
    if names and names[-1] == "":
        names.pop()
    return names, first + 1
