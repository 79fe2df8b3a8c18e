"""The ledger: parquet files partitioned by UTC day (`day=YYYY-MM-DD/part-0.parquet`).

Writes are idempotent and atomic per partition: a run replaces, in every day it touches, the
rows of the runs it carries and the rows that came from the files it read; other rows stay.
Each partition is written to a hidden temporary file and renamed over the old one, so a reader
never sees a partial file, and the same rows always give the same bytes (sorted, no clock).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reporting.errors import InputError
from reporting.factors import FACTOR_COLUMNS
from reporting.ingest.billing.vendor_carbon import empty_vendor_carbon
from reporting.schema import LEDGER_COLUMNS, LEDGER_SCHEMA, empty_quarantine
from reporting.staging import Staged

log = logging.getLogger("reporting")

PART_NAME = "part-0.parquet"
EPOCH = date(1970, 1, 1)
# `day` lives in the folder name (hive style), not in the file, so pyarrow, DuckDB or Spark can
# read the folder with hive partitioning without a clash between the two.
FILE_SCHEMA = pa.schema([f for f in LEDGER_SCHEMA if f.name != "day"])
FACTORS_FILE = "_factors.csv"  # leading _: dataset readers skip it
JOURNAL_FILE = "_journal.json"


def partition_path(root: Path, day: date) -> Path:
    return root / f"day={day.isoformat()}" / PART_NAME


def write_ledger(
    root: Path,
    rows: pd.DataFrame,
    source_files: Iterable[str],
    after_step: Callable[[int], None] | None = None,
    billing_periods: Iterable[str] = (),
    staged: Staged | None = None,
) -> list[Path]:
    """Upsert rows into their day partitions in one commit; return the partitions written.

    Every new partition is written to a hidden temporary file first; a journal then lists the
    renames, which are applied one by one. A run killed before the journal exists leaves the old
    ledger untouched; one killed after it is rolled forward by `recover` at the next start.
    `after_step(n)` is called before the journal (n = 0) and after the n-th rename (crash tests).
    Rows of the `billing_periods` given (restated billing exports) are replaced whole, whatever
    file they came from, so a re-issued export never adds to the old one. `staged`: rows that
    streamed slices left on disk, added day by day (only one day's rows are in memory at once).
    """
    recover(root)
    replaced_files = set(source_files)
    periods = set(billing_periods)
    # Indexed once: every day's old rows are looked up in it (hashing the new IDs per day cost
    # as much as the rest of the write).
    new_ids = pd.Index(rows["usage_id"].unique())
    by_day = dict(tuple(rows.groupby("day", sort=False)))
    staged_days = staged.days() if staged is not None else set()
    plan: list[dict[str, str | None]] = []
    for day in sorted(set(by_day) | staged_days | _days_holding(root, replaced_files, periods)):
        path = partition_path(root, day)
        keep = _kept_rows(path, new_ids, (replaced_files, periods), staged)
        pieces = [keep, by_day.get(day), staged.rows(day) if staged is not None else None]
        present = [p for p in pieces if p is not None and not p.empty]
        merged = pd.concat(present, ignore_index=True) if present else rows.iloc[0:0]
        tmp = None
        if not merged.empty:
            tmp = _write_hidden(
                path, merged.sort_values(["usage_id", "slice_start_at"], kind="stable")
            )
        plan.append({"final": _relative(root, path), "tmp": _relative(root, tmp) if tmp else None})
    _commit(root, plan, after_step)
    return [root / str(step["final"]) for step in plan if step["tmp"]]


def _kept_rows(
    path: Path, new_ids: pd.Index, replaced: tuple[set[str], set[str]], staged: Staged | None
) -> pd.DataFrame | None:
    """The rows of a day's partition that stay: not carried again by this run (`new_ids`,
    `staged`), not from the files it read again nor of the billing periods it restates."""
    if not path.exists():  # nothing stays: no need to build an empty frame
        return None
    replaced_files, periods = replaced
    old = read_partition(path)
    carried = new_ids.get_indexer(old["usage_id"].astype(object)) >= 0
    if staged is not None:  # exact, without holding every staged ID (see staging.py)
        carried = carried | staged.holds(pa.array(old["usage_id"], pa.string()))
    replaced_rows = (
        pd.Series(carried, index=old.index)
        | old["source_file"].map(replaced_files.__contains__)
        | old["billing_period"].map(periods.__contains__)
    )
    return old[~replaced_rows.astype(bool)]


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _commit(
    root: Path, plan: list[dict[str, str | None]], after_step: Callable[[int], None] | None
) -> None:
    journal = root / JOURNAL_FILE
    tmp = root / f".{JOURNAL_FILE}.tmp"
    if after_step is not None:
        after_step(0)  # every new partition is written, nothing is committed yet
    tmp.write_text(json.dumps(plan, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, journal)
    _apply(root, plan, after_step)
    journal.unlink()


def _apply(
    root: Path, plan: list[dict[str, str | None]], after_step: Callable[[int], None] | None = None
) -> None:
    for number, step in enumerate(plan, start=1):
        final = root / str(step["final"])
        if step["tmp"] is None:
            _remove(final)
        elif (root / step["tmp"]).exists():
            os.replace(root / step["tmp"], final)
        if after_step is not None:
            after_step(number)


def recover(root: Path) -> None:
    """Finish a commit that a killed run left half done; drop files of one that never committed."""
    journal = root / JOURNAL_FILE
    if journal.exists():
        plan = json.loads(journal.read_text(encoding="utf-8"))
        log.warning("%s: completing an interrupted ledger commit (%s partitions)", root, len(plan))
        _apply(root, plan)
        journal.unlink()
    for stray in root.glob("day=*/.*.tmp") if root.exists() else []:
        stray.unlink()


def _days_holding(root: Path, source_files: set[str], periods: set[str]) -> set[date]:
    """Days whose partitions hold rows from these files or billing periods (so a shrunk file
    or a restated period loses its old rows)."""
    days = set()
    for path in _partitions(root):
        table = pq.read_table(path, columns=["source_file", "billing_period"], schema=FILE_SCHEMA)
        if source_files.intersection(table.column("source_file").to_pylist()) or (
            periods and periods.intersection(table.column("billing_period").to_pylist())
        ):
            days.add(_day_of(path))
    return days


def _write_hidden(path: Path, frame: pd.DataFrame) -> Path:
    """Write a partition's next version beside it, hidden from readers; return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame[FILE_SCHEMA.names], schema=FILE_SCHEMA, preserve_index=False)
    table = table.replace_schema_metadata(None)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return tmp


