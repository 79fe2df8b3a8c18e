"""Carbon of attributed energy: location-based, market-based (Scope 2) and embodied (Scope 3.2).

Embodied emissions are a management allocation (amortised hardware per GPU-hour or core-hour);
they are reported beside Scope 2, never added into it.
"""

from __future__ import annotations

import pandas as pd

G_PER_KG = 1_000


def operational_co2e(facility_energy_kwh: pd.Series, params: pd.DataFrame) -> pd.DataFrame:
    """co2e_location_kg and co2e_market_kg from facility kWh and the row's grid factors."""
    return pd.DataFrame(
        {
            "co2e_location_kg": facility_energy_kwh * params["grid_intensity_g_per_kwh"] / G_PER_KG,
            "co2e_market_kg": facility_energy_kwh * params["market_intensity_g_per_kwh"] / G_PER_KG,
        }
    )


def embodied_co2e(
    gpu_hours: pd.Series, cpu_core_hours: pd.Series, params: pd.DataFrame
) -> pd.DataFrame:
    """Amortised hardware emissions: GPU jobs per GPU-hour (the GPU server includes its CPUs),
    CPU-only jobs per core-hour."""
    gpu_job = gpu_hours > 0
    kg = (gpu_hours * params["embodied_kg_per_gpu_hour"]).where(
        gpu_job, cpu_core_hours * params["embodied_kg_per_core_hour"]
    )
    factor_id = params["embodied_gpu_factor_id"].where(gpu_job, params["embodied_cpu_factor_id"])
    return pd.DataFrame({"co2e_embodied_kg": kg, "embodied_factor_id": factor_id})
