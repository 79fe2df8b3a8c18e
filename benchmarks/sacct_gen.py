"""Deterministic generator of realistic Slurm ``sacct`` dumps for a small AI lab.

Two on-prem clusters are simulated (see CLUSTERS): ``atlas`` (USA; ``sacct --parsable2`` with a
header; GPU accounting plugin, no energy plugin) and ``nordic`` (Sweden; ``sacct --parsable
--noheader`` with a trailing ``|``; energy plugin, no GPU accounting). Jobs are simulated in submit
order on a UTC clock and written one at a time, so memory stays flat for any job count; times are
printed as naive local wall-clock text, like ``sacct`` run without ``TZ=UTC``.

Only ``Random.random()`` is used for randomness (helpers below build on it), so the same seed gives
byte-identical files on any CPython 3.11+.

Deliberately bad lines -- exactly one of each kind per generated dump, on the first eligible plain
job line after 12 %, 31 %, 50 %, 69 % and 88 % of the submissions (EXPECTED.json says where):
  missing_field     job line with the NNodes field left out (one field too few)
  end_before_start  job line whose End is earlier than its Start (End = Start - Elapsed)
  unknown_gpu       job line whose AllocTRES names an unknown GPU: gres/gpu:tpu9=1,gres/gpu=1
  non_utf8          job line whose JobName ends in the raw byte 0xFF (not valid UTF-8)
  bad_duration      job line whose Elapsed is the unparseable text 1-2x:00:00
Everything else is valid sacct output, including the traps a parser must survive (not counted as
bad): requeued jobs repeated under one JobID, heterogeneous ``<id>+0``/``<id>+1`` jobs, pending
array ranges ``<id>_[3-40]``, ``CANCELLED by <uid>``, ``None``/``Unknown`` times, old ReqMem
suffixes ``Mc``/``Gn``, UTF-8 and HTML in job names, energy repeated on step lines (nordic), and
nordic job-line energies that are implausible (~1 %) or missing as ``0`` (~3 %).
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cached_property, lru_cache
from random import Random
from zoneinfo import ZoneInfo

MINUTE_S = 60
HOUR_S = 3600
DAY_S = 86400
KIB_PER_GIB = 1024 * 1024
CPU_SLOTS_PER_NODE = 8          # CPU nodes are tracked in 8 core chunks so small jobs can share
# Cap on waiting for free nodes. Never reached at sample scale (no node is ever oversubscribed);
# it only keeps huge benchmark runs (far more jobs than the nodes can hold) from pending forever.
MAX_QUEUE_WAIT_S = 7 * DAY_S
DEADLINE_RUSH_S = 2 * DAY_S    # end of the window: the queue backs up
NO_VAL64_ENERGY = 18446744073709551614  # what a broken energy counter prints in sacct
BAD_LINE_KINDS = ("missing_field", "end_before_start", "unknown_gpu", "non_utf8", "bad_duration")


# --- randomness: everything builds on Random.random(), whose stream is stable across versions ---

def uniform(rng: Random, low: float, high: float) -> float:
    return low + (high - low) * rng.random()


def randint(rng: Random, low: int, high: int) -> int:
    """Integer in [low, high], both ends included."""
    return low + int(rng.random() * (high - low + 1))


def pick(rng: Random, items):
    return items[int(rng.random() * len(items))]


def chance(rng: Random, probability: float) -> bool:
    return rng.random() < probability


def log_uniform(rng: Random, low: float, high: float) -> float:
    """Durations and sizes spread over orders of magnitude look log-uniform in real logs."""
    return low * (high / low) ** rng.random()


@lru_cache(maxsize=256)
def total_weight(pairs: tuple) -> float:
    return sum(weight for _, weight in pairs)


def weighted(rng: Random, pairs: tuple):
    """Pick the key of (key, weight) pairs with probability proportional to weight."""
    target = rng.random() * total_weight(pairs)
    for key, weight in pairs:
        target -= weight
        if target < 0:
            return key
    return pairs[-1][0]


def hours_s(hours: float) -> int:
    return int(hours * HOUR_S)


# --- cluster description ---

@dataclass(frozen=True)
class Partition:
    name: str
    node_prefix: str
    node_count: int
    index_width: int
    cpus_per_node: int
    mem_per_node_mb: int
    gpus_per_node: int = 0
    gpu_type: str = ""
    gpu_mem_gib: int = 0

    @property
    def slots_per_node(self) -> int:
        """Allocation units we track per node: one per GPU, or CPU chunks on CPU nodes."""
        return self.gpus_per_node or CPU_SLOTS_PER_NODE

    def node_name(self, index: int) -> str:
        return f"{self.node_prefix}{index + 1:0{self.index_width}d}"


@dataclass(frozen=True)
class Cluster:
    name: str
    tz_name: str
    fields: tuple[str, ...]
    header: bool
    trailing_delimiter: bool
    file_ext: str
    partitions: dict[str, Partition]
    partition_map: dict[str, str]       # workload's wish ("h100", "a100", "cpu") -> partition
    workload_weights: tuple[tuple[str, float], ...]  # per submission, not per array task
    special_names: tuple[tuple[float, str, str], ...]  # (fraction, workload, job name)
    gpu_accounting: bool
    energy_plugin: bool
    first_job_id: int
    uid_base: int
    legacy_reqmem_rate: float = 0.0
    requeue_rate: float = 0.0
    het_rate: float = 0.0

    @cached_property
    def columns(self) -> tuple[int, ...]:
        """Indexes of this cluster's fields in a row built in atlas order (see COLUMN)."""
        return tuple(COLUMN[name] for name in self.fields)


# The header lines as sacct prints them (nordic's dumps are --noheader, but the order is the same).
ATLAS_HEADER = (
    "JobID|JobIDRaw|JobName|User|Account|Partition|QOS|WCKey|Comment|NodeList|NNodes|NCPUS|"
    "NTasks|State|ExitCode|Submit|Start|End|Elapsed|ElapsedRaw|Timelimit|TotalCPU|CPUTime|ReqMem|"
    "MaxRSS|ReqTRES|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw")
NORDIC_HEADER = (
    "JobID|JobName|User|Account|Partition|NodeList|NNodes|NCPUS|State|Submit|Start|End|Elapsed|"
    "Timelimit|TotalCPU|ReqMem|MaxRSS|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw|Comment")
ATLAS_FIELDS = tuple(ATLAS_HEADER.split("|"))
NORDIC_FIELDS = tuple(NORDIC_HEADER.split("|"))
# Rows are built as lists in atlas order (a superset of nordic's columns) and picked by index.
COLUMN = {name: index for index, name in enumerate(ATLAS_FIELDS)}

ALL_USERS = ("akim", "bolsen", "cnair", "dlee", "eross", "fmoss", "gtan", "hbrook", "iwu",
             "jpark", "kvoss", "lcho", "mgarcia", "nobody1")

