"""GCP billing export reader: the real koku flattened CSV and synthetic BigQuery JSON lines."""

from __future__ import annotations

import ast
import csv
import gzip
import json
import math
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from reporting.ingest.billing import common, gcp

FIXTURES = Path(__file__).parent / "fixtures" / "billing"
KOKU = FIXTURES / "koku_gcp_202011_standard_export_with_credits.csv"
FOCUS = FIXTURES / "focus-sample-data_1.0_focus_sample.csv"


def _read(path: Path) -> tuple[common.RawTable, common.FamilyRead]:
    table = common.read_raw(path, path.name)
    return table, gcp.read(table, path.name)


def _accounted(table: common.RawTable, result: common.FamilyRead) -> bool:
    total = len(result.charges) + len(result.quarantine) + len(table.quarantine)
    return total == table.rows_read


# ---- the real koku sample ------------------------------------------------------------------


def test_koku_sample_every_row_accounted_for() -> None:
    with KOKU.open(newline="") as stream:
        expected_rows = sum(1 for _ in csv.DictReader(stream))
    table, result = _read(KOKU)
    assert table.rows_read == expected_rows == 25
    assert _accounted(table, result)
    assert result.quarantine.empty and table.quarantine.empty
    assert list(result.charges.columns) == common.CHARGE_COLUMNS


def test_koku_sample_net_cost_keeps_every_credit() -> None:
    gross: dict[str, float] = defaultdict(float)
    credits: dict[str, float] = defaultdict(float)
    with KOKU.open(newline="") as stream:
        for row in csv.DictReader(stream):
            gross[row["currency"]] += float(row["cost"])
            credits[row["currency"]] += sum(c["amount"] for c in ast.literal_eval(row["credits"]))
    _, result = _read(KOKU)
    billed = result.charges.groupby("currency")["billed_cost"].sum()
    assert set(billed.index) == set(gross) == {"USD"}
    assert gross["USD"] > 0 > credits["USD"]  # the sample really has credits to keep
    for currency, net in billed.items():
        assert round(net, 2) == round(gross[currency] + credits[currency], 2)
        assert math.isclose(net, gross[currency] + credits[currency], abs_tol=1e-12)
    effective = result.charges.groupby("currency")["effective_cost"].sum()
    assert effective.equals(billed)


def test_koku_sample_fields() -> None:
    _, result = _read(KOKU)
    charges = result.charges
    assert set(charges["family"]) == {"gcp_billing"}
    assert set(charges["provider"]) == {"gcp"}
    assert set(charges["charge_category"]) == {"Usage"}
    assert set(charges["pricing_category"]) == {"Standard"}  # PROMOTION credits only
    assert set(charges["billing_period_start"]) == {pd.Timestamp("2020-11-01", tz="UTC")}
    assert set(charges["sub_account_id"]) == {"billing-example-00000"}
    assert charges["region_id"].isna().all()  # location.region is empty in the sample
    first = charges.iloc[0]
    assert first["service_name"] == "Security Command Center"
    assert first["usage_type"] == "Event Threat Detection Log Ingest Bytes"
    assert first["sku_id"] == "D5A4-0C3E-4DA4"
    assert first["charge_period_start"] == pd.Timestamp("2020-11-09 23:00", tz="UTC")
    assert first["charge_period_end"] == pd.Timestamp("2020-11-10 00:00", tz="UTC")
    assert first["consumed_quantity"] == 24909.0 and first["consumed_unit"] == "bytes"
    resource_types = {json.loads(t).get("goog-resource-type") for t in charges["tags"]}
    assert {"bigquery_resource", "bigquery_dataset", None} <= resource_types
    assert charges["charge_id"].is_unique


def test_detection() -> None:
    assert gcp.detect(common.read_raw(KOKU, KOKU.name).columns)
    with FOCUS.open(newline="", encoding="utf-8-sig") as stream:
        focus_header = next(csv.reader(stream))
    assert not gcp.detect(focus_header)
    json_header = ["billing_account_id", "cost", "credits", "service", "sku", "usage_start_time"]
    assert gcp.detect(json_header)


# ---- synthetic BigQuery JSON lines ---------------------------------------------------------


