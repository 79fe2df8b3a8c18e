"""The cloud audit rules on hand-built ledger rows, with savings worked out by hand, and once
through the whole pipeline from a FOCUS file (findings.csv, the report and the owners' e-mails)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from reporting.audit import audit_ledger, finding_id
from reporting.audit_config import Audit, RegionRule, Rule, SavingRule
from reporting.cli import app
from reporting.config import parse_config
from reporting.errors import ConfigError
from reporting.factors import grid_factor
from reporting.notify_mail import finding_view, waste_totals
from reporting.schema import FINDING_COLUMNS, LEDGER_COLUMNS, LEDGER_SCHEMA
from reporting.summary import findings_table
from tests.conftest import focus_rows

DAY = date(2026, 7, 31)
PERIOD = "focus|acct|2026-07-01"
START = pd.Timestamp("2026-07-01T00:00:00Z")
US_EAST_1 = grid_factor("US-SRVC").value  # aws us-east-1 in reporting/data/cloud_regions.csv
EU_NORTH_1 = grid_factor("SE").value  # aws eu-north-1
# A healthy line: 10 h of a p4d.24xlarge (8 GPUs) covered by a commitment, tagged to nlp.
CLOUD = {
    "day": date(2026, 7, 1), "usage_id": "focus:c1", "source": "focus", "site": "aws:us-east-1",
    "account": "prod", "job_name": "i-0001", "state": "Usage", "started_at": START,
    "ended_at": START + pd.Timedelta(hours=10), "n_gpus": 8.0, "gpu_hours": 80.0, "team": "nlp",
    "model": "llm", "phase": "training", "owner": "alice", "facility_energy_kwh": 60.0,
    "grid_zone": "US-SRVC", "grid_intensity_g_per_kwh": US_EAST_1,
    "co2e_location_kg": 60.0 * US_EAST_1 / 1000, "cost": 300.0, "currency": "USD",
    "scope": "3.1", "provider": "aws", "service_name": "Amazon Elastic Compute Cloud",
    "region_id": "us-east-1", "resource_type": "p4d.24xlarge", "charge_category": "Usage",
    "pricing_category": "Committed", "commitment_status": "Used", "tags": '{"team": "nlp"}',
    "billed_cost": 300.0, "effective_cost": 300.0, "billing_period": PERIOD,
}  # fmt: skip
ON_DEMAND = {"pricing_category": "Standard", "commitment_status": None}


def typed(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Rows as the ledger store reads them back (parquet types: str, float64, UTC seconds)."""
    frame = pd.DataFrame(
        [{**dict.fromkeys(LEDGER_COLUMNS), **r} for r in rows], columns=LEDGER_COLUMNS
    )
    return pa.Table.from_pandas(frame, schema=LEDGER_SCHEMA, preserve_index=False).to_pandas()


def ledger(*changes: dict[str, object]) -> pd.DataFrame:
    return typed(
        [{**CLOUD, "usage_id": f"focus:c{i}", **change} for i, change in enumerate(changes)]
    )


def audit(frame: pd.DataFrame, settings: Audit | None = None) -> pd.DataFrame:
    found = audit_ledger(frame, settings or Audit(), {}, DAY)
    assert list(found.columns) == FINDING_COLUMNS
    return found


def only(found: pd.DataFrame, rule: str) -> pd.Series:
    mine = found[found["rule"] == rule]
    assert len(mine) == 1, found[["rule", "usage_id"]]
    return mine.iloc[0]


def rules(found: pd.DataFrame) -> set[str]:
    return set(found["rule"])


def test_a_committed_tagged_line_has_no_findings() -> None:
    assert audit(ledger({})).empty


