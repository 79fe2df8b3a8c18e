"""GPU energy from DCGM samples: counter and power integration, pods, Slurm jobs, hierarchy."""

from __future__ import annotations

import pandas as pd
import pytest

from reporting.telemetry import (
    blend_gpu_energy,
    expand_hostlist,
    gpu_intervals,
    job_energy,
    pod_energy,
    telemetry_for_pods,
)

T0 = pd.Timestamp("2024-05-01T00:00:00Z")


def sample(metric, minute, value, host="gpu01", gpu="0", pod=None, namespace=None):
    return {
        "source_file": "s", "line": 1, "host": host, "gpu": gpu, "uuid": f"GPU-{host}-{gpu}",
        "model": "A100", "namespace": namespace, "pod": pod, "container": None,
        "metric": metric, "timestamp": T0 + pd.Timedelta(minutes=minute), "value": float(value),
    }  # fmt: skip


def frame(rows):
    out = pd.DataFrame(rows)
    out["timestamp"] = out["timestamp"].astype("datetime64[ms, UTC]")
    return out


def test_constant_300_w_for_an_hour_is_0_3_kwh() -> None:
    rows = [sample("power_w", m, 300) for m in range(0, 61, 1)]
    intervals, gaps = gpu_intervals(frame(rows))
    assert len(intervals) == 60 and gaps.empty
    assert intervals["energy_kwh"].sum() == pytest.approx(0.3)
    assert set(intervals["method"]) == {"dcgm:power"}


def test_power_trapezoid_and_gap_not_integrated() -> None:
    # 0→100 W over 1 min: mean 50 W × 60 s = 3000 J; then a 10-minute gap (> 5 min)
    rows = [sample("power_w", 0, 0), sample("power_w", 1, 100), sample("power_w", 11, 100)]
    intervals, gaps = gpu_intervals(frame(rows))
    assert intervals["energy_kwh"].tolist() == pytest.approx([3000 / 3.6e6])
    assert len(gaps) == 1 and gaps["duration_s"].iloc[0] == 600


def test_counter_reset_counts_energy_since_reset() -> None:
    # mJ readings: +3.6e9 (1 kWh), then reset to 1.8e9 (0.5 kWh since reset), then +3.6e9
    readings = [10e9, 13.6e9, 1.8e9, 5.4e9]
    rows = [sample("energy_mj", m, v) for m, v in enumerate(readings)]
    intervals, _ = gpu_intervals(frame(rows))
    assert intervals["energy_kwh"].tolist() == pytest.approx([1.0, 0.5, 1.0])
    assert intervals["counter_reset"].tolist() == [False, True, False]
    assert set(intervals["method"]) == {"dcgm:energy_counter"}


def test_counter_preferred_over_power_and_util_averaged() -> None:
    rows = [sample("energy_mj", 0, 0), sample("energy_mj", 1, 3.6e6 * 18)]  # 18 kJ... in mJ
    rows += [sample("power_w", 0, 999), sample("power_w", 1, 999)]
    rows += [sample("gpu_util_pct", 0, 40), sample("gpu_util_pct", 1, 60)]
    intervals, _ = gpu_intervals(frame(rows))
    assert intervals["energy_kwh"].iloc[0] == pytest.approx(18 * 3.6e6 / 3.6e9)
    assert intervals["gpu_util_ratio"].iloc[0] == pytest.approx(0.5)


def test_time_sliced_gpu_counted_once_and_split_equally() -> None:
    # two pods each report the same device value (300 W) for one minute → 18 kJ split 9/9 kJ
    rows = []
    for pod in ("a", "b"):
        rows += [sample("power_w", m, 300, pod=pod, namespace="inf") for m in (0, 1)]
    samples = frame(rows)
    intervals, _ = gpu_intervals(samples)
    assert intervals["energy_kwh"].sum() == pytest.approx(300 * 60 / 3.6e6)
    pods = pod_energy(intervals, samples)
    assert sorted(pods["pod"]) == ["a", "b"] and set(pods["shared_by"]) == {2}
    assert pods["energy_kwh"].tolist() == pytest.approx([150 * 60 / 3.6e6] * 2)
    usage = pd.DataFrame(
        {
            "usage_id": ["k8s:c:inf/a:w"], "namespace": ["inf"], "job_name": ["a"],
            "n_gpus": [1.0], "started_at": [T0], "ended_at": [T0 + pd.Timedelta(minutes=2)],
        }
    )  # fmt: skip
    result = telemetry_for_pods(usage, pods).iloc[0]
    assert result["telemetry_gpu_energy_kwh"] == pytest.approx(150 * 60 / 3.6e6)
    assert result["coverage_ratio"] == pytest.approx(0.5)  # 1 of the pod's 2 GPU-minutes seen


def test_samples_without_pod_keep_their_energy() -> None:
    samples = frame([sample("power_w", m, 60) for m in (0, 1)])
    intervals, _ = gpu_intervals(samples)
    pods = pod_energy(intervals, samples)
    assert pods["pod"].isna().all() and pods["energy_kwh"].sum() == pytest.approx(3600 / 3.6e6)


