"""Synthesise a large ledger directly (not via the pipeline) for the report benchmark.

Rows are atlas Slurm runs as `greenops run` would attribute them: the real ledger schema
(reporting/schema.py) and partition layout (reporting/ledger.py: `day=YYYY-MM-DD/part-0.parquet`,
zstd, rows sorted by usage_id and slice start), the atlas factors resolved by the real
reporting/site_params.py and owners by the real rules of sample_logs/greenops.toml. The energy
model of reporting/energy.py prices each run; each run is split over the UTC days it ran on.

Runs are drawn per start day with numpy (seeded), and a day's partition is written as soon as no
later run can reach it (runs last at most a week), so memory holds about a week of rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting.config import Config
from reporting.owners import attribute_owners
from reporting.schema import LEDGER_SCHEMA
from reporting.site_params import parameters

DAY_S = 86_400
MAX_RUN_S = 7 * DAY_S  # atlas's longest time limit
SITE, SOURCE = "atlas", "slurm"
J0 = 4_812_000  # first job id, as the generator's atlas


@dataclass(frozen=True)
class Workload:
    """A kind of job: where it runs, who submits it, how big and how long it is."""

    weight: float
    partition: str
    account: str
    users: tuple[str, ...]
    names: tuple[str, ...]  # job-name stems; a run number is appended
    gpus: tuple[int, ...]  # GPUs per run (0: CPU job), drawn uniformly
    cpus_per_unit: int  # CPUs per GPU (per 8-core chunk for CPU jobs)
    mem_gb_per_unit: float
    median_s: float  # lognormal duration median
    gpu_util: tuple[float, float]  # beta-ish range of the mean GPU utilisation


WORKLOADS = (
    Workload(5.0, "h100", "pretrain", ("hbrook", "fmoss"), ("pt-orca-70b-r", "pt-orca-7b-r"),
             (8, 16, 32, 64), 14, 250.0, 30_000, (0.55, 0.95)),
    Workload(3.0, "cpu", "pretrain", ("hbrook",), ("prep-webtext-", "tok-orca-70b-"),
             (0,), 8, 32.0, 5_000, (0, 0)),
    Workload(11.0, "h100", "posttrain", ("eross", "jpark"), ("ft-orca-7b-chat-dpo-",
             "ft-orca-70b-chat-sft-"), (1, 2, 4, 8), 14, 250.0, 14_000, (0.35, 0.9)),
    Workload(11.0, "a100", "serving", ("gtan", "lchen"), ("serve-orca-7b-chat",
             "serve-orca-70b-chat", "inf-orca-7b-chat-batch-"), (1, 2, 4), 16, 125.0,
             6_000, (0.05, 0.7)),
    Workload(1.6, "a100", "evals", ("iwu",), ("eval-orca-7b-mmlu-", "eval-orca-70b-chat-gsm-"),
             (1, 2), 16, 125.0, 2_500, (0.2, 0.8)),
    Workload(9.5, "a100", "vision", ("kvoss", "mgarcia"), ("ft-heron-vit-", "pt-heron-vit-l-r"),
             (1, 2, 4, 8), 16, 125.0, 9_000, (0.3, 0.9)),
    Workload(9.0, "a100", "research", ("mgarcia", "ndiaz"), ("dev-", "sweep-lr-", "bash",
             "jupyter"), (1, 2), 16, 64.0, 4_000, (0.0, 0.5)),
    Workload(6.0, "cpu", "research", ("ndiaz", "okim"), ("dev-", "analysis-"), (0,), 8, 16.0,
             3_000, (0, 0)),
    Workload(3.0, "cpu", "misc", ("root", "svc-backup"), ("backup-", "rsync-"), (0,), 8, 8.0,
             1_800, (0, 0)),
)  # fmt: skip
STATES = ("COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
          "PREEMPTED", "REQUEUED")  # fmt: skip
STATE_P = (0.80, 0.09, 0.045, 0.04, 0.01, 0.005, 0.005, 0.005)
NEVER_STARTED = 0.018  # cancelled while pending: no start, no energy (energy_method none)


def _combos(config: Config) -> pd.DataFrame:
    """Every (workload, user, job-name stem) with its owners from the config's real rules."""
    rows = [
        {"workload": w, "partition": wl.partition, "account": wl.account, "user": u,
         "job_name": n, "comment": "", "wckey": ""}
        for w, wl in enumerate(WORKLOADS) for u in wl.users for n in wl.names
    ]  # fmt: skip
    frame = pd.DataFrame(rows)
    return attribute_owners(frame, config.owners)


