"""Tables of the quarterly report built from a period's ledger rows: scope statement, energy by
site, emissions by scope, intensity, location table with a what-if, and model footprint cards.

Input rows are ledger rows with the report keys `region` and `gpu_type` added
(`quarterly.with_report_keys`). Every function returns plain dicts of numbers (kWh, kg, cost)
and text; formatting for people happens in the templates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from reporting import counts
from reporting.energy import ENERGY_METHODS
from reporting.scratch import Scratch

G_PER_KG = 1_000
NOT_MODELS = ("unallocated", "idle")
IDLE_MODEL = "idle"  # the model name the config's owner rules give to idle cluster capacity
NO_GPU_TYPES = ("unallocated", "no GPU (CPU, storage, network)")
EXCLUDED_ALWAYS = (
    "Scope 1: no fuel combustion or refrigerants are inside the compute boundary.",
    "Scope 3.3 (upstream emissions of purchased electricity): not estimated.",
    (
        "Scope 3.2 in the year of acquisition: the inventory books hardware when bought; this report "
        "shows only the amortised management allocation."
    ),
    "Offices, networking outside the listed sites, and end-user devices.",
)


def _r(value: float) -> float:
    return round(float(value), 6) if pd.notna(value) else 0.0


def _sum(rows: pd.DataFrame, column: str) -> float:
    return _r(rows[column].sum())


# --- scope statement -----------------------------------------------------------------------------


def factor_table_versions() -> list[dict[str, str]]:
    """The packaged factor tables of this tool version, each with the first 12 hex of its SHA-256."""
    folder = resources.files("reporting.data")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".csv"))
    return [
        {
            "table": name,
            "sha256": hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest()[:12],
        }
        for name in names
    ]


def factor_datasets(register: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kind of factor used: how many, their data years, and how many are fallbacks
    (each factor's source is in the factor register)."""
    by_kind: dict[str, dict[str, Any]] = {}
    for f in register:
        entry = by_kind.setdefault(str(f["kind"]), {"kind": str(f["kind"]), "years": set(),
                                                    "factors": 0, "defaults": 0, "sources": set()})  # fmt: skip
        if f.get("year") is not None:
            entry["years"].add(int(f["year"]))
        entry["factors"] += 1
        entry["defaults"] += int(bool(f.get("is_default")))
        entry["sources"].add(f.get("source") or "")
    return [
        {**e, "years": sorted(e["years"]), "sources": len(e["sources"])}
        for e in sorted(by_kind.values(), key=lambda e: e["kind"])
    ]


