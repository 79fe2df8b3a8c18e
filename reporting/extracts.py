"""CSV extracts of every table in the report, written next to it as `tables/<name>.csv`.

Values are the pipeline's (kWh, kg CO2e, currency amounts, ratios 0–1), not the rounded text of
the report; money per currency becomes one column per currency (`cost_USD`). Text cells go
through the CSV-injection guard the caller passes (`outputs.csv_safe`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

BREAKDOWN_TABLES = ("by_team", "by_model", "by_phase", "by_region", "by_gpu_model", "by_site")
CLOUD_TABLES = ("by_provider", "by_category", "reconciliation", "vendor_carbon")


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts become prefixed columns; lists become `; `-joined text."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            for inner, v in value.items():
                flat[f"{key}_{inner}"] = v
        elif isinstance(value, list | tuple):
            flat[key] = "; ".join(_text(v) for v in value)
        else:
            flat[key] = value
    return flat


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame([_flat(r) for r in rows])


def _quarterly_tables(summary: Mapping[str, Any], q: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    i = summary["intensity"]
    intensity = [
        {"metric": "kg CO2e per GPU-hour", "location": i["location_kg_per_gpu_hour"],
         "market": i["market_kg_per_gpu_hour"], "basis": f"{i['gpu_hours']} GPU-hours"},
        *({"metric": f"kg CO2e per {c['currency']}", "location": c["location_kg_per_unit"],
           "market": c["market_kg_per_unit"], "basis": f"{c['cost']} {c['currency']}"}
          for c in i["per_currency"]),
        {"metric": "kg CO2e per training run", "location": i["location_kg_per_training_run"],
         "market": i["market_kg_per_training_run"], "basis": f"{i['training_runs']} runs"},
    ]  # fmt: skip
    served = i["serving_volume"]
    if not served["available"]:
        intensity.append({"metric": "kg CO2e per 1M tokens · per 1k requests", "location": None,
                          "market": None, "basis": served["reason"]})  # fmt: skip
    what_if = q["location"]["what_if"]
    return {
        "scope_included_sources": frame(q["scope"]["included"]),
        "scope_excluded": frame({"excluded": e} for e in q["scope"]["excluded"]),
        "scope_factor_datasets": frame(q["scope"]["datasets"]),
        "scope_factor_tables": frame(q["scope"]["tables"]),
        "headline_kpis": frame(summary["kpis"]),
        "coverage": frame([summary["coverage"]]),
        "energy_by_site": frame(q["energy_by_site"]["sites"]),
        "emissions_by_scope": frame(q["scopes"]),
        "monthly": frame(summary["by_month"]),
        "trailing_quarters": frame(q["trailing"]),
        "intensity": frame(intensity),
        "intensity_per_model_served": frame(served.get("models", [])),
        "location": frame(q["location"]["zones"]),
        "location_what_if": frame([what_if] if what_if else []),
        "model_cards": frame(q["model_cards"]),
        "uncertainty": frame(summary["uncertainty"]["kpis"]),
        "uncertainty_sensitivity": frame(summary["uncertainty"]["tornado"]["bars"]),
        "uncertainty_ranges": frame(summary["uncertainty"]["parameters"]),
        "restatement_changes": frame(q["restatements"]["changes"]),
        "publications": frame(q["restatements"]["log"]),
    }


def tables(summary: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """Every table of the report as a DataFrame, by file name (without `.csv`)."""
    found = {name: frame(context[name]) for name in BREAKDOWN_TABLES if name in context}
    cloud = context.get("cloud") or {}
    found |= {f"cloud_{name}": frame(cloud[name]) for name in CLOUD_TABLES if cloud.get(name)}
    found |= {
        "energy_methods": frame({"method": m, "share_of_facility_energy": s}
                                for m, s in context["energy_methods"].items()),
        "inputs": frame(context["inputs"]),
        "defaults_used": frame(context["defaults_used"]),
        "factor_register": frame(context["factors"]),
        "findings_by_rule": frame({"rule": r, "findings": n}
                                  for r, n in context["findings"]["by_rule"].items()),
    }  # fmt: skip
    if "quarterly" in context:
        found |= _quarterly_tables(summary, context["quarterly"])
    return found


def write_tables(folder: Path, frames: Mapping[str, pd.DataFrame],
                 csv_text: Callable[[pd.DataFrame], str]) -> None:  # fmt: skip
    """Write each table as `<folder>/<name>.csv` (UTF-8, `csv_text` the safe CSV form),
    atomically; drop stale ones."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.csv"):
        if stale.stem not in frames:
            stale.unlink()
    for name, table in sorted(frames.items()):
        path = folder / f"{name}.csv"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(csv_text(table), encoding="utf-8", newline="")
        os.replace(tmp, path)
