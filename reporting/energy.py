"""IT energy of usage rows: measured when plausible, else modelled from allocation × power model.

Modelled power (W) of a run, per DESIGN §3:
    GPUs   n_gpus × (W_min + u_gpu × (W_max − W_min))   u_gpu from Slurm GPU accounting, else default
    CPUs   n_cpus × (W_min + u_cpu × (W_max − W_min))   u_cpu = TotalCPU / (Elapsed × NCPUS)
    memory mem_requested_gb × W per GB
Measured energy (Slurm ConsumedEnergyRaw) is used when its mean power per node is above 0 and
below the plausibility limit; otherwise the model is used and the row says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    """it_energy_kwh, energy_method and the flags behind them, for each usage row."""
    power = modelled_power_w(usage, params)
    hours = usage["duration_s"].fillna(0) / S_PER_HOUR
    total_w = power[["gpu_power_w", "cpu_power_w", "memory_power_w"]].sum(axis=1)
    modelled_kwh = total_w * hours / WH_PER_KWH
    plausible = _plausible_measurement(usage, params)
    energy_kwh = usage["measured_energy_kwh"].where(plausible, modelled_kwh)
    method = np.where(plausible, "measured", np.where(hours > 0, "modelled", "none"))
    rejected = usage["measured_energy_kwh"].notna() & ~plausible
    return power.assign(
        modelled_energy_kwh=modelled_kwh,
        it_energy_kwh=energy_kwh,
        energy_method=method,
        measured_energy_rejected=rejected,
        # The model's utilisation defaults only matter where the model was used.
        gpu_util_defaulted=power["gpu_util_defaulted"] & ~plausible,
        cpu_util_defaulted=power["cpu_util_defaulted"] & ~plausible,
    )


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
