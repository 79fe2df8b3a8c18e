"""The canonical tables between stages: column names (ending in their unit) and their types.

`usage` — one row per unit of consumed compute (a Slurm job run), from ingest.
`ledger` — one row per usage row and UTC day it ran on, after attribution; stored as parquet.
`quarantine` — every rejected input line, with the check that failed and why.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

QUARANTINE_COLUMNS = ["source_file", "line", "raw", "check", "reason"]
# Optional column a reader may add to its quarantine rows: what the row would have carried, as
# far as its fields could be read ({"cost", "currency"} for a billing line, {"usage": {...}} for a
# run). The validate stage turns it into per-file estimates and drops it: it is never stored.
CARRIED = "carried"

# One row per policy breach of one run; finding_id is stable across nights (rule + usage_id).
FINDING_COLUMNS = [
    "finding_id", "rule", "severity", "usage_id", "site", "user", "account", "job_name",
    "owner", "team", "model", "phase", "measured_value", "threshold", "wasted_gpu_hours",
    "wasted_energy_kwh", "wasted_cost", "currency", "wasted_co2e_kg", "waste_formula",
    "message", "action", "first_seen", "ended_at",
]  # fmt: skip

USAGE_COLUMNS = [
    "usage_id",
    "source",
    "source_file",
    "line",
    "lines_merged",
    "site",
    "partition",
    "submitted_at",
    "started_at",
    "ended_at",
    "duration_s",
    "user",
    "account",
    "namespace",
    "job_name",
    "comment",
    "wckey",
    "state",
    "node_list",
    "n_nodes",
    "n_cpus",
    "n_gpus",
    "gpu_type",
    "gpu_model",
    "mem_requested_gb",
    "mem_used_max_gb",
    "cpu_time_s",
    "cpu_util_ratio",
    "gpu_util_ratio",
    "timelimit_s",
    "measured_energy_kwh",
    "measured_energy_source",
]

_STR = pa.string()
_F64 = pa.float64()
_UTC = pa.timestamp("s", tz="UTC")

LEDGER_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("usage_id", _STR),
        ("source", _STR),
        ("source_file", _STR),
        ("line", pa.int64()),
        ("site", _STR),
        ("partition", _STR),
        ("user", _STR),
        ("account", _STR),
        ("job_name", _STR),
        ("namespace", _STR),  # Kubernetes pods: their namespace
        ("workload", _STR),  # Kubernetes pods: the controller (deployment, job) they belong to
        ("state", _STR),
        ("started_at", _UTC),
        ("ended_at", _UTC),
        ("slice_start_at", _UTC),
        ("slice_end_at", _UTC),
        ("slice_ratio", _F64),
        ("duration_s", _F64),
        ("n_nodes", _F64),
        ("n_cpus", _F64),
        ("n_gpus", _F64),
        ("gpu_model", _STR),
        ("gpu_hours", _F64),
        ("cpu_core_hours", _F64),
        ("gpu_util_ratio", _F64),
        ("cpu_util_ratio", _F64),
        ("mem_requested_gb", _F64),
        ("mem_used_max_gb", _F64),
        ("timelimit_s", _F64),
        ("team", _STR),
        ("model", _STR),
        ("phase", _STR),
        ("owner", _STR),
        ("it_energy_kwh", _F64),
        ("gpu_energy_kwh", _F64),
        ("cpu_energy_kwh", _F64),
        ("memory_energy_kwh", _F64),
        ("gpu_energy_telemetry_kwh", _F64),  # IT kWh of the GPUs measured by DCGM
        ("telemetry_coverage_ratio", _F64),  # share of the run's GPU-time DCGM covered
        ("idle_gpu_hours", _F64),  # GPU-hours DCGM saw at or below the idle utilisation
        ("idle_gpu_energy_kwh", _F64),  # IT kWh of those idle GPU-hours (measured)
        ("pue", _F64),
        ("facility_energy_kwh", _F64),
        ("energy_method", _STR),
        ("energy_note", _STR),
        ("grid_zone", _STR),
        ("grid_intensity_g_per_kwh", _F64),
        ("grid_factor_id", _STR),
        ("market_intensity_g_per_kwh", _F64),
        ("market_factor_id", _STR),
        ("co2e_location_kg", _F64),
        ("co2e_market_kg", _F64),
        ("co2e_embodied_kg", _F64),
        ("cost", _F64),
        ("currency", _STR),
        ("cost_basis", _STR),
        ("scope", _STR),
        ("gpu_power_factor_id", _STR),
        ("cpu_power_factor_id", _STR),
        ("memory_factor_id", _STR),
        ("gpu_util_factor_id", _STR),
        ("cpu_util_factor_id", _STR),
        ("energy_check_factor_id", _STR),
        ("pue_factor_id", _STR),
        ("embodied_factor_id", _STR),
        ("rate_card_id", _STR),
        # cloud billing lines (None on cluster rows)
        ("provider", _STR),
        ("service_name", _STR),
        ("region_id", _STR),
        ("resource_type", _STR),
        ("charge_category", _STR),
        ("pricing_category", _STR),
        ("commitment_status", _STR),
        ("energy_class", _STR),  # compute, storage_ssd, storage_hdd, network, memory, unknown, none
        ("tags", _STR),  # JSON object text
        ("resource_id", _STR),  # cloud lines: the resource; pods: their node's provider ID
        ("billed_cost", _F64),
        ("effective_cost", _F64),
        ("billing_period", _STR),  # restatement key: family|billing account|period start
        ("run_id", _STR),
    ]
)
LEDGER_COLUMNS = LEDGER_SCHEMA.names


def quarantine_frame(
    *,
    source_file: str | Sequence[str],
    line: Sequence[int],
    raw: Sequence[str],
    check: str | Sequence[str],
    reason: str | Sequence[str],
) -> pd.DataFrame:
    """A quarantine table; scalar arguments are repeated for every row."""
    n = len(line)

    def column(value: str | Sequence[str]) -> list[str]:
        return [value] * n if isinstance(value, str) else list(value)

    return pd.DataFrame(
        {
            "source_file": column(source_file),
            "line": pd.array(list(line), dtype="int64"),
            "raw": column(raw) if not isinstance(raw, str) else [raw] * n,
            "check": column(check),
            "reason": column(reason),
        },
        columns=QUARANTINE_COLUMNS,
    )


_USAGE_TIMES = ("submitted_at", "started_at", "ended_at")
_USAGE_NUMBERS = (
    "duration_s", "n_nodes", "n_cpus", "n_gpus", "mem_requested_gb", "mem_used_max_gb",
    "cpu_time_s", "cpu_util_ratio", "gpu_util_ratio", "timelimit_s", "measured_energy_kwh",
)  # fmt: skip


def empty_usage() -> pd.DataFrame:
    """A usage table with no rows and the column types readers produce."""
    columns: dict[str, pd.Series] = {}
    for name in [*USAGE_COLUMNS, "raw"]:
        if name in _USAGE_TIMES:
            columns[name] = pd.Series(dtype="datetime64[s, UTC]")
        elif name in _USAGE_NUMBERS:
            columns[name] = pd.Series(dtype="float64")
        elif name in ("line", "lines_merged"):
            columns[name] = pd.Series(dtype="int64")
        else:
            columns[name] = pd.Series(dtype=object)
    return pd.DataFrame(columns)


def empty_quarantine() -> pd.DataFrame:
    return quarantine_frame(source_file=[], line=[], raw=[], check=[], reason=[])
