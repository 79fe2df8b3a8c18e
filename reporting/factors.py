"""Packaged factor tables (reporting/data/*.csv) and the register of factors a run used.

Every number that turns allocation into energy, energy into carbon, or time into embodied
emissions is a `Factor` with its source, year and licence. A value from the config is a factor
too (source: the config key and the `source` the user gave). The report lists every factor the
period used; `is_default` marks fallbacks, which the report shows prominently.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from functools import cache
from importlib import resources

import pandas as pd

HOURS_PER_YEAR = 8_760


@dataclass(frozen=True)
class Factor:
    factor_id: str
    kind: str  # grid_intensity, gpu_power, cpu_power, memory_power, gpu_util, pue, embodied, ...
    key: str  # what it applies to: a zone, a GPU model, a site/partition
    value: float
    unit: str
    source: str
    year: int | None = None
    licence: str = ""
    url: str = ""
    is_default: bool = False  # a fallback used because nothing more specific was known
    notes: str = ""


FACTOR_COLUMNS = [f.name for f in fields(Factor)]


@cache
def table(name: str) -> pd.DataFrame:
    """A packaged CSV table from reporting/data, as text columns (callers convert)."""
    text = resources.files("reporting.data").joinpath(f"{name}.csv").read_text(encoding="utf-8")
    return pd.DataFrame(list(csv.DictReader(io.StringIO(text)))).fillna("")


def _year(text: str) -> int | None:
    text = str(text).strip()
    return int(text[:4]) if text[:4].isdigit() else None


def _row_factor(
    row: pd.Series,
    *,
    factor_id: str,
    kind: str,
    key: str,
    value: float,
    unit: str,
    is_default: bool = False,
) -> Factor:
    return Factor(
        factor_id=factor_id,
        kind=kind,
        key=key,
        value=float(value),
        unit=unit,
        source=str(row.get("source", "")),
        year=_year(row.get("year", "")),
        licence=str(row.get("licence", "")),
        url=str(row.get("url", "")),
        is_default=is_default,
        notes=str(row.get("notes", "")),
    )


def grid_factor(zone: str) -> Factor | None:
    """Latest annual grid intensity of a zone (g CO2e/kWh), or None if the zone is unknown."""
    rows = table("grid_intensity")
    rows = rows[rows["zone"] == zone]
    if rows.empty:
        return None
    row = rows.assign(_y=rows["year"].map(_year)).sort_values("_y").iloc[-1]
    return _row_factor(
        row,
        factor_id=f"grid:{zone}:{row['year']}",
        kind="grid_intensity",
        key=zone,
        value=float(row["g_co2e_per_kwh"]),
        unit="g CO2e/kWh",
    )


@cache
def _model_names(table_name: str) -> dict[str, str]:
    """Lower-case model name or alias → canonical model, for a hardware power table."""
    mapping: dict[str, str] = {}
    for _, row in table(table_name).iterrows():
        mapping[row["model"].lower()] = row["model"]
        for alias in filter(None, (a.strip().lower() for a in row["aliases"].split(";"))):
            mapping[alias] = row["model"]
    return mapping


def gpu_models() -> dict[str, str]:
    return _model_names("gpu_power")


def cpu_models() -> dict[str, str]:
    return _model_names("cpu_power")


def _power_pair(table_name: str, model: str, columns: tuple[str, str], unit: str,
                is_default: bool) -> tuple[Factor, Factor]:  # fmt: skip
    """(idle, full-load) power factors of one model from a hardware power table."""
    row = table(table_name).set_index("model").loc[model]
    return tuple(  # type: ignore[return-value]
        _row_factor(
            row,
            factor_id=f"{table_name}:{model}:{end}",
            kind=f"{table_name}_{end}",
            key=model,
            value=float(row[column]),
            unit=unit,
            is_default=is_default,
        )
        for end, column in zip(("min", "max"), columns, strict=True)
    )


def gpu_power_factors(model: str, *, is_default: bool = False) -> tuple[Factor, Factor]:
    """(idle W, full-load W) of one GPU of a canonical model."""
    return _power_pair("gpu_power", model, ("min_w", "max_w"), "W per GPU", is_default)


def cpu_power_factors(model: str, *, is_default: bool = False) -> tuple[Factor, Factor]:
    """(idle W, full-load W) per allocated CPU (hardware thread) of a CPU model."""
    return _power_pair(
        "cpu_power", model, ("min_w_per_thread", "max_w_per_thread"), "W per CPU", is_default
    )


def method_factor(factor: str, *, is_default: bool = False) -> Factor:
    """A methodology constant from data/methodology.csv (memory W/GB, default utilisation...)."""
    row = table("methodology").set_index("id").loc[factor]
    return _row_factor(
        row,
        factor_id=f"method:{factor}",
        kind=factor,
        key="all",
        value=float(row["value"]),
        unit=str(row["unit"]),
        is_default=is_default,
    )


def pue_factor(scope: str, *, is_default: bool = True) -> Factor:
    row = table("pue").set_index("id").loc[scope]
    return _row_factor(
        row,
        factor_id=f"pue:{scope}",
        kind="pue",
        key=scope,
        value=float(row["value"]),
        unit="ratio",
        is_default=is_default,
    )


def embodied_factor(item: str, per: str) -> Factor:
    """Amortised embodied emissions of one unit-hour (a GPU-hour or a core-hour), kg CO2e."""
    row = table("embodied").set_index("id").loc[item]
    units = float(row["units_per_item"])
    lifetime_h = float(row["lifetime_years"]) * HOURS_PER_YEAR
    kg_per_unit_hour = float(row["kg_co2e"]) / (units * lifetime_h)
    return _row_factor(
        row,
        factor_id=f"embodied:{item}",
        kind="embodied",
        key=item,
        value=kg_per_unit_hour,
        unit=f"kg CO2e per {per} ({row['kg_co2e']} kg / {units:g} {per.split('-')[0]}s / {row['lifetime_years']} y)",
    )


def config_factor(key_path: str, kind: str, value: float, unit: str, source: str) -> Factor:
    """A value the user set in the config; its source is what the user wrote next to it."""
    return Factor(
        factor_id=f"config:{key_path}",
        kind=kind,
        key=key_path,
        value=float(value),
        unit=unit,
        source=source,
        licence="user-supplied",
    )


def register_frame(factors: list[Factor]) -> pd.DataFrame:
    """Factors as a table sorted by id, one row per id."""
    rows = {f.factor_id: asdict(f) for f in factors}
    frame = pd.DataFrame([rows[k] for k in sorted(rows)], columns=FACTOR_COLUMNS)
    return frame.astype({"year": "Int64", "is_default": "bool", "value": "float64"})
