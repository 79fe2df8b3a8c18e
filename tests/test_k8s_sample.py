"""The committed Kubernetes and GPU telemetry sample: every file reads cleanly, totals match."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reporting.ingest.dcgm import read_dcgm
from reporting.ingest.opencost import read_opencost
from reporting.ingest.slurm import read_slurm
from reporting.telemetry import gpu_intervals, job_energy, pod_energy, telemetry_for_pods

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"
K8S_EXPECTED = json.loads((SAMPLE / "k8s" / "EXPECTED.json").read_text())
TELEMETRY = json.loads((SAMPLE / "telemetry" / "EXPECTED.json").read_text())


def files(folder: Path) -> dict[str, Path]:
    return {path.name: path for path in sorted(folder.glob("*.json")) if path.name[0] != "E"}


@pytest.fixture(scope="module")
def allocations():
    return read_opencost(files(SAMPLE / "k8s"), site="helios", cluster="helios")


def read_telemetry(cluster: str):
    read = read_dcgm(files(SAMPLE / "telemetry" / cluster))
    intervals, gaps = gpu_intervals(read.samples)
    return cluster, read, intervals, gaps


@pytest.fixture(scope="module")
def helios():
    return read_telemetry("helios")


@pytest.fixture(scope="module")
def atlas():
    return read_telemetry("atlas")


@pytest.fixture(params=["helios", "atlas"])
def dcgm(request):
    return request.getfixturevalue(request.param)


def test_opencost_sample_reads_cleanly(allocations) -> None:
    read, expected = allocations, K8S_EXPECTED
    assert read.quarantine.empty and not read.file_errors
    assert read.rows_read == {n: f["allocations"] for n, f in expected["files"].items()}
    usage = read.usage
    assert len(usage) == expected["allocations"]
    assert usage["cost"].sum() == pytest.approx(expected["total_cost"], abs=1e-4)
    kinds = usage["allocation_kind"].value_counts().to_dict()
    assert kinds == {"pod": expected["pod_rows"], "idle": expected["idle_rows"]}
    pods = usage[usage["allocation_kind"] == "pod"]
    assert pods["job_name"].nunique() == expected["pods"]
    labels = pods["labels"].map(json.loads)
    unowned = pods.loc[labels.map(lambda v: "team" not in v), "job_name"]
    assert sorted(set(unowned)) == expected["pods_without_team_label"]
    gpu = pods[pods["n_gpus"] > 0]
    assert (gpu["gpu_util_ratio"] < 0.15).sum() == expected["low_gpu_efficiency_rows"]
    assert set(labels.map(lambda v: v.get("phase")).dropna()) <= {
        "training", "fine-tuning", "inference", "evaluation",
    }  # fmt: skip
    assert (usage["duration_s"] <= 86400).all() and (usage["state"] == "COMPLETED").all()


def test_dcgm_sample_reads_cleanly(dcgm) -> None:
    cluster, read, intervals, gaps = dcgm
    expected = TELEMETRY[cluster]
    assert read.quarantine.empty and not read.file_errors and not any(read.ignored.values())
    assert read.rows_read == {n: f["points"] for n, f in expected["files"].items()}
    assert len(read.samples) == expected["points"]
    assert len(intervals) == expected["intervals"] and len(gaps) == expected["gaps"]
    assert intervals["energy_kwh"].sum() == pytest.approx(expected["energy_kwh"], rel=1e-9)
    assert gaps["energy_kwh"].sum() == pytest.approx(expected["gap_energy_kwh"], rel=1e-9)
    by_host = intervals.groupby("host")["energy_kwh"].sum().to_dict()
    assert by_host == pytest.approx(expected["energy_kwh_by_host"], rel=1e-9)
    assert set(intervals["method"]) == {"dcgm:energy_counter"}
    assert intervals["gpu_util_ratio"].between(0, 1).all()


def test_helios_counter_reset_and_pods(helios) -> None:
    _, read, intervals, _ = helios
    expected = TELEMETRY["helios"]
    resets = intervals[intervals["counter_reset"]]
    assert [
        {"host": r.host, "gpu": r.gpu, "uuid": r.uuid, "at": r.end.isoformat()}
        for r in resets.itertuples()
    ] == expected["counter_resets"]
    pods = pod_energy(intervals, read.samples)
    assert pods["energy_kwh"].sum() == pytest.approx(expected["energy_kwh"], rel=1e-9)
    with_pod = pods.loc[pods["pod"].notna(), "energy_kwh"].sum()
    assert with_pod == pytest.approx(expected["pod_energy_kwh"], rel=1e-9)
    sliced = expected["time_sliced"]
    shared = pods[(pods["host"] == sliced["host"]) & (pods["shared_by"] == 2)]
    assert set(sliced["pods"]) <= set(shared["pod"])


def test_helios_pods_covered_on_telemetry_days(allocations, helios) -> None:
    _, read, intervals, _ = helios
    days = sorted(TELEMETRY["helios"]["files"])
    first = pd.Timestamp(days[0][5:15], tz="UTC")
    last = pd.Timestamp(days[-1][5:15], tz="UTC")
    usage = allocations.usage
    usage = usage[(usage["started_at"] >= first) & (usage["started_at"] <= last)]
    usage = usage[(usage["allocation_kind"] == "pod") & (usage["n_gpus"] > 0)]
    result = telemetry_for_pods(usage, pod_energy(intervals, read.samples))
    assert len(result) == len(usage) > 0
    assert (result["coverage_ratio"] >= 0.99).all()
    assert result["telemetry_gpu_energy_kwh"].sum() == pytest.approx(
        TELEMETRY["helios"]["pod_energy_kwh"], rel=0.01
    )


def test_atlas_jobs_get_their_telemetry(atlas) -> None:
    _, _, intervals, _ = atlas
    expected = TELEMETRY["atlas"]
    name = expected["sacct_file"]

    def h100(frame):
        model = pd.Series("H100-SXM5-80GB", index=frame.index, dtype=object)
        return model, pd.Series(None, index=frame.index, dtype=object)

    slurm = read_slurm(
        {name: SAMPLE / "slurm" / "atlas" / name}, site="atlas", timezone="America/New_York",
        delimiter="|", fields=None, resolve_gpu=h100,
    )  # fmt: skip
    usage = slurm.usage
    job_of = usage["usage_id"].str.split(":").str[2]
    jobs = {job["job_id"]: job for job in expected["jobs"]}
    chosen = usage[job_of.isin(list(jobs))]
    assert sorted(job_of[chosen.index]) == sorted(jobs)
    for row in chosen.itertuples():
        job = jobs[row.usage_id.split(":")[2]]
        assert row.started_at == pd.Timestamp(job["start"]) and row.n_gpus == job["gpus"]
    alone = job_energy(chosen, intervals).set_index("usage_id")
    for usage_id, row in alone.iterrows():
        job = jobs[usage_id.split(":")[2]]
        assert 0.99 <= row["coverage_ratio"] <= 1.0  # back-to-back jobs share one interval
        assert row["telemetry_gpu_energy_kwh"] == pytest.approx(job["telemetry_energy_kwh"])
    nearby = usage[
        (usage["partition"] == "h100")
        & (usage["ended_at"] > intervals["start"].min())
        & (usage["started_at"] < intervals["end"].max())
    ]  # every job that could share a sampled node and time with the chosen ones
    everyone = job_energy(nearby, intervals).set_index("usage_id")
    assert (everyone.loc[chosen["usage_id"], "coverage_ratio"] >= 0.99).all()
    assert everyone["telemetry_gpu_energy_kwh"].sum() <= expected["energy_kwh"] * (1 + 1e-9)