def _remove(path: Path) -> None:
    if path.exists():
        path.unlink()
    if path.parent.exists() and not any(path.parent.iterdir()):
        path.parent.rmdir()


def _partitions(root: Path) -> list[Path]:
    return sorted(root.glob(f"day=*/{PART_NAME}")) if root.exists() else []


def _day_of(path: Path) -> date:
    return date.fromisoformat(path.parent.name.removeprefix("day="))


def _read_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One partition file with its `day` column restored from the folder name."""
    wanted = [c for c in (columns or LEDGER_COLUMNS) if c != "day"]
    table = pq.read_table(path, columns=wanted, schema=FILE_SCHEMA)
    days_since_epoch = (_day_of(path) - EPOCH).days
    day = pa.array(np.full(table.num_rows, days_since_epoch, dtype=np.int32)).view(pa.date32())
    table = table.append_column("day", day)
    return table.select(columns or LEDGER_COLUMNS)


def partitions_between(root: Path, start: date, end: date) -> list[Path]:
    """The day partitions of start..end (inclusive), in day order."""
    return [p for p in _partitions(root) if start <= _day_of(p) <= end]


@contextmanager
def readable(where: Path) -> Iterator[None]:
    """A ledger file that cannot be read is the user's to fix (re-run), not a traceback."""
    try:
        yield
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(
            f"{where}: ledger cannot be read ({exc}). Re-run the affected dates."
        ) from exc


