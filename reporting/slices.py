"""Cutting large sacct dumps into slices that are read, validated and attributed one at a time.

A slice holds whole jobs: it is cut only where the job ID's base (before the `.` of a step)
changes, so a job line and its step lines, and the repeated records of a requeued job, always
land in the same slice. Reading a slice needs only its bytes and the file's header, so memory
stays bounded by the slice size, not the file size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from reporting.config import Config
from reporting.ingest.lines import HEAD_BYTES, FileProblem, Span, read_header

BLOCK_BYTES = 1 << 24  # newlines are counted in blocks of this size (line numbers of the cuts)


@dataclass(frozen=True)
class Slice:
    """One slice of one input file: what a worker needs to read it."""

    number: int  # order of the slice in the run (the later slice wins a run seen twice)
    input_index: int  # position of its [[inputs]] entry
    source_file: str  # the file's name in reports
    path: Path
    span: Span


def plan_slices(config: Config, files: dict[int, dict[str, Path]]) -> list[Slice]:
    """Slices of the Slurm files of each input (index → name → path) whose files together
    exceed `[engine] batch_mb`; smaller inputs are not sliced (they are read whole)."""
    batch_bytes = int(config.engine.batch_mb * (1 << 20))
    slices: list[Slice] = []
    for index, paths in sorted(files.items()):
        spec = config.inputs[index]
        if spec.kind != "slurm" or sum(p.stat().st_size for p in paths.values()) <= batch_bytes:
            continue
        for name, path in paths.items():
            for span in cut(path, batch_bytes, spec.delimiter, spec.fields):
                slices.append(Slice(len(slices), index, name, path, span))
    return slices


def cut(
    path: Path, batch_bytes: int, delimiter: str | None, fields: list[str] | None
) -> list[Span]:
    """Spans of about `batch_bytes` each, cut at job boundaries; one span for the whole data
    when the header cannot be read (the reader then reports the file's problem once)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES).split(b"\n")
        try:
            names, first_data = read_header(head, delimiter, fields, "JobID")
        except FileProblem:
            return [Span(0, size, 1)]
        lowered = [n.strip().lower() for n in names]
        header_bytes = sum(len(line) + 1 for line in head[:first_data])
        if "jobid" not in lowered or header_bytes > size:
            return [Span(0, size, 1)]
        column, sep = lowered.index("jobid"), (delimiter or "|").encode()
        cuts = [min(header_bytes, size)]
        while cuts[-1] + batch_bytes < size:
            at = _next_job_start(handle, cuts[-1] + batch_bytes, column, sep)
            if at is None:
                break
            cuts.append(at)
    starts = _line_numbers(path, cuts)
    ends = [*cuts[1:], size]
    return [Span(s, e, n) for s, e, n in zip(cuts, ends, starts, strict=True)]


def _next_job_start(handle: BinaryIO, offset: int, column: int, sep: bytes) -> int | None:
    """Byte offset of the first line at or after `offset`'s next line whose job differs from
    that line's job; None at the end of the file."""
    handle.seek(offset)
    handle.readline()  # the rest of a line cut in the middle
    first = None
    while True:
        start = handle.tell()
        line = handle.readline()
        if not line:
            return None
        job = _base_job(line, column, sep)
        if first is None:
            first = job
        elif job is not None and job != first:
            return start


def _base_job(line: bytes, column: int, sep: bytes) -> bytes | None:
    """`123_4` of `123_4.batch`; None for a line too short to hold the field (a bad line stays
    with the job before it)."""
    parts = line.split(sep, column + 1)
    if len(parts) <= column or not parts[column].strip():
        return None
    return parts[column].split(b".", 1)[0].strip()


def _line_numbers(path: Path, offsets: list[int]) -> list[int]:
    """1-based line number of the line starting at each (ascending) byte offset."""
    numbers, newlines, position = [], 0, 0
    with path.open("rb") as handle:
        for offset in offsets:
            while position < offset:
                block = handle.read(min(BLOCK_BYTES, offset - position))
                newlines += block.count(b"\n")
                position += len(block)
            numbers.append(newlines + 1)
    return numbers