CLUSTERS = {
    "atlas": Cluster(
        name="atlas", tz_name="America/New_York", fields=ATLAS_FIELDS, header=True,
        trailing_delimiter=False, file_ext="psv",
        partitions={
            "h100": Partition("h100", "atl-h", 16, 3, 112, 2000 * 1024, 8, "h100", 80),
            "a100": Partition("a100", "atl-a", 24, 3, 128, 1000 * 1024, 8, "a100", 80),
            "cpu": Partition("cpu", "atl-c", 32, 3, 128, 512 * 1024),
        },
        partition_map={"h100": "h100", "a100": "a100", "cpu": "cpu"},
        workload_weights=(
            ("pretrain_train", 5.0), ("pretrain_prep", 3.0), ("pretrain_tok", 2.5),
            ("posttrain", 11.0), ("serving_batch", 7.0), ("serving_long", 4.0), ("evals", 1.6),
            ("vision_pretrain", 3.0), ("vision_finetune", 4.0), ("vision_prep", 2.5),
            ("research_dev", 9.0), ("research_interactive", 6.0), ("misc", 3.0)),
        special_names=((0.22, "pretrain_train", "pt-orca-7b-rü01"),
                       (0.47, "research_dev", "dev-<script>alert(1)</script>"),
                       (0.64, "research_dev", "dev-größe-sweep")),
        gpu_accounting=True, energy_plugin=False, first_job_id=4_812_000, uid_base=20_101,
        # requeue/het rates apply to non-array submissions (~60 % of jobs): ~0.5 % of all jobs
        legacy_reqmem_rate=0.05, requeue_rate=0.008, het_rate=0.02),
    "nordic": Cluster(
        name="nordic", tz_name="Europe/Stockholm", fields=NORDIC_FIELDS, header=False,
        trailing_delimiter=True, file_ext="txt",
        partitions={
            "gpu": Partition("gpu", "nor-g", 12, 2, 64, 500 * 1024, 4, "a100", 40),
            "cpu": Partition("cpu", "nor-c", 20, 2, 128, 256 * 1024),
        },
        partition_map={"h100": "gpu", "a100": "gpu", "cpu": "cpu"},
        workload_weights=(
            ("serving_batch", 10.0), ("serving_long", 6.0), ("evals", 0.8),
            ("vision_pretrain", 8.0), ("vision_finetune", 8.0), ("vision_prep", 6.0),
            ("research_dev", 10.0), ("research_interactive", 8.0), ("misc", 4.0)),
        special_names=((0.35, "research_dev", "dev-överföring-01"),),
        gpu_accounting=False, energy_plugin=True, first_job_id=1_207_000, uid_base=61_001),
}

# Where the bad lines go, as a fraction of the submissions (see the module docstring).
CORRUPTION_FRACTIONS = (0.12, 0.31, 0.50, 0.69, 0.88)
# The submission at this fraction is always an eval array: submitted in the end-of-window rush, it
# is left partly pending, so every dump has a <master>_[a-b] PENDING line.
LATE_ARRAY_FRACTION = 0.993


# --- what a user asks for ---

DEFAULT_STATES = (("COMPLETED", 77.5), ("FAILED", 8.0), ("TIMEOUT", 4.0), ("CANCELLED", 7.0),
                  ("OUT_OF_MEMORY", 2.0), ("NODE_FAIL", 1.0), ("PREEMPTED", 0.5))
# Services are usually stopped with scancel; interactive sessions get abandoned or time out.
SERVICE_STATES = (("COMPLETED", 45.0), ("FAILED", 8.0), ("TIMEOUT", 4.0), ("CANCELLED", 40.0),
                  ("OUT_OF_MEMORY", 1.0), ("NODE_FAIL", 1.5), ("PREEMPTED", 0.5))
INTERACTIVE_STATES = (("COMPLETED", 60.0), ("FAILED", 6.0), ("TIMEOUT", 12.0), ("CANCELLED", 20.0),
                      ("OUT_OF_MEMORY", 1.0), ("NODE_FAIL", 0.5), ("PREEMPTED", 0.5))


@dataclass
class JobRequest:
    """One sbatch/salloc submission as the user wrote it (before Slurm decides anything)."""
    workload: str
    account: str
    user: str
    name: str
    partition: str            # wish: "h100", "a100" or "cpu"; the cluster maps it
    duration_s: int           # how long the work runs if nothing goes wrong
    qos: str = "normal"
    nodes: int = 1
    gpus_per_node: int = 0
    cpus: int = 0             # CPU-only jobs: cores wanted
    gpu_util_pct: float = 0.0  # mean per-GPU utilisation of the work step
    gpu_mem_frac: float = 0.0  # fraction of each GPU's memory in use
    cpu_eff: float = 0.2      # TotalCPU / (Elapsed * NCPUS) of the work step
    srun_steps: int = 0       # 0: work runs in .batch; 1 or 2: in .0 (and .1) via srun
    step_name: str = "python"
    max_timelimit_s: int = 7 * DAY_S
    array_tasks: int = 0
    comment: str = ""
    wckey: str = ""
    states: tuple = DEFAULT_STATES
    special_name: bool = False  # carries a UTF-8/HTML test name; never corrupted on top


PRETRAIN_USERS = ("akim", "bolsen", "cnair")
POSTTRAIN_USERS = ("dlee", "eross")
SERVING_USERS = ("fmoss", "gtan")
EVALS_USERS = ("hbrook", "iwu")
VISION_USERS = ("jpark", "kvoss")
RESEARCH_USERS = ("lcho", "mgarcia")
CHAT_MODELS = ("orca-7b-chat", "orca-70b-chat")
DEV_TOPICS = ("rope-scaling", "kv-cache", "moe-router", "flash-attn", "tokenizer", "data-filter",
              "longctx", "quant-int4", "test", "spec-decode")
MISC_NAMES = ("run.sh", "test", "a.out", "job", "myjob", "sweep_lr", "untitled", "script.py",
              "wrap", "matlab_run", "x", "analysis")


def wl_pretrain_train(rng: Random) -> JobRequest:
    model = pick(rng, ("orca-7b", "orca-70b"))
    nodes = randint(rng, 2, 4) if model == "orca-7b" else randint(rng, 4, 8)
    return JobRequest(
        "pretrain_train", "pretrain", pick(rng, PRETRAIN_USERS),
        f"pt-{model}-r{randint(rng, 1, 60):02d}", "h100", pretrain_duration_s(rng),
        qos="high", nodes=nodes, gpus_per_node=8, gpu_util_pct=uniform(rng, 70, 95),
        gpu_mem_frac=uniform(rng, 0.7, 0.95), cpu_eff=uniform(rng, 0.08, 0.3),
        srun_steps=2 if chance(rng, 0.3) else 1, max_timelimit_s=3 * DAY_S, wckey="orca")


def pretrain_duration_s(rng: Random) -> int:
    """Most runs are long chunks ending near the 3-day limit; the rest restarts and ablations."""
    if chance(rng, 0.6):
        return hours_s(uniform(rng, 24, 71))
    return hours_s(log_uniform(rng, 2, 24))


def cpu_job(rng: Random, workload: str, account: str, user: str, name: str,
            low_cpus: int = 20, high_cpus: int = 128, max_hours: float = 24) -> JobRequest:
    """Data preparation / tokenisation on the cpu partition: no GPUs, decent CPU efficiency."""
    return JobRequest(workload, account, user, name, "cpu",
                      hours_s(log_uniform(rng, 0.5, max_hours)),
                      cpus=randint(rng, low_cpus, high_cpus), cpu_eff=uniform(rng, 0.3, 0.95))


def wl_pretrain_prep(rng: Random) -> JobRequest:
    dataset = pick(rng, ("commoncrawl", "the-stack", "arxiv", "wikipedia"))
    return cpu_job(rng, "pretrain_prep", "pretrain", pick(rng, PRETRAIN_USERS),
                   f"prep-{dataset}-{randint(rng, 1, 40):02d}")


def wl_pretrain_tok(rng: Random) -> JobRequest:
    model = pick(rng, ("orca-7b", "orca-70b"))
    return cpu_job(rng, "pretrain_tok", "pretrain", pick(rng, PRETRAIN_USERS),
                   f"tok-{model}-{randint(rng, 1, 30):02d}", low_cpus=32, max_hours=16)


