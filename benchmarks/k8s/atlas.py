"""DCGM dumps for part of the atlas Slurm cluster's training jobs, read from its sacct dump.

Chosen jobs: plain (not array/het) ``pt-orca-7b-*`` job lines of the h100 partition in one
sacct dump, with whole nodes (8 GPUs per node), a final state other than REQUEUED, a start inside
the chosen days and a run of at least two hours; the dump's deliberately bad lines are skipped.
For every node of a chosen job, samples cover the job's run on the 240 s grid (from the grid
point at or before Start to the one at or after End); outside the chosen runs the node is idle
and not sampled (longer pauses are gaps). Power follows the job's Slurm GPU utilisation
(``gres/gpuutil`` of its busiest step) with per-GPU noise and a short checkpoint dip every two
hours. Atlas sacct times are naive America/New_York wall-clock times.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from .fleet import DAY_S, STEP_S
from .prom import MAX_GAP_S, Device, Dump, energy_summary, gpu_uuid

H100 = ("NVIDIA H100 80GB HBM3", 79.1, 700.0)
GPUS_PER_NODE = 8
FINAL = ("COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL")


@dataclass(frozen=True)
class Job:
    job_id: str
    name: str
    line: int  # 1-based, header included
    hosts: tuple[str, ...]
    start: int  # unix seconds (UTC)
    end: int
    gpus: int
    util: float  # Slurm GPU utilisation 0..1


def expand_hostlist(text: str) -> list[str]:
    hosts = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?", text):
        match = re.fullmatch(r"([^\[]*)\[([^\]]*)\]", part)
        if not match:
            hosts.append(part)
            continue
        for item in match.group(2).split(","):
            low, _, high = item.partition("-")
            hosts += [
                f"{match.group(1)}{n:0{len(low)}d}" for n in range(int(low), int(high or low) + 1)
            ]
    return hosts


def to_unix(local: str, zone: ZoneInfo) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=zone).timestamp())


def read_jobs(path: str, bad_lines: set[int], first: int, last: int, tz: str) -> list[Job]:
    """The chosen jobs of one sacct --parsable2 dump (see the module docstring)."""
    zone = ZoneInfo(tz)
    with open(path, "rb") as handle:
        lines = handle.read().decode("utf-8", errors="replace").split("\n")
    header = lines[0].split("|")
    rows = [(n, dict(zip(header, text.split("|"), strict=False))) for n, text in
            enumerate(lines[1:], start=2) if text and n not in bad_lines]  # fmt: skip
    step_util: dict[str, float] = {}
    for _, row in rows:
        job_id, _, step = row["JobID"].partition(".")
        usage = dict(p.split("=", 1) for p in row.get("TRESUsageInTot", "").split(",") if "=" in p)
        alloc = dict(p.split("=", 1) for p in row.get("AllocTRES", "").split(",") if "=" in p)
        if step and step not in ("batch", "extern") and "gres/gpuutil" in usage:
            ratio = int(usage["gres/gpuutil"]) / (100 * max(1, int(alloc.get("gres/gpu", "1"))))
            step_util[job_id] = max(step_util.get(job_id, 0.0), min(ratio, 1.0))
    ids = [row["JobID"] for _, row in rows]
    jobs = []
    for number, row in rows:
        job_id = row["JobID"]
        if ("." in job_id or "_" in job_id or "+" in job_id or ids.count(job_id) > 1
                or row["Partition"] != "h100" or not row["JobName"].startswith("pt-orca-7b-")
                or row["State"].split()[0] not in FINAL):  # fmt: skip
            continue
        alloc = dict(p.split("=", 1) for p in row["AllocTRES"].split(",") if "=" in p)
        hosts = tuple(expand_hostlist(row["NodeList"]))
        gpus = int(alloc.get("gres/gpu", "0"))
        if gpus != GPUS_PER_NODE * len(hosts) or row["Start"] in ("Unknown", "None"):
            continue
        start, end = to_unix(row["Start"], zone), to_unix(row["End"], zone)
        if first <= start < last and end - start >= 2 * 3600:
            util = step_util.get(job_id, 0.85)
            jobs.append(Job(job_id, row["JobName"], number, hosts, start, end, gpus, util))
    return jobs


def _grid(jobs: list[Job]) -> dict[str, dict[int, Job | None]]:
    """Per host: grid time → the chosen job running then (None: idle sample at a run's edge)."""
    table: dict[str, dict[int, Job | None]] = {}
    for job in jobs:
        first = job.start // STEP_S * STEP_S
        last = -(-job.end // STEP_S) * STEP_S
        for host in job.hosts:
            times = table.setdefault(host, {})
            for t in range(first, last + STEP_S, STEP_S):
                running = job.start <= t < job.end
                if running or t not in times:
                    times[t] = job if running else times.get(t)
    return table


def generate(seed: int, jobs: list[Job], folder: str) -> dict:
    """Write one dump per UTC day; EXPECTED.json's atlas part."""
    grid = _grid(jobs)
    rng = random.Random(f"{seed}:atlas-devices")
    devices = {}
    for host in sorted(grid):
        for gpu in range(GPUS_PER_NODE):
            counter = int(rng.uniform(2e11, 9e11))
            devices[(host, gpu)] = Device(
                host, gpu, gpu_uuid(rng), H100[0], "dcgm-exporter", counter
            )
    dumps: dict[str, Dump] = {}
    energy: dict[str, dict[int, int]] = {host: {} for host in grid}  # interval start → mJ
    for (host, gpu), device in devices.items():
        noise = random.Random(f"{seed}:{host}:{gpu}")
        previous = None
        for t in sorted(grid[host]):
            job = grid[host][t]
            busy = 0.0 if job is None else _busy(job, t, noise)
            idle = H100[1] * (1.5 if job else 1.05)
            watts = idle + (H100[2] * 0.95 - idle) * busy**0.85 + noise.gauss(0, 3.0)
            watts = round(max(watts, H100[1] * 0.9), 1)
            before = device.energy_mj
            counter = device.advance(t, watts)
            if previous is not None and t - previous <= MAX_GAP_S:
                energy[host][previous] = energy[host].get(previous, 0) + device.energy_mj - before
            previous = t
            day = datetime.fromtimestamp(t - t % DAY_S, UTC).strftime("%Y-%m-%d")
            dump = dumps.setdefault(day, Dump())
            dump.add_sample(device, {}, t, watts, round(busy * 100), counter)
    files = {}
    for day in sorted(dumps):
        name = f"dcgm-{day}.json"
        files[name] = dumps[day].write(os.path.join(folder, name))
    return {
        "files": files,
        "points": sum(f["points"] for f in files.values()),
        **energy_summary(list(devices.values())),
        "jobs": [_job_expected(job, jobs, energy) for job in jobs],
    }


def _busy(job: Job, t: int, rng: random.Random) -> float:
    phase = (t - job.start) % 7200
    if phase < 360:  # checkpoint: the GPUs wait on storage
        return max(0.0, 0.04 + rng.gauss(0, 0.02))
    return min(1.0, max(0.0, job.util + rng.gauss(0, 0.04)))


def _job_expected(job: Job, jobs: list[Job], energy: dict[str, dict[int, int]]) -> dict:
    """The job's telemetry energy as reporting.telemetry.job_energy computes it from these jobs
    alone: each interval of its hosts × overlap share × g / max(G, Σg) (g = G = 8 here)."""
    total_mj = 0.0
    for host in job.hosts:
        others = [j for j in jobs if host in j.hosts]
        for start, mj in energy[host].items():
            end = start + STEP_S
            overlap = min(end, job.end) - max(start, job.start)
            if overlap <= 0:
                continue
            sharing = sum(1 for j in others if min(end, j.end) > max(start, j.start))
            total_mj += mj * overlap / STEP_S / max(1, sharing)
    return {
        "job_id": job.job_id, "job_name": job.name, "line": job.line, "hosts": list(job.hosts),
        "gpus": job.gpus, "slurm_gpu_util": round(job.util, 6),
        "start": datetime.fromtimestamp(job.start, UTC).isoformat(),
        "end": datetime.fromtimestamp(job.end, UTC).isoformat(),
        "telemetry_energy_kwh": round(total_mj / 3.6e9, 9),
    }  # fmt: skip
