"""Kubernetes pods in the audit: one run per workload and calendar month, not per pod-day.

OpenCost reports each pod per allocation window (a day in the demo). Judged per window, one
under-used inference deployment becomes hundreds of findings; its owner can act on one: the
workload (namespace + controller) of the month, an autoscaling or right-sizing candidate.
Its ratios are weighted by what they are ratios of (GPU utilisation by GPU-hours, CPU
efficiency by core-hours, requested memory by hours); its peak memory is the highest peak.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

S_PER_HOUR = 3_600
SUMMED = (
    "facility_energy_kwh", "it_energy_kwh", "gpu_energy_kwh", "cpu_energy_kwh",
    "memory_energy_kwh", "co2e_location_kg", "cost", "gpu_hours", "cpu_core_hours",
    "gpu_energy_telemetry_kwh", "idle_gpu_hours", "idle_gpu_energy_kwh", "duration_s",
)  # fmt: skip
FIRST = ("site", "user", "account", "owner", "team", "model", "phase", "state", "pue",
         "currency", "namespace", "workload", "source", "timelimit_s", "n_nodes")  # fmt: skip


def workload_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """`runs` with OpenCost pod-windows replaced by one row per workload and month."""
    pods = (runs["source"] == "opencost") & runs["workload"].notna()
    if not pods.any():
        return runs
    frame = runs[pods].assign(
        month=runs.loc[pods, "ended_at"].dt.strftime("%Y-%m"),
        gpu_util_w=runs["gpu_util_ratio"] * runs["gpu_hours"],
        gpu_util_h=runs["gpu_hours"].where(runs["gpu_util_ratio"].notna(), 0.0),
        cpu_util_w=runs["cpu_util_ratio"] * runs["cpu_core_hours"],
        cpu_util_h=runs["cpu_core_hours"].where(runs["cpu_util_ratio"].notna(), 0.0),
        mem_gb_s=runs["mem_requested_gb"] * runs["duration_s"],
    )
    keys = ["site", "namespace", "workload", "month"]
    grouped = frame.groupby(keys, sort=True, dropna=False)
    sums = grouped[[*SUMMED, "gpu_util_w", "gpu_util_h", "cpu_util_w", "cpu_util_h", "mem_gb_s"]]
    out = sums.sum(min_count=1).join(grouped[[c for c in FIRST if c not in keys]].first())
    out = out.join(grouped.agg(mem_used_max_gb=("mem_used_max_gb", "max"),
                               ended_at=("ended_at", "max"), pods=("usage_id", "size")))  # fmt: skip
    out = out.reset_index()
    hours = out["duration_s"] / S_PER_HOUR
    out["usage_id"] = ("k8s-workload:" + out["site"] + ":" + out["namespace"].fillna("") + "/"
                       + out["workload"] + ":" + out["month"])  # fmt: skip
    out["job_name"] = out["workload"] + " (" + out["pods"].astype(str) + " pod-windows)"
    out["gpu_util_ratio"] = out["gpu_util_w"] / out["gpu_util_h"].where(out["gpu_util_h"] > 0)
    out["cpu_util_ratio"] = out["cpu_util_w"] / out["cpu_util_h"].where(out["cpu_util_h"] > 0)
    out["mem_requested_gb"] = out["mem_gb_s"] / out["duration_s"].where(out["duration_s"] > 0)
    out["n_gpus"] = (out["gpu_hours"] / hours.where(hours > 0)).fillna(0.0)
    out["n_gpus"] = np.where(out["gpu_hours"] > 0, out["n_gpus"], 0.0)
    return pd.concat([runs[~pods], out[runs.columns]], ignore_index=True)
