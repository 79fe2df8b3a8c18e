"""Which run each sacct line belongs to, and which record of a run a read keeps.

Requeued jobs print several runs under one JobID; overlapping nightly dumps print the same run
more than once. See `with_run_keys` and `drop_superseded`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting.ingest.line_columns import TEXT
from reporting.schema import empty_quarantine, quarantine_frame

# States of runs that are over; anything else (RUNNING, PENDING, ...) is counted, not attributed.
FINAL_STATES = frozenset(
    [
        "COMPLETED",
        "FAILED",
        "TIMEOUT",
        "CANCELLED",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "REVOKED",
        "REQUEUED",
    ]
)


def with_run_keys(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Key each line by its run: a step belongs to the last job line with its id above it.
    Returns the records in line order with an integer `run_key`, and which lines are steps.

    With `sacct --duplicates` a requeued job prints several job lines with the same JobID, each
    followed by its own `.batch`/`.extern` steps, so the id alone does not say which run a step
    belongs to. Steps printed before any job line of a requeued id get run number 0 (orphans).
    """
    ordered = records if records["line"].is_monotonic_increasing else records.sort_values("line")
    job_ids = text_array(ordered["job_id"])
    parent_id = pc.list_element(pc.split_pattern(job_ids, ".", max_splits=1), 0)
    codes = pc.dictionary_encode(parent_id).indices.to_numpy().astype(np.int64)
    parent = pd.Series(codes, index=ordered.index)
    is_step = pd.Series(mask(pc.match_substring(job_ids, ".")), index=ordered.index)
    is_job = ~is_step
    run_number = is_job.astype("int64").groupby(parent).cumsum()
    # An id with a single run owns its steps wherever they are printed (order-independent).
    single_run = is_job.groupby(parent).transform("sum") == 1
    run_number = run_number.where(~single_run, 1)
    return ordered.assign(run_key=parent * (len(ordered) + 1) + run_number), is_step


def text_array(column: pd.Series) -> pa.Array:
    return pa.array(column, type=TEXT, from_pandas=True)


def mask(values: pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def drop_superseded(usage: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per run: a job seen in several dumps keeps its most final, latest record.

    Overlapping nightly dumps print a job as RUNNING one night and COMPLETED the next; the
    earlier record is superseded (quarantined as `duplicate`, with its job and step lines).
    """
    if usage.empty:
        return usage, empty_quarantine()
    ranked = usage.assign(
        _final=usage["state"].isin(FINAL_STATES),
        _end=usage["ended_at"],
    ).sort_values(["usage_id", "_final", "_end", "source_file", "line"], na_position="first")
    keep = ~ranked.duplicated("usage_id", keep="last")
    dropped = ranked[~keep]
    kept_line = ranked[keep].set_index("usage_id")[["source_file", "line"]]
    where = dropped["usage_id"].map(
        lambda u: f"{kept_line.at[u, 'source_file']}:{kept_line.at[u, 'line']}"
    )
    rows = dropped.loc[dropped.index.repeat(dropped["lines_merged"])]
    quarantine = quarantine_frame(
        source_file=rows["source_file"].tolist(),
        line=rows["line"].tolist(),
        raw=rows["raw"].tolist(),
        check="duplicate",
        reason=("superseded by the record at " + where.loc[rows.index]).tolist(),
    )
    return ranked[keep].drop(columns=["_final", "_end"]).sort_index(), quarantine
