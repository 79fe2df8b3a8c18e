"""The FOCUS reader on the real FOCUS sample and on the drift and damage seen in the wild."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reporting.ingest.billing import focus
from reporting.ingest.billing.common import read_raw
from reporting.ingest.billing.dispatch import detect_family, read_billing

SAMPLE = Path(__file__).parent / "fixtures" / "billing" / "focus-sample-data_1.0_focus_sample.csv"
HEADER = "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ChargeFrequency,ProviderName,Tags"  # fmt: skip


def read(path: Path):
    return focus.read(read_raw(path, path.name), path.name)


def test_the_real_sample_is_read_whole_and_its_cost_adds_up() -> None:
    with open(SAMPLE, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    result = read(SAMPLE)
    assert len(result.charges) == len(rows) == 1000 and result.quarantine.empty
    billed = sum(float(r["BilledCost"]) for r in rows)
    assert result.charges["billed_cost"].sum() == pytest.approx(billed, abs=0.005)
    assert (result.charges["billed_cost"] < 0).sum() == sum(
        float(r["BilledCost"]) < 0 for r in rows
    )
    categories = result.charges["charge_category"].value_counts().to_dict()
    assert categories == {"Usage": 997, "Adjustment": 2, "Credit": 1}
    assert result.charges["provider"].value_counts().to_dict() == {
        "aws": 942,
        "azure": 51,
        "oracle": 7,
    }
    # A tag key with a stray space (" org") is the same key as "org".
    assert not result.charges["tags"].str.contains('" org"').any()


def test_drift_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "drift.csv"
    path.write_text(
        HEADER + "\n"
        '1.5,NULL,usd,2024-10-01 00:00:00,2024-10-01 01:00:00,usage,Usage-based,AWS,"{""Team"": ""a"", ""flag"": null}"\n'
        "2.5E-1,0.25,USD,2024-10-01T00:00:00Z,2024-10-01T01:00:00Z,Credit,One-Time,Microsoft,NULL\n",
        encoding="utf-8",
    )  # fmt: skip
    result = read(path)
    assert result.quarantine.empty
    first, second = result.charges.to_dict("records")
    assert first["charge_category"] == "Usage" and first["currency"] == "USD"
    assert first["effective_cost"] != first["effective_cost"]  # NULL → missing, not 0
    assert json.loads(first["tags"]) == {"team": "a", "flag": "true"}
    assert second["billed_cost"] == 0.25 and second["provider"] == "azure"
    assert str(first["charge_period_start"]) == "2024-10-01 00:00:00+00:00"


def test_damaged_rows_are_quarantined_with_the_column_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "\n"
        "1,1,USD,2023-01-01T00:00:00Z,2023-02-01T30:00:00Z,Usage,Usage-Based,AWS,\n"  # hour 30
        "abc,1,USD,2023-01-01T00:00:00Z,2023-01-01T01:00:00Z,Usage,Usage-Based,AWS,\n"
        "1,1,USD,2023-01-01T00:00:00Z,2023-01-01T01:00:00Z,Refund,Usage-Based,AWS,\n"
        '1,1,USD,2023-01-01T00:00:00Z,2023-01-01T01:00:00Z,Usage,Usage-Based,AWS,"{broken"\n'
        "1,1,USD,2023-01-01T00:00:00Z\n"  # truncated line
        "1,1,USD,2023-01-01T00:00:00Z,2023-01-01T01:00:00Z,Usage,Usage-Based,AWS,\n",
        encoding="utf-8",
    )  # fmt: skip
    table = read_raw(path, "bad.csv")
    result = focus.read(table, "bad.csv")
    assert table.rows_read == 6 and len(result.charges) == 1
    reasons = dict(zip(result.quarantine["line"], result.quarantine["reason"], strict=True))
    assert "ChargePeriodEnd" in reasons[2]
    assert "BilledCost" in reasons[3] and "abc" in reasons[3]
    assert "ChargeCategory" in reasons[4]
    assert "Tags" in reasons[5]
    assert table.quarantine["line"].tolist() == [6]  # wrong field count, found by the splitter


def test_a_missing_cost_column_quarantines_every_row(tmp_path: Path) -> None:
    path = tmp_path / "nocost.csv"
    path.write_text(
        "BilledCostX,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BillingCurrency\n"
        "1,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,Usage,USD\n",
        encoding="utf-8",
    )  # fmt: skip
    result = read(path)
    assert result.charges.empty and len(result.quarantine) == 1
    assert "BilledCost" in result.quarantine["reason"].iloc[0]


def test_gzip_and_parquet_give_the_same_charges(tmp_path: Path) -> None:
    text = SAMPLE.read_bytes()
    gz = tmp_path / "sample.csv.gz"
    gz.write_bytes(gzip.compress(text, mtime=0))
    with open(SAMPLE, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    parquet = tmp_path / "sample.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    plain, zipped, columnar = read(SAMPLE), read(gz), read(parquet)
    assert zipped.charges["billed_cost"].sum() == pytest.approx(plain.charges["billed_cost"].sum())
    assert len(columnar.charges) == 1000
    assert columnar.charges["billed_cost"].sum() == pytest.approx(
        plain.charges["billed_cost"].sum()
    )


def test_a_truncated_gzip_is_an_unreadable_file_not_a_crash(tmp_path: Path) -> None:
    gz = tmp_path / "cut.csv.gz"
    gz.write_bytes(gzip.compress(SAMPLE.read_bytes(), mtime=0)[:5000])
    result = read_billing({"cut.csv.gz": gz}, "focus")
    assert "cut.csv.gz" in result.file_errors and result.charges.empty


def test_detection_tells_the_families_apart() -> None:
    assert detect_family(read_raw(SAMPLE, "s").columns) == "focus"
    assert detect_family(["a", "b"]) is None
