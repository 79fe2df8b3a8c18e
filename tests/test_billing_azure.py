"""Azure Cost Management reader: real EA samples plus synthetic MCA, PAYG v1, localised files."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from reporting.ingest.billing import azure, common

BILLING = Path(__file__).parent / "fixtures" / "billing"
ACTUAL = "finops-toolkit_EA_ActualCost_Small.csv"
AMORTISED = "finops-toolkit_EA_AmortizedCost_Small.csv"
CONVERTERS = "focus_converters_sample-anonymous-ea-export-dataset.csv"
EA = ["SubscriptionId", "Date", "MeterCategory", "MeterSubCategory", "MeterName", "Quantity",
      "UnitOfMeasure", "Cost", "BillingCurrency", "ChargeType", "PricingModel", "Tags"]  # fmt: skip


def load(path: Path, **options: bool) -> tuple[common.RawTable, common.FamilyRead]:
    table = common.read_raw(path, path.name)
    return table, azure.read(table, path.name, **options)


def write(tmp_path: Path, header: list[str], rows: list[list[str]], *, bom: bool = False) -> Path:
    path = tmp_path / "export.csv"
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as stream:
        csv.writer(stream).writerows([header, *rows])
    return path


def ea_row(**values: str) -> list[str]:
    """One EA row: a day of on-demand VM usage unless told otherwise."""
    base = {"SubscriptionId": "sub-1", "Date": "09/21/2023", "MeterCategory": "Virtual Machines",
            "MeterSubCategory": "BS Series", "MeterName": "B1s", "Quantity": "1",
            "UnitOfMeasure": "1 Hour", "Cost": "1.5", "BillingCurrency": "USD",
            "ChargeType": "Usage", "PricingModel": "OnDemand", "Tags": ""}  # fmt: skip
    return [(base | values)[c] for c in EA]


def cost_by_currency(path: Path) -> dict[str, float]:
    """The file's own total per currency, read with the csv module alone."""
    totals: dict[str, float] = defaultdict(float)
    with open(path, encoding="utf-8-sig", newline="") as stream:
        for row in csv.DictReader(stream):
            cost = row.get("Cost", row.get("CostInBillingCurrency"))
            currency = row.get("BillingCurrency", row.get("BillingCurrencyCode"))
            totals[currency] += float(cost)
    return dict(totals)


# ---- real samples ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [ACTUAL, AMORTISED, CONVERTERS])
def test_real_sample_accounts_for_every_row_and_cent(name: str) -> None:
    table, result = load(BILLING / name)
    assert azure.detect(table.columns)
    assert len(result.charges) + len(result.quarantine) + len(table.quarantine) == table.rows_read
    assert len(result.quarantine) == 0
    totals = result.charges.groupby("currency")["billed_cost"].sum().to_dict()
    expected = cost_by_currency(BILLING / name)
    assert totals.keys() == expected.keys()
    for currency, total in expected.items():
        assert round(totals[currency], 2) == round(total, 2)
    assert (result.charges["provider"] == "azure").all()
    assert (result.charges["family"] == "azure_cost").all()
    assert (
        (result.charges["charge_period_end"] - result.charges["charge_period_start"])
        .eq(pd.Timedelta(days=1))
        .all()
    )


@pytest.mark.parametrize(
    ("name", "view"), [(ACTUAL, "actual"), (AMORTISED, "amortised"), (CONVERTERS, "actual")]
)
def test_cost_view(name: str, view: str) -> None:
    table = common.read_raw(BILLING / name, name)
    assert azure.cost_view(table.columns, table.records) == view


def test_focus_header_is_not_azure() -> None:
    table = common.read_raw(BILLING / "focus-sample-data_1.0_focus_sample.csv", "focus")
    assert not azure.detect(table.columns)


def test_actual_sample_values() -> None:
    _, result = load(BILLING / ACTUAL)
    charges = result.charges.set_index("line")
    purchase = charges.loc[2]  # the B1s reservation purchase, 09/21/2023
    assert purchase["charge_category"] == "Purchase"
    assert purchase["pricing_category"] == "Committed"
    assert purchase["commitment_status"] is None
    assert purchase["charge_period_start"] == pd.Timestamp("2023-09-21", tz="UTC")
    assert purchase["billing_period_start"] == pd.Timestamp("2023-09-01", tz="UTC")
    assert purchase["region_id"] == "uksouth"
    assert purchase["usage_type"] == "Virtual Machines | BS Series | B1s"
    blob = charges.loc[3]  # Quantity 0.0004 of `10K` operations = 4 operations
    assert blob["consumed_quantity"] == pytest.approx(4.0)
    assert blob["consumed_unit"] == "Units"
    assert blob["list_cost"] == pytest.approx(0.1 * 0.0004)  # PayGPrice × unscaled Quantity
    assert json.loads(blob["tags"])["databricks-environment"] == "true"  # tags without braces
    vm = charges.loc[5]
    assert vm["resource_type"] == "Standard_D2s_v3"
    assert vm["region_id"] == "southcentralus"
    assert vm["service_category"] == "Compute"
    assert charges.loc[12]["resource_type"] is None  # ServiceType SQLThreatDetection: no VM size