def _row(**changes: object) -> dict:
    row = {
        "billing_account_id": "0123-ABCD",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "039F-D0DA-4055", "description": "Nvidia Tesla A100 GPU running in NL"},
        "usage_start_time": "2024-01-15 10:00:00 UTC",
        "usage_end_time": "2024-01-15 11:00:00 UTC",
        "project": {
            "id": "ml-prod",
            "name": "ML production",
            "labels": [{"key": "team", "value": "platform"}, {"key": "cost-centre", "value": "42"}],
        },
        "labels": [{"key": "Team", "value": "vision"}],
        "system_labels": [
            {"key": "compute.googleapis.com/machine_spec", "value": "a2-highgpu-1g"},
            {"key": "compute.googleapis.com/cores", "value": "12"},
        ],
        "tags": [{"key": "env", "value": "prod", "inherited": True, "namespace": "123"}],
        "location": {"location": "europe-west4", "country": "NL", "region": "europe-west4"},
        "resource": {"name": "projects/ml-prod/instances/trainer-1", "global_name": "//x/y"},
        "cost": 10.0,
        "cost_at_list": 12.5,
        "currency": "EUR",
        "usage": {"amount": 3600, "unit": "seconds", "amount_in_pricing_units": 1.0},
        "credits": [
            {"name": "SUD", "amount": -1.25, "type": "SUSTAINED_USAGE_DISCOUNT"},
            {"name": "CUD", "amount": -2.5, "type": "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE"},
        ],
        "invoice": {"month": "202401"},
        "cost_type": "regular",
    }
    row.update(changes)
    return row


ROWS = [
    _row(),
    _row(credits=[{"amount": -3.0, "type": "PROMOTION"}], cost=1.0),  # net −2: still Usage
    _row(cost_type="tax", cost=0.84, credits=[], location={"location": "global"}),
    _row(cost_type="rounding error", cost=-0.01, credits=[]),
    _row(credits="not a list"),
    _row(usage_start_time="15/01/2024 10h"),
    _row(usage_end_time="2024-01-15 09:00:00 UTC"),
    _row(cost="ten euros"),
]


def _write_json_lines(path: Path, rows: list[dict], *, extra: str = "") -> Path:
    body = "\n".join(json.dumps(r) for r in rows) + "\n" + extra
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(body.encode()))
    else:
        path.write_text(body)
    return path


