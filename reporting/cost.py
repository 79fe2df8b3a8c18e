"""On-prem cost from the configured rate card: GPU-hours, core-hours, GB-hours and energy price.

Rows without a rate card get no cost (NaN, basis `none`) and the report says so: a cost of 0
would be a silent fallback.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def rate_card_cost(
    gpu_hours: pd.Series,
    cpu_core_hours: pd.Series,
    mem_gb_hours: pd.Series,
    facility_energy_kwh: pd.Series,
    params: pd.DataFrame,
) -> pd.DataFrame:
    """cost, currency and cost_basis for each row."""
    cost = (
        gpu_hours * params["rate_gpu_hour"]
        + cpu_core_hours * params["rate_cpu_core_hour"]
        + mem_gb_hours.fillna(0) * params["rate_mem_gb_hour"]
        + facility_energy_kwh * params["rate_energy_per_kwh"]
    ).astype("float64")
    has_card = params["rate_card_id"].notna()
    return pd.DataFrame(
        {
            "cost": cost.where(has_card),
            "currency": params["currency"],
            "cost_basis": np.where(has_card, "rate card", "none"),
            "rate_card_id": params["rate_card_id"],
        }
    )
