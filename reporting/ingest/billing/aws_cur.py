"""AWS Cost and Usage Report (legacy CUR, its Athena/parquet variant, and CUR 2.0) → charges.

All three spellings are read through one set of legacy names (`lineItem/UnblendedCost`):
`normalise_name` folds `lineItem/UnblendedCost`, `line_item_unblended_cost` and
`LINEITEM/UNBLENDEDCOST` to the same key, so month-to-month column drift costs nothing.
CUR 2.0 moves rarer product attributes into a `product` map and tags into a `resource_tags`
map; `read_raw` hands maps over as JSON text, which is parsed here.

Decisions (FORMATS.md §3.2, mappings/focus_converters_rules_aws-cur.csv):
- effective_cost follows the focus_converters CASE, including its SavingsPlanRecurringFee rule
  (TotalCommitmentToDate − UsedCommitment) and RI `Fee` lines → 0, because the used part of a
  commitment is already amortised onto covered usage lines; counting it again double-counts.
  When a line's amortisation inputs are empty, effective_cost falls back to UnblendedCost.
- charge_category uses FOCUS 1.x `Credit` for Credit/Refund/discounts/SavingsPlanNegation
  (focus_converters predates that category and says Usage/Adjustment).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from reporting.ingest.billing.common import (
    FamilyRead,
    RawTable,
    RowProblems,
    column_lookup,
    finish_charges,
    missing_columns,
    normalise_name,
    parse_decimal,
    parse_tags_object,
    parse_time,
    tags_json,
    text,
)

FAMILY = "aws_cur"
_COST = "lineItem/UnblendedCost"
_START = "lineItem/UsageStartDate"
_END = "lineItem/UsageEndDate"
_INTERVAL = "identity/TimeInterval"
_TYPE = "lineItem/LineItemType"
# A file needs these; the second may be replaced by identity/TimeInterval.
_REQUIRED = ((_COST,), (_START, _INTERVAL))
# Any two of these mark a CUR header (one may be missing: that file is quarantined, not ignored).
_SIGNATURE = {
    normalise_name(c)
    for c in (_COST, _START, _TYPE, "lineItem/ProductCode", "bill/PayerAccountId",
              "identity/LineItemId")
}  # fmt: skip
# Columns only CUR 2.0 has: its map columns and the account names legacy CUR never carried.
_CUR2_ONLY = {
    "resourcetags", "product", "costcategory", "discount", "billpayeraccountname",
    "lineitemusageaccountname",
}  # fmt: skip
_NUMBERS = {
    "billed_cost": _COST,
    "consumed_quantity": "lineItem/UsageAmount",
    "list_cost": "pricing/publicOnDemandCost",
    "sp_effective": "savingsPlan/SavingsPlanEffectiveCost",
    "ri_effective": "reservation/EffectiveCost",
    "ri_unused_upfront": "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
    "ri_unused_recurring": "reservation/UnusedRecurringFee",
    "sp_total": "savingsPlan/TotalCommitmentToDate",
    "sp_used": "savingsPlan/UsedCommitment",
}
_CATEGORY = {
    "Usage": "Usage", "DiscountedUsage": "Usage", "SavingsPlanCoveredUsage": "Usage",
    "Tax": "Tax",
    "Credit": "Credit", "Refund": "Credit", "EdpDiscount": "Credit", "BundledDiscount": "Credit",
    "PrivateRateDiscount": "Credit", "Discount": "Credit", "SavingsPlanNegation": "Credit",
    "RIFee": "Purchase", "Fee": "Purchase", "SavingsPlanRecurringFee": "Purchase",
    "SavingsPlanUpfrontFee": "Purchase",
}  # fmt: skip
_KINDS = {k.lower(): k for k in _CATEGORY}
_COVERED = ("DiscountedUsage", "SavingsPlanCoveredUsage")
_TERMS = {"ondemand": "Standard", "reserved": "Committed", "savingsplan": "Committed",
          "spot": "Dynamic"}  # fmt: skip
# product/productFamily → FOCUS ServiceCategory, only where the family is unambiguous.
_FAMILIES = {
    "compute instance": "Compute", "compute instance (bare metal)": "Compute",
    "dedicated host": "Compute", "compute": "Compute", "serverless": "Compute",
    "storage": "Storage", "storage snapshot": "Storage", "provisioned throughput": "Storage",
    "data transfer": "Networking", "load balancer": "Networking",
    "load balancer-application": "Networking", "load balancer-network": "Networking",
    "nat gateway": "Networking", "ip address": "Networking", "vpcendpoint": "Networking",
    "database instance": "Databases", "database storage": "Databases",
}  # fmt: skip
_INSTANCE = re.compile(r"(?:^|-)(?:BoxUsage|SpotUsage|DedicatedUsage):([A-Za-z0-9.\-]+)$")


def detect(columns: list[str]) -> bool:
    return len({normalise_name(c) for c in columns} & _SIGNATURE) >= 2


def cur_generation(columns: list[str]) -> str:
    """Which CUR a header belongs to, "legacy" or "cur2" (never ingest both for one month).

    Slash headers exist only in legacy CUR. A snake_case header is CUR 2.0 when it has a column
    legacy never had (a map column such as `resource_tags`, or the payer/usage account names);
    otherwise it is the legacy Athena/parquet spelling (`resource_tags_user_team`)."""
    if any("/" in c for c in columns):
        return "legacy"
    return "cur2" if {normalise_name(c) for c in columns} & _CUR2_ONLY else "legacy"


class _Cur:
    """Columns by their legacy name, whichever spelling the file uses."""

    def __init__(self, table: RawTable) -> None:
        self.records = table.records
        self.columns = [c for c in dict.fromkeys(table.columns) if c in table.records.columns]
        self.lookup = column_lookup(table.columns)
        self.product = self._map("product")

    def column(self, name: str) -> str | None:
        return self.lookup.get(normalise_name(name))

    def label(self, name: str) -> str:
        """The name as written in this file, so a reason points at a real header."""
        return self.column(name) or name

    def get(self, name: str) -> pd.Series:
        values = text(self.records, self.column(name))
        if name.startswith("product/") and self.product is not None:
            key = normalise_name(name.removeprefix("product/"))  # CUR 2.0: product['vcpu']
            from_map = self.product.map(lambda m: _map_text(m.get(key)) if m else None)
            values = values.where(values.notna(), from_map)
        return values

    def _map(self, name: str) -> pd.Series | None:
        """A map column as dicts with normalised keys; unparseable cells → {} (product only)."""
        if self.column(name) is None:
            return None
        parsed = text(self.records, self.column(name)).map(_parse_map)
        return parsed.map(lambda m: {normalise_name(k): v for k, v in m.items()} if m else {})


def _each(values: pd.Series, fn: Callable[[str], str | None]) -> pd.Series:
    """fn on each text value; missing values (None or NaN) stay None."""
    return values.map(lambda v: fn(v) if isinstance(v, str) else None).astype(object)


def _parse_map(value: str | None) -> dict | None:
    """A map cell (JSON object text) → dict; an empty arrow map arrives as `[]`."""
    if isinstance(value, str) and value.strip() == "[]":
        return {}
    return parse_tags_object(value)


def _map_text(value: object) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def read(table: RawTable, source_file: str) -> FamilyRead:
    records = table.records
    cur = _Cur(table)
    problems = RowProblems()
    missing = [names[0] for names in _REQUIRED if not any(cur.column(n) for n in names)]
    if missing:
        return missing_columns(
            records,
            FAMILY,
            source_file,
            f"the file has no {', '.join(missing)} column (an AWS CUR requires it)",
        )
    numbers = _numbers(cur, problems)
    frame = pd.DataFrame(index=records.index)
    for target in ("billed_cost", "consumed_quantity", "list_cost"):
        frame[target] = numbers[target]
    problems.add(frame["billed_cost"].isna(), "required_value", f"{cur.label(_COST)} is empty")
    _periods(cur, problems, frame)
    frame["currency"] = cur.get("lineItem/CurrencyCode").str.upper()
    problems.add(
        ~frame["currency"].fillna("").str.fullmatch(r"[A-Z]{3}"),
        "currency",
        f"{cur.label('lineItem/CurrencyCode')} is not an ISO 4217 code: "
        + cur.get("lineItem/CurrencyCode").fillna("(empty)"),
    )
    kind = _each(cur.get(_TYPE), lambda v: _KINDS.get(v.lower(), v))
    # LineItemTypes outside the known list (new AWS types) are Adjustment: still counted,
    # never silently dropped, and visible as such in reports.
    frame["charge_category"] = kind.map(lambda k: _CATEGORY.get(k, "Adjustment"))
    frame["effective_cost"], unused = _effective(cur, kind, numbers)
    frame["commitment_status"] = _commitment(kind, unused)
    frame["pricing_category"] = _pricing(cur, kind)
    frame["tags"] = _tags(cur, problems)
    _describe(cur, frame)
    # with the usage start, the natural key the validation's aws_cur suite checks
    frame["line_item_id"] = cur.get("identity/LineItemId")
    frame["line"] = records["line"]
    frame["raw"] = records["raw"]
    bad = problems.mask(records.index)
    return FamilyRead(
        finish_charges(frame[~bad], FAMILY, source_file), problems.quarantine(records, source_file)
    )


def _numbers(cur: _Cur, problems: RowProblems) -> dict[str, pd.Series]:
    result = {}
    for target, name in _NUMBERS.items():
        values, bad = parse_decimal(cur.get(name))
        reason = f"{cur.label(name)} is not a number: " + cur.get(name).fillna("").map(repr)
        problems.add(bad, "number", reason)
        result[target] = values
    return result


def _time(cur: _Cur, problems: RowProblems, name: str, values: pd.Series) -> pd.Series:
    parsed, bad = parse_time(values)
    problems.add(bad, "timestamp", f"{cur.label(name)} is not a valid time: " + values.fillna(""))
    return parsed


def _periods(cur: _Cur, problems: RowProblems, frame: pd.DataFrame) -> None:
    """Charge period from UsageStart/EndDate, else the row's identity/TimeInterval `a/b`."""
    interval = _each(cur.get(_INTERVAL), lambda v: v if "/" in v else None)
    parts = [_each(interval, lambda v, i=i: v.split("/", 1)[i]) for i in (0, 1)]
    for target, name, part in (("charge_period_start", _START, parts[0]),
                               ("charge_period_end", _END, parts[1])):  # fmt: skip
        usage = _time(cur, problems, name, cur.get(name))
        # The interval is parsed only where it is used, so a stray value elsewhere costs nothing.
        fallback = _time(cur, problems, _INTERVAL, part.where(cur.get(name).isna()))
        frame[target] = usage.fillna(fallback)
        problems.add(frame[target].isna(), "required_value", f"{cur.label(name)} is empty")
    bill = "bill/BillingPeriodStartDate"
    frame["billing_period_start"] = _time(cur, problems, bill, cur.get(bill))
    problems.add(
        frame["charge_period_end"] < frame["charge_period_start"],
        "time_order",
        f"{cur.label(_END)} is before {cur.label(_START)}",
    )


