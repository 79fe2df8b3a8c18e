"""A period's findings held on disk, not in memory: a 10M-row quarter has millions of them.

The audit hands its findings over a window of runs at a time (`FindingSpill.add`). They are
ranked and written to an Arrow batch file every `SPILL_ROWS` findings, and only their sort key
(kg CO2e, finding id) and what the summary adds up stay in memory. `Findings.chunks` then hands
them out in the global rank order, a chunk at a time: the key table, sorted, says how many rows
of each batch the next chunk takes, and since every batch is ranked by the same order those are
the next rows of each file, read a record batch at a time (a k-way merge done by counting).
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting.schema import FINDING_COLUMNS, LEDGER_SCHEMA

SPILL_ROWS = (
    50_000  # findings ranked and written per batch file (each held as a frame until written)
)
SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
READ_ROWS = 1_024  # rows per record batch of a batch file, read back one at a time (the merge
# holds up to this many rows of each of its ~100 files at 10M ledger rows)
CHUNK_ROWS = 50_000  # ranked findings handed out at a time
TEXT = (
    "finding_id",
    "rule",
    "severity",
    "usage_id",
    "site",
    "user",
    "account",
    "job_name",
    "owner",
    "team",
    "model",
    "phase",
    "currency",
    "waste_formula",
    "message",
    "action",
)
SPILLED = pa.schema(
    [
        LEDGER_SCHEMA.field("ended_at")
        if c == "ended_at"
        else pa.field(c, pa.string() if c in TEXT else pa.float64())
        for c in FINDING_COLUMNS
        if c != "first_seen"
    ]
)
OWNER_KEYS = ["owner", "user", "team"]


def rank_order(found: pa.Table) -> pa.Array:
    """Indices that rank findings by wasted kg CO2e, largest first, unknown (NaN) last, then by
    finding id: the order `audit_ledger` gives (pandas puts NaN last; Arrow puts nulls there)."""
    co2e = found["wasted_co2e_kg"]
    key = pc.if_else(pc.is_nan(co2e), pa.scalar(None, pa.float64()), co2e)
    keys = pa.table({"co2e": key, "id": found["finding_id"]})
    return pc.sort_indices(
        keys, sort_keys=[("co2e", "descending", "at_end"), ("id", "ascending", "at_end")]
    )


class FindingSpill:
    """Collects findings (FINDING_COLUMNS but first_seen) into ranked batch files in `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # Removed with the findings, or at exit if they are never closed.
        self.cleanup = weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.batches: list[Path] = []
        self.keys: list[pa.Table] = []
        self.by_rule: Counter[str] = Counter()
        self.owners: Counter[tuple[object, object, object]] = Counter()

    def add(self, found: pa.Table) -> None:
        """Take some findings (SPILLED)."""
        counts = pc.value_counts(found["rule"]).to_pylist()
        self.by_rule.update({c["values"]: c["counts"] for c in counts})
        count = ("owner", "count", pc.CountOptions(mode="all"))  # missing owners too
        combos = found.group_by(OWNER_KEYS, use_threads=False).aggregate([count])
        keys = zip(*(combos[c].to_pylist() for c in OWNER_KEYS), strict=True)
        self.owners.update(dict(zip(keys, combos["owner_count"].to_pylist(), strict=True)))
        self.buffer.append(found)
        self.buffered += found.num_rows
        if self.buffered >= SPILL_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buffered:
            return
        table = pa.concat_tables(self.buffer)
        self.buffer, self.buffered = [], 0
        table = table.take(rank_order(table)).combine_chunks()  # batches of READ_ROWS rows
        path = self.folder / f"batch-{len(self.batches):05d}.arrow"
        # Arrow IPC: written and read back at about the speed of a copy (parquet's encoding and
        # decoding cost more than the audit's rules). LZ4 keeps a 10M-row quarter's spill near
        # 0.6 GB instead of 2.3 GB: /tmp is often RAM (tmpfs).
        with pa.ipc.new_file(path, table.schema, options=SPILL_OPTIONS) as writer:
            writer.write_table(table, max_chunksize=READ_ROWS)
        number = np.full(table.num_rows, len(self.batches), dtype=np.int32)
        self.keys.append(
            pa.table(
                {c: table[c] for c in ("finding_id", "wasted_co2e_kg", "wasted_energy_kwh")}
            ).append_column("batch", pa.array(number))
        )
        self.batches.append(path)
        # Arrow's allocator keeps freed blocks for reuse; across a quarter's windows they add up
        # to a few hundred MiB of the report's peak. Given back once per batch: no measured cost.
        pa.default_memory_pool().release_unused()

    def finish(self, first_seen: pa.Table, run_date: date) -> Findings:
        """The findings, ranked, each with the date it was first found (`first_seen`: a table of
        finding_id → first_seen; ids not in it are new tonight)."""
        self._flush()
        empty = {"finding_id": pa.string(), "wasted_co2e_kg": pa.float64(),
                 "wasted_energy_kwh": pa.float64(), "batch": pa.int32()}  # fmt: skip
        keys = pa.concat_tables(self.keys) if self.keys else pa.schema(empty).empty_table()
        self.keys = []
        keys = keys.take(rank_order(keys))
        pa.default_memory_pool().release_unused()  # the unsorted keys' blocks
        seen = pc.index_in(keys["finding_id"], value_set=first_seen["finding_id"])
        dates = pc.take(first_seen["first_seen"].cast(pa.string()), seen)
        keys = keys.append_column("first_seen", pc.fill_null(dates, run_date.isoformat()))
        findings = Findings(keys, self.batches, dict(sorted(self.by_rule.items())), self.owners)
        self.cleanup.detach()
        findings.cleanup = weakref.finalize(
            findings, shutil.rmtree, self.folder, ignore_errors=True
        )
        return findings


def as_spilled(frame: pd.DataFrame) -> pa.Table:
    """A frame of findings (FINDING_COLUMNS, or those but finding_id and first_seen) as an Arrow
    table of SPILLED's types (SPILLED's columns the frame has)."""
    names = [n for n in SPILLED.names if n in frame.columns]
    schema = pa.schema([SPILLED.field(n) for n in names])
    table = pa.Table.from_pandas(frame[names], schema=schema, preserve_index=False)
    return table.replace_schema_metadata(None)


def findings_of_frame(frame: pd.DataFrame, run_date: date) -> Findings:
    """A FINDING_COLUMNS frame (a small period's, a test's) held like the audit's findings, in
    the audit's rank order, keeping its first_seen dates."""
    spill = FindingSpill(Path(tempfile.mkdtemp(prefix="greenops-findings-")))
    if not frame.empty:
        spill.add(as_spilled(frame))
    seen = pa.table({c: pa.array(frame[c].astype(object), pa.string())
                     for c in ("finding_id", "first_seen")})  # fmt: skip
    return spill.finish(seen, run_date)


@dataclass
class Findings:
    """A period's findings, ranked by wasted kg CO2e (the order of findings.csv)."""

    keys: pa.Table  # ranked: finding_id, wasted_co2e_kg, wasted_energy_kwh, batch, first_seen
    batches: list[Path]
    by_rule: dict[str, int]
    owners: Counter[tuple[object, object, object]] = field(default_factory=Counter)
    cleanup: weakref.finalize | None = None  # removes the batch files

    def close(self) -> None:
        if self.cleanup is not None:
            self.cleanup()

    def __len__(self) -> int:
        return self.keys.num_rows

    @property
    def empty(self) -> bool:
        return len(self) == 0

    def total(self, column: str) -> float:
        """The column's sum as pandas adds up the ranked frame (NaN as 0, numpy's pairwise sum)."""
        values = self.keys[column].to_numpy()
        return float(np.where(np.isnan(values), 0.0, values).sum())

    def chunks(
        self, rows: int | None = None, columns: list[str] = FINDING_COLUMNS
    ) -> Iterator[pd.DataFrame]:
        """The findings (`columns` of FINDING_COLUMNS) in rank order, `rows` (default
        CHUNK_ROWS) at a time."""
        for table in self.tables(rows, columns):
            yield table.to_pandas()

    def tables(
        self, rows: int | None = None, columns: list[str] = FINDING_COLUMNS
    ) -> Iterator[pa.Table]:
        """`chunks` as Arrow tables (SPILLED types, first_seen as text)."""
        rows = rows or CHUNK_ROWS
        stored = [c for c in columns if c != "first_seen"]
        readers = [_Reader(path, stored) for path in self.batches]
        batch = self.keys["batch"].to_numpy()
        for start in range(0, len(self), rows):
            taken = batch[start : start + rows]
            counts = np.bincount(taken, minlength=len(readers))
            blocks = pa.concat_tables([readers[b].take(int(n)) for b, n in enumerate(counts) if n])
            # Blocks come batch by batch; a stable argsort of the chunk's batch numbers says
            # where each block row goes in rank order.
            order = np.argsort(taken, kind="stable")
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            ranked = blocks.take(pa.array(inverse)).append_column(
                "first_seen", self.keys["first_seen"].slice(start, rows)
            )
            yield ranked.select(columns)

    def rows_at(self, positions: np.ndarray) -> pd.DataFrame:
        """The findings at these rank positions (ascending), read from the record batches that hold
        them: a few dozen per owner's digest, among millions."""
        if not len(positions):
            return pd.DataFrame(columns=FINDING_COLUMNS)
        batch = self.keys["batch"].to_numpy()
        within = _within(batch)[positions]
        batch = batch[positions]
        pieces, where = [], []
        for number in np.unique(batch):
            rows = within[batch == number]
            groups = np.unique(rows // READ_ROWS)
            with pa.OSFile(str(self.batches[number])) as source:
                file = pa.ipc.open_file(source)
                table = pa.Table.from_batches([file.get_batch(g) for g in groups.tolist()], SPILLED)
            # Every record batch but a file's last holds READ_ROWS rows.
            local = np.searchsorted(groups, rows // READ_ROWS) * READ_ROWS + rows % READ_ROWS
            pieces.append(table.take(pa.array(local)))
            where.append(positions[batch == number])
        table = pa.concat_tables(pieces).take(pa.array(np.argsort(np.concatenate(where))))
        first_seen = self.keys["first_seen"].take(pa.array(positions))
        return table.append_column("first_seen", first_seen).select(FINDING_COLUMNS).to_pandas()

    def head(self, rows: int) -> pd.DataFrame:
        return next(self.chunks(rows), None) if len(self) else pd.DataFrame(columns=FINDING_COLUMNS)

    def frame(self) -> pd.DataFrame:
        """All the findings in one frame: for small periods and tests only."""
        if self.empty:
            return pd.DataFrame(columns=FINDING_COLUMNS)
        return pd.concat(list(self.chunks()), ignore_index=True)

    def first_seen(self) -> pa.Table:
        return self.keys.select(["finding_id", "first_seen"])


def _within(batch: np.ndarray) -> np.ndarray:
    """Each rank position's row number in its batch file (the files are ranked too)."""
    order = np.argsort(batch, kind="stable")
    ordered = batch[order]
    within = np.empty_like(order)
    within[order] = np.arange(len(order)) - np.searchsorted(ordered, ordered, side="left")
    return within


class _Reader:
    """A ranked batch file read in order, one record batch at a time (never read ahead: a
    merge of many files must not hold much of each)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.file = pa.ipc.open_file(pa.OSFile(str(path)))
        self.columns = columns
        self.schema = pa.schema([SPILLED.field(c) for c in columns])
        self.group = 0
        self.rest = self.schema.empty_table()

    def take(self, rows: int) -> pa.Table:
        pieces = [self.rest]
        held = self.rest.num_rows
        while held < rows:
            group = self.file.get_batch(self.group).select(self.columns)
            self.group += 1
            pieces.append(pa.Table.from_batches([group]))
            held += group.num_rows
        table = pa.concat_tables(pieces) if len(pieces) > 1 else self.rest
        self.rest = table.slice(rows)
        return table.slice(0, rows)
