"""Prometheus ``query_range`` dumps of dcgm-exporter metrics, and the GPU energy they imply.

A dump is ``{"status":"success","data":{"resultType":"matrix","result":[{"metric":{labels},
"values":[[unix_s,"value"],...]}]}}`` with one series per metric and label set, as Prometheus
returns ``query_range?query={__name__=~"DCGM_FI_DEV_(POWER_USAGE|TOTAL_ENERGY_CONSUMPTION|
GPU_UTIL)"}``. Power is W with one decimal, utilisation an integer %, and the energy counter an
integer mJ that grows by the trapezoid of the written power between samples (so the counter and
the power give the same energy), except at a counter reset where the reading restarts at the
energy since the reset (the previous sample time).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field

MAX_GAP_S = 300  # reporting/telemetry.py: longer intervals are gaps, not attributed
MJ_PER_KWH = 3.6e9
POWER, ENERGY, UTIL = (
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_GPU_UTIL",
)
DRIVER = "550.90.07"


def gpu_uuid(rng: random.Random) -> str:
    value = 0
    for _ in range(4):
        value = value << 32 | int(rng.random() * 2**32)
    return "GPU-" + str(uuid.UUID(int=value))


def fmt(value: float) -> str:
    """A float as Prometheus prints it: no trailing .0."""
    text = repr(float(value))
    return text.removesuffix(".0")


@dataclass
class Device:
    """One GPU as dcgm-exporter sees it, with its energy counter and integration totals."""

    host: str
    gpu: int
    uuid: str
    model_name: str
    job: str
    counter_mj: int
    last: tuple[int, float] | None = None
    energy_mj: int = 0  # over intervals <= MAX_GAP_S (what the reader attributes)
    gap_mj: int = 0
    intervals: int = 0
    gaps: int = 0
    resets: list[int] = field(default_factory=list)

    def labels(self) -> dict[str, str]:
        return {
            "DCGM_FI_DRIVER_VERSION": DRIVER, "Hostname": self.host, "UUID": self.uuid,
            "device": f"nvidia{self.gpu}", "gpu": str(self.gpu), "instance": f"{self.host}:9400",
            "job": self.job, "modelName": self.model_name,
        }  # fmt: skip

    def advance(self, t: int, watts: float, reset: bool = False) -> int:
        """The counter reading at t after drawing `watts` (trapezoid since the last sample)."""
        if self.last is not None:
            before_t, before_w = self.last
            step_mj = round((before_w + watts) / 2 * (t - before_t) * 1000)
            if t - before_t <= MAX_GAP_S:
                self.energy_mj += step_mj
                self.intervals += 1
            else:
                self.gap_mj += step_mj
                self.gaps += 1
            if reset:
                self.counter_mj = step_mj
                self.resets.append(t)
            else:
                self.counter_mj += step_mj
        self.last = (t, watts)
        return self.counter_mj


class Dump:
    """The series of one query_range file, keyed by their label sets."""

    def __init__(self) -> None:
        self.series: dict[tuple, list[list]] = {}
        self.points = 0

    def add(self, metric: str, labels: dict[str, str], t: int, value: str) -> None:
        key = tuple(sorted({**labels, "__name__": metric}.items()))
        self.series.setdefault(key, []).append([t, value])
        self.points += 1

    def add_sample(self, device: Device, extra: dict[str, str], t: int, watts: float,
                   util_pct: int, counter_mj: int) -> None:  # fmt: skip
        labels = {**device.labels(), **extra}
        self.add(POWER, labels, t, fmt(watts))
        self.add(ENERGY, labels, t, str(counter_mj))
        self.add(UTIL, labels, t, str(util_pct))

    def write(self, path: str) -> dict[str, int]:
        def order(item: tuple[tuple, list]) -> tuple:
            labels = dict(item[0])
            return (labels["__name__"], labels["Hostname"], int(labels["gpu"]), item[1][0][0],
                    labels.get("namespace", ""), labels.get("pod", ""))  # fmt: skip

        result = [
            {"metric": dict(key), "values": values}
            for key, values in sorted(self.series.items(), key=order)
        ]
        document = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            json.dump(document, handle, sort_keys=True, separators=(",", ":"))
            handle.write("\n")
        return {"series": len(result), "points": self.points}


def energy_summary(devices: list[Device]) -> dict:
    """EXPECTED.json totals of a set of devices (kWh rounded to 9 decimals)."""
    hosts: dict[str, int] = {}
    for device in devices:
        hosts[device.host] = hosts.get(device.host, 0) + device.energy_mj
    return {
        "gpus": len(devices),
        "intervals": sum(d.intervals for d in devices),
        "gaps": sum(d.gaps for d in devices),
        "energy_kwh": round(sum(d.energy_mj for d in devices) / MJ_PER_KWH, 9),
        "gap_energy_kwh": round(sum(d.gap_mj for d in devices) / MJ_PER_KWH, 9),
        "energy_kwh_by_host": {h: round(mj / MJ_PER_KWH, 9) for h, mj in sorted(hosts.items())},
    }
