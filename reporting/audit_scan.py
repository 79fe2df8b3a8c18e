"""The audit of a period read from the ledger itself, a window of days at a time.

`audit_ledger` judges a frame of the whole period; at tens of millions of rows that frame (and
its millions of findings) does not fit. Here the day partitions are read in order, only the
columns the cluster rules use, and judged a window of `WINDOW_ROWS` rows at a time. A run is
split over the UTC days it ran on, so its rows sit in the partitions from its start day to its
end day: a window's runs that end after its last day (or have no end) are carried into the next
window, so every run is judged whole, as in `audit_ledger`. Kubernetes pod-windows are judged
per workload and month, and cloud billing lines per billing period: their rows are kept aside
and judged together at the end (they are few beside the job rows). Findings go to a
`FindingSpill` on disk as they are found.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reporting import ledger as store
from reporting.audit import CLUSTER_COLUMNS, findings_of
from reporting.audit_cloud import CLOUD_SCOPE
from reporting.audit_config import Audit
from reporting.audit_findings import Findings, FindingSpill

WINDOW_ROWS = 50_000  # ledger rows judged at a time (besides the runs carried over)
READ = [c for c in dict.fromkeys([*CLUSTER_COLUMNS, "scope"]) if c in store.FILE_SCHEMA.names]


def audit_period(root: Path, start: date, end: date, audit: Audit, first_seen: pa.Table,
                 run_date: date) -> Findings:  # fmt: skip
    """Findings of the ledger's days start..end, ranked as `audit_ledger` ranks them. Their
    batches are written to a temporary folder, removed by `Findings.close` (or at exit)."""
    found = FindingSpill(Path(tempfile.mkdtemp(prefix="greenops-findings-")))
    aside: dict[str, list[pa.Table]] = {"cloud": [], "pods": []}
    paths = store.partitions_between(root, start, end)
    for window in _windows(paths, aside):
        _add(found, findings_of(window, _no_cloud(), audit))
    if aside["pods"]:
        pods = pa.concat_tables(aside["pods"]).to_pandas(self_destruct=True, split_blocks=True)
        _add(found, findings_of(pods, _no_cloud(), audit))
    if aside["cloud"]:
        cloud = pa.concat_tables(aside["cloud"]).to_pandas(self_destruct=True, split_blocks=True)
        _add(found, findings_of(pd.DataFrame(columns=READ), cloud, audit))
    return found.finish(first_seen, run_date)


def _add(spill: FindingSpill, found: pa.Table | None) -> None:
    if found is not None:
        spill.add(found)


def _no_cloud() -> pd.DataFrame:
    return pd.DataFrame({"scope": pd.Series(dtype=object)})


def _windows(paths: list[Path], aside: dict[str, list[pa.Table]]) -> Iterator[pd.DataFrame]:
    """Cluster job rows of whole runs, a window at a time, in ledger order (day by day, each
    partition sorted by usage_id): the order `audit_ledger` sees them in."""
    carried: list[pa.Table] = []
    pending: list[pa.Table] = []
    rows = 0
    for number, path in enumerate(paths):
        table = _read(path, aside)
        pending.append(table)
        rows += table.num_rows
        last = number == len(paths) - 1
        if rows < WINDOW_ROWS and not last:
            continue
        window = pa.concat_tables([*carried, *pending])
        pending, rows = [], 0
        ready, late = _split_ended(window, None if last else store._day_of(path))
        carried = [late] if late.num_rows else []
        if ready.num_rows:
            yield ready.to_pandas(self_destruct=True, split_blocks=True)


def _read(path: Path, aside: dict[str, list[pa.Table]]) -> pa.Table:
    """One partition's cluster job rows (the columns the rules read); its cloud billing lines
    (all columns) and Kubernetes pod-windows are put aside."""
    with store.readable(path):
        table = pq.read_table(path, columns=READ, schema=store.FILE_SCHEMA)
    cloud = pc.fill_null(pc.equal(table["scope"], CLOUD_SCOPE), False)
    if pc.any(cloud).as_py():
        whole = store._read_file(path)
        aside["cloud"].append(whole.filter(cloud))
        table = table.filter(pc.invert(cloud))
    pods = pc.fill_null(
        pc.and_(pc.equal(table["source"], "opencost"), pc.is_valid(table["workload"])), False
    )
    if pc.any(pods).as_py():
        aside["pods"].append(table.filter(pods))
        table = table.filter(pc.invert(pods))
    return table


def _split_ended(window: pa.Table, day: date | None) -> tuple[pa.Table, pa.Table]:
    """The window's rows of runs that ended by `day` (all if None), and the rows of the others."""
    if day is None:
        return window, window.slice(0, 0)
    ended_on = pc.cast(window["ended_at"], pa.date32())
    open_rows = pc.fill_null(pc.greater(ended_on, pa.scalar(day, pa.date32())), True)
    if not pc.any(open_rows).as_py():
        return window, window.slice(0, 0)
    open_runs = pc.unique(window["usage_id"].filter(open_rows))
    late = pc.is_in(window["usage_id"], value_set=open_runs)
    return window.filter(pc.invert(late)), window.filter(late)
