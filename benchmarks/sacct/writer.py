"""Streams rendered jobs into the dump files and counts what EXPECTED.json reports per file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .accounting import Job
from .cluster import Cluster
from .format import LocalClock
from .lines import render_job


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
            "header_lines": self.header_lines,
            "data_lines": self.data_lines,
            "job_lines": self.job_lines,
            "step_lines": self.step_lines,
            "bad_line_count": len(self.bad_lines),
            "bad_line_numbers": [bad["line"] for bad in self.bad_lines],
            "bad_lines": self.bad_lines,
            "job_states": dict(sorted(self.job_states.items())),
            "energy_flags": dict(sorted(self.energy_flags.items())),
        }


class DumpWriter:
    """Streams jobs into one file per month of End (Submit if End is Unknown), or one file."""

    def __init__(
        self,
        cluster: Cluster,
        clock: LocalClock,
        out_dir: str,
        start_s: int,
        end_s: int,
        split: str,
        start_date: str,
        end_date: str,
    ):
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
                path,
                "w",
                encoding="utf-8",
                errors="surrogateescape",
                newline="\n",
                buffering=1 << 20,
            )
            self.files[key], self.stats[key] = handle, FileStats(name)
            if cluster.header:
                handle.write("|".join(cluster.fields) + "\n")
                self.stats[key].header_lines = 1

    def write(self, job: Job) -> None:
        key = (
            "all"
            if self.split != "month"
            else self.clock.month(job.end_s if job.end_s is not None else job.submit_s)
        )
        handle, stats = self.files[key], self.stats[key]
        lines = render_job(job, self.cluster, self.clock)
        handle.write("\n".join(lines) + "\n")
        if job.corruption:
            line_number = stats.header_lines + stats.data_lines + 1
            stats.bad_lines.append(
                {"line": line_number, "kind": job.corruption, "job_id": job.job_id}
            )
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
