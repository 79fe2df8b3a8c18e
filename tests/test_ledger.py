"""The parquet ledger: idempotent, atomic per-day partitions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reporting.attribute import attribute_usage
from reporting.config import load_config
from reporting.ledger import read_ledger, write_ledger
from reporting.pipeline import ingest
from tests.conftest import hb_config


@pytest.fixture(scope="module")
def hb_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, list[str]]:
    """The hb sample's ledger rows (read and attributed once for the module) and its files."""
    config = load_config(hb_config(tmp_path_factory.mktemp("hb")))
    intake = ingest(config)
    return attribute_usage(intake.usage, config, "run-1").ledger, list(intake.files)


@pytest.fixture
def hb_ledger(hb_rows: tuple[pd.DataFrame, list[str]]) -> tuple[pd.DataFrame, list[str]]:
    """A copy of them for each test, which may change it."""
    rows, files = hb_rows
    return rows.copy(), list(files)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_rewriting_the_same_rows_gives_identical_bytes(
    tmp_path: Path, hb_ledger: tuple[pd.DataFrame, list[str]]
) -> None:
    rows, files = hb_ledger
    root = tmp_path / "ledger"
    written = write_ledger(root, rows, files)
    first = _snapshot(root)
    write_ledger(root, rows, files)
    assert _snapshot(root) == first
    assert len(written) == rows["day"].nunique()
    assert not list(root.rglob(".*"))  # no temporary files left behind


def test_rerun_replaces_rows_instead_of_appending(
    tmp_path: Path, hb_ledger: tuple[pd.DataFrame, list[str]]
) -> None:
    rows, files = hb_ledger
    root = tmp_path / "ledger"
    write_ledger(root, rows, files)
    write_ledger(root, rows, files)
    back = read_ledger(root, min(rows["day"]), max(rows["day"]))
    assert len(back) == len(rows)
    assert back["it_energy_kwh"].sum() == rows["it_energy_kwh"].sum()


def test_rows_of_other_files_are_kept_and_a_shrunk_file_loses_its_rows(
    tmp_path: Path, hb_ledger
) -> None:
    rows, files = hb_ledger
    root = tmp_path / "ledger"
    other = rows.assign(source_file="other.psv", usage_id="other:" + rows["usage_id"])
    write_ledger(root, other, ["other.psv"])
    write_ledger(root, rows, files)
    everything = read_ledger(root, min(rows["day"]), max(rows["day"]))
    assert len(everything) == 2 * len(rows)
    write_ledger(root, rows.iloc[0:0], files)  # the hb file now holds no finished job
    remaining = read_ledger(root, min(rows["day"]), max(rows["day"]))
    assert set(remaining["source_file"]) == {"other.psv"}


def test_reading_a_period_reads_only_its_days(
    tmp_path: Path, hb_ledger: tuple[pd.DataFrame, list[str]]
) -> None:
    rows, files = hb_ledger
    root = tmp_path / "ledger"
    write_ledger(root, rows, files)
    day = sorted(rows["day"])[len(rows) // 2]
    one_day = read_ledger(root, day, day, columns=["day", "usage_id", "it_energy_kwh"])
    assert set(one_day["day"]) == {day}
    assert list(one_day.columns) == ["day", "usage_id", "it_energy_kwh"]
    assert one_day["it_energy_kwh"].sum() == rows.loc[rows["day"] == day, "it_energy_kwh"].sum()


def test_every_reader_of_the_ledger_names_a_damaged_partition(tmp_path: Path) -> None:
    """A partition that is not parquet (a disk fault, a half-copied backup) is a clear error for
    the user to re-run those dates: the rows, the day-by-day rollup and the audit alike."""
    from datetime import date

    from reporting import ledger
    from reporting.audit_config import Audit
    from reporting.audit_scan import audit_period
    from reporting.errors import InputError

    root = tmp_path / "ledger"
    damaged = ledger.partition_path(root, date(2026, 7, 2))
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not parquet at all")
    day = date(2026, 7, 2)
    readers = {
        "rows": lambda: ledger.read_ledger(root, day, day),
        "days": lambda: list(ledger.read_days(root, day, day, ["cost"])),
        "day tables": lambda: list(ledger.read_day_tables(root, day, day, ["cost"], [])),
        "audit": lambda: audit_period(root, day, day, Audit(), ledger.read_first_seen_table(root), day),
    }  # fmt: skip
    for name, read in readers.items():
        with pytest.raises(InputError, match="ledger cannot be read.*Re-run the affected dates"):
            read()
        assert ledger.partitions_between(root, day, day) == [damaged], name
