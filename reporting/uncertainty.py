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


MEASURES = ("it_energy_kwh", "gpu_energy_kwh", "facility_energy_kwh", "co2e_location_kg",
            "co2e_market_kg", "co2e_embodied_kg")  # fmt: skip


def _filled(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), 0.0, values)


def _arrays(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """The measures as float arrays (missing: NaN) and the scope masks: the cases below are
    worked out many times per row, where pandas' per-operation cost would dominate."""
    found = {c: rows[c].to_numpy(dtype=float, na_value=np.nan) for c in MEASURES}
    for name, scope in (("s2", "2"), ("s31", "3.1")):
        found[name] = (rows["scope"] == scope).to_numpy(dtype=bool, na_value=False)
    return found


def _figures(
    rows: dict[str, np.ndarray], facility: np.ndarray, grid: float, embodied: float
) -> dict[str, float]:
    """KPI figures when each row's facility energy is `facility` and factors are scaled."""
    measured = rows["facility_energy_kwh"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(measured > 0, facility / measured, 1.0)
    location = _filled(rows["co2e_location_kg"]) * ratio * grid
    market = _filled(rows["co2e_market_kg"]) * ratio * grid
    s2, s31 = rows["s2"], rows["s31"]
    return {
        "facility_energy_kwh": float(np.nansum(facility)),
        "scope2_location_kg": float(np.nansum(location[s2])),
        "scope2_market_kg": float(np.nansum(market[s2])),
        "scope31_location_kg": float(np.nansum(location[s31])),
        "scope31_market_kg": float(np.nansum(market[s31])),
        "co2e_location_kg": float(np.nansum(location)),
        "co2e_market_kg": float(np.nansum(market)),
        "co2e_embodied_kg": float(np.nansum(_filled(rows["co2e_embodied_kg"])) * embodied),
    }


def _scenario(
    rows: dict[str, np.ndarray], cases: dict[str, Any], choice: dict[str, str]
) -> dict[str, float]:
    """Figures with each parameter at `choice[name]` ('low', 'central' or 'high')."""
    it_kwh = _filled(rows["it_energy_kwh"])
    it = it_kwh + _filled(rows["gpu_energy_kwh"]) * (
        cases["utilisation"][choice["utilisation"]] - 1
    )
    pue = cases["pue"][choice["pue"]]
    facility = np.where(it_kwh > 0, it * pue, rows["facility_energy_kwh"])
    return _figures(rows, _filled(facility), cases["grid"][choice["grid"]],
                    cases["embodied"][choice["embodied"]])  # fmt: skip


def scenario_figures(
    rows: pd.DataFrame, register: list[Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """The KPI figures (unrounded sums) of every case `ranges` shows: central, all low, all
    high, and each parameter low and high alone (`pue:low`, ...). Sums: the figures of a ledger
    read in parts add up (`added`)."""
    values = _factor_values(register)
    pue_low, pue_high = _pue_cases(rows, register)
    util = _util_scale(rows, values).to_numpy(dtype=float)
    central_pue = rows["pue"].fillna(1.0).to_numpy(dtype=float)
    cases = {
        "pue": {
            "low": np.asarray(pue_low, dtype=float),
            "central": central_pue,
            "high": pue_high.to_numpy(dtype=float),
        },
        "utilisation": {"low": util, "central": np.ones(len(util)), "high": np.ones(len(util))},
        "grid": {"low": 1 - GRID_RELATIVE, "central": 1.0, "high": 1 + GRID_RELATIVE},
        "embodied": {"low": EMBODIED_LOW_SCALE, "central": 1.0, "high": 1.0},
    }
    names = [p[0] for p in PARAMETERS]
    arrays = _arrays(rows)
    figures = {
        "central": _figures(arrays, _filled(arrays["facility_energy_kwh"]), 1.0, 1.0),
        "low": _scenario(arrays, cases, dict.fromkeys(names, "low")),
        "high": _scenario(arrays, cases, dict.fromkeys(names, "high")),
    }
    for name in names:
        if name == "embodied":
            continue  # the service life moves only the embodied allocation, not the tornado's KPI
        one = dict.fromkeys(names, "central")
        for end in ("low", "high"):
            figures[f"{name}:{end}"] = _scenario(arrays, cases, {**one, name: end})
    return figures


def added(
    first: dict[str, dict[str, float]], second: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """The figures of two parts of a ledger together."""
    return {case: {k: v + second[case][k] for k, v in kpis.items()} for case, kpis in first.items()}


def ranges(rows: pd.DataFrame, register: list[Mapping[str, Any]]) -> dict[str, Any]:
    """`kpis` with low/central/high, `tornado` for the total location-based emissions, and
    the `parameters` with their ranges (documented in the methodology)."""
    return ranges_of(scenario_figures(rows, register))


def ranges_of(figures: dict[str, dict[str, float]]) -> dict[str, Any]:
    """`ranges` from the figures of `scenario_figures` (of a whole ledger, or added parts)."""
    central, low, high = figures["central"], figures["low"], figures["high"]
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
        "tornado": _tornado(figures),
    }


def _tornado(figures: dict[str, dict[str, float]]) -> dict[str, Any]:
    bars = []
    for name, label, _ in PARAMETERS:
        if name == "embodied":
            continue  # the service life moves only the embodied allocation, not this KPI
        low = figures[f"{name}:low"][TORNADO_KPI]
        high = figures[f"{name}:high"][TORNADO_KPI]
        bars.append({"parameter": label, "low": round(low, 6), "high": round(high, 6)})
    bars.sort(key=lambda b: -abs(b["high"] - b["low"]))
    central = figures["central"][TORNADO_KPI]
    return {"kpi": TORNADO_KPI, "central": round(central, 6), "bars": bars}
