"""The quarterly ESG report's extra sections, computed from the ledger alone.

`complete` is the one entry point the pipeline calls after `build_summary` / `build_context`:
it reads the comparison periods and trailing quarters from the ledger, adds the new breakdowns
and headline KPIs to summary.json (new keys only), builds the sections of the report
(ESG_REPORTING §3(a)) into `context["quarterly"]`, renders the charts, and records the published
summary for later restatements. Units inside stay kWh, kg CO2e and currency amounts.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from reporting import method_changes, restatement, serving_intensity, uncertainty
from reporting.distinct import map_distinct
from reporting.quarterly_tables import (
    emissions_by_scope,
    energy_by_site,
    intensity,
    location_table,
    model_cards,
    scope_statement,
)
from reporting.summary import Period, _breakdown

if TYPE_CHECKING:
    from reporting.rollup import Rollup

TRAILING_QUARTERS = 8
EXTRA_BREAKDOWNS = {"by_region": "region", "by_gpu_model": "gpu_type"}
NO_GPU = "no GPU (CPU, storage, network)"
UNALLOCATED = "unallocated"


def with_report_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """Add `region` (the grid zone the energy drew from) and `gpu_type` for the breakdowns;
    rows that cannot be placed go to `unallocated` so the parts still sum to the total."""
    has_gpu = rows["n_gpus"].fillna(0) > 0
    gpu_type = rows["gpu_model"].where(rows["gpu_model"].notna(), None)
    gpu_type = gpu_type.where(gpu_type.notna() | has_gpu, NO_GPU).fillna(UNALLOCATED)
    region = rows["grid_zone"].fillna(UNALLOCATED)
    return rows.assign(region=region.astype(str), gpu_type=gpu_type.astype(str))


def _shift_months(day: date, months: int, *, month_end: bool) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    first = date(year, month + 1, 1)
    next_first = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    last = next_first - timedelta(days=1)
    return last if month_end else first.replace(day=min(day.day, last.day))


def shifted(period: Period, months: int) -> Period:
    """The same span `months` earlier (a period ending on a month's last day stays so)."""
    end_is_month_end = (period.end + timedelta(days=1)).day == 1
    start = _shift_months(period.start, months, month_end=False)
    end = _shift_months(period.end, months, month_end=end_is_month_end)
    return Period(start, end, f"{start}..{end}")


def _totals(rows: pd.DataFrame) -> dict[str, Any]:
    """The figures compared between periods (kWh, kg, GPU-hours, cost per currency)."""
    scope = rows["scope"].astype(str)
    costed = rows.loc[rows["cost"].notna(), ["currency", "cost"]]
    costs = costed.groupby("currency")["cost"].sum()
    return {
        "facility_energy_kwh": float(rows["facility_energy_kwh"].sum()),
        "co2e_location_kg": float(rows["co2e_location_kg"].sum()),
        "co2e_market_kg": float(rows["co2e_market_kg"].sum()),
        "scope2_location_kg": float(rows.loc[scope == "2", "co2e_location_kg"].sum()),
        "scope2_market_kg": float(rows.loc[scope == "2", "co2e_market_kg"].sum()),
        "scope31_location_kg": float(rows.loc[scope == "3.1", "co2e_location_kg"].sum()),
        "scope31_market_kg": float(rows.loc[scope == "3.1", "co2e_market_kg"].sum()),
        "co2e_embodied_kg": float(rows["co2e_embodied_kg"].sum()),
        "gpu_hours": float(rows["gpu_hours"].sum()),
        "cost": {str(c): float(v) for c, v in costs.sort_index().items()},
    }


def _in_span(history: pd.DataFrame, period: Period) -> pd.DataFrame:
    inside = map_distinct(history["day"], lambda d: period.start <= _date(d) <= period.end)
    return history[inside.astype(bool)]


def _date(day: Any) -> date:
    return pd.Timestamp(day).date()


def comparison(history: pd.DataFrame, period: Period, months: int) -> dict[str, Any]:
    """Totals of the span `months` before, or `available: False` when the ledger has no rows."""
    earlier = shifted(period, months)
    rows = _in_span(history, earlier)
    block: dict[str, Any] = {"start": earlier.start.isoformat(), "end": earlier.end.isoformat()}
    if rows.empty:
        return {**block, "available": False}
    return {**block, "available": True, "totals": _round_all(_totals(rows))}


def _round_all(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _round_all(v) if isinstance(v, dict) else round(float(v), 6) for k, v in values.items()
    }


def _change(now: float, before: float | None) -> float | None:
    """Relative change as a ratio (0.12 = +12 %); None without a base to compare with."""
    if before is None or before == 0:
        return None
    return round((now - before) / abs(before), 6)


KPI_ROWS = (*uncertainty.KPIS, ("gpu_hours", "GPU-hours", "num"))  # the ranged ones, and GPU-hours


def headline_kpis(
    rows: pd.DataFrame, qoq: dict[str, Any], yoy: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per KPI: value now, the comparison values and changes (None when no data)."""
    now = _totals(rows)
    before_q = qoq.get("totals") if qoq["available"] else None
    before_y = yoy.get("totals") if yoy["available"] else None
    kpis = [
        _kpi(key, label, unit, now[key], before_q and before_q[key], before_y and before_y[key])
        for key, label, unit in KPI_ROWS
    ]
    for currency, amount in now["cost"].items():
        kpis.append(_kpi(f"cost_{currency}", f"Cost ({currency})", "amount", amount,
                         before_q and before_q["cost"].get(currency),
                         before_y and before_y["cost"].get(currency)))  # fmt: skip
    return kpis


def _kpi(key: str, label: str, unit: str, value: float, quarter: float | None,
         year: float | None) -> dict[str, Any]:  # fmt: skip
    return {
        "key": key, "label": label, "unit": unit, "value": round(value, 6),
        "previous_quarter": quarter, "qoq_change": _change(value, quarter),
        "previous_year": year, "yoy_change": _change(value, year),
    }  # fmt: skip


def coverage(rows: pd.DataFrame, inputs: list[dict[str, Any]]) -> dict[str, float]:
    """Coverage ratios (0–1): attributed energy, measured energy, accepted input rows."""
    kwh = rows["facility_energy_kwh"].sum()
    attributed = rows.loc[rows["team"] != UNALLOCATED, "facility_energy_kwh"].sum()
    measured = rows.loc[
        rows["energy_method"].isin(["measured", "telemetry"]), "facility_energy_kwh"
    ]
    read = sum(i.get("rows_read", 0) for i in inputs)
    accepted = sum(i.get("rows_accepted", 0) for i in inputs)
    return {
        "energy_attributed_to_team_ratio": round(attributed / kwh, 6) if kwh > 0 else 0.0,
        "energy_measured_ratio": round(measured.sum() / kwh, 6) if kwh > 0 else 0.0,
        "input_rows_accepted_ratio": round(accepted / read, 6) if read else 0.0,
    }


def month_spans(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(YYYY-MM, rows) per calendar month of the rows, in order."""
    month = map_distinct(rows["day"], lambda d: pd.Timestamp(d).strftime("%Y-%m")).astype(str)
    return [(str(m), group) for m, group in rows.groupby(month, sort=True)]


def monthly(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Per calendar month inside the period (kWh, kg location/market/embodied, cost)."""
    return [{"month": m, **_round_all(_totals(group))} for m, group in month_spans(rows)]


def quarter_spans(history: pd.DataFrame, period: Period) -> list[tuple[str, pd.DataFrame]]:
    """(YYYY-Qn, rows) of the ledger's quarters up to the period's (at most 8), in order."""
    quarter = map_distinct(
        history["day"], lambda d: f"{_date(d).year}-Q{(_date(d).month - 1) // 3 + 1}"
    ).astype(str)
    last = f"{period.end.year}-Q{(period.end.month - 1) // 3 + 1}"
    spans = [(str(q), group) for q, group in history.groupby(quarter, sort=True) if q <= last]
    return spans[-TRAILING_QUARTERS:]


def trailing_quarters(spans: list[tuple[str, pd.DataFrame]]) -> list[dict[str, Any]]:
    """Quarterly totals of the ledger's trailing quarters (`quarter_spans`)."""
    return [{"quarter": q, **_round_all(_totals(group))} for q, group in spans]


def complete(
    root: Path,
    rollup: Rollup,
    period: Period,
    run_date: date,
    summary: dict[str, Any],
    context: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """summary and context with the quarterly report's sections; records the publication.
    `rollup`: the period's ledger grouped, with the report keys (rollup.py)."""
    keyed, history = rollup.rows, rollup.history
    qoq, yoy = comparison(history, period, -3), comparison(history, period, -12)
    spread = uncertainty.ranges_of(rollup.uncertainty)
    quarters = quarter_spans(history, period)
    added = {
        **{name: _breakdown(keyed, key) for name, key in EXTRA_BREAKDOWNS.items()},
        "kpis": headline_kpis(keyed, qoq, yoy),
        "comparisons": {"previous_quarter": qoq, "previous_year": yoy},
        "coverage": coverage(keyed, summary["inputs"]),
        "by_month": monthly(keyed),
        "method_changes": {
            "by_month": method_changes.between(month_spans(keyed)),
            "by_quarter": method_changes.between(quarters),
        },
        "intensity": {
            **intensity(keyed),
            "serving_volume": serving_intensity.of(root, keyed, period),
        },
        "uncertainty": spread,
    }
    new_summary = {**summary, **added}
    published = restatement.publish(root, period, run_date, new_summary, context)
    new_summary["restatements"] = published["summary"]
    sections = {
        "scope": scope_statement(keyed, summary, context),
        "energy_by_site": energy_by_site(keyed),
        "scopes": emissions_by_scope(keyed, summary.get("cloud")),
        "trailing": trailing_quarters(quarters),
        "location": location_table(keyed, context["factors"]),
        "model_cards": model_cards(keyed),
        "restatements": published["context"],
        "run_ids": sorted(str(r) for r in keyed["run_id"].dropna().unique()),
    }
    return new_summary, {**context, **added, "quarterly": sections}