def scope_statement(
    rows: pd.DataFrame, summary: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    """Period, boundary, included and excluded sources, tool and factor-table versions."""
    onprem = sorted(rows.loc[rows["scope"] == "2", "site"].dropna().unique().tolist())
    providers = sorted(rows.loc[rows["scope"] == "3.1", "provider"].dropna().unique().tolist())
    kinds: dict[str, dict[str, int]] = {}
    for i in summary["inputs"]:
        entry = kinds.setdefault(i["kind"], {"files": 0, "rows_accepted": 0})
        entry["files"] += 1
        entry["rows_accepted"] += int(i.get("rows_accepted", 0))
    waiting = sum(int(r["jobs"]) for r in context.get("not_attributed", []))
    excluded = [
        *EXCLUDED_ALWAYS,
        f"Jobs not finished by the period end ({waiting:,}): counted in the period they end.",
        f"Quarantined input rows ({context['quarantine']['rows']:,}): see Data coverage.",
    ]
    return {
        "boundary": "Operational control: the compute the organisation runs or rents.",
        "onprem_sites": onprem,
        "cloud_providers": providers,
        "included": [{"kind": k, **v} for k, v in sorted(kinds.items())],
        "excluded": excluded,
        "datasets": factor_datasets(context["factors"]),
        "tables": factor_table_versions(),
    }


# --- energy and scopes ---------------------------------------------------------------------------


def _methods_present(rows: pd.DataFrame) -> list[str]:
    """The energy methods the ledger holds, hierarchy order first, unknown ones by name."""
    present = set(rows["energy_method"].dropna().astype(str).unique())
    return [m for m in ENERGY_METHODS if m in present] + sorted(present - set(ENERGY_METHODS))


def energy_by_site(rows: pd.DataFrame) -> dict[str, Any]:
    """Per site: IT and facility kWh, the PUE applied, and kWh by energy method."""
    methods = _methods_present(rows)
    sites = []
    used = rows[["site", "it_energy_kwh", "facility_energy_kwh", "energy_method", "scope", "pue"]]
    for site, group in used.groupby("site", sort=True):
        it_kwh, facility_kwh = _sum(group, "it_energy_kwh"), _sum(group, "facility_energy_kwh")
        by_method = group.groupby("energy_method")["facility_energy_kwh"].sum()
        sites.append({
            "site": str(site), "kind": "on-premises" if (group["scope"] == "2").all() else "cloud",
            "it_energy_kwh": it_kwh, "facility_energy_kwh": facility_kwh,
            "pue_applied": _r(facility_kwh / it_kwh) if it_kwh > 0 else None,
            "pue_values": sorted({_r(v) for v in group["pue"].dropna().unique()}),
            "by_method_kwh": {m: _r(by_method.get(m, 0.0)) for m in methods},
        })  # fmt: skip
    sites.sort(key=lambda s: (-s["facility_energy_kwh"], s["site"]))
    return {"methods": methods, "sites": sites}


def emissions_by_scope(rows: pd.DataFrame, cloud: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Scope 2 (on-prem), Scope 3.1 (cloud, with the providers' own figure beside it when
    supplied) and Scope 3.2 (embodied, a management allocation) — location and market side by side."""
    used = rows[["scope", "co2e_location_kg", "co2e_market_kg"]]
    onprem, rented = used[used["scope"] == "2"], used[used["scope"] == "3.1"]
    vendor = (cloud or {}).get("vendor_carbon") or []
    return [
        {"scope": "Scope 2", "what": "Electricity of on-premises compute",
         "location_kg": _sum(onprem, "co2e_location_kg"), "market_kg": _sum(onprem, "co2e_market_kg"),
         "vendor_location_kg": None, "vendor_market_kg": None},
        {"scope": "Scope 3.1", "what": "Cloud services, estimated from billing lines",
         "location_kg": _sum(rented, "co2e_location_kg"), "market_kg": _sum(rented, "co2e_market_kg"),
         "vendor_location_kg": _r(sum(v["vendor_co2e_location_kg"] for v in vendor)) if vendor else None,
         "vendor_market_kg": _r(sum(v["vendor_co2e_market_kg"] for v in vendor)) if vendor else None},
        {"scope": "Scope 3.2", "what": "Hardware, amortised per GPU-/core-hour (management allocation)",
         "location_kg": _sum(rows, "co2e_embodied_kg"), "market_kg": _sum(rows, "co2e_embodied_kg"),
         "vendor_location_kg": None, "vendor_market_kg": None},
    ]  # fmt: skip


# --- intensity -----------------------------------------------------------------------------------


def _per(kg: float, amount: float) -> float | None:
    return _r(kg / amount) if amount > 0 else None


def intensity(rows: pd.DataFrame) -> dict[str, Any]:
    """kg CO2e per GPU-hour, per currency unit (per currency) and per training run (per 1M tokens
    and 1k requests: serving_intensity.py)."""
    gpu_hours = rows["gpu_hours"].sum()
    location, market = rows["co2e_location_kg"].sum(), rows["co2e_market_kg"].sum()
    per_currency = []
    costed = rows.loc[
        rows["cost"].notna(), ["currency", "cost", "co2e_location_kg", "co2e_market_kg"]
    ]
    for currency, group in costed.groupby("currency", sort=True):
        cost = group["cost"].sum()
        per_currency.append({
            "currency": str(currency), "cost": _r(cost),
            "location_kg_per_unit": _per(group["co2e_location_kg"].sum(), cost),
            "market_kg_per_unit": _per(group["co2e_market_kg"].sum(), cost),
        })  # fmt: skip
    training = rows.loc[(rows["phase"] == "training") & (rows["scope"] == "2"),
                        [*counts.run_columns(rows), "co2e_location_kg", "co2e_market_kg"]]  # fmt: skip
    runs = counts.runs(training)
    return {
        "gpu_hours": _r(gpu_hours),
        "location_kg_per_gpu_hour": _per(location, gpu_hours),
        "market_kg_per_gpu_hour": _per(market, gpu_hours),
        "per_currency": per_currency,
        "training_runs": runs,
        "location_kg_per_training_run": _per(training["co2e_location_kg"].sum(), runs),
        "market_kg_per_training_run": _per(training["co2e_market_kg"].sum(), runs),
    }


# --- location table ------------------------------------------------------------------------------


def location_table(rows: pd.DataFrame, register: list[dict[str, Any]]) -> dict[str, Any]:
    """Per grid zone: kWh, factor (g/kWh, source, year), kg CO2e; and a what-if that moves all
    energy to the cleanest zone the period used."""
    factors = {f["factor_id"]: f for f in register}
    zones = []
    used = rows[["region", "facility_energy_kwh", "co2e_location_kg", "grid_factor_id", "site",
                 "grid_intensity_g_per_kwh"]]  # fmt: skip
    for zone, group in used.groupby("region", sort=True):
        kwh = _sum(group, "facility_energy_kwh")
        factor = (
            factors.get(str(group["grid_factor_id"].dropna().iloc[0]))
            if group["grid_factor_id"].notna().any()
            else None
        )
        zones.append({
            "zone": str(zone), "facility_energy_kwh": kwh, "co2e_location_kg": _sum(group, "co2e_location_kg"),
            "sites": sorted(group["site"].dropna().unique().tolist()),
            "g_per_kwh": _r(group["grid_intensity_g_per_kwh"].max()),
            "factor_id": factor["factor_id"] if factor else None,
            "source": factor.get("source") if factor else None,
            "year": factor.get("year") if factor else None,
        })  # fmt: skip
    zones.sort(key=lambda z: (-z["facility_energy_kwh"], z["zone"]))
    return {"zones": zones, "what_if": _what_if(zones)}


def _what_if(zones: list[dict[str, Any]]) -> dict[str, Any] | None:
    used = [z for z in zones if z["facility_energy_kwh"] > 0]
    if not used:
        return None
    cleanest = min(used, key=lambda z: (z["g_per_kwh"], z["zone"]))
    kwh = sum(z["facility_energy_kwh"] for z in used)
    actual = sum(z["co2e_location_kg"] for z in used)
    moved = kwh * cleanest["g_per_kwh"] / G_PER_KG
    return {
        "zone": cleanest["zone"], "g_per_kwh": cleanest["g_per_kwh"],
        "facility_energy_kwh": _r(kwh), "actual_kg": _r(actual), "what_if_kg": _r(moved),
        "avoided_kg": _r(actual - moved),
    }  # fmt: skip


# --- model footprint cards -----------------------------------------------------------------------

CARD_SUMS = ["gpu_hours", "co2e_embodied_kg", "facility_energy_kwh", "co2e_location_kg",
             "co2e_market_kg"]  # fmt: skip
# Per-row products the cards sum (a rollup carries them summed, rollup.py).
IDLE_SUMS = ["idle_facility_kwh", "idle_location_g", "idle_market_g", "covered_gpu_hours"]
CARD_COLUMNS = ["model", "site", "gpu_type", "n_gpus", "phase", "region", *CARD_SUMS, *IDLE_SUMS]


IDLE_INPUTS = ["idle_gpu_energy_kwh", "pue", "grid_intensity_g_per_kwh",
               "market_intensity_g_per_kwh", "gpu_hours", "telemetry_coverage_ratio"]  # fmt: skip


def idle_products(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per row: the facility kWh of the idle GPU time DCGM measured (its IT kWh × the row's
    PUE), that × the row's location and market g/kWh, and the GPU-hours telemetry covered."""
    return idle_products_of({c: rows[c].to_numpy(dtype=float, na_value=np.nan) for c in IDLE_INPUTS})  # fmt: skip


def idle_products_of(rows: Mapping[str, np.ndarray], scratch: Scratch | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """`idle_products` from the IDLE_INPUTS as float arrays (missing: NaN); the arrays it gives
    are `scratch`'s when given (a day-by-day reader's, rollup.py), overwritten next time."""
    arrays = scratch or Scratch()

    def filled(name: str, value: float) -> np.ndarray:
        values = rows[name]
        if not np.isnan(np.sum(values)):  # no NaN (one would make the sum NaN): as it is
            return values
        found = arrays.array(f"idle inputs {name}", len(values))
        np.copyto(found, values)
        np.copyto(found, value, where=np.isnan(values))
        return found

    def product(name: str, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return np.multiply(first, second, out=arrays.array(f"idle products {name}", len(first)))

    kwh = product("idle_facility_kwh", filled("idle_gpu_energy_kwh", 0.0), filled("pue", 1.0))
    location = product("idle_location_g", kwh, filled("grid_intensity_g_per_kwh", 0.0))
    market = product("idle_market_g", kwh, filled("market_intensity_g_per_kwh", 0.0))
    hours = filled("gpu_hours", 0.0)
    covered = product("covered_gpu_hours", hours, filled("telemetry_coverage_ratio", 0.0))
    return {"idle_facility_kwh": kwh, "idle_location_g": location, "idle_market_g": market,
            "covered_gpu_hours": covered}  # fmt: skip


def _idle_by_site(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    idle = rows.loc[rows["model"] == IDLE_MODEL, ["site", *CARD_SUMS[2:]]]
    return {
        str(site): {"kwh": g["facility_energy_kwh"].sum(), "kg": g["co2e_location_kg"].sum(),
                    "market_kg": g["co2e_market_kg"].sum()}
        for site, g in idle.groupby("site")
    }  # fmt: skip


def model_cards(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Per model: hardware, GPU-hours, energy, location/market and embodied emissions, and the
    split dynamic / idle / embodied. Idle is the GPU time DCGM measured idle inside the model's
    own runs (its IT kWh × the row's PUE, at the row's grid factors) plus the model's share (by
    GPU-hours on each site) of the site's idle capacity (rows of model `idle`); dynamic is the
    rest of its own runs' location-based emissions."""
    idle = _idle_by_site(rows)
    if not counts.is_rollup(rows):
        rows = rows.assign(**idle_products(rows))
    busy = rows.loc[~rows["model"].isin(NOT_MODELS), [*CARD_COLUMNS, *counts.run_columns(rows)]]
    site_gpu_hours = busy.groupby("site")["gpu_hours"].sum()
    cards = []
    for model, group in busy.groupby("model", sort=True):
        cards.append(_card(str(model), group, idle, site_gpu_hours))
    return sorted(cards, key=lambda c: (-c["facility_energy_kwh"], c["model"]))


def _capacity_share(group: pd.DataFrame, idle: dict[str, dict[str, float]],
                    site_gpu_hours: pd.Series) -> dict[str, float]:  # fmt: skip
    """kWh and kg of the sites' idle capacity that fall to this model by its GPU-hours there."""
    found = {"kwh": 0.0, "kg": 0.0, "market_kg": 0.0}
    for site, hours in group.groupby("site")["gpu_hours"].sum().items():
        share = hours / site_gpu_hours[site] if site_gpu_hours.get(site, 0) > 0 else 0.0
        spare = idle.get(str(site), {})
        for key in found:
            found[key] += share * spare.get(key, 0.0)
    return found


def _measured_idle(group: pd.DataFrame) -> dict[str, float]:
    """Facility kWh and kg of the idle GPU time DCGM measured in the model's own runs."""
    return {
        "kwh": float(group["idle_facility_kwh"].sum()),
        "kg": float(group["idle_location_g"].sum() / G_PER_KG),
        "market_kg": float(group["idle_market_g"].sum() / G_PER_KG),
    }


def _card(model: str, group: pd.DataFrame, idle: dict[str, dict[str, float]],
          site_gpu_hours: pd.Series) -> dict[str, Any]:  # fmt: skip
    measured, capacity = _measured_idle(group), _capacity_share(group, idle, site_gpu_hours)
    gpus = group[~group["gpu_type"].isin(NO_GPU_TYPES)].groupby("gpu_type")["n_gpus"].max()
    gpu_hours = group["gpu_hours"].fillna(0.0)
    covered = group["covered_gpu_hours"].sum()
    location = _sum(group, "co2e_location_kg")
    dynamic = max(location - measured["kg"], 0.0)
    idle_kg = measured["kg"] + capacity["kg"]
    whole = dynamic + idle_kg + _sum(group, "co2e_embodied_kg")
    return {
        "model": model,
        "hardware": [{"gpu_type": str(t), "largest_run_gpus": int(n)} for t, n in gpus.items()],
        "phases": sorted(group["phase"].dropna().unique().tolist()),
        "sites": sorted(group["site"].dropna().unique().tolist()),
        "zones": sorted(group["region"].dropna().unique().tolist()),
        "runs": counts.runs(group),
        "gpu_hours": _sum(group, "gpu_hours"),
        "telemetry_covered_ratio": _r(covered / gpu_hours.sum()) if gpu_hours.sum() > 0 else 0.0,
        "facility_energy_kwh": _sum(group, "facility_energy_kwh"),
        "co2e_location_kg": location,
        "co2e_market_kg": _sum(group, "co2e_market_kg"),
        "co2e_embodied_kg": _sum(group, "co2e_embodied_kg"),
        "dynamic_kg": _r(dynamic),
        "idle_kwh": _r(measured["kwh"] + capacity["kwh"]), "idle_kg": _r(idle_kg),
        "idle_market_kg": _r(measured["market_kg"] + capacity["market_kg"]),
        "idle_measured_kwh": _r(measured["kwh"]), "idle_measured_kg": _r(measured["kg"]),
        "idle_capacity_kwh": _r(capacity["kwh"]), "idle_capacity_kg": _r(capacity["kg"]),
        "idle_share_ratio": _r(idle_kg / whole) if whole > 0 else 0.0,
    }  # fmt: skip
