"""Totals and breakdowns of a period's ledger: summary.json and the report's context.

Both come from the same numbers: `build_summary` gives the stable machine-readable contract
(DESIGN §5); `build_context` adds what a reader of the report needs (factor register, defaults
used, quarantine sample, methodology).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd

from reporting import __version__, counts
from reporting.audit_findings import Findings
from reporting.energy import ENERGY_METHODS

FACTOR_ID_COLUMNS = (
    "grid_factor_id",
    "market_factor_id",
    "gpu_power_factor_id",
    "cpu_power_factor_id",
    "memory_factor_id",
    "gpu_util_factor_id",
    "cpu_util_factor_id",
    "energy_check_factor_id",
    "pue_factor_id",
    "embodied_factor_id",
    "rate_card_id",
)
SUM_COLUMNS = (
    "it_energy_kwh",
    "facility_energy_kwh",
    "co2e_location_kg",
    "co2e_market_kg",
    "co2e_embodied_kg",
    "gpu_hours",
)
BREAKDOWNS = {"by_team": "team", "by_model": "model", "by_phase": "phase", "by_site": "site"}
QUARANTINE_SAMPLE_ROWS = 20
RAW_SAMPLE_CHARS = 200


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive
    label: str


def _round(value: float) -> float:
    return round(float(value), 6) if pd.notna(value) else 0.0


def _cost(frame: pd.DataFrame) -> dict[str, float]:
    costed = frame.loc[frame["cost"].notna(), ["currency", "cost"]]
    sums = costed.groupby("currency")["cost"].sum()
    return {str(currency): _round(amount) for currency, amount in sums.sort_index().items()}


def _totals(ledger: pd.DataFrame) -> dict[str, Any]:
    totals: dict[str, Any] = {c: _round(ledger[c].sum()) for c in SUM_COLUMNS}
    totals["cost"] = _cost(ledger)
    totals["jobs"] = counts.runs(ledger)
    return totals


def _breakdown(ledger: pd.DataFrame, key: str) -> list[dict[str, Any]]:
    total_kwh = ledger["facility_energy_kwh"].sum()
    rows = []
    # Only the columns used: each group is a copy, and the ledger has some 80 columns.
    keep = [key, *counts.run_columns(ledger), "currency", "cost", *SUM_COLUMNS]
    used = ledger[list(dict.fromkeys(keep))]
    for value, group in used.groupby(key, sort=True, dropna=False):
        row: dict[str, Any] = {
            key: str(value),
            **{c: _round(group[c].sum()) for c in SUM_COLUMNS if c != "it_energy_kwh"},
        }
        row["cost"] = _cost(group)
        row["jobs"] = counts.runs(group)
        row["share_of_energy"] = (
            _round(group["facility_energy_kwh"].sum() / total_kwh) if total_kwh > 0 else 0.0
        )
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["facility_energy_kwh"], r[key]))


def _energy_methods(ledger: pd.DataFrame) -> dict[str, float]:
    total = ledger["facility_energy_kwh"].sum()
    by_method = ledger.groupby("energy_method")["facility_energy_kwh"].sum()
    return {m: _round(by_method.get(m, 0.0) / total) if total > 0 else 0.0 for m in ENERGY_METHODS}


def _gpu_energy(ledger: pd.DataFrame) -> dict[str, Any]:
    """How the cluster GPUs' IT energy was obtained: DCGM telemetry, node counters or the model."""
    cluster = ledger.loc[ledger["scope"] == "2"]
    total = float(cluster["gpu_energy_kwh"].sum())
    telemetry = float(cluster["gpu_energy_telemetry_kwh"].fillna(0.0).sum())
    node = float(cluster.loc[cluster["energy_method"] == "measured", "gpu_energy_kwh"].sum())
    covered = counts.telemetry_runs(cluster)
    return {
        "it_kwh": _round(total),
        "telemetry_kwh": _round(telemetry),
        "telemetry_share": _round(telemetry / total) if total > 0 else 0.0,
        "node_measured_share": _round(node / total) if total > 0 else 0.0,
        "runs_with_telemetry": int(covered),
    }


