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
    """Missing (NaN) as 0; the array itself when none is missing (never written to)."""
    missing = np.isnan(values)
    return np.where(missing, 0.0, values) if missing.any() else values


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


def _sum(values: np.ndarray) -> float:
    """`np.nansum` (NaN taken as 0). Without a NaN the sum is not NaN, and nansum would sum the
    same values: np.sum alone, without nansum's copy and NaN mask."""
    total = np.sum(values)
    return float(np.nansum(values) if np.isnan(total) else total)


def _mask_kind(mask: np.ndarray) -> str:
    return "all" if mask.all() else "some" if mask.any() else "none"


MEASURED = "measured"  # the facility energy the ledger holds, the central case


class _Cases:
    """The per-row arrays of one ledger part, with what several cases share worked out once.
    Each figure is the sum of the same per-row values, worked out by the same operations, as
    case by case; shortcuts only where the values are the same (x × 1.0, x + 0.0, a case
    equal to another), so the figures are the same to the last digit."""

    def __init__(self, rows: dict[str, np.ndarray]) -> None:
        self.rows = rows
        self.filled = {c: _filled(rows[c]) for c in MEASURES}
        self.embodied_kg = _sum(self.filled["co2e_embodied_kg"])
        self._kinds = {"s2": _mask_kind(rows["s2"]), "s31": _mask_kind(rows["s31"])}
        self._facility: dict[Any, tuple[np.ndarray, float]] = {}
        self._emissions: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
        self._kpis: dict[tuple[Any, float], dict[str, float]] = {}
        self._scratch = (np.empty(len(rows["pue"])), np.empty(len(rows["pue"])))
        self._metered = rows["facility_energy_kwh"] > 0
        self._it_positive = self.filled["it_energy_kwh"] > 0
        self._gpu_finite = bool(np.isfinite(self.filled["gpu_energy_kwh"]).all())
        # f / f is exactly 1 where f > 0 is finite: the measured case's ratio is 1 throughout
        self._measured_finite = not bool(np.isinf(self.filled["facility_energy_kwh"]).any())

    def figures(self, key: Any, grid: float, embodied: float) -> dict[str, float]:
        """KPI figures when each row's facility energy is that of `key` (MEASURED, or a PUE
        and utilisation case worked out by `scenario`) and factors are scaled."""
        if (key, grid) not in self._kpis:
            self._kpis[key, grid] = self._sums(key, grid)
        return {**self._kpis[key, grid], "co2e_embodied_kg": self.embodied_kg * embodied}

    def _sums(self, key: Any, grid: float) -> dict[str, float]:
        location, market = self._emissions[key]
        if grid != 1.0:  # x × 1.0 is x: skipped; the products into scratch arrays
            location = np.multiply(location, grid, out=self._scratch[0])
            market = np.multiply(market, grid, out=self._scratch[1])
        total_location, total_market = _sum(location), _sum(market)
        return {
            "facility_energy_kwh": self._facility[key][1],
            "scope2_location_kg": self._part_sum(location, "s2", total_location),
            "scope2_market_kg": self._part_sum(market, "s2", total_market),
            "scope31_location_kg": self._part_sum(location, "s31", total_location),
            "scope31_market_kg": self._part_sum(market, "s31", total_market),
            "co2e_location_kg": total_location,
            "co2e_market_kg": total_market,
        }

    def _part_sum(self, values: np.ndarray, mask: str, total: float) -> float:
        """`np.nansum(values[rows[mask]])`: the total when the mask takes all rows."""
        kind = self._kinds[mask]
        if kind != "some":
            return total if kind == "all" else 0.0
        return _sum(values[self.rows[mask]])

    def measured(self) -> Any:
        """The key of the central case, the ledger's own facility energy."""
        if MEASURED not in self._facility:
            facility = self.filled["facility_energy_kwh"]
            self._facility[MEASURED] = (facility, _sum(facility))
            if self._measured_finite:
                self._emissions[MEASURED] = (self.filled["co2e_location_kg"], self.filled["co2e_market_kg"])  # fmt: skip
            else:
                self._emissions[MEASURED] = self._scaled(facility)
        return MEASURED

    def _scaled(self, facility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Location and market kg per row, × facility / measured where energy was measured."""
        ratio = np.ones(len(facility))
        np.divide(facility, self.rows["facility_energy_kwh"], out=ratio, where=self._metered)
        return self.filled["co2e_location_kg"] * ratio, self.filled["co2e_market_kg"] * ratio

    def scenario(self, pue: tuple[str, np.ndarray], util: tuple[str, np.ndarray | None]) -> Any:
        """The key of the facility energy at a PUE case and a utilisation case (None: 1.0 on
        every row), each (name, per-row values), worked out once per pair of names."""
        key = (pue[0], util[0])
        if key not in self._facility:
            facility = self._scenario_facility(pue[1], util[1])
            self._facility[key] = (facility, _sum(facility))
            self._emissions[key] = self._scaled(facility)
        return key

    def _scenario_facility(self, pue: np.ndarray, util: np.ndarray | None) -> np.ndarray:
        """it_kwh + gpu_kwh × (utilisation - 1), × PUE where there is IT energy; else the
        measured facility energy; missing 0."""
        it_kwh, it = self.filled["it_energy_kwh"], self._scratch[0]
        if util is None and self._gpu_finite:  # gpu × 0 is ±0, and it_kwh ± 0 is it_kwh (> 0)
            np.multiply(it_kwh, pue, out=it)
        else:
            if util is None:
                it.fill(0.0)
            else:
                np.subtract(util, 1, out=it)
            np.multiply(self.filled["gpu_energy_kwh"], it, out=it)
            np.add(it_kwh, it, out=it)
            np.multiply(it, pue, out=it)
        facility = np.where(self._it_positive, it, self.rows["facility_energy_kwh"])
        if np.isnan(np.sum(facility)):  # a NaN among them: 0 (_filled)
            facility[np.isnan(facility)] = 0.0
        return facility


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
    # None: 1.0 on every row. The utilisation's high case is the central one (TDP, no case
    # above it), and so is the low one where no row was modelled at the default.
    util_low = None if bool((util == 1.0).all()) else util
    cases = {
        "pue": {"low": rows["pue_low"], "central": rows["pue"], "high": rows["pue_high"]},
        "utilisation": {"low": util_low, "central": None, "high": None},
        "grid": {"low": 1 - GRID_RELATIVE, "central": 1.0, "high": 1 + GRID_RELATIVE},
        "embodied": {"low": EMBODIED_LOW_SCALE, "central": 1.0, "high": 1.0},
    }
    names = [p[0] for p in PARAMETERS]
    parts = _Cases(rows)

    def scenario(choice: dict[str, str]) -> dict[str, float]:
        """Figures with each parameter at `choice[name]` ('low', 'central' or 'high')."""
        pue, utilisation = choice["pue"], cases["utilisation"][choice["utilisation"]]
        key = parts.scenario((pue, cases["pue"][pue]), (choice["utilisation"] if utilisation is not None else "central", utilisation))  # fmt: skip
        return parts.figures(key, cases["grid"][choice["grid"]], cases["embodied"][choice["embodied"]])  # fmt: skip

    figures = {
        "central": parts.figures(parts.measured(), 1.0, 1.0),
        "low": scenario(dict.fromkeys(names, "low")),
        "high": scenario(dict.fromkeys(names, "high")),
    }
    for name in names:
        if name == "embodied":
            continue  # the service life moves only the embodied allocation, not the tornado's KPI
        one = dict.fromkeys(names, "central")
        for end in ("low", "high"):
            figures[f"{name}:{end}"] = scenario({**one, name: end})
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
