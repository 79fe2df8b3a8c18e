"""Ledger rows staged on disk by streamed slices (reporting/engine.py), read back day by day
when the run commits them (reporting/ledger.py `write_ledger`).

The commit must know, for every old ledger row, whether its run is staged on any day (a run
whose end moved keeps its old rows on days it no longer spans, and those rows go), and which
slice wins a run staged by two slices. Holding every staged run ID for that would grow with
the input (3.4M IDs at 10M sacct lines), so the index keeps a 64-bit hash per staged row with
its slice and day, and confirms every hash hit against the actual IDs of the days it points to:
the answers are exact, the memory is 16 bytes per staged row.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_SLICE = re.compile(r"slice-(\d+)\.parquet$")


class Staged:
    """The staged rows of one run: `folder/day=YYYY-MM-DD/slice-NNNNN.parquet`.

    A run seen in two slices (the same job in two dumps of one input) keeps the rows of the
    later slice only, as the later of two nightly dumps holds the later record."""

    def __init__(self, folder: Path) -> None:
        self.by_day: dict[date, list[Path]] = {}
        for path in sorted(folder.glob("day=*/slice-*.parquet")) if folder.exists() else []:
            day = date.fromisoformat(path.parent.name.removeprefix("day="))
            self.by_day.setdefault(day, []).append(path)
        self.files = [p for paths in self.by_day.values() for p in paths]
        hashes, files = [], []
        for number, path in enumerate(self.files):
            hashes.append(_hash(_ids(path)))
            files.append(np.full(len(hashes[-1]), number, dtype=np.int32))
        every = np.concatenate([np.empty(0, np.uint64), *hashes])
        order = np.argsort(every, kind="stable")
        self.hashes = every[order]  # sorted; with the file each staged row is in
        self.file_of = np.concatenate([np.empty(0, np.int32), *files])[order]
        self.winner = self._winners()

    def days(self) -> set[date]:
        return set(self.by_day)

    def rows(self, day: date) -> pd.DataFrame | None:
        """The day's staged rows (with `day`), a run's rows from a superseded slice left out."""
        frames = []
        for path in self.by_day.get(day, []):
            frame = pq.read_table(path).to_pandas()
            if self.winner:
                won = frame["usage_id"].map(self.winner).fillna(_number(path))
                frame = frame[won.to_numpy() == _number(path)]
            frames.append(frame.assign(day=day))
        return pd.concat(frames, ignore_index=True) if frames else None

    def holds(self, ids: pa.Array) -> np.ndarray:
        """Which of these run IDs have staged rows, on any day."""
        hashes = _hash(ids)
        at = np.searchsorted(self.hashes, hashes)
        hit = np.zeros(len(ids), dtype=bool)
        if len(self.hashes):
            hit = self.hashes[np.minimum(at, len(self.hashes) - 1)] == hashes
        if not hit.any():
            return hit
        staged = pa.concat_arrays([_ids(self.files[f]) for f in self._files_of(hashes[hit])])
        hit[hit] = pc.is_in(ids.filter(pa.array(hit)), value_set=staged).to_numpy(
            zero_copy_only=False
        )
        return hit

    def _files_of(self, hashes: np.ndarray) -> np.ndarray:
        """The staged files holding a row with one of these hashes."""
        first = np.searchsorted(self.hashes, hashes, side="left")
        lengths = np.searchsorted(self.hashes, hashes, side="right") - first
        # the positions first[k] .. first[k] + lengths[k] - 1 of every k, in one array
        shift = np.repeat(first - (np.cumsum(lengths) - lengths), lengths)
        return np.unique(self.file_of[shift + np.arange(lengths.sum())])

    def _winners(self) -> dict[str, int]:
        """Run ID → the slice that wins it, for runs staged by more than one slice. Hashes
        seen in two slices are candidates; their IDs are compared exactly."""
        numbers = np.array([_number(p) for p in self.files], dtype=np.int64)[self.file_of]
        boundary = np.flatnonzero(np.diff(self.hashes) != 0) + 1
        starts = np.concatenate([[0], boundary]) if len(self.hashes) else np.empty(0, np.int64)
        low = np.minimum.reduceat(numbers, starts) if len(starts) else numbers
        high = np.maximum.reduceat(numbers, starts) if len(starts) else numbers
        twice = self.hashes[starts[low != high]]
        if not len(twice):
            return {}
        tables = []
        for f in self._files_of(twice):
            ids = _ids(self.files[f])
            ids = ids.filter(pa.array(np.isin(_hash(ids), twice)))
            tables.append(pa.table({"usage_id": ids,
                                    "slice": pa.array(np.full(len(ids), _number(self.files[f])))}))  # fmt: skip
        spread = (
            pa.concat_tables(tables)
            .group_by("usage_id")
            .aggregate([("slice", "min"), ("slice", "max")])
        )
        spread = spread.filter(pc.not_equal(spread["slice_min"], spread["slice_max"]))
        return dict(zip(spread["usage_id"].to_pylist(), spread["slice_max"].to_pylist(), strict=True))  # fmt: skip


def _ids(path: Path) -> pa.Array:
    column = pq.read_table(path, columns=["usage_id"]).column("usage_id")
    return column.combine_chunks().cast(pa.string())


def _hash(ids: pa.Array) -> np.ndarray:
    """A 64-bit hash per ID (pandas' SipHash, fixed key: the same on every run)."""
    values = ids.to_numpy(zero_copy_only=False).astype(object)
    return pd.util.hash_array(values, categorize=False)


def _number(path: Path) -> int:
    match = _SLICE.search(path.name)
    assert match, path  # only files the engine wrote are globbed
    return int(match.group(1))
