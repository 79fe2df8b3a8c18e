"""kg CO2e per 1M tokens and per 1k requests, per model, from the serving volume (serving.py).

Method: for each model with serving volume on days of the period, its inference-phase footprint
(ledger rows of that model with phase `inference`, on-premises and cloud, location- and
market-based) divided by the tokens and requests it served on those days. Training, fine-tuning
and evaluation are left out (they are not caused by serving, and amortising them over served
tokens is a different metric), and so are embodied emissions and the idle capacity of a cluster
(rows of model `idle`). Days with inference use but no volume are counted and said: the volume
then undercounts and the intensity overstates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reporting import serving
from reporting.summary import Period

TOKENS_PER_UNIT = 1_000_000  # per 1M tokens
REQUESTS_PER_UNIT = 1_000  # per 1k requests
INFERENCE = "inference"
NOT_MODELS = ("unallocated", "idle")
NOT_SUPPLIED = (
    "not available: no serving volume was supplied (add an [[inputs]] entry with "
    'kind = "serving_volume": model, day, requests, tokens)'
)
NONE_IN_PERIOD = "not available: the serving volume supplied has no day in this period"


def _r(value: float) -> float:
    return round(float(value), 6)


def _per(kg: float, amount: float, unit: int) -> float | None:
    return _r(kg / (amount / unit)) if amount > 0 else None


def _days(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.date


def of(root: Path, rows: pd.DataFrame, period: Period) -> dict[str, Any]:
    """`per_model` with the serving volume kept in the ledger folder `root`."""
    volume = serving.read_serving_volume(root) if serving.supplied(root) else None
    return per_model(rows, volume, period)


def per_model(rows: pd.DataFrame, volume: pd.DataFrame | None, period: Period) -> dict[str, Any]:
    """The `intensity.serving_volume` block of summary.json. `volume` is None when no serving
    volume was ever supplied; then, and when none falls in the period, `available` is False
    with the reason the report prints."""
    if volume is None:
        return {"available": False, "reason": NOT_SUPPLIED}
    days = _days(volume["day"])
    shown = volume[(days >= period.start) & (days <= period.end)]
    if shown.empty:
        return {"available": False, "reason": NONE_IN_PERIOD}
    inference = rows[(rows["phase"] == INFERENCE) & ~rows["model"].isin(NOT_MODELS)]
    models = [
        _model(str(m), group, inference[inference["model"] == m])
        for m, group in shown.groupby("model", sort=True)
    ]
    served = set(shown["model"].astype(str))
    unserved = sorted(set(inference["model"].dropna().astype(str)) - served)
    return {"available": True, "models": models, "inference_models_without_volume": unserved}


def _model(model: str, volume: pd.DataFrame, inference: pd.DataFrame) -> dict[str, Any]:
    tokens, requests = int(volume["tokens"].sum()), int(volume["requests"].sum())
    location = float(inference["co2e_location_kg"].sum())
    market = float(inference["co2e_market_kg"].sum())
    used_days = set(_days(inference["day"])) if not inference.empty else set()
    missing = len(used_days - set(_days(volume["day"])))
    used = not inference.empty  # no inference footprint: no intensity (not zero)
    return {
        "model": model, "tokens": tokens, "requests": requests,
        "days_with_volume": int(volume["day"].nunique()),
        "inference_days_without_volume": missing,
        "inference_energy_kwh": _r(inference["facility_energy_kwh"].sum()),
        "inference_location_kg": _r(location), "inference_market_kg": _r(market),
        "location_kg_per_1m_tokens": _per(location, tokens, TOKENS_PER_UNIT) if used else None,
        "market_kg_per_1m_tokens": _per(market, tokens, TOKENS_PER_UNIT) if used else None,
        "location_kg_per_1k_requests": _per(location, requests, REQUESTS_PER_UNIT) if used else None,
        "market_kg_per_1k_requests": _per(market, requests, REQUESTS_PER_UNIT) if used else None,
    }  # fmt: skip