def test_amortised_sample_marks_used_commitment() -> None:
    _, result = load(BILLING / AMORTISED)
    used = result.charges[result.charges["commitment_status"] == "Used"]
    assert len(used) == 2  # one Reservation and one SavingsPlan usage row
    assert set(used["resource_type"]) == {"Standard_DS2_v2", "Standard_B2s"}
    assert used["vcpus"].tolist() == [2.0, 2.0]
    assert (used["pricing_category"] == "Committed").all()


# ---- header families ---------------------------------------------------------------------


def test_mca_camel_case_with_mixed_casing(tmp_path: Path) -> None:
    header = ["billingAccountId", "subscriptionId", "subscriptionName", "date", "meterCategory",
              "meterName", "ProductId", "InstanceName", "resourceLocation", "quantity",
              "unitOfMeasure", "chargeType", "billingCurrency", "costInBillingCurrency",
              "costInUsd", "paygCostInBillingCurrency", "tags", "additionalInfo"]  # fmt: skip
    row = ["ba-1", "sub-1", "Research", "2023-09-22", "Virtual Machines", "D2 v3", "p1",
           "/subscriptions/sub-1/vm1", "UK South", "24", "1 Hour", "Usage", "eur", "2.40",
           "2.60", "3.00", '{"team": "ml"}', '{"ServiceType": "Standard_D2_v3", "VCPUs": 2}']  # fmt: skip
    table, result = load(write(tmp_path, header, [row]))
    assert azure.detect(table.columns)
    charge = result.charges.iloc[0]
    assert charge["billed_cost"] == 2.40  # costInBillingCurrency, not costInUsd
    assert charge["currency"] == "EUR"
    assert charge["list_cost"] == 3.00
    assert charge["billing_account_id"] == "ba-1"
    assert charge["sub_account_name"] == "Research"
    assert charge["resource_id"] == "/subscriptions/sub-1/vm1"
    assert charge["region_id"] == "uksouth"
    assert charge["resource_type"] == "Standard_D2_v3"
    assert charge["vcpus"] == 2.0
    assert charge["tags"] == '{"team": "ml"}'
    assert charge["charge_period_start"] == pd.Timestamp("2023-09-22", tz="UTC")


def test_payg_v1(tmp_path: Path) -> None:
    header = ["SubscriptionGuid", "ResourceGroup", "ResourceLocation", "UsageDateTime",
              "MeterCategory", "MeterSubcategory", "MeterId", "MeterName", "MeterRegion",
              "UsageQuantity", "ResourceRate", "PreTaxCost", "ConsumedService", "ResourceType",
              "InstanceId", "Tags", "OfferId", "AdditionalInfo", "ServiceInfo1", "ServiceInfo2",
              "ServiceName", "ServiceTier", "Currency", "UnitOfMeasure"]  # fmt: skip
    row = ["sub-9", "rg", "EastUS", "2019-07-29 00:00:00", "Storage", "General Block Blob",
           "m-1", "LRS Data Stored", "US East", "3", "0.02", "0.06", "Microsoft.Storage",
           "Microsoft.Storage/storageAccounts", "/subscriptions/sub-9/sa", '{"env":"dev"}',
           "MS-AZR-0003P", "", "", "", "Storage", "Standard", "USD", "1 GB/Month"]  # fmt: skip
    table, result = load(write(tmp_path, header, [row]))
    assert azure.detect(table.columns)
    charge = result.charges.iloc[0]
    assert charge["sub_account_id"] == "sub-9"
    assert charge["charge_period_start"] == pd.Timestamp("2019-07-29", tz="UTC")
    assert charge["billed_cost"] == 0.06
    assert charge["consumed_quantity"] == 3.0
    assert charge["consumed_unit"] == "GB/Month"
    assert charge["charge_category"] == "Usage"  # no ChargeType column: all usage
    assert charge["pricing_category"] is None
    assert charge["sku_id"] == "m-1"
    assert charge["resource_id"] == "/subscriptions/sub-9/sa"
    assert charge["tags"] == '{"env": "dev"}'
    assert charge["service_category"] == "Storage"