def wl_posttrain(rng: Random) -> JobRequest:
    model, method = pick(rng, CHAT_MODELS), pick(rng, ("sft", "dpo", "lora"))
    if model == "orca-70b-chat":
        gpus = pick(rng, (4, 8)) if method == "lora" else 8
    else:
        gpus = pick(rng, (1, 2, 4, 8))
    return JobRequest(
        "posttrain", "posttrain", pick(rng, POSTTRAIN_USERS),
        f"ft-{model}-{method}-{randint(rng, 1, 50):02d}", "h100" if chance(rng, 0.6) else "a100",
        hours_s(log_uniform(rng, 1, 20)), gpus_per_node=gpus, gpu_util_pct=uniform(rng, 50, 90),
        gpu_mem_frac=uniform(rng, 0.4, 0.95), cpu_eff=uniform(rng, 0.1, 0.4),
        srun_steps=1 if chance(rng, 0.4) else 0, step_name="torchrun", max_timelimit_s=DAY_S)


def serving_job(rng: Random, workload: str, name: str, model: str, hours: tuple) -> JobRequest:
    """Serving: ~15 % sit on their GPUs doing (almost) nothing for many hours."""
    idle = chance(rng, 0.15)
    big = model == "orca-70b-chat"
    if big:
        gpus = 8 if workload == "serving_long" else pick(rng, (4, 8))
    else:
        gpus = pick(rng, (1, 2, 2, 4))
    low_h, high_h = (6, max(hours[1], 48)) if idle else hours
    return JobRequest(
        workload, "serving", pick(rng, SERVING_USERS), name, "a100",
        hours_s(log_uniform(rng, low_h, high_h)),
        qos="long" if workload == "serving_long" else "normal",
        gpus_per_node=gpus, gpu_util_pct=uniform(rng, 0, 3) if idle else uniform(rng, 20, 90),
        gpu_mem_frac=uniform(rng, 0.6, 0.92), cpu_eff=uniform(rng, 0.02, 0.15), step_name="vllm",
        states=SERVICE_STATES if workload == "serving_long" else DEFAULT_STATES)


def wl_serving_batch(rng: Random) -> JobRequest:
    model = pick(rng, CHAT_MODELS)
    return serving_job(rng, "serving_batch", f"inf-{model}-batch-{randint(rng, 1, 999):03d}",
                       model, (1, 12))


def wl_serving_long(rng: Random) -> JobRequest:
    model = pick(rng, CHAT_MODELS)
    return serving_job(rng, "serving_long", f"serve-{model}", model, (48, 7 * 24 - 1))


def wl_evals(rng: Random) -> JobRequest:
    model = pick(rng, ("orca-7b", "orca-70b") + CHAT_MODELS)
    bench = pick(rng, ("mmlu", "gsm8k", "humaneval", "arc"))
    return JobRequest(
        "evals", "evals", pick(rng, EVALS_USERS), f"eval-{model}-{bench}",
        "a100" if chance(rng, 0.7) else "h100", int(log_uniform(rng, 10 * MINUTE_S, 90 * MINUTE_S)),
        gpus_per_node=2 if "70b" in model else pick(rng, (1, 1, 2)),
        gpu_util_pct=uniform(rng, 30, 80), gpu_mem_frac=uniform(rng, 0.2, 0.8),
        cpu_eff=uniform(rng, 0.05, 0.3), array_tasks=randint(rng, 5, 40),
        max_timelimit_s=2 * HOUR_S)


def wl_vision_pretrain(rng: Random) -> JobRequest:
    return JobRequest(
        "vision_pretrain", "vision", pick(rng, VISION_USERS),
        f"pt-heron-vit-r{randint(rng, 1, 30):02d}",
        "a100", hours_s(log_uniform(rng, 8, 47)), nodes=randint(rng, 1, 3), gpus_per_node=8,
        gpu_util_pct=uniform(rng, 65, 90), gpu_mem_frac=uniform(rng, 0.4, 0.85),
        cpu_eff=uniform(rng, 0.2, 0.5), srun_steps=1, max_timelimit_s=2 * DAY_S)


def wl_vision_finetune(rng: Random) -> JobRequest:
    return JobRequest(
        "vision_finetune", "vision", pick(rng, VISION_USERS),
        f"ft-heron-vit-{randint(rng, 1, 60):02d}",
        "a100", hours_s(log_uniform(rng, 1, 10)), gpus_per_node=pick(rng, (1, 2, 4)),
        gpu_util_pct=uniform(rng, 50, 85), gpu_mem_frac=uniform(rng, 0.3, 0.8),
        cpu_eff=uniform(rng, 0.15, 0.45), max_timelimit_s=DAY_S)


def wl_vision_prep(rng: Random) -> JobRequest:
    dataset = pick(rng, ("laion", "coco", "imagenet"))
    return cpu_job(rng, "vision_prep", "vision", pick(rng, VISION_USERS),
                   f"prep-{dataset}-{randint(rng, 1, 40):02d}")


def wl_research_dev(rng: Random) -> JobRequest:
    where = weighted(rng, (("a100", 5), ("h100", 2), ("cpu", 3)))
    gpus = 0 if where == "cpu" else pick(rng, (1, 1, 2))
    return JobRequest(
        "research_dev", "research", pick(rng, RESEARCH_USERS), f"dev-{pick(rng, DEV_TOPICS)}",
        where, int(log_uniform(rng, 10 * MINUTE_S, 8 * HOUR_S)), gpus_per_node=gpus,
        cpus=randint(rng, 4, 32) if gpus == 0 else 0, gpu_util_pct=uniform(rng, 5, 60),
        gpu_mem_frac=uniform(rng, 0.05, 0.6), cpu_eff=uniform(rng, 0.05, 0.6),
        comment="model=orca-7b" if chance(rng, 0.3) else "", max_timelimit_s=DAY_S)


def wl_research_interactive(rng: Random) -> JobRequest:
    on_gpu = chance(rng, 0.5)
    return JobRequest(
        "research_interactive", "research", pick(rng, RESEARCH_USERS),
        pick(rng, ("jupyter", "bash")),
        "a100" if on_gpu else "cpu", int(log_uniform(rng, 30 * MINUTE_S, 10 * HOUR_S)),
        qos="interactive", gpus_per_node=1 if on_gpu else 0,
        cpus=0 if on_gpu else randint(rng, 4, 16),
        gpu_util_pct=uniform(rng, 0, 15), gpu_mem_frac=uniform(rng, 0.0, 0.4),
        cpu_eff=uniform(rng, 0.01, 0.2), comment="model=orca-7b" if chance(rng, 0.2) else "",
        max_timelimit_s=12 * HOUR_S, states=INTERACTIVE_STATES)


def wl_misc(rng: Random) -> JobRequest:
    on_gpu = chance(rng, 0.4)
    return JobRequest(
        "misc", "misc", "nobody1", pick(rng, MISC_NAMES), "a100" if on_gpu else "cpu",
        int(log_uniform(rng, 5 * MINUTE_S, 6 * HOUR_S)), qos="low",
        gpus_per_node=1 if on_gpu else 0,
        cpus=0 if on_gpu else randint(rng, 1, 32), gpu_util_pct=uniform(rng, 0, 50),
        gpu_mem_frac=uniform(rng, 0.0, 0.5), cpu_eff=uniform(rng, 0.05, 0.9))


WORKLOADS = {
    "pretrain_train": wl_pretrain_train, "pretrain_prep": wl_pretrain_prep,
    "pretrain_tok": wl_pretrain_tok, "posttrain": wl_posttrain,
    "serving_batch": wl_serving_batch, "serving_long": wl_serving_long, "evals": wl_evals,
    "vision_pretrain": wl_vision_pretrain, "vision_finetune": wl_vision_finetune,
    "vision_prep": wl_vision_prep, "research_dev": wl_research_dev,
    "research_interactive": wl_research_interactive, "misc": wl_misc,
}
HET_WORKLOADS = ("serving_long", "pretrain_train")  # a CPU router/loader + the GPU part


# --- text formats exactly as sacct prints them ---
# The pure formatters are cached (bounded): a job's lines repeat the same durations, TRES lists and
# node lists, and formatting is a large share of the run time at benchmark scale.

