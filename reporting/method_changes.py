"""Where the basis of the trend's figures changes from one month or quarter to the next, so the
trend charts can mark it: a figure that moves because the method moved is not a change in use.

Two things are compared between consecutive spans, from the ledger rows alone:

* the energy method mix: the methods with at least MIN_METHOD_SHARE of the span's facility
  energy. A method reaching or leaving that share is a change, and so is a method's share moving
  by SHIFT_RATIO (10 percentage points) or more;
* the factor versions: per factor series (a grid zone's location factor, a site's market factor,
  a PUE) the data year in its factor id (`grid:US-SRVC:2023`) and the value the rows applied. The
  same series with another year or value is a change; a series used in one span only (a region
  used for the first time) is a change of activity, not of method, and is not marked.
"""

from __future__ import annotations

import re
from string import ascii_uppercase
from typing import Any

import pandas as pd

MIN_METHOD_SHARE = 0.01
SHIFT_RATIO = 0.10
FACTOR_SERIES = (  # id column, value column, what the value is
    ("grid_factor_id", "grid_intensity_g_per_kwh", "grid factor", "g/kWh"),
    ("market_factor_id", "market_intensity_g_per_kwh", "market-based factor", "g/kWh"),
    ("pue_factor_id", "pue", "PUE", ""),
)
COLUMNS = ["energy_method", "facility_energy_kwh"] + [c for s in FACTOR_SERIES for c in s[:2]]
_VINTAGE = re.compile(r"^(?P<series>.+):(?P<year>\d{4})$")


def method_mix(rows: pd.DataFrame) -> dict[str, float]:
    """Share of the span's facility energy per method, for methods at MIN_METHOD_SHARE or more."""
    total = float(rows["facility_energy_kwh"].sum())
    if total <= 0:
        return {}
    by_method = rows.groupby("energy_method")["facility_energy_kwh"].sum() / total
    return {str(m): float(s) for m, s in by_method.items() if s >= MIN_METHOD_SHARE}


def factor_versions(rows: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(what, series) → the versions the rows applied, as text (`2023, 270.5 g/kWh`)."""
    found: dict[tuple[str, str], set[str]] = {}
    for id_column, value_column, what, unit in FACTOR_SERIES:
        used = rows[rows[id_column].notna()]
        for factor_id, group in used.groupby(id_column, sort=True):
            vintage = _VINTAGE.match(str(factor_id))
            series = vintage["series"] if vintage else str(factor_id)
            for value in sorted({float(f"{v:.6g}") for v in group[value_column].dropna()}):
                text = f"{value:,g}{' ' + unit if unit else ''}"
                found.setdefault((what, series), set()).add(
                    f"{vintage['year']}, {text}" if vintage else text
                )
    return {key: " and ".join(sorted(values)) for key, values in found.items()}


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.1f} %"  # as the report writes shares


def _method_reasons(before: dict[str, float], after: dict[str, float]) -> list[str]:
    reasons = []
    for method in sorted(set(before) | set(after)):
        old, new = before.get(method), after.get(method)
        if old is None:
            reasons.append(f"energy method {method} now {_pct(new)} of facility energy")
        elif new is None:
            reasons.append(
                f"energy method {method} below {_pct(MIN_METHOD_SHARE)} (was {_pct(old)})"
            )
        elif abs(new - old) >= SHIFT_RATIO:
            reasons.append(f"energy method {method} {_pct(old)} → {_pct(new)} of facility energy")
    return reasons


def _factor_reasons(
    before: dict[tuple[str, str], str], after: dict[tuple[str, str], str]
) -> list[str]:
    return [
        f"{what} {series}: {before[(what, series)]} → {after[(what, series)]}"
        for what, series in after  # in FACTOR_SERIES order, series sorted
        if (what, series) in before and before[(what, series)] != after[(what, series)]
    ]


def between(spans: list[tuple[str, pd.DataFrame]]) -> list[dict[str, Any]]:
    """The changes between consecutive spans (name, ledger rows), each with a letter for the
    chart, the span it starts in, its position among the spans and the reasons in words."""
    changes: list[dict[str, Any]] = []
    previous = None
    for index, (name, rows) in enumerate(spans):
        current = (method_mix(rows), factor_versions(rows))
        if previous is not None:
            reasons = _method_reasons(previous[1][0], current[0]) + _factor_reasons(
                previous[1][1], current[1]
            )
            if reasons:
                changes.append({"mark": _letter(len(changes)), "from": name, "after": previous[0],
                                "index": index, "reasons": reasons})  # fmt: skip
        previous = (name, current)
    return changes


def _letter(n: int) -> str:
    return ascii_uppercase[n] if n < len(ascii_uppercase) else f"Z{n - len(ascii_uppercase) + 1}"
