"""The cloud part of summary.json and the report: spend, energy and Scope 3.1 carbon of billing
lines, per provider and currency, and the reconciliation of attributed cost to the inputs.

Costs are never converted: every money figure is per currency. Reconciliation compares, per
billing file and currency, the cost the file carried (as read) with the cost the ledger holds
from it (all days, every team including `unallocated`): they must agree to the cent.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from reporting import counts
from reporting.config import UNALLOCATED
from reporting.energy import ENERGY_METHODS
from reporting.summary import Period

CENT = 0.005  # reconciliation tolerance: half a cent, for float sums of many lines


def _r(value: float) -> float:
    return round(float(value), 6) if pd.notna(value) else 0.0


def cloud_block(
    ledger: pd.DataFrame,
    held: pd.DataFrame,
    intake: dict[str, dict[str, Any]],
    vendor: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """`cloud` in summary.json. `held`: source_file, currency, cost of every ledger row of a
    billing file (all days); `intake`: the per-file records with `cost_in`."""
    cloud = ledger[ledger["scope"] == "3.1"]
    return {
        "lines": counts.billing_lines(cloud),
        "cost_basis": sorted(cloud["cost_basis"].dropna().unique().tolist()),
        "by_provider": _by_provider(cloud),
        "by_category": _by_category(cloud),
        "unallocated_cost": _per_currency(cloud[cloud["team"] == UNALLOCATED]),
        "energy_methods": _methods(cloud),
        "reconciliation": reconciliation(held, intake),
        "vendor_carbon": _vendor_beside(cloud, vendor),
    }


def _per_currency(frame: pd.DataFrame) -> dict[str, float]:
    sums = frame.groupby("currency")["cost"].sum()
    return {str(c): _r(v) for c, v in sums.sort_index().items()}


def _by_provider(cloud: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for (provider, currency), group in cloud.groupby(["provider", "currency"], sort=True):
        rows.append({
            "provider": str(provider), "currency": str(currency),
            "cost": _r(group["cost"].sum()),
            "lines": counts.billing_lines(group),
            "facility_energy_kwh": _r(group["facility_energy_kwh"].sum()),
            "co2e_location_kg": _r(group["co2e_location_kg"].sum()),
            "co2e_market_kg": _r(group["co2e_market_kg"].sum()),
            "co2e_embodied_kg": _r(group["co2e_embodied_kg"].sum()),
            "gpu_hours": _r(group["gpu_hours"].sum()),
        })  # fmt: skip
    return rows


def _by_category(cloud: pd.DataFrame) -> list[dict[str, Any]]:
    """Cost per charge category and currency, with the number of billing lines behind it."""
    rows = []
    for (category, currency), group in cloud.groupby(["charge_category", "currency"], sort=True):
        rows.append({
            "charge_category": str(category), "currency": str(currency),
            "cost": _r(group["cost"].sum()), "rows": counts.billing_lines(group),
        })  # fmt: skip
    return rows


def _methods(cloud: pd.DataFrame) -> dict[str, float]:
    total = cloud["facility_energy_kwh"].sum()
    by = cloud.groupby("energy_method")["facility_energy_kwh"].sum()
    return {m: _r(by.get(m, 0.0) / total) if total > 0 else 0.0 for m in ENERGY_METHODS}


def reconciliation(held: pd.DataFrame, intake: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per billing file and currency: cost read, cost in the ledger, difference, and whether
    they agree to the cent (the basis of each ledger row is the configured one)."""
    in_ledger = held.groupby(["source_file", "currency"])["cost"].sum()
    basis = held.groupby("source_file")["cost_basis"].first()
    rows = []
    for name in sorted(intake):
        record = intake[name]
        if "cost_in" not in record:
            continue
        which = str(basis.get(name, "billed"))
        for currency, costs in sorted(record["cost_in"].items()):
            read = float(costs.get(which, 0.0))
            held_cost = float(in_ledger.get((name, currency), 0.0))
            rows.append({
                "source_file": name, "currency": currency, "cost_basis": which,
                "cost_read": _r(read), "cost_in_ledger": _r(held_cost),
                "difference": _r(held_cost - read), "reconciled": abs(held_cost - read) < CENT,
            })  # fmt: skip
    return rows


def vendor_in_period(vendor: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Vendor rows whose period starts in the report period (vendor exports are monthly: a
    report period that cuts a month shows the months it starts), latest model version only —
    AWS delivers old and new model versions side by side, and both would count twice."""
    if vendor.empty:
        return vendor
    start = pd.Timestamp(period.start, tz="UTC")
    end = pd.Timestamp(period.end, tz="UTC") + pd.Timedelta(days=1)
    rows = vendor[(vendor["period_start"] >= start) & (vendor["period_start"] < end)]
    version = rows["model_version"].fillna("")
    latest = version.groupby(rows["provider"]).transform("max")
    return rows[version == latest]


def _vendor_beside(cloud: pd.DataFrame, vendor: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Per provider: the provider's own figures beside our estimate for the same period."""
    if vendor is None or vendor.empty:
        return []
    ours = cloud.groupby("provider")[["co2e_location_kg", "co2e_market_kg"]].sum()
    rows = []
    for provider, group in vendor.groupby("provider", sort=True):
        mine = ours.loc[provider] if provider in ours.index else None
        rows.append({
            "provider": str(provider),
            "months": sorted(group["period_start"].dt.strftime("%Y-%m").unique().tolist()),
            "model_version": sorted(group["model_version"].dropna().astype(str).unique().tolist()),
            "vendor_co2e_location_kg": _r(group["co2e_location_kg"].sum()),
            "vendor_co2e_market_kg": _r(group["co2e_market_kg"].sum()),
            "estimate_co2e_location_kg": _r(mine["co2e_location_kg"]) if mine is not None else 0.0,
            "estimate_co2e_market_kg": _r(mine["co2e_market_kg"]) if mine is not None else 0.0,
        })  # fmt: skip
    return rows
