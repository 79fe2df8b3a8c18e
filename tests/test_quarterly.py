"""Quarterly report pieces on small hand-made ledgers: comparison periods, uncertainty ranges,
restatement reasons, chart SVG hygiene."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from reporting import charts, quarterly, restatement, uncertainty
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
