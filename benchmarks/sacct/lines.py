"""Assembles a job's sacct lines: the job line, then its step lines, in the cluster's columns."""

from __future__ import annotations

from .accounting import Job, Step
from .cluster import Cluster
from .faults import corrupt_row
from .format import LocalClock, fmt_cpu_ms, fmt_duration, fmt_kib, tres_text


def start_text(job: Job, clock: LocalClock) -> str:
    if job.start_s is not None:
        return clock.format(job.start_s)
    return "Unknown" if job.state == "PENDING" else "None"


def job_row(job: Job, clock: LocalClock) -> list[str]:
    """All columns of a job line, in atlas (COLUMN) order."""
    cpu_ms = sum(step.cpu_ms for step in job.steps)
    return [
        job.job_id,
        job.job_id_raw,
        job.name,
        job.user,
        job.account,
        job.partition,
        job.qos,
        job.wckey,
        job.comment,
        job.nodelist,
        str(job.nnodes),
        str(job.ncpus),
        "",
        job.state,
        job.exit_code,
        clock.format(job.submit_s),
        start_text(job, clock),
        "Unknown" if job.end_s is None else clock.format(job.end_s),
        fmt_duration(job.elapsed_s),
        str(job.elapsed_s),
        job.timelimit,
        fmt_cpu_ms(cpu_ms),
        fmt_duration(job.elapsed_s * job.ncpus),
        job.req_mem,
        "",
        job.req_tres,
        job.alloc_tres,
        "",
        str(job.energy_j),
    ]


def usage_text(step: Step, cluster: Cluster) -> str:
    if step.end_s is None:
        return ""
    gres = ""
    if cluster.gpu_accounting and step.gpus:
        gres = f"gres/gpumem={fmt_kib(step.gpu_mem_kb)},gres/gpuutil={step.gpu_util},"
    return (
        f"cpu={fmt_duration(step.cpu_ms // 1000)},energy={step.energy_j},"
        f"fs/disk={step.disk_bytes},{gres}mem={fmt_kib(step.mem_total_kb)},pages={step.pages},"
        f"vmem={fmt_kib(step.vmem_kb)}"
    )


def step_row(job: Job, step: Step, cluster: Cluster, clock: LocalClock, gpu_type: str) -> list[str]:
    """All columns of a step line, in atlas (COLUMN) order; no user/account/request columns."""
    finished = step.end_s is not None
    started = clock.format(step.start_s)
    return [
        f"{job.job_id}.{step.suffix}",
        f"{job.job_id_raw}.{step.suffix}",
        step.name,
        "",
        "",
        "",
        "",
        "",
        "",
        step.nodelist,
        str(step.nnodes),
        str(step.ncpus),
        str(step.ntasks),
        step.state,
        step.exit_code,
        started,
        started,
        clock.format(step.end_s) if finished else "Unknown",
        fmt_duration(step.elapsed_s),
        str(step.elapsed_s),
        "",
        fmt_cpu_ms(step.cpu_ms),
        fmt_duration(step.elapsed_s * step.ncpus),
        "",
        fmt_kib(step.max_rss_kb) if finished else "",
        "",
        tres_text(step.ncpus, step.gpus, gpu_type, step.mem_mb, step.nnodes),
        usage_text(step, cluster),
        str(step.energy_j),
    ]


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
