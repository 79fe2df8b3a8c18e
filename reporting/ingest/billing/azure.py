"""Azure Cost Management exports (EA / "Cost details", MCA, legacy pay-as-you-go) → charges.

Three header families are in use (PascalCase EA, camelCase MCA with mixed casing in one header,
legacy PAYG v1 with `UsageDateTime`/`PreTaxCost`), plus localised headers that carry the English
name in parentheses (`Abonnement-GUID (SubscriptionGuid)`). Every header is therefore reduced to
a key (English name, lower case, no separators) and each field is found through its aliases.
Rows are daily: the charge period is the `Date` day. Dates are M/D/Y or ISO; localised exports
that write D/M/Y need `read(..., day_first=True)` because `02/09/2023` is ambiguous.

An export is either *actual* (invoice basis: reservation purchases as `Purchase` rows, covered
usage at 0) or *amortised* (purchases spread onto usage rows, plus unused-commitment rows); see
`cost_view`. The file's one cost column is both billed and effective cost of *its* view, so the
pipeline must never combine both views of the same subscription and month.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from reporting.ingest.billing.common import (
    FamilyRead,
    RawTable,
    RowProblems,
    finish_charges,
    missing_columns,
    normalise_name,
    parse_decimal,
    parse_tags_object,
    parse_time,
    tags_json,
    text,
)

FAMILY = "azure_cost"
PROVIDER = "azure"

# Field → header keys, first match wins (MCA's `costInBillingCurrency` over a `cost` column).
_ALIASES: dict[str, tuple[str, ...]] = {
    "cost": ("costinbillingcurrency", "cost", "pretaxcost"),
    "currency": ("billingcurrency", "billingcurrencycode", "currency"),
    "date": ("date", "usagedatetime", "usagedate"),
    "quantity": ("quantity", "usagequantity"),
    "unit": ("unitofmeasure",),
    "billing_period": ("billingperiodstartdate", "billingperiodstart"),
    "billing_account": ("billingaccountid",),
    "subscription": ("subscriptionid", "subscriptionguid"),
    "subscription_name": ("subscriptionname",),
    "charge_type": ("chargetype",),
    "pricing_model": ("pricingmodel",),
    "meter_category": ("metercategory",),
    "meter_subcategory": ("metersubcategory",),
    "meter_name": ("metername",),
    "meter_id": ("meterid",),
    "part_number": ("partnumber",),
    "consumed_service": ("consumedservice",),
    "service_name": ("servicename",),  # PAYG v1 only
    "description": ("productname", "product"),
    "resource_id": ("resourceid", "instanceid", "instancename"),
    "location": ("resourcelocation", "location"),
    "additional_info": ("additionalinfo",),
    "tags": ("tags",),
    "payg_price": ("paygprice",),
    "payg_cost": ("paygcostinbillingcurrency",),  # MCA states list cost directly
}
_REQUIRED = {
    "cost": "cost column (CostInBillingCurrency, Cost or PreTaxCost)",
    "date": "date column (Date or UsageDateTime)",
    "currency": "currency column (BillingCurrency, BillingCurrencyCode or Currency)",
}
# Marketplace and unassigned lines use these instead of leaving the field empty (koku sample).
_PLACEHOLDERS = ("Unassigned", "-2", "00000000-0000-0000-0000-000000000000")
_PLACEHOLDER_SPELLINGS = {f(p) for p in _PLACEHOLDERS for f in (str, str.lower, str.upper)}
_NO_REGION = frozenset({"global", "unknown", "allregions"})
_CATEGORY = {
    "usage": "Usage",
    "purchase": "Purchase",
    "refund": "Credit",
    "credit": "Credit",
    "tax": "Tax",
    "unusedreservation": "Usage",  # FOCUS: unused commitment is Usage with status Unused
    "unusedsavingsplan": "Usage",
    "roundingadjustment": "Adjustment",
    "adjustment": "Adjustment",
}
_UNUSED = ("unusedreservation", "unusedsavingsplan")
_COMMITTED = ("reservation", "savingsplan", "savingsplans")
_PRICING = {"ondemand": "Standard", "spot": "Dynamic"} | dict.fromkeys(_COMMITTED, "Committed")
# Coarse FOCUS ServiceCategory by MeterCategory; anything else stays None rather than guessed.
_SERVICE_CATEGORY = {
    **dict.fromkeys(("virtual machines", "virtual machines licenses", "cloud services",
                     "container instances"), "Compute"),
    "storage": "Storage",
    **dict.fromkeys(("bandwidth", "networking", "virtual network", "load balancer",
                     "vpn gateway"), "Networking"),
    **dict.fromkeys(("sql database", "sql managed instance", "azure database for mysql",
                     "azure database for postgresql", "azure cosmos db"), "Databases"),
}  # fmt: skip
_ENGLISH = re.compile(r"\(([^()]+)\)\s*$")  # `Kosten (Cost)` → Cost
# `10 Hours`, `10K`, `1 GB/Month`, `1/Month`: count, optional K/M scale glued to it, unit.
_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)([kKM](?=[\s/]|$))?\s*(.*?)\s*$")
_SCALE = {None: 1.0, "k": 1e3, "K": 1e3, "M": 1e6}
_PLURAL = {"hour": "Hours", "day": "Days", "month": "Months", "minute": "Minutes"}
_VM_SIZE = re.compile(r"^(?:Standard|Basic)_\w+$", re.IGNORECASE)


def detect(columns: list[str]) -> bool:
    """An Azure export names meters and subscriptions; FOCUS files (also from Azure) do not."""
    keys = {_header_key(c) for c in columns}
    if keys & {"billedcost", "chargeperiodstart"}:
        return False
    has_meter = bool(keys & {"metercategory", "meterid", "metername"})
    return has_meter and bool(keys & {"subscriptionid", "subscriptionguid"})


def cost_view(columns: list[str], records: pd.DataFrame) -> str:
    """`amortised` or `actual`: which view of the costs this export holds.

    Amortised files spread commitment purchases onto the usage they cover (Usage rows with
    PricingModel Reservation/SavingsPlan and a non-zero cost) and add UnusedReservation /
    UnusedSavingsPlan rows; actual files show covered usage at 0 and the purchase itself. A file
    with neither sign (no commitments at all) is identical in both views and reads as actual.
    """
    col = _field_columns(columns)
    charge = _keys(_text(records, col["charge_type"]))
    model = _keys(_text(records, col["pricing_model"]))
    cost = pd.to_numeric(text(records, col["cost"]), errors="coerce").fillna(0.0)
    spread = charge.eq("usage") & model.isin(_COMMITTED) & cost.ne(0)
    return "amortised" if (spread | charge.isin(_UNUSED)).any() else "actual"


def read(table: RawTable, source_file: str, *, day_first: bool = False) -> FamilyRead:
    """Charges from one export; `day_first` reads slashed dates as D/M/Y (localised exports)."""
    records = table.records
    col = _field_columns(table.columns)
    problems = RowProblems()
    missing = [_REQUIRED[f] for f in _REQUIRED if col[f] is None]
    if missing:
        return missing_columns(
            records, FAMILY, source_file, "the file has no " + " and no ".join(missing)
        )

    def get(field: str) -> pd.Series:
        return _text(records, col[field])

    frame = pd.DataFrame(index=records.index)
    _costs(frame, records, col, problems)
    _periods(frame, get, col, problems, day_first)
    _categories(frame, get, col, problems)
    _describe(frame, get)
    frame["tags"] = _apply(get("tags"), _tags_text, "{}")
    problems.add(
        frame["tags"].isna(),
        "tags",
        f"{col['tags']} is not a JSON object: " + get("tags").fillna(""),
    )
    frame["line"] = records["line"]
    frame["raw"] = records["raw"]
    bad = problems.mask(records.index)
    return FamilyRead(
        finish_charges(frame[~bad], FAMILY, source_file), problems.quarantine(records, source_file)
    )


def _costs(
    frame: pd.DataFrame, records: pd.DataFrame, col: dict[str, str | None], problems: RowProblems
) -> None:
    """Cost, quantity scaled by the UnitOfMeasure multiplier, list cost, currency."""
    numbers = {}
    for field in ("cost", "quantity", "payg_price", "payg_cost"):
        raw = text(records, col[field])  # no placeholder mapping: `-2` is a valid amount
        numbers[field], bad = parse_decimal(raw)
        problems.add(bad, "number", f"{col[field]} is not a number: " + raw.fillna(""))
    problems.add(numbers["cost"].isna(), "required_value", f"{col['cost']} is empty")
    frame["billed_cost"] = numbers["cost"]
    frame["effective_cost"] = numbers["cost"]  # one view per file: see cost_view
    # Prices are per UnitOfMeasure (`10K` operations), so list cost uses the unscaled quantity.
    frame["list_cost"] = numbers["payg_cost"].fillna(numbers["payg_price"] * numbers["quantity"])
    units = _apply(_text(records, col["unit"]), _unit_of_measure, (1.0, None))
    frame["consumed_quantity"] = numbers["quantity"] * [u[0] for u in units]
    frame["consumed_unit"] = [u[1] for u in units]
    currency = _apply(_text(records, col["currency"]), str.upper)
    frame["currency"] = currency
    problems.add(
        ~_apply(currency, lambda c: re.fullmatch(r"[A-Z]{3}", c) is not None, False).astype(bool),
        "currency",
        f"{col['currency']} is not an ISO 4217 code: " + currency.fillna("(empty)"),
    )


def _periods(
    frame: pd.DataFrame,
    get: Callable[[str], pd.Series],
    col: dict[str, str | None],
    problems: RowProblems,
    day_first: bool,
) -> None:
    slashed = ("%d/%m/%Y", "%d/%m/%Y %H:%M:%S") if day_first else (
        "%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p")  # fmt: skip
    # Dotted dates (`21.09.2023`) are day-first in every locale that writes them.
    formats = ("ISO8601", *slashed, "%d.%m.%Y", "%d.%m.%Y %H:%M:%S")
    order = "D/M/Y" if day_first else "M/D/Y"
    day, bad = parse_time(get("date"), formats=formats)
    problems.add(
        bad, "timestamp", f"{col['date']} is not an {order} or ISO date: " + get("date").fillna("")
    )
    problems.add(day.isna() & ~bad, "required_value", f"{col['date']} is empty")
    frame["charge_period_start"] = day.dt.floor("D")
    frame["charge_period_end"] = frame["charge_period_start"] + pd.Timedelta(days=1)
    period, bad = parse_time(get("billing_period"), formats=formats)
    name = col["billing_period"]
    problems.add(
        bad,
        "timestamp",
        f"{name} is not an {order} or ISO date: " + get("billing_period").fillna(""),
    )
    frame["billing_period_start"] = period


def _categories(
    frame: pd.DataFrame,
    get: Callable[[str], pd.Series],
    col: dict[str, str | None],
    problems: RowProblems,
) -> None:
    """ChargeType → category (no ChargeType column: PAYG v1, all usage); PricingModel → pricing."""
    charge = _keys(get("charge_type"))
    model = _keys(get("pricing_model"))
    category = _apply(charge, _CATEGORY.get, "Usage")
    problems.add(
        category.isna(),
        "enum",
        f"{col['charge_type']} is not a known charge type: " + get("charge_type").fillna(""),
    )
    frame["charge_category"] = category
    frame["pricing_category"] = _apply(model, lambda m: _PRICING.get(m, "Other"))
    unused = charge.isin(_UNUSED)
    status = pd.Series(None, index=frame.index, dtype=object)
    status[category.eq("Usage") & ~unused & model.isin(_COMMITTED)] = "Used"
    status[unused] = "Unused"  # the unused-commitment lines the audit flags
    frame["commitment_status"] = status


def _describe(frame: pd.DataFrame, get: Callable[[str], pd.Series]) -> None:
    """Descriptive columns: ids, names, meter, region, VM size and vCPUs."""
    frame["provider"] = PROVIDER
    frame["billing_account_id"] = get("billing_account")
    frame["sub_account_id"] = get("subscription")
    frame["sub_account_name"] = get("subscription_name")
    frame["charge_description"] = get("description")
    # MeterCategory is the readable name (`Virtual Machines`); ConsumedService is a provider
    # namespace in inconsistent case (`Microsoft.Compute`, `MICROSOFT.KEYVAULT`).
    category = get("meter_category")
    frame["service_name"] = category.fillna(get("service_name")).fillna(get("consumed_service"))
    frame["service_category"] = _apply(category, lambda c: _SERVICE_CATEGORY.get(c.lower()))
    meters = zip(category, get("meter_subcategory"), get("meter_name"), strict=True)
    frame["usage_type"] = [" | ".join(v for v in m if v) or None for m in meters]
    frame["sku_id"] = get("meter_id").fillna(get("part_number"))
    frame["resource_id"] = get("resource_id")
    region = _apply(get("location"), lambda v: re.sub(r"\s+", "", v).lower())
    frame["region_id"] = _apply(region, lambda r: None if r in _NO_REGION else r)
    info = _apply(get("additional_info"), _json_object, {})
    size = pd.Series([d.get("servicetype") for d in info], index=frame.index, dtype=object)
    # Only VM sizes: ServiceType also holds names like `SQLThreatDetection`.
    frame["resource_type"] = _apply(size, lambda s: s if _VM_SIZE.match(s) else None)
    vcpus = [
        d.get("vcpus") if isinstance(d.get("vcpus"), int | float | str) else None for d in info
    ]
    frame["vcpus"] = pd.to_numeric(pd.Series(vcpus, index=frame.index), errors="coerce")


# ---- helpers -------------------------------------------------------------------------------


def _header_key(name: str) -> str:
    match = _ENGLISH.search(name)
    return normalise_name(match.group(1) if match else name)


def _field_columns(columns: list[str]) -> dict[str, str | None]:
    """Field → header as written (first header with a given key wins, like column_lookup)."""
    by_key: dict[str, str] = {}
    for name in columns:
        by_key.setdefault(_header_key(name), name)
    return {
        field: next((by_key[a] for a in aliases if a in by_key), None)
        for field, aliases in _ALIASES.items()
    }


def _text(records: pd.DataFrame, column: str | None) -> pd.Series:
    """`text` with Azure's placeholders (`Unassigned`, `-2`, the zero GUID) read as missing."""
    values = text(records, column)  # an absent column comes back as NaN, not None
    return values.where(values.notna() & ~values.isin(_PLACEHOLDER_SPELLINGS), None)


