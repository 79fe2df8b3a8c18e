"""Energy and carbon a quarantined billing line would have carried (an estimate, never a total).

A quarantined line has no trustworthy usage fields, only the cost written in it (see
`ingest/billing/dispatch.py`). It is treated like an accepted usage line without a physical
model (`cloud_energy._extrapolate`, the Cloud Carbon Footprint method): the facility kWh and
location-based kg CO2e per currency unit of the accepted, modelled lines of its service, else
of its provider, else of its file, in the same currency, times its cost. Costs are billed cost
on both sides (the quarantined line's cost column is the billed one). A credit (negative cost)
carries no energy, as in the pipeline. A line with no such accepted lines gets no estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reporting.attribute_cloud import line_footprint

# The lines an estimate scales from, most alike first (the keys every quarantined line has).
BASES = (
    ("service", ["provider", "service", "currency"]),
    ("provider", ["provider", "currency"]),
    ("file", ["source_file", "currency"]),
)
_SUMS = ["facility_energy_kwh", "co2e_location_kg", "billed_cost"]


def billing_estimates(lines: pd.DataFrame, charges: pd.DataFrame) -> pd.DataFrame:
    """`lines`: source_file, cost, currency, provider, service per quarantined line; `charges`:
    the accepted lines. Per quarantined line: energy_kwh, co2e_kg and basis (NaN and None when
    no accepted line of the same service, provider or file and currency could scale it)."""
    result = pd.DataFrame(
        {"energy_kwh": np.nan, "co2e_kg": np.nan, "basis": None}, index=lines.index
    ).astype({"basis": object})
    known = _known_lines(lines, charges)
    if known.empty:
        return result
    for label, keys in BASES:
        open_ = result["basis"].isna() & lines[keys].notna().all(axis=1)
        sums = known.dropna(subset=keys).groupby(keys)[_SUMS].sum()
        sums = sums[sums["billed_cost"] > 0]
        if not open_.any() or sums.empty:
            continue
        joined = lines.loc[open_, keys].join(sums, on=keys)
        hit = joined.index[joined["billed_cost"].notna()]
        spend = lines.loc[hit, "cost"].clip(lower=0) / joined.loc[hit, "billed_cost"]
        result.loc[hit, "energy_kwh"] = spend * joined.loc[hit, "facility_energy_kwh"]
        result.loc[hit, "co2e_kg"] = spend * joined.loc[hit, "co2e_location_kg"]
        result.loc[hit, "basis"] = label
    return result


def _known_lines(lines: pd.DataFrame, charges: pd.DataFrame) -> pd.DataFrame:
    """The accepted lines an estimate may scale from: modelled energy and a positive billed
    cost (as `_extrapolate` takes them), only of the currencies, providers and files asked
    about, so the energy model runs on no more lines than needed."""
    none = pd.DataFrame(columns=["provider", "service", "currency", "source_file", *_SUMS])
    if lines.empty or charges.empty:
        return none
    relevant = charges[
        charges["currency"].isin(lines["currency"])
        & (
            charges["provider"].isin(lines["provider"].dropna())
            | charges["source_file"].isin(lines["source_file"])
        )
    ]
    if relevant.empty:
        return none
    cost = relevant["billed_cost"].astype("float64")
    footprint = line_footprint(relevant, cost)
    known = (footprint["energy_method"] == "modelled") & (cost > 0)
    return pd.DataFrame({
        "provider": relevant["provider"], "service": relevant["service_name"],
        "currency": relevant["currency"], "source_file": relevant["source_file"],
        "facility_energy_kwh": footprint["facility_energy_kwh"],
        "co2e_location_kg": footprint["co2e_location_kg"], "billed_cost": cost,
    })[known]  # fmt: skip
