"""Jobs and steps as they end up in the accounting database, and how a job's steps are built."""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random

from .cluster import Partition, hostlist
from .draws import log_uniform, randint, uniform
from .schedule import Shape
from .units import KIB_PER_GIB
from .workload import JobRequest


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
    cancel_end_s: int | None = None  # End of a job cancelled while still pending
    node_indices: tuple = ()
    has_batch: bool = True  # het component +1 has no batch step
    kind: str = "plain"  # plain, array, het, requeue
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
    end_s: int | None  # None while the step still runs
    elapsed_s: int
    cpu_ms: int = 0
    max_rss_kb: int = 0
    mem_total_kb: int = 0
    vmem_kb: int = 0
    disk_bytes: int = 0
    pages: int = 0
    gpu_mem_kb: int = 0
    gpu_util: int = 0  # sum of per-GPU percentages, as the gpu acct plugin reports it
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
    energy_flag: str = ""  # "", "missing" or "implausible" (nordic job line)
    steps: list[Step] = field(default_factory=list)
    kind: str = "plain"
    special_name: bool = False
    corruption: str = ""


JOB_EXIT_CODE = {"FAILED": "1:0", "OUT_OF_MEMORY": "0:125"}
STEP_OUTCOME = {
    "COMPLETED": ("COMPLETED", "0:0"),
    "FAILED": ("FAILED", "1:0"),
    "TIMEOUT": ("CANCELLED", "0:15"),
    "CANCELLED": ("CANCELLED", "0:15"),
    "OUT_OF_MEMORY": ("OUT_OF_MEMORY", "0:125"),
    "NODE_FAIL": ("CANCELLED", "0:15"),
    "PREEMPTED": ("CANCELLED", "0:15"),
    "REQUEUED": ("CANCELLED", "0:15"),
    "RUNNING": ("RUNNING", "0:0"),
}


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


def new_step(
    draft: Draft,
    suffix: str,
    name: str,
    whole_job: bool,
    ntasks: int,
    window: tuple[int, int],
    running: bool,
    outcome: tuple[str, str],
) -> Step:
    shape, part = draft.shape, draft.part
    nodes = draft.node_indices if whole_job else draft.node_indices[:1]  # tuples: cache keys
    nnodes = len(nodes)
    start_s, end_s = window
    return Step(
        suffix,
        name,
        hostlist(part, nodes),
        nnodes,
        shape.cpus_per_node * nnodes,
        ntasks,
        shape.gpus_per_node * nnodes,
        shape.mem_per_node_mb * nnodes,
        outcome[0],
        outcome[1],
        start_s,
        None if running else end_s,
        end_s - start_s,
    )


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
    steps.append(
        new_step(
            draft, "extern", "extern", True, draft.shape.nnodes, job_window, running, extern_outcome
        )
    )
    if uses_srun:
        windows = srun_windows(rng, draft)
        tasks = draft.shape.nnodes * max(1, draft.shape.gpus_per_node)  # one rank per GPU
        for number, window in enumerate(windows):
            last = number == len(windows) - 1
            steps.append(
                new_step(
                    draft,
                    str(number),
                    draft.req.step_name,
                    True,
                    tasks,
                    window,
                    running and last,
                    outcome if last else ("COMPLETED", "0:0"),
                )
            )
    for step in steps:
        if step.end_s is None:
            continue  # sacct shows no usage for a step that is still running
        if step.suffix == "extern" or (step.suffix == "batch" and uses_srun):
            fill_light_usage(rng, step, step.suffix == "extern")
        else:
            fill_work_usage(rng, step, draft)
    return steps
