"""Ledger rows staged on disk by streamed slices (reporting/engine.py), read back day by day
when the run commits them (reporting/ledger.py `write_ledger`)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

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
        ids = self._ids()
        self.usage_ids: pa.Array = pc.unique(ids.column("usage_id"))
        spread = ids.group_by("usage_id").aggregate([("slice", "min"), ("slice", "max")])
        twice = spread.filter(pc.not_equal(spread["slice_min"], spread["slice_max"]))
        self.winner = dict(zip(twice["usage_id"].to_pylist(), twice["slice_max"].to_pylist(), strict=True))  # fmt: skip

    def _ids(self) -> pa.Table:
        tables = [
            pq.read_table(p, columns=["usage_id"]).append_column(
                "slice", pa.array([_number(p)] * pq.read_metadata(p).num_rows, pa.int64())
            )
            for paths in self.by_day.values()
            for p in paths
        ]
        empty = pa.table({"usage_id": pa.array([], pa.string()), "slice": pa.array([], pa.int64())})
        return pa.concat_tables([empty, *[t.cast(empty.schema) for t in tables]])

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


def _number(path: Path) -> int:
    match = _SLICE.search(path.name)
    assert match, path  # only files the engine wrote are globbed
    return int(match.group(1))
