"""Per-format suites, the billing-sums run check and the estimate of what quarantined rows would
have carried: inline frames with numbers worked out by hand, then real files through the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from reporting.cli import app
from reporting.config import Config, Organisation
from reporting.validation import runlevel
from reporting.validation.carried import carried_by_file
from reporting.validation.run import Validator, validate_tables
from tests.conftest import FIXTURES, charge_frame, focus_rows, hb_config, usage_frame

T = pd.Timestamp
CUR_SAMPLE = FIXTURES / "billing" / "focus_converters_sample-anonymous-aws-cur-legacy.csv"


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def test_slurm_suite_quarantines_its_rows_with_the_format_named(validator: Validator) -> None:
    key = "slurm:c:4242:20260701T000000Z"
    usage = usage_frame([
        {"usage_id": key, "submitted_at": T("2026-07-01T00:00Z")},
        {"usage_id": key, "submitted_at": T("2026-07-01T00:00Z")},  # job id + submit again
        {"state": "COMPLETEDX"},
        {"cpu_util_ratio": 1.5},
        {"n_nodes": 0.0},
        {"submitted_at": T("2026-07-01T02:00Z")},  # started before it was submitted: warned
        {"source": "opencost", "cost": 3.0, "currency": "usd", "allocation_kind": "pod"},
    ])  # fmt: skip
    checked = validate_tables(validator, usage, charge_frame([]))
    by_line = checked.quarantine.drop_duplicates("line").set_index("line")["check"].to_dict()
    assert by_line == {
        2: "expect_compound_columns_to_be_unique:site+job_id+submitted_at",
        3: "expect_column_values_to_be_in_set:state",
        4: "expect_column_values_to_be_between:cpu_util_ratio",
        5: "expect_column_values_to_be_between:n_nodes",
        7: "expect_column_values_to_match_regex:currency",
    }
    reason = checked.quarantine.set_index("line").loc[3, "reason"].iloc[0]
    assert reason == "slurm suite: State is a Slurm job state: state='COMPLETEDX'"
    assert [s["suite"] for s in checked.suites] == ["slurm", "opencost", "usage", "charges"]
    assert [s["rows_quarantined"] for s in checked.suites] == [8, 2, 0, 0]  # 2 lines per run
    (warning,) = checked.warnings
    assert warning.startswith("slurm: 1 rows fail Start ≥ Submit") and "a.psv:6" in warning


def test_cur_natural_key_and_billing_ranges(validator: Validator) -> None:
    cur = {"family": "aws_cur", "provider": "aws", "billing_period_start": T("2026-07-01T00:00Z")}
    charges = charge_frame([
        {**cur, "line_item_id": "li-1"},
        {**cur, "line_item_id": "li-1", "billed_cost": 2.0},  # same line item, same hour
        {**cur, "line_item_id": "li-1", "charge_period_start": T("2026-07-01T00:30Z")},
        {**cur, "pricing_category": "Spot"},
        {**cur, "charge_period_end": T("2027-08-01T00:00Z")},
        {**cur, "provider": "gcp"},
        {**cur, "vcpus": 4096.0},
        {"family": "focus", "provider": "aws", "billing_period_start": None,
         "billing_account_id": "a"},
    ])  # fmt: skip
    checked = validate_tables(validator, usage_frame([]).iloc[0:0], charges)
    assert checked.quarantine.set_index("line")["check"].to_dict() == {
        2: "expect_compound_columns_to_be_unique:line_item_id+charge_period_start",
        4: "expect_column_values_to_be_in_set:pricing_category",
        5: "expect_column_values_to_be_between:charge_period_hours",
        6: "expect_column_values_to_be_in_set:provider",
        7: "expect_column_values_to_be_between:vcpus",
        8: "expect_column_values_to_not_be_null:billing_period_start",
    }
    assert checked.charges["line"].tolist() == [1, 3]
    assert [s["suite"] for s in checked.suites] == ["usage", "focus", "aws_cur", "charges"]


def test_vendor_carbon_rows_only_warn(validator: Validator) -> None:
    vendor = pd.DataFrame({
        "provider": ["aws", "azure"], "source_file": "v.csv", "line": [1, 2],
        "period_start": T("2026-07-01T00:00Z"), "period_end": T("2026-08-01T00:00Z"),
        "co2e_location_kg": [1.0, -2.0], "co2e_market_kg": [1.0, 1.0],
    })  # fmt: skip
    checked = validate_tables(validator, usage_frame([]).iloc[0:0], charge_frame([]), vendor)
    assert checked.quarantine.empty
    assert [w.split(" (")[0] for w in checked.warnings] == [
        "vendor_carbon: 1 rows fail co2e_location_kg ≥ 0",
        "vendor_carbon: 1 rows fail provider is aws or gcp",
    ]


def _month(cost: float, covered_until: str) -> dict:
    return {"cost": {"USD": cost}, "covered_until": covered_until}


def test_billing_sums_against_the_previous_month() -> None:
    june = {"focus|acct|2026-06": _month(100.0, "2026-07-01T00:00:00+00:00")}
    full = {"focus|acct|2026-07": _month(30.0, "2026-08-01T00:00:00+00:00")}
    (warning,) = runlevel.sums_warnings(full, june, 0.5, 2.0)
    assert warning.startswith("charges: the 2026-07 total of USD 30.00 is 0.30× the USD 100.00")
    # ten of 31 days: held to 100 × 10/31 = 32.26, and 40 is 1.24× that
    partial = {"focus|acct|2026-07": _month(40.0, "2026-07-11T00:00:00+00:00")}
    assert runlevel.sums_warnings(partial, june, 0.5, 2.0) == []
    (warning,) = runlevel.sums_warnings(partial, june, 0.5, 1.2)
    assert "1.24× the USD 100.00 of 2026-06, pro rata for the 10 days covered so far" in warning
    three_days = {"focus|acct|2026-07": _month(1.0, "2026-07-04T00:00:00+00:00")}
    assert runlevel.sums_warnings(three_days, june, 0.5, 2.0) == []  # too early to tell
    euros = {"focus|acct|2026-07": {"cost": {"EUR": 1.0}, "covered_until": "2026-08-01T00:00:00+00:00"}}  # fmt: skip
    assert runlevel.sums_warnings(euros, june, 0.5, 2.0) == []  # no June in EUR


def test_billing_totals_per_family_account_and_month() -> None:
    charges = charge_frame([
        {"family": "focus", "billing_account_id": "a", "billing_period_start": T("2026-07-01T00:00Z"),
         "billed_cost": 5.0, "effective_cost": 4.0},
        {"family": "focus", "billing_account_id": "a", "billing_period_start": T("2026-07-01T00:00Z"),
         "billed_cost": -1.0, "effective_cost": -1.0, "charge_period_end": T("2026-07-03T00:00Z")},
        {"family": "focus", "billing_account_id": "a", "billing_period_start": None,
         "charge_period_start": T("2026-06-30T00:00Z"), "billed_cost": 2.0, "effective_cost": 2.0},
    ])  # fmt: skip
    assert runlevel.billing_totals(charges, "effective_cost") == {
        "focus|a|2026-06": _month(2.0, "2026-07-01T01:00:00+00:00"),
        "focus|a|2026-07": _month(3.0, "2026-07-03T00:00:00+00:00"),
    }


def test_what_quarantined_rows_would_have_carried_by_class() -> None:
    quarantine = pd.DataFrame({
        "source_file": ["b.csv"] * 4 + ["a.psv"] * 3,
        "line": [1, 2, 3, 4, 1, 2, 3], "raw": "",
        "check": ["time", "format", "field_count", "expect_column_values_to_be_unique:charge_id",
                  "duplicate", "job_quarantined", "encoding"],
        "reason": "",
        "carried": [{"cost": 2.5, "currency": "USD"}, {"cost": -1.0, "currency": "USD"}, None,
                    {"cost": 9.0, "currency": "USD"}, None, None, None],
    })  # fmt: skip
    config = Config(organisation=Organisation(name="t"), inputs=[])
    classes = {"copies": 1, "parts": 1, "estimated": 0, "unknown": 1, "energy_kwh": 0.0,
               "co2e_kg": 0.0, "energy_basis": {"service": 0, "provider": 0, "file": 0}}  # fmt: skip
    # no accepted billing lines were given: the billing lines' energy is not estimable
    assert carried_by_file(quarantine, config) == {
        "a.psv": {**classes, "cost": {}},
        "b.csv": {**classes, "parts": 0, "estimated": 2, "cost": {"USD": 1.5}},
    }


def _run(config: Path, *extra: str) -> tuple[object, dict]:
    out = config.parent / "out"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(out), *extra])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}  # fmt: skip
    return result, summary


def test_a_run_with_unreadable_elapsed_is_estimated_as_the_same_run_accepted(
    tmp_path: Path,
) -> None:
    """hb job 4034541: Elapsed damaged, so the line is quarantined; its estimate (End − Start,
    same model) must equal the facility energy the intact line gets in the ledger."""
    args = ("--date", "2024-04-30", "--period", "2023-01-01..2024-12-31")
    intact_dir, broken_dir = tmp_path / "intact", tmp_path / "broken"
    intact_dir.mkdir(), broken_dir.mkdir()
    _, intact = _run(hb_config(intact_dir, header=True), *args)
    dump = broken_dir / "hb-jobinfo_sacct.DERIVED_parsable2_with_header.psv"
    config = hb_config(broken_dir, header=True)
    lines = dump.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split("|")
    number = next(i for i, line in enumerate(lines) if line.startswith("4034541|"))
    fields = lines[number].rstrip("\n").split("|")
    fields[header.index("Elapsed")] = "1-2x:00:00"
    lines[number] = "|".join(fields) + "\n"
    dump.write_text("".join(lines))
    result, broken = _run(config, *args)
    assert result.exit_code == 0, result.output
    ledger = pd.read_parquet(intact_dir / "out" / "ledger")
    job_kwh = ledger.loc[ledger["usage_id"].str.contains(":4034541:"), "facility_energy_kwh"].sum()
    runs = broken["validation"]["quarantined_carried"]["runs"]
    assert runs["estimated"] == 1 and runs["facility_energy_kwh"] == pytest.approx(
        job_kwh, rel=1e-6
    )
    assert job_kwh > 0
    assert broken["totals"]["facility_energy_kwh"] == pytest.approx(
        intact["totals"]["facility_energy_kwh"] - job_kwh, rel=1e-9
    )


def test_cur_duplicate_line_item_quarantined_and_billing_cost_carried(tmp_path: Path) -> None:
    text = CUR_SAMPLE.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    copy = list(rows[1])
    cost = header.index("lineItem/UnblendedCost")
    copy[cost] = "7.25"  # the same line item and hour again, restated with another cost
    broken = list(rows[2])
    broken[header.index("lineItem/UsageStartDate")] = "not a date"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, rows[1], broken, *rows[3:], copy])
    (tmp_path / "cur.csv").write_text(out.getvalue(), encoding="utf-8")
    config = tmp_path / "greenops.toml"
    config.write_text('[organisation]\nname = "t"\n\n[[inputs]]\nkind = "aws_cur"\npath = "cur.csv"\n')  # fmt: skip
    result, summary = _run(config, "--from", "2023-01-01", "--to", "2023-12-31", "--date", "2023-12-31")  # fmt: skip
    assert result.exit_code == 0, result.output
    (stats,) = summary["inputs"]
    assert (stats["rows_read"], stats["rows_accepted"], stats["rows_quarantined"]) == (
        1282,
        1280,
        2,
    )
    quarantine = pd.read_csv(tmp_path / "out" / "quarantine.csv")
    assert quarantine[["line", "check"]].values.tolist() == [
        [3, "timestamp"],
        [1283, "expect_compound_columns_to_be_unique:line_item_id+charge_period_start"],
    ]
    billing = summary["validation"]["quarantined_carried"]["billing"]
    assert billing["copies"] == 1
    assert billing["estimated"] == 1 and billing["cost"] == {"USD": float(rows[2][cost])}
    docs = tmp_path / "out" / "data_docs" / "validations" / "greenops"
    # a suite per format read, beside the canonical tables' suites (usage is checked, empty)
    assert sorted(p.name for p in docs.iterdir()) == ["aws_cur", "charges", "ledger", "usage"]
    assert 'class="carried"' in (tmp_path / "out" / "report.html").read_text()


def test_a_billing_month_far_below_the_previous_one_warns(tmp_path: Path) -> None:
    month = {"BillingPeriodStart": "2026-06-01T00:00:00Z", "ChargePeriodStart": "2026-06-10T00:00:00Z",
             "ChargePeriodEnd": "2026-06-30T00:00:00Z"}  # fmt: skip
    (tmp_path / "focus-06.csv").write_text(focus_rows([{**month, "BilledCost": "100"}]))
    config = tmp_path / "greenops.toml"
    config.write_text('[organisation]\nname = "t"\n\n[[inputs]]\nkind = "focus"\npath = "focus-*.csv"\n')  # fmt: skip
    first, summary = _run(config, "--date", "2026-07-01", "--period", "2026-06")
    assert first.exit_code == 0, first.output
    assert not [w for w in summary["validation"]["warnings"] if w.startswith("charges: the")]
    july = {"BillingPeriodStart": "2026-07-01T00:00:00Z", "ChargePeriodStart": "2026-07-01T00:00:00Z",
            "ChargePeriodEnd": "2026-07-31T00:00:00Z"}  # fmt: skip
    (tmp_path / "focus-07.csv").write_text(focus_rows([{**july, "BilledCost": "20"}]))
    second, summary = _run(config, "--date", "2026-08-01", "--period", "2026-07")
    assert second.exit_code == 0, second.output
    sums = [w for w in summary["validation"]["warnings"] if w.startswith("charges: the")]
    # June: 100 over 29 of 30 days; July: 20 over 30 of 31 days, held to 100 × 30/29 × 30/31
    assert sums == [
        (
            "charges: the 2026-07 total of USD 20.00 is 0.20× the USD 100.00 of 2026-06, pro "
            "rata for the 30 days covered so far (expected 0.5×–2×): a billing export may be "
            "missing, partial or doubled"
        )
    ]
    assert "charges: the 2026-07 total" in (tmp_path / "out" / "report.html").read_text()
    assert (tmp_path / "out" / "ledger" / "_billing_totals.json").exists()


def test_dcgm_samples_get_their_own_suite_and_only_warn() -> None:
    from reporting.ingest.billing.dispatch import empty_charges
    from reporting.ingest.dcgm import empty_samples
    from reporting.schema import empty_usage
    from reporting.validation.run import Validator, validate_tables

    samples = empty_samples()
    rows = [
        ("power_w", 300.0),
        ("power_w", 2_500_000.0),
        ("gpu_util_pct", 140.0),
        ("gpu_util_pct", 50.0),
    ]
    samples = pd.DataFrame([{
        **{c: None for c in samples.columns}, "source_file": "dcgm.json", "line": i + 1,
        "host": "n1", "gpu": "0", "metric": metric, "value": value, "site": "lab",
        "timestamp": pd.Timestamp("2026-07-01T00:00:00Z") + pd.Timedelta(minutes=i),
    } for i, (metric, value) in enumerate(rows)])  # fmt: skip
    checked = validate_tables(Validator(), empty_usage(), empty_charges(), None, samples)
    assert checked.quarantine.empty and not checked.gate
    assert any("GPU power in [0, 1,500] W" in w and "dcgm.json:2" in w for w in checked.warnings)
    assert any(
        "GPU utilisation in [0, 100] %" in w and "dcgm.json:3" in w for w in checked.warnings
    )
    assert "dcgm" in {s["suite"] for s in checked.suites}
