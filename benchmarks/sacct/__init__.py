"""Deterministic generator of realistic Slurm ``sacct`` dumps for a small AI lab.

Two on-prem clusters are simulated (see ``cluster.CLUSTERS``): ``atlas`` (USA; ``sacct
--parsable2`` with a header; GPU accounting plugin, no energy plugin) and ``nordic`` (Sweden;
``sacct --parsable --noheader`` with a trailing ``|``; energy plugin, no GPU accounting). Jobs are
simulated in submit order on a UTC clock and written one at a time, so memory stays flat for any
job count; times are printed as naive local wall-clock text, like ``sacct`` run without ``TZ=UTC``.

Only ``Random.random()`` is used for randomness (``draws.py`` builds on it), so the same seed gives
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

Modules, in the order data flows through them:
  units, draws   seconds/KiB constants; random draws built on Random.random()
  cluster        partitions, node names, hostlists, sacct column layout of each cluster
  workload       what users submit (teams, accounts, job shapes)
  schedule       Slurm's decisions: submit times, node placement, shape, time limit, run time
  accounting     the Job/Step records sacct reports, and how a job's steps are built
  energy         the nordic energy plugin's readings and faults
  simulation     drives the above in Submit order, one job at a time
  format, lines  sacct text for values and timestamps; a job's lines in the cluster's columns
  faults         the deliberately bad lines
  writer         per-month files and the counts EXPECTED.json reports
"""

from __future__ import annotations

from dataclasses import dataclass

from .cluster import CLUSTERS
from .faults import BAD_LINE_KINDS
from .format import LocalClock
from .schedule import MAX_QUEUE_WAIT_S
from .simulation import Simulation
from .units import DAY_S
from .writer import DumpWriter, FileStats

__all__ = [
    "BAD_LINE_KINDS",
    "CLUSTERS",
    "DAY_S",
    "MAX_QUEUE_WAIT_S",
    "DumpResult",
    "FileStats",
    "generate_dump",
]


@dataclass
class DumpResult:
    files: list[FileStats]
    oversubscribed_starts: int  # 0 unless --jobs is more than the nodes can run in the window


def generate_dump(
    cluster_name: str,
    n_jobs: int,
    seed: int,
    start_date: str,
    end_date: str,
    out_dir: str,
    split: str = "month",
) -> DumpResult:
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