@pytest.mark.parametrize(
    ("hostlist", "hosts"),
    [
        ("gpu[01-03],gpu07", ["gpu01", "gpu02", "gpu03", "gpu07"]),
        ("node1", ["node1"]),
        ("gpu[1,3-4]", ["gpu1", "gpu3", "gpu4"]),
        ("r[1-2]n[01-02]", ["r1n01", "r1n02", "r2n01", "r2n02"]),
        ("a[08-10],b", ["a08", "a09", "a10", "b"]),
        ("None assigned", ["None assigned"]),
        ("", []),
        (None, []),
    ],
)
def test_expand_hostlist(hostlist, hosts) -> None:
    assert expand_hostlist(hostlist) == hosts


def test_jobs_sharing_a_node_split_by_gpu_count() -> None:
    # gpu01 has 4 GPUs at 360 W for 10 minutes (0.06 kWh each, 0.24 kWh in total).
    rows = [sample("power_w", m, 360, gpu=str(g)) for g in range(4) for m in range(11)]
    intervals, _ = gpu_intervals(frame(rows))
    assert intervals["energy_kwh"].sum() == pytest.approx(0.24)
    end = T0 + pd.Timedelta(minutes=10)
    usage = pd.DataFrame(
        {
            "usage_id": ["j1", "j2", "j3", "j4"],
            "node_list": ["gpu01", "gpu[01-02]", "gpu09", "gpu01"],
            "n_gpus": [1.0, 2.0, 1.0, 0.0],
            "started_at": [T0, T0, T0, T0],
            "ended_at": [end, T0 + pd.Timedelta(minutes=5), end, end],
        }
    )
    result = job_energy(usage, intervals).set_index("usage_id")
    # j1: 1 GPU of 4 for 10 min = 0.06 kWh; j2: 1 GPU per node on gpu01 for 5 min = 0.03 kWh,
    # nothing on gpu02 (no telemetry): coverage 5 min × 1 GPU of its 2 × 5 GPU-minutes = 0.5
    assert result.loc["j1", "telemetry_gpu_energy_kwh"] == pytest.approx(0.06)
    assert result.loc["j1", "coverage_ratio"] == pytest.approx(1.0)
    assert result.loc["j2", "telemetry_gpu_energy_kwh"] == pytest.approx(0.03)
    assert result.loc["j2", "coverage_ratio"] == pytest.approx(0.5)
    assert result.loc["j3", "coverage_ratio"] == 0.0
    assert "j4" not in result.index  # CPU-only job: no GPU energy


def test_oversubscribed_node_normalised_by_requested_gpus() -> None:
    # one GPU in telemetry, two jobs each claiming 1 GPU at the same time → half each
    rows = [sample("power_w", m, 360) for m in range(11)]
    intervals, _ = gpu_intervals(frame(rows))
    end = T0 + pd.Timedelta(minutes=10)
    usage = pd.DataFrame(
        {"usage_id": ["a", "b"], "node_list": ["gpu01"] * 2, "n_gpus": [1.0, 1.0],
         "started_at": [T0, T0], "ended_at": [end, end]}
    )  # fmt: skip
    result = job_energy(usage, intervals)
    assert result["telemetry_gpu_energy_kwh"].tolist() == pytest.approx([0.03, 0.03])
    assert result["telemetry_gpu_energy_kwh"].sum() == pytest.approx(intervals["energy_kwh"].sum())


def test_blend_uses_telemetry_alone_when_complete_and_fills_the_rest_by_the_model() -> None:
    coverage = pd.Series([1.0, 0.995, 0.5, 0.0, None])
    modelled = pd.Series([2.0, 2.0, 2.0, 2.0, 2.0])
    measured = pd.Series([1.0, 1.0, 0.5, 0.0, None])
    assert blend_gpu_energy(modelled, measured, coverage).tolist() == pytest.approx(
        [1.0, 1.0, 1.5, 2.0, 2.0]
    )


def test_a_usage_row_without_any_telemetry_gets_zero_coverage() -> None:
    from reporting.telemetry import telemetry_for_pods

    usage = pd.DataFrame(
        {
            "usage_id": ["k8s:c:ns/p:1"],
            "namespace": ["ns"],
            "job_name": ["p"],
            "started_at": [pd.Timestamp("2026-07-01", tz="UTC")],
            "ended_at": [pd.Timestamp("2026-07-02", tz="UTC")],
            "n_gpus": [1.0],
        }
    )
    pods = pd.DataFrame(
        columns=["namespace", "pod", "start", "end", "duration_s", "energy_kwh", "gpu_util_ratio"]
    )
    result = telemetry_for_pods(usage, pods)
    assert result.iloc[0]["telemetry_gpu_energy_kwh"] == 0.0
    assert result.iloc[0]["coverage_ratio"] == 0.0
