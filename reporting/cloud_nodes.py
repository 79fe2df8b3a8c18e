"""Kubernetes on cloud instances: the node's bill is split over its pods, never added to them.

A cluster whose nodes are cloud instances appears twice: in the cloud bill (the instance's
lines, Scope 3.1) and in OpenCost (the pods on it, with OpenCost's own cost). Counting both would
double the cost and the energy. The bill is what was paid, so it wins: each bill line of a node
(matched by the node's provider ID and the line's resource ID) is split, per UTC day, over the
pod rows on that node by their share of OpenCost's cost there. The node's idle capacity is an
OpenCost row of its own (`__idle__`), so it takes its share and goes to the cluster's owner. The
split rows keep the bill line's source file, numbers and scope (so the bill still reconciles)
and take the pod's team, model, phase and owner; the pods' own cost and energy become zero, with
a note saying where they went. Nodes without a bill line keep their pods' own figures.
"""

from __future__ import annotations

import pandas as pd

from reporting.attribute import LINEAR_COLUMNS

MOVED = (*LINEAR_COLUMNS, "billed_cost", "effective_cost")
FROM_POD = ("team", "model", "phase", "owner", "user", "namespace", "workload", "job_name",
            "n_gpus", "n_cpus", "gpu_model", "gpu_util_ratio", "cpu_util_ratio")  # fmt: skip
ZEROED = ("it_energy_kwh", "facility_energy_kwh", "co2e_location_kg", "co2e_market_kg",
          "co2e_embodied_kg", "cost", "gpu_energy_kwh", "cpu_energy_kwh", "memory_energy_kwh",
          "gpu_energy_telemetry_kwh", "idle_gpu_energy_kwh")  # fmt: skip


def resource_key(resource_id: pd.Series) -> pd.Series:
    """The instance name both sides share: the last path segment, lower-cased
    (`aws:///us-east-1a/i-0abc` and `i-0abc`; `gce://p/z/node-1` and `.../instances/node-1`)."""
    text = resource_id.astype("string").str.strip().str.rstrip("/")
    return text.str.rsplit("/", n=1).str[-1].str.lower().astype(object).where(text.notna(), None)


def split_node_bills(
    cluster: pd.DataFrame, cloud: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cluster rows with billed pods zeroed, cloud rows with node lines split over their pods)."""
    if cluster.empty or cloud.empty or cluster["resource_id"].isna().all():
        return cluster, cloud
    pods = cluster.assign(_key=resource_key(cluster["resource_id"]))
    lines = cloud.assign(_key=resource_key(cloud["resource_id"]))
    pods = pods[pods["_key"].notna() & (pods["source"] == "opencost")]
    pod_days = pods.set_index(["_key", "day"]).index
    billed = lines["_key"].notna() & lines.set_index(["_key", "day"]).index.isin(pod_days)
    if not billed.any():
        return cluster, cloud
    shares = _shares(pods)
    split = lines[billed].merge(shares, on=["_key", "day"], suffixes=("", "_pod"))
    for column in MOVED:
        if column in split.columns:
            split[column] = split[column] * split["_share"]
    for column in FROM_POD:
        split[column] = split[f"{column}_pod"]
    split["usage_id"] = split["usage_id"] + "#" + split["usage_id_pod"]
    split["energy_note"] = "node bill line split over its pods by OpenCost cost share"
    split = split[cloud.columns]
    paid = pods.index[pod_days.isin(lines[billed].set_index(["_key", "day"]).index)]
    zeroed = cluster.copy()
    for column in ZEROED:
        if column in zeroed.columns:
            zeroed.loc[paid, column] = 0.0
    zeroed.loc[paid, "energy_note"] = "cost and energy carried by its node's cloud bill (Scope 3.1)"
    zeroed.loc[paid, "cost_basis"] = "in the cloud bill"
    kept = cloud[~billed.to_numpy()]
    return zeroed, pd.concat([kept, split], ignore_index=True)


def _shares(pods: pd.DataFrame) -> pd.DataFrame:
    """Each pod row's share of its node-day: by OpenCost cost, equal when the node cost nothing."""
    cost = pods["cost"].fillna(0.0).clip(lower=0)
    total = cost.groupby([pods["_key"], pods["day"]]).transform("sum")
    count = cost.groupby([pods["_key"], pods["day"]]).transform("size")
    share = (cost / total).where(total > 0, 1.0 / count)
    columns = ["_key", "day", "usage_id", *FROM_POD]
    return (
        pods[columns]
        .assign(_share=share)
        .rename(columns={c: f"{c}_pod" for c in ["usage_id", *FROM_POD]})
    )
