"""Energy and carbon of quarantined billing lines: the accepted lines' kWh and kg CO2e per
currency unit (service, else provider, else file) × the quarantined line's cost. Figures worked
out by hand from the packaged factors: CCF network 0.001 kWh/GB, AWS PUE 1.15, eu-north-1 → SE
at 40.695 g CO2e/kWh."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from reporting.cli import app
from reporting.validation.carried_billing import billing_estimates
from tests.conftest import FIXTURES, charge_frame, focus_rows

CUR_SAMPLE = FIXTURES / "billing" / "focus_converters_sample-anonymous-aws-cur-legacy.csv"
S3 = "Amazon Simple Storage Service"

KWH_PER_GB = 0.001 * 1.15  # facility kWh per GB moved (network coefficient × AWS PUE)
KG_PER_KWH = 40.695 / 1000  # SE grid


def _transfer(gb: float, cost: float, **extra: object) -> dict[str, object]:
    """An accepted AWS data-transfer line in eu-north-1 (modelled: GB × kWh/GB)."""
    return {"provider": "aws", "region_id": "eu-north-1", "service_name": "AWS Data Transfer",
            "usage_type": "DataTransfer-Out-Bytes", "consumed_unit": "GB",
            "consumed_quantity": gb, "billed_cost": cost, "charge_description": "",
            "resource_type": "", **extra}  # fmt: skip


def test_estimate_scales_from_modelled_lines_of_the_same_service_then_provider_then_file() -> None:
    charges = charge_frame([
        _transfer(1000, 2.0),  # 1.15 kWh for 2 USD
        _transfer(4000, 1.0, service_name="Amazon CloudFront", source_file="g.csv"),  # 4.6 kWh
        # a line without a physical model (no quantity) is extrapolated itself: never a basis
        _transfer(None, 50.0),
        _transfer(1000, 0.0),  # free: no cost to divide by, left out
    ])  # fmt: skip
    lines = pd.DataFrame([
        {"source_file": "f.csv", "cost": 4.0, "currency": "USD", "provider": "aws", "service": "AWS Data Transfer"},
        {"source_file": "f.csv", "cost": 3.0, "currency": "USD", "provider": "aws", "service": "Amazon Unseen"},
        {"source_file": "f.csv", "cost": 1.0, "currency": "USD", "provider": None, "service": None},
        {"source_file": "f.csv", "cost": -5.0, "currency": "USD", "provider": "aws", "service": "AWS Data Transfer"},
        {"source_file": "f.csv", "cost": 9.0, "currency": "EUR", "provider": "aws", "service": "AWS Data Transfer"},
    ])  # fmt: skip
    found = billing_estimates(lines, charges)
    service_ratio = 1000 * KWH_PER_GB / 2.0
    provider_ratio = 5000 * KWH_PER_GB / 3.0
    assert found["basis"].tolist() == ["service", "provider", "file", "service", None]
    expected_kwh = [4.0 * service_ratio, 3.0 * provider_ratio, 1.0 * service_ratio, 0.0]
    assert found["energy_kwh"].iloc[:4].tolist() == pytest.approx(expected_kwh, rel=1e-12)
    assert found["co2e_kg"].iloc[:4].tolist() == pytest.approx(
        [k * KG_PER_KWH for k in expected_kwh], rel=1e-12
    )
    assert found.loc[4, ["energy_kwh", "co2e_kg"]].isna().all()  # no accepted EUR line


def test_no_accepted_lines_no_estimate() -> None:
    lines = pd.DataFrame([{"source_file": "f.csv", "cost": 4.0, "currency": "USD",
                           "provider": "aws", "service": "x"}])  # fmt: skip
    found = billing_estimates(lines, charge_frame([]))
    assert found["basis"].isna().all() and found["energy_kwh"].isna().all()


def _focus_line(service: str, cost: str, **extra: str) -> dict[str, str]:
    return {"ServiceName": service, "BilledCost": cost, "RegionId": "eu-north-1",
            "ConsumedUnit": "GB", "x_UsageType": "DataTransfer-Out-Bytes", **extra}  # fmt: skip


def test_quarantined_billing_lines_get_an_energy_estimate_shown_and_in_no_total(
    tmp_path: Path,
) -> None:
    bad_date = {"ChargePeriodStart": "not a date"}
    (tmp_path / "focus-a.csv").write_text(focus_rows([
        _focus_line("AWS Data Transfer", "2.00", ConsumedQuantity="1000"),  # accepted: 1.15 kWh
        _focus_line("AWS Data Transfer", "4.00", **bad_date),  # same service: 4 × 1.15 / 2
        _focus_line("Amazon Unseen", "3.00", **bad_date),  # provider: 3 × (1.15 + 4.6) / 3
        _focus_line("AWS Data Transfer", "1.00", ProviderName="", **bad_date),  # file: 1.15 / 2
        _focus_line("AWS Data Transfer", "100", BillingCurrency="JPY", **bad_date),  # no JPY line
        _focus_line("AWS Data Transfer", "a lot", ConsumedQuantity="1000"),  # cost unreadable
    ]))  # fmt: skip
    (tmp_path / "focus-b.csv").write_text(focus_rows([
        _focus_line("Amazon CloudFront", "1.00", ConsumedQuantity="4000"),  # accepted: 4.6 kWh
    ]))  # fmt: skip
    config = tmp_path / "greenops.toml"
    config.write_text('[organisation]\nname = "t"\n\n[[inputs]]\nkind = "focus"\n'
                      'path = "focus-*.csv"\nmax_quarantined_ratio = 1.0\n')  # fmt: skip
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(out),
                                      "--from", "2026-07-01", "--to", "2026-07-31",
                                      "--date", "2026-07-31"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    billing = summary["validation"]["quarantined_carried"]["billing"]
    expected_kwh = 4 * 1.15 / 2 + 3 * 5.75 / 3 + 1 * 1.15 / 2
    assert expected_kwh == pytest.approx(8.625)
    # summary figures are rounded to 6 decimals
    assert billing["facility_energy_kwh"] == pytest.approx(expected_kwh, abs=1e-6)
    assert billing["co2e_location_kg"] == pytest.approx(expected_kwh * KG_PER_KWH, abs=1e-6)
    assert billing["energy_basis"] == {"service": 1, "provider": 1, "file": 1}
    assert (billing["estimated"], billing["unknown"], billing["energy_not_estimable"]) == (4, 1, 2)
    assert billing["cost"] == {"JPY": 100.0, "USD": 8.0}
    # an estimate only: the totals hold the two accepted lines
    assert summary["totals"]["facility_energy_kwh"] == pytest.approx(1.15 + 4.6)
    html = " ".join((out / "report.html").read_text().split())
    assert (
        "Their estimated energy: about 8.6 kWh facility energy and 0.4 kg CO2e (location-based)"
        in html
    )
    assert "2 rows not estimable" in html


def test_a_damaged_cur_line_is_scaled_from_its_service_in_the_ledger(tmp_path: Path) -> None:
    """Real CUR sample, one S3 line with a positive cost made unreadable: its estimate is its
    cost × the facility kWh per USD of the modelled S3 lines the ledger holds."""
    rows = list(csv.reader(io.StringIO(CUR_SAMPLE.read_text(encoding="utf-8"))))
    header = rows[0]
    cost_at, service_at = (
        header.index("lineItem/UnblendedCost"),
        header.index("product/ProductName"),
    )
    number = next(i for i, r in enumerate(rows) if i and r[service_at] == S3 and float(r[cost_at]) > 0)  # fmt: skip
    rows[number][header.index("lineItem/UsageStartDate")] = "not a date"
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    (tmp_path / "cur.csv").write_text(text.getvalue(), encoding="utf-8")
    config = tmp_path / "greenops.toml"
    config.write_text('[organisation]\nname = "t"\n\n[[inputs]]\nkind = "aws_cur"\npath = "cur.csv"\n')  # fmt: skip
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(out), "--from",
                                      "2023-01-01", "--to", "2023-12-31", "--date", "2023-12-31"])  # fmt: skip
    assert result.exit_code == 0, result.output
    billing = json.loads((out / "summary.json").read_text())["validation"]["quarantined_carried"]["billing"]  # fmt: skip
    ledger = pd.read_parquet(out / "ledger")
    basis = ledger[(ledger["service_name"] == S3) & (ledger["energy_method"] == "modelled")
                   & (ledger["billed_cost"] > 0)]  # fmt: skip
    kwh_per_usd = basis["facility_energy_kwh"].sum() / basis["billed_cost"].sum()
    assert kwh_per_usd > 0
    assert billing["energy_basis"] == {"service": 1, "provider": 0, "file": 0}
    assert billing["facility_energy_kwh"] == pytest.approx(float(rows[number][cost_at]) * kwh_per_usd, abs=1e-6)  # fmt: skip
    assert billing["facility_energy_kwh"] > 0
