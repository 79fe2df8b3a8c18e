"""Measured GPU energy from DCGM samples, attributed to pods and to Slurm jobs.

1. `gpu_intervals`: energy per GPU between consecutive scrapes. A device's value is counted once
   per timestamp (time-sliced GPUs repeat the identical device value for every pod). With the
   `energy_mj` counter: the difference of consecutive readings; a negative difference is a counter
   reset (reboot, driver reload) and the new reading is the energy since the reset, as
   Prometheus `increase()` does (`counter_reset` marks it). Without a counter: power integrated
   by the trapezoid rule. An interval longer than `max_gap_s` is not attributed: it goes to the
   `gaps` table (with the counter's energy when known, so nothing is silently lost).
2. `pod_energy`: each interval is split equally among the pods that report the device at the
   interval's start or end; intervals with no pod label are kept with pod None.
3. `job_energy`: a Slurm job gets, for every interval of a GPU on one of its nodes that overlaps
   its run, energy × overlap share × g / max(G, Σg): g the job's GPUs per node, G the host's GPUs
   seen in telemetry, Σg the GPUs of all jobs overlapping that interval on the host. sacct rarely
   says which GPU index a job had, so a host's GPUs are shared by GPU count.
4. `coverage_status`: "telemetry" when coverage ≥ 0.99, "modelled; partial telemetry" when some,
   "modelled" when none; `blend_gpu_energy` fills the uncovered share with the modelled term.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

MAX_GAP_S = 300.0
COMPLETE_COVERAGE = 0.99
MJ_PER_KWH = 3.6e9
J_PER_KWH = 3.6e6
INTERVAL_COLUMNS = [
    "host", "device", "gpu", "uuid", "model", "start", "end", "duration_s", "energy_kwh",
    "method", "counter_reset", "gpu_util_ratio",
]  # fmt: skip
TELEMETRY_COLUMNS = [
    "usage_id", "telemetry_gpu_energy_kwh", "coverage_ratio", "telemetry_gpu_util_ratio",
]  # fmt: skip


def device_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """One value per (host, device, metric, timestamp): pod copies of a device value dropped."""
    frame = samples.assign(device=samples["uuid"].fillna("gpu" + samples["gpu"].astype(str)))
    return frame.drop_duplicates(["host", "device", "metric", "timestamp"], keep="first")


def gpu_intervals(
    samples: pd.DataFrame, *, max_gap_s: float = MAX_GAP_S
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(intervals, gaps) per GPU: see the module docstring."""
    values = device_samples(samples)
    parts = []
    for (_host, _device), group in values.groupby(["host", "device"], sort=True):
        counter = group[group["metric"] == "energy_mj"].sort_values("timestamp")
        if len(counter) >= 2:
            parts.append(_counter_intervals(counter))
        else:
            power = group[group["metric"] == "power_w"].sort_values("timestamp")
            parts.append(_power_intervals(power))
    frame = pd.concat(parts, ignore_index=True) if parts else _empty_intervals()
    frame = _with_util(frame, values)
    long = frame["duration_s"] > max_gap_s
    return frame[~long].reset_index(drop=True), frame[long].reset_index(drop=True)


def _pairs(series: pd.DataFrame) -> pd.DataFrame:
    first = series.iloc[:-1].reset_index(drop=True)
    second = series.iloc[1:].reset_index(drop=True)
    return pd.DataFrame(
        {
            "host": first["host"],
            "device": first["device"],
            "gpu": first["gpu"],
            "uuid": first["uuid"],
            "model": first["model"],
            "start": first["timestamp"],
            "end": second["timestamp"],
            "duration_s": (second["timestamp"] - first["timestamp"]).dt.total_seconds(),
            "v0": first["value"].to_numpy(),
            "v1": second["value"].to_numpy(),
        }
    )


def _counter_intervals(counter: pd.DataFrame) -> pd.DataFrame:
    pairs = _pairs(counter)
    delta = pairs["v1"] - pairs["v0"]
    reset = delta < 0
    energy_mj = delta.where(~reset, pairs["v1"])
    return pairs.assign(
        energy_kwh=energy_mj / MJ_PER_KWH, method="dcgm:energy_counter", counter_reset=reset
    )


def _power_intervals(power: pd.DataFrame) -> pd.DataFrame:
    if len(power) < 2:
        return _empty_intervals()
    pairs = _pairs(power)
    joules = (pairs["v0"] + pairs["v1"]) / 2 * pairs["duration_s"]
    return pairs.assign(energy_kwh=joules / J_PER_KWH, method="dcgm:power", counter_reset=False)