def test_unused_commitment_wastes_its_amortised_cost_per_resource() -> None:
    unused = {"commitment_status": "Unused", "pricing_category": "Committed", "gpu_hours": 0.0,
              "facility_energy_kwh": 0.0, "co2e_location_kg": 0.0, "job_name": "ri-1"}  # fmt: skip
    found = audit(ledger(
        # FOCUS: an Unused row bills 0 (the purchase carries the cash), its day rows add up.
        {**unused, "usage_id": "focus:u1", "cost": 0.0, "billed_cost": 0.0, "effective_cost": 25.0},
        {**unused, "usage_id": "focus:u1", "cost": 0.0, "billed_cost": 0.0, "effective_cost": 25.0,
         "day": date(2026, 7, 2)},
        # A CUR RIFee line bills the whole fee; only its effective (unused) part is waste.
        {**unused, "usage_id": "aws_cur:f1", "cost": 100.0, "billed_cost": 100.0, "effective_cost": 20.0},
        {**unused, "usage_id": "focus:u2", "job_name": "ri-2", "effective_cost": 0.5, "cost": 0.0},
    ))  # fmt: skip
    hit = only(found, "unused_commitment")
    assert hit["wasted_cost"] == pytest.approx(25 + 25 + 20) and hit["currency"] == "USD"
    assert hit["measured_value"] == pytest.approx(70.0) and hit["threshold"] == 1.0
    assert hit["wasted_energy_kwh"] == 0 and hit["wasted_co2e_kg"] == 0
    assert hit["usage_id"] == f"unused:{PERIOD}|aws:us-east-1|prod|ri-1|USD"
    assert hit["site"] == "aws:us-east-1" and hit["job_name"] == "ri-1" and hit["team"] == "nlp"
    assert "renewal" in hit["action"] and "70.00 USD" in hit["message"]
    assert hit["finding_id"] == finding_id("unused_commitment", hit["usage_id"])


def test_untagged_spend_per_billing_period_and_currency() -> None:
    untagged = {"team": "unallocated", "owner": "unallocated", "pricing_category": "Dynamic"}
    july, august = PERIOD, "focus|acct|2026-08-01"
    found = audit(ledger(
        {"cost": 800.0},
        {**untagged, "cost": 200.0},  # 20 % of July's USD usage
        {**untagged, "cost": 1000.0, "charge_category": "Tax", "gpu_hours": 0.0},  # not usage
        {"cost": 50.0, "currency": "EUR"},
        {**untagged, "cost": 50.0, "currency": "EUR"},  # 50 %, but only 50 EUR
        {"cost": 950.0, "billing_period": august},
        {**untagged, "cost": 50.0, "billing_period": august},  # 5 %
    ))  # fmt: skip
    hit = only(found, "untagged_spend")
    assert hit["usage_id"] == f"untagged:{july}:USD" and hit["site"] == "aws"
    assert hit["measured_value"] == pytest.approx(0.2) and hit["threshold"] == pytest.approx(0.1)
    assert hit["wasted_energy_kwh"] == 0 and hit["wasted_cost"] == 0
    assert hit["team"] == "unallocated" and pd.isna(hit["user"])
    assert "20.0 % of usage cost untagged: 200.00 USD of 1,000.00 USD" in hit["message"]
    assert "cost-allocation tags" in hit["action"]


def test_spot_candidate_for_on_demand_training() -> None:
    half = {**ON_DEMAND, "gpu_hours": 40.0, "cost": 150.0}
    found = audit(ledger(
        {**half, "usage_id": "focus:s1"},
        {**half, "usage_id": "focus:s1", "day": date(2026, 7, 2)},  # the same charge's next day
        {**ON_DEMAND, "phase": "inference", "job_name": "i-2"},  # serving: no reclaims wanted
        {**ON_DEMAND, "phase": "unallocated", "job_name": "i-3"},  # unknown: not guessed
        {**ON_DEMAND, "gpu_hours": 16.0, "job_name": "i-4"},  # under 24 GPU-hours
        {"pricing_category": "Dynamic", "job_name": "i-5"},  # already spot
    ))  # fmt: skip
    hit = only(found, "spot_candidate")
    assert hit["wasted_cost"] == pytest.approx(300.0 * 0.6)
    assert hit["measured_value"] == pytest.approx(80.0) and hit["threshold"] == 24.0
    assert hit["job_name"] == "i-0001" and hit["wasted_energy_kwh"] == 0
    assert "estimate" in hit["waste_formula"] and "estimated 180.00 USD" in hit["message"]
    tuned = Audit(spot_candidate=SavingRule(threshold=0, min_size=1, discount=0.5))
    assert len(audit(ledger({**ON_DEMAND}, {**ON_DEMAND, "gpu_hours": 16.0, "job_name": "i-4"}),
                     tuned)) == 2  # fmt: skip
    assert only(audit(ledger({**ON_DEMAND}), tuned), "spot_candidate")["wasted_cost"] == 150.0


