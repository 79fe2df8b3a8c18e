"""Slurm's decisions: when jobs are submitted, where they run, their shape, limit and run time."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from random import Random

from .cluster import Partition
from .draws import chance, pick, randint, uniform
from .format import LocalClock, fmt_duration, fmt_mem_mb
from .units import DAY_S, HOUR_S, MINUTE_S
from .workload import JobRequest

# Cap on waiting for free nodes. Never reached at sample scale (no node is ever oversubscribed);
# it only keeps huge benchmark runs (far more jobs than the nodes can hold) from pending forever.
MAX_QUEUE_WAIT_S = 7 * DAY_S
DEADLINE_RUSH_S = 2 * DAY_S  # end of the window: the queue backs up


class SubmitProfile:
    """Maps a fraction of the submissions to a time, busier in office hours and on weekdays.

    Submissions i/N are placed at ascending fractions, so job ids rise with Submit as in Slurm.
    """

    def __init__(self, clock: LocalClock, start_s: int, end_s: int):
        self.start_s, self.end_s = start_s, end_s
        self.cumulative: list[float] = []
        total = 0.0
        for hour_start_s in range(start_s, end_s, HOUR_S):
            local = datetime.fromtimestamp(hour_start_s, clock.tz)
            total += submit_weight(local.weekday(), local.hour)
            self.cumulative.append(total)

    def time_at(self, fraction: float) -> int:
        target = fraction * self.cumulative[-1]
        hour = min(bisect.bisect_right(self.cumulative, target), len(self.cumulative) - 1)
        before = self.cumulative[hour - 1] if hour else 0.0
        within = (target - before) / (self.cumulative[hour] - before)
        return min(self.end_s - 1, self.start_s + hour * HOUR_S + int(within * HOUR_S))


def submit_weight(weekday: int, hour: int) -> float:
    if 9 <= hour < 18:
        weight = 3.0
    elif 7 <= hour < 9 or 18 <= hour < 23:
        weight = 1.5
    else:
        weight = 0.6
    return weight if weekday < 5 else weight * 0.4


class NodePool:
    """Free-at time of every allocation slot of one partition; O(nodes) memory, not O(jobs).

    Each node's list is kept sorted, so "when are k slots free" is simply element k-1.
    """

    def __init__(self, part: Partition):
        self.part = part
        self.free_at_s = [[0] * part.slots_per_node for _ in range(part.node_count)]
        self.rotor = 0  # rotates tie-breaks so idle nodes share the work instead of node 001

    def place(self, nnodes: int, slots: int, earliest_s: int) -> tuple[list[int], int]:
        """Nodes where `slots` slots free up soonest.

        Ties go to the fullest node (best fit, as Slurm packs small jobs and keeps whole nodes free
        for multi-node ones), then to the next node in rotation.
        """
        count = len(self.free_at_s)
        self.rotor = rotor = (self.rotor + 1) % count
        kth, free_by = slots - 1, bisect.bisect_right
        candidates = [
            (start_s, free_by(node_slots, start_s), (index - rotor) % count, index)
            for index, node_slots in enumerate(self.free_at_s)
            for start_s in (max(node_slots[kth], earliest_s),)
        ]
        if nnodes == 1:
            best = min(candidates)
            return [best[3]], best[0]
        candidates.sort()
        chosen = candidates[:nnodes]
        return sorted(candidate[3] for candidate in chosen), chosen[-1][0]

    def occupy(self, indices, slots: int, until_s: int) -> None:
        """The job takes the `slots` earliest-free slots of each node until `until_s`."""
        for index in indices:
            node_slots = self.free_at_s[index]
            node_slots[:slots] = [until_s] * slots
            node_slots.sort()


@dataclass(frozen=True)
class Shape:
    """What Slurm allocates per node; totals are per node times nnodes."""

    nnodes: int
    gpus_per_node: int
    cpus_per_node: int
    mem_per_node_mb: int
    slots_per_node: int
    req_cpus: int
    req_mem: str


def gpu_shape(rng: Random, req: JobRequest, part: Partition, legacy: bool) -> Shape:
    full_node = req.nodes > 1 or req.gpus_per_node >= part.gpus_per_node
    gpus = part.gpus_per_node if full_node else req.gpus_per_node
    cpus = gpus * (part.cpus_per_node // part.gpus_per_node)
    share_mb = part.mem_per_node_mb // part.gpus_per_node
    mem_mb = gpus * share_mb
    if not full_node and chance(rng, 0.3):
        mem_mb = min(pick(rng, (64 * 1024, 128 * 1024, 250_000)), part.mem_per_node_mb)
    if legacy:
        req_mem = fmt_mem_mb(mem_mb) + "n"
    else:
        req_mem = fmt_mem_mb(mem_mb * req.nodes)
    # Users often leave --cpus-per-task unset; whole-core allocation then adds the rest.
    req_cpus = 1 if not full_node and chance(rng, 0.5) else cpus * req.nodes
    return Shape(req.nodes, gpus, cpus, mem_mb, gpus, req_cpus, req_mem)


def cpu_shape(rng: Random, req: JobRequest, part: Partition, legacy: bool) -> Shape:
    cpus = min(req.cpus, part.cpus_per_node)
    per_slot = part.cpus_per_node // part.slots_per_node
    slots = -(-cpus // per_slot)
    if legacy:
        per_cpu_mb = pick(rng, (2000, 4000, 8000))
        mem_mb, req_mem = per_cpu_mb * cpus, f"{per_cpu_mb}Mc"
    else:
        mem_mb = pick(rng, (4000 * cpus, 16 * 1024, 32 * 1024, 64 * 1024, 128 * 1024))
        mem_mb = min(mem_mb, part.mem_per_node_mb)
        req_mem = fmt_mem_mb(mem_mb)
    return Shape(1, 0, cpus, min(mem_mb, part.mem_per_node_mb), slots, cpus, req_mem)


TIMELIMIT_CHOICES_S = (
    30 * MINUTE_S,
    HOUR_S,
    2 * HOUR_S,
    4 * HOUR_S,
    8 * HOUR_S,
    12 * HOUR_S,
    DAY_S,
    2 * DAY_S,
    3 * DAY_S,
    5 * DAY_S,
    7 * DAY_S,
)


def choose_timelimit(rng: Random, duration_s: int, max_s: int) -> tuple[int | None, str]:
    """A limit comfortably above the expected run time; ~1 % UNLIMITED, a few Partition_Limit."""
    roll = rng.random()
    if roll < 0.01:
        return None, "UNLIMITED"
    if roll < 0.013:
        return None, "Partition_Limit"
    wanted_s = duration_s * uniform(rng, 1.05, 2.5)
    fitting = (limit for limit in TIMELIMIT_CHOICES_S if wanted_s <= limit <= max_s)
    limit_s = next(fitting, max(max_s, duration_s))
    if chance(rng, 0.1) and limit_s - MINUTE_S >= duration_s:
        limit_s -= MINUTE_S  # people love 23:59:00
    return limit_s, fmt_duration(limit_s)


# Fraction of the planned run time a job gets through before it ends in this state.
ELAPSED_FRACTION = {
    "FAILED": (0.001, 0.6),
    "CANCELLED": (0.05, 0.9),
    "OUT_OF_MEMORY": (0.01, 0.7),
    "NODE_FAIL": (0.05, 0.95),
    "PREEMPTED": (0.1, 0.9),
    "REQUEUED": (0.05, 0.8),
}


def actual_elapsed_s(rng: Random, state: str, duration_s: int, timelimit_s: int | None) -> int:
    if state == "TIMEOUT":
        return timelimit_s + randint(rng, 1, 120)  # Slurm kills a little after the limit
    if state == "FAILED" and chance(rng, 0.4):
        return randint(rng, 3, 300)  # import errors and typos die within minutes
    if state in ELAPSED_FRACTION:
        low, high = ELAPSED_FRACTION[state]
        return max(5, int(duration_s * uniform(rng, low, high)))
    return duration_s