def _effective(cur: _Cur, kind: pd.Series, n: dict[str, pd.Series]) -> tuple[pd.Series, pd.Series]:
    """Amortised cost per the focus_converters CASE; also the unused commitment per fee line."""
    ri_unused = n["ri_unused_upfront"].fillna(0) + n["ri_unused_recurring"].fillna(0)
    ri_unused = ri_unused.where(n["ri_unused_upfront"].notna() | n["ri_unused_recurring"].notna())
    unused = pd.Series(np.nan, index=kind.index)
    unused = unused.mask(kind == "RIFee", ri_unused)
    unused = unused.mask(kind == "SavingsPlanRecurringFee", n["sp_total"] - n["sp_used"])
    amortised = unused.copy()
    amortised = amortised.mask(kind == "SavingsPlanCoveredUsage", n["sp_effective"])
    amortised = amortised.mask(kind == "DiscountedUsage", n["ri_effective"])
    amortised = amortised.mask(kind.isin(("SavingsPlanNegation", "SavingsPlanUpfrontFee")), 0.0)
    # An RI upfront `Fee` is spread over the term by reservation/EffectiveCost already.
    amortised = amortised.mask((kind == "Fee") & cur.get("reservation/ReservationARN").notna(), 0.0)
    return amortised.fillna(n["billed_cost"]), unused