def read_partition(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in LEDGER_COLUMNS})
    return _read_file(path).to_pandas()


def read_ledger(
    root: Path, start: date, end: date, columns: list[str] | None = None
) -> pd.DataFrame:
    """Ledger rows of days start..end (inclusive), reading only those partitions and columns."""
    paths = partitions_between(root, start, end)
    schema = pa.schema([LEDGER_SCHEMA.field(c) for c in columns]) if columns else LEDGER_SCHEMA
    if not paths:
        return schema.empty_table().to_pandas()
    with readable(root):
        tables = [_read_file(p, columns) for p in paths]
    table = pa.concat_tables(tables)
    del tables  # so that converting can free each column as it goes (self_destruct)
    return table.to_pandas(self_destruct=True, split_blocks=True)


def read_days(
    root: Path, start: date, end: date, columns: list[str]
) -> Iterator[tuple[date, pd.DataFrame]]:
    """(day, rows) per day partition of start..end (inclusive) in day order, those columns
    only: a period read one day at a time, never whole."""
    for path in partitions_between(root, start, end):
        with readable(root):
            table = _read_file(path, columns)
        yield _day_of(path), table.to_pandas(self_destruct=True, split_blocks=True)


def read_day_tables(
    root: Path, start: date, end: date, columns: list[str], dictionary: list[str]
) -> Iterator[tuple[date, pa.Table]]:
    """(day, Arrow table) per day partition of start..end in day order, those columns only
    (not `day`), the text columns in `dictionary` dictionary-encoded as the file stores them
    (several times cheaper to read than text) in one chunk; columns a file lacks are null;
    timestamps in the unit the file stores them in.
    A `dictionary` column that the file's statistics show to hold one value in every row, or
    none, is not decoded but made from them (a one-entry dictionary): most of a day's are."""
    for path in partitions_between(root, start, end):
        with readable(root):
            metadata = pq.read_metadata(path)
            present = set(metadata.schema.names)
            encoded = [c for c in dictionary if c in present]
            single = _single_valued(metadata, encoded)
            with pq.ParquetFile(path, metadata=metadata, read_dictionary=encoded) as file:
                table = file.read([c for c in columns if c in present and c not in single], use_threads=False)  # fmt: skip
        arrays = []
        for name in columns:
            wanted = FILE_SCHEMA.field(name).type
            if name in dictionary:
                wanted = pa.dictionary(pa.int32(), wanted)
            if name in single:
                column = _repeated(single[name], table.num_rows, wanted)
            else:
                column = table.column(name) if name in present else pa.nulls(table.num_rows, wanted)
            arrays.append(column if _as_wanted(column.type, wanted) else column.cast(wanted))
        yield _day_of(path), pa.table(arrays, names=columns).unify_dictionaries().combine_chunks()


def _as_wanted(found: pa.DataType, wanted: pa.DataType) -> bool:
    """Whether a column read can stay as it is: its type is the schema's, or it is a timestamp
    of the same zone in another unit (kept: the readers convert to theirs)."""
    if found == wanted:
        return True
    timestamps = pa.types.is_timestamp(found) and pa.types.is_timestamp(wanted)
    return timestamps and found.tz == wanted.tz


def _single_valued(metadata: pq.FileMetaData, names: list[str]) -> dict[str, str | None]:
    """The text columns whose statistics show one value in every row (or none: None)."""
    index = {metadata.schema.column(i).name: i for i in range(metadata.num_columns)}
    found: dict[str, str | None] = {}
    for name in names:
        values = {_chunk_value(metadata.row_group(g), index[name]) for g in range(metadata.num_row_groups)}  # fmt: skip
        if len(values) == 1 and _SEVERAL not in values:
            value = values.pop()
            found[name] = None if value is None else bytes(value).decode("utf-8")
    return found


_SEVERAL = object()  # a column chunk whose statistics do not show a single value


