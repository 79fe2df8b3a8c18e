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
4. `blend_gpu_energy`: telemetry alone when coverage ≥ 0.99 (energy_method "telemetry"), else the
   telemetry plus the modelled term for the uncovered share.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd

log = logging.getLogger("reporting")

MAX_GAP_S = 300.0
COMPLETE_COVERAGE = 0.99
MJ_PER_KWH = 3.6e9
J_PER_KWH = 3.6e6
INTERVAL_COLUMNS = [
    "host", "device", "gpu", "uuid", "model", "start", "end", "duration_s", "energy_kwh",
    "method", "counter_reset", "gpu_util_ratio",
]  # fmt: skip
IDLE_UTIL_RATIO = 0.01  # an interval at or below this GPU utilisation counts as idle
TELEMETRY_COLUMNS = [
    "usage_id", "telemetry_gpu_energy_kwh", "coverage_ratio", "telemetry_gpu_util_ratio",
    "telemetry_idle_gpu_s", "telemetry_idle_energy_kwh",
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


def telemetry_for_pods(
    usage: pd.DataFrame, pods: pd.DataFrame, idle_util_ratio: float = IDLE_UTIL_RATIO
) -> pd.DataFrame:
    """TELEMETRY_COLUMNS for pod usage rows (namespace + job_name = pod), by time overlap."""
    rows = _gpu_rows(usage)
    keyed = rows[["usage_id", "namespace", "job_name", "started_at", "ended_at"]]
    hits = keyed.merge(
        pods[pods["pod"].notna()], left_on=["namespace", "job_name"], right_on=["namespace", "pod"]
    )
    if not hits.empty:
        hits = hits.assign(share=_overlap(hits) / hits["duration_s"].where(hits["duration_s"] > 0))
    return _aggregate(rows, hits, idle_util_ratio)


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


def job_energy(
    usage: pd.DataFrame, intervals: pd.DataFrame, idle_util_ratio: float = IDLE_UTIL_RATIO
) -> pd.DataFrame:
    """TELEMETRY_COLUMNS for Slurm GPU jobs: see the module docstring (3)."""
    jobs = _job_hosts(usage)
    hits = _job_interval_hits(jobs, intervals)
    if not hits.empty:
        host_gpus = hits["host"].map(intervals.groupby("host")["device"].nunique())
        hits = hits.assign(
            share=hits["g"]
            / np.maximum(host_gpus.astype("float64"), hits["sum_g"])
            * hits["overlap"]
        )
    return _aggregate(jobs, hits, idle_util_ratio)


def _job_hosts(usage: pd.DataFrame) -> pd.DataFrame:
    jobs = usage[(usage["n_gpus"].fillna(0) > 0) & usage["ended_at"].notna()].copy()
    jobs["hosts"] = jobs["node_list"].map(expand_hostlist)
    jobs = jobs[jobs["hosts"].map(len) > 0]
    jobs["g"] = jobs["n_gpus"] / jobs["hosts"].map(len)
    return jobs[["usage_id", "started_at", "ended_at", "n_gpus", "hosts", "g"]]


def _job_interval_hits(jobs: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """(job, interval) pairs on a shared host with time overlap (as a share of the interval)."""
    per_host = _by_day(
        jobs.explode("hosts").rename(columns={"hosts": "host"}), "started_at", "ended_at"
    )
    keyed = _by_day(intervals.reset_index(names="interval"), "start", "end")
    # Joined per host and UTC day, so a quarter of jobs never meets a week of samples whole.
    pairs = per_host.merge(keyed, on=["host", "bucket"]).drop_duplicates(["usage_id", "interval"])
    overlap_s = _overlap(pairs)
    pairs = pairs[overlap_s > 0].assign(overlap=overlap_s / pairs["duration_s"])
    pairs["sum_g"] = pairs.groupby("interval")["g"].transform("sum")
    return pairs


def _by_day(frame: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """One row per UTC day each row touches, in `bucket` (days since the epoch)."""
    frame = frame.reset_index(drop=True)
    first = frame[start].dt.floor("D")
    days = ((frame[end].dt.floor("D") - first).dt.days + 1).clip(lower=1).astype("int64")
    out = frame.loc[frame.index.repeat(days)]
    offsets = np.concatenate([np.arange(n) for n in days]) if len(days) else np.array([], "int64")
    epoch_days = ((first - pd.Timestamp(0, tz="UTC")).dt.days.to_numpy()).repeat(days)
    return out.assign(bucket=epoch_days + offsets).reset_index(drop=True)


def _gpu_rows(usage: pd.DataFrame) -> pd.DataFrame:
    return usage[(usage["n_gpus"].fillna(0) > 0) & usage["ended_at"].notna()]


def _overlap(frame: pd.DataFrame) -> pd.Series:
    """Seconds of each interval inside its row's run (started_at, ended_at), at least 0."""
    return _overlap_s(frame["start"], frame["end"], frame["started_at"], frame["ended_at"])


def _overlap_s(
    start: pd.Series, end: pd.Series, other_start: pd.Series, other_end: pd.Series
) -> pd.Series:
    # Series.where, not np.maximum: numpy ufuncs turn tz-aware times into slow object arrays.
    lo = start.where(start > other_start, other_start)
    hi = end.where(end < other_end, other_end)
    return (hi - lo).dt.total_seconds().clip(lower=0)


def _aggregate(rows: pd.DataFrame, hits: pd.DataFrame, idle_util_ratio: float) -> pd.DataFrame:
    """Per usage row: Σ energy × share, covered GPU-seconds Σ share × duration (÷ the row's
    GPU-seconds = coverage), time-weighted utilisation, and the GPU-seconds and energy of
    intervals at or below `idle_util_ratio`. Rows without telemetry get zero coverage."""
    gpu_seconds = (
        rows.set_index("usage_id")["n_gpus"]
        * (rows["ended_at"] - rows["started_at"]).dt.total_seconds().to_numpy()
    )
    out = pd.DataFrame({"usage_id": gpu_seconds.index}).set_index("usage_id")
    if hits.empty:
        sums = pd.DataFrame(index=out.index, columns=["energy", "covered", "util_w", "util_s",
                                                      "idle_s", "idle_kwh"], dtype="float64")  # fmt: skip
    else:
        share = hits["share"].fillna(0.0)
        seconds = share * hits["duration_s"]
        util = hits["gpu_util_ratio"]
        idle = util.notna() & (util <= idle_util_ratio)
        parts = pd.DataFrame({
            "usage_id": hits["usage_id"], "energy": hits["energy_kwh"] * share,
            "covered": seconds, "util_w": (util * seconds).fillna(0.0),
            "util_s": seconds.where(util.notna(), 0.0), "idle_s": seconds.where(idle, 0.0),
            "idle_kwh": (hits["energy_kwh"] * share).where(idle, 0.0),
        })  # fmt: skip
        sums = parts.groupby("usage_id").sum().reindex(out.index)
    sums = sums.fillna(0.0)
    coverage = (sums["covered"] / gpu_seconds).where(gpu_seconds > 0, 0.0).clip(upper=1.0)
    result = pd.DataFrame({
        "usage_id": out.index, "telemetry_gpu_energy_kwh": sums["energy"].to_numpy(),
        "coverage_ratio": coverage.to_numpy(dtype="float64"),
        "telemetry_gpu_util_ratio": (sums["util_w"] / sums["util_s"].where(sums["util_s"] > 0)).to_numpy(),
        "telemetry_idle_gpu_s": sums["idle_s"].to_numpy(),
        "telemetry_idle_energy_kwh": sums["idle_kwh"].to_numpy(),
    })  # fmt: skip
    return result[TELEMETRY_COLUMNS].reset_index(drop=True)


def usage_telemetry(
    runs: pd.DataFrame, samples: pd.DataFrame, idle_util_ratio: float = IDLE_UTIL_RATIO
) -> pd.DataFrame:
    """TELEMETRY_COLUMNS for the GPU runs of each site with samples: OpenCost pods by their
    pod labels, other runs (Slurm jobs) by host and time."""
    parts = [pd.DataFrame(columns=TELEMETRY_COLUMNS)]
    for site, site_samples in samples.groupby("site", sort=True):
        mine = runs[runs["site"] == site]
        if mine.empty:
            continue
        intervals, gaps = gpu_intervals(site_samples)
        if not gaps.empty:
            log.info("%s telemetry: %s pauses longer than %.0f s (%.1f kWh by the counters) are "
                     "not attributed; the model fills those hours", site, len(gaps), MAX_GAP_S,
                     gaps["energy_kwh"].sum())  # fmt: skip
        pods = mine["source"] == "opencost"
        if pods.any():
            energy = pod_energy(intervals, site_samples)
            parts.append(telemetry_for_pods(mine[pods], energy, idle_util_ratio))
        if (~pods).any():
            parts.append(job_energy(mine[~pods], intervals, idle_util_ratio))
    found = [p for p in parts if not p.empty]
    return pd.concat(found, ignore_index=True) if found else parts[0]


# ---- energy hierarchy ----------------------------------------------------------------------


def blend_gpu_energy(
    modelled_kwh: pd.Series, telemetry_kwh: pd.Series, coverage_ratio: pd.Series
) -> pd.Series:
    """GPU energy: telemetry where complete; else telemetry + model × uncovered share."""
    coverage = coverage_ratio.fillna(0).clip(0, 1)
    measured = telemetry_kwh.fillna(0)
    partial = measured + modelled_kwh * (1 - coverage)
    return measured.where(coverage >= COMPLETE_COVERAGE, partial)
