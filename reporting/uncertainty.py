"""Low / central / high for the headline KPIs, and the sensitivity of the total to each input.

Each ledger row's figures are recomputed under a low and a high case of three inputs, one at a
time (the tornado) and all together (the low and high columns; a bounding range, not a
confidence interval):

- PUE: the packaged on-prem default (1.58, Uptime 2023 average) is replaced by 1.3 and 1.7,
  the range ESG_REPORTING §3(c) suggests for unmeasured sites; a configured or provider PUE
  by ±5 % (an assumption for meter and fleet-average error).
- Utilisation assumption: rows modelled with the default GPU utilisation (1.0, TDP) are
  recomputed with 0.5 (Cloud Carbon Footprint's 50 % average-utilisation default) as the low
  case; there is no high case above TDP. GPU power per row is W_min + u × (W_max − W_min) from
  the row's own power factors.
- Grid factor: location- and market-based intensities ±15 % (judgement: the annual sources for
  one zone in ESG_REPORTING §3(b) differ by this much once vintage and basis are aligned; a few
  outliers differ far more). Market-based figures are scaled with the grid, an approximation
  for instruments at 0 g/kWh.
- Embodied: the 4-year service life against a 6-year one (ESG_REPORTING §3(c)) as the low case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from reporting.distinct import map_distinct

DEFAULT_PUE_RANGE = (1.3, 1.7)
PUE_RELATIVE = 0.05
UTIL_LOW_RATIO = 0.5
GRID_RELATIVE = 0.15
EMBODIED_LOW_SCALE = 4 / 6  # 4-year life in the factors, 6-year sensitivity case
PARAMETERS = (
    ("pue", "PUE", "default 1.58 → 1.3–1.7; configured or provider PUE ±5 %"),
    ("utilisation", "GPU utilisation assumption", "default 1.0 (TDP) → 0.5 low; no high case"),
    ("grid", "Grid emission factor", "±15 % on every location- and market-based factor"),
    ("embodied", "Embodied service life", "4 years → 6 years low; no high case"),
)
KPIS = (
    ("facility_energy_kwh", "Facility energy", "mwh"),
    ("scope2_location_kg", "Scope 2 — location-based", "tonnes"),
    ("scope2_market_kg", "Scope 2 — market-based", "tonnes"),
    ("scope31_location_kg", "Scope 3.1 cloud — location-based", "tonnes"),
    ("scope31_market_kg", "Scope 3.1 cloud — market-based", "tonnes"),
    ("co2e_location_kg", "Total — location-based (Scope 2 + 3.1)", "tonnes"),
    ("co2e_market_kg", "Total — market-based (Scope 2 + 3.1)", "tonnes"),
    ("co2e_embodied_kg", "Embodied — management allocation (Scope 3.2)", "tonnes"),
)
TORNADO_KPI = "co2e_location_kg"


def _factor_values(register: list[Mapping[str, Any]]) -> dict[str, float]:
    return {str(f["factor_id"]): float(f["value"]) for f in register}


def _gpu_power_w(ids: pd.Series, values: dict[str, float], end: str) -> pd.Series:
    """W_min or W_max of each row's GPU (0 when the row names no such factor)."""

    def pick(text: object) -> float:
        if not isinstance(text, str):
            return 0.0
        return next((values.get(i, 0.0) for i in text.split(";") if i.endswith(f":{end}")), 0.0)

    return map_distinct(ids, pick).astype(float)


def _util_scale(rows: pd.DataFrame, values: dict[str, float]) -> pd.Series:
    """GPU energy at the low utilisation ÷ GPU energy at the default, per row (1 elsewhere)."""
    defaulted = rows["gpu_util_factor_id"].notna() & (rows["energy_method"] == "modelled")
    default_u = map_distinct(rows["gpu_util_factor_id"], lambda i: values.get(str(i), 1.0))
    default_u = default_u.astype(float)
    w_min = _gpu_power_w(rows["gpu_power_factor_id"], values, "min")
    w_max = _gpu_power_w(rows["gpu_power_factor_id"], values, "max")
    at_default = w_min + default_u * (w_max - w_min)
    at_low = w_min + UTIL_LOW_RATIO * (w_max - w_min)
    scale = (at_low / at_default).where(at_default > 0, 1.0)
    return scale.where(defaulted, 1.0)


