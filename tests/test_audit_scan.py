"""The audit read from the ledger a window at a time (audit_scan.py), its findings held on disk
(audit_findings.py) and the notify stage fed from them (notify_stream.py) give what the
whole-frame audit and notify give, on the demo's ledger (multi-day Slurm runs, Kubernetes pods,
cloud billing lines), with windows, batches and row groups made tiny so every seam is crossed."""

from __future__ import annotations

import io
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from reporting import audit_findings, audit_scan, notify, outputs
from reporting import ledger as store
from reporting.audit import audit_ledger
from reporting.cli import DEMO_DATE
from reporting.config import load_config
from reporting.csv_writer import write_csv
from reporting.period import quarter_to_date

SAMPLES = Path(__file__).parent.parent / "sample_logs"


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_scan, "WINDOW_ROWS", 97)
    monkeypatch.setattr(audit_findings, "SPILL_ROWS", 41)
    monkeypatch.setattr(audit_findings, "READ_ROWS", 5)
    monkeypatch.setattr(audit_findings, "CHUNK_ROWS", 23)


@pytest.fixture
def ledger(demo_out_session: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ledger"
    shutil.copytree(demo_out_session / "ledger", root)
    for name in ("_findings_first_seen.json", store.FIRST_SEEN_FILE, notify.STATE_FILE):
        (root / name).unlink(missing_ok=True)
    return root


def _both(root: Path, first_seen: dict[str, str], run_date: date = DEMO_DATE):
    config = load_config(SAMPLES / "greenops.toml")
    period = quarter_to_date(run_date)
    rows = store.read_ledger(root, period.start, period.end)
    whole = audit_ledger(rows, config.audit, first_seen, run_date)
    table = pa.table({"finding_id": list(first_seen), "first_seen": list(first_seen.values())},
                     schema=store.FIRST_SEEN_SCHEMA)  # fmt: skip
    held = audit_scan.audit_period(root, period.start, period.end, config.audit, table, run_date)
    return config, whole, held


def _same(held: pd.DataFrame, whole: pd.DataFrame) -> None:
    """Equal, a missing value being missing (text columns come back from parquet as Arrow
    strings, where the whole-frame audit's cloud findings hold None in object columns)."""
    pd.testing.assert_frame_equal(
        held.astype(object).where(held.notna(), None),
        whole.astype(object).where(whole.notna(), None),
    )


def _csv(frame: pd.DataFrame) -> bytes:
    handle = io.BytesIO()
    write_csv(outputs.csv_safe(frame), handle)
    return handle.getvalue()


def test_windows_give_the_whole_audit(tiny: None, ledger: Path, tmp_path: Path) -> None:
    _, whole, held = _both(ledger, {})
    assert len(whole) > 100 and set(whole["rule"]) > {"idle_gpu", "failed_run"}
    assert len(held.batches) > 2  # several ranked batch files were merged
    _same(held.frame(), whole)
    outputs._write_csv(tmp_path / "findings.csv", held)
    assert (tmp_path / "findings.csv").read_bytes() == _csv(whole)
    assert held.by_rule == whole.groupby("rule").size().to_dict()
    assert held.total("wasted_co2e_kg") == whole["wasted_co2e_kg"].sum()
    _same(held.head(7), whole.head(7))
    positions = [0, 3, 40, len(whole) - 1]
    _same(
        held.rows_at(pd.Series(positions).to_numpy()), whole.iloc[positions].reset_index(drop=True)
    )


def test_first_seen_dates_are_kept_in_a_parquet_file(tiny: None, ledger: Path) -> None:
    _, whole, held = _both(ledger, {})
    store.write_first_seen(ledger, held)
    assert not (ledger / "_findings_first_seen.json").exists()
    earlier = whole["finding_id"].iloc[5]
    seen = {**store.read_first_seen(ledger), earlier: "2026-07-02"}
    _, again, held_again = _both(ledger, seen, date(2026, 9, 30))
    assert again.set_index("finding_id").loc[earlier, "first_seen"] == "2026-07-02"
    _same(held_again.frame(), again)
    store.write_first_seen(ledger, again)  # an earlier date wins over the one recorded
    assert store.read_first_seen(ledger)[earlier] == "2026-07-02"
    assert len(store.read_first_seen(ledger)) == len(whole)


def test_a_json_first_seen_file_is_still_read(ledger: Path) -> None:
    (ledger / "_findings_first_seen.json").write_text('{"f-1": "2026-07-01"}\n')
    assert store.read_first_seen(ledger) == {"f-1": "2026-07-01"}


@pytest.mark.parametrize("weekday", ["wednesday", "thursday"])
def test_notify_from_findings_on_disk_sends_what_the_frame_sends(
    tiny: None, ledger: Path, tmp_path: Path, weekday: str
) -> None:
    config, whole, held = _both(ledger, {})
    settings = config.notify.model_copy(update={
        "max_findings_per_owner": 3, "weekly_summary_weekday": weekday,
        "suppress_job_names": ["^jupyter"], "suppress_rules": ["timelimit_over_request"],
    })  # fmt: skip
    directory = notify.load_directory(SAMPLES / "owners.csv")
    results = []
    for name, findings in (("frame", whole), ("held", held)):
        results.append(notify.notify_findings(
            findings, settings, state_dir=tmp_path / name, out_dir=tmp_path / name,
            run_date=DEMO_DATE, dry_run=True, password=None, directory=directory,
            organisation="Example AI Lab",
        ))  # fmt: skip
    frame, stored = results
    assert frame.outbox and len(frame.pending) > len(frame.sent) > 0 and frame.suppressed
    assert (stored.sent, stored.pending, stored.unresolved, stored.suppressed, stored.weekly) == (
        frame.sent, frame.pending, frame.unresolved, frame.suppressed, frame.weekly
    )  # fmt: skip
    assert [p.read_bytes() for p in stored.outbox] == [p.read_bytes() for p in frame.outbox]
