"""Vendor carbon exports (AWS CARBON_EMISSIONS data export, GCP Carbon Footprint export)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from reporting.ingest.billing.vendor_carbon import VENDOR_COLUMNS, detect, read_vendor_carbon

AWS_HEADER = (
    "last_refresh_timestamp,location,model_version,payer_account_id,product_code,region_code,"
    "total_lbm_emissions_unit,total_lbm_emissions_value,total_mbm_emissions_unit,"
    "total_mbm_emissions_value,usage_account_id,usage_period_end,usage_period_start"
)
AWS_ROWS = [
    (
        "2024-06-10 00:00:00Z,US East (N. Virginia),v3.0.0,111111111111,AmazonEC2,us-east-1,"
        "MTCO2e,0.0123,MTCO2e,0.002,222222222222,2024-04-01 00:00:00Z,2024-03-01 00:00:00Z"
    ),
    (
        "2024-06-10 00:00:00Z,Global,v3.0.0,111111111111,AmazonCloudFront,,"
        "MTCO2e,0.5,MTCO2e,,,2024-03-31 00:00:00Z,2024-03-01 00:00:00Z"
    ),
]
GCP_FLAT_HEADER = (
    "usage_month,billing_account_id,project.id,project.number,service.description,service.id,"
    "location.location,location.region,carbon_model_version,"
    "carbon_footprint_total_kgCO2e.location_based,carbon_footprint_total_kgCO2e.market_based,"
    "carbon_footprint_kgCO2e.scope1,carbon_footprint_kgCO2e.scope2.location_based,"
    "carbon_footprint_kgCO2e.scope2.market_based,carbon_footprint_kgCO2e.scope3"
)
T = pd.Timestamp


def _write(path: Path, header: str, rows: list[str]) -> Path:
    body = "\n".join([header, *rows]) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(body.encode()))
    else:
        path.write_text(body)
    return path


def _read(path: Path, kind: str = "vendor_carbon") -> tuple[pd.DataFrame, pd.DataFrame, int]:
    rows, quarantine, rows_read = read_vendor_carbon(path, path.name, kind)
    assert rows_read == len(rows) + len(quarantine)  # every row accounted for
    assert list(rows.columns) == VENDOR_COLUMNS
    return rows, quarantine, rows_read


def _gcp_record(**overrides: object) -> dict:
    record = {
        "usage_month": "2024-03-01",
        "billing_account_id": "007GD7-15C0E6-BDE6B3",
        "project": {"id": "ml-train", "number": "802583874831"},
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "location": {"location": "europe-west4-a", "region": "europe-west4"},
        "carbon_model_version": 12,
        "carbon_footprint_total_kgCO2e": {"location_based": 1587.3, "market_based": 588.8},
        "carbon_footprint_kgCO2e": {
            "scope1": 10.0,
            "scope2": {"location_based": 400.0, "market_based": 105.8},
            "scope3": 986.8,
        },
    }
    return record | overrides


def test_detect() -> None:
    assert detect(AWS_HEADER.split(",")) == "aws_carbon"
    assert detect(GCP_FLAT_HEADER.split(",")) == "gcp_carbon"
    assert detect(sorted(_gcp_record())) == "gcp_carbon"  # nested JSON: record columns
    assert detect(["BilledCost", "ChargePeriodStart", "ChargeCategory"]) is None
    assert detect([]) is None


def test_aws_tonnes_become_kg_and_periods_are_exclusive(tmp_path: Path) -> None:
    rows, quarantine, rows_read = _read(_write(tmp_path / "aws.csv", AWS_HEADER, AWS_ROWS))
    assert quarantine.empty and rows_read == 2
    first, second = rows.to_dict("records")
    assert first["provider"] == "aws" and first["line"] == 2 and first["source_file"] == "aws.csv"
    assert first["co2e_location_kg"] == pytest.approx(12.3)  # 0.0123 t × 1000
    assert first["co2e_market_kg"] == pytest.approx(2.0)
    assert (first["period_start"], first["period_end"]) == (T("2024-03-01", tz="UTC"),
                                                            T("2024-04-01", tz="UTC"))  # fmt: skip
    assert first["account_id"] == "222222222222" and first["region_id"] == "us-east-1"
    assert first["service"] == "AmazonEC2" and first["model_version"] == "v3.0.0"
    # global service: no region, no usage account (payer used), empty MBM, inclusive end
    assert second["region_id"] is None and second["account_id"] == "111111111111"
    assert second["co2e_location_kg"] == pytest.approx(500.0)
    assert pd.isna(second["co2e_market_kg"])
    assert second["period_end"] == T("2024-04-01", tz="UTC")
    assert str(rows["period_start"].dtype) == "datetime64[s, UTC]"


def test_aws_gzip_and_units(tmp_path: Path) -> None:
    rows = [
        r.replace("MTCO2e,0.0123,MTCO2e,0.002", unit)
        for r, unit in zip(
            AWS_ROWS * 2,
            ["lbs,1000,kgCO2e,3", "MTCO2e,1,MTCO2e,1", "furlongs,1,MTCO2e,1", ",2,,"],
            strict=True,
        )
    ]
    rows[1] = rows[1].replace("MTCO2e,0.5,MTCO2e,", "tonnes,0.5,MTCO2e,")
    rows[3] = rows[3].replace("MTCO2e,0.5,MTCO2e,", ",0.5,,")  # no unit: documented MTCO2e
    found, quarantine, rows_read = _read(_write(tmp_path / "aws.csv.gz", AWS_HEADER, rows))
    assert rows_read == 4 and len(found) == 3
    assert found["co2e_location_kg"].tolist() == pytest.approx([453.59237, 500.0, 500.0])
    assert found["co2e_market_kg"].iloc[0] == pytest.approx(3.0)
    (reason,) = quarantine["reason"]
    assert "total_lbm_emissions_unit" in reason and "furlongs" in reason
    assert quarantine["line"].tolist() == [4]


def test_aws_parquet(tmp_path: Path) -> None:
    path = tmp_path / "aws.parquet"
    frame = pd.DataFrame(
        {
            "usage_period_start": [T("2024-03-01", tz="UTC")],
            "usage_period_end": [T("2024-04-01", tz="UTC")],
            "usage_account_id": ["222222222222"],
            "region_code": ["eu-west-1"],
            "product_code": ["AmazonSageMaker"],
            "model_version": ["v3.0.0"],
            "total_lbm_emissions_value": [0.25],
            "total_lbm_emissions_unit": ["MTCO2e"],
            "total_mbm_emissions_value": [None],
            "total_mbm_emissions_unit": ["MTCO2e"],
        }
    )
    frame.to_parquet(path)
    found, quarantine, _ = _read(path, "aws_carbon")
    assert quarantine.empty
    row = found.iloc[0]
    assert row["co2e_location_kg"] == pytest.approx(250.0) and pd.isna(row["co2e_market_kg"])
    assert row["period_end"] == T("2024-04-01", tz="UTC") and row["region_id"] == "eu-west-1"


def test_bad_number_quarantined_naming_the_column(tmp_path: Path) -> None:
    rows = [AWS_ROWS[0].replace("0.0123", "lots"), AWS_ROWS[1].replace("0.5", "inf"), AWS_ROWS[0]]
    found, quarantine, rows_read = _read(_write(tmp_path / "aws.csv", AWS_HEADER, rows))
    assert rows_read == 3 and len(found) == 1 and found["line"].tolist() == [4]
    assert quarantine["check"].tolist() == ["number", "number"]
    assert "total_lbm_emissions_value is not a number: lots" in quarantine["reason"].iloc[0]
    assert "total_lbm_emissions_value" in quarantine["reason"].iloc[1]


def test_aws_bad_times_and_missing_values(tmp_path: Path) -> None:
    base = AWS_ROWS[0]
    rows = [
        base.replace("2024-03-01 00:00:00Z", "yesterday"),
        base.replace("2024-04-01 00:00:00Z", "2024-02-01 00:00:00Z"),
        base.replace("0.0123", "").replace("0.002", ""),
        base.replace("2024-04-01 00:00:00Z", "2024-03-31 23:59:59Z"),
    ]
    found, quarantine, _ = _read(_write(tmp_path / "aws.csv", AWS_HEADER, rows))
    assert found["period_end"].tolist() == [T("2024-04-01", tz="UTC")]
    reasons = quarantine["reason"].tolist()
    assert "usage_period_start is not a valid time: yesterday" in reasons[0]
    assert "usage_period_end is not after usage_period_start" in reasons[1]
    assert reasons[2].startswith("no emissions value")


def test_gcp_flattened_csv_monthly_periods(tmp_path: Path) -> None:
    rows = [
        (
            "2024-03-01,007GD7,ml-train,8025,Compute Engine,6F81,europe-west4-a,europe-west4,12,"
            "1587.3,588.8,10,400,105.8,986.8"
        ),
        "202402,007GD7,,,Cloud Storage,95FF,us,,12,,,1,2,3,4",  # totals from the scopes
        "2024-13-01,007GD7,ml-train,8025,BigQuery,24E6,us,us-central1,12,1,1,,,,",
    ]
    found, quarantine, _ = _read(_write(tmp_path / "gcp.csv", GCP_FLAT_HEADER, rows), "gcp_carbon")
    first, second = found.to_dict("records")
    assert first["provider"] == "gcp" and first["account_id"] == "ml-train"
    assert first["co2e_location_kg"] == pytest.approx(1587.3)  # already kg
    assert first["co2e_market_kg"] == pytest.approx(588.8)
    assert first["region_id"] == "europe-west4" and first["service"] == "Compute Engine"
    assert first["model_version"] == "12"
    assert (first["period_start"], first["period_end"]) == (T("2024-03-01", tz="UTC"),
                                                            T("2024-04-01", tz="UTC"))  # fmt: skip
    assert (second["period_start"], second["period_end"]) == (T("2024-02-01", tz="UTC"),
                                                              T("2024-03-01", tz="UTC"))  # fmt: skip
    assert second["account_id"] == "007GD7" and second["region_id"] is None
    assert (second["co2e_location_kg"], second["co2e_market_kg"]) == (7.0, 8.0)
    assert quarantine["reason"].tolist() == ["usage_month is not a date: 2024-13-01"]


def test_gcp_nested_json_lines(tmp_path: Path) -> None:
    records = [
        _gcp_record(),
        _gcp_record(usage_month="2024-02-01", carbon_footprint_total_kgCO2e=None, project=None),
        _gcp_record(carbon_footprint_total_kgCO2e="oops"),
        _gcp_record(carbon_footprint_total_kgCO2e={"location_based": "x", "market_based": 1}),
    ]
    path = tmp_path / "gcp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "{not json\n")
    found, quarantine, rows_read = _read(path)
    assert rows_read == 5 and len(found) == 2
    first, second = found.to_dict("records")
    assert first["co2e_location_kg"] == pytest.approx(1587.3)
    assert first["co2e_market_kg"] == pytest.approx(588.8)
    assert first["account_id"] == "ml-train" and first["region_id"] == "europe-west4"
    assert first["period_end"] == T("2024-04-01", tz="UTC") and first["model_version"] == "12"
    assert second["co2e_location_kg"] == pytest.approx(10 + 400 + 986.8)  # from the scopes
    assert second["co2e_market_kg"] == pytest.approx(10 + 105.8 + 986.8)
    assert second["account_id"] == "007GD7-15C0E6-BDE6B3"  # no project: billing account
    by_line = dict(zip(quarantine["line"], quarantine["reason"], strict=True))
    assert by_line[3] == "carbon_footprint_total_kgCO2e is not a JSON object"
    assert "carbon_footprint_total_kgCO2e.location_based is not a number: x" in by_line[4]
    assert by_line[5].startswith("not valid JSON")


def test_unknown_header_quarantined_whole(tmp_path: Path) -> None:
    path = _write(tmp_path / "ccft.csv", "Month,Service,Emissions", ["2024-03,EC2,0.1"] * 3)
    found, quarantine, rows_read = _read(path)
    assert found.empty and rows_read == 3 and len(quarantine) == 3
    assert set(quarantine["check"]) == {"format"}
    assert "matches no vendor carbon export" in quarantine["reason"].iloc[0]
    assert "Month, Service, Emissions" in quarantine["reason"].iloc[0]


def test_kind_mismatch_quarantined(tmp_path: Path) -> None:
    path = _write(tmp_path / "aws.csv", AWS_HEADER, AWS_ROWS)
    found, quarantine, _ = _read(path, "gcp_carbon")
    assert found.empty and len(quarantine) == 2
    assert "looks like a aws_carbon export" in quarantine["reason"].iloc[0]


def test_unreadable_files_never_raise(tmp_path: Path) -> None:
    broken = tmp_path / "aws.csv.gz"
    broken.write_bytes(gzip.compress((AWS_HEADER + "\n" + AWS_ROWS[0] + "\n").encode())[:-12])
    for path in (broken, tmp_path / "missing.csv"):
        found, quarantine, rows_read = _read(path)
        assert found.empty and rows_read == 1
        assert quarantine["check"].tolist() == ["file"]
        assert quarantine["reason"].iloc[0].startswith("cannot read the file")
    with pytest.raises(ValueError, match="unknown vendor carbon kind"):
        read_vendor_carbon(broken, "x", "azure_carbon")


def test_field_count_errors_are_counted(tmp_path: Path) -> None:
    path = _write(tmp_path / "aws.csv", AWS_HEADER, [AWS_ROWS[0], "a,b,c", ""])
    found, quarantine, rows_read = _read(path)
    assert (len(found), rows_read) == (1, 2)
    assert quarantine["check"].tolist() == ["field_count"]


def test_header_only_file(tmp_path: Path) -> None:
    found, quarantine, rows_read = _read(_write(tmp_path / "aws.csv", AWS_HEADER, []))
    assert found.empty and quarantine.empty and rows_read == 0