def test_localised_german_header_day_first(tmp_path: Path) -> None:
    header = ["Abonnement-GUID (SubscriptionGuid)", "Name des Abonnements (SubscriptionName)",
              "Datum (Date)", "Kategorie der Verbrauchseinheit (MeterCategory)",
              "Verbrauchte Menge (UsageQuantity)", "Maßeinheit (UnitOfMeasure)",
              "Kosten (Cost)", "Währung (Currency)", "ID der Instanz (InstanceId)"]  # fmt: skip
    rows = [["sub-de", "Forschung", "02/09/2023", "Virtual Machines", "2", "10 Hours", "4,5",
             "EUR", "/subscriptions/sub-de/vm"],
            ["sub-de", "Forschung", "21.09.2023", "Virtual Machines", "1", "1 Hour", "1.25",
             "EUR", "/subscriptions/sub-de/vm"]]  # fmt: skip
    table, result = load(write(tmp_path, header, rows), day_first=True)
    assert azure.detect(table.columns)
    charge = result.charges.iloc[0]
    assert charge["charge_period_start"] == pd.Timestamp("2023-09-21", tz="UTC")
    assert charge["sub_account_name"] == "Forschung"
    assert charge["billed_cost"] == 1.25
    # A decimal comma is not guessed at: the row is quarantined naming the localised column.
    (reason,) = result.quarantine["reason"]
    assert reason.startswith("Kosten (Cost) is not a number")


def test_day_first_changes_the_reading(tmp_path: Path) -> None:
    path = write(tmp_path, EA, [ea_row(Date="02/09/2023")])
    _, month_first = load(path)
    _, day_first = load(path, day_first=True)
    assert month_first.charges["charge_period_start"][0] == pd.Timestamp("2023-02-09", tz="UTC")
    assert day_first.charges["charge_period_start"][0] == pd.Timestamp("2023-09-02", tz="UTC")


def test_bom_header(tmp_path: Path) -> None:
    header = ["SubscriptionGuid", "UsageDateTime", "MeterCategory", "UsageQuantity",
              "PreTaxCost", "Currency"]  # fmt: skip
    path = write(tmp_path, header, [["sub-1", "2020-09-22", "Bandwidth", "5", "0.5", "USD"]],
                 bom=True)  # fmt: skip
    assert path.read_bytes().startswith(b"\xef\xbb\xbfSubscriptionGuid")
    table, result = load(path)
    assert azure.detect(table.columns)
    assert result.charges["sub_account_id"][0] == "sub-1"
    assert result.charges["service_category"][0] == "Networking"


# ---- values ------------------------------------------------------------------------------


def test_tags_without_braces_and_bad_tags(tmp_path: Path) -> None:
    rows = [ea_row(Tags='"tagA": "valueA","Tag B ": "valueB"'), ea_row(Tags='"tagA": valueA')]
    _, result = load(write(tmp_path, EA, rows))
    assert json.loads(result.charges["tags"][0]) == {"taga": "valueA", "tag b": "valueB"}
    (row,) = result.quarantine.itertuples()
    assert row.check == "tags"
    assert row.line == 3
    assert "Tags" in row.reason


@pytest.mark.parametrize(
    ("unit", "quantity", "consumed", "consumed_unit"),
    [
        ("10 Hours", "0.5", 5.0, "Hours"),  # 0.5 × 10
        ("100 Hours", "0.25", 25.0, "Hours"),  # 0.25 × 100
        ("10K", "0.0083", 83.0, "Units"),  # 0.0083 × 10,000 operations
        ("1K", "0.428", 428.0, "Units"),
        ("1 GB/Month", "3", 3.0, "GB/Month"),
        ("1/Month", "0.033336", 0.033336, "Units/Month"),
        ("1 Hour", "24", 24.0, "Hours"),
    ],
)
def test_unit_of_measure_multipliers(
    tmp_path: Path, unit: str, quantity: str, consumed: float, consumed_unit: str
) -> None:
    _, result = load(write(tmp_path, EA, [ea_row(UnitOfMeasure=unit, Quantity=quantity)]))
    assert result.charges["consumed_quantity"][0] == pytest.approx(consumed)
    assert result.charges["consumed_unit"][0] == consumed_unit


