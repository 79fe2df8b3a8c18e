"""The helios inference cluster: nodes, workloads, and every pod that ran on it.

Four bare-metal nodes (two with 8 H100 SXM5, two with 8 L40S) serve the orca chat models for
``inference-platform``; ``evaluation`` runs nightly/weekday CronJobs, ``research`` keeps idle
Jupyter notebooks (two of them without any owner label) and two sandboxes that time-slice one
L40S. Pods are placed on fixed GPUs (``placements``), so a pod's GPUs are known exactly; a
Deployment rollout replaces its pods (new ReplicaSet hash) on the same GPUs at a 240 s boundary.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field

DAY_S = 86400
STEP_S = 240  # utilisation/telemetry grid: below the 300 s gap limit of reporting/telemetry.py
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated name suffixes
CLUSTER = "helios"


@dataclass(frozen=True)
class GpuSpec:
    model_name: str  # DCGM modelName (an alias in reporting/data/gpu_power.csv)
    min_w: float
    max_w: float
    price_hour: float  # OpenCost custom pricing, USD per GPU-hour (amortised on-prem)


GPUS = {
    "H100": GpuSpec("NVIDIA H100 80GB HBM3", 79.1, 700.0, 2.35),
    "L40S": GpuSpec("NVIDIA L40S", 39.6, 350.0, 0.92),
}
CPU_PRICE_HOUR = 0.021  # USD per core-hour
RAM_PRICE_GIB_HOUR = 0.0029  # USD per GiB-hour


@dataclass(frozen=True)
class Node:
    name: str
    gpu: str
    cores: int
    ram_gib: int
    gpus: int = 8


NODES = (
    Node("helios-gpu-01", "H100", 112, 2048),
    Node("helios-gpu-02", "H100", 112, 2048),
    Node("helios-gpu-03", "L40S", 64, 768),
    Node("helios-gpu-04", "L40S", 64, 768),
)
NODE_BY_NAME = {node.name: node for node in NODES}


@dataclass(frozen=True)
class Workload:
    name: str  # Deployment / StatefulSet / CronJob name
    namespace: str
    kind: str  # deployment | statefulset | cronjob
    profile: str  # how busy its GPUs are: see util()
    labels: tuple[tuple[str, str], ...]  # sanitised OpenCost label keys
    cpu: float
    ram_gib: float
    placements: tuple[tuple[str, tuple[int, ...]], ...]  # per replica: node, GPU indexes
    container: str = "server"
    rollouts: int = 0  # Deployment rollouts over the period
    time_sliced: bool = False  # shares a GPU: priced as half a GPU
    schedule: tuple[int, int, int] = (0, 0, 0)  # cronjob: start hour UTC, min/max hours


def _labels(app: str, team: str | None, model: str | None, phase: str | None) -> tuple:
    pairs = [("app_kubernetes_io_name", app)]
    pairs += [(k, v) for k, v in (("team", team), ("model", model), ("phase", phase)) if v]
    return tuple(sorted(pairs))


INF, EVAL, RES = "inference-platform", "evaluation", "research"
WORKLOADS = (
    Workload(
        "serve-orca-70b-chat", INF, "deployment", "chat70",
        _labels("vllm", INF, "orca-70b-chat", "inference"), 16, 256,
        (("helios-gpu-01", (0, 1, 2, 3)), ("helios-gpu-01", (4, 5, 6, 7)),
         ("helios-gpu-02", (0, 1, 2, 3))), rollouts=5,
    ),
    Workload(
        "serve-orca-7b-chat", INF, "deployment", "chat7",
        _labels("vllm", INF, "orca-7b-chat", "inference"), 8, 64,
        tuple(("helios-gpu-03", (i,)) for i in range(6)), rollouts=8,
    ),
    Workload(
        "serve-orca-7b", INF, "deployment", "batch",
        _labels("vllm", INF, "orca-7b", "inference"), 8, 64,
        (("helios-gpu-03", (6,)), ("helios-gpu-03", (7,))), rollouts=3,
    ),
    Workload(
        "eval-orca-70b-chat", EVAL, "cronjob", "eval",
        _labels("lm-eval", EVAL, "orca-70b-chat", "evaluation"), 16, 192,
        (("helios-gpu-02", (4, 5)),), container="harness", schedule=(1, 3, 5),
    ),
    Workload(
        "eval-orca-7b-chat", EVAL, "cronjob", "eval",
        _labels("lm-eval", EVAL, "orca-7b-chat", "evaluation"), 8, 64,
        (("helios-gpu-04", (0,)),), container="harness", schedule=(6, 2, 4),
    ),
    Workload(
        "jupyter-mlin", RES, "statefulset", "notebook_busy",
        _labels("jupyter", RES, None, None), 8, 64, (("helios-gpu-04", (1,)),),
        container="notebook",
    ),
    Workload(
        "jupyter-tgarcia", RES, "statefulset", "notebook",
        _labels("jupyter", None, None, None), 8, 64, (("helios-gpu-04", (2,)),),
        container="notebook",
    ),
    Workload(
        "jupyter-rsingh", RES, "statefulset", "notebook",
        _labels("jupyter", None, None, None), 8, 64, (("helios-gpu-04", (3,)),),
        container="notebook",
    ),
    Workload(
        "sandbox-orca-7b", RES, "deployment", "sandbox",
        _labels("vllm", RES, "orca-7b", "inference"), 4, 32, (("helios-gpu-04", (7,)),),
        rollouts=2, time_sliced=True,
    ),
    Workload(
        "sandbox-orca-7b-chat", RES, "deployment", "sandbox",
        _labels("vllm", RES, "orca-7b-chat", "inference"), 4, 32, (("helios-gpu-04", (7,)),),
        rollouts=2, time_sliced=True,
    ),
    Workload(
        "llm-gateway", INF, "deployment", "cpu", _labels("llm-gateway", INF, None, "inference"),
        4, 8, (("helios-gpu-03", ()), ("helios-gpu-04", ())), container="envoy", rollouts=4,
    ),
    Workload(
        "opencost", "opencost", "deployment", "cpu", _labels("opencost", None, None, None),
        0.5, 1, (("helios-gpu-01", ()),), container="opencost",
    ),
    Workload(
        "prometheus-server", "monitoring", "statefulset", "cpu",
        _labels("prometheus", None, None, None), 2, 16, (("helios-gpu-02", ()),),
        container="prometheus",
    ),
)  # fmt: skip


@dataclass
class Pod:
    name: str
    workload: Workload
    node: str
    gpus: tuple[int, ...]
    start: int  # unix seconds, inclusive
    end: int  # unix seconds, exclusive
    labels: dict[str, str] = field(default_factory=dict)
    controller: str = ""


def suffix(rng: random.Random, length: int) -> str:
    return "".join(K8S_ALPHABET[int(rng.random() * len(K8S_ALPHABET))] for _ in range(length))


def build_pods(seed: int, start: int, end: int) -> list[Pod]:
    """Every pod of every workload over [start, end) (unix seconds, whole days)."""
    pods: list[Pod] = []
    for workload in WORKLOADS:
        rng = random.Random(f"{seed}:{workload.namespace}/{workload.name}")
        if workload.kind == "cronjob":
            pods += _cron_pods(workload, rng, start, end)
        elif workload.kind == "statefulset":
            for replica, (node, gpus) in enumerate(workload.placements):
                name = f"{workload.name}-{replica}"
                pods.append(_pod(name, workload, node, gpus, start, end, workload.name))
        else:
            pods += _deployment_pods(workload, rng, start, end)
    return pods


def _pod(name, workload, node, gpus, start, end, controller, extra=()) -> Pod:
    labels = dict(workload.labels)
    labels.update(extra)
    return Pod(name, workload, node, gpus, start, end, labels, controller)


def _deployment_pods(workload: Workload, rng: random.Random, start: int, end: int) -> list[Pod]:
    days = (end - start) // DAY_S
    picks = sorted(rng.sample(range(1, days), workload.rollouts)) if workload.rollouts else []
    times = [start]
    for day in picks:  # rollouts in working hours, on the telemetry grid
        times.append(
            start + day * DAY_S + (13 * 3600 + int(rng.random() * 5 * 3600)) // STEP_S * STEP_S
        )
    times.append(end)
    pods = []
    for first, last in itertools.pairwise(times):
        template = suffix(rng, 10)
        replica_set = f"{workload.name}-{template}"
        for node, gpus in workload.placements:
            name = f"{replica_set}-{suffix(rng, 5)}"
            extra = (("pod_template_hash", template),)
            pods.append(_pod(name, workload, node, gpus, first, last, replica_set, extra))
    return pods


def _cron_pods(workload: Workload, rng: random.Random, start: int, end: int) -> list[Pod]:
    hour, low, high = workload.schedule
    pods = []
    for day_start in range(start, end, DAY_S):
        weekday = (day_start // DAY_S + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
        if hour > 3 and weekday >= 5:  # the daytime eval runs on weekdays only
            continue
        scheduled = day_start + hour * 3600
        began = scheduled + STEP_S * (1 + int(rng.random() * 3))
        hours = low + rng.random() * (high - low)
        finished = min(began + int(hours * 3600) // STEP_S * STEP_S, end)
        job = f"{workload.name}-{scheduled // 60}"  # CronJob names jobs by scheduled minute
        node, gpus = workload.placements[0]
        pods.append(_pod(f"{job}-{suffix(rng, 5)}", workload, node, gpus, began, finished, job))
    return pods


def util(profile: str, t: int, rng: random.Random) -> float:
    """A pod's share of one GPU's time at unix time t (0..1), noise drawn from rng."""
    hour = (t % DAY_S) / 3600
    weekend = ((t // DAY_S + 3) % 7) >= 5
    diurnal = 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 7) / 24)  # low 07 UTC, peak 19 UTC
    noise = rng.gauss(0, 0.03)
    if profile in ("chat70", "chat7"):
        night, peak = (0.04, 0.82) if profile == "chat70" else (0.03, 0.5)
        level = night + (peak - night) * diurnal**1.5 * (0.45 if weekend else 1.0)
    elif profile == "batch":
        level = 0.72 if (not weekend and 2 <= hour < 3.5) else 0.03
    elif profile == "eval":
        level = 0.88
    elif profile == "notebook_busy":
        level = 0.35 if (not weekend and 15 <= hour < 17) else 0.02
    elif profile == "notebook":
        level, noise = 0.01, abs(noise) / 3
    elif profile == "sandbox":
        level = 0.18 if (not weekend and 14 <= hour < 22) else 0.02
    else:
        return 0.0
    return min(1.0, max(0.0, level + noise))