def test_commitment_candidate_for_steady_on_demand_gpus() -> None:
    def days(n: int, **change: object) -> list[dict[str, object]]:
        return [{**ON_DEMAND, "phase": "inference", "day": date(2026, 7, 1) + timedelta(days=i),
                 "usage_id": f"focus:d{i}", "cost": 60.0, **change} for i in range(n)]  # fmt: skip

    found = audit(ledger(*days(20)))
    hit = only(found, "commitment_candidate")
    assert hit["usage_id"] == "commit:aws:p4d.24xlarge:us-east-1:USD"
    assert hit["wasted_cost"] == pytest.approx(20 * 60.0 * 0.3)
    assert hit["measured_value"] == 20 and hit["threshold"] == 20
    assert hit["site"] == "aws:us-east-1" and hit["team"] == "nlp"
    assert rules(audit(ledger(*days(19)))) == set()  # on 19 days only
    assert rules(audit(ledger(*days(20, cost=40.0)))) == set()  # 800 USD < 1000
    mixed = days(20)
    mixed[0] = {**mixed[0], "team": "vision"}
    assert only(audit(ledger(*mixed)), "commitment_candidate")["team"] == "unallocated"


def test_cleaner_region_only_when_configured_and_cleaner() -> None:
    line = {"job_name": "i-9", "co2e_location_kg": 100.0}
    assert audit(ledger(line)).empty  # no alternatives by default
    config = Audit(cleaner_region=RegionRule(alternatives={"us-east-1": "eu-north-1"}))
    hit = only(audit(ledger(line), config), "cleaner_region")
    share = 1 - EU_NORTH_1 / US_EAST_1
    assert hit["wasted_co2e_kg"] == pytest.approx(100.0 * share)
    assert hit["measured_value"] == pytest.approx(share) and hit["threshold"] == pytest.approx(0.1)
    assert hit["wasted_energy_kwh"] == 0 and hit["wasted_cost"] == 0
    assert "eu-north-1" in hit["action"]
    # us-west-2 (eGRID NWPP) is dirtier than us-east-1 in the packaged tables: no move suggested.
    dirtier = Audit(cleaner_region=RegionRule(alternatives={"aws:us-east-1": "us-west-2"}))
    assert audit(ledger(line), dirtier).empty


def test_cleaner_region_alternatives_are_checked_at_load(tmp_path: Path) -> None:
    def load(alternatives: dict[str, str]) -> None:
        parse_config({"organisation": {"name": "t"}, "inputs": [],
                      "audit": {"cleaner_region": {"alternatives": alternatives}}},
                     tmp_path / "g.toml")  # fmt: skip

    load({"us-east-1": "eu-north-1", "gcp:us-central1": "europe-north1"})
    with pytest.raises(ConfigError, match="audit.cleaner_region.alternatives.*us-east-9"):
        load({"us-east-9": "eu-north-1"})
    with pytest.raises(ConfigError, match="not a region of the same provider"):
        load({"us-east-1": "europe-north1"})


def test_rules_can_be_switched_off() -> None:
    off = Audit(untagged_spend=Rule(enabled=False, threshold=0.1, min_size=100.0),
                spot_candidate=SavingRule(enabled=False, threshold=0, min_size=24, discount=0.6))  # fmt: skip
    frame = ledger({**ON_DEMAND, "team": "unallocated"})
    assert rules(audit(frame)) == {"untagged_spend", "spot_candidate"}
    assert audit(frame, off).empty


def test_cluster_rules_ignore_cloud_rows_and_both_kinds_mix() -> None:
    # A cloud row that would look idle and failed to the cluster rules.
    odd = {"state": "FAILED", "gpu_util_ratio": 0.0, "duration_s": 36000.0, "pue": 1.15,
           "gpu_energy_kwh": 40.0, "timelimit_s": 864000.0}  # fmt: skip
    assert audit(ledger(odd)).empty
    job = {"usage_id": "slurm:lab:1", "site": "lab", "user": "bob",
           "state": "FAILED", "facility_energy_kwh": 15.0, "co2e_location_kg": 1.5, "cost": 30.0,
           "currency": "EUR", "scope": "2", "n_gpus": 0.0, "gpu_hours": 0.0, "duration_s": 7200.0,
           "ended_at": pd.Timestamp("2026-07-02T12:00:00Z")}  # fmt: skip
    mixed = pd.concat([ledger({**ON_DEMAND}), typed([job])], ignore_index=True)
    found = audit(mixed)
    assert list(found["rule"]) == ["failed_run", "spot_candidate"]  # ranked by kg CO2e
    assert list(found["user"]) == ["bob", None]


