"""Cron-grade operation: incremental runs, the ledger lock, crash recovery, backfill, manifests."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from reporting.ledger import read_ledger
from reporting.runstate import LOCK_FILE, ledger_lock
from tests.conftest import FIXTURES, hb_config

GREENOPS = Path(sys.executable).parent / "greenops"


def _run(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GREENOPS), "run", "--config", "greenops.toml", "--out", "out", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _ledger(folder: Path) -> dict[str, bytes]:
    root = folder / "out" / "ledger"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        # run records keyed by run date (first seen, notified, validation history, the reports
        # published under _published/) differ by design
        if p.is_file()
        and "_published" not in p.relative_to(root).parts
        and p.name
        not in (
            LOCK_FILE,
            "_findings_first_seen.json",
            "_findings_first_seen.parquet",
            "_notified.json",
            "_validation.json",
            "_validation_history.json",
        )
    }


@dataclass(frozen=True)
class TwoNights:
    folder: Path
    first: subprocess.CompletedProcess[str]  # 2024-04-30, JSON logs: reads the sample
    first_ledger: dict[str, bytes]  # the ledger of that one uninterrupted run
    second: subprocess.CompletedProcess[str]  # 2024-05-01, text logs: nothing new to read


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory: pytest.TempPathFactory) -> TwoNights:
    """One hb folder run on two nights, shared by the tests that only read what those runs
    printed and wrote (each run costs seconds: the report is rendered every night)."""
    folder = tmp_path_factory.mktemp("two-nights")
    hb_config(folder)
    first = _run(folder, "--date", "2024-04-30", "--log-format", "json")
    assert first.returncode == 0, first.stderr
    first_ledger = _ledger(folder)
    second = _run(folder, "--date", "2024-05-01")
    return TwoNights(folder, first, first_ledger, second)


def _json_lines(stderr: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_unchanged_inputs_are_skipped_and_new_files_processed(two_nights: TwoNights) -> None:
    first = [entry["message"] for entry in _json_lines(two_nights.first.stderr)]
    assert any(m.startswith("inputs: 1 new or changed, 0 unchanged") for m in first)
    second = two_nights.second
    assert second.returncode == 0, second.stderr
    assert "inputs: 0 new or changed, 1 unchanged since the last run (skipped)" in second.stderr
    assert _ledger(two_nights.folder) == two_nights.first_ledger


def test_changed_file_is_reprocessed_and_replaces_its_rows(tmp_path: Path) -> None:
    config = hb_config(tmp_path)
    config.write_text(config.read_text().replace("hb-jobinfo_sacct.txt", "*.txt"))
    assert _run(tmp_path, "--date", "2024-04-30").returncode == 0
    before = read_ledger(tmp_path / "out" / "ledger", date(2000, 1, 1), date(2100, 1, 1))
    dump = tmp_path / "hb-jobinfo_sacct.txt"
    dump.write_bytes(dump.read_bytes() + dump.read_bytes())  # the same jobs twice: no new runs
    rerun = _run(tmp_path, "--date", "2024-04-30")
    assert "inputs: 1 new or changed" in rerun.stderr
    after = read_ledger(tmp_path / "out" / "ledger", date(2000, 1, 1), date(2100, 1, 1))
    assert len(after) == len(before)  # replaced, not appended
    assert after["facility_energy_kwh"].sum() == pytest.approx(before["facility_energy_kwh"].sum())
    assert set(after["run_id"]) != set(before["run_id"])  # rows now come from the new file version


def test_a_second_run_exits_75_while_the_ledger_is_locked(tmp_path: Path) -> None:
    hb_config(tmp_path)
    with ledger_lock(tmp_path / "out" / "ledger", datetime(2026, 1, 1, tzinfo=UTC)):
        blocked = _run(tmp_path, "--date", "2024-04-30")
    assert blocked.returncode == 75
    assert "another greenops run holds the ledger lock (pid" in blocked.stderr
    assert "Traceback" not in blocked.stderr
    assert _run(tmp_path, "--date", "2024-04-30").returncode == 0  # released afterwards


def test_two_concurrent_runs_one_waits_for_the_next_night(tmp_path: Path) -> None:
    # Started together, both reach the lock within a moment of each other; the first holds it
    # for its whole run (ingest, validation, the report: seconds, even on the small hb sample).
    hb_config(tmp_path)
    command = [str(GREENOPS), "run", "--config", "greenops.toml", "--date", "2024-04-30",
               "--out", "out"]  # fmt: skip
    procs = [
        subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    codes = sorted(p.wait(timeout=600) for p in procs)
    assert codes == [0, 75]


def test_a_stale_lock_from_a_dead_run_is_taken_over(tmp_path: Path) -> None:
    hb_config(tmp_path)
    root = tmp_path / "out" / "ledger"
    root.mkdir(parents=True)
    (root / LOCK_FILE).write_text(
        json.dumps({"pid": 999999, "host": "h", "started_at": "2026-01-01T00:00:00"})
    )
    result = _run(tmp_path, "--date", "2024-04-30")
    assert result.returncode == 0, result.stderr
    assert "took over a stale lock" in result.stderr and "999999" in result.stderr


@pytest.mark.parametrize("step", [0, 1, 5])
def test_a_run_killed_mid_commit_is_completed_by_the_next_run(
    tmp_path: Path, step: int, two_nights: TwoNights
) -> None:
    hb_config(tmp_path)
    killed = _run(
        tmp_path, "--date", "2024-04-30", env={"GREENOPS_TEST_CRASH_AFTER_STEPS": str(step)}
    )
    assert killed.returncode == -9  # SIGKILL
    assert not (tmp_path / "out" / "ledger" / "_inputs_state.json").exists()  # not marked done
    again = _run(tmp_path, "--date", "2024-04-30")
    assert again.returncode == 0, again.stderr
    assert _ledger(tmp_path) == two_nights.first_ledger
    assert not list((tmp_path / "out" / "ledger").rglob(".*.tmp"))


def test_backfill_over_a_range_equals_day_by_day_runs(tmp_path: Path) -> None:
    daily, backfill = tmp_path / "daily", tmp_path / "backfill"
    for folder in (daily, backfill):
        folder.mkdir()
        hb_config(folder)
    for day in ("2024-04-28", "2024-04-29", "2024-04-30"):
        assert _run(daily, "--date", day).returncode == 0
    result = _run(backfill, "--from", "2024-04-28", "--to", "2024-04-30")
    assert result.returncode == 0, result.stderr
    assert _ledger(backfill) == _ledger(daily)
    summary = json.loads((backfill / "out" / "summary.json").read_text())
    assert summary["period"]["start"] == "2024-04-28" and summary["period"]["end"] == "2024-04-30"


def test_each_run_writes_a_manifest(two_nights: TwoNights) -> None:
    assert two_nights.second.returncode == 0, two_nights.second.stderr
    manifests = sorted((two_nights.folder / "out" / "runs").glob("*.json"))
    assert len(manifests) >= 1  # two runs in the same second share a file name
    record = json.loads(manifests[-1].read_text())
    (entry,) = record["inputs"]
    assert entry["source_file"] == "hb-jobinfo_sacct.txt"
    sample = (FIXTURES / "slurm" / "hb-jobinfo_sacct.txt").read_bytes()
    assert entry["sha256"] == hashlib.sha256(sample).hexdigest()
    assert record["status"] == "ok" and record["config_sha256"] and record["tool_version"]
    assert (
        manifests[-1].stem == record["run_id"] and record["batch_id"] is None
    )  # 2nd run: unchanged
    assert set(record["stages_s"]) == {"ingest", "attribute_and_ledger", "report", "notify"}


def test_json_logs_are_one_object_per_line(two_nights: TwoNights) -> None:
    lines = _json_lines(two_nights.first.stderr)
    assert any(entry["message"].startswith("attributed 90 runs") for entry in lines)
    assert {entry["level"] for entry in lines} <= {"INFO", "WARNING"}


def test_from_without_to_is_a_usage_error(tmp_path: Path) -> None:
    hb_config(tmp_path)
    result = _run(tmp_path, "--from", "2024-04-01")
    assert result.returncode == 1 and "--from and --to go together" in result.stderr


def test_progress_bar_only_on_a_terminal(two_nights: TwoNights, tmp_path: Path) -> None:
    piped = two_nights.second
    assert piped.returncode == 0 and "greenops run:" not in piped.stderr  # cron mail stays clean
    folder = tmp_path / "copy"  # the same night again, on a terminal this time
    shutil.copytree(two_nights.folder, folder)
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [str(GREENOPS), "run", "--config", "greenops.toml", "--out", "out", "--date", "2024-05-01"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    seen = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=600) == 0
    assert b"greenops run" in seen