def build_summary(
    ledger: pd.DataFrame,
    period: Period,
    inputs: list[dict[str, Any]],
    findings: pd.DataFrame | Findings,
    gate_failures: list[str] | None = None,
    cloud: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """summary.json: the stable contract of DESIGN §5 (plus counts that explain it)."""
    return {
        "period": {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "label": period.label,
        },
        "totals": _totals(ledger),
        **{name: _breakdown(ledger, key) for name, key in BREAKDOWNS.items()},
        "inputs": inputs,
        "energy_methods": _energy_methods(ledger),
        "gpu_energy": _gpu_energy(ledger),
        "by_scope": _breakdown(ledger, "scope"),
        "cloud": cloud,
        "findings": _findings(findings),
        "quality_gate": {"passed": not gate_failures, "failures": list(gate_failures or [])},
    }


def _findings(findings: pd.DataFrame | Findings) -> dict[str, Any]:
    if isinstance(findings, Findings):  # held on disk: counted as they were found
        by_rule = findings.by_rule
        energy_kwh, co2e_kg = (findings.total(c) for c in ("wasted_energy_kwh", "wasted_co2e_kg"))
    else:
        by_rule = findings.groupby("rule").size().sort_index().to_dict()
        energy_kwh, co2e_kg = (findings[c].sum() for c in ("wasted_energy_kwh", "wasted_co2e_kg"))
    return {
        "count": len(findings),
        "by_rule": {str(rule): int(n) for rule, n in by_rule.items()},
        "wasted_energy_kwh": _round(energy_kwh),
        "wasted_co2e_kg": _round(co2e_kg),
        "audited": True,
    }


FINDINGS_SHOWN = 25  # in the report; findings.csv keeps them all


def findings_table(
    findings: pd.DataFrame | Findings, limit: int = FINDINGS_SHOWN
) -> list[dict[str, Any]]:
    """The report's findings, ranked by wasted kg CO2e (already the table's order)."""
    top = findings.head(limit)
    rows = top.astype(object).where(top.notna(), None)
    return rows.to_dict("records")


def factor_usage(ledger: pd.DataFrame) -> pd.Series:
    """Ledger rows referencing each factor id (ids joined by ';' count for each)."""
    rows: dict[str, int] = {}
    for column in FACTOR_ID_COLUMNS:  # a few distinct texts per column: split those, not rows
        for text, count in counts.rows_per_value(ledger, column).items():
            for factor_id in str(text).split(";"):
                rows[factor_id] = rows.get(factor_id, 0) + int(count)
    return pd.Series(rows, dtype="int64").sort_values(ascending=False, kind="stable")


def factor_register(ledger: pd.DataFrame, factors: pd.DataFrame) -> list[dict[str, Any]]:
    counts = factor_usage(ledger)
    used = factors[factors["factor_id"].isin(counts.index)].sort_values(["kind", "factor_id"])
    return [
        {
            **{k: (None if pd.isna(v) else v) for k, v in row.items()},
            "rows": int(counts[row["factor_id"]]),
            "year": None if pd.isna(row["year"]) else int(row["year"]),
            "is_default": bool(row["is_default"]),
        }
        for row in used.to_dict("records")
    ]


def defaults_used(ledger: pd.DataFrame, register: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every fallback behind the period's numbers, with the rows it touched."""
    found = [
        {
            "what": f"{f['kind']}: {f['key']}",
            "value": f"{f['value']:g} {f['unit']}",
            "rows": f["rows"],
            "why": f["source"]
            if f["kind"] == "market_intensity"
            else "no more specific value configured",
        }
        for f in register
        if f["is_default"]
    ]
    notes: dict[str, int] = {}
    for text, count in counts.rows_per_value(ledger, "energy_note").items():  # distinct notes
        for note in str(text).split("; "):
            notes[note] = notes.get(note, 0) + int(count)
    for text, rows in sorted(notes.items()):
        if text.startswith("measured "):
            text = "measured energy rejected as implausible, modelled instead"
        found.append({"what": "energy", "value": text, "rows": int(rows), "why": "see methodology"})
    uncosted = ledger.loc[ledger["cost_basis"] == "none"]
    if not uncosted.empty:
        sites = ", ".join(sorted(uncosted["site"].unique()))
        found.append(
            {
                "what": "cost",
                "value": "not costed",
                "rows": counts.rows(uncosted),
                "why": f"no rate card configured for site(s) {sites}",
            }
        )
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for item in found:
        key = (item["what"], item["value"])
        merged[key] = {**item, "rows": merged.get(key, {"rows": 0})["rows"] + item["rows"]}
    return list(merged.values())


def market_basis_note(register: list[dict[str, Any]]) -> str:
    markets = [f for f in register if f["kind"] == "market_intensity"]
    plain = [f["key"] for f in markets if f["factor_id"].endswith(":none")]
    if markets and len(plain) == len(markets):
        return "No contractual instruments are configured: market-based emissions equal location-based emissions."
    if plain:
        return f"No contractual instruments for {', '.join(plain)}: market-based equals location-based there."
    return "Market-based emissions use the contractual instruments configured per site (see the factor register)."


def build_context(
    summary: dict[str, Any],
    ledger: pd.DataFrame,
    factors: pd.DataFrame,
    *,
    assurance: dict[str, Any],
    findings: pd.DataFrame | Findings,
    unresolved_owners: list[dict[str, Any]],
    organisation: str,
    run_date: date,
    quarantine: pd.DataFrame,
    not_attributed: pd.DataFrame,
    methodology: dict[str, Any],
) -> dict[str, Any]:
    """Everything the report template shows; numbers are those of the summary."""
    register = factor_register(ledger, factors)
    sample = quarantine.sort_values(["source_file", "line"]).head(QUARANTINE_SAMPLE_ROWS)
    return {
        **summary,
        "title": "Compute sustainability report",
        "organisation": organisation,
        "tool_version": __version__,
        "run_date": run_date.isoformat(),
        "market_basis_note": market_basis_note(register),
        "not_attributed": not_attributed.to_dict("records"),
        "quarantine": {
            "rows": len(quarantine),
            "by_check": quarantine.groupby("check")
            .size()
            .rename("rows")
            .reset_index()
            .to_dict("records"),
            "sample": [
                {**r, "line": int(r["line"]), "raw": _shorten(str(r["raw"]))}
                for r in sample.to_dict("records")
            ],
        },
        "factors": register,
        "defaults_used": defaults_used(ledger, register),
        "methodology": methodology,
        "assurance": assurance,
        "findings_table": findings_table(findings),
        "unresolved_owners": unresolved_owners,
    }


def _shorten(text: str) -> str:
    return text if len(text) <= RAW_SAMPLE_CHARS else text[: RAW_SAMPLE_CHARS - 1] + "…"