def _commitment(kind: pd.Series, unused: pd.Series) -> pd.Series:
    """Used on covered usage; Unused on an RIFee/SavingsPlanRecurringFee line whose unused
    commitment (the amortisation inputs above) is non-zero; otherwise None."""
    status = pd.Series(None, index=kind.index, dtype=object)
    status[kind.isin(_COVERED)] = "Used"
    status[unused.fillna(0) != 0] = "Unused"
    return status


def _pricing(cur: _Cur, kind: pd.Series) -> pd.Series:
    """pricing/term; covered usage is Committed and SpotUsage is Dynamic when term is blank."""
    term = _each(cur.get("pricing/term"), lambda t: _TERMS.get(normalise_name(t), "Other"))
    spot = cur.get("lineItem/UsageType").fillna("").str.contains("SpotUsage", regex=False)
    term = term.where(term.notna() | ~kind.isin(_COVERED), "Committed")
    return term.where(term.notna() | ~spot, "Dynamic")


def _tags(cur: _Cur, problems: RowProblems) -> pd.Series:
    """Legacy one-column-per-tag (`resourceTags/user:team`, `resource_tags_user_team`; empty =
    absent) merged with the CUR 2.0 `resource_tags` map."""
    columns: dict[str, list] = {}
    for name in cur.columns:
        key = normalise_name(name)
        if key.startswith("resourcetags") and key != "resourcetags":
            tag = re.sub(r"^resource_?tags[/_]", "", name, flags=re.IGNORECASE)
            columns.setdefault(_tag_key(tag), text(cur.records, name).tolist())
    maps = pd.Series([{}] * len(cur.records), index=cur.records.index, dtype=object)
    if cur.column("resource_tags") is not None:
        raw = cur.get("resource_tags")
        maps = raw.map(_parse_map)
        reason = f"{cur.label('resource_tags')} is not a JSON object: " + raw.fillna("")
        problems.add(maps.isna(), "tags", reason)
    result = []
    for i, tag_map in enumerate(maps):
        tags = {k: v[i] for k, v in columns.items() if v[i] is not None}
        for key, value in (tag_map or {}).items():
            if _map_text(value) is not None:
                tags[_tag_key(key)] = _map_text(value)
        result.append(tags_json(tags) if tags else "{}")
    return pd.Series(result, index=cur.records.index, dtype=object)


