"""uncertainty.figures_of works each case out once and skips operations that cannot change a
value (x × 1.0, a case equal to another, nansum without a NaN): its figures must be, to the
last bit, those of each case worked out on its own by its definition, also on parts with
missing values, infinities, -0.0, mixed scopes and no modelled rows."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from reporting import uncertainty

CASES = {"low": 0, "central": 1, "high": 2}


def _by_definition(rows: dict[str, np.ndarray], choice: dict[str, str]) -> dict[str, float]:
    filled = {c: np.where(np.isnan(rows[c]), 0.0, rows[c]) for c in uncertainty.MEASURES}
    measured = rows["facility_energy_kwh"]
    if choice == {}:  # the central figures: the ledger's own facility energy
        facility = filled["facility_energy_kwh"]
        grid, embodied = 1.0, 1.0
    else:
        pue = [rows["pue_low"], rows["pue"], rows["pue_high"]][CASES[choice["pue"]]]
        util = rows["util_low"] if choice["utilisation"] == "low" else np.ones(len(pue))
        it = (filled["it_energy_kwh"] + filled["gpu_energy_kwh"] * (util - 1)) * pue
        facility = np.where(filled["it_energy_kwh"] > 0, it, measured)
        facility = np.where(np.isnan(facility), 0.0, facility)
        grid = [1 - uncertainty.GRID_RELATIVE, 1.0, 1 + uncertainty.GRID_RELATIVE][CASES[choice["grid"]]]  # fmt: skip
        embodied = uncertainty.EMBODIED_LOW_SCALE if choice["embodied"] == "low" else 1.0
    ratio = np.ones(len(facility))
    np.divide(facility, measured, out=ratio, where=measured > 0)
    location = filled["co2e_location_kg"] * ratio * grid
    market = filled["co2e_market_kg"] * ratio * grid
    s2, s31 = rows["s2"], rows["s31"]
    return {
        "facility_energy_kwh": float(np.nansum(facility)),
        "scope2_location_kg": float(np.nansum(location[s2])),
        "scope2_market_kg": float(np.nansum(market[s2])),
        "scope31_location_kg": float(np.nansum(location[s31])),
        "scope31_market_kg": float(np.nansum(market[s31])),
        "co2e_location_kg": float(np.nansum(location)),
        "co2e_market_kg": float(np.nansum(market)),
        "co2e_embodied_kg": float(np.nansum(filled["co2e_embodied_kg"])) * embodied,
    }


def _expected(rows: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    names = [p[0] for p in uncertainty.PARAMETERS]
    found = {"central": _by_definition(rows, {})}
    for end in ("low", "high"):
        found[end] = _by_definition(rows, dict.fromkeys(names, end))
    for name in names[:-1]:  # embodied: not in the tornado
        for end in ("low", "high"):
            found[f"{name}:{end}"] = _by_definition(rows, {**dict.fromkeys(names, "central"), name: end})  # fmt: skip
    return found


def _bits(figures: dict[str, dict[str, float]]) -> dict[str, list[tuple[str, bytes]]]:
    return {case: [(k, struct.pack("<d", v)) for k, v in kpis.items()] for case, kpis in figures.items()}  # fmt: skip


def _part(seed: int, size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = {}
    for name in uncertainty.MEASURES:
        values = rng.exponential(3.0, size) * (rng.random(size) < 0.8)
        values[rng.random(size) < 0.1] = np.nan
        values[rng.random(size) < 0.05] = -0.0
        if size and seed % 3 == 0:
            values[rng.integers(size)] = np.inf
        rows[name] = values
    scope = rng.integers(0, 3, size) * (seed % 4 != 0)  # every fourth part: all Scope 2
    rows["s2"], rows["s31"] = scope == 0, scope == 1
    rows["pue"] = rng.choice([1.0, 1.2, 1.58], size)
    rows["pue_low"], rows["pue_high"] = uncertainty.pue_cases(rows["pue"], rng.random(size) < 0.5)
    modelled = rng.random(size) < (0.3 if seed % 2 else 0.0)  # odd parts: some rows modelled
    rows["util_low"] = np.where(modelled, 0.6, 1.0)
    return rows


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("size", [0, 1, 7, 300, 5000])
def test_figures_are_each_case_by_its_definition_to_the_last_bit(seed: int, size: int) -> None:
    rows = _part(seed, size)
    with np.errstate(invalid="ignore"):
        found = uncertainty.figures_of({k: v.copy() for k, v in rows.items()})
        expected = _expected(rows)
    assert _bits(found) == _bits(expected)