def _chunk_value(group: pq.RowGroupMetaData, column: int) -> object:
    """The one value (bytes) a column chunk holds, None when it holds none, else _SEVERAL.
    Only equal bounds count: a writer shortens long bounds, which makes them differ."""
    stats = group.column(column).statistics
    if stats is None or not stats.has_null_count:
        return _SEVERAL
    if stats.null_count == group.num_rows:
        return None
    if stats.null_count == 0 and stats.has_min_max and stats.min_raw == stats.max_raw:
        return stats.min_raw
    return _SEVERAL


def _repeated(value: str | None, rows: int, dictionary: pa.DataType) -> pa.Array:
    """`rows` rows of `value` (None: missing) as a dictionary array with one entry."""
    if value is None:
        return pa.nulls(rows, dictionary)
    indices = pa.array(np.zeros(rows, dtype=np.int32))  # zeroed pages: not touched until read
    values = pa.array([value], dictionary.value_type)
    return pa.DictionaryArray.from_arrays(indices, values, safe=False)  # 0 is in bounds


def empty_rows(columns: list[str]) -> pd.DataFrame:
    """No ledger rows, those columns with the dtypes a read gives them."""
    return pa.schema([LEDGER_SCHEMA.field(c) for c in columns]).empty_table().to_pandas()


def write_factors(root: Path, register: pd.DataFrame) -> None:
    """Merge this run's factors into the ledger's factor register (by factor_id), atomically."""
    path = root / FACTORS_FILE
    old = read_factors(root)
    merged = pd.concat(
        [old[~old["factor_id"].isin(register["factor_id"])], register], ignore_index=True
    )
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    merged.sort_values("factor_id").to_csv(tmp, index=False, lineterminator="\n")
    os.replace(tmp, path)


def read_factors(root: Path) -> pd.DataFrame:
    path = root / FACTORS_FILE
    if not path.exists():
        return pd.DataFrame(columns=FACTOR_COLUMNS)
    frame = pd.read_csv(
        path,
        dtype={
            "factor_id": str,
            "key": str,
            "source": str,
            "url": str,
            "notes": str,
            "licence": str,
            "unit": str,
            "kind": str,
        },
        keep_default_na=False,
    )
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce").astype("Int64")
    frame["is_default"] = frame["is_default"].astype(str).str.lower() == "true"
    return frame


INTAKE_FILE = "_intake.json"
QUARANTINE_FILE = "_quarantine.parquet"


