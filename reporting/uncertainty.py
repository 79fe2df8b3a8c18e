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
from reporting.scratch import Scratch

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


def pue_cases(pue: np.ndarray, is_default: np.ndarray, scratch: Scratch | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Low and high PUE per row from its PUE (missing: 1.0) and whether it is a default (the
    arrays `scratch`'s when given, overwritten next time)."""
    arrays = scratch or Scratch()
    low = np.multiply(pue, 1 - PUE_RELATIVE, out=arrays.array("pue low", len(pue)))
    np.copyto(low, DEFAULT_PUE_RANGE[0], where=is_default)
    high = np.multiply(pue, 1 + PUE_RELATIVE, out=arrays.array("pue high", len(pue)))
    np.copyto(high, DEFAULT_PUE_RANGE[1], where=is_default)
    return np.maximum(low, 1.0, out=low), high


MEASURES = ("it_energy_kwh", "gpu_energy_kwh", "facility_energy_kwh", "co2e_location_kg",
            "co2e_market_kg", "co2e_embodied_kg")  # fmt: skip


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
    equal to another), so the figures are the same to the last digit. Working arrays come
    from `scratch` (scratch.py)."""

    def __init__(self, rows: dict[str, np.ndarray], scratch: Scratch) -> None:
        self.rows, self._scratch, self._rows = rows, scratch, len(rows["pue"])
        found = {c: self._filled(c) for c in MEASURES}
        self.filled = {c: filled for c, (filled, _) in found.items()}
        self._totals = {c: total for c, (_, total) in found.items()}  # np.sum of each filled
        self.embodied_kg = self._totals["co2e_embodied_kg"]
        self._kinds = {"s2": _mask_kind(rows["s2"]), "s31": _mask_kind(rows["s31"])}
        self._metered = rows["facility_energy_kwh"] > 0
        self._it_positive = self.filled["it_energy_kwh"] > 0
        # A finite sum has no infinite term (nor NaN): checked on the sums, where they show it.
        self._gpu_finite = bool(np.isfinite(self._totals["gpu_energy_kwh"]))

    def _array(self, name: str) -> np.ndarray:
        return self._scratch.array(f"uncertainty {name}", self._rows)

    def _filled(self, name: str) -> tuple[np.ndarray, float]:
        """The measure with missing (NaN) as 0, and its sum; the array itself (never written
        to) when its sum shows that none is missing (a NaN makes the sum NaN)."""
        values = self.rows[name]
        total = np.sum(values)
        if not np.isnan(total):
            return values, float(total)
        filled = self._array(f"filled {name}")
        np.copyto(filled, values)
        np.copyto(filled, 0.0, where=np.isnan(values))
        return filled, float(np.sum(filled))

    def kpis(self, key: Any, pue: np.ndarray | None, util: np.ndarray | None, grids: list[float]) -> dict[float, dict[str, float]]:  # fmt: skip
        """KPI figures (but embodied) at each grid scale when each row's facility energy is
        the ledger's (`key` MEASURED) or at PUE `pue` and utilisation scale `util` (None:
        1.0 on every row)."""
        if key == MEASURED:
            facility, total = self.filled["facility_energy_kwh"], self._totals["facility_energy_kwh"]  # fmt: skip
        else:
            facility, total = self._scenario_facility(pue, util)
        if key == MEASURED and np.isfinite(total):  # f / f is 1 where f > 0 is finite
            location, market = self.filled["co2e_location_kg"], self.filled["co2e_market_kg"]
        else:
            location, market = self._scaled(facility)
        return {grid: self._sums(location, market, grid, total) for grid in grids}

    def _sums(self, location: np.ndarray, market: np.ndarray, grid: float, facility_kwh: float) -> dict[str, float]:  # fmt: skip
        if grid != 1.0:  # x × 1.0 is x: skipped
            location = np.multiply(location, grid, out=self._array("location × grid"))
            market = np.multiply(market, grid, out=self._array("market × grid"))
        total_location, total_market = _sum(location), _sum(market)
        return {
            "facility_energy_kwh": facility_kwh,
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
        taken = self.rows[mask]
        part = self._scratch.array("uncertainty part", int(np.count_nonzero(taken)))
        return _sum(np.compress(taken, values, out=part))

    def _scaled(self, facility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Location and market kg per row, × facility / measured where energy was measured."""
        ratio = self._array("ratio")
        ratio.fill(1.0)
        np.divide(facility, self.rows["facility_energy_kwh"], out=ratio, where=self._metered)
        location = np.multiply(self.filled["co2e_location_kg"], ratio, out=self._array("location"))
        market = np.multiply(self.filled["co2e_market_kg"], ratio, out=self._array("market"))
        return location, market

    def _scenario_facility(self, pue: np.ndarray, util: np.ndarray | None) -> tuple[np.ndarray, float]:  # fmt: skip
        """it_kwh + gpu_kwh × (utilisation - 1), × PUE where there is IT energy; else the
        measured facility energy; missing 0. With its sum."""
        it_kwh, it = self.filled["it_energy_kwh"], self._array("it")
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
        facility = self._array("facility")  # where(it_kwh > 0, it, measured), missing 0
        np.copyto(facility, self.rows["facility_energy_kwh"])
        np.copyto(facility, it, where=self._it_positive)
        total = np.sum(facility)
        if np.isnan(total):
            facility[np.isnan(facility)] = 0.0
            total = np.sum(facility)
        return facility, float(total)