@pytest.fixture(params=["export.jsonl", "export.json.gz"])
def json_export(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return _write_json_lines(tmp_path / request.param, ROWS, extra='{"cost": 1.0, broken\n')


def test_json_lines_every_row_accounted_for(json_export: Path) -> None:
    table, result = _read(json_export)
    assert gcp.detect(table.columns)
    assert table.rows_read == len(ROWS) + 1
    assert list(table.quarantine["line"]) == [len(ROWS) + 1]  # the malformed JSON line
    assert _accounted(table, result)
    assert list(result.charges["line"]) == [1, 2, 3, 4]
    reasons = dict(zip(result.quarantine["line"], result.quarantine["reason"], strict=True))
    assert "credits" in reasons[5]
    assert "usage_start_time" in reasons[6]
    assert "usage_end_time is before usage_start_time" == reasons[7]
    assert "cost is not a number" in reasons[8]


def test_json_lines_mapping(json_export: Path) -> None:
    _, result = _read(json_export)
    first = result.charges.iloc[0]
    assert first["billed_cost"] == pytest.approx(10.0 - 1.25 - 2.5)
    assert first["effective_cost"] == first["billed_cost"]
    assert first["list_cost"] == 12.5
    assert first["currency"] == "EUR"
    assert first["pricing_category"] == "Committed"
    assert first["commitment_status"] is None
    assert first["resource_type"] == "a2-highgpu-1g"
    assert math.isnan(first["vcpus"])  # the cores label describes the VM, not this line
    assert first["resource_id"] == "projects/ml-prod/instances/trainer-1"
    assert first["region_id"] == "europe-west4"
    assert first["service_category"] == "Compute"
    assert first["sub_account_id"] == "ml-prod" and first["sub_account_name"] == "ML production"
    assert first["sku_id"] == "039F-D0DA-4055"
    assert first["consumed_quantity"] == 3600 and first["consumed_unit"] == "seconds"
    assert first["charge_period_start"] == pd.Timestamp("2024-01-15 10:00", tz="UTC")
    assert first["billing_period_start"] == pd.Timestamp("2024-01-01", tz="UTC")
    # Row labels win over project labels; resource tags and other project labels are kept.
    assert json.loads(first["tags"]) == {"team": "vision", "cost-centre": "42", "env": "prod"}


def test_json_lines_credits_and_categories(json_export: Path) -> None:
    _, result = _read(json_export)
    charges = result.charges
    assert list(charges["charge_category"]) == ["Usage", "Usage", "Tax", "Adjustment"]
    assert charges["billed_cost"].tolist() == pytest.approx([6.25, -2.0, 0.84, -0.01])
    assert charges.loc[1, "pricing_category"] == "Standard"
    assert charges.loc[2, "region_id"] is None  # global location


# ---- flattened CSV and hostile input -------------------------------------------------------

CSV_HEADER = [
    "billing_account_id", "service.description", "sku.id", "sku.description", "usage_start_time",
    "usage_end_time", "project.id", "project.labels", "labels", "system_labels",
    "location.region", "cost", "currency", "usage.amount", "usage.unit", "credits",
    "invoice.month", "cost_type",
]  # fmt: skip


def _csv_row(**changes: str) -> list[str]:
    row = {
        "billing_account_id": "0123-ABCD",
        "service.description": "Vertex AI",
        "sku.id": "AAAA-BBBB",
        "sku.description": "A2 GPU training",
        "usage_start_time": "2024-02-01 00:00:00+00:00",
        "usage_end_time": "2024-02-01 01:00:00+00:00",
        "project.id": "ml-dev",
        "project.labels": "[{'key': 'team', 'value': 'platform'}]",
        "labels": "[]",
        "system_labels": "[{'key': 'compute.googleapis.com/machine_spec', 'value': 'a2-highgpu-1g'}]",
        "location.region": "us-central1",
        "cost": "4.0",
        "currency": "USD",
        "usage.amount": "3600.0",
        "usage.unit": "seconds",
        "credits": "[{'name': 'CUD', 'amount': -1.0, 'full_name': None, 'id': 'x', "
        "'type': 'COMMITTED_USAGE_DISCOUNT'}]",
        "invoice.month": "202402",
        "cost_type": "regular",
    }
    row.update(changes)
    return [row[c] for c in CSV_HEADER]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_flattened_csv_with_python_repr_lists(tmp_path: Path) -> None:
    rows = [
        _csv_row(),
        _csv_row(credits="[" * 5000 + "]" * 5000),  # nesting deep enough to blow a parser
        _csv_row(credits="__import__('os').system('echo pwned')"),  # never evaluated
        _csv_row(labels="[{'value': 'keyless'}]"),
        _csv_row(**{"invoice.month": "2024-02"}),
        _csv_row(cost_type="surprise"),
    ]
    table, result = _read(_write_csv(tmp_path / "flat.csv", CSV_HEADER, rows))
    assert gcp.detect(table.columns)
    assert _accounted(table, result)
    first = result.charges.iloc[0]
    assert first["billed_cost"] == 3.0
    assert first["pricing_category"] == "Committed"
    assert first["resource_type"] == "a2-highgpu-1g"
    assert first["service_category"] == "AI and Machine Learning"
    assert first["region_id"] == "us-central1"
    assert json.loads(first["tags"]) == {"team": "platform"}
    reasons = dict(zip(result.quarantine["line"], result.quarantine["reason"], strict=True))
    assert sorted(reasons) == [3, 4, 5, 6, 7]
    assert reasons[3].startswith("credits") and reasons[4].startswith("credits")
    assert "labels" in reasons[5]
    assert "invoice.month" in reasons[6]
    assert "cost_type" in reasons[7]


@pytest.mark.parametrize("dropped", ["cost", "usage_start_time"])
def test_missing_required_column_quarantines_every_row(tmp_path: Path, dropped: str) -> None:
    keep = [i for i, c in enumerate(CSV_HEADER) if c != dropped]
    header = [CSV_HEADER[i] for i in keep]
    rows = [[r[i] for i in keep] for r in (_csv_row(), _csv_row(cost="2.0"))]
    table, result = _read(_write_csv(tmp_path / "flat.csv", header, rows))
    assert result.charges.empty
    assert list(result.charges.columns) == common.CHARGE_COLUMNS
    assert len(result.quarantine) == 2 and _accounted(table, result)
    assert all(dropped in reason for reason in result.quarantine["reason"])