def _empty_intervals() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in INTERVAL_COLUMNS})
    for column in ("start", "end"):
        frame[column] = frame[column].astype("datetime64[ms, UTC]")
    for column in ("duration_s", "energy_kwh", "gpu_util_ratio"):
        frame[column] = frame[column].astype("float64")
    return frame


def _with_util(intervals: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """Mean of the utilisation at the interval's two ends: GPU_UTIL % / 100, else GR_ENGINE."""
    util = values[values["metric"].isin(["gpu_util_pct", "gr_engine_active_ratio"])]
    ratio = util["value"].where(util["metric"] != "gpu_util_pct", util["value"] / 100.0)
    util = util.assign(ratio=ratio, pct_first=util["metric"] != "gpu_util_pct")
    util = util.sort_values("pct_first").drop_duplicates(["host", "device", "timestamp"])
    lookup = util.set_index(["host", "device", "timestamp"])["ratio"]
    ends = []
    for column in ("start", "end"):
        keys = pd.MultiIndex.from_arrays(
            [intervals["host"], intervals["device"], intervals[column]]
        )
        ends.append(lookup.reindex(keys).to_numpy())
    mean = pd.DataFrame({"a": ends[0], "b": ends[1]}).mean(axis=1)
    out = intervals.assign(gpu_util_ratio=mean.to_numpy(dtype="float64"))
    return out[INTERVAL_COLUMNS]


# ---- pods ----------------------------------------------------------------------------------


def pod_energy(intervals: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """Each interval's energy split equally among the pods reporting its GPU at either end.

    Columns: namespace, pod, host, device, start, end, duration_s, shared_by, energy_kwh,
    gpu_util_ratio. Intervals without any pod label keep namespace/pod None.
    """
    seen = samples[samples["pod"].notna()].assign(
        device=samples["uuid"].fillna("gpu" + samples["gpu"].astype(str))
    )
    seen = seen[["host", "device", "timestamp", "namespace", "pod"]].drop_duplicates()
    keyed = intervals.reset_index(names="interval")
    at_start = keyed.merge(
        seen, left_on=["host", "device", "start"], right_on=["host", "device", "timestamp"]
    )
    at_end = keyed.merge(
        seen, left_on=["host", "device", "end"], right_on=["host", "device", "timestamp"]
    )
    pods = pd.concat([at_start, at_end])[["interval", "namespace", "pod"]].drop_duplicates()
    pods["shared_by"] = pods.groupby("interval")["pod"].transform("size")
    out = keyed.merge(pods, on="interval", how="left")
    out["shared_by"] = out["shared_by"].fillna(1).astype("int64")
    out["energy_kwh"] = out["energy_kwh"] / out["shared_by"]
    columns = ["namespace", "pod", "host", "device", "start", "end", "duration_s", "shared_by"]
    return out[[*columns, "energy_kwh", "gpu_util_ratio"]]


def telemetry_for_pods(usage: pd.DataFrame, pods: pd.DataFrame) -> pd.DataFrame:
    """TELEMETRY_COLUMNS for pod usage rows (namespace + job_name = pod), by time overlap."""
    rows = []
    for row in usage[usage["n_gpus"].fillna(0) > 0].itertuples(index=False):
        mine = pods[(pods["namespace"] == row.namespace) & (pods["pod"] == row.job_name)]
        share = _overlap_share(mine, row.started_at, row.ended_at)
        gpu_seconds = (row.n_gpus or 0) * (row.ended_at - row.started_at).total_seconds()
        rows.append(_summary(row.usage_id, mine, share, share * mine["duration_s"], gpu_seconds))
    return pd.DataFrame(rows, columns=TELEMETRY_COLUMNS)


# ---- Slurm jobs ----------------------------------------------------------------------------


def expand_hostlist(hostlist: str | None) -> list[str]:
    """Slurm hostlist → host names: `gpu[01-03,07],cpu1` → gpu01 gpu02 gpu03 gpu07 cpu1."""
    if not isinstance(hostlist, str) or hostlist.strip() in ("", "None", "(null)"):
        return []
    hosts: list[str] = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\][^,\[]*)*", hostlist):
        hosts.extend(_expand_one(part.strip()))
    return hosts


def _expand_one(pattern: str) -> list[str]:
    match = re.search(r"\[([^\]]*)\]", pattern)
    if not match:
        return [pattern] if pattern else []
    head, tail = pattern[: match.start()], pattern[match.end() :]
    names = []
    for item in match.group(1).split(","):
        low, _, high = item.partition("-")
        numbers = range(int(low), int(high or low) + 1) if low.isdigit() else []
        width = len(low)
        values = [str(n).zfill(width) for n in numbers] if numbers else [item]
        names.extend(head + value for value in values)
    return [name + rest for name in names for rest in _expand_one(tail) or [""]]


def job_energy(usage: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """TELEMETRY_COLUMNS for Slurm GPU jobs: see the module docstring (3)."""
    jobs = _job_hosts(usage)
    devices = intervals.groupby("host")["device"].nunique()
    hits = _job_interval_hits(jobs, intervals)
    rows = []
    for job in jobs.itertuples(index=False):
        mine = hits[hits["usage_id"] == job.usage_id]
        gpu_seconds = job.n_gpus * (job.ended_at - job.started_at).total_seconds()
        if mine.empty:
            rows.append(_summary(job.usage_id, mine, pd.Series(dtype=float), 0.0, gpu_seconds))
            continue
        host_gpus = mine["host"].map(devices).astype("float64")
        share = mine["g"] / np.maximum(host_gpus, mine["sum_g"]) * mine["overlap"]
        rows.append(_summary(job.usage_id, mine, share, share * mine["duration_s"], gpu_seconds))
    return pd.DataFrame(rows, columns=TELEMETRY_COLUMNS)


def _job_hosts(usage: pd.DataFrame) -> pd.DataFrame:
    jobs = usage[(usage["n_gpus"].fillna(0) > 0) & usage["ended_at"].notna()].copy()
    jobs["hosts"] = jobs["node_list"].map(expand_hostlist)
    jobs = jobs[jobs["hosts"].map(len) > 0]
    jobs["g"] = jobs["n_gpus"] / jobs["hosts"].map(len)
    return jobs[["usage_id", "started_at", "ended_at", "n_gpus", "hosts", "g"]]


def _job_interval_hits(jobs: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """(job, interval) pairs on a shared host with time overlap (as a share of the interval)."""
    per_host = jobs.explode("hosts").rename(columns={"hosts": "host"})
    pairs = per_host.merge(intervals.reset_index(names="interval"), on="host")
    lo = np.maximum(pairs["start"], pairs["started_at"])
    hi = np.minimum(pairs["end"], pairs["ended_at"])
    overlap_s = (hi - lo).dt.total_seconds()
    pairs = pairs[overlap_s > 0].assign(overlap=overlap_s / pairs["duration_s"])
    pairs["sum_g"] = pairs.groupby("interval")["g"].transform("sum")
    return pairs


def _overlap_share(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    if frame.empty:  # no telemetry for this row: an empty selection loses its datetime dtype
        return pd.Series(dtype="float64")
    lo = np.maximum(frame["start"], start)
    hi = np.minimum(frame["end"], end)
    seconds = (hi - lo).dt.total_seconds().clip(lower=0)
    return (seconds / frame["duration_s"]).where(frame["duration_s"] > 0, 0.0)


def _summary(
    usage_id: str, frame: pd.DataFrame, share: pd.Series, covered_s: pd.Series | float,
    gpu_seconds: float,
) -> dict[str, object]:  # fmt: skip
    """A TELEMETRY row: energy share of each interval, covered GPU-seconds, weighted util."""
    if frame.empty:
        return dict(zip(TELEMETRY_COLUMNS, [usage_id, 0.0, 0.0, np.nan], strict=True))
    energy = float((frame["energy_kwh"] * share).sum())
    covered = float(np.sum(covered_s))
    util = frame["gpu_util_ratio"]
    weights = (share * frame["duration_s"]).where(util.notna(), 0.0)
    mean_util = float((util.fillna(0) * weights).sum() / weights.sum()) if weights.sum() else np.nan
    coverage = min(covered / gpu_seconds, 1.0) if gpu_seconds > 0 else 0.0
    return dict(zip(TELEMETRY_COLUMNS, [usage_id, energy, coverage, mean_util], strict=True))


# ---- energy hierarchy ----------------------------------------------------------------------


def coverage_status(coverage_ratio: pd.Series) -> pd.Series:
    """'telemetry' (≥ 0.99), 'modelled; partial telemetry' (> 0) or 'modelled'."""
    status = pd.Series("modelled", index=coverage_ratio.index, dtype=object)
    status = status.where(~(coverage_ratio.fillna(0) > 0), "modelled; partial telemetry")
    return status.where(~(coverage_ratio.fillna(0) >= COMPLETE_COVERAGE), "telemetry")


def blend_gpu_energy(
    modelled_kwh: pd.Series, telemetry_kwh: pd.Series, coverage_ratio: pd.Series
) -> pd.Series:
    """GPU energy: telemetry where complete; else telemetry + model × uncovered share."""
    coverage = coverage_ratio.fillna(0).clip(0, 1)
    measured = telemetry_kwh.fillna(0)
    partial = measured + modelled_kwh * (1 - coverage)
    return measured.where(coverage >= COMPLETE_COVERAGE, partial)
