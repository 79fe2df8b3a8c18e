"""IT energy of usage rows: measured when plausible, else modelled from allocation × power model.

Modelled power (W) of a run, per DESIGN §3:
    GPUs   n_gpus × (W_min + u_gpu × (W_max − W_min))   u_gpu from Slurm GPU accounting, else default
    CPUs   n_cpus × (W_min + u_cpu × (W_max − W_min))   u_cpu = TotalCPU / (Elapsed × NCPUS)
    memory mem_requested_gb × W per GB
Measured energy (Slurm ConsumedEnergyRaw) is used when its mean power per node is above 0 and
below the plausibility limit; otherwise GPU energy measured by DCGM telemetry replaces the
modelled GPU term where it covers the run (partly covered runs are filled by the model), and
the row says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reporting.telemetry import COMPLETE_COVERAGE, blend_gpu_energy

S_PER_HOUR = 3_600
WH_PER_KWH = 1_000

ENERGY_METHODS = ("measured", "telemetry", "modelled", "extrapolated", "none")


def modelled_power_w(usage: pd.DataFrame, params: pd.DataFrame) -> pd.DataFrame:
    """GPU, CPU and memory power (W) of each row, and whether a default utilisation was used."""
    gpu_util = usage["gpu_util_ratio"].fillna(params["default_gpu_util_ratio"])
    cpu_util = usage["cpu_util_ratio"].fillna(params["default_cpu_util_ratio"])
    gpu_w = usage["n_gpus"] * (
        params["gpu_min_w"] + gpu_util * (params["gpu_max_w"] - params["gpu_min_w"])
    )
    cpu_w = usage["n_cpus"].fillna(0) * (
        params["cpu_min_w"] + cpu_util * (params["cpu_max_w"] - params["cpu_min_w"])
    )
    memory_w = usage["mem_requested_gb"].fillna(0) * params["memory_w_per_gb"]
    return pd.DataFrame(
        {
            "gpu_power_w": gpu_w,
            "cpu_power_w": cpu_w,
            "memory_power_w": memory_w,
            "gpu_util_defaulted": (usage["n_gpus"] > 0) & usage["gpu_util_ratio"].isna(),
            "cpu_util_defaulted": usage["cpu_util_ratio"].isna() & (usage["duration_s"] > 0),
            "memory_unknown": usage["mem_requested_gb"].isna(),
        }
    )


def it_energy(usage: pd.DataFrame, params: pd.DataFrame) -> pd.DataFrame:
    """it_energy_kwh, its GPU/CPU/memory parts, energy_method and the flags behind them.

    The hierarchy: a plausible Slurm node measurement; else GPU energy from DCGM telemetry
    (`telemetry_gpu_energy_kwh`, `coverage_ratio` from reporting.telemetry; the uncovered share
    of GPU-time filled by the model) plus modelled CPU and memory; else the model alone.
    """
    power = modelled_power_w(usage, params)
    hours = usage["duration_s"].fillna(0) / S_PER_HOUR
    parts = {p: power[f"{p}_power_w"] * hours / WH_PER_KWH for p in ("gpu", "cpu", "memory")}
    modelled_kwh = parts["gpu"] + parts["cpu"] + parts["memory"]
    plausible = _plausible_measurement(usage, params)
    coverage = _column(usage, "coverage_ratio").fillna(0.0).where(~plausible, 0.0)
    gpu_kwh = blend_gpu_energy(parts["gpu"], _column(usage, "telemetry_gpu_energy_kwh"), coverage)
    estimated_kwh = gpu_kwh + parts["cpu"] + parts["memory"]
    energy_kwh = usage["measured_energy_kwh"].where(plausible, estimated_kwh)
    # A node measurement is split in the model's proportions, so the parts add up to it.
    scale = (energy_kwh / modelled_kwh).where(plausible & (modelled_kwh > 0), 1.0)
    complete = coverage >= COMPLETE_COVERAGE
    method = np.where(
        plausible, "measured",
        np.where(complete, "telemetry", np.where(hours > 0, "modelled", "none")),
    )  # fmt: skip
    gpu_modelled = (usage["n_gpus"].fillna(0) > 0) & ~plausible & ~complete & (hours > 0)
    return power.assign(
        modelled_energy_kwh=modelled_kwh,
        it_energy_kwh=energy_kwh,
        gpu_energy_kwh=gpu_kwh.where(~plausible, parts["gpu"] * scale),
        cpu_energy_kwh=parts["cpu"] * scale,
        memory_energy_kwh=parts["memory"] * scale,
        gpu_energy_telemetry_kwh=_column(usage, "telemetry_gpu_energy_kwh").fillna(0.0)
        .where(coverage > 0, 0.0),
        telemetry_coverage_ratio=coverage.where(usage["n_gpus"].fillna(0) > 0),
        energy_method=method,
        gpu_model_used=gpu_modelled,
        measured_energy_rejected=usage["measured_energy_kwh"].notna() & ~plausible,
        # The model's utilisation defaults only matter where the model was used.
        gpu_util_defaulted=power["gpu_util_defaulted"] & gpu_modelled,
        cpu_util_defaulted=power["cpu_util_defaulted"] & ~plausible,
    )  # fmt: skip


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A float column, or NaN everywhere when the frame lacks it (no telemetry joined)."""
    if name in frame.columns:
        return frame[name].astype("float64")
    return pd.Series(np.nan, index=frame.index, dtype="float64")


def _plausible_measurement(usage: pd.DataFrame, params: pd.DataFrame) -> pd.Series:
    """Measured energy whose mean power per node lies in (0, max_node_power_w]."""
    node_seconds = usage["duration_s"] * usage["n_nodes"].fillna(1).clip(lower=1)
    mean_node_w = usage["measured_energy_kwh"] * WH_PER_KWH * S_PER_HOUR / node_seconds
    return (
        usage["measured_energy_kwh"].notna()
        & (node_seconds > 0)
        & (mean_node_w > 0)
        & (mean_node_w <= params["max_node_power_w"])
    )
