"""FinOps FOCUS 1.0–1.2 exports → charges.

Real exports drift from the spec, and this reader accepts the drift it has seen: literal
`NULL` and empty strings for nulls, timestamps without `T`/`Z` (the official sample), enum case
drift (`Usage-based`), KeyValue tags as JSON object text (keys with stray spaces), and the 1.3
drafts' `ServiceProviderName` in place of `ProviderName`.
"""

from __future__ import annotations

import re

import pandas as pd

from reporting.ingest.billing.common import (
    CATEGORIES,
    FamilyRead,
    RawTable,
    RowProblems,
    column_lookup,
    finish_charges,
    map_distinct,
    missing_columns,
    normalise_name,
    parse_decimal,
    parse_tags_object,
    parse_time,
    tags_json,
    text,
)

FAMILY = "focus"
_REQUIRED = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd")
_PROVIDERS = {
    "aws": "aws",
    "amazon web services": "aws",
    "amazon web services, inc.": "aws",
    "microsoft": "azure",
    "microsoft azure": "azure",
    "azure": "azure",
    "google cloud": "gcp",
    "google": "gcp",
    "gcp": "gcp",
    "google cloud platform": "gcp",
    "oracle": "oracle",
    "oci": "oracle",
}
# An instance size in a charge description: `m5.2xlarge`, `p4d.24xlarge`, `Standard_ND96asr_v4`.
_INSTANCE = re.compile(
    r"\b([a-z][a-z0-9-]*\d[a-z0-9-]*\.(?:\d*x?large|medium|small|micro|nano|metal(?:-\d+xl)?))\b"
    r"|\b(Standard_[A-Za-z0-9_]+)\b"
)


def detect(columns: list[str]) -> bool:
    names = {c.lower() for c in columns}
    return {"billedcost", "chargeperiodstart", "chargecategory"} <= names


def read(table: RawTable, source_file: str) -> FamilyRead:
    records = table.records
    col = column_lookup(table.columns)
    missing = [c for c in _REQUIRED if normalise_name(c) not in col]
    problems = RowProblems()
    if missing:
        return missing_columns(
            records,
            FAMILY,
            source_file,
            f"the file has no {', '.join(missing)} column (FOCUS requires it)",
        )

    read_once: dict[str, pd.Series] = {}

    def get(name: str) -> pd.Series:
        if name not in read_once:
            read_once[name] = text(records, col.get(normalise_name(name)))
        return read_once[name]

    def said(name: str, bad: pd.Series, empty: str) -> pd.Series:
        """The column's text on the rows found bad, for their reasons (no text for the rest)."""
        return get(name).fillna(empty)[bad.fillna(False).astype(bool)]

    frame = pd.DataFrame(index=records.index)
    for target, source in (
        ("billed_cost", "BilledCost"),
        ("effective_cost", "EffectiveCost"),
        ("list_cost", "ListCost"),
        ("consumed_quantity", "ConsumedQuantity"),
    ):
        values, bad = parse_decimal(get(source))
        frame[target] = values
        problems.add(bad, "number", f"{source} is not a number: " + said(source, bad, ""))
    problems.add(frame["billed_cost"].isna(), "required_value", "BilledCost is empty")
    for target, source in (
        ("charge_period_start", "ChargePeriodStart"),
        ("charge_period_end", "ChargePeriodEnd"),
        ("billing_period_start", "BillingPeriodStart"),
    ):
        values, bad = parse_time(get(source))
        frame[target] = values
        problems.add(bad, "timestamp", f"{source} is not a valid time: " + said(source, bad, ""))
    problems.add(
        frame["charge_period_start"].isna(), "required_value", "ChargePeriodStart is empty"
    )
    problems.add(frame["charge_period_end"].isna(), "required_value", "ChargePeriodEnd is empty")
    problems.add(
        frame["charge_period_end"] < frame["charge_period_start"],
        "time_order",
        "ChargePeriodEnd is before ChargePeriodStart",
    )
    frame["currency"] = get("BillingCurrency").str.upper()
    bad = ~frame["currency"].fillna("").str.fullmatch(r"[A-Z]{3}")
    problems.add(
        bad,
        "currency",
        "BillingCurrency is not an ISO 4217 code: " + said("BillingCurrency", bad, "(empty)"),
    )
    frame["charge_category"] = _category(get("ChargeCategory"))
    bad = frame["charge_category"].isna()
    problems.add(
        bad,
        "enum",
        "ChargeCategory is not one of " + ", ".join(CATEGORIES) + ": "
        + said("ChargeCategory", bad, "(empty)"),
    )  # fmt: skip
    frame["tags"], bad_tags = _tags(get("Tags"))
    problems.add(bad_tags, "tags", "Tags is not a JSON object: " + said("Tags", bad_tags, ""))
    provider = get("ProviderName").fillna(get("ServiceProviderName"))
    frame["provider"] = provider_key(provider)
    frame["billing_account_id"] = get("BillingAccountId")
    frame["sub_account_id"] = get("SubAccountId")
    frame["sub_account_name"] = get("SubAccountName")
    frame["charge_description"] = get("ChargeDescription")
    frame["service_name"] = get("ServiceName")
    frame["service_category"] = get("ServiceCategory")
    frame["sku_id"] = get("SkuId")
    frame["resource_id"] = get("ResourceId")
    frame["region_id"] = get("RegionId").str.lower()
    frame["consumed_unit"] = get("ConsumedUnit")
    frame["pricing_category"] = _title(get("PricingCategory"))
    frame["commitment_status"] = _title(get("CommitmentDiscountStatus"))
    frame["usage_type"] = get("x_UsageType").fillna(frame["charge_description"])
    described = map_distinct(frame["charge_description"], _described_instance)
    frame["resource_type"] = get("x_InstanceType").fillna(described).fillna(get("ResourceType"))
    frame["line"] = records["line"]
    frame["raw"] = records["raw"]
    bad = problems.mask(records.index)
    return FamilyRead(
        finish_charges(frame[~bad] if bad.any() else frame, FAMILY, source_file),
        problems.quarantine(records, source_file),
    )


def _described_instance(description: str | None) -> str | None:
    """The first instance size named in a charge description, or None."""
    match = _INSTANCE.search(description or "")
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def _category(values: pd.Series) -> pd.Series:
    known = {c.lower(): c for c in CATEGORIES}
    return map_distinct(values, lambda v: known.get(v.lower()) if isinstance(v, str) else None)


def _title(values: pd.Series) -> pd.Series:
    return map_distinct(
        values, lambda v: v[:1].upper() + v[1:].lower() if isinstance(v, str) and v else None
    )


def _tags(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    parsed = map_distinct(values, _tags_text)
    bad = parsed.isna()
    return parsed.fillna("{}"), bad


def _tags_text(value: str | None) -> str | None:
    """Tags as normalised JSON text; None when they are not a JSON object."""
    parsed = parse_tags_object(value)
    return tags_json(parsed) if parsed is not None else None


def provider_key(names: pd.Series) -> pd.Series:
    """ProviderName as written → the provider key the other families use (`aws`, `gcp`, ...)."""
    return map_distinct(
        names, lambda p: _PROVIDERS.get(p.lower(), p.lower()) if isinstance(p, str) else None
    ).astype(object)