def _params(config: Config) -> tuple[pd.DataFrame, list]:
    """Factor values per partition (with its GPU model) resolved by reporting/site_params.py."""
    keys = pd.DataFrame(
        {"site": SITE, "partition": ["h100", "a100", "cpu"],
         "gpu_model": ["H100-SXM5-80GB", "A100-SXM4-80GB", None]}
    )  # fmt: skip
    params, factors = parameters(keys, config)
    return pd.concat([keys, params], axis=1).set_index("partition"), factors


class Synth:
    """Draws runs for one start day at a time and hands back finished day partitions."""

    def __init__(self, config: Config, rows: int, days: int, first: date, seed: int):
        self.rng = np.random.default_rng(seed)
        self.combos = _combos(config)
        self.params, self.factors = _params(config)
        self.first, self.days = first, days
        self.end_s = self._epoch(first) + days * DAY_S
        weights = np.array([WORKLOADS[w].weight for w in self.combos["workload"]])
        self.combo_p = weights / weights.sum()
        # Runs of the last days are cut at the end, losing the slices they would spill over.
        slices = self._slices_per_run()
        self.runs_per_day = max(1, math.ceil(rows / (days * slices - (slices - 1))))
        self.next_job = J0
        self.pending: dict[int, list[pa.Table]] = {}

    @staticmethod
    def _epoch(day: date) -> int:
        return (day - date(1970, 1, 1)).days * DAY_S

    def _slices_per_run(self) -> float:
        """Mean days a run touches, estimated from a sample of the same draws."""
        sample = np.random.default_rng(0)
        combo = sample.choice(len(self.combos), 50_000, p=self.combo_p)
        duration = self._durations(sample, combo) * (sample.random(len(combo)) >= NEVER_STARTED)
        start = sample.integers(0, DAY_S, len(combo))
        return float(np.mean((start + np.maximum(duration, 1) - 1) // DAY_S + 1))

    def _durations(self, rng: np.random.Generator, combo: np.ndarray) -> np.ndarray:
        median = np.array([WORKLOADS[w].median_s for w in self.combos["workload"]])[combo]
        return np.minimum(rng.lognormal(np.log(median), 1.0), MAX_RUN_S).astype(np.int64)

    def days_written(self) -> Iterator[tuple[date, pa.Table]]:
        """(day, partition table) for each of the days, in order."""
        for index in range(self.days):
            self._add_runs(index)
            yield self.first + timedelta(index), self._finish(index)

    def _finish(self, index: int) -> pa.Table:
        table = pa.concat_tables(self.pending.pop(index))
        order = pc.sort_indices(table, [("usage_id", "ascending"), ("slice_start_at", "ascending")])
        return table.take(order)

    def _add_runs(self, index: int) -> None:
        runs = self._runs(index)
        for day, table in _slices(runs, self.end_s):
            self.pending.setdefault(day - self._epoch(self.first) // DAY_S, []).append(table)

    def _runs(self, index: int) -> dict[str, np.ndarray]:
        rng, n = self.rng, self.runs_per_day
        combo = rng.choice(len(self.combos), n, p=self.combo_p)
        c = self.combos.iloc[combo].reset_index(drop=True)
        w = [WORKLOADS[i] for i in c["workload"]]
        start = self._epoch(self.first) + index * DAY_S + np.sort(rng.integers(0, DAY_S, n))
        duration = self._durations(rng, combo)
        state = rng.choice(len(STATES), n, p=STATE_P)
        never = rng.random(n) < NEVER_STARTED
        duration = np.where(never, 0, np.minimum(duration, self.end_s - start))
        gpus = np.array([rng.choice(x.gpus) for x in w], dtype=np.float64)
        units = np.where(gpus > 0, gpus, rng.integers(1, 17, n))
        per_unit = np.array([x.cpus_per_unit for x in w])
        mem_per_unit = np.array([x.mem_gb_per_unit for x in w])
        lo, hi = np.array([x.gpu_util for x in w]).T
        jobs = np.arange(self.next_job, self.next_job + n)
        self.next_job += n
        return {
            "job": jobs, "submit": start - rng.integers(0, 3 * 3600, n), "start": start,
            "never": never, "duration": duration, "state": np.where(never, 1, state),
            "combo": c, "gpus": gpus, "cpus": units * per_unit, "mem": units * mem_per_unit,
            "gpu_util": np.where(gpus > 0, lo + (hi - lo) * rng.random(n), np.nan),
            "cpu_util": np.where(never, np.nan, rng.beta(1.2, 3.0, n).clip(0.01, 1.0)),
            "mem_used": np.where(never, np.nan, units * mem_per_unit * rng.beta(2, 3, n)),
            "timelimit": _timelimit(rng, duration, state),
            "params": self.params.loc[c["partition"]].reset_index(),
            "line": 2 + 3 * (jobs - J0),
        }  # fmt: skip


def _timelimit(rng: np.random.Generator, duration: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Requested limits: 1.2–3× the run in half hours (at most 7 days); TIMEOUT runs hit theirs."""
    half_hours = np.ceil(duration * rng.uniform(1.2, 3.0, len(duration)) / 1800).clip(1, 336)
    limit = np.where(state == STATES.index("TIMEOUT"), duration, half_hours * 1800.0)
    return np.where(rng.random(len(duration)) < 0.016, np.nan, limit)  # UNLIMITED


def _priced(r: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-run energy, carbon and cost: reporting/energy.py's model and the rate cards."""
    p = r["params"]
    hours = r["duration"] / 3600.0
    gpu_w = r["gpus"] * (p["gpu_min_w"].fillna(0) + r["gpu_util"] * (p["gpu_max_w"].fillna(0) - p["gpu_min_w"].fillna(0)))  # fmt: skip
    cpu_w = r["cpus"] * (p["cpu_min_w"] + np.nan_to_num(r["cpu_util"], nan=1.0) * (p["cpu_max_w"] - p["cpu_min_w"]))  # fmt: skip
    parts = {
        "gpu_energy_kwh": np.nan_to_num(gpu_w.to_numpy()) * hours / 1000,
        "cpu_energy_kwh": cpu_w.to_numpy() * hours / 1000,
        "memory_energy_kwh": r["mem"] * p["memory_w_per_gb"].to_numpy() * hours / 1000,
    }
    it = parts["gpu_energy_kwh"] + parts["cpu_energy_kwh"] + parts["memory_energy_kwh"]
    facility = it * p["pue"].to_numpy()
    gpu_hours, core_hours = r["gpus"] * hours, r["cpus"] * hours
    embodied = np.where(
        gpu_hours > 0, gpu_hours * p["embodied_kg_per_gpu_hour"], core_hours * p["embodied_kg_per_core_hour"]
    )  # fmt: skip
    cost = (gpu_hours * p["rate_gpu_hour"] + core_hours * p["rate_cpu_core_hour"]
            + r["mem"] * hours * p["rate_mem_gb_hour"] + facility * p["rate_energy_per_kwh"])  # fmt: skip
    return {
        **parts, "it_energy_kwh": it, "facility_energy_kwh": facility,
        "co2e_location_kg": facility * p["grid_intensity_g_per_kwh"].to_numpy() / 1000,
        "co2e_market_kg": facility * p["market_intensity_g_per_kwh"].to_numpy() / 1000,
        "co2e_embodied_kg": embodied, "cost": cost.to_numpy(), "gpu_hours": gpu_hours,
        "cpu_core_hours": core_hours,
    }  # fmt: skip


def _slices(r: dict[str, np.ndarray], end_s: int) -> Iterator[tuple[int, pa.Table]]:
    """The runs split over the UTC days they ran on, as ledger tables per day (epoch days)."""
    start, end = r["start"], r["start"] + r["duration"]
    first = start // DAY_S
    last = np.where(end > start, (end - 1) // DAY_S, start // DAY_S)
    n_days = last - first + 1
    run = np.repeat(np.arange(len(start)), n_days)
    offset = np.arange(len(run)) - np.repeat(np.cumsum(n_days) - n_days, n_days)
    day = first[run] + offset
    s_start = np.maximum(start[run], day * DAY_S)
    s_end = np.minimum(end[run], (day + 1) * DAY_S)
    window = (end - start)[run]
    ratio = np.where(window > 0, (s_end - s_start) / np.where(window > 0, window, 1), 1.0)
    columns = _columns(r, run, s_start, s_end, ratio)
    table = pa.table(columns, schema=pa.schema([f for f in LEDGER_SCHEMA if f.name != "day"]))
    for value in np.unique(day):
        yield int(value), table.filter(pa.array(day == value))


def _at_runs(values: object, run: np.ndarray, kind: pa.DataType | None = None) -> pa.Array:
    """A per-run value (array or sequence) repeated for each of the run's slices."""
    return pa.array(values, type=kind or pa.string(), from_pandas=True).take(pa.array(run))


def _usage_ids(r: dict) -> pa.Array:
    jobs = pc.cast(pa.array(r["job"]), pa.string())
    submit = pc.strftime(pa.array(r["submit"], type=UTC_S), format="%Y%m%dT%H%M%SZ")
    return pc.binary_join_element_wise(f"{SOURCE}:{SITE}:", jobs, ":", submit, "")


def _job_names(r: dict) -> pa.Array:
    stems = pa.array(r["combo"]["job_name"].to_numpy(), type=pa.string())
    numbered = pc.or_(pc.ends_with(stems, "-"), pc.ends_with(stems, "-r"))
    number = pc.cast(pa.array(r["job"] % 997), pa.string())
    return pc.binary_join_element_wise(stems, pc.if_else(numbered, number, ""), "")


UTC_S = pa.timestamp("s", tz="UTC")


def _columns(r: dict, run: np.ndarray, s_start: np.ndarray, s_end: np.ndarray,
             ratio: np.ndarray) -> dict[str, pa.Array]:  # fmt: skip
    """Every ledger column (but `day`) for the slices; linear quantities scaled by `ratio`."""
    c, p, priced, n_runs = r["combo"], r["params"], _priced(r), len(r["job"])
    gpu = r["gpus"] > 0
    none = r["duration"] == 0
    months = pd.Series(pd.to_datetime(r["start"], unit="s")).dt.strftime("%Y-%m")
    start = np.where(r["never"], np.nan, r["start"])
    texts = {
        "usage_id": _usage_ids(r).take(pa.array(run)),
        "source": SOURCE, "source_file": ("data/sacct-" + months + ".psv").to_numpy(),
        "site": SITE, "partition": c["partition"].to_numpy(), "user": c["user"].to_numpy(),
        "account": c["account"].to_numpy(), "job_name": _job_names(r).take(pa.array(run)),
        "state": np.array(STATES)[r["state"]], "gpu_model": np.where(gpu, p["gpu_model"], None),
        "team": c["team"].to_numpy(), "model": c["model"].to_numpy(),
        "phase": c["phase"].to_numpy(), "owner": c["owner"].to_numpy(),
        "energy_method": np.where(none, "none", "modelled"), "grid_zone": p["grid_zone"].to_numpy(),
        "grid_factor_id": p["grid_factor_id"].to_numpy(),
        "market_factor_id": p["market_factor_id"].to_numpy(), "currency": p["currency"].to_numpy(),
        "cost_basis": "rate card", "scope": "2",
        "gpu_power_factor_id": np.where(gpu & ~none, p["gpu_power_factor_id"], None),
        "cpu_power_factor_id": np.where(none, None, p["cpu_power_factor_id"]),
        "memory_factor_id": np.where(none, None, p["memory_factor_id"]),
        "pue_factor_id": p["pue_factor_id"].to_numpy(),
        "embodied_factor_id": np.where(gpu, p["embodied_gpu_factor_id"], p["embodied_cpu_factor_id"]),
        "rate_card_id": p["rate_card_id"].to_numpy(), "run_id": ("batch-synth-" + months).to_numpy(),
    }  # fmt: skip
    numbers = {
        "line": r["line"], "duration_s": r["duration"].astype(float), "n_nodes": np.maximum(1, r["gpus"] // 8),
        "n_cpus": r["cpus"].astype(float), "n_gpus": r["gpus"], "gpu_util_ratio": r["gpu_util"],
        "cpu_util_ratio": r["cpu_util"], "mem_requested_gb": r["mem"], "mem_used_max_gb": r["mem_used"],
        "timelimit_s": r["timelimit"], "pue": p["pue"].to_numpy(),
        "telemetry_coverage_ratio": np.where(gpu, 0.0, np.nan),
        "grid_intensity_g_per_kwh": p["grid_intensity_g_per_kwh"].to_numpy(),
        "market_intensity_g_per_kwh": p["market_intensity_g_per_kwh"].to_numpy(),
    }  # fmt: skip
    columns: dict[str, pa.Array] = {}
    for field in LEDGER_SCHEMA:
        name = field.name
        if name in texts:
            value = texts[name]
            if isinstance(value, pa.Array):
                columns[name] = value
            else:
                value = np.full(n_runs, value, dtype=object) if isinstance(value, str) else value
                columns[name] = _at_runs(value, run)
        elif name in numbers:
            columns[name] = _at_runs(numbers[name], run, field.type)
        elif name in priced:
            columns[name] = pa.array(priced[name][run] * ratio, type=field.type)
        elif name in ("gpu_energy_telemetry_kwh", "idle_gpu_hours", "idle_gpu_energy_kwh"):
            columns[name] = pa.array(np.zeros(len(run)))
        elif name == "started_at":
            columns[name] = pa.array(start[run], from_pandas=True).cast(pa.int64()).cast(UTC_S)
        elif name == "ended_at":
            columns[name] = pa.array(r["start"] + r["duration"], type=UTC_S).take(pa.array(run))
        elif name in ("slice_start_at", "slice_end_at"):
            columns[name] = pa.array(s_start if name == "slice_start_at" else s_end, type=UTC_S)
        elif name == "slice_ratio":
            columns[name] = pa.array(ratio)
        elif name != "day":
            columns[name] = pa.nulls(len(run), field.type)
    return columns