def scenario_figures(
    rows: pd.DataFrame, register: list[Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """The KPI figures (unrounded sums) of every case `ranges` shows: central, all low, all
    high, and each parameter low and high alone (`pue:low`, ...). Sums: the figures of a ledger
    read in parts add up (`added`)."""
    return figures_of(case_inputs(rows, register))


def figures_of(rows: dict[str, np.ndarray], scratch: Scratch | None = None) -> dict[str, dict[str, float]]:  # fmt: skip
    """`scenario_figures` from the arrays `case_inputs` gives (working arrays from `scratch`,
    kept by a reader of many parts)."""
    util = rows["util_low"]
    pues = {"low": rows["pue_low"], "central": rows["pue"], "high": rows["pue_high"]}
    # None: 1.0 on every row. The utilisation's high case is the central one (TDP, no case
    # above it), and so is the low one where no row was modelled at the default.
    utils = {"low": None if bool((util == 1.0).all()) else util, "central": None, "high": None}
    grids = {"low": 1 - GRID_RELATIVE, "central": 1.0, "high": 1 + GRID_RELATIVE}
    embodied = {"low": EMBODIED_LOW_SCALE, "central": 1.0, "high": 1.0}
    names = [p[0] for p in PARAMETERS]
    choices = {"low": dict.fromkeys(names, "low"), "high": dict.fromkeys(names, "high")}
    for name in names:
        if name == "embodied":
            continue  # the service life moves only the embodied allocation, not the tornado's KPI
        for end in ("low", "high"):
            choices[f"{name}:{end}"] = {**dict.fromkeys(names, "central"), name: end}
    # Each case's facility energy (MEASURED, or a PUE and a utilisation case), grid and embodied scale
    plan: dict[str, tuple[Any, float, float]] = {"central": (MEASURED, 1.0, 1.0)}
    for case, choice in choices.items():
        util_case = choice["utilisation"] if utils[choice["utilisation"]] is not None else "central"
        plan[case] = ((choice["pue"], util_case), grids[choice["grid"]], embodied[choice["embodied"]])  # fmt: skip
    parts = _Cases(rows, scratch or Scratch())
    sums = {}
    for key in dict.fromkeys(key for key, _, _ in plan.values()):
        pue, util_scale = (None, None) if key == MEASURED else (pues[key[0]], utils[key[1]])
        wanted = list(dict.fromkeys(grid for k, grid, _ in plan.values() if k == key))
        sums |= {(key, grid): found for grid, found in parts.kpis(key, pue, util_scale, wanted).items()}  # fmt: skip
    return {
        case: {**sums[key, grid], "co2e_embodied_kg": parts.embodied_kg * scale}
        for case, (key, grid, scale) in plan.items()
    }


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
