"""One day of the helios GPUs on the 240 s grid: per-pod utilisation and per-device power.

The same numbers feed the OpenCost daily averages (gpuUsageAverage) and, on telemetry days, the
DCGM series, so the two inputs agree. A device reports one value however many pods share it
(time slicing): its utilisation is the sum of its pods' shares (capped at 100 %).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from .fleet import DAY_S, GPUS, NODE_BY_NAME, NODES, STEP_S, Pod, util

LOADED_IDLE = 1.6  # a GPU holding a model idles above the datasheet minimum
PEAK_SHARE = 0.93  # busy inference/eval rarely reaches the board power limit


@dataclass(frozen=True)
class Point:
    t: int
    power_w: float
    util_pct: int
    pods: tuple[Pod, ...]


@dataclass
class Day:
    start: int
    devices: dict[tuple[str, int], list[Point]] = field(default_factory=dict)
    util_sum: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    samples: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def pods_by_gpu(pods: list[Pod]) -> dict[tuple[str, int], list[Pod]]:
    table: dict[tuple[str, int], list[Pod]] = {
        (node.name, gpu): [] for node in NODES for gpu in range(node.gpus)
    }
    for pod in pods:
        for gpu in pod.gpus:
            table[(pod.node, gpu)].append(pod)
    return table


def power(gpu: str, busy: float, loaded: bool, rng: random.Random) -> float:
    spec = GPUS[gpu]
    idle = spec.min_w * (LOADED_IDLE if loaded else 1.05)
    watts = idle + (spec.max_w * PEAK_SHARE - idle) * busy**0.85 + rng.gauss(0, 2.0)
    return round(max(watts, spec.min_w * 0.9), 1)


def simulate_day(table: dict[tuple[str, int], list[Pod]], day_start: int, seed: int) -> Day:
    day = Day(day_start)
    day_end = day_start + DAY_S
    for (node, gpu), all_pods in table.items():
        rng = random.Random(f"{seed}:{node}:{gpu}:{day_start}")
        pods = [p for p in all_pods if p.start < day_end and p.end > day_start]
        points = []
        for t in range(day_start, day_end, STEP_S):
            active = tuple(p for p in pods if p.start <= t < p.end)
            busy = 0.0
            for pod in active:
                share = util(pod.workload.profile, t, rng)
                day.util_sum[pod.name] += share
                day.samples[pod.name] += 1
                busy += share
            busy = min(busy, 1.0)
            watts = power(NODE_BY_NAME[node].gpu, busy, bool(active), rng)
            points.append(Point(t, watts, round(busy * 100), active))
        day.devices[(node, gpu)] = points
    return day


def mean_util(day: Day, pod: Pod) -> float:
    """The pod's mean share per GPU over its samples this day (0 when it had none)."""
    count = day.samples.get(pod.name, 0)
    return day.util_sum[pod.name] / count if count else 0.0
