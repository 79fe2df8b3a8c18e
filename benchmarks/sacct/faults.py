"""The deliberately bad lines: which kinds, where they go, which jobs qualify and what breaks."""

from __future__ import annotations

import re

from .accounting import Job
from .cluster import COLUMN
from .format import LocalClock
from .units import MINUTE_S

BAD_LINE_KINDS = ("missing_field", "end_before_start", "unknown_gpu", "non_utf8", "bad_duration")
# Where the bad lines go, as a fraction of the submissions (see the package docstring).
CORRUPTION_FRACTIONS = (0.12, 0.31, 0.50, 0.69, 0.88)


def corruptible(job: Job, kind: str) -> bool:
    """Only plain, finished jobs are corrupted, so every bad line is easy to reason about."""
    if job.kind != "plain" or job.special_name or job.corruption or job.end_s is None:
        return False
    if job.start_s is None or job.elapsed_s < MINUTE_S:
        return False
    return kind != "unknown_gpu" or "gres/gpu=" in job.alloc_tres


UNKNOWN_GPU_RE = re.compile(r"gres/gpu:[^,=]+=\d+,gres/gpu=\d+")


def corrupt_row(row: list[str], job: Job, clock: LocalClock, columns: tuple) -> tuple:
    """Apply the job's deliberate corruption to its row; returns the column indexes to print."""
    kind = job.corruption
    if kind == "missing_field":
        return tuple(index for index in columns if index != COLUMN["NNodes"])
    if kind == "end_before_start":
        row[COLUMN["End"]] = clock.format(job.start_s - job.elapsed_s)
    elif kind == "unknown_gpu":
        row[COLUMN["AllocTRES"]] = UNKNOWN_GPU_RE.sub("gres/gpu:tpu9=1,gres/gpu=1", job.alloc_tres)
    elif kind == "non_utf8":
        row[COLUMN["JobName"]] = job.name + "\udcff"  # written as raw byte 0xFF (surrogateescape)
    elif kind == "bad_duration":
        row[COLUMN["Elapsed"]] = "1-2x:00:00"
    return columns
