"""The report's sections give the same figures on the rollup of a ledger (rollup.py: each day's
rows grouped, runs counted on their first row) as on the ledger rows themselves.

The ledger is the demo's (Slurm, Kubernetes, cloud billing, DCGM telemetry, serving volume),
which holds runs spanning midnight and billing lines shared by teams: the cases where counting
per day would count a run or a line twice.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reporting import ledger as store
from reporting import quarterly, rollup, uncertainty
from reporting.quarterly_tables import (
    energy_by_site,
    intensity,
    location_table,
    model_cards,
)
from reporting.summary import Period, build_summary, defaults_used, factor_register
from reporting.summary_cloud import cloud_block


@pytest.fixture(scope="module")
def demo_ledger(demo_out_session: Path) -> dict[str, Any]:
    summary = json.loads((demo_out_session / "summary.json").read_text(encoding="utf-8"))
    block = summary["period"]
    period = Period(date.fromisoformat(block["start"]), date.fromisoformat(block["end"]),
                    block["label"])  # fmt: skip
    root = demo_out_session / "ledger"
    factors = store.read_factors(root)
    return {
        "root": root,
        "period": period,
        "rows": store.read_ledger(root, period.start, period.end),
        "rollup": rollup.read(root, period.start, period.end, factors),
        "factors": factors,
    }


def test_the_demo_ledger_has_the_cases_that_need_care(demo_ledger: dict[str, Any]) -> None:
    rows = demo_ledger["rows"]
    days_per_run = rows.groupby("usage_id")["day"].nunique()
    assert (days_per_run > 1).sum() > 0  # runs spanning midnight
    lines = rows.loc[rows["scope"] == "3.1", "usage_id"]
    assert lines.str.contains("#").any()  # billing lines shared by teams
    assert len(demo_ledger["rollup"].rows) < len(rows)


def test_summary_is_the_same(demo_ledger: dict[str, Any]) -> None:
    rows, grouped = demo_ledger["rows"], demo_ledger["rollup"]
    findings = pd.DataFrame({"rule": [], "wasted_energy_kwh": [], "wasted_co2e_kg": []})
    period = demo_ledger["period"]
    assert build_summary(grouped.rows, period, [], findings) == build_summary(
        rows, period, [], findings
    )
    assert grouped.rows["runs"].sum() == rows["usage_id"].nunique()


def test_cloud_block_is_the_same(demo_ledger: dict[str, Any]) -> None:
    rows, grouped, root = demo_ledger["rows"], demo_ledger["rollup"], demo_ledger["root"]
    held = store.read_ledger(root, date.min, date.max, ["source_file", "currency", "cost", "cost_basis", "scope"])  # fmt: skip
    intake = store.read_intake(root)
    expected = cloud_block(rows, held[held["scope"] == "3.1"], intake)
    assert expected["lines"] > 0
    assert cloud_block(grouped.rows, grouped.held, intake) == expected


def test_factor_register_and_defaults_are_the_same(demo_ledger: dict[str, Any]) -> None:
    rows, grouped, factors = demo_ledger["rows"], demo_ledger["rollup"], demo_ledger["factors"]
    register = factor_register(rows, factors)
    assert factor_register(grouped.rows, factors) == register
    assert defaults_used(grouped.rows, register) == defaults_used(rows, register)


def test_quarterly_tables_are_the_same(demo_ledger: dict[str, Any]) -> None:
    keyed = quarterly.with_report_keys(demo_ledger["rows"])
    grouped = demo_ledger["rollup"].rows
    register = factor_register(demo_ledger["rows"], demo_ledger["factors"])
    assert model_cards(grouped) == model_cards(keyed)
    assert intensity(grouped) == intensity(keyed)
    assert location_table(grouped, register) == location_table(keyed, register)
    assert energy_by_site(grouped) == energy_by_site(keyed)
    assert quarterly.monthly(grouped) == quarterly.monthly(keyed)


def test_uncertainty_ranges_are_the_same(demo_ledger: dict[str, Any]) -> None:
    register = factor_register(demo_ledger["rows"], demo_ledger["factors"])
    expected = uncertainty.ranges(demo_ledger["rows"], register)
    assert uncertainty.ranges_of(demo_ledger["rollup"].uncertainty) == expected


def test_history_holds_every_day(demo_ledger: dict[str, Any]) -> None:
    every = store.read_ledger(demo_ledger["root"], date.min, date.max, ["day", "co2e_location_kg"])
    history = demo_ledger["rollup"].history
    assert set(history["day"]) == set(every["day"])
    assert history["co2e_location_kg"].sum() == pytest.approx(every["co2e_location_kg"].sum())