def _keys(values: pd.Series) -> pd.Series:
    """Enum values compared loosely: `UnusedSavingsPlan`, `Savings Plan`, `savingsplan` agree."""
    return _apply(values, normalise_name)


def _apply(values: pd.Series, function: Callable[[str], Any], missing: Any = None) -> pd.Series:
    """`function` of each text value (`missing` for None/NaN), as object dtype: pandas 3 would
    infer `str` from `map` and turn None into NaN. Computed once per distinct value: exports
    repeat the same tags, units and AdditionalInfo on thousands of rows."""
    lookup = {v: function(v) for v in set(values) if isinstance(v, str)}
    result = [lookup[v] if isinstance(v, str) else missing for v in values]
    return pd.Series(result, index=values.index, dtype=object)


def _tags_text(value: str) -> str | None:
    """Tags (JSON with or without braces) as normalised JSON text; None if unparseable."""
    tags = parse_tags_object(value)
    return tags_json(tags) if tags is not None else None


def _unit_of_measure(value: str) -> tuple[float, str]:
    """(multiplier, unit): `10 Hours` → (10, Hours), `10K` → (10000, Units), `1/Month` →
    (1, Units/Month); units follow the FOCUS names (`1 Hour` → Hours)."""
    match = _UNIT.match(value)
    if match is None:  # no count: the unit alone
        return 1.0, _unit_name(value.strip())
    count, scale, unit = match.groups()
    return float(count) * _SCALE[scale], _unit_name(unit)


def _unit_name(unit: str) -> str:
    if not unit or unit.startswith("/"):
        return "Units" + unit
    return _PLURAL.get(unit.lower(), unit)


def _json_object(value: str) -> dict[str, Any]:
    """AdditionalInfo as a dict with lower-case keys; anything unparseable is just no detail."""
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return {}
    return {str(k).lower(): v for k, v in parsed.items()} if isinstance(parsed, dict) else {}