def test_cloud_findings_feed_the_report_and_mail_views() -> None:
    found = audit(ledger({**ON_DEMAND, "team": "unallocated"}))
    table = findings_table(found)
    assert {r["rule"] for r in table} == {"spot_candidate", "untagged_spend"}
    assert all(r["job_name"] for r in table)  # labelled, never an empty "Job" cell
    views = [finding_view(r) for r in found.to_dict("records")]
    assert {v["user"] for v in views} == {"—"}
    assert {tuple(v["cost"]) for v in views} == {("USD",)}
    # Spot (money) and a cleaner region (carbon) on one instance both count in a digest's totals.
    config = Audit(cleaner_region=RegionRule(alternatives={"us-east-1": "eu-north-1"}))
    both = audit(ledger({**ON_DEMAND, "co2e_location_kg": 100.0}), config)
    assert set(both["rule"]) == {"spot_candidate", "cleaner_region"}
    totals = waste_totals(both)
    assert totals["cost"] == {"USD": pytest.approx(300.0 * 0.6)}
    assert totals["co2e_kg"] == pytest.approx(100.0 * (1 - EU_NORTH_1 / US_EAST_1))


def test_an_hourly_export_gives_one_finding_per_resource_and_billing_period() -> None:
    hours = [{**ON_DEMAND, "usage_id": f"focus:h{h}", "gpu_hours": 8.0, "cost": 30.0,
              "started_at": START + pd.Timedelta(hours=h), "ended_at": START + pd.Timedelta(hours=h + 1)}
             for h in range(48)]  # fmt: skip
    august = {**hours[0], "usage_id": "focus:aug", "billing_period": "focus|acct|2026-08-01"}
    found = audit(ledger(*hours, august))
    spot = found[found["rule"] == "spot_candidate"].set_index("usage_id")
    assert list(spot.index) == [f"spot:{PERIOD}|aws:us-east-1|prod|i-0001|USD"]  # August: 8 GPU-h
    assert spot["measured_value"].iloc[0] == pytest.approx(48 * 8.0)
    assert spot["wasted_cost"].iloc[0] == pytest.approx(48 * 30.0 * 0.6)
    assert spot["ended_at"].iloc[0] == START + pd.Timedelta(hours=48)


# --- end to end: a FOCUS file through `greenops run` ---------------------------------------------


def test_a_focus_file_through_the_pipeline(tmp_path: Path) -> None:
    training = json.dumps({"team": "nlp", "phase": "training"})
    (tmp_path / "focus.csv").write_text(focus_rows([
        {"BilledCost": "327.726", "x_InstanceType": "p4d.24xlarge", "ResourceId": "i-0abc",
         "Tags": training},  # 80 on-demand GPU-hours of training
        {"BilledCost": "0", "EffectiveCost": "45", "PricingCategory": "Committed",
         "CommitmentDiscountStatus": "Unused", "ConsumedQuantity": "", "ConsumedUnit": "",
         "ResourceId": "ri-1"},
        {"BilledCost": "500", "x_InstanceType": "m5.large", "ResourceId": "i-0def"},  # untagged
    ]), encoding="utf-8")  # fmt: skip
    (tmp_path / "greenops.toml").write_text(
        '[organisation]\nname = "Cloud audit"\n'
        '[[inputs]]\nkind = "billing"\npath = "focus.csv"\n'
        '[[owners]]\nmatch = { "tag:team" = "(?P<t>.+)" }\nteam = "{t}"\n'
        '[[owners]]\nmatch = { "tag:phase" = "(?P<p>.+)" }\nphase = "{p}"\n'
        '[audit.cleaner_region]\nalternatives = { "us-east-1" = "eu-north-1" }\n'
        '[notify]\nenabled = true\nadmin_address = "finops@example.org"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "run", "--config", str(tmp_path / "greenops.toml"), "--from", "2026-07-01",
        "--to", "2026-07-31", "--out", str(out), "--dry-run",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    found = pd.read_csv(out / "findings.csv").set_index("rule")
    assert set(found.index) == {"unused_commitment", "untagged_spend", "spot_candidate",
                                "cleaner_region"}  # fmt: skip
    assert found.loc["unused_commitment", "wasted_cost"] == pytest.approx(45.0)
    untagged = found.loc["untagged_spend"]
    assert untagged["measured_value"] == pytest.approx(500 / (500 + 327.726))
    assert found.loc["spot_candidate", "wasted_cost"] == pytest.approx(327.726 * 0.6)
    assert found.loc["spot_candidate", "job_name"] == "i-0abc"
    assert found.loc["cleaner_region", "site"] == "aws:us-east-1"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["findings"]["by_rule"]["unused_commitment"] == 1
    html = (out / "report.html").read_text()
    assert "unused_commitment" in html and "spot_candidate" in html and ">None<" not in html
    mails = b"".join(p.read_bytes() for p in (out / "outbox").glob("*.eml"))
    assert b"finops@example.org" in mails
