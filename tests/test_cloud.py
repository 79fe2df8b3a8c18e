"""Cloud billing through the whole pipeline: the four real samples, reconciliation per currency,
energy of known instances worked by hand, restatements, double exports, shared costs and
conservation with negative rows (hypothesis)."""

from __future__ import annotations

import ast
import csv
import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reporting import ledger as store
from reporting.attribute_cloud import attribute_charges
from reporting.cli import app
from reporting.config import load_config, parse_config
from reporting.errors import InputError
from reporting.factors import table
from reporting.ingest.billing.common import read_raw
from reporting.ingest.billing.focus import read as read_focus
from reporting.pipeline import ingest, ledger_root
from tests.conftest import focus_rows

FIXTURES = Path(__file__).parent / "fixtures" / "billing"
SAMPLES = {
    "focus-sample-data_1.0_focus_sample.csv": ("BilledCost", "BillingCurrency"),
    "focus_converters_sample-anonymous-aws-cur-legacy.csv": (
        "lineItem/UnblendedCost",
        "lineItem/CurrencyCode",
    ),
    "finops-toolkit_EA_ActualCost_Small.csv": ("Cost", "BillingCurrency"),
    "focus_converters_sample-anonymous-ea-export-dataset.csv": (
        "CostInBillingCurrency",
        "BillingCurrencyCode",
    ),
    "koku_gcp_202011_standard_export_with_credits.csv": ("cost", "currency"),
}


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def file_cost(name: str) -> dict[str, float]:
    """Cost per currency of a sample, summed straight from the file (GCP: cost + credits)."""
    cost_col, currency_col = SAMPLES[name]
    totals: dict[str, float] = {}
    with open(FIXTURES / name, encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            amount = float(row[cost_col] or 0)
            if "credits" in row:
                amount += sum(c["amount"] for c in ast.literal_eval(row["credits"] or "[]"))
            totals[row[currency_col]] = totals.get(row[currency_col], 0.0) + amount
    return totals


def write_config(folder: Path, body: str) -> Path:
    path = folder / "greenops.toml"
    path.write_text('[organisation]\nname = "Cloud test"\n' + body, encoding="utf-8")
    return path


def samples_config(tmp_path: Path) -> Path:
    for name in SAMPLES:
        shutil.copy(FIXTURES / name, tmp_path / name)
    inputs = "".join(f'[[inputs]]\nkind = "billing"\npath = "{name}"\n' for name in SAMPLES)
    rules = '[[owners]]\nmatch = { "tag:business_unit" = "(?P<bu>.+)" }\nteam = "{bu}"\n'
    return write_config(tmp_path, inputs + rules)


def test_the_real_samples_reconcile_per_currency_to_the_cent(tmp_path: Path) -> None:
    config = samples_config(tmp_path)
    out = tmp_path / "out"
    result = run_cli("run", "--config", str(config), "--from", "2020-01-01", "--to", "2024-12-31",
                     "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    by_file = {r["source_file"]: r for r in summary["inputs"]}
    for name in SAMPLES:
        record = by_file[name]
        assert record["rows_read"] == record["rows_accepted"] + record["rows_quarantined"]
        expected = file_cost(name)
        read = {c: v["billed"] for c, v in record["cost_in"].items()}
        assert read.keys() == expected.keys()
        for currency, amount in expected.items():
            assert read[currency] == pytest.approx(amount, abs=0.005)
    rows = summary["cloud"]["reconciliation"]
    assert {r["source_file"] for r in rows} == set(SAMPLES)
    assert all(r["reconciled"] for r in rows), rows
    # Every team (including unallocated) adds up to the cloud total, per currency.
    teams: dict[str, float] = {}
    for team in summary["by_team"]:
        for currency, amount in team["cost"].items():
            teams[currency] = teams.get(currency, 0.0) + amount
    for currency, amount in teams.items():
        assert amount == pytest.approx(summary["totals"]["cost"][currency], abs=0.005)
    methods = summary["cloud"]["energy_methods"]
    assert methods["modelled"] > 0 and methods["extrapolated"] > 0
    assert sum(methods.values()) == pytest.approx(1.0, abs=1e-6)
    html = (out / "report.html").read_text()
    assert 'id="cloud"' in html and "Scope 3.1" in html and "NO</td>" not in html


def charges_of(tmp_path: Path, rows: list[dict[str, str]]) -> pd.DataFrame:
    path = tmp_path / "f.csv"
    path.write_text(focus_rows(rows), encoding="utf-8")
    read = read_focus(read_raw(path, "f.csv"), "f.csv")
    assert read.quarantine.empty, read.quarantine.to_dict("records")
    return read.charges


def catalog_row(instance: str) -> dict[str, str]:
    rows = table("cloud_instances")
    return rows[(rows["provider"] == "aws") & (rows["instance_type"] == instance)].iloc[0].to_dict()


def power_row(name: str, model: str) -> dict[str, str]:
    rows = table(name)
    return rows[rows["model"] == model].iloc[0].to_dict()


def test_a_gpu_instance_line_gets_the_hand_worked_energy(tmp_path: Path) -> None:
    charges = charges_of(tmp_path, [{"BilledCost": "327.726", "x_InstanceType": "p4d.24xlarge"}])
    config = parse_config({"organisation": {"name": "t"}, "inputs": []}, tmp_path / "g.toml")
    rows = attribute_charges(charges, config, "run").ledger
    inst = catalog_row("p4d.24xlarge")
    cpu = power_row("cpu_power", inst["cpu_model"])
    gpu = power_row("gpu_power", inst["gpu_model"])
    cpu_lo, cpu_hi = float(cpu["min_w_per_thread"]), float(cpu["max_w_per_thread"])
    # 10 h × (vCPUs × (min + 50 % × (max − min)) + GPUs × max (utilisation 1) + GB × 0.392 W)
    watts = (
        float(inst["vcpus"]) * (cpu_lo + 0.5 * (cpu_hi - cpu_lo))
        + float(inst["gpus"]) * float(gpu["max_w"])
        + float(inst["memory_gb"]) * 0.392
    )
    assert inst["gpus"] == "8" and inst["vcpus"] == "96"
    assert rows["it_energy_kwh"].sum() == pytest.approx(watts * 10 / 1000)
    assert rows["facility_energy_kwh"].sum() == pytest.approx(watts * 10 / 1000 * 1.15)  # AWS PUE
    assert rows["gpu_hours"].sum() == pytest.approx(80)
    assert set(rows["energy_method"]) == {"modelled"} and set(rows["scope"]) == {"3.1"}
    assert set(rows["grid_zone"]) == {"US-SRVC"}  # us-east-1 (Virginia) → eGRID SERC Virginia
    assert rows["cost"].sum() == pytest.approx(327.726)


def test_storage_network_and_unknown_lines(tmp_path: Path) -> None:
    charges = charges_of(tmp_path, [
        {"BilledCost": "8", "ConsumedQuantity": "100", "ConsumedUnit": "GB-Months",
         "x_UsageType": "EBS:VolumeUsage.gp3", "ServiceName": "Amazon Elastic Compute Cloud"},
        {"BilledCost": "2", "ConsumedQuantity": "50", "ConsumedUnit": "GB",
         "x_UsageType": "DataTransfer-Out-Bytes", "ServiceName": "Amazon Elastic Compute Cloud"},
        {"BilledCost": "5", "ConsumedQuantity": "1000", "ConsumedUnit": "Requests",
         "x_UsageType": "Requests-Tier1", "ServiceName": "Amazon Elastic Compute Cloud"},
        {"BilledCost": "3", "ChargeCategory": "Tax", "ConsumedQuantity": "", "ConsumedUnit": ""},
    ])  # fmt: skip
    config = parse_config({"organisation": {"name": "t"}, "inputs": []}, tmp_path / "g.toml")
    rows = attribute_charges(charges, config, "run").ledger.groupby("usage_id").sum(numeric_only=True)  # fmt: skip
    by_cost = rows.set_index(rows["cost"].round(6))["it_energy_kwh"]
    ssd_kwh = 100 * 730 / 1000 * 1.2 * 2 / 1000  # TB-h × 1.2 Wh/TB-h × EBS replication 2
    network_kwh = 50 * 0.001
    assert by_cost[8.0] == pytest.approx(ssd_kwh)
    assert by_cost[2.0] == pytest.approx(network_kwh)
    # Requests: kWh per USD of the modelled lines of the same service, × 5 USD.
    assert by_cost[5.0] == pytest.approx((ssd_kwh + network_kwh) / 10 * 5)
    assert by_cost[3.0] == 0.0


def _ledger(tmp_path: Path, config_path: Path) -> pd.DataFrame:
    config = load_config(config_path)
    return store.read_ledger(
        ledger_root(config, tmp_path / "out"), date(2000, 1, 1), date(2100, 1, 1)
    )


def test_a_restated_export_replaces_its_billing_period(tmp_path: Path) -> None:
    (tmp_path / "bills").mkdir()
    first = tmp_path / "bills" / "2026-07-v1.csv"
    first.write_text(focus_rows([{"BilledCost": "10"}, {"BilledCost": "20"}]), encoding="utf-8")
    config = write_config(tmp_path, '[[inputs]]\nkind = "focus"\npath = "bills/*.csv"\n')
    args = ("run", "--config", str(config), "--date", "2026-07-01", "--out", str(tmp_path / "out"))
    assert run_cli(*args).exit_code == 0
    assert _ledger(tmp_path, config)["cost"].sum() == pytest.approx(30)
    # The provider re-issues the month under a new file name, with one line changed.
    first.unlink()
    restated = tmp_path / "bills" / "2026-07-v2.csv"
    restated.write_text(focus_rows([{"BilledCost": "10"}, {"BilledCost": "25"}]), encoding="utf-8")
    assert run_cli(*args).exit_code == 0
    assert _ledger(tmp_path, config)["cost"].sum() == pytest.approx(35)
    # The report reconciles the file that is there; v1, wholly restated, is no longer listed.
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    [line] = summary["cloud"]["reconciliation"]
    assert line["source_file"] == "bills/2026-07-v2.csv" and line["reconciled"]
    assert [i["source_file"] for i in summary["inputs"]] == ["bills/2026-07-v2.csv"]
    # Rewritten in place (the usual nightly CUR/FOCUS refresh): still replaced, never added.
    restated.write_text(focus_rows([{"BilledCost": "12"}]), encoding="utf-8")
    assert run_cli(*args).exit_code == 0
    assert _ledger(tmp_path, config)["cost"].sum() == pytest.approx(12)


def test_a_legacy_cur_and_a_cur2_of_the_same_month_are_refused(tmp_path: Path) -> None:
    legacy = "lineItem/UsageStartDate,lineItem/UsageEndDate,lineItem/UnblendedCost,lineItem/CurrencyCode,bill/PayerAccountId,bill/BillingPeriodStartDate,lineItem/LineItemType\n2026-07-01T00:00:00Z,2026-07-01T01:00:00Z,1.5,USD,111,2026-07-01T00:00:00Z,Usage\n"  # fmt: skip
    cur2 = "line_item_usage_start_date,line_item_usage_end_date,line_item_unblended_cost,line_item_currency_code,bill_payer_account_id,bill_billing_period_start_date,line_item_line_item_type,bill_payer_account_name\n2026-07-01T00:00:00Z,2026-07-01T01:00:00Z,1.5,USD,111,2026-07-01T00:00:00Z,Usage,lab\n"  # fmt: skip
    (tmp_path / "legacy.csv").write_text(legacy, encoding="utf-8")
    (tmp_path / "cur2.csv").write_text(cur2, encoding="utf-8")
    config = write_config(
        tmp_path, '[[inputs]]\nkind = "aws_cur"\npath = "legacy.csv"\n[[inputs]]\nkind = "aws_cur"\npath = "cur2.csv"\n'
    )  # fmt: skip
    with pytest.raises(InputError, match="count the spend twice"):
        ingest(load_config(config))
    result = run_cli("run", "--config", str(config), "--date", "2026-07-01", "--out", str(tmp_path / "o"))  # fmt: skip
    assert result.exit_code == 1 and "both cur2 and legacy exports" in result.output


def test_a_file_of_another_family_is_quarantined_whole(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "koku_gcp_202011_standard_export_with_credits.csv", tmp_path / "x.csv")
    config = write_config(tmp_path, '[[inputs]]\nkind = "focus"\npath = "x.csv"\n')
    intake = ingest(load_config(config))
    assert intake.charges.empty and len(intake.quarantine) == 25
    assert "looks like a gcp_billing export" in intake.quarantine["reason"].iloc[0]


def test_shared_tax_is_split_over_teams_by_tagged_spend(tmp_path: Path) -> None:
    charges = charges_of(tmp_path, [
        {"BilledCost": "30", "Tags": '{"team": "a"}'},
        {"BilledCost": "10", "Tags": '{"team": "b"}'},
        {"BilledCost": "8", "ChargeCategory": "Tax", "ConsumedQuantity": "", "ConsumedUnit": ""},
    ])  # fmt: skip
    raw = {"organisation": {"name": "t"}, "inputs": [], "billing": {"shared_costs": "proportional"},
           "owners": [{"match": {"tag:team": "(?P<t>.+)"}, "team": "{t}"}]}  # fmt: skip
    rows = attribute_charges(charges, parse_config(raw, tmp_path / "g.toml"), "r").ledger
    by_team = rows.groupby("team")["cost"].sum()
    assert by_team["a"] == pytest.approx(30 + 6) and by_team["b"] == pytest.approx(10 + 2)
    assert "unallocated" not in by_team.index


money = st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    lines=st.lists(
        st.tuples(money, st.sampled_from(["Usage", "Credit", "Tax"]), st.sampled_from(["a", "b", ""]),
                  st.integers(1, 96), st.sampled_from(["USD", "EUR"])),
        min_size=1, max_size=25,
    ),
    shared=st.sampled_from(["unallocated", "proportional"]),
)  # fmt: skip
def test_billed_cost_is_conserved_per_currency(tmp_path: Path, lines, shared) -> None:
    rows = [
        {"BilledCost": str(cost), "ChargeCategory": category, "BillingCurrency": currency,
         "Tags": json.dumps({"team": team}) if team else "",
         "ChargePeriodEnd": f"2026-07-{1 + hours // 24:02d}T{hours % 24:02d}:00:00Z"}
        for cost, category, team, hours, currency in lines
    ]  # fmt: skip
    charges = charges_of(tmp_path, rows)
    raw = {"organisation": {"name": "t"}, "inputs": [], "billing": {"shared_costs": shared},
           "owners": [{"match": {"tag:team": "(?P<t>.+)"}, "team": "{t}"}]}  # fmt: skip
    ledger = attribute_charges(charges, parse_config(raw, tmp_path / "g.toml"), "r").ledger
    for currency in ("USD", "EUR"):
        billed = sum(float(c) for c, _, _, _, cur in lines if cur == currency)
        held = ledger.loc[ledger["currency"] == currency, "cost"].sum()
        assert held == pytest.approx(billed, abs=1e-6)
    assert (ledger["facility_energy_kwh"] >= 0).all()


def test_a_vendor_carbon_export_is_shown_beside_the_estimate_never_added(tmp_path: Path) -> None:
    (tmp_path / "bills").mkdir()
    (tmp_path / "bills" / "july.csv").write_text(
        focus_rows([{"BilledCost": "327.726", "x_InstanceType": "p4d.24xlarge"}]), encoding="utf-8"
    )
    (tmp_path / "carbon.csv").write_text(
        "usage_period_start,usage_period_end,usage_account_id,region_code,product_code,"
        "model_version,total_lbm_emissions_value,total_lbm_emissions_unit,"
        "total_mbm_emissions_value,total_mbm_emissions_unit\n"
        "2026-07-01T00:00:00Z,2026-08-01T00:00:00Z,111,us-east-1,AmazonEC2,v3.0.0,0.0021,MTCO2e,0.0004,MTCO2e\n",
        encoding="utf-8",
    )  # fmt: skip
    config = write_config(
        tmp_path,
        '[[inputs]]\nkind = "focus"\npath = "bills/*.csv"\n[[inputs]]\nkind = "aws_carbon"\npath = "carbon.csv"\n',
    )  # fmt: skip
    out = tmp_path / "out"
    result = run_cli("run", "--config", str(config), "--period", "2026-07", "--date", "2026-08-01", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    [beside] = summary["cloud"]["vendor_carbon"]
    assert beside["vendor_co2e_location_kg"] == pytest.approx(2.1)  # 0.0021 t
    assert beside["vendor_co2e_market_kg"] == pytest.approx(0.4)
    ours = summary["totals"]["co2e_location_kg"]
    assert beside["estimate_co2e_location_kg"] == pytest.approx(ours)  # not added into the total
    assert ours > 10
    assert "never added" in (out / "report.html").read_text()
