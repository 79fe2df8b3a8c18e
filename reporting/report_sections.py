"""View of the quarterly sections for the template: charts, fixed-unit filters, breakdowns
with an explicit `unallocated` line. Used by `report._view` when the context has them."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import Markup

from reporting import charts

DASH = "—"
KG_PER_TONNE = 1_000
KWH_PER_MWH = 1_000
UNALLOCATED = "unallocated"
ATTRIBUTION = (
    ("by_team", "team", "team"),
    ("by_model", "model", "model"),
    ("by_phase", "phase", "phase"),
    ("by_region", "region", "region (grid zone)"),
    ("by_gpu_model", "gpu_type", "GPU type"),
    ("by_site", "site", "site"),
)
ZERO_ROW = {
    "facility_energy_kwh": 0.0, "co2e_location_kg": 0.0, "co2e_market_kg": 0.0,
    "co2e_embodied_kg": 0.0, "gpu_hours": 0.0, "jobs": 0, "share_of_energy": 0.0, "cost": {},
}  # fmt: skip


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_mwh(value: float | None) -> str:
    """Always MWh, two decimals: `1,234.57 MWh` (headline and trend tables keep one unit)."""
    return DASH if _missing(value) else f"{value / KWH_PER_MWH:,.2f} MWh"


def format_tonnes(value: float | None) -> str:
    """Always t CO2e, two decimals: `69.75 t CO2e`."""
    return DASH if _missing(value) else f"{value / KG_PER_TONNE:,.2f} t CO2e"


def format_change(value: float | None) -> str:
    """A relative change (ratio) as `+12.3 %`; no base to compare with gives a dash."""
    return DASH if _missing(value) else f"{value * 100:+,.1f} %"


def format_kpi(value: float | None, unit: str) -> str:
    """A KPI value in the unit its row names (`mwh`, `tonnes`, `num`, `amount`)."""
    if _missing(value):
        return DASH
    if unit == "mwh":
        return format_mwh(value)
    if unit == "tonnes":
        return format_tonnes(value)
    return f"{value:,.2f}" if unit == "amount" else f"{value:,.1f}"


FILTERS: dict[str, Callable[..., str]] = {
    "mwh": format_mwh,
    "tonnes": format_tonnes,
    "change": format_change,
    "kpi": format_kpi,
}


def with_unallocated(rows: list[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rows, plus a zero `unallocated` row when none is there: the line is always shown."""
    result = [dict(r) for r in rows]
    if not any(r[key] == UNALLOCATED for r in result):
        result.append({key: UNALLOCATED, **ZERO_ROW})
    return result


def attribution_tables(context: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(summary key, row key, label) of the breakdowns the context holds, in report order."""
    return [(name, key, label) for name, key, label in ATTRIBUTION if name in context]


def _attribution_charts(context: Mapping[str, Any]) -> dict[str, Markup]:
    found = {}
    for name, key, label in attribution_tables(context):
        rows = sorted(context[name], key=lambda r: (-r["co2e_location_kg"], str(r[key])))
        found[name] = charts.hbar_pairs(
            f"chart-{name.replace('_', '-')}", f"Emissions by {label}",
            [str(r[key]) for r in rows], [r["co2e_location_kg"] for r in rows],
            [r["co2e_market_kg"] for r in rows],
        )  # fmt: skip
    return found


def build_charts(context: Mapping[str, Any]) -> dict[str, Markup]:
    """Every chart of the quarterly sections, keyed by where the template places it."""
    q = context["quarterly"]
    found = _attribution_charts(context)
    sites = q["energy_by_site"]
    found["energy"] = charts.stacked_hbar(
        "chart-energy", "Facility energy by site and energy method",
        [s["site"] for s in sites["sites"]],
        {m: [s["by_method_kwh"][m] for s in sites["sites"]] for m in sites["methods"]},
        "MWh", KWH_PER_MWH,
    )  # fmt: skip
    found["scopes"] = charts.grouped_bars(
        "chart-scopes", "Emissions by scope, location- and market-based",
        [s["scope"] for s in q["scopes"]],
        {"location-based": [s["location_kg"] for s in q["scopes"]],
         "market-based": [s["market_kg"] for s in q["scopes"]]},
        "t CO2e", KG_PER_TONNE,
    )  # fmt: skip
    months = context["by_month"]
    changes = context.get("method_changes") or {"by_month": [], "by_quarter": []}
    found["monthly"] = charts.grouped_bars(
        "chart-monthly", "Emissions per month of the period",
        [m["month"] for m in months],
        {"location-based": [m["co2e_location_kg"] for m in months],
         "market-based": [m["co2e_market_kg"] for m in months],
         "embodied": [m["co2e_embodied_kg"] for m in months]},
        "t CO2e", KG_PER_TONNE, changes["by_month"],
    )  # fmt: skip
    quarters = q["trailing"]
    found["trailing"] = charts.lines(
        "chart-trailing", "Emissions per quarter held in the ledger",
        [t["quarter"] for t in quarters],
        {"location-based": [t["co2e_location_kg"] for t in quarters],
         "market-based": [t["co2e_market_kg"] for t in quarters]},
        "t CO2e", KG_PER_TONNE, changes["by_quarter"],
    )  # fmt: skip
    cards = q["model_cards"]
    found["models"] = charts.stacked_hbar(
        "chart-models", "Model footprints: dynamic, idle share and embodied (location-based)",
        [c["model"] for c in cards],
        {"dynamic": [c["dynamic_kg"] for c in cards], "idle share": [c["idle_kg"] for c in cards],
         "embodied": [c["co2e_embodied_kg"] for c in cards]},
        "t CO2e", KG_PER_TONNE,
    )  # fmt: skip
    spread = context["uncertainty"]["tornado"]
    found["tornado"] = charts.tornado(
        "chart-tornado",
        "Sensitivity of total location-based emissions",
        spread["central"],
        spread["bars"],
    )
    return found


def view(context: Mapping[str, Any]) -> dict[str, Any]:
    """Template values of the quarterly sections (empty when the context has none)."""
    if "quarterly" not in context:
        return {"charts": {}}
    return {"charts": build_charts(context)}
