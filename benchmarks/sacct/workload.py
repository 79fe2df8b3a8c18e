"""What the lab's users submit: teams, accounts, job shapes and the random draws behind them.

Each ``wl_*`` function draws one submission of one workload; ``WORKLOADS`` maps the names used in
``Cluster.workload_weights`` to them. The order of the draws inside a function is part of the
output: changing it changes every dump for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from .draws import chance, log_uniform, pick, randint, uniform, weighted
from .units import DAY_S, HOUR_S, MINUTE_S, hours_s

DEFAULT_STATES = (
    ("COMPLETED", 77.5),
    ("FAILED", 8.0),
    ("TIMEOUT", 4.0),
    ("CANCELLED", 7.0),
    ("OUT_OF_MEMORY", 2.0),
    ("NODE_FAIL", 1.0),
    ("PREEMPTED", 0.5),
)
# Services are usually stopped with scancel; interactive sessions get abandoned or time out.
SERVICE_STATES = (
    ("COMPLETED", 45.0),
    ("FAILED", 8.0),
    ("TIMEOUT", 4.0),
    ("CANCELLED", 40.0),
    ("OUT_OF_MEMORY", 1.0),
    ("NODE_FAIL", 1.5),
    ("PREEMPTED", 0.5),
)
INTERACTIVE_STATES = (
    ("COMPLETED", 60.0),
    ("FAILED", 6.0),
    ("TIMEOUT", 12.0),
    ("CANCELLED", 20.0),
    ("OUT_OF_MEMORY", 1.0),
    ("NODE_FAIL", 0.5),
    ("PREEMPTED", 0.5),
)


@dataclass
class JobRequest:
    """One sbatch/salloc submission as the user wrote it (before Slurm decides anything)."""

    workload: str
    account: str
    user: str
    name: str
    partition: str  # wish: "h100", "a100" or "cpu"; the cluster maps it
    duration_s: int  # how long the work runs if nothing goes wrong
    qos: str = "normal"
    nodes: int = 1
    gpus_per_node: int = 0
    cpus: int = 0  # CPU-only jobs: cores wanted
    gpu_util_pct: float = 0.0  # mean per-GPU utilisation of the work step
    gpu_mem_frac: float = 0.0  # fraction of each GPU's memory in use
    cpu_eff: float = 0.2  # TotalCPU / (Elapsed * NCPUS) of the work step
    srun_steps: int = 0  # 0: work runs in .batch; 1 or 2: in .0 (and .1) via srun
    step_name: str = "python"
    max_timelimit_s: int = 7 * DAY_S
    array_tasks: int = 0
    comment: str = ""
    wckey: str = ""
    states: tuple = DEFAULT_STATES
    special_name: bool = False  # carries a UTF-8/HTML test name; never corrupted on top


# Everyone who submits; a user's uid is the cluster's uid_base plus the index here.
ALL_USERS = (
    "akim",
    "bolsen",
    "cnair",
    "dlee",
    "eross",
    "fmoss",
    "gtan",
    "hbrook",
    "iwu",
    "jpark",
    "kvoss",
    "lcho",
    "mgarcia",
    "nobody1",
)
PRETRAIN_USERS = ("akim", "bolsen", "cnair")
POSTTRAIN_USERS = ("dlee", "eross")
SERVING_USERS = ("fmoss", "gtan")
EVALS_USERS = ("hbrook", "iwu")
VISION_USERS = ("jpark", "kvoss")
RESEARCH_USERS = ("lcho", "mgarcia")
CHAT_MODELS = ("orca-7b-chat", "orca-70b-chat")
DEV_TOPICS = (
    "rope-scaling",
    "kv-cache",
    "moe-router",
    "flash-attn",
    "tokenizer",
    "data-filter",
    "longctx",
    "quant-int4",
    "test",
    "spec-decode",
)
MISC_NAMES = (
    "run.sh",
    "test",
    "a.out",
    "job",
    "myjob",
    "sweep_lr",
    "untitled",
    "script.py",
    "wrap",
    "matlab_run",
    "x",
    "analysis",
)


def wl_pretrain_train(rng: Random) -> JobRequest:
    model = pick(rng, ("orca-7b", "orca-70b"))
    nodes = randint(rng, 2, 4) if model == "orca-7b" else randint(rng, 4, 8)
    return JobRequest(
        "pretrain_train",
        "pretrain",
        pick(rng, PRETRAIN_USERS),
        f"pt-{model}-r{randint(rng, 1, 60):02d}",
        "h100",
        pretrain_duration_s(rng),
        qos="high",
        nodes=nodes,
        gpus_per_node=8,
        gpu_util_pct=uniform(rng, 70, 95),
        gpu_mem_frac=uniform(rng, 0.7, 0.95),
        cpu_eff=uniform(rng, 0.08, 0.3),
        srun_steps=2 if chance(rng, 0.3) else 1,
        max_timelimit_s=3 * DAY_S,
        wckey="orca",
    )


def pretrain_duration_s(rng: Random) -> int:
    """Most runs are long chunks ending near the 3-day limit; the rest restarts and ablations."""
    if chance(rng, 0.6):
        return hours_s(uniform(rng, 24, 71))
    return hours_s(log_uniform(rng, 2, 24))


def cpu_job(
    rng: Random,
    workload: str,
    account: str,
    user: str,
    name: str,
    low_cpus: int = 20,
    high_cpus: int = 128,
    max_hours: float = 24,
) -> JobRequest:
    """Data preparation / tokenisation on the cpu partition: no GPUs, decent CPU efficiency."""
    return JobRequest(
        workload,
        account,
        user,
        name,
        "cpu",
        hours_s(log_uniform(rng, 0.5, max_hours)),
        cpus=randint(rng, low_cpus, high_cpus),
        cpu_eff=uniform(rng, 0.3, 0.95),
    )


def wl_pretrain_prep(rng: Random) -> JobRequest:
    dataset = pick(rng, ("commoncrawl", "the-stack", "arxiv", "wikipedia"))
    return cpu_job(
        rng,
        "pretrain_prep",
        "pretrain",
        pick(rng, PRETRAIN_USERS),
        f"prep-{dataset}-{randint(rng, 1, 40):02d}",
    )


def wl_pretrain_tok(rng: Random) -> JobRequest:
    model = pick(rng, ("orca-7b", "orca-70b"))
    return cpu_job(
        rng,
        "pretrain_tok",
        "pretrain",
        pick(rng, PRETRAIN_USERS),
        f"tok-{model}-{randint(rng, 1, 30):02d}",
        low_cpus=32,
        max_hours=16,
    )


def wl_posttrain(rng: Random) -> JobRequest:
    model, method = pick(rng, CHAT_MODELS), pick(rng, ("sft", "dpo", "lora"))
    if model == "orca-70b-chat":
        gpus = pick(rng, (4, 8)) if method == "lora" else 8
    else:
        gpus = pick(rng, (1, 2, 4, 8))
    return JobRequest(
        "posttrain",
        "posttrain",
        pick(rng, POSTTRAIN_USERS),
        f"ft-{model}-{method}-{randint(rng, 1, 50):02d}",
        "h100" if chance(rng, 0.6) else "a100",
        hours_s(log_uniform(rng, 1, 20)),
        gpus_per_node=gpus,
        gpu_util_pct=uniform(rng, 50, 90),
        gpu_mem_frac=uniform(rng, 0.4, 0.95),
        cpu_eff=uniform(rng, 0.1, 0.4),
        srun_steps=1 if chance(rng, 0.4) else 0,
        step_name="torchrun",
        max_timelimit_s=DAY_S,
    )


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
        workload,
        "serving",
        pick(rng, SERVING_USERS),
        name,
        "a100",
        hours_s(log_uniform(rng, low_h, high_h)),
        qos="long" if workload == "serving_long" else "normal",
        gpus_per_node=gpus,
        gpu_util_pct=uniform(rng, 0, 3) if idle else uniform(rng, 20, 90),
        gpu_mem_frac=uniform(rng, 0.6, 0.92),
        cpu_eff=uniform(rng, 0.02, 0.15),
        step_name="vllm",
        states=SERVICE_STATES if workload == "serving_long" else DEFAULT_STATES,
    )


def wl_serving_batch(rng: Random) -> JobRequest:
    model = pick(rng, CHAT_MODELS)
    return serving_job(
        rng, "serving_batch", f"inf-{model}-batch-{randint(rng, 1, 999):03d}", model, (1, 12)
    )


def wl_serving_long(rng: Random) -> JobRequest:
    model = pick(rng, CHAT_MODELS)
    return serving_job(rng, "serving_long", f"serve-{model}", model, (48, 7 * 24 - 1))


def wl_evals(rng: Random) -> JobRequest:
    model = pick(rng, ("orca-7b", "orca-70b") + CHAT_MODELS)
    bench = pick(rng, ("mmlu", "gsm8k", "humaneval", "arc"))
    return JobRequest(
        "evals",
        "evals",
        pick(rng, EVALS_USERS),
        f"eval-{model}-{bench}",
        "a100" if chance(rng, 0.7) else "h100",
        int(log_uniform(rng, 10 * MINUTE_S, 90 * MINUTE_S)),
        gpus_per_node=2 if "70b" in model else pick(rng, (1, 1, 2)),
        gpu_util_pct=uniform(rng, 30, 80),
        gpu_mem_frac=uniform(rng, 0.2, 0.8),
        cpu_eff=uniform(rng, 0.05, 0.3),
        array_tasks=randint(rng, 5, 40),
        max_timelimit_s=2 * HOUR_S,
    )


def wl_vision_pretrain(rng: Random) -> JobRequest:
    return JobRequest(
        "vision_pretrain",
        "vision",
        pick(rng, VISION_USERS),
        f"pt-heron-vit-r{randint(rng, 1, 30):02d}",
        "a100",
        hours_s(log_uniform(rng, 8, 47)),
        nodes=randint(rng, 1, 3),
        gpus_per_node=8,
        gpu_util_pct=uniform(rng, 65, 90),
        gpu_mem_frac=uniform(rng, 0.4, 0.85),
        cpu_eff=uniform(rng, 0.2, 0.5),
        srun_steps=1,
        max_timelimit_s=2 * DAY_S,
    )


def wl_vision_finetune(rng: Random) -> JobRequest:
    return JobRequest(
        "vision_finetune",
        "vision",
        pick(rng, VISION_USERS),
        f"ft-heron-vit-{randint(rng, 1, 60):02d}",
        "a100",
        hours_s(log_uniform(rng, 1, 10)),
        gpus_per_node=pick(rng, (1, 2, 4)),
        gpu_util_pct=uniform(rng, 50, 85),
        gpu_mem_frac=uniform(rng, 0.3, 0.8),
        cpu_eff=uniform(rng, 0.15, 0.45),
        max_timelimit_s=DAY_S,
    )


def wl_vision_prep(rng: Random) -> JobRequest:
    dataset = pick(rng, ("laion", "coco", "imagenet"))
    return cpu_job(
        rng,
        "vision_prep",
        "vision",
        pick(rng, VISION_USERS),
        f"prep-{dataset}-{randint(rng, 1, 40):02d}",
    )


def wl_research_dev(rng: Random) -> JobRequest:
    where = weighted(rng, (("a100", 5), ("h100", 2), ("cpu", 3)))
    gpus = 0 if where == "cpu" else pick(rng, (1, 1, 2))
    return JobRequest(
        "research_dev",
        "research",
        pick(rng, RESEARCH_USERS),
        f"dev-{pick(rng, DEV_TOPICS)}",
        where,
        int(log_uniform(rng, 10 * MINUTE_S, 8 * HOUR_S)),
        gpus_per_node=gpus,
        cpus=randint(rng, 4, 32) if gpus == 0 else 0,
        gpu_util_pct=uniform(rng, 5, 60),
        gpu_mem_frac=uniform(rng, 0.05, 0.6),
        cpu_eff=uniform(rng, 0.05, 0.6),
        comment="model=orca-7b" if chance(rng, 0.3) else "",
        max_timelimit_s=DAY_S,
    )


def wl_research_interactive(rng: Random) -> JobRequest:
    on_gpu = chance(rng, 0.5)
    return JobRequest(
        "research_interactive",
        "research",
        pick(rng, RESEARCH_USERS),
        pick(rng, ("jupyter", "bash")),
        "a100" if on_gpu else "cpu",
        int(log_uniform(rng, 30 * MINUTE_S, 10 * HOUR_S)),
        qos="interactive",
        gpus_per_node=1 if on_gpu else 0,
        cpus=0 if on_gpu else randint(rng, 4, 16),
        gpu_util_pct=uniform(rng, 0, 15),
        gpu_mem_frac=uniform(rng, 0.0, 0.4),
        cpu_eff=uniform(rng, 0.01, 0.2),
        comment="model=orca-7b" if chance(rng, 0.2) else "",
        max_timelimit_s=12 * HOUR_S,
        states=INTERACTIVE_STATES,
    )


def wl_misc(rng: Random) -> JobRequest:
    on_gpu = chance(rng, 0.4)
    return JobRequest(
        "misc",
        "misc",
        "nobody1",
        pick(rng, MISC_NAMES),
        "a100" if on_gpu else "cpu",
        int(log_uniform(rng, 5 * MINUTE_S, 6 * HOUR_S)),
        qos="low",
        gpus_per_node=1 if on_gpu else 0,
        cpus=0 if on_gpu else randint(rng, 1, 32),
        gpu_util_pct=uniform(rng, 0, 50),
        gpu_mem_frac=uniform(rng, 0.0, 0.5),
        cpu_eff=uniform(rng, 0.05, 0.9),
    )


WORKLOADS = {
    "pretrain_train": wl_pretrain_train,
    "pretrain_prep": wl_pretrain_prep,
    "pretrain_tok": wl_pretrain_tok,
    "posttrain": wl_posttrain,
    "serving_batch": wl_serving_batch,
    "serving_long": wl_serving_long,
    "evals": wl_evals,
    "vision_pretrain": wl_vision_pretrain,
    "vision_finetune": wl_vision_finetune,
    "vision_prep": wl_vision_prep,
    "research_dev": wl_research_dev,
    "research_interactive": wl_research_interactive,
    "misc": wl_misc,
}
HET_WORKLOADS = ("serving_long", "pretrain_train")  # a CPU router/loader + the GPU part
