"""A Kubernetes cluster on cloud instances: the node's bill is split over its pods, not added."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from reporting.cli import app
from reporting.cloud_nodes import resource_key
from reporting.ledger import read_ledger
from tests.conftest import focus_rows

DAY = ("2026-07-01T00:00:00Z", "2026-07-02T00:00:00Z")
NODE = "aws:///us-east-1a/i-0abc123def"


def _allocation(name: str, namespace: str | None, cost: float, gpus: float) -> dict:
    return {
        "name": name, "window": {"start": DAY[0], "end": DAY[1]}, "start": DAY[0], "end": DAY[1],
        "properties": {"cluster": "eks1", "namespace": namespace, "node": "ip-10-0-0-1",
                       "pod": None if namespace is None else name, "providerID": NODE,
                       "labels": {"team": name.split("-")[0]} if namespace else {}},
        "cpuCores": 8.0, "cpuCoreRequestAverage": 8.0, "cpuCoreUsageAverage": 4.0,
        "gpuCount": gpus, "gpuHours": gpus * 24, "ramByteRequestAverage": 32 * 1024**3,
        "totalCost": cost,
    }  # fmt: skip


def _config(tmp_path: Path, with_pods: bool) -> Path:
    pods = (
        '[[inputs]]\nkind = "opencost"\npath = "alloc.json"\nsite = "eks"\ncloud_nodes = true\n'
        if with_pods else ""
    )  # fmt: skip
    config = tmp_path / ("both.toml" if with_pods else "bill.toml")
    config.write_text(
        '[organisation]\nname = "lab"\n[[sites]]\nname = "eks"\ngrid_zone = "US-SRVC"\n'
        f'{pods}[[inputs]]\nkind = "focus"\npath = "bill.csv"\n'
        '[[owners]]\nmatch = { "tag:team" = "(?P<t>.+)" }\nteam = "{t}"\n'
        '[[owners]]\nmatch = { namespace = "^__idle__$" }\nteam = "platform"\nmodel = "idle"\n',
        encoding="utf-8",
    )
    return config


def _run(config: Path, out: Path) -> dict:
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--from", "2026-07-01",
                                      "--to", "2026-07-31", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


@pytest.fixture()
def lab(tmp_path: Path) -> Path:
    steps = [{
        "alpha-a": _allocation("alpha-a", "research", 30.0, 1.0),
        "beta-b": _allocation("beta-b", "serving", 10.0, 1.0),
        "__idle__": _allocation("__idle__", None, 10.0, 0.0),
    }]  # fmt: skip
    (tmp_path / "alloc.json").write_text(json.dumps({"code": 200, "data": steps}))
    (tmp_path / "bill.csv").write_text(focus_rows([{
        "BilledCost": "240", "ResourceId": "i-0abc123def", "x_InstanceType": "p4d.24xlarge",
        "ChargePeriodStart": DAY[0], "ChargePeriodEnd": DAY[1], "ConsumedQuantity": "24",
    }]))  # fmt: skip
    return tmp_path


def test_resource_keys_of_provider_ids_and_billing_resources() -> None:
    ids = pd.Series([NODE, "i-0ABC123DEF", "gce://proj/us-central1-a/gke-n1/",
                     "projects/proj/zones/us-central1-a/instances/gke-n1", None])  # fmt: skip
    assert resource_key(ids).tolist() == ["i-0abc123def", "i-0abc123def", "gke-n1", "gke-n1", None]


def test_cost_and_energy_equal_the_bill_and_are_split_by_allocation(lab: Path) -> None:
    bill_only = _run(_config(lab, with_pods=False), lab / "out-bill")
    both = _run(_config(lab, with_pods=True), lab / "out-both")
    assert both["totals"]["cost"] == pytest.approx({"USD": 240.0})  # not 240 + OpenCost's 50
    for total in ("facility_energy_kwh", "co2e_location_kg"):
        assert both["totals"][total] == pytest.approx(bill_only["totals"][total])
    teams = {t["team"]: t for t in both["by_team"]}
    # OpenCost cost shares on the node: alpha 30/50, beta 10/50, idle 10/50 (cluster owner).
    assert teams["alpha"]["cost"]["USD"] == pytest.approx(240 * 0.6)
    assert teams["beta"]["cost"]["USD"] == pytest.approx(240 * 0.2)
    assert teams["platform"]["cost"]["USD"] == pytest.approx(240 * 0.2)
    energy = bill_only["totals"]["facility_energy_kwh"]
    assert teams["alpha"]["facility_energy_kwh"] == pytest.approx(energy * 0.6)
    [line] = [r for r in both["cloud"]["reconciliation"] if r["source_file"] == "bill.csv"]
    assert line["reconciled"] and line["cost_in_ledger"] == pytest.approx(240.0)
    ledger = read_ledger(lab / "out-both" / "ledger", pd.Timestamp("2026-07-01").date(),
                         pd.Timestamp("2026-07-31").date())  # fmt: skip
    pods = ledger[ledger["source"] == "opencost"]
    assert (pods["cost"] == 0).all() and (pods["it_energy_kwh"] == 0).all()
    assert pods["energy_note"].str.contains("cloud bill").all()


def test_a_pod_on_a_node_without_a_bill_line_keeps_its_own_figures(lab: Path) -> None:
    (lab / "bill.csv").write_text(focus_rows([{"BilledCost": "5", "ResourceId": "i-other"}]))
    both = _run(_config(lab, with_pods=True), lab / "out")
    assert both["totals"]["cost"]["USD"] == pytest.approx(5.0 + 50.0)