def write_intake(
    root: Path,
    intake: dict[str, dict[str, Any]],
    quarantine: pd.DataFrame,
    superseded: Iterable[str] = (),
) -> None:
    """Per input file: what was read, accepted, quarantined, left waiting; replaces those files'
    records and drops those of `superseded` files (billing files wholly restated by others)."""
    dropped = set(superseded)
    old = read_intake(root)
    merged = {k: v for k, v in {**old, **intake}.items() if k not in dropped}
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{INTAKE_FILE}.tmp"
    tmp.write_text(
        json.dumps(dict(sorted(merged.items())), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    os.replace(tmp, root / INTAKE_FILE)
    old_q = read_quarantine(root)
    kept = old_q[~old_q["source_file"].isin(set(intake) | dropped)]
    rows = pd.concat([kept, quarantine], ignore_index=True).sort_values(
        ["source_file", "line", "check"], kind="stable"
    )
    tmp_q = root / f".{QUARANTINE_FILE}.tmp"
    pq.write_table(
        pa.Table.from_pandas(rows, preserve_index=False).replace_schema_metadata(None), tmp_q
    )
    os.replace(tmp_q, root / QUARANTINE_FILE)


def read_intake(root: Path) -> dict[str, dict[str, Any]]:

    path = root / INTAKE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def read_quarantine(root: Path) -> pd.DataFrame:

    path = root / QUARANTINE_FILE
    return pq.read_table(path).to_pandas() if path.exists() else empty_quarantine()


FIRST_SEEN_FILE = "_findings_first_seen.parquet"
LEGACY_FIRST_SEEN_FILE = "_findings_first_seen.json"  # before millions of findings: read, replaced
FIRST_SEEN_SCHEMA = pa.schema([("finding_id", pa.string()), ("first_seen", pa.string())])


def read_first_seen_table(root: Path) -> pa.Table:
    """finding_id → the run date it was first found (kept so reruns do not make it new again)."""
    path = root / FIRST_SEEN_FILE
    if path.exists():
        return pq.read_table(path, schema=FIRST_SEEN_SCHEMA)
    legacy = root / LEGACY_FIRST_SEEN_FILE
    seen = json.loads(legacy.read_text(encoding="utf-8")) if legacy.exists() else {}
    return pa.table([pa.array(list(seen), pa.string()), pa.array(list(seen.values()), pa.string())],
                    schema=FIRST_SEEN_SCHEMA)  # fmt: skip


def read_first_seen(root: Path) -> dict[str, str]:
    table = read_first_seen_table(root)
    return dict(zip(table["finding_id"].to_pylist(), table["first_seen"].to_pylist(), strict=True))


def write_first_seen(root: Path, findings: Any) -> None:
    """Record the first-seen dates of `findings` (a FINDING_COLUMNS frame, or `Findings`), each
    the earlier of the one recorded and the finding's; a parquet file joined with Arrow, as a
    quarter may hold millions of ids."""
    if isinstance(findings, pd.DataFrame):
        found = pa.table([pa.array(findings["finding_id"].astype(object), pa.string()),
                          pa.array(findings["first_seen"].astype(object), pa.string())],
                         schema=FIRST_SEEN_SCHEMA)  # fmt: skip
    else:
        found = findings.first_seen().cast(FIRST_SEEN_SCHEMA)
    stored = read_first_seen_table(root)
    at = pc.index_in(found["finding_id"], value_set=stored["finding_id"])
    known = pc.is_valid(at)
    earlier = pc.less(found["first_seen"], pc.take(stored["first_seen"], at))
    merged = pa.concat_tables([stored, found.filter(pc.invert(known))])
    if pc.any(pc.fill_null(earlier, False)).as_py():  # a backfill found some earlier: keep those
        merged = pa.concat_tables([stored, found]).group_by("finding_id", use_threads=False)
        merged = merged.aggregate([("first_seen", "min")]).rename_columns(FIRST_SEEN_SCHEMA.names)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{FIRST_SEEN_FILE}.tmp"
    pq.write_table(merged, tmp, compression="zstd")
    os.replace(tmp, root / FIRST_SEEN_FILE)
    (root / LEGACY_FIRST_SEEN_FILE).unlink(missing_ok=True)


VENDOR_CARBON_FILE = "_vendor_carbon.parquet"


def write_vendor_carbon(root: Path, rows: pd.DataFrame, source_files: Iterable[str]) -> None:
    """Providers' own carbon figures, replacing earlier rows of the same files (atomically)."""
    replace_file_rows(root / VENDOR_CARBON_FILE, read_vendor_carbon(root), rows, source_files)


def replace_file_rows(
    path: Path, old: pd.DataFrame, rows: pd.DataFrame, source_files: Iterable[str],
    schema: pa.Schema | None = None,
) -> None:  # fmt: skip
    """Write `old` with the rows of `source_files` replaced by `rows` (sorted by file and line)
    to the parquet file `path`, atomically: a side table kept with the ledger."""
    replaced = set(source_files)
    kept = old[~old["source_file"].isin(replaced)]
    merged = pd.concat([f for f in (kept, rows) if not f.empty] or [kept], ignore_index=True)
    merged = merged.sort_values(["source_file", "line"], kind="stable").reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    columns = merged[list(schema.names)] if schema is not None else merged
    table = pa.Table.from_pandas(columns, schema=schema, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), tmp)
    os.replace(tmp, path)


def read_vendor_carbon(root: Path) -> pd.DataFrame:
    path = root / VENDOR_CARBON_FILE
    return pq.read_table(path).to_pandas() if path.exists() else empty_vendor_carbon()
