"""Deterministic Kubernetes (OpenCost) and GPU telemetry (DCGM) inputs for tests and the demo.

``helios`` is a small on-prem inference cluster (see ``fleet``): OpenCost ``/allocation``
responses with one 24 h step map per day (pods + one ``__idle__`` entry per node) and, for a run
of consecutive days, Prometheus ``query_range`` dumps of dcgm-exporter's power, energy counter
and utilisation per GPU on a 240 s grid, labelled with the pod holding the GPU (one GPU is
time-sliced by two pods; one GPU's energy counter resets once). ``atlas`` telemetry covers some
of the atlas Slurm cluster's training jobs, read from its committed sacct dump (see ``atlas``).

Modules: fleet (nodes, workloads, pods, utilisation profiles), simulate (one day on the grid),
opencost (allocation JSON), prom (query_range dumps, energy counters), helios and atlas
(writers and EXPECTED.json parts). Standard library only; randomness comes from
``random.Random(<seed and a name>)`` streams, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import glob
import json
import os
from datetime import UTC, date, datetime

from . import atlas, helios
from .fleet import DAY_S, STEP_S
from .prom import MAX_GAP_S

K8S_NOTES = (
    "OpenCost /allocation responses (window=month, step=1d, aggregate=pod, idleByNode=true). "
    "Costs are USD with illustrative on-prem amortised prices; totals add the totalCost values "
    "as written (6 decimals). Pods plus idle rows add up to the nodes' cost. Pods without a team "
    "label are listed; low_gpu_efficiency_rows counts GPU pod rows with gpuEfficiency < 0.15."
)
TELEMETRY_NOTES = (
    "Prometheus query_range dumps of DCGM_FI_DEV_POWER_USAGE (W), "
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ counter) and DCGM_FI_DEV_GPU_UTIL (%), one file "
    "per UTC day, step 240 s. energy_kwh is what reporting.telemetry.gpu_intervals attributes "
    "(intervals <= 300 s, counter differences, the reset interval counted as the reading after "
    "the reset); gap_energy_kwh is the counter increase across longer pauses (atlas: between "
    "sampled job runs). pod_energy_kwh / no_pod_energy_kwh split it by whether a pod label is "
    "seen at either end of the interval. atlas jobs[].telemetry_energy_kwh is job_energy's "
    "result when given those jobs; points counts series points (what read_dcgm reads)."
)


def unix_day(text: str) -> int:
    return int(datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC).timestamp())


def _clean(folder: str, pattern: str) -> None:
    os.makedirs(folder, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(folder, pattern))):
        os.remove(path)


def write_expected(path: str, payload: dict) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
        handle.write("\n")


def generate_helios(
    seed: int, start: str, end: str, out: str, telemetry_out: str | None,
    telemetry_start: str, telemetry_days: int,
) -> tuple[dict, dict | None]:  # fmt: skip
    """OpenCost files into `out`, DCGM dumps into `telemetry_out` (None: no telemetry)."""
    _clean(out, "opencost-*.json")
    if telemetry_out is not None:
        _clean(telemetry_out, "dcgm-*.json")
    return helios.generate(
        seed, unix_day(start), unix_day(end), out, telemetry_out, unix_day(telemetry_start),
        telemetry_days,
    )  # fmt: skip


def generate_atlas(
    seed: int, sacct_path: str, bad_lines: set[int], first: str, last: str, timezone_name: str,
    out: str,
) -> dict:  # fmt: skip
    _clean(out, "dcgm-*.json")
    jobs = atlas.read_jobs(sacct_path, bad_lines, unix_day(first), unix_day(last), timezone_name)
    return {
        "sacct_file": os.path.basename(sacct_path),
        "job_rule": (
            f"plain pt-orca-7b-* h100 jobs on whole nodes starting {first} to {last} (UTC, "
            "end exclusive), final state not REQUEUED, run >= 2 h"
        ),
        **atlas.generate(seed, jobs, out),
    }


__all__ = [
    "DAY_S", "K8S_NOTES", "MAX_GAP_S", "STEP_S", "TELEMETRY_NOTES", "generate_atlas",
    "generate_helios", "write_expected",
]  # fmt: skip
