"""The validate stage: expectation suites on inline frames, conservation, run-level warnings,
the `validate` verb and Data Docs. One GX context for the module (it is slow to build)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from reporting.cli import app
from reporting.validation import runlevel
from reporting.validation.run import Validator, validate_ledger, validate_tables
from tests.conftest import charge_frame, focus_rows, usage_frame

T = pd.Timestamp


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def test_bad_usage_rows_are_quarantined_with_the_expectation_named(validator: Validator) -> None:
    usage = usage_frame([
        {},
        {"duration_s": -5.0},
        {"ended_at": T("2026-06-30T00:00Z")},
        {"n_gpus": 100.0},
        {"state": None},
        {"usage_id": "u0"},  # a second u0: the later copy goes
        {"measured_energy_kwh": 50.0},  # 50 kW on one node: warned, kept (attribute models it)
    ])  # fmt: skip
    checked = validate_tables(validator, usage, charge_frame([]))
    by_line = checked.quarantine.drop_duplicates("line").set_index("line")["check"].to_dict()
    assert by_line == {
        2: "expect_column_values_to_be_between:duration_s",
        3: "expect_column_pair_values_a_to_be_greater_than_b:ended_at",
        4: "expect_column_values_to_be_between:gpus_per_node",
        5: "expect_column_values_to_not_be_null:state",
        6: "expect_column_values_to_be_unique:usage_id",
    }
    assert len(checked.quarantine) == 5 * 2  # every merged line of a quarantined run
    assert sorted(checked.usage["line"]) == [1, 7]
    assert "duration_s=-5.0" in checked.quarantine.set_index("line").loc[2, "reason"].iloc[0]
    assert len(checked.warnings) == 1 and "measured_node_power_w=50000.0" in checked.warnings[0]


def test_bad_charges_are_quarantined_and_negative_cost_is_accepted(validator: Validator) -> None:
    charges = charge_frame([
        {"billed_cost": -40.0, "charge_category": "Credit"},
        {"currency": "usd"},
        {"charge_category": "Refund"},
        {"billed_cost": None},
        {"charge_period_end": T("2026-06-01T00:00Z")},
        {"charge_id": "c0"},
    ])  # fmt: skip
    checked = validate_tables(validator, usage_frame([]).iloc[0:0], charges)
    assert checked.quarantine.set_index("line")["check"].to_dict() == {
        2: "expect_column_values_to_match_regex:currency",
        3: "expect_column_values_to_be_in_set:charge_category",
        4: "expect_column_values_to_not_be_null:billed_cost",
        5: "expect_column_pair_values_a_to_be_greater_than_b:charge_period_end",
        6: "expect_column_values_to_be_unique:charge_id",
    }
    assert checked.charges["billed_cost"].tolist() == [-40.0]
    assert "currency='usd'" in checked.quarantine.set_index("line").loc[2, "reason"]


def test_bad_ledger_rows_fail_the_gate(validator: Validator) -> None:
    rows = pd.DataFrame({
        "it_energy_kwh": [1.0, -1.0], "facility_energy_kwh": [1.0, 1.0],
        "co2e_location_kg": [0.1, 0.1], "co2e_market_kg": [0.1, 0.1], "co2e_embodied_kg": [0.0, 0.0],
        "team": ["a", "b"], "model": ["m", "m"], "phase": ["training", "lunch"],
        "scope": ["2", "3.2"], "source_file": ["a", "a"], "line": [1, 2],
    })  # fmt: skip
    gate, record = validate_ledger(validator, rows)
    assert sorted(f["check"] for f in record["failed"]) == [
        "expect_column_values_to_be_between:it_energy_kwh",
        "expect_column_values_to_be_in_set:phase",
        "expect_column_values_to_be_in_set:scope",
    ]
    assert len(gate) == 3 and "first at a:2" in gate[0]


def test_row_count_drift_warns_after_a_history(tmp_path: Path) -> None:
    for day, n in (("2026-07-01", 100), ("2026-07-02", 110), ("2026-07-03", 90)):
        runlevel.record_counts(tmp_path, date.fromisoformat(day), {"usage": n, "charges": 0})
    history = runlevel.read_json(tmp_path, runlevel.HISTORY_FILE)
    assert runlevel.drift_warnings({"usage": 120}, history, date(2026, 7, 4), 7, 0.5) == []
    (warning,) = runlevel.drift_warnings({"usage": 300}, history, date(2026, 7, 4), 7, 0.5)
    assert warning.startswith("usage: 300 rows this run, +200% from the median of 100")


def test_stale_inputs_warn() -> None:
    usage = usage_frame([{}])
    assert runlevel.freshness_warnings(usage, charge_frame([]), date(2026, 7, 3), 2) == []
    (warning,) = runlevel.freshness_warnings(usage, charge_frame([]), date(2026, 7, 10), 2)
    assert "usage: the latest ended_at is 2026-07-01 01:00 UTC" in warning


FOCUS_CONFIG = """
[organisation]
name = "t"

[[inputs]]
kind = "focus"
path = "focus-*.csv"
max_quarantined_ratio = {ratio}
"""


def _focus_input(tmp_path: Path, ratio: float) -> Path:
    # the same EC2 line in two monthly files: an overlapping re-export, billed twice if kept
    (tmp_path / "focus-a.csv").write_text(focus_rows([{"BilledCost": "5"}, {"BilledCost": "-2", "ChargeCategory": "Credit"}]))  # fmt: skip
    (tmp_path / "focus-b.csv").write_text(focus_rows([{"BilledCost": "5"}, {"BilledCost": "7"}]))
    path = tmp_path / "greenops.toml"
    path.write_text(FOCUS_CONFIG.format(ratio=ratio), encoding="utf-8")
    return path


def test_run_conserves_rows_and_writes_data_docs_linked_from_the_report(tmp_path: Path) -> None:
    config = _focus_input(tmp_path, 0.9)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--date", "2026-07-02",
                                      "--period", "2026-07", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    files = {i["source_file"]: i for i in summary["inputs"]}
    assert files["focus-b.csv"]["rows_quarantined"] == 1
    for stats in files.values():
        assert stats["rows_read"] == stats["rows_accepted"] + stats["rows_quarantined"]
    assert summary["validation"]["rows_quarantined"] == 1
    assert summary["validation"]["data_docs"] == "data_docs/index.html"
    assert (out / "data_docs" / "index.html").exists()
    assert 'href="data_docs/index.html"' in (out / "report.html").read_text()
    quarantine = pd.read_csv(out / "quarantine.csv")
    assert quarantine["check"].tolist() == ["expect_column_values_to_be_unique:charge_id"]


def test_validate_verb_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "--config", str(_focus_input(tmp_path, 0.9)), "--date", "2026-07-02"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "focus-b.csv: 2 read, 1 accepted, 1 quarantined" in ok.output
    assert "expect_column_values_to_be_unique:charge_id: 1" in ok.output
    assert not (tmp_path / "out").exists()
    gated = runner.invoke(app, ["validate", "--config", str(_focus_input(tmp_path, 0.1)), "--date", "2026-07-02"])  # fmt: skip
    assert gated.exit_code == 3
