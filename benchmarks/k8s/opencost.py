"""OpenCost ``/allocation`` step maps for helios: one map per 24 h window, pods + idle by node.

The response is what ``GET /allocation?window=<month>&step=1d&aggregate=pod&idleByNode=true``
returns: allocations keyed by pod name with ``properties`` (cluster, node, namespace, pod,
controller, controllerKind, container, sanitised ``labels``), the actual ``start``/``end`` the pod
ran inside the window, requests, usage averages, hours, efficiencies and costs (custom on-prem
pricing, see fleet.py), and one ``<cluster>/<node>/__idle__`` entry per node holding the cost of
the node's unrequested CPU, RAM and GPUs, so the pods plus idle add up to the nodes' cost.
Numbers are rounded to 6 decimals as OpenCost prints them; totalCost adds the rounded parts.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from .fleet import (
    CLUSTER,
    CPU_PRICE_HOUR,
    DAY_S,
    GPUS,
    NODE_BY_NAME,
    NODES,
    RAM_PRICE_GIB_HOUR,
    Pod,
)
from .simulate import Day, mean_util

GIB = 1024**3
ZERO_COSTS = ("loadBalancerCost", "networkCost", "pvCost", "sharedCost", "externalCost")


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def r6(value: float) -> float:
    return round(value, 6)


def _costs(alloc: dict) -> dict:
    alloc.update({name: 0.0 for name in ZERO_COSTS})
    parts = ("cpuCost", "gpuCost", "ramCost", *ZERO_COSTS)
    alloc["totalCost"] = r6(sum(alloc[p] for p in parts))
    return alloc


def pod_allocation(pod: Pod, day: Day, rng: random.Random) -> dict | None:
    """The pod's allocation in the day's window, or None if it did not run in it."""
    start, end = max(pod.start, day.start), min(pod.end, day.start + DAY_S)
    if end <= start:
        return None
    workload, node = pod.workload, NODE_BY_NAME[pod.node]
    hours = (end - start) / 3600
    gpus = float(len(pod.gpus))
    busy = mean_util(day, pod)
    cpu_usage = workload.cpu * min(0.95, (0.12 + 0.45 * busy) * rng.uniform(0.85, 1.15))
    if not pod.gpus:
        cpu_usage = workload.cpu * rng.uniform(0.2, 0.45)
    ram_request = workload.ram_gib * GIB
    ram_usage = ram_request * min(0.97, (0.55 + 0.3 * busy) * rng.uniform(0.9, 1.1))
    gpu_price = GPUS[node.gpu].price_hour * (0.5 if workload.time_sliced else 1.0)
    cpu_cost = r6(workload.cpu * hours * CPU_PRICE_HOUR)
    ram_cost = r6(workload.ram_gib * hours * RAM_PRICE_GIB_HOUR)
    cpu_eff, ram_eff = cpu_usage / workload.cpu, ram_usage / ram_request
    properties = {
        "cluster": CLUSTER, "node": pod.node, "namespace": workload.namespace, "pod": pod.name,
        "container": workload.container, "controller": pod.controller,
        "controllerKind": "job" if workload.kind == "cronjob" else workload.kind,
        "labels": dict(sorted(pod.labels.items())),
    }  # fmt: skip
    alloc = {
        "name": pod.name, "properties": properties,
        "window": {"start": iso(day.start), "end": iso(day.start + DAY_S)},
        "start": iso(start), "end": iso(end), "minutes": r6(hours * 60),
        "cpuCores": r6(workload.cpu), "cpuCoreRequestAverage": r6(workload.cpu),
        "cpuCoreUsageAverage": r6(cpu_usage), "cpuCoreHours": r6(workload.cpu * hours),
        "cpuCost": cpu_cost, "cpuEfficiency": r6(cpu_eff),
        "gpuCount": gpus, "gpuRequestAverage": gpus, "gpuUsageAverage": r6(busy * gpus),
        "gpuHours": r6(gpus * hours), "gpuCost": r6(gpus * hours * gpu_price),
        "gpuEfficiency": r6(busy) if pod.gpus else 0.0,
        "ramBytes": r6(ram_request), "ramByteRequestAverage": r6(ram_request),
        "ramByteUsageAverage": r6(ram_usage), "ramByteHours": r6(ram_request * hours),
        "ramCost": ram_cost, "ramEfficiency": r6(ram_eff),
        "totalEfficiency": r6((cpu_cost * cpu_eff + ram_cost * ram_eff) / (cpu_cost + ram_cost)),
        "rawAllocationOnly": {"cpuCoreUsageMax": r6(cpu_usage * 1.6),
                              "ramByteUsageMax": r6(ram_usage * 1.12)},
    }  # fmt: skip
    return _costs(alloc)


def idle_allocation(node_name: str, day: Day, pods: list[dict]) -> dict:
    """What the node's pods did not request this window, at the same prices."""
    node = NODE_BY_NAME[node_name]
    mine = [a for a in pods if a["properties"]["node"] == node_name]
    core_hours = node.cores * 24 - sum(a["cpuCoreHours"] for a in mine)
    ram_gib_hours = node.ram_gib * 24 - sum(a["ramByteHours"] for a in mine) / GIB
    # a time-sliced GPU's pods each pay half of it: together they requested it once
    used = sum(a["gpuHours"] * (0.5 if a["_sliced"] else 1.0) for a in mine)
    gpu_hours = node.gpus * 24.0 - used
    name = f"{CLUSTER}/{node_name}/__idle__"
    alloc = {
        "name": name, "properties": {"cluster": CLUSTER, "node": node_name},
        "window": {"start": iso(day.start), "end": iso(day.start + DAY_S)},
        "start": iso(day.start), "end": iso(day.start + DAY_S), "minutes": 1440.0,
        "cpuCores": r6(core_hours / 24), "cpuCoreRequestAverage": 0.0,
        "cpuCoreUsageAverage": 0.0, "cpuCoreHours": r6(core_hours),
        "cpuCost": r6(core_hours * CPU_PRICE_HOUR), "cpuEfficiency": 0.0,
        "gpuCount": r6(gpu_hours / 24), "gpuRequestAverage": 0.0, "gpuUsageAverage": 0.0,
        "gpuHours": r6(gpu_hours), "gpuCost": r6(gpu_hours * GPUS[node.gpu].price_hour),
        "gpuEfficiency": 0.0, "ramBytes": r6(ram_gib_hours / 24 * GIB),
        "ramByteRequestAverage": 0.0, "ramByteUsageAverage": 0.0,
        "ramByteHours": r6(ram_gib_hours * GIB), "ramCost": r6(ram_gib_hours * RAM_PRICE_GIB_HOUR),
        "ramEfficiency": 0.0, "totalEfficiency": 0.0, "rawAllocationOnly": None,
    }  # fmt: skip
    return _costs(alloc)


def step_map(pods: list[Pod], day: Day, seed: int) -> dict[str, dict]:
    """One window's allocations: pods (by name) then the idle entry of every node."""
    rng = random.Random(f"{seed}:opencost:{day.start}")
    allocations = []
    for pod in sorted(pods, key=lambda p: p.name):
        alloc = pod_allocation(pod, day, rng)
        if alloc is not None:
            allocations.append({**alloc, "_sliced": pod.workload.time_sliced})
    step = {a["name"]: {k: v for k, v in a.items() if k != "_sliced"} for a in allocations}
    for node in NODES:
        idle = idle_allocation(node.name, day, allocations)
        step[idle["name"]] = idle
    return step
