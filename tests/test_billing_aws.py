"""AWS CUR reader: the real legacy sample, plus small hand-built legacy, Athena and CUR 2.0 files."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reporting.ingest.billing import aws_cur, common

BILLING = Path(__file__).parent / "fixtures" / "billing"
SAMPLE = BILLING / "focus_converters_sample-anonymous-aws-cur-legacy.csv"

# One EC2 hour, legacy spelling; tests override what they are about.
BASE = {
    "identity/LineItemId": "li-1",
    "bill/PayerAccountId": "111122223333",
    "bill/BillingPeriodStartDate": "2024-03-01T00:00:00.000Z",
    "lineItem/UsageAccountId": "444455556666",
    "lineItem/LineItemType": "Usage",
    "lineItem/UsageStartDate": "2024-03-05T10:00:00.000Z",
    "lineItem/UsageEndDate": "2024-03-05T11:00:00.000Z",
    "lineItem/ProductCode": "AmazonEC2",
    "lineItem/UsageType": "USE1-BoxUsage:p4d.24xlarge",
    "lineItem/UsageAmount": "1",
    "lineItem/CurrencyCode": "USD",
    "lineItem/UnblendedCost": "32.7726",
    "pricing/term": "OnDemand",
    "pricing/unit": "Hrs",
    "product/region": "us-east-1",
    "product/productFamily": "Compute Instance",
}


def write_cur(path: Path, rows: list[dict[str, str]], drop: tuple[str, ...] = ()) -> Path:
    """A CUR CSV (gzip if the name says so) whose header is every key used, in first-seen order."""
    header = [k for k in dict.fromkeys(k for row in rows for k in row) if k not in drop]
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, header, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def read(path: Path) -> tuple[common.RawTable, common.FamilyRead]:
    table = common.read_raw(path, path.name)
    return table, aws_cur.read(table, path.name)


def by_name(charges: pd.DataFrame, column: str) -> dict[str, object]:
    """A charges column keyed by charge_description (the tests name each line there)."""
    return dict(zip(charges["charge_description"], charges[column], strict=True))


# ---- the real legacy sample ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    with open(SAMPLE, encoding="utf-8-sig", newline="") as stream:
        rows = list(csv.DictReader(stream))
    table, result = read(SAMPLE)
    return rows, table, result


def test_sample_every_row_accounted_for(sample) -> None:
    rows, table, result = sample
    assert table.rows_read == len(rows) == 1281
    assert len(result.charges) + len(result.quarantine) + len(table.quarantine) == table.rows_read
    assert len(result.quarantine) == 0
    assert set(result.charges["provider"]) == {"aws"}
    assert set(result.charges["family"]) == {"aws_cur"}


def test_sample_cost_per_currency_matches_the_file(sample) -> None:
    rows, _, result = sample
    expected: dict[str, Decimal] = {}
    for row in rows:
        currency = row["lineItem/CurrencyCode"]
        expected[currency] = expected.get(currency, Decimal(0)) + Decimal(
            row["lineItem/UnblendedCost"]
        )
    got = result.charges.groupby("currency")["billed_cost"].sum()
    assert set(got.index) == set(expected) == {"USD"}
    for currency, total in expected.items():
        assert round(Decimal(str(got[currency])), 2) == round(total, 2)
    # Only plain Usage/Tax lines: the amortised basis equals the cash basis.
    assert result.charges["effective_cost"].sum() == pytest.approx(float(expected["USD"]))


def test_sample_charge_categories_match_line_item_types(sample) -> None:
    rows, _, result = sample
    types = Counter(row["lineItem/LineItemType"] for row in rows)
    assert types == {"Usage": 1269, "Tax": 12}
    got = result.charges["charge_category"].value_counts().to_dict()
    assert got == {"Usage": types["Usage"], "Tax": types["Tax"]}


def test_sample_fields(sample) -> None:
    _, _, result = sample
    charges = result.charges
    assert set(charges["billing_account_id"]) == {"123412340534"}
    assert charges["charge_period_start"].notna().all()
    assert (charges["charge_period_end"] >= charges["charge_period_start"]).all()
    assert set(charges["pricing_category"].dropna()) == {"Standard"}
    assert "global" not in set(charges["region_id"].dropna())
    assert "Amazon Simple Storage Service" in set(charges["service_name"])
    assert (charges["service_category"] == "Networking").sum() == 446  # Data Transfer lines


def test_detection_and_generation(sample) -> None:
    _, table, _ = sample
    assert aws_cur.detect(table.columns)
    assert aws_cur.cur_generation(table.columns) == "legacy"
    with open(BILLING / "focus-sample-data_1.0_focus_sample.csv", encoding="utf-8-sig") as stream:
        focus_header = next(csv.reader(stream))
    assert not aws_cur.detect(focus_header)
    athena = ["line_item_unblended_cost", "line_item_usage_start_date", "resource_tags_user_team"]
    assert aws_cur.detect(athena)
    assert aws_cur.cur_generation(athena) == "legacy"
    assert aws_cur.cur_generation([*athena[:2], "resource_tags"]) == "cur2"
    assert aws_cur.cur_generation([*athena[:2], "bill_payer_account_name"]) == "cur2"


# ---- synthetic legacy files -------------------------------------------------------------


def test_resource_tag_columns_become_tags(tmp_path: Path) -> None:
    rows = [
        BASE | {"lineItem/LineItemDescription": "tagged",
                "resourceTags/user:Team": "vision", "resourceTags/user:cost-center": "CC1",
                "resourceTags/aws:createdBy": "AssumedRole:ABC"},
        BASE | {"lineItem/LineItemDescription": "untagged"},
    ]  # fmt: skip
    _, result = read(write_cur(tmp_path / "cur.csv", rows))
    tags = by_name(result.charges, "tags")
    assert json.loads(tags["tagged"]) == {
        "team": "vision",
        "cost-center": "CC1",
        "aws:createdby": "AssumedRole:ABC",
    }
    assert tags["untagged"] == "{}"


def test_headers_match_case_insensitively_and_instance_from_usage_type(tmp_path: Path) -> None:
    row = {k.upper(): v for k, v in BASE.items()} | {"PRODUCT/VCPU": "96"}
    _, result = read(write_cur(tmp_path / "cur.csv", [row]))
    charge = result.charges.iloc[0]
    assert charge["billed_cost"] == pytest.approx(32.7726)
    assert charge["resource_type"] == "p4d.24xlarge"
    assert charge["vcpus"] == 96
    assert charge["service_category"] == "Compute"
    assert charge["region_id"] == "us-east-1"
    assert charge["service_name"] == "AmazonEC2"  # no product/ProductName: the product code
    assert charge["consumed_unit"] == "Hrs"


def test_gzip_csv(tmp_path: Path) -> None:
    table, result = read(write_cur(tmp_path / "cur-00001.csv.gz", [BASE, BASE | {"x": "1"}]))
    assert table.error is None
    assert len(result.charges) == 2
    assert result.charges["billed_cost"].sum() == pytest.approx(65.5452)


def test_athena_snake_case(tmp_path: Path) -> None:
    row = {
        "identity_line_item_id": "a1",
        "bill_payer_account_id": "111122223333",
        "line_item_usage_account_id": "444455556666",
        "line_item_line_item_type": "Usage",
        "line_item_usage_start_date": "2024-03-05 10:00:00",
        "line_item_usage_end_date": "2024-03-05 11:00:00",
        "line_item_usage_type": "EUC1-SpotUsage:g5.xlarge",
        "line_item_unblended_cost": "0.45",
        "line_item_currency_code": "eur",
        "line_item_line_item_description": "spot",
        "product_instance_type": "g5.xlarge",
        "product_region": "eu-central-1",
        "pricing_term": "",
        "resource_tags_user_team": "speech",
        "resource_tags_user_project": "",
    }
    table, result = read(write_cur(tmp_path / "athena.csv", [row]))
    assert aws_cur.detect(table.columns)
    assert aws_cur.cur_generation(table.columns) == "legacy"
    charge = result.charges.iloc[0]
    assert charge["currency"] == "EUR"
    assert charge["resource_type"] == "g5.xlarge"
    assert charge["region_id"] == "eu-central-1"
    assert charge["pricing_category"] == "Dynamic"  # blank term, SpotUsage
    assert json.loads(charge["tags"]) == {"team": "speech"}
    assert str(charge["charge_period_start"]) == "2024-03-05 10:00:00+00:00"


def test_cur2_parquet_with_map_columns(tmp_path: Path) -> None:
    utc = pa.timestamp("ms", tz="UTC")
    text_map = pa.map_(pa.string(), pa.string())
    table = pa.table(
        {
            "bill_payer_account_id": pa.array(["111122223333"] * 2),
            "bill_payer_account_name": pa.array(["Payer"] * 2),
            "bill_billing_period_start_date": pa.array([1709251200000] * 2, utc),
            "line_item_usage_account_id": pa.array(["444455556666"] * 2),
            "line_item_usage_account_name": pa.array(["ml-research"] * 2),
            "line_item_line_item_type": pa.array(["Usage", "Usage"]),
            "line_item_usage_start_date": pa.array([1709632800000] * 2, utc),
            "line_item_usage_end_date": pa.array([1709636400000] * 2, utc),
            "line_item_usage_type": pa.array(["USE1-BoxUsage:p4d.24xlarge", "USE1-DataXfer"]),
            "line_item_line_item_description": pa.array(["gpu", "transfer"]),
            "line_item_unblended_cost": pa.array([32.7726, 0.09], pa.float64()),
            "line_item_currency_code": pa.array(["USD", "USD"]),
            "pricing_public_on_demand_cost": pa.array([32.7726, None], pa.float64()),
            "resource_tags": pa.array(
                [[("user_team", "vision"), ("user_cost_center", "CC1")], []], text_map
            ),
            "product": pa.array(
                [
                    [
                        ("instance_type", "p4d.24xlarge"),
                        ("region", "us-east-1"),
                        ("vcpu", "96"),
                        ("product_name", "Amazon Elastic Compute Cloud"),
                    ],
                    [],
                ],
                text_map,
            ),
        }
    )
    path = tmp_path / "cur2-00001.snappy.parquet"
    pq.write_table(table, path)
    raw, result = read(path)
    assert aws_cur.detect(raw.columns)
    assert aws_cur.cur_generation(raw.columns) == "cur2"
    assert len(result.charges) == 2 and len(result.quarantine) == 0
    gpu = result.charges.set_index("charge_description").loc["gpu"]
    assert json.loads(gpu["tags"]) == {"team": "vision", "cost_center": "CC1"}
    assert gpu["resource_type"] == "p4d.24xlarge"
    assert gpu["vcpus"] == 96
    assert gpu["region_id"] == "us-east-1"
    assert gpu["service_name"] == "Amazon Elastic Compute Cloud"
    assert gpu["sub_account_name"] == "ml-research"
    assert str(gpu["charge_period_start"]) == "2024-03-05 10:00:00+00:00"
    assert str(gpu["billing_period_start"]) == "2024-03-01 00:00:00+00:00"
    assert by_name(result.charges, "tags")["transfer"] == "{}"


# ---- commitments, credits and amortised cost --------------------------------------------


def test_effective_cost_and_commitments(tmp_path: Path) -> None:
    def line(kind: str, cost: str, extra: dict[str, str] | None = None, name: str = "") -> dict:
        described = {"lineItem/LineItemDescription": name or kind, "lineItem/LineItemType": kind}
        return BASE | described | {"lineItem/UnblendedCost": cost} | (extra or {})

    ri_unused = "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod"
    rows = [
        line(
            "SavingsPlanCoveredUsage",
            "10.00",
            {"savingsPlan/SavingsPlanEffectiveCost": "6.50", "pricing/term": "Savings Plan"},
        ),
        line("SavingsPlanNegation", "-10.00"),
        line(
            "SavingsPlanRecurringFee",
            "8.00",
            {"savingsPlan/TotalCommitmentToDate": "8.00", "savingsPlan/UsedCommitment": "6.50"},
        ),
        line("DiscountedUsage", "0", {"reservation/EffectiveCost": "3.20", "pricing/term": ""}),
        line("RIFee", "50.00", {ri_unused: "4.00", "reservation/UnusedRecurringFee": "2.50"}),
        line(
            "RIFee",
            "50.00",
            {ri_unused: "0", "reservation/UnusedRecurringFee": "0"},
            name="RIFee used",
        ),
        line("Credit", "-5.00"),
        line("Refund", "-2.25"),
        line("Tax", "1.10", {"pricing/term": ""}),
        line("SomethingNewFromAws", "0.40"),
    ]
    _, result = read(write_cur(tmp_path / "commitments.csv", rows))
    assert len(result.quarantine) == 0
    effective = by_name(result.charges, "effective_cost")
    assert effective == pytest.approx({
        "SavingsPlanCoveredUsage": 6.50,  # the plan's rate, not the on-demand 10.00
        "SavingsPlanNegation": 0.0,  # cancels on-demand cost that is no longer owed
        "SavingsPlanRecurringFee": 1.50,  # 8.00 committed − 6.50 used: the unused part only
        "DiscountedUsage": 3.20,
        "RIFee": 6.50,  # 4.00 unused upfront + 2.50 unused recurring
        "RIFee used": 0.0,
        "Credit": -5.00,
        "Refund": -2.25,
        "Tax": 1.10,
        "SomethingNewFromAws": 0.40,
    })  # fmt: skip
    # Cash basis 10 − 10 + 8 + 0 + 50 + 50 − 5 − 2.25 + 1.10 + 0.40 = 102.25;
    # amortised 6.50 + 0 + 1.50 + 3.20 + 6.50 + 0 − 5 − 2.25 + 1.10 + 0.40 = 11.95.
    assert result.charges["billed_cost"].sum() == pytest.approx(102.25)
    assert result.charges["effective_cost"].sum() == pytest.approx(11.95)
    assert by_name(result.charges, "charge_category") == {
        "SavingsPlanCoveredUsage": "Usage", "SavingsPlanNegation": "Credit",
        "SavingsPlanRecurringFee": "Purchase", "DiscountedUsage": "Usage", "RIFee": "Purchase",
        "RIFee used": "Purchase", "Credit": "Credit", "Refund": "Credit", "Tax": "Tax",
        "SomethingNewFromAws": "Adjustment",
    }  # fmt: skip
    status = by_name(result.charges, "commitment_status")
    assert status["SavingsPlanCoveredUsage"] == status["DiscountedUsage"] == "Used"
    assert status["SavingsPlanRecurringFee"] == status["RIFee"] == "Unused"
    assert status["RIFee used"] is None and status["Credit"] is None
    pricing = by_name(result.charges, "pricing_category")
    assert pricing["SavingsPlanCoveredUsage"] == pricing["DiscountedUsage"] == "Committed"
    assert pricing["Credit"] == "Standard" and pricing["Tax"] is None


def test_negative_rows_are_kept(tmp_path: Path) -> None:
    rows = [BASE | {"lineItem/LineItemType": "Credit", "lineItem/UnblendedCost": "-12.5"},
            BASE | {"lineItem/LineItemType": "Usage", "lineItem/UnblendedCost": "-0.01"}]  # fmt: skip
    _, result = read(write_cur(tmp_path / "cur.csv", rows))
    assert sorted(result.charges["billed_cost"]) == [-12.5, -0.01]
    assert len(result.quarantine) == 0


# ---- bad input ------------------------------------------------------------------------------


def test_bad_rows_are_quarantined_with_the_column_named(tmp_path: Path) -> None:
    rows = [
        BASE | {"identity/LineItemId": "good"},
        BASE | {"identity/LineItemId": "hour30", "lineItem/UsageEndDate": "2023-02-01T30:00:00Z"},
        BASE | {"identity/LineItemId": "abc", "lineItem/UnblendedCost": "abc"},
        BASE | {"identity/LineItemId": "qty", "lineItem/UsageAmount": "1,5"},
        BASE
        | {"identity/LineItemId": "backwards", "lineItem/UsageEndDate": "2024-03-05T09:00:00Z"},
        BASE | {"identity/LineItemId": "nocurrency", "lineItem/CurrencyCode": ""},
        BASE | {"identity/LineItemId": "nocost", "lineItem/UnblendedCost": ""},
    ]
    table, result = read(write_cur(tmp_path / "bad.csv", rows))
    assert len(result.charges) == 1
    assert len(result.charges) + len(result.quarantine) == table.rows_read == 7
    reasons = {raw.split(",")[0]: reason
               for raw, reason in zip(result.quarantine["raw"], result.quarantine["reason"],
                                      strict=True)}  # fmt: skip
    assert reasons["hour30"] == ("lineItem/UsageEndDate is not a valid time: 2023-02-01T30:00:00Z")
    assert reasons["abc"] == "lineItem/UnblendedCost is not a number: 'abc'"
    assert reasons["qty"] == "lineItem/UsageAmount is not a number: '1,5'"
    assert reasons["backwards"] == "lineItem/UsageEndDate is before lineItem/UsageStartDate"
    assert reasons["nocurrency"].startswith("lineItem/CurrencyCode is not an ISO 4217 code")
    assert reasons["nocost"] == "lineItem/UnblendedCost is empty"
    assert set(result.quarantine["line"]) == {3, 4, 5, 6, 7, 8}


@pytest.mark.parametrize(
    ("dropped", "named"),
    [("lineItem/UnblendedCost", "lineItem/UnblendedCost"),
     ("lineItem/UsageStartDate", "lineItem/UsageStartDate")],
)  # fmt: skip
def test_missing_required_column_quarantines_every_row(
    tmp_path: Path, dropped: str, named: str
) -> None:
    rows = [BASE, BASE | {"identity/LineItemId": "li-2"}]
    table, result = read(
        write_cur(tmp_path / "cur.csv", rows, drop=(dropped, "identity/TimeInterval"))
    )
    assert aws_cur.detect(table.columns)  # still recognised, so the file is not silently skipped
    assert len(result.charges) == 0
    assert len(result.quarantine) == 2
    assert set(result.quarantine["check"]) == {"required_column"}
    assert all(named in reason for reason in result.quarantine["reason"])


def test_time_interval_stands_in_for_usage_dates(tmp_path: Path) -> None:
    row = BASE | {"identity/TimeInterval": "2024-03-05T00:00:00Z/2024-03-06T00:00:00Z"}
    path = write_cur(tmp_path / "cur.csv", [row], drop=("lineItem/UsageStartDate",
                                                        "lineItem/UsageEndDate"))  # fmt: skip
    _, result = read(path)
    charge = result.charges.iloc[0]
    assert str(charge["charge_period_start"]) == "2024-03-05 00:00:00+00:00"
    assert str(charge["charge_period_end"]) == "2024-03-06 00:00:00+00:00"
