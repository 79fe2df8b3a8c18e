"""The attribute stage for cloud billing lines: charges → ledger rows.

Cost is the configured basis (billed or effective) in the line's own currency, never
converted. Energy and carbon come from `cloud_energy`; cloud emissions are Scope 3.1 for the
buyer (the provider's Scope 2), with the market-based figure equal to the location-based one
because no contractual instrument of the provider is known. Each line is split over the UTC days
of its charge period. Owners come from the same ordered rules as cluster jobs, matching tags
(`tag:<key>`), the sub-account, service, region and resource.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reporting import factors as ft
from reporting import owners
from reporting.attribute import LINEAR_COLUMNS, split_by_day, to_ledger
from reporting.billing_intake import billing_period_keys
from reporting.cloud_energy import PROVIDER_PUE, cloud_energy
from reporting.config import UNALLOCATED, Config
from reporting.factors import Factor

_CLOUD_LINEAR = ("billed_cost", "effective_cost")


@dataclass(frozen=True)
class CloudAttribution:
    ledger: pd.DataFrame
    factors: list[Factor]


def attribute_charges(charges: pd.DataFrame, config: Config, run_id: str) -> CloudAttribution:
    basis = config.billing.cost_basis
    cost = charges[f"{basis}_cost"].astype("float64")
    energy, used = cloud_energy(charges, cost)
    places, place_factors = _place_factors(charges)
    frame = charges.assign(
        usage_id=charges["charge_id"],
        source=charges["family"],
        site=charges["provider"].fillna("unknown") + ":" + charges["region_id"].fillna("global"),
        started_at=charges["charge_period_start"],
        ended_at=charges["charge_period_end"],
        account=charges["sub_account_name"].fillna(charges["sub_account_id"]),
        job_name=charges["resource_id"],
        billing_account=charges["billing_account_id"],
        service=charges["service_name"],
        region=charges["region_id"],
        resource=charges["resource_id"],
        resource_id=charges["resource_id"],
        state=charges["charge_category"],
        cost=cost,
        cost_basis=basis,
        scope="3.1",
        billing_period=billing_period_keys(charges),
        **{c: energy[c] for c in energy.columns},
        **{c: places[c] for c in places.columns},
    )  # fmt: skip
    frame["facility_energy_kwh"] = frame["it_energy_kwh"] * frame["pue"]
    frame["co2e_location_kg"] = frame["facility_energy_kwh"] * frame["grid_intensity_g_per_kwh"] / 1000  # fmt: skip
    frame["co2e_market_kg"] = frame["co2e_location_kg"]
    frame["market_intensity_g_per_kwh"] = frame["grid_intensity_g_per_kwh"]
    frame["market_factor_id"] = frame["grid_factor_id"]
    emb_gpu = ft.embodied_factor("gpu-server-8x", "GPU-hour")
    emb_cpu = ft.embodied_factor("cpu-node", "core-hour")
    gpu = frame["gpu_hours"] > 0
    frame["co2e_embodied_kg"] = (frame["gpu_hours"] * emb_gpu.value).where(
        gpu, frame["cpu_core_hours"] * emb_cpu.value
    )
    frame["embodied_factor_id"] = np.where(
        gpu, emb_gpu.factor_id, np.where(frame["cpu_core_hours"] > 0, emb_cpu.factor_id, None)
    )
    used_embodied = [f for f, on in ((emb_gpu, gpu.any()), (emb_cpu, (frame["cpu_core_hours"] > 0).any())) if on]  # fmt: skip
    frame = owners.attribute_owners(frame, config.owners)
    frame = share_costs(frame, config)
    # Rebound, not kept beside it: the unsplit lines are freed before the ledger rows are built.
    frame = split_by_day(frame, _CLOUD_LINEAR)
    return CloudAttribution(to_ledger(frame, run_id), used + place_factors + used_embodied)


def line_footprint(charges: pd.DataFrame, cost: pd.Series) -> pd.DataFrame:
    """Per charge line, as attributed (before the split over days and teams): energy method,
    facility kWh and location-based kg CO2e."""
    energy, _ = cloud_energy(charges, cost)
    places, _ = _place_factors(charges)
    facility_kwh = energy["it_energy_kwh"] * places["pue"]
    return pd.DataFrame({
        "energy_method": energy["energy_method"],
        "facility_energy_kwh": facility_kwh,
        "co2e_location_kg": facility_kwh * places["grid_intensity_g_per_kwh"] / 1000,
    }, index=charges.index)  # fmt: skip


def _place_factors(charges: pd.DataFrame) -> tuple[pd.DataFrame, list[Factor]]:
    """PUE of the provider and grid intensity of the region, per distinct (provider, region)."""
    regions = ft.table("cloud_regions")
    zone_of = {(r.provider, r.region): r.grid_zone for r in regions.itertuples()}
    keys = pd.DataFrame({"provider": charges["provider"].fillna(""),
                         "region": charges["region_id"].fillna("")})  # fmt: skip
    used: dict[str, Factor] = {}
    rows = []
    for provider, region in keys.drop_duplicates().itertuples(index=False):
        pue_id = PROVIDER_PUE.get(provider, "cloud-industry-idc")
        pue = ft.pue_factor(pue_id, is_default=provider not in PROVIDER_PUE)
        zone = zone_of.get((provider, region))
        grid = ft.grid_factor(zone) if zone else None
        note = None
        if grid is None:
            grid = ft.grid_factor("WORLD")
            grid = Factor(**{**grid.__dict__, "is_default": True})  # type: ignore[union-attr]
            note = f"region {region or '(none)'} of {provider or '(unknown provider)'} has no grid zone: world average used"  # fmt: skip
        used.update({pue.factor_id: pue, grid.factor_id: grid})
        rows.append({
            "provider": provider, "region": region, "pue": pue.value, "pue_factor_id": pue.factor_id,
            "grid_zone": grid.key, "grid_intensity_g_per_kwh": grid.value,
            "grid_factor_id": grid.factor_id, "place_note": note,
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=["provider", "region", "pue", "pue_factor_id", "grid_zone",
                                        "grid_intensity_g_per_kwh", "grid_factor_id", "place_note"])  # fmt: skip
    merged = keys.merge(table, on=["provider", "region"], how="left")
    merged.index = charges.index
    return merged.drop(columns=["provider", "region"]), list(used.values())


def share_costs(frame: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Split untagged tax and support lines over teams by their tagged spend, if configured.

    A shared line becomes one row per team (usage_id `<charge>#<team>`), each with its share of
    every linear quantity; shares of a line add back to it exactly, so nothing is lost.
    """
    frame = frame.assign(energy_note=_append(frame["energy_note"], frame["place_note"]))
    frame = frame.drop(columns=["place_note"])
    if config.billing.shared_costs != "proportional":
        return frame
    shared = (frame["team"] == UNALLOCATED) & (
        (frame["charge_category"] == "Tax")
        | frame["service_name"].fillna("").str.contains(config.billing.shared_services)
    )
    tagged = frame[(frame["team"] != UNALLOCATED) & (frame["charge_category"] == "Usage")]
    weights = tagged.groupby(["currency", "billing_period", "team"])["cost"].sum()
    weights = weights[weights > 0]
    pieces = [frame[~shared]]
    for _, line in frame[shared].iterrows():
        key = (line["currency"], line["billing_period"])
        teams = weights.loc[key] if key in weights.index.droplevel("team") else None
        if teams is None or teams.empty:
            pieces.append(line.to_frame().T)
            continue
        share = teams / teams.sum()
        rows = pd.DataFrame([line] * len(share)).reset_index(drop=True)
        rows["team"] = list(share.index)
        rows["usage_id"] = [f"{line['usage_id']}#{t}" for t in share.index]
        for column in (*LINEAR_COLUMNS, *_CLOUD_LINEAR):
            if column in rows.columns:  # cloud lines carry no telemetry columns
                rows[column] = rows[column].astype("float64") * share.to_numpy()
        rows["energy_note"] = "shared cost split over teams by tagged spend"
        pieces.append(rows)
    return pd.concat(pieces, ignore_index=True).astype({"started_at": "datetime64[s, UTC]",
                                                        "ended_at": "datetime64[s, UTC]"})  # fmt: skip


def _append(first: pd.Series, second: pd.Series) -> pd.Series:
    both = first.notna() & second.notna()
    result = first.where(first.notna(), second)
    result[both] = first[both] + "; " + second[both]
    return result
