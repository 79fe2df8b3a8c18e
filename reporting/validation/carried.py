"""What the quarantined rows would have carried: per-file estimates for the data-quality section.

Each quarantined row falls in one class:
- `copies`: a copy of a row that was accepted (a superseded Slurm record, a repeated billing
  line or natural key): nothing is missing from the totals because of it;
- `parts`: a step line of a quarantined job (or a further line of a run quarantined whole): it
  is counted with its job;
- `estimated`: the row's own fields were readable enough. A run is put through the same energy
  model, PUE and rate card as accepted runs (`attribute_usage`), with defaults for what could
  not be read (an unreadable Elapsed is End − Start); a billing line gives the cost written
  in its cost column (billed cost, in its own currency) and, scaled by that cost, the energy
  and carbon per currency unit of accepted lines of its service, provider or file
  (carried_billing.py; a line with nothing to scale from is counted, with no energy);
- `unknown`: nothing usable could be read (bad bytes, wrong field count, a file of another
  format, times out of order, an unknown GPU model): these are counted, not guessed.

These are estimates, labelled so in the report; none of it enters the ledger.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from reporting.attribute import attribute_usage
from reporting.config import Config
from reporting.ingest.slurm import FINAL_STATES
from reporting.schema import CARRIED, empty_usage
from reporting.validation.carried_billing import BASES, billing_estimates
from reporting.validation.suites import MAX_GPUS_PER_NODE

COPY_CHECKS = ("duplicate",)  # plus every uniqueness expectation (`*_to_be_unique:*`)
PART_CHECKS = ("job_quarantined",)
CLASSES = ("copies", "parts", "estimated", "unknown")


def row_class(check: str, carried: Any) -> str:
    if check in COPY_CHECKS or "_to_be_unique:" in check:
        return "copies"
    if check in PART_CHECKS or (isinstance(carried, dict) and carried.get("part")):
        return "parts"
    if isinstance(carried, dict) and ("cost" in carried or "usage" in carried):
        return "estimated"
    return "unknown"


def carried_by_file(
    quarantine: pd.DataFrame, config: Config, charges: pd.DataFrame | None = None
) -> dict[str, dict[str, Any]]:
    """Per source file with quarantined rows: rows per class, facility kWh, location-based kg
    CO2e and cost per currency (estimates), and how many billing lines got their energy from
    lines of the same service, provider or file (`charges`: the accepted billing lines). A run
    whose fields cannot be modelled moves from `estimated` to `unknown`."""
    carried = quarantine[CARRIED] if CARRIED in quarantine.columns else pd.Series(None, index=quarantine.index, dtype=object)  # fmt: skip
    classes = [row_class(str(c), v) for c, v in zip(quarantine["check"], carried, strict=True)]
    frame = quarantine.assign(_class=classes, _carried=carried)
    estimated = frame["_class"] == "estimated"
    runs = frame[estimated & frame["_carried"].map(_is_run)]
    energy, co2e, run_cost, modelled = _run_estimates(runs, config)
    frame.loc[runs.index[~runs.index.isin(modelled)], "_class"] = "unknown"
    bills = _billing_footprint(frame[estimated & ~frame["_carried"].map(_is_run)], charges)
    result = {}
    for name, rows in frame.groupby("source_file", sort=True):
        counts = rows["_class"].value_counts()
        costs = _billing_cost(rows[rows["_class"] == "estimated"])
        for currency, amount in run_cost.get(str(name), {}).items():
            costs[currency] = costs.get(currency, 0.0) + amount
        own = bills[bills.index.isin(rows.index)]
        result[str(name)] = {
            **{c: int(counts.get(c, 0)) for c in CLASSES},
            "energy_kwh": round(energy.get(str(name), 0.0) + float(own["energy_kwh"].sum()), 6),
            "co2e_kg": round(co2e.get(str(name), 0.0) + float(own["co2e_kg"].sum()), 6),
            "cost": {c: round(v, 6) for c, v in sorted(costs.items())},
            "energy_basis": {b: int((own["basis"] == b).sum()) for b, _ in BASES},
        }
    return result


def _billing_footprint(rows: pd.DataFrame, charges: pd.DataFrame | None) -> pd.DataFrame:
    """Energy, carbon and basis of each quarantined billing line with a readable cost."""
    lines = pd.DataFrame(
        [{"provider": None, "service": None, **c} for c in rows["_carried"]],
        index=rows.index, columns=["cost", "currency", "provider", "service"],
    ).assign(source_file=rows["source_file"])  # fmt: skip
    if charges is None:
        charges = pd.DataFrame()
    return billing_estimates(lines, charges)


def _is_run(carried: Any) -> bool:
    return isinstance(carried, dict) and "usage" in carried


def _billing_cost(rows: pd.DataFrame) -> dict[str, float]:
    costs: dict[str, float] = {}
    for carried in rows["_carried"]:
        if isinstance(carried, dict) and "cost" in carried:
            costs[carried["currency"]] = costs.get(carried["currency"], 0.0) + carried["cost"]
    return costs


def _run_estimates(
    rows: pd.DataFrame, config: Config
) -> tuple[dict[str, float], dict[str, float], dict[str, dict[str, float]], set[Any]]:
    """(facility kWh and location-based kg CO2e per file, rate-card cost per file and
    currency, labels modelled)."""
    if rows.empty:
        return {}, {}, {}, set()
    runs = _typed(pd.DataFrame([c["usage"] for c in rows["_carried"]], index=rows.index))
    usable = _modelable(runs)
    if not usable.any():
        return {}, {}, {}, set()
    ledger = attribute_usage(runs[usable].reset_index(drop=True), config, "estimate").ledger
    energy = ledger.groupby("source_file")["facility_energy_kwh"].sum()
    co2e = ledger.groupby("source_file")["co2e_location_kg"].sum()
    priced = ledger[ledger["cost"].notna()]
    cost = priced.groupby(["source_file", "currency"])["cost"].sum()
    by_file: dict[str, dict[str, float]] = {}
    for (name, currency), amount in cost.items():
        by_file.setdefault(str(name), {})[str(currency)] = float(amount)
    return (
        {str(k): float(v) for k, v in energy.items()},
        {str(k): float(v) for k, v in co2e.items()},
        by_file,
        set(runs.index[usable]),
    )


def _typed(runs: pd.DataFrame) -> pd.DataFrame:
    """The usage columns with the types readers give them (the rows came through dicts)."""
    for column, dtype in empty_usage().dtypes.items():
        if column not in runs.columns:
            runs[column] = None
        if isinstance(dtype, pd.DatetimeTZDtype):
            runs[column] = pd.to_datetime(runs[column], utc=True).astype(dtype)
        elif dtype.kind in "fi":
            runs[column] = pd.to_numeric(runs[column], errors="coerce").astype("float64")
    # An unreadable Elapsed is taken as End − Start when both were read.
    between_s = (runs["ended_at"] - runs["started_at"]).dt.total_seconds()
    return runs.assign(duration_s=runs["duration_s"].fillna(between_s))


def _modelable(runs: pd.DataFrame) -> pd.Series:
    """Runs the energy model can take: over, times in order, counts within node limits, and a
    known GPU model for GPU runs. The rest stay `unknown` rather than be guessed."""
    nodes = runs["n_nodes"].where(runs["n_nodes"] > 0, 1.0)
    return (
        (
            runs["state"].isin(FINAL_STATES)
            & runs["started_at"].notna()
            & runs["ended_at"].notna()
            & (runs["ended_at"] >= runs["started_at"])
            & (runs["duration_s"] >= 0)
            & runs["site"].notna()
            & runs["n_gpus"].notna()
            & (runs["n_gpus"] / nodes <= MAX_GPUS_PER_NODE)
            & ((runs["n_gpus"] == 0) | runs["gpu_model"].notna())
        )
        .fillna(False)
        .astype(bool)
    )
