"""Counts of ledger rows, runs and billing lines, from ledger rows or from a rollup of them.

The report's sections take a period's ledger as a frame. That frame is either the ledger rows
themselves (tests, small ledgers) or a rollup (rollup.py): one row per distinct combination
of the columns the sections group by, with the additive figures summed and these counts
carried, as a rollup has no `usage_id` to count. A run's first row in the period carries
RUNS = 1 (its team, model, phase, site and scope are those of all its rows), so summing RUNS
over any grouping by those columns counts distinct runs.
"""

from __future__ import annotations

import pandas as pd

ROWS = "ledger_rows"  # ledger rows behind a rollup row
RUNS = "runs"  # runs (usage ids) whose first row in the period is behind it
TELEMETRY_RUNS = "telemetry_runs"  # on-prem runs with DCGM coverage, counted once each
BILLING_LINES = "billing_lines"  # billing lines (usage id before '#'), counted once each


def is_rollup(frame: pd.DataFrame) -> bool:
    return ROWS in frame.columns


def runs(frame: pd.DataFrame) -> int:
    """Distinct runs (usage ids) behind the frame."""
    return int(frame[RUNS].sum()) if is_rollup(frame) else int(frame["usage_id"].nunique())


def run_columns(frame: pd.DataFrame) -> list[str]:
    """The columns `runs` reads."""
    return [ROWS, RUNS] if is_rollup(frame) else ["usage_id"]


def telemetry_runs(cluster: pd.DataFrame) -> int:
    """Distinct runs of on-prem rows with a DCGM telemetry coverage above 0."""
    if is_rollup(cluster):
        return int(cluster[TELEMETRY_RUNS].sum())
    covered = cluster["telemetry_coverage_ratio"].fillna(0) > 0
    return int(cluster.loc[covered, "usage_id"].nunique())


def billing_lines(cloud: pd.DataFrame) -> int:
    """Distinct billing lines (a line shared by teams is one usage id before its '#')."""
    if is_rollup(cloud):
        return int(cloud[BILLING_LINES].sum())
    return int(cloud["usage_id"].str.split("#").str[0].nunique())


def rows(frame: pd.DataFrame) -> int:
    """Ledger rows behind the frame."""
    return int(frame[ROWS].sum()) if is_rollup(frame) else len(frame)


def rows_per_value(frame: pd.DataFrame, column: str) -> pd.Series:
    """Ledger rows per distinct non-missing value of `column` (as `value_counts`)."""
    if not is_rollup(frame):
        return frame[column].value_counts()
    return frame.groupby(column, sort=False)[ROWS].sum()