def _tag_key(key: str) -> str:
    """User tags are `user:team` (legacy) or `user_team` (snake_case spellings): drop either."""
    return re.sub(r"^user[:_]", "", key.strip(), flags=re.IGNORECASE)


def _describe(cur: _Cur, frame: pd.DataFrame) -> None:
    """The descriptive columns: accounts, service, SKU, resource, region, usage, vCPUs."""
    frame["provider"] = "aws"
    frame["billing_account_id"] = cur.get("bill/PayerAccountId")
    frame["sub_account_id"] = cur.get("lineItem/UsageAccountId")
    frame["sub_account_name"] = cur.get("lineItem/UsageAccountName")
    frame["charge_description"] = cur.get("lineItem/LineItemDescription")
    frame["service_name"] = cur.get("product/ProductName").fillna(cur.get("lineItem/ProductCode"))
    family = cur.get("product/productFamily")
    frame["service_category"] = _each(family, lambda f: _FAMILIES.get(f.lower()))
    frame["usage_type"] = cur.get("lineItem/UsageType")
    frame["sku_id"] = cur.get("product/sku")
    frame["resource_id"] = cur.get("lineItem/ResourceId")
    sized = _each(frame["usage_type"], _size)
    frame["resource_type"] = cur.get("product/instanceType").fillna(sized)
    region = cur.get("product/regionCode").fillna(cur.get("product/region")).str.lower()
    frame["region_id"] = region.where(region != "global", None)
    frame["consumed_unit"] = cur.get("pricing/unit")
    frame["vcpus"] = pd.to_numeric(cur.get("product/vcpu"), errors="coerce")


def _size(usage_type: str) -> str | None:
    match = _INSTANCE.search(usage_type)
    return match.group(1) if match else None
