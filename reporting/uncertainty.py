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

from collections.abc import Callable, Mapping
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


def default_pues(register: list[Mapping[str, Any]]) -> set[str]:
    """The ids of the packaged default PUEs (their range is DEFAULT_PUE_RANGE)."""
    return {str(f["factor_id"]) for f in register if f["kind"] == "pue" and f["is_default"]}


def gpu_power_w(text: object, values: dict[str, float], end: str) -> float:
    """W_min or W_max (`end`) of a row's GPU power factor ids (0 when it names no such one)."""
    if not isinstance(text, str):
        return 0.0
    return next((values.get(i, 0.0) for i in text.split(";") if i.endswith(f":{end}")), 0.0)


def default_util(factor_id: object, values: dict[str, float]) -> float:
    """The utilisation a row's GPU energy was modelled at (1.0, TDP, when unknown)."""
    return values.get(str(factor_id), 1.0)


def util_scale(
    defaulted: np.ndarray, default_u: np.ndarray, w_min: np.ndarray, w_max: np.ndarray
) -> np.ndarray:
    """GPU energy at the low utilisation ÷ GPU energy at the default, per row (1 elsewhere)."""
    at_default = w_min + default_u * (w_max - w_min)
    at_low = w_min + UTIL_LOW_RATIO * (w_max - w_min)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(at_default > 0, at_low / at_default, 1.0)
    return np.where(defaulted, scale, 1.0)