def _pue_cases(
    rows: pd.DataFrame, register: list[Mapping[str, Any]]
) -> tuple[pd.Series, pd.Series]:
    defaults = {str(f["factor_id"]) for f in register if f["kind"] == "pue" and f["is_default"]}
    pue = rows["pue"].fillna(1.0).astype(float)
    is_default = rows["pue_factor_id"].isin(defaults)
    low = pue.where(is_default, pue * (1 - PUE_RELATIVE)).mask(is_default, DEFAULT_PUE_RANGE[0])
    high = pue.where(is_default, pue * (1 + PUE_RELATIVE)).mask(is_default, DEFAULT_PUE_RANGE[1])
    return np.maximum(low, 1.0), high


def _figures(
    rows: pd.DataFrame, facility: pd.Series, grid: float, embodied: float
) -> dict[str, float]:
    """KPI figures when each row's facility energy is `facility` and factors are scaled."""
    ratio = (facility / rows["facility_energy_kwh"]).where(rows["facility_energy_kwh"] > 0, 1.0)
    location = rows["co2e_location_kg"].fillna(0) * ratio * grid
    market = rows["co2e_market_kg"].fillna(0) * ratio * grid
    s2, s31 = rows["scope"] == "2", rows["scope"] == "3.1"
    return {
        "facility_energy_kwh": float(facility.sum()),
        "scope2_location_kg": float(location[s2].sum()),
        "scope2_market_kg": float(market[s2].sum()),
        "scope31_location_kg": float(location[s31].sum()),
        "scope31_market_kg": float(market[s31].sum()),
        "co2e_location_kg": float(location.sum()),
        "co2e_market_kg": float(market.sum()),
        "co2e_embodied_kg": float(rows["co2e_embodied_kg"].fillna(0).sum() * embodied),
    }


def _scenario(
    rows: pd.DataFrame, cases: dict[str, Any], choice: dict[str, str]
) -> dict[str, float]:
    """Figures with each parameter at `choice[name]` ('low', 'central' or 'high')."""
    it = rows["it_energy_kwh"].fillna(0) + rows["gpu_energy_kwh"].fillna(0) * (
        cases["utilisation"][choice["utilisation"]] - 1
    )
    pue = cases["pue"][choice["pue"]]
    facility = (it * pue).where(rows["it_energy_kwh"].fillna(0) > 0, rows["facility_energy_kwh"])
    return _figures(rows, facility.fillna(0), cases["grid"][choice["grid"]],
                    cases["embodied"][choice["embodied"]])  # fmt: skip


def ranges(rows: pd.DataFrame, register: list[Mapping[str, Any]]) -> dict[str, Any]:
    """`kpis` with low/central/high, `tornado` for the total location-based emissions, and
    the `parameters` with their ranges (documented in the methodology)."""
    values = _factor_values(register)
    pue_low, pue_high = _pue_cases(rows, register)
    util = _util_scale(rows, values)
    cases = {
        "pue": {"low": pue_low, "central": rows["pue"].fillna(1.0), "high": pue_high},
        "utilisation": {"low": util, "central": util * 0 + 1.0, "high": util * 0 + 1.0},
        "grid": {"low": 1 - GRID_RELATIVE, "central": 1.0, "high": 1 + GRID_RELATIVE},
        "embodied": {"low": EMBODIED_LOW_SCALE, "central": 1.0, "high": 1.0},
    }
    names = [p[0] for p in PARAMETERS]
    central = _figures(rows, rows["facility_energy_kwh"].fillna(0), 1.0, 1.0)
    low = _scenario(rows, cases, dict.fromkeys(names, "low"))
    high = _scenario(rows, cases, dict.fromkeys(names, "high"))
    return {
        "parameters": [{"name": n, "label": label, "range": text} for n, label, text in PARAMETERS],
        "kpis": [
            {
                "key": k,
                "label": label,
                "unit": unit,
                "low": round(low[k], 6),
                "central": round(central[k], 6),
                "high": round(high[k], 6),
            }
            for k, label, unit in KPIS
        ],
        "tornado": _tornado(rows, cases, names, central[TORNADO_KPI]),
    }


def _tornado(
    rows: pd.DataFrame, cases: dict[str, Any], names: list[str], central: float
) -> dict[str, Any]:
    bars = []
    for name, label, _ in PARAMETERS:
        if name == "embodied":
            continue  # the service life moves only the embodied allocation, not this KPI
        one = {n: "central" for n in names}
        low = _scenario(rows, cases, {**one, name: "low"})[TORNADO_KPI]
        high = _scenario(rows, cases, {**one, name: "high"})[TORNADO_KPI]
        bars.append({"parameter": label, "low": round(low, 6), "high": round(high, 6)})
    bars.sort(key=lambda b: -abs(b["high"] - b["low"]))
    return {"kpi": TORNADO_KPI, "central": round(central, 6), "bars": bars}
