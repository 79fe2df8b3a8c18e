"""Each audit rule on hand-built runs, with waste worked out by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from reporting.audit import audit_ledger, finding_id
from reporting.audit_config import Audit, Rule

DAY = date(2026, 9, 30)
# A healthy 2-hour, 2-GPU run: 10 kWh IT (8 GPU, 1.5 CPU, 0.5 memory), PUE 1.5 → 15 kWh facility,
# 100 g/kWh → 1.5 kg, cost 30 (2 per facility kWh).
BASE = {
    "usage_id": "slurm:lab:1:x", "site": "lab", "user": "alice", "account": "nlp", "job_name": "train",
    "owner": "alice@example.org", "team": "nlp", "model": "llm", "phase": "training", "state": "COMPLETED",
    "n_gpus": 2.0, "gpu_util_ratio": 0.9, "cpu_util_ratio": 0.9, "mem_requested_gb": 100.0,
    "mem_used_max_gb": 80.0, "timelimit_s": 3 * 3600.0, "duration_s": 7200.0, "n_nodes": 1.0, "pue": 1.5, "currency": "USD",
    "ended_at": pd.Timestamp("2026-09-30T12:00:00Z"), "facility_energy_kwh": 15.0, "it_energy_kwh": 10.0,
    "gpu_energy_kwh": 8.0, "cpu_energy_kwh": 1.5, "memory_energy_kwh": 0.5, "co2e_location_kg": 1.5,
    "cost": 30.0, "gpu_hours": 4.0, "cpu_core_hours": 20.0,
}  # fmt: skip


def _audit(*changes: dict[str, object], audit: Audit | None = None) -> pd.DataFrame:
    rows = [{**BASE, "usage_id": f"slurm:lab:{i}:x", **change} for i, change in enumerate(changes)]
    return audit_ledger(pd.DataFrame(rows), audit or Audit(), {}, DAY)


def _only(findings: pd.DataFrame, rule: str) -> pd.Series:
    mine = findings[findings["rule"] == rule]
    assert len(mine) == 1, findings[["rule", "usage_id"]]
    return mine.iloc[0]


def test_a_healthy_run_has_no_findings() -> None:
    assert _audit({}).empty


def test_idle_gpu_wastes_all_its_gpu_energy() -> None:
    found = _only(_audit({"gpu_util_ratio": 0.0}), "idle_gpu")
    assert found["wasted_energy_kwh"] == pytest.approx(8.0 * 1.5)
    assert found["wasted_co2e_kg"] == pytest.approx(12.0 * 0.1)
    assert found["wasted_cost"] == pytest.approx(30.0 * 12.0 / 15.0)
    assert found["wasted_gpu_hours"] == pytest.approx(4.0)
    assert found["severity"] == "high" and "idle" in found["message"]


def test_low_gpu_utilisation_wastes_the_unused_share() -> None:
    found = _only(_audit({"gpu_util_ratio": 0.10}), "low_gpu_util")
    assert found["wasted_energy_kwh"] == pytest.approx(12.0 * 0.9)
    assert found["wasted_gpu_hours"] == pytest.approx(4.0 * 0.9)
    assert found["waste_formula"].startswith(
        "allocated GPU facility energy × (1 − GPU utilisation)"
    )
    assert "MIG" in found["action"]


def test_small_runs_and_runs_without_telemetry_are_not_flagged() -> None:
    assert _audit({"gpu_util_ratio": 0.10, "gpu_hours": 0.5}).empty  # below 1 GPU-hour
    assert _audit({"gpu_util_ratio": None}).empty  # no GPU accounting: nothing to judge


def test_low_cpu_efficiency() -> None:
    assert _audit({"cpu_util_ratio": 0.25}).empty  # a GPU run: judged by its GPUs
    found = _only(_audit({"cpu_util_ratio": 0.25, "n_gpus": 0.0}), "low_cpu_efficiency")
    assert found["wasted_energy_kwh"] == pytest.approx(1.5 * 1.5 * 0.75)
    assert found["measured_value"] == pytest.approx(0.25) and found["threshold"] == pytest.approx(
        0.65
    )


def test_memory_over_request_suggests_a_mem_value() -> None:
    found = _only(_audit({"mem_used_max_gb": 20.0}), "memory_over_request")
    assert found["wasted_energy_kwh"] == pytest.approx(0.5 * 1.5 * 0.8)
    assert "--mem=24G per node" in found["action"]


def test_time_limit_over_request_is_a_flag_without_energy() -> None:
    found = _only(_audit({"timelimit_s": 86400.0}), "timelimit_over_request")
    assert found["wasted_energy_kwh"] == 0.0
    assert "--time=180" in found["action"]


@pytest.mark.parametrize("state", ["FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"])
def test_failed_runs_waste_their_whole_energy(state: str) -> None:
    found = _only(_audit({"state": state}), "failed_run")
    assert found["wasted_energy_kwh"] == pytest.approx(15.0)
    assert found["wasted_co2e_kg"] == pytest.approx(1.5)


def test_findings_are_ranked_by_waste_and_ids_are_stable() -> None:
    findings = _audit({"gpu_util_ratio": 0.10}, {"gpu_util_ratio": 0.0})
    assert list(findings["rule"]) == ["idle_gpu", "low_gpu_util"]
    assert findings.iloc[0]["finding_id"] == finding_id("idle_gpu", "slurm:lab:1:x")
    again = audit_ledger(
        pd.DataFrame([{**BASE, "gpu_util_ratio": 0.0}]),
        Audit(),
        {finding_id("idle_gpu", BASE["usage_id"]): "2026-07-01"},
        DAY,
    )
    assert again.iloc[0]["first_seen"] == "2026-07-01"


def test_rules_can_be_switched_off_and_retuned() -> None:
    quiet = Audit(idle_gpu=Rule(enabled=False, threshold=0.01, min_size=1800))
    assert _audit({"gpu_util_ratio": 0.0}, audit=quiet).empty
    strict = Audit(low_gpu_util=Rule(threshold=0.95, min_size=1.0))
    assert len(_audit({}, audit=strict)) == 1


def test_slices_of_one_run_are_added_up() -> None:
    half = {**BASE, "gpu_util_ratio": 0.0}
    halves = {k: (v / 2 if k in ("facility_energy_kwh", "it_energy_kwh", "gpu_energy_kwh", "cpu_energy_kwh",
                                  "memory_energy_kwh", "co2e_location_kg", "cost", "gpu_hours", "cpu_core_hours")
                  else v) for k, v in half.items()}  # fmt: skip
    findings = audit_ledger(pd.DataFrame([halves, halves]), Audit(), {}, DAY)
    assert _only(findings, "idle_gpu")["wasted_energy_kwh"] == pytest.approx(12.0)


def test_memory_suggestion_is_per_node() -> None:
    found = _only(_audit({"mem_used_max_gb": 20.0, "n_nodes": 2.0}), "memory_over_request")
    assert "--mem=12G per node" in found["action"]


def test_measured_idle_gpu_hours_are_the_waste_and_low_util_takes_the_rest() -> None:
    # DCGM saw 1 of the 4 GPU-hours idle (1.6 kWh IT of GPU energy); mean utilisation 10 %.
    found = _audit({"gpu_util_ratio": 0.10, "idle_gpu_hours": 1.0, "idle_gpu_energy_kwh": 1.6})
    idle = _only(found, "idle_gpu")
    assert idle["wasted_gpu_hours"] == pytest.approx(1.0)
    assert idle["wasted_energy_kwh"] == pytest.approx(1.6 * 1.5)
    assert "DCGM" in idle["waste_formula"]
    low = _only(found, "low_gpu_util")  # 8 × 1.5 × 0.9 = 10.8 facility kWh, less the idle 2.4
    assert low["wasted_energy_kwh"] == pytest.approx(10.8 - 2.4)
    assert low["wasted_gpu_hours"] == pytest.approx(4.0 * 0.9 - 1.0)


def test_idle_below_the_minimum_is_not_flagged() -> None:
    found = _audit({"idle_gpu_hours": 0.25, "idle_gpu_energy_kwh": 0.4})  # 15 GPU-minutes
    assert found.empty


def test_pod_windows_of_one_workload_and_month_are_one_finding() -> None:
    pod = {"source": "opencost", "namespace": "serving", "workload": "serve-llm-7b",
           "gpu_util_ratio": 0.05, "n_gpus": 1.0, "gpu_hours": 24.0, "duration_s": 86400.0,
           "gpu_energy_kwh": 10.0, "facility_energy_kwh": 20.0, "co2e_location_kg": 2.0,
           "cost": 40.0, "cpu_util_ratio": 0.9, "cpu_core_hours": 96.0}  # fmt: skip
    days = [{**pod, "ended_at": pd.Timestamp(f"2026-09-{d:02d}T23:59:59Z"),
             "gpu_util_ratio": 0.05 if d % 2 else 0.10} for d in range(1, 11)]  # fmt: skip
    found = _audit(*days, {**pod, "workload": "serve-other", "gpu_util_ratio": 0.9})
    low = _only(found, "low_gpu_util")
    assert low["usage_id"] == "k8s-workload:lab:serving/serve-llm-7b:2026-09"
    assert low["measured_value"] == pytest.approx(0.075)  # GPU-hour weighted
    assert low["wasted_energy_kwh"] == pytest.approx(10 * 10.0 * 1.5 * (1 - 0.075))
    assert "10 pod-windows" in low["job_name"]