@lru_cache(maxsize=1 << 16)
def fmt_duration(total_s: int) -> str:
    """Elapsed/Timelimit/CPUTime: [D-]HH:MM:SS."""
    days, rest = divmod(total_s, DAY_S)
    hours, rest = divmod(rest, HOUR_S)
    minutes, seconds = divmod(rest, MINUTE_S)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def fmt_cpu_ms(total_ms: int) -> str:
    """TotalCPU: MM:SS.mmm below one hour (no hours field!), [D-]HH:MM:SS from one hour on.

    A plain zero (pending, running or never-started jobs) prints as 00:00:00.
    """
    if 0 < total_ms < HOUR_S * 1000:
        minutes, rest = divmod(total_ms, 60_000)
        seconds, millis = divmod(rest, 1000)
        return f"{minutes:02d}:{seconds:02d}.{millis:03d}"
    return fmt_duration(total_ms // 1000)


def fmt_mem_mb(mem_mb: int) -> str:
    """Slurm prints memory in the biggest unit that divides it exactly: 256000 -> 250G."""
    value, unit = mem_mb, 0
    while unit < 2 and value and value % 1024 == 0:
        value //= 1024
        unit += 1
    return f"{value}{'MGT'[unit]}"


@lru_cache(maxsize=1 << 12)
def tres_text(cpus: int, gpus: int, gpu_type: str, mem_mb: int, nodes: int,
              billing: int | None = None) -> str:
    """ReqTRES/AllocTRES list; typed GPU entry first, then the untyped count (as sacct does)."""
    parts = [] if billing is None else [f"billing={billing}"]
    parts.append(f"cpu={cpus}")
    if gpus and gpu_type:
        parts.append(f"gres/gpu:{gpu_type}={gpus}")
    if gpus:
        parts.append(f"gres/gpu={gpus}")
    parts += [f"mem={fmt_mem_mb(mem_mb)}", f"node={nodes}"]
    return ",".join(parts)


@lru_cache(maxsize=1 << 12)
def hostlist(part: Partition, indices: tuple[int, ...]) -> str:
    """Compressed Slurm hostlist: atl-h005, atl-h[001-003,007]."""
    width = part.index_width
    if len(indices) == 1:
        return part.node_name(indices[0])
    ranges, first, previous = [], indices[0], indices[0]
    for index in indices[1:] + (None,):
        if index is not None and index == previous + 1:
            previous = index
            continue
        text = f"{first + 1:0{width}d}"
        ranges.append(text if first == previous else f"{text}-{previous + 1:0{width}d}")
        first = previous = index
    return f"{part.node_prefix}[{','.join(ranges)}]"


class LocalClock:
    """UTC epoch seconds -> the naive local wall-clock text sacct prints without TZ=UTC.

    Offsets are cached per UTC hour: both zones change offset on a whole UTC hour, and the cache
    is bounded by the span of the dump, not by the number of jobs.
    """

    def __init__(self, tz_name: str):
        self.tz = ZoneInfo(tz_name)
        self._offset_by_hour: dict[int, int] = {}
        self._date_by_day: dict[int, str] = {}
        self._recent: dict[int, str] = {}  # job and step lines repeat the same instants

    def offset_s(self, epoch_s: int) -> int:
        hour = epoch_s // HOUR_S
        offset = self._offset_by_hour.get(hour)
        if offset is None:
            moment = datetime.fromtimestamp(hour * HOUR_S, self.tz)
            offset = int(moment.utcoffset().total_seconds())
            self._offset_by_hour[hour] = offset
        return offset

    def format(self, epoch_s: int) -> str:
        text = self._recent.get(epoch_s)
        if text is None:
            if len(self._recent) > 4096:
                self._recent.clear()  # bounded memory, whatever the job count
            text = self._recent[epoch_s] = self._format(epoch_s)
        return text

    def _format(self, epoch_s: int) -> str:
        day, second_of_day = divmod(epoch_s + self.offset_s(epoch_s), DAY_S)
        prefix = self._date_by_day.get(day)
        if prefix is None:
            prefix = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
            self._date_by_day[day] = prefix
        hours, rest = divmod(second_of_day, HOUR_S)
        minutes, seconds = divmod(rest, MINUTE_S)
        return f"{prefix}T{hours:02d}:{minutes:02d}:{seconds:02d}"

    def month(self, epoch_s: int) -> str:
        return self.format(epoch_s)[:7]

    def midnight_s(self, iso_date: str) -> int:
        """Local midnight of a YYYY-MM-DD date (sacct --starttime is local too)."""
        return int(datetime.fromisoformat(iso_date).replace(tzinfo=self.tz).timestamp())


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


# --- Slurm's decisions: placement, shape, state, time limit ---

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
            for start_s in (max(node_slots[kth], earliest_s),)]
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


TIMELIMIT_CHOICES_S = (30 * MINUTE_S, HOUR_S, 2 * HOUR_S, 4 * HOUR_S, 8 * HOUR_S, 12 * HOUR_S,
                       DAY_S, 2 * DAY_S, 3 * DAY_S, 5 * DAY_S, 7 * DAY_S)


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
ELAPSED_FRACTION = {"FAILED": (0.001, 0.6), "CANCELLED": (0.05, 0.9),
                    "OUT_OF_MEMORY": (0.01, 0.7), "NODE_FAIL": (0.05, 0.95),
                    "PREEMPTED": (0.1, 0.9), "REQUEUED": (0.05, 0.8)}


def actual_elapsed_s(rng: Random, state: str, duration_s: int, timelimit_s: int | None) -> int:
    if state == "TIMEOUT":
        return timelimit_s + randint(rng, 1, 120)  # Slurm kills a little after the limit
    if state == "FAILED" and chance(rng, 0.4):
        return randint(rng, 3, 300)  # import errors and typos die within minutes
    if state in ELAPSED_FRACTION:
        low, high = ELAPSED_FRACTION[state]
        return max(5, int(duration_s * uniform(rng, low, high)))
    return duration_s


# --- jobs and steps as they end up in the accounting database ---

@dataclass
class Draft:
    """A job (or one array task / het component / requeued run) while it is being simulated."""
    req: JobRequest
    part: Partition
    shape: Shape
    job_id: str
    job_id_raw: str
    submit_s: int
    state: str
    timelimit_s: int | None
    timelimit: str
    start_s: int | None = None
    elapsed_s: int = 0
    cancel_end_s: int | None = None   # End of a job cancelled while still pending
    node_indices: tuple = ()
    has_batch: bool = True            # het component +1 has no batch step
    kind: str = "plain"               # plain, array, het, requeue
    cancelled_by_uid: int | None = None  # drawn once, shared by het components


@dataclass
class Step:
    suffix: str
    name: str
    nodelist: str
    nnodes: int
    ncpus: int
    ntasks: int
    gpus: int
    mem_mb: int
    state: str
    exit_code: str
    start_s: int
    end_s: int | None        # None while the step still runs
    elapsed_s: int
    cpu_ms: int = 0
    max_rss_kb: int = 0
    mem_total_kb: int = 0
    vmem_kb: int = 0
    disk_bytes: int = 0
    pages: int = 0
    gpu_mem_kb: int = 0
    gpu_util: int = 0        # sum of per-GPU percentages, as the gpu acct plugin reports it
    energy_j: int = 0


@dataclass
class Job:
    job_id: str
    job_id_raw: str
    name: str
    user: str
    account: str
    partition: str
    qos: str
    wckey: str
    comment: str
    nodelist: str
    nnodes: int
    ncpus: int
    state: str
    exit_code: str
    submit_s: int
    start_s: int | None
    end_s: int | None
    elapsed_s: int
    timelimit: str
    req_mem: str
    req_tres: str
    alloc_tres: str
    energy_j: int = 0
    energy_flag: str = ""     # "", "missing" or "implausible" (nordic job line)
    steps: list[Step] = field(default_factory=list)
    kind: str = "plain"
    special_name: bool = False
    corruption: str = ""


