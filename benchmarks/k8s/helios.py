"""Write the helios OpenCost responses (one per month) and its DCGM dumps (one per day).

Every day of the period is simulated (the OpenCost averages need it); DCGM dumps are written
only for the telemetry days, which must be consecutive so the series run on without gaps.
Telemetry labels follow dcgm-exporter's Kubernetes mapping scraped with ``honor_labels``:
``pod``/``namespace``/``container`` of the pod holding the GPU, absent on a free GPU.
"""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime

from . import opencost
from .fleet import CLUSTER, DAY_S, GPUS, NODES, Pod, build_pods
from .prom import Device, Dump, energy_summary, gpu_uuid
from .simulate import pods_by_gpu, simulate_day

RESET_GPU = ("helios-gpu-03", 2)  # driver reload: the energy counter restarts
RESET_AFTER_S = 2 * DAY_S + 3 * 3600 + 12 * 60  # after the first telemetry day's start


def day_name(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def write_json(path: str, payload: dict, compact: bool = True) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        if compact:
            json.dump(payload, handle, sort_keys=True, separators=(",", ":"))
        else:
            json.dump(payload, handle, sort_keys=True, indent=2)
        handle.write("\n")


def devices(seed: int) -> dict[tuple[str, int], Device]:
    rng = random.Random(f"{seed}:devices")
    table = {}
    for node in NODES:
        for gpu in range(node.gpus):
            counter = int(rng.uniform(2e11, 9e11))  # mJ since the last driver load
            model = GPUS[node.gpu].model_name
            table[(node.name, gpu)] = Device(
                node.name, gpu, gpu_uuid(rng), model, "nvidia-dcgm-exporter", counter
            )
    return table


def pod_labels(pod: Pod) -> dict[str, str]:
    return {"container": pod.workload.container, "namespace": pod.workload.namespace,
            "pod": pod.name}  # fmt: skip


class Telemetry:
    """The DCGM side: devices, the reset, and what the reader should attribute to pods."""

    def __init__(self, seed: int, folder: str, first_day: int, days: int) -> None:
        self.folder, self.first_day, self.end = folder, first_day, first_day + days * DAY_S
        self.gpus = devices(seed)
        self.reset_at = first_day + RESET_AFTER_S if days > 2 else None
        self.previous: dict[tuple[str, int], tuple[Pod, ...]] = {}
        self.files: dict[str, dict] = {}
        self.pod_mj = self.no_pod_mj = self.shared_intervals = 0

    def wants(self, day_start: int) -> bool:
        return self.first_day <= day_start < self.end

    def write_day(self, day) -> None:
        dump = Dump()
        for key, points in day.devices.items():
            device = self.gpus[key]
            for point in points:
                before, had_sample = device.energy_mj, device.last is not None
                reset = point.t == self.reset_at and key == RESET_GPU
                counter = device.advance(point.t, point.power_w, reset)
                if had_sample:  # pod_energy: pods seen at either end of the interval
                    pods = {p.name for p in self.previous[key]} | {p.name for p in point.pods}
                    if pods:
                        self.pod_mj += device.energy_mj - before
                        self.shared_intervals += len(pods) > 1
                    else:
                        self.no_pod_mj += device.energy_mj - before
                self.previous[key] = point.pods
                for pod in point.pods or (None,):
                    extra = pod_labels(pod) if pod else {}
                    dump.add_sample(device, extra, point.t, point.power_w, point.util_pct, counter)
        name = f"dcgm-{day_name(day.start)}.json"
        self.files[name] = dump.write(os.path.join(self.folder, name))

    def expected(self, pods: list[Pod]) -> dict:
        devices_ = list(self.gpus.values())
        reset = [d for d in devices_ if d.resets]
        sliced = [p for p in pods if p.workload.time_sliced]
        shown = [p for p in pods if p.gpus and p.start < self.end and p.end > self.first_day]
        return {
            "files": self.files,
            "points": sum(f["points"] for f in self.files.values()),
            **energy_summary(devices_),
            "pod_energy_kwh": round(self.pod_mj / 3.6e9, 9),
            "no_pod_energy_kwh": round(self.no_pod_mj / 3.6e9, 9),
            "intervals_shared_by_several_pods": self.shared_intervals,
            "pods_in_telemetry": len(shown),
            "counter_resets": [
                {
                    "host": d.host,
                    "gpu": str(d.gpu),
                    "uuid": d.uuid,
                    "at": datetime.fromtimestamp(t, UTC).isoformat(),
                }
                for d in reset
                for t in d.resets
            ],
            "time_sliced": {
                "host": sliced[0].node if sliced else None,
                "gpu": str(sliced[0].gpus[0]) if sliced else None,
                "pods": sorted(
                    {p.name for p in sliced if p.start < self.end and p.end > self.first_day}
                ),
            },
        }


def generate(
    seed: int, start: int, end: int, opencost_dir: str, telemetry_dir: str | None,
    telemetry_start: int, telemetry_days: int,
) -> tuple[dict, dict | None]:  # fmt: skip
    """(OpenCost EXPECTED part, telemetry EXPECTED part or None)."""
    pods = build_pods(seed, start, end)
    table = pods_by_gpu(pods)
    telemetry = None
    if telemetry_dir is not None:
        telemetry = Telemetry(seed, telemetry_dir, telemetry_start, telemetry_days)
    months: dict[str, list[dict]] = {}
    for day_start in range(start, end, DAY_S):
        day = simulate_day(table, day_start, seed)
        month = months.setdefault(day_name(day_start)[:7], [])
        month.append(opencost.step_map(pods, day, seed))
        if telemetry is not None and telemetry.wants(day_start):
            telemetry.write_day(day)
    files = {}
    for month, steps in sorted(months.items()):
        name = f"opencost-{month}.json"
        document = {"code": 200, "data": steps, "status": "success"}
        write_json(os.path.join(opencost_dir, name), document)
        files[name] = _file_stats(steps)
    return _opencost_expected(files), telemetry.expected(pods) if telemetry else None


def _file_stats(steps: list[dict]) -> dict:
    rows = [a for step in steps for a in step.values()]
    return {
        "windows": len(steps),
        "allocations": len(rows),
        "idle_rows": sum(1 for a in rows if a["name"].endswith("__idle__")),
        "total_cost": round(sum(a["totalCost"] for a in rows), 6),
        "_rows": rows,
    }


def _opencost_expected(files: dict[str, dict]) -> dict:
    rows = [a for stats in files.values() for a in stats.pop("_rows")]
    pods = [a for a in rows if not a["name"].endswith("__idle__")]
    gpu_pods = [a for a in pods if a["gpuCount"] > 0]
    unowned = [a for a in pods if "team" not in a["properties"]["labels"]]
    return {
        "cluster": CLUSTER,
        "files": files,
        "allocations": len(rows),
        "pod_rows": len(pods),
        "idle_rows": len(rows) - len(pods),
        "pods": len({a["name"] for a in pods}),
        "gpu_pod_rows": len(gpu_pods),
        "total_cost": round(sum(a["totalCost"] for a in rows), 6),
        "idle_cost": round(sum(a["totalCost"] for a in rows if a["name"].endswith("__idle__")), 6),
        "gpu_hours_requested": round(sum(a["gpuHours"] for a in gpu_pods), 6),
        "low_gpu_efficiency_rows": sum(1 for a in gpu_pods if a["gpuEfficiency"] < 0.15),
        "pods_without_team_label": sorted({a["name"] for a in unowned}),
        "rows_without_team_label": len(unowned),
        "namespaces": sorted({a["properties"]["namespace"] for a in pods}),
        "nodes": {n.name: {"gpu": GPUS[n.gpu].model_name, "gpus": n.gpus} for n in NODES},
    }
