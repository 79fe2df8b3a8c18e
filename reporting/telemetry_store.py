"""DCGM samples kept with the ledger (`_telemetry/`), one parquet file per source file.

Runs and the telemetry that measures them may be read on different nights; keeping the samples
lets a run read later be joined with telemetry read earlier. Files are replaced atomically and
written sorted, so the same samples give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reporting.ingest.dcgm import empty_samples

TELEMETRY_DIR = "_telemetry"


def _path(root: Path, source_file: str) -> Path:
    # Source names are paths: hashed so that no name can reach outside the folder.
    digest = hashlib.sha256(source_file.encode()).hexdigest()[:24]
    return root / TELEMETRY_DIR / f"{digest}.parquet"


def write_telemetry(root: Path, samples: pd.DataFrame, source_files: Iterable[str]) -> None:
    """Replace the stored samples of `source_files` with theirs in `samples`."""
    folder = root / TELEMETRY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(set(source_files)):
        mine = samples[samples["source_file"] == name]
        mine = mine.sort_values(["host", "gpu", "metric", "timestamp", "line"], kind="stable")
        table = pa.Table.from_pandas(mine.reset_index(drop=True), preserve_index=False)
        tmp = folder / f".{_path(root, name).name}.tmp"
        pq.write_table(table.replace_schema_metadata(None), tmp, compression="zstd")
        os.replace(tmp, _path(root, name))


def read_telemetry(
    root: Path, sites: Iterable[str], start: pd.Timestamp, end: pd.Timestamp,
    exclude: Iterable[str] = (),
) -> pd.DataFrame:  # fmt: skip
    """Stored samples of `sites` between start and end, without those of `exclude` files."""
    folder = root / TELEMETRY_DIR
    if pd.isna(start) or pd.isna(end):  # no run has a time: no sample can fall in its window
        return empty_samples()
    # Filtered in Arrow while reading (row groups outside the window are skipped): every slice
    # of a large input reads the store, and only its own sites and hours are wanted. Cast: a
    # file whose samples all lack a text column stores it as Arrow's null type.
    wanted = (
        pc.field("site").cast(pa.string()).isin(pa.array(sorted(set(sites)), pa.string()))
        & ~pc.field("source_file")
        .cast(pa.string())
        .isin(pa.array(sorted(set(exclude)), pa.string()))
        & (pc.field("timestamp") >= pa.scalar(start.to_pydatetime()))
        & (pc.field("timestamp") <= pa.scalar(end.to_pydatetime()))
    )
    frames = [empty_samples()]
    for path in sorted(folder.glob("*.parquet")) if folder.exists() else []:
        table = pq.read_table(path, filters=wanted)
        if table.num_rows:
            frames.append(table.to_pandas())
    return pd.concat(frames, ignore_index=True)


RUN_MARGIN = pd.Timedelta(minutes=30)  # a step either side: intervals at a run's edges complete


def telemetry_for_runs(
    root: Path, usage: pd.DataFrame, exclude: Iterable[str] = ()
) -> pd.DataFrame | None:
    """Stored samples for the runs' sites and times; None when no run has a GPU (nothing to
    join, so nothing is read)."""
    if usage.empty or not (usage["n_gpus"].fillna(0) > 0).any():
        return None
    start, end = usage["started_at"].min() - RUN_MARGIN, usage["ended_at"].max() + RUN_MARGIN
    return read_telemetry(root, set(usage["site"]), start, end, exclude)