JOB_EXIT_CODE = {"FAILED": "1:0", "OUT_OF_MEMORY": "0:125"}
STEP_OUTCOME = {"COMPLETED": ("COMPLETED", "0:0"), "FAILED": ("FAILED", "1:0"),
                "TIMEOUT": ("CANCELLED", "0:15"), "CANCELLED": ("CANCELLED", "0:15"),
                "OUT_OF_MEMORY": ("OUT_OF_MEMORY", "0:125"), "NODE_FAIL": ("CANCELLED", "0:15"),
                "PREEMPTED": ("CANCELLED", "0:15"), "REQUEUED": ("CANCELLED", "0:15"),
                "RUNNING": ("RUNNING", "0:0")}


def fill_work_usage(rng: Random, step: Step, draft: Draft) -> None:
    """Usage of the step that does the real work (sacct only has it once the step ended)."""
    req, ceiling_ms = draft.req, step.elapsed_s * step.ncpus * 1000
    step.cpu_ms = min(ceiling_ms, int(ceiling_ms * req.cpu_eff * uniform(rng, 0.9, 1.1)))
    tasks_per_node = max(1, step.ntasks // step.nnodes)
    near_limit = draft.state == "OUT_OF_MEMORY"
    if near_limit:
        rss_frac = uniform(rng, 0.97, 1.0)
    else:  # GPU jobs keep their data on the GPU; host RAM is mostly headroom
        rss_frac = uniform(rng, 0.05, 0.5) if step.gpus else uniform(rng, 0.15, 0.85)
    step.max_rss_kb = int(draft.shape.mem_per_node_mb * 1024 / tasks_per_node * rss_frac)
    step.mem_total_kb = int(step.max_rss_kb * step.ntasks * uniform(rng, 0.85, 1.0))
    step.vmem_kb = int(step.mem_total_kb * uniform(rng, 1.3, 5.0))
    step.disk_bytes = int(log_uniform(rng, 1e6, 5e12 if req.nodes > 1 else 5e11))
    step.pages = randint(rng, 0, 20000)
    if step.gpus:
        step.gpu_util = round(step.gpus * min(100.0, req.gpu_util_pct * uniform(rng, 0.95, 1.05)))
        step.gpu_mem_kb = int(step.gpus * req.gpu_mem_frac * draft.part.gpu_mem_gib * KIB_PER_GIB)


def fill_light_usage(rng: Random, step: Step, is_extern: bool) -> None:
    """The extern step (a sleeper) and a batch script that only launches srun use almost nothing."""
    if is_extern:
        step.cpu_ms, step.max_rss_kb = randint(rng, 0, 3), randint(rng, 70, 1100)
        step.disk_bytes = 2332
    else:
        step.cpu_ms = min(step.elapsed_s * step.ncpus * 1000, randint(rng, 500, 30_000))
        step.max_rss_kb = randint(rng, 4000, 60_000)
        step.disk_bytes = int(log_uniform(rng, 1e4, 1e8))
        step.pages = randint(rng, 0, 50)
    step.mem_total_kb = step.max_rss_kb
    step.vmem_kb = step.max_rss_kb if is_extern else int(step.max_rss_kb * uniform(rng, 2, 20))


def new_step(draft: Draft, suffix: str, name: str, whole_job: bool, ntasks: int,
             window: tuple[int, int], running: bool, outcome: tuple[str, str]) -> Step:
    shape, part = draft.shape, draft.part
    nodes = draft.node_indices if whole_job else draft.node_indices[:1]  # tuples: cache keys
    nnodes = len(nodes)
    start_s, end_s = window
    return Step(suffix, name, hostlist(part, nodes), nnodes, shape.cpus_per_node * nnodes, ntasks,
                shape.gpus_per_node * nnodes, shape.mem_per_node_mb * nnodes,
                outcome[0], outcome[1], start_s, None if running else end_s, end_s - start_s)


def srun_windows(rng: Random, draft: Draft) -> list[tuple[int, int]]:
    """Start/end of the srun steps: .0 starts a little after the job; .1 (rare) follows it."""
    start_s, horizon_s = draft.start_s, draft.start_s + draft.elapsed_s
    first_s = start_s + min(randint(rng, 3, 90), draft.elapsed_s // 4)
    if draft.req.srun_steps == 1 or draft.state != "COMPLETED":
        return [(first_s, horizon_s - min(randint(rng, 0, 10), (horizon_s - first_s) // 2))]
    split_s = first_s + int((horizon_s - first_s) * uniform(rng, 0.85, 0.95))
    return [(first_s, split_s), (min(split_s + 3, horizon_s), horizon_s)]


def build_steps(rng: Random, draft: Draft) -> list[Step]:
    running = draft.state == "RUNNING"
    outcome = STEP_OUTCOME[draft.state]
    job_window = (draft.start_s, draft.start_s + draft.elapsed_s)
    steps = []
    uses_srun = draft.req.srun_steps > 0
    if draft.has_batch:
        batch = new_step(draft, "batch", "batch", False, 1, job_window, running, outcome)
        steps.append(batch)
    extern_outcome = ("RUNNING", "0:0") if running else ("COMPLETED", "0:0")
    steps.append(new_step(draft, "extern", "extern", True, draft.shape.nnodes, job_window,
                          running, extern_outcome))
    if uses_srun:
        windows = srun_windows(rng, draft)
        tasks = draft.shape.nnodes * max(1, draft.shape.gpus_per_node)  # one rank per GPU
        for number, window in enumerate(windows):
            last = number == len(windows) - 1
            steps.append(new_step(draft, str(number), draft.req.step_name, True, tasks, window,
                                  running and last, outcome if last else ("COMPLETED", "0:0")))
    for step in steps:
        if step.end_s is None:
            continue  # sacct shows no usage for a step that is still running
        if step.suffix == "extern" or (step.suffix == "batch" and uses_srun):
            fill_light_usage(rng, step, step.suffix == "extern")
        else:
            fill_work_usage(rng, step, draft)
    return steps


def node_power_w(rng: Random, draft: Draft) -> float:
    """Whole-node power: the energy plugin meters the node, so neighbours on a shared node count."""
    part, shape, req = draft.part, draft.shape, draft.req
    share = shape.slots_per_node / part.slots_per_node
    if part.gpus_per_node:
        idle_w, full_dynamic_w = 420.0, part.gpus_per_node * 350.0 + 300.0
        own_w = shape.gpus_per_node * 350.0 * req.gpu_util_pct / 100 + 300.0 * share * req.cpu_eff
    else:
        idle_w, full_dynamic_w = 280.0, 450.0
        own_w = full_dynamic_w * share * req.cpu_eff
    neighbours_w = (1 - share) * uniform(rng, 0.0, 0.6) * full_dynamic_w
    return (idle_w + own_w + neighbours_w) * uniform(rng, 0.95, 1.05)


class FaultPlan:
    """Stratified fault draws: in every block of 100 metered jobs exactly 3 lose their energy
    reading (0) and 1 gets an implausible one, at random places, so rates hold for any seed."""

    BLOCK = 100
    FAULTS = ("missing", "missing", "missing", "implausible")

    def __init__(self):
        self.position, self.plan = 0, {}

    def next(self, rng: Random) -> str:
        if self.position % self.BLOCK == 0:
            self.plan = {}
            for fault in self.FAULTS:
                slot = randint(rng, 0, self.BLOCK - 1)
                while slot in self.plan:
                    slot = (slot + 1) % self.BLOCK
                self.plan[slot] = fault
        fault = self.plan.get(self.position % self.BLOCK, "")
        self.position += 1
        return fault


def assign_energy(rng: Random, draft: Draft, job: Job, faults: FaultPlan) -> None:
    """ConsumedEnergyRaw as the energy plugin repeats it: extern = job total, batch a part."""
    if job.state == "RUNNING":
        return
    true_j = int(node_power_w(rng, draft) * draft.shape.nnodes * max(1, draft.elapsed_s))
    fault = faults.next(rng)
    if fault == "missing":
        job.energy_flag = "missing"   # plugin failed: 0 everywhere
        return
    job.energy_j = true_j
    if fault == "implausible":
        job.energy_flag = "implausible"
        job.energy_j = NO_VAL64_ENERGY if chance(rng, 0.5) else int(
            uniform(rng, 25_000, 90_000) * draft.shape.nnodes * max(1, draft.elapsed_s))
    for step in job.steps:
        share = step.elapsed_s / max(1, draft.elapsed_s)
        if step.suffix == "extern":
            step.energy_j = job.energy_j
        elif step.suffix == "batch":
            step.energy_j = int(true_j / draft.shape.nnodes * share * uniform(rng, 0.97, 1.0))
        else:
            step.energy_j = int(true_j * share * uniform(rng, 0.96, 0.995))


# --- the simulation ---

class SpecialQueue:
    """Special names and deliberate corruptions, armed once a fraction of submissions is reached."""

    def __init__(self, cluster: Cluster, n_jobs: int):
        self.names = [(int(fraction * n_jobs), workload, name)
                      for fraction, workload, name in cluster.special_names]
        self.corruptions = [(int(fraction * n_jobs), kind)
                            for fraction, kind in zip(CORRUPTION_FRACTIONS, BAD_LINE_KINDS,
                                                      strict=True)]
        self.late_array_slot = int(LATE_ARRAY_FRACTION * n_jobs)
        self.slot = 0

    def take_workload(self) -> str:
        if self.late_array_slot is not None and self.slot >= self.late_array_slot:
            self.late_array_slot = None
            return "evals"
        return ""

    def take_name(self, workload: str) -> str:
        for entry in self.names:
            if entry[0] <= self.slot and entry[1] == workload:
                self.names.remove(entry)
                return entry[2]
        return ""

    def maybe_corrupt(self, job: Job) -> None:
        for entry in self.corruptions:
            if entry[0] <= self.slot and corruptible(job, entry[1]):
                self.corruptions.remove(entry)
                job.corruption = entry[1]
                return


def corruptible(job: Job, kind: str) -> bool:
    """Only plain, finished jobs are corrupted, so every bad line is easy to reason about."""
    if job.kind != "plain" or job.special_name or job.corruption or job.end_s is None:
        return False
    if job.start_s is None or job.elapsed_s < MINUTE_S:
        return False
    return kind != "unknown_gpu" or "gres/gpu=" in job.alloc_tres


class Simulation:
    """Draws submissions in Submit order and turns them into finished/running/pending jobs."""

    def __init__(self, cluster: Cluster, n_jobs: int, seed: int, start_s: int, end_s: int,
                 clock: LocalClock):
        self.cluster, self.n_jobs, self.rng = cluster, n_jobs, Random(seed)
        self.start_s, self.end_s = start_s, end_s
        self.profile = SubmitProfile(clock, start_s, end_s)
        self.pools = {name: NodePool(part) for name, part in cluster.partitions.items()}
        self.specials = SpecialQueue(cluster, n_jobs)
        self.next_job_id = cluster.first_job_id
        self.energy_faults = FaultPlan()
        self.oversubscribed_starts = 0  # jobs started on busy nodes because of MAX_QUEUE_WAIT_S

    def jobs(self) -> Iterator[Job]:
        slot = 0
        while slot < self.n_jobs:
            self.specials.slot = slot
            req = self.draw_request(self.n_jobs - slot)
            submit_s = self.profile.time_at((slot + self.rng.random()) / self.n_jobs)
            for job in self.submission(req, submit_s):
                self.specials.maybe_corrupt(job)
                yield job
            slot += max(1, req.array_tasks)

    def draw_request(self, remaining_slots: int) -> JobRequest:
        workload = (self.specials.take_workload()
                    or weighted(self.rng, self.cluster.workload_weights))
        req = WORKLOADS[workload](self.rng)
        req.array_tasks = min(req.array_tasks, remaining_slots)
        special = self.specials.take_name(workload)
        if special:
            req.name, req.special_name = special, True
        return req

    def take_ids(self, count: int) -> int:
        """Consecutive job ids; small gaps appear where other clusters' or dropped ids were."""
        first = self.next_job_id
        self.next_job_id += count + (randint(self.rng, 1, 3) if chance(self.rng, 0.1) else 0)
        return first

    def submission(self, req: JobRequest, submit_s: int) -> Iterator[Job]:
        rng, cluster = self.rng, self.cluster
        if req.array_tasks:
            return self.array_jobs(req, submit_s)
        if req.workload in HET_WORKLOADS and chance(rng, cluster.het_rate):
            return self.het_jobs(req, submit_s)
        if chance(rng, cluster.requeue_rate):
            return self.requeued_jobs(req, submit_s)
        job_id = str(self.take_ids(1))
        return iter([self.run(self.new_draft(req, job_id, job_id, submit_s))])

    def new_draft(self, req: JobRequest, job_id: str, raw_id: str, submit_s: int) -> Draft:
        rng = self.rng
        part = self.cluster.partitions[self.cluster.partition_map[req.partition]]
        legacy = chance(rng, self.cluster.legacy_reqmem_rate)
        shape = (gpu_shape if req.gpus_per_node else cpu_shape)(rng, req, part, legacy)
        timelimit_s, timelimit = choose_timelimit(rng, req.duration_s, req.max_timelimit_s)
        return Draft(req, part, shape, job_id, raw_id, submit_s, self.draw_state(req, timelimit_s),
                     timelimit_s, timelimit)

    def draw_state(self, req: JobRequest, timelimit_s: int | None) -> str:
        state = weighted(self.rng, req.states)
        if state == "TIMEOUT" and timelimit_s is None:
            return "COMPLETED"  # no limit, nothing to time out against
        return state

    def run(self, draft: Draft, not_before_s: int = 0) -> Job:
        self.schedule(draft, not_before_s)
        return self.materialise(draft)

    def queue_wait_s(self, draft: Draft) -> int:
        """Scheduler latency plus, now and then, a hold (dependency, priority, QOS limit).

        In the last days of the window a deadline rush holds half of the new jobs, so every dump
        ends with PENDING jobs and partly started arrays, as a real end-of-quarter dump does.
        """
        rng = self.rng
        wait_s = int(log_uniform(rng, 3, 45 * MINUTE_S))
        if draft.shape.nnodes > 1:
            wait_s *= 3
        rush = draft.submit_s >= self.end_s - DEADLINE_RUSH_S
        if chance(rng, 0.5 if rush else 0.02):
            wait_s += int(log_uniform(rng, HOUR_S, 4 * DAY_S))
        return wait_s

    def schedule(self, draft: Draft, not_before_s: int = 0) -> None:
        """Sets start/elapsed, or turns the job into PENDING / cancelled-before-start / RUNNING."""
        rng = self.rng
        wait_s = self.queue_wait_s(draft)
        if draft.state == "CANCELLED" and draft.kind != "het" and chance(rng, 0.25):
            draft.cancel_end_s = draft.submit_s + randint(rng, 10, wait_s + 20 * MINUTE_S)
            if draft.cancel_end_s >= self.end_s:
                draft.state, draft.cancel_end_s = "PENDING", None
            return
        nodes, start_s = self.place(draft, max(draft.submit_s + wait_s, not_before_s))
        self.commit(draft, nodes, start_s)

    def place(self, draft: Draft, earliest_s: int) -> tuple[list[int], int]:
        shape = draft.shape
        nodes, ready_s = self.pools[draft.part.name].place(shape.nnodes, shape.slots_per_node,
                                                             earliest_s)
        latest_s = draft.submit_s + MAX_QUEUE_WAIT_S
        if ready_s > latest_s and ready_s > earliest_s:
            self.oversubscribed_starts += 1  # overloaded run: start anyway, on busy nodes
        return nodes, max(earliest_s, min(ready_s, latest_s))

    def commit(self, draft: Draft, nodes: list[int], start_s: int, elapsed_s: int | None = None):
        if start_s >= self.end_s:
            draft.state = "PENDING"
            return
        if elapsed_s is None:
            elapsed_s = actual_elapsed_s(self.rng, draft.state, draft.req.duration_s,
                                         draft.timelimit_s)
        self.pools[draft.part.name].occupy(nodes, draft.shape.slots_per_node, start_s + elapsed_s)
        draft.start_s, draft.elapsed_s, draft.node_indices = start_s, elapsed_s, tuple(nodes)
        if start_s + elapsed_s >= self.end_s:
            draft.state, draft.elapsed_s = "RUNNING", self.end_s - start_s

    def materialise(self, draft: Draft) -> Job:
        job = self.job_line(draft)
        if draft.start_s is not None:
            job.steps = build_steps(self.rng, draft)
            if self.cluster.energy_plugin:
                assign_energy(self.rng, draft, job, self.energy_faults)
        return job

    def job_line(self, draft: Draft) -> Job:
        req, shape, part = draft.req, draft.shape, draft.part
        started = draft.start_s is not None
        state = draft.state
        if state == "CANCELLED":
            if draft.cancelled_by_uid is None:  # the user, or now and then root
                own_uid = self.cluster.uid_base + ALL_USERS.index(req.user)
                draft.cancelled_by_uid = 0 if chance(self.rng, 0.1) else own_uid
            state = f"CANCELLED by {draft.cancelled_by_uid}"
        gpus = shape.gpus_per_node * shape.nnodes
        cpus, mem_mb = shape.cpus_per_node * shape.nnodes, shape.mem_per_node_mb * shape.nnodes
        if started:
            end_s = None if draft.state == "RUNNING" else draft.start_s + draft.elapsed_s
        else:
            end_s = draft.cancel_end_s
        return Job(
            draft.job_id, draft.job_id_raw, req.name, req.user, req.account, part.name, req.qos,
            req.wckey, req.comment,
            hostlist(part, draft.node_indices) if started else "None assigned", shape.nnodes,
            cpus if started else 0, state, JOB_EXIT_CODE.get(draft.state, "0:0"), draft.submit_s,
            draft.start_s, end_s, draft.elapsed_s if started else 0, draft.timelimit,
            shape.req_mem,
            tres_text(shape.req_cpus, gpus, "", mem_mb, shape.nnodes, billing=shape.req_cpus),
            tres_text(cpus, gpus, part.gpu_type, mem_mb, shape.nnodes, billing=cpus)
            if started else "",
            kind=draft.kind, special_name=req.special_name)

    def array_jobs(self, req: JobRequest, submit_s: int) -> Iterator[Job]:
        """Array tasks <master>_<n>; the tail that never started shows as one <master>_[a-b] line.

        JobIDRaw is unique per task; the last task keeps the master's own id (as in Slurm).
        """
        master, n_tasks = self.take_ids(req.array_tasks), req.array_tasks
        throttle = randint(self.rng, 4, 12)  # --array=1-N%throttle
        template = self.new_draft(req, "", "", submit_s)  # one sbatch: same shape and limit
        longest_s = (template.timelimit_s or DAY_S) - MINUTE_S
        task_ends_s: list[int] = []
        for task in range(1, n_tasks + 1):
            duration_s = int(req.duration_s * uniform(self.rng, 0.6, 1.4))
            task_req = replace(req, duration_s=min(longest_s, max(10 * MINUTE_S, duration_s)))
            raw_id = master if task == n_tasks else master + task
            draft = replace(template, req=task_req, job_id=f"{master}_{task}",
                            job_id_raw=str(raw_id), kind="array",
                            state=self.draw_state(req, template.timelimit_s))
            not_before_s = task_ends_s[-throttle] if len(task_ends_s) >= throttle else 0
            self.schedule(draft, not_before_s)
            if draft.state == "PENDING":
                yield self.pending_array_line(draft, master, task, n_tasks)
                return
            task_ends_s.append(draft.start_s + draft.elapsed_s if draft.start_s else submit_s)
            yield self.materialise(draft)

    def pending_array_line(self, draft: Draft, master: int, task: int, n_tasks: int) -> Job:
        draft.job_id = f"{master}_[{task}-{n_tasks}]" if task < n_tasks else f"{master}_{task}"
        draft.job_id_raw = str(master)
        draft.start_s, draft.state = None, "PENDING"
        return self.job_line(draft)

    def het_jobs(self, req: JobRequest, submit_s: int) -> Iterator[Job]:
        """Heterogeneous job: +0 is a small CPU router/loader, +1 the GPU part; one start time."""
        base = self.take_ids(2)
        helper = replace(req, partition="cpu", nodes=1, gpus_per_node=0, cpus=8, srun_steps=1)
        gpu_req = replace(req, srun_steps=1)
        first = self.new_draft(helper, f"{base}+0", str(base), submit_s)
        second = self.new_draft(gpu_req, f"{base}+1", str(base + 1), submit_s)
        second.state, second.timelimit_s = first.state, first.timelimit_s
        second.timelimit = first.timelimit
        second.has_batch = False
        first.kind = second.kind = "het"
        earliest_s = submit_s + self.queue_wait_s(second)
        nodes0, start0 = self.place(first, earliest_s)
        nodes1, start1 = self.place(second, earliest_s)
        elapsed_s = actual_elapsed_s(self.rng, first.state, req.duration_s, first.timelimit_s)
        for draft, nodes in ((first, nodes0), (second, nodes1)):
            self.commit(draft, nodes, max(start0, start1), elapsed_s)
        first_job = self.materialise(first)
        second.cancelled_by_uid = first.cancelled_by_uid
        return iter([first_job, self.materialise(second)])

    def requeued_jobs(self, req: JobRequest, submit_s: int) -> Iterator[Job]:
        """A run that ended REQUEUED, then the rerun under the same JobID with a later Submit."""
        job_id = str(self.take_ids(1))
        first = self.new_draft(req, job_id, job_id, submit_s)
        first.state, first.kind = "REQUEUED", "requeue"
        self.schedule(first)
        yield self.materialise(first)
        if first.state != "REQUEUED":
            return  # still pending/running at the end of the window: not requeued yet
        rerun_submit_s = first.start_s + first.elapsed_s + randint(self.rng, 1, 5)
        second = replace(first, submit_s=rerun_submit_s, start_s=None, elapsed_s=0,
                         node_indices=(), state=self.draw_state(req, first.timelimit_s))
        if rerun_submit_s < self.end_s:
            self.schedule(second)
            yield self.materialise(second)


# --- rendering ---

def start_text(job: Job, clock: LocalClock) -> str:
    if job.start_s is not None:
        return clock.format(job.start_s)
    return "Unknown" if job.state == "PENDING" else "None"


def job_row(job: Job, clock: LocalClock) -> list[str]:
    """All columns of a job line, in atlas (COLUMN) order."""
    cpu_ms = sum(step.cpu_ms for step in job.steps)
    return [
        job.job_id, job.job_id_raw, job.name, job.user, job.account, job.partition, job.qos,
        job.wckey, job.comment, job.nodelist, str(job.nnodes), str(job.ncpus), "", job.state,
        job.exit_code, clock.format(job.submit_s), start_text(job, clock),
        "Unknown" if job.end_s is None else clock.format(job.end_s), fmt_duration(job.elapsed_s),
        str(job.elapsed_s), job.timelimit, fmt_cpu_ms(cpu_ms),
        fmt_duration(job.elapsed_s * job.ncpus), job.req_mem, "", job.req_tres, job.alloc_tres, "",
        str(job.energy_j),
    ]


def fmt_kib(kib: int) -> str:
    """Memory usage in KiB; sacct prints a zero without unit (gres/gpumem=0, mem=0)."""
    return f"{kib}K" if kib else "0"


def usage_text(step: Step, cluster: Cluster) -> str:
    if step.end_s is None:
        return ""
    gres = ""
    if cluster.gpu_accounting and step.gpus:
        gres = f"gres/gpumem={fmt_kib(step.gpu_mem_kb)},gres/gpuutil={step.gpu_util},"
    return (f"cpu={fmt_duration(step.cpu_ms // 1000)},energy={step.energy_j},"
            f"fs/disk={step.disk_bytes},{gres}mem={fmt_kib(step.mem_total_kb)},pages={step.pages},"
            f"vmem={fmt_kib(step.vmem_kb)}")


def step_row(job: Job, step: Step, cluster: Cluster, clock: LocalClock,
             gpu_type: str) -> list[str]:
    """All columns of a step line, in atlas (COLUMN) order; no user/account/request columns."""
    finished = step.end_s is not None
    started = clock.format(step.start_s)
    return [
        f"{job.job_id}.{step.suffix}", f"{job.job_id_raw}.{step.suffix}", step.name, "", "", "",
        "", "", "", step.nodelist, str(step.nnodes), str(step.ncpus), str(step.ntasks), step.state,
        step.exit_code, started, started, clock.format(step.end_s) if finished else "Unknown",
        fmt_duration(step.elapsed_s), str(step.elapsed_s), "", fmt_cpu_ms(step.cpu_ms),
        fmt_duration(step.elapsed_s * step.ncpus), "",
        fmt_kib(step.max_rss_kb) if finished else "", "",
        tres_text(step.ncpus, step.gpus, gpu_type, step.mem_mb, step.nnodes),
        usage_text(step, cluster), str(step.energy_j),
    ]


UNKNOWN_GPU_RE = re.compile(r"gres/gpu:[^,=]+=\d+,gres/gpu=\d+")


def corrupt_row(row: list[str], job: Job, clock: LocalClock, columns: tuple) -> tuple:
    """Apply the job's deliberate corruption to its row; returns the column indexes to print."""
    kind = job.corruption
    if kind == "missing_field":
        return tuple(index for index in columns if index != COLUMN["NNodes"])
    if kind == "end_before_start":
        row[COLUMN["End"]] = clock.format(job.start_s - job.elapsed_s)
    elif kind == "unknown_gpu":
        row[COLUMN["AllocTRES"]] = UNKNOWN_GPU_RE.sub("gres/gpu:tpu9=1,gres/gpu=1", job.alloc_tres)
    elif kind == "non_utf8":
        row[COLUMN["JobName"]] = job.name + "\udcff"  # written as raw byte 0xFF (surrogateescape)
    elif kind == "bad_duration":
        row[COLUMN["Elapsed"]] = "1-2x:00:00"
    return columns


def render_job(job: Job, cluster: Cluster, clock: LocalClock) -> list[str]:
    """The job line followed by its step lines."""
    tail = "|" if cluster.trailing_delimiter else ""
    columns = cluster.columns
    row = job_row(job, clock)
    if job.corruption:
        columns = corrupt_row(row, job, clock, columns)
    lines = ["|".join([row[index] for index in columns]) + tail]
    gpu_type = cluster.partitions[job.partition].gpu_type
    for step in job.steps:
        row = step_row(job, step, cluster, clock, gpu_type)
        lines.append("|".join([row[index] for index in cluster.columns]) + tail)
    return lines


# --- output files ---

@dataclass
class FileStats:
    path: str
    data_lines: int = 0
    job_lines: int = 0
    step_lines: int = 0
    header_lines: int = 0
    bad_lines: list = field(default_factory=list)
    job_states: dict = field(default_factory=dict)
    energy_flags: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "header_lines": self.header_lines, "data_lines": self.data_lines,
            "job_lines": self.job_lines, "step_lines": self.step_lines,
            "bad_line_count": len(self.bad_lines),
            "bad_line_numbers": [bad["line"] for bad in self.bad_lines],
            "bad_lines": self.bad_lines,
            "job_states": dict(sorted(self.job_states.items())),
            "energy_flags": dict(sorted(self.energy_flags.items())),
        }


class DumpWriter:
    """Streams jobs into one file per month of End (Submit if End is Unknown), or one file."""

    def __init__(self, cluster: Cluster, clock: LocalClock, out_dir: str, start_s: int,
                 end_s: int, split: str, start_date: str, end_date: str):
        self.cluster, self.clock, self.split = cluster, clock, split
        os.makedirs(out_dir, exist_ok=True)
        if split == "month":
            keys = months_between(clock.month(start_s), clock.month(end_s - 1))
            names = {key: f"sacct-{key}.{cluster.file_ext}" for key in keys}
        else:
            names = {"all": f"sacct-{start_date}_{end_date}.{cluster.file_ext}"}
        self.files, self.stats = {}, {}
        for key, name in names.items():
            path = os.path.join(out_dir, name)
            # surrogateescape writes the deliberate \udcff as the raw byte 0xFF
            handle = open(  # noqa: SIM115 -- one handle per month stays open; see close()
                path, "w", encoding="utf-8", errors="surrogateescape", newline="\n",
                buffering=1 << 20)
            self.files[key], self.stats[key] = handle, FileStats(name)
            if cluster.header:
                handle.write("|".join(cluster.fields) + "\n")
                self.stats[key].header_lines = 1

    def write(self, job: Job) -> None:
        key = "all" if self.split != "month" else self.clock.month(
            job.end_s if job.end_s is not None else job.submit_s)
        handle, stats = self.files[key], self.stats[key]
        lines = render_job(job, self.cluster, self.clock)
        handle.write("\n".join(lines) + "\n")
        if job.corruption:
            line_number = stats.header_lines + stats.data_lines + 1
            stats.bad_lines.append({"line": line_number, "kind": job.corruption,
                                    "job_id": job.job_id})
        stats.data_lines += len(lines)
        stats.job_lines += 1
        stats.step_lines += len(lines) - 1
        state = job.state.split()[0]
        stats.job_states[state] = stats.job_states.get(state, 0) + 1
        if job.energy_flag:
            stats.energy_flags[job.energy_flag] = stats.energy_flags.get(job.energy_flag, 0) + 1

    def close(self) -> list[FileStats]:
        for handle in self.files.values():
            handle.close()
        return list(self.stats.values())


def months_between(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:7])
    keys = []
    while f"{year:04d}-{month:02d}" <= last:
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


@dataclass
class DumpResult:
    files: list[FileStats]
    oversubscribed_starts: int  # 0 unless --jobs is more than the nodes can run in the window


def generate_dump(cluster_name: str, n_jobs: int, seed: int, start_date: str, end_date: str,
                  out_dir: str, split: str = "month") -> DumpResult:
    """Write one cluster's sacct dump for [start_date, end_date) and return per-file statistics."""
    cluster = CLUSTERS[cluster_name]
    clock = LocalClock(cluster.tz_name)
    start_s, end_s = clock.midnight_s(start_date), clock.midnight_s(end_date)
    if end_s <= start_s or n_jobs < 1:
        raise ValueError("need --end after --start and --jobs >= 1")
    simulation = Simulation(cluster, n_jobs, seed, start_s, end_s, clock)
    writer = DumpWriter(cluster, clock, out_dir, start_s, end_s, split, start_date, end_date)
    try:
        for job in simulation.jobs():
            writer.write(job)
    finally:
        files = writer.close()
    return DumpResult(files, simulation.oversubscribed_starts)