def test_charge_types_and_commitments(tmp_path: Path) -> None:
    rows = [
        ea_row(ChargeType="Refund", Cost="-3.25", PricingModel="Reservation"),
        ea_row(ChargeType="UnusedReservation", Cost="0.40", PricingModel="Reservation"),
        ea_row(ChargeType="UnusedSavingsPlan", Cost="0.10", PricingModel="SavingsPlan"),
        ea_row(ChargeType="RoundingAdjustment", Cost="0.01", PricingModel=""),
        ea_row(ChargeType="Tax", Cost="0.20", PricingModel=""),
        ea_row(ChargeType="Usage", PricingModel="Spot"),
        ea_row(ChargeType="Usage", PricingModel="SavingsPlan", Cost="0"),
        ea_row(ChargeType="Mystery"),
    ]
    table, result = load(write(tmp_path, EA, rows))
    got = result.charges[["charge_category", "pricing_category", "commitment_status"]]
    assert got.values.tolist() == [
        ["Credit", "Committed", None],
        ["Usage", "Committed", "Unused"],
        ["Usage", "Committed", "Unused"],
        ["Adjustment", None, None],
        ["Tax", None, None],
        ["Usage", "Dynamic", None],
        ["Usage", "Committed", "Used"],
    ]
    assert result.charges["billed_cost"][0] == -3.25  # refunds stay negative
    assert result.quarantine["check"].tolist() == ["enum"]
    assert "ChargeType" in result.quarantine["reason"][0]
    assert azure.cost_view(table.columns, table.records) == "amortised"  # unused rows


def test_covered_usage_at_zero_is_actual(tmp_path: Path) -> None:
    rows = [ea_row(PricingModel="Reservation", Cost="0"), ea_row(ChargeType="Purchase")]
    table = common.read_raw(write(tmp_path, EA, rows), "x.csv")
    assert azure.cost_view(table.columns, table.records) == "actual"


def test_placeholders_read_as_missing(tmp_path: Path) -> None:
    header = [*EA, "ResourceLocation", "BillingAccountId", "ResourceId"]
    rows = [
        ea_row(SubscriptionId="00000000-0000-0000-0000-000000000000") + ["Unassigned", "-2", ""],
        ea_row() + ["Global", "ba", "-2"],
    ]
    _, result = load(write(tmp_path, header, rows))
    charges = result.charges
    assert charges["sub_account_id"].tolist() == [None, "sub-1"]
    assert charges["region_id"].tolist() == [None, None]
    assert charges["billing_account_id"].tolist() == [None, "ba"]
    assert charges["resource_id"].tolist() == [None, None]


def test_bad_values_quarantined_naming_the_column(tmp_path: Path) -> None:
    rows = [
        ea_row(),
        ea_row(Date="21/09/2023"),  # D/M/Y in an M/D/Y read
        ea_row(Cost="1.2.3"),
        ea_row(Quantity="lots"),
        ea_row(Cost=""),
        ea_row(BillingCurrency="dollars"),
        ea_row(Date=""),
    ]
    table, result = load(write(tmp_path, EA, rows))
    assert len(result.charges) == 1
    assert len(result.charges) + len(result.quarantine) == table.rows_read
    quarantine = result.quarantine.set_index("line")
    assert quarantine.loc[3, "check"] == "timestamp"
    assert quarantine.loc[3, "reason"] == "Date is not an M/D/Y or ISO date: 21/09/2023"
    assert quarantine.loc[4, "reason"] == "Cost is not a number: 1.2.3"
    assert quarantine.loc[5, "reason"] == "Quantity is not a number: lots"
    assert quarantine.loc[6, "reason"] == "Cost is empty"
    assert quarantine.loc[7, "check"] == "currency"
    assert quarantine.loc[8, "reason"] == "Date is empty"


@pytest.mark.parametrize(("dropped", "named"), [("Cost", "cost column"), ("Date", "date column")])
def test_missing_required_column_quarantines_every_row(
    tmp_path: Path, dropped: str, named: str
) -> None:
    keep = [i for i, c in enumerate(EA) if c != dropped]
    rows = [[r[i] for i in keep] for r in (ea_row(), ea_row(Cost="2"))]
    table, result = load(write(tmp_path, [EA[i] for i in keep], rows))
    assert azure.detect(table.columns)  # still recognised, so the problem is reported
    assert result.charges.empty
    assert len(result.quarantine) == table.rows_read == 2
    assert set(result.quarantine["check"]) == {"required_column"}
    assert all(named in reason and dropped in reason for reason in result.quarantine["reason"])
    assert list(result.charges.columns) == common.CHARGE_COLUMNS
