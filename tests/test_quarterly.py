"""Quarterly report pieces on small hand-made ledgers: comparison periods, uncertainty ranges,
restatement reasons, chart SVG hygiene."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from reporting import charts, method_changes, quarterly, quarterly_tables, restatement, uncertainty
from reporting.summary import Period


@pytest.mark.parametrize(
    ("start", "end", "months", "expected"),
    [
        (date(2026, 7, 1), date(2026, 9, 30), -3, (date(2026, 4, 1), date(2026, 6, 30))),
        (date(2026, 7, 1), date(2026, 9, 30), -12, (date(2025, 7, 1), date(2025, 9, 30))),
        (date(2026, 1, 1), date(2026, 3, 31), -3, (date(2025, 10, 1), date(2025, 12, 31))),
        (date(2026, 7, 1), date(2026, 8, 15), -3, (date(2026, 4, 1), date(2026, 5, 15))),
        (date(2026, 5, 31), date(2026, 5, 31), -3, (date(2026, 2, 28), date(2026, 2, 28))),
    ],
)
def test_comparison_periods(
    start: date, end: date, months: int, expected: tuple[date, date]
) -> None:
    shifted = quarterly.shifted(Period(start, end, "p"), months)
    assert (shifted.start, shifted.end) == expected


def _rows() -> pd.DataFrame:
    """Two on-prem GPU runs (one at the default PUE and default utilisation) and a cloud line."""
    return pd.DataFrame({
        "scope": ["2", "2", "3.1"],
        "it_energy_kwh": [100.0, 50.0, 10.0],
        "gpu_energy_kwh": [80.0, 40.0, 0.0],
        "pue": [1.3, 1.58, 1.15],
        "pue_factor_id": ["config:sites.a.pue", "pue:onprem-default", "pue:aws"],
        "facility_energy_kwh": [130.0, 79.0, 11.5],
        "co2e_location_kg": [26.0, 15.8, 2.3],
        "co2e_market_kg": [13.0, 15.8, 2.3],
        "co2e_embodied_kg": [3.0, 1.5, 0.0],
        "energy_method": ["measured", "modelled", "modelled"],
        "gpu_util_factor_id": [None, "method:default_gpu_util_ratio", None],
        "gpu_power_factor_id": ["gpu_power:X:min;gpu_power:X:max"] * 2 + [None],
    })  # fmt: skip


REGISTER = [
    {"factor_id": "pue:onprem-default", "kind": "pue", "value": 1.58, "is_default": True},
    {"factor_id": "config:sites.a.pue", "kind": "pue", "value": 1.3, "is_default": False},
    {"factor_id": "pue:aws", "kind": "pue", "value": 1.15, "is_default": False},
    {"factor_id": "method:default_gpu_util_ratio", "kind": "default_gpu_util_ratio", "value": 1.0, "is_default": True},
    {"factor_id": "gpu_power:X:min", "kind": "gpu_power_min", "value": 100.0, "is_default": False},
    {"factor_id": "gpu_power:X:max", "kind": "gpu_power_max", "value": 500.0, "is_default": False},
]  # fmt: skip


def test_uncertainty_central_is_the_ledger_and_the_range_brackets_it() -> None:
    spread = uncertainty.ranges(_rows(), REGISTER)
    kpis = {k["key"]: k for k in spread["kpis"]}
    assert kpis["facility_energy_kwh"]["central"] == pytest.approx(220.5)
    assert kpis["scope2_location_kg"]["central"] == pytest.approx(41.8)
    for k in kpis.values():
        assert k["low"] <= k["central"] <= k["high"]
    # high case: default PUE 1.7 on row 2, ±5 % on the others; utilisation has no high case
    assert kpis["facility_energy_kwh"]["high"] == pytest.approx(
        100 * 1.3 * 1.05 + 50 * 1.7 + 10 * 1.15 * 1.05
    )
    # low case on row 2: GPU at u = 0.5 draws (100 + 0.5 × 400) / 500 = 0.6 of its energy; PUE 1.3
    low_it = 50 - 40 * (1 - 0.6)
    assert kpis["facility_energy_kwh"]["low"] == pytest.approx(
        100 * 1.3 * 0.95 + low_it * 1.3 + 10 * 1.15 * 0.95
    )
    assert kpis["co2e_embodied_kg"]["low"] == pytest.approx(4.5 * 4 / 6)


def test_tornado_ranks_inputs_by_effect_and_leaves_embodied_out() -> None:
    bars = uncertainty.ranges(_rows(), REGISTER)["tornado"]["bars"]
    assert bars[0]["parameter"] == "Grid emission factor"
    assert "Embodied service life" not in {b["parameter"] for b in bars}
    assert all(b["low"] <= b["high"] for b in bars)


def test_restatement_reasons_name_what_changed() -> None:
    old = {"tool_version": "0.1.0", "methodology_sha256": "a", "factors": {"pue:x": 1.3, "grid:z": 270.0},
           "inputs": {"a.psv": "1"}}  # fmt: skip
    new = {"tool_version": "0.2.0", "methodology_sha256": "b", "factors": {"pue:x": 1.4, "grid:y": 40.0},
           "inputs": {"a.psv": "2"}}  # fmt: skip
    assert restatement.reasons(old, new) == [
        "tool version 0.1.0 → 0.2.0",
        "methodology text changed (formulas or rules)",
        "factor pue:x: 1.3 → 1.4",
        "factors newly used: grid:y",
        "factors no longer used: grid:z",
        "input files added, changed or removed: a.psv",
    ]
    assert restatement.reasons(old, old) == [
        "figures changed with the same factors, method and inputs"
    ]


def test_chart_svg_has_alt_text_prefixed_ids_and_no_markup_from_data() -> None:
    hostile = '<img src="http://127.0.0.1:9/x">'
    svg = str(
        charts.hbar_pairs("chart-t", "Title & more", [hostile, "b"], [1000.0, 2000.0], [500.0, 0.0])
    )
    again = str(
        charts.hbar_pairs("chart-t", "Title & more", [hostile, "b"], [1000.0, 2000.0], [500.0, 0.0])
    )
    assert svg == again  # reproducible bytes
    assert svg.startswith('<svg role="img" aria-labelledby="chart-t-title chart-t-desc"')
    assert '<title id="chart-t-title">Title &amp; more</title>' in svg
    assert "&lt;img src=" in svg and "<img" not in svg and "<!--" not in svg and "<style" not in svg
    ids = [part.split('"')[0] for part in svg.split(' id="')[1:]]
    assert all(i.startswith("chart-t") for i in ids)


# --- method changes marked on the trend charts ---------------------------------------------------


def _span(method_kwh: dict[str, float], grid: str = "grid:US-SRVC:2023", g: float = 270.5,
          pue: float = 1.3, zone: str | None = None) -> pd.DataFrame:  # fmt: skip
    """Ledger rows of one month: one row per energy method, all at one grid factor and PUE (and a
    row in another zone, if given)."""
    rows = pd.DataFrame({
        "energy_method": list(method_kwh), "facility_energy_kwh": list(method_kwh.values()),
        "grid_factor_id": grid, "grid_intensity_g_per_kwh": g,
        "market_factor_id": "market:atlas", "market_intensity_g_per_kwh": g * 0.6,
        "pue_factor_id": "config:sites.atlas.pue", "pue": pue,
    })  # fmt: skip
    if zone:
        other = rows.head(1).assign(
            grid_factor_id=f"grid:{zone}:2023",
            grid_intensity_g_per_kwh=40.0,
            facility_energy_kwh=0.0,
        )
        rows = pd.concat([rows, other], ignore_index=True)
    return rows


def test_method_changes_between_months() -> None:
    spans = [
        ("2026-07", _span({"modelled": 95.0, "measured": 5.0})),
        ("2026-08", _span({"modelled": 92.0, "measured": 5.0, "telemetry": 3.0}, zone="SE")),
        ("2026-09", _span({"modelled": 70.0, "measured": 27.0, "telemetry": 3.0}, zone="SE")),
        ("2026-10", _span({"modelled": 70.0, "measured": 27.0, "telemetry": 3.0}, "grid:US-SRVC:2024", 260.0, 1.4)),
        ("2026-11", _span({"modelled": 70.0, "measured": 29.5, "telemetry": 0.5}, "grid:US-SRVC:2024", 260.0, 1.4)),
    ]  # fmt: skip
    changes = method_changes.between(spans)
    assert [(c["mark"], c["after"], c["from"], c["index"]) for c in changes] == [
        ("A", "2026-07", "2026-08", 1), ("B", "2026-08", "2026-09", 2),
        ("C", "2026-09", "2026-10", 3), ("D", "2026-10", "2026-11", 4),
    ]  # fmt: skip
    # a zone used for the first time (SE in August) is activity, not a change of method
    assert changes[0]["reasons"] == ["energy method telemetry now 3.0 % of facility energy"]
    assert changes[1]["reasons"] == [
        "energy method measured 5.0 % → 27.0 % of facility energy",
        "energy method modelled 92.0 % → 70.0 % of facility energy",
    ]
    assert changes[2]["reasons"] == [
        "grid factor grid:US-SRVC: 2023, 270.5 g/kWh → 2024, 260 g/kWh",
        "market-based factor market:atlas: 162.3 g/kWh → 156 g/kWh",
        "PUE config:sites.atlas.pue: 1.3 → 1.4",
    ]
    assert changes[3]["reasons"] == ["energy method telemetry below 1.0 % (was 3.0 %)"]
    assert method_changes.between(spans[:1]) == [] and method_changes.between([]) == []


def test_marks_are_drawn_and_named_in_the_alt_text() -> None:
    marks = method_changes.between([("2026-07", _span({"modelled": 100.0})),
                                    ("2026-08", _span({"telemetry": 100.0}))])  # fmt: skip
    plain = str(charts.grouped_bars("chart-m", "Monthly", ["2026-07", "2026-08"],
                                    {"location-based": [1000.0, 2000.0]}, "t CO2e", 1000))  # fmt: skip
    marked = str(charts.grouped_bars("chart-m", "Monthly", ["2026-07", "2026-08"],
                                     {"location-based": [1000.0, 2000.0]}, "t CO2e", 1000, marks))  # fmt: skip
    assert "Method changes marked" not in plain
    desc = marked.split('<desc id="chart-m-desc">')[1].split("</desc>")[0]
    assert (
        "Method changes marked: A between 2026-07 and 2026-08: energy method modelled below" in desc
    )
    assert len(marked) > len(plain) + 500  # the dotted line, the triangle and the label's paths
    line = str(charts.lines("chart-q", "Quarters", ["2026-Q2", "2026-Q3"],
                            {"location-based": [1000.0, 2000.0]}, "t CO2e", 1000, marks))  # fmt: skip
    assert "A between 2026-07 and 2026-08" in line


def test_model_card_idle_is_measured_idle_times_pue_at_the_rows_factors() -> None:
    rows = pd.DataFrame({
        "model": ["orca", "orca", "idle", "heron"], "site": ["a", "a", "a", "a"],
        "usage_id": ["1", "2", "3", "4"], "phase": ["inference"] * 3 + ["training"],
        "gpu_type": ["H100"] * 4, "region": ["Z"] * 4, "n_gpus": [8, 8, 0, 8],
        "gpu_hours": [10.0, 10.0, 0.0, 20.0], "telemetry_coverage_ratio": [1.0, 0.0, 0.0, 0.0],
        "idle_gpu_energy_kwh": [2.0, 0.0, 0.0, 0.0], "pue": [1.5, 1.5, 1.5, 1.5],
        "grid_intensity_g_per_kwh": [400.0] * 4, "market_intensity_g_per_kwh": [100.0] * 4,
        "facility_energy_kwh": [30.0, 30.0, 12.0, 60.0],
        "co2e_location_kg": [12.0, 12.0, 4.8, 24.0], "co2e_market_kg": [3.0, 3.0, 1.2, 6.0],
        "co2e_embodied_kg": [1.0, 1.0, 0.0, 2.0],
    })  # fmt: skip
    heron, orca = sorted(quarterly_tables.model_cards(rows), key=lambda c: c["model"])
    assert orca["idle_measured_kwh"] == pytest.approx(3.0)  # 2 kWh IT × PUE 1.5
    assert orca["idle_measured_kg"] == pytest.approx(1.2)  # × 400 g/kWh
    assert orca["idle_capacity_kwh"] == pytest.approx(6.0)  # half the site's GPU-hours besides idle
    assert orca["idle_kg"] == pytest.approx(1.2 + 2.4)
    assert orca["idle_market_kg"] == pytest.approx(0.3 + 0.6)
    assert orca["dynamic_kg"] == pytest.approx(24.0 - 1.2)  # its own runs less the measured idle
    assert orca["idle_share_ratio"] == pytest.approx(3.6 / (22.8 + 3.6 + 2.0), abs=1e-6)
    assert orca["telemetry_covered_ratio"] == pytest.approx(0.5)
    assert heron["idle_measured_kg"] == 0.0 and heron["dynamic_kg"] == pytest.approx(24.0)