def pue_cases(pue: np.ndarray, is_default: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Low and high PUE per row from its PUE (missing: 1.0) and whether it is a default."""
    low = np.where(is_default, DEFAULT_PUE_RANGE[0], pue * (1 - PUE_RELATIVE))
    high = np.where(is_default, DEFAULT_PUE_RANGE[1], pue * (1 + PUE_RELATIVE))
    return np.maximum(low, 1.0), high


MEASURES = ("it_energy_kwh", "gpu_energy_kwh", "facility_energy_kwh", "co2e_location_kg",
            "co2e_market_kg", "co2e_embodied_kg")  # fmt: skip


def _filled(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), 0.0, values)


def case_inputs(rows: pd.DataFrame, register: list[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """What `figures_of` reads, from ledger rows: the measures as float arrays (missing: NaN),
    the scope masks, the central PUE (missing: 1.0), its low and high cases and the low
    utilisation's scale. The cases are worked out many times per row, where pandas'
    per-operation cost would dominate: numpy arrays throughout."""
    values = _factor_values(register)
    found = {c: rows[c].to_numpy(dtype=float, na_value=np.nan) for c in MEASURES}
    for name, scope in (("s2", "2"), ("s31", "3.1")):
        found[name] = (rows["scope"] == scope).to_numpy(dtype=bool, na_value=False)
    found["pue"] = rows["pue"].fillna(1.0).to_numpy(dtype=float)
    is_default = rows["pue_factor_id"].isin(default_pues(register)).to_numpy(dtype=bool)
    found["pue_low"], found["pue_high"] = pue_cases(found["pue"], is_default)
    ids = rows["gpu_power_factor_id"]
    defaulted = rows["gpu_util_factor_id"].notna() & (rows["energy_method"] == "modelled")
    found["util_low"] = util_scale(
        defaulted.to_numpy(dtype=bool, na_value=False),
        _mapped(rows["gpu_util_factor_id"], lambda i: default_util(i, values)),
        _mapped(ids, lambda text: gpu_power_w(text, values, "min")),
        _mapped(ids, lambda text: gpu_power_w(text, values, "max")),
    )
    return found


def _mapped(column: pd.Series, function: Callable[[object], float]) -> np.ndarray:
    return map_distinct(column, function).to_numpy(dtype=float)


def _sum(values: np.ndarray, has_nan: bool) -> float:
    """`np.nansum`: the same sum (NaN taken as 0), the copy made only if there is a NaN."""
    return float(np.nansum(values) if has_nan else np.sum(values))


class _Cases:
    """The per-row arrays of one ledger part, with what several cases share worked out once
    (the same operations in the same order as case by case: the same figures)."""

    def __init__(self, rows: dict[str, np.ndarray]) -> None:
        self.rows = rows
        self.filled = {c: _filled(rows[c]) for c in MEASURES}
        self.s2, self.s31 = rows["s2"], rows["s31"]
        self.embodied_kg = float(np.nansum(self.filled["co2e_embodied_kg"]))
        self._scaled: dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._nan: dict[Any, tuple[bool, bool]] = {}  # NaN in location, market (any grid)
        self._mask_kind: dict[int, str] = {}
        self._scratch = (np.empty(len(rows["pue"])), np.empty(len(rows["pue"])))
        self._ratio = np.empty(len(rows["pue"]))
        self._metered = rows["facility_energy_kwh"] > 0

    def figures(self, facility: np.ndarray, grid: float, embodied: float, key: Any) -> dict[str, float]:  # fmt: skip
        """KPI figures when each row's facility energy is `facility` (the same for the same
        `key`) and factors are scaled."""
        if key not in self._scaled:
            # where(measured > 0, facility / measured, 1.0), into the ratio's scratch array
            ratio = self._ratio
            ratio.fill(1.0)
            np.divide(facility, self.rows["facility_energy_kwh"], out=ratio, where=self._metered)
            location = self.filled["co2e_location_kg"] * ratio
            market = self.filled["co2e_market_kg"] * ratio
            self._scaled[key] = (facility, location, market)
            self._nan[key] = (bool(np.isnan(location).any()), bool(np.isnan(market).any()))
        facility, location, market = self._scaled[key]
        nan_location, nan_market = self._nan[key]  # the grid scale (±15 %) keeps them
        if grid != 1.0:  # x × 1.0 is x: skipped; the products into scratch arrays
            location = np.multiply(location, grid, out=self._scratch[0])
            market = np.multiply(market, grid, out=self._scratch[1])
        return {
            "facility_energy_kwh": _sum(facility, False),  # filled
            "scope2_location_kg": self._part_sum(location, self.s2, nan_location),
            "scope2_market_kg": self._part_sum(market, self.s2, nan_market),
            "scope31_location_kg": self._part_sum(location, self.s31, nan_location),
            "scope31_market_kg": self._part_sum(market, self.s31, nan_market),
            "co2e_location_kg": _sum(location, nan_location),
            "co2e_market_kg": _sum(market, nan_market),
            "co2e_embodied_kg": self.embodied_kg * embodied,
        }

    def _part_sum(self, values: np.ndarray, mask: np.ndarray, has_nan: bool) -> float:
        """`np.nansum(values[mask])`, without the copy when the mask takes all or none."""
        key = id(mask)
        if key not in self._mask_kind:
            self._mask_kind[key] = "all" if mask.all() else "some" if mask.any() else "none"
        kind = self._mask_kind[key]
        if kind == "none":
            return 0.0
        return _sum(values if kind == "all" else values[mask], has_nan)

    def scenario(self, cases: dict[str, Any], choice: dict[str, str]) -> dict[str, float]:
        """Figures with each parameter at `choice[name]` ('low', 'central' or 'high')."""
        key = (choice["pue"], choice["utilisation"])
        if key in self._scaled:
            facility = self._scaled[key][0]
        else:
            # it_kwh + gpu_kwh × (utilisation - 1), × PUE where there is IT energy; in place
            it_kwh, it = self.filled["it_energy_kwh"], self._scratch[0]
            np.subtract(cases["utilisation"][choice["utilisation"]], 1, out=it)
            np.multiply(self.filled["gpu_energy_kwh"], it, out=it)
            np.add(it_kwh, it, out=it)
            np.multiply(it, cases["pue"][choice["pue"]], out=it)
            facility = np.where(it_kwh > 0, it, self.rows["facility_energy_kwh"])
            facility[np.isnan(facility)] = 0.0  # _filled
        return self.figures(facility, cases["grid"][choice["grid"]],
                            cases["embodied"][choice["embodied"]], key)  # fmt: skip


def scenario_figures(
    rows: pd.DataFrame, register: list[Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """The KPI figures (unrounded sums) of every case `ranges` shows: central, all low, all
    high, and each parameter low and high alone (`pue:low`, ...). Sums: the figures of a ledger
    read in parts add up (`added`)."""
    return figures_of(case_inputs(rows, register))


def figures_of(rows: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """`scenario_figures` from the arrays `case_inputs` gives."""
    util = rows["util_low"]
    cases = {
        "pue": {"low": rows["pue_low"], "central": rows["pue"], "high": rows["pue_high"]},
        "utilisation": {"low": util, "central": np.ones(len(util)), "high": np.ones(len(util))},
        "grid": {"low": 1 - GRID_RELATIVE, "central": 1.0, "high": 1 + GRID_RELATIVE},
        "embodied": {"low": EMBODIED_LOW_SCALE, "central": 1.0, "high": 1.0},
    }
    names = [p[0] for p in PARAMETERS]
    parts = _Cases(rows)
    figures = {
        "central": parts.figures(parts.filled["facility_energy_kwh"], 1.0, 1.0, "measured"),
        "low": parts.scenario(cases, dict.fromkeys(names, "low")),
        "high": parts.scenario(cases, dict.fromkeys(names, "high")),
    }
    for name in names:
        if name == "embodied":
            continue  # the service life moves only the embodied allocation, not the tornado's KPI
        one = dict.fromkeys(names, "central")
        for end in ("low", "high"):
            figures[f"{name}:{end}"] = parts.scenario(cases, {**one, name: end})
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
