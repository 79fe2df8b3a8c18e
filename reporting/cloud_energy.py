"""Energy and carbon of cloud billing lines, by the Cloud Carbon Footprint method.

compute: hours × (vCPUs × (W_min + u × (W_max − W_min)) + GPUs × (same per GPU) + GB × W/GB)
storage: TB-hours × Wh/TB-h × replication; network: GB × kWh/GB; memory: GB-h × W/GB.
Usage lines with no physical model get kWh from comparable modelled lines per currency unit
(`extrapolated`); non-usage lines (tax, purchases, credits) and unused commitments carry cost,
no energy. Facility energy = IT × the provider's PUE; carbon uses the region's grid zone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reporting import factors as ft
from reporting.cloud_classify import classify
from reporting.factors import Factor

PROVIDER_CPU = {"aws": "ccf-aws-average", "gcp": "ccf-gcp-median", "azure": "ccf-azure-average"}
PROVIDER_PUE = {"aws": "aws", "gcp": "gcp", "azure": "azure"}
_REPLICATION = (  # (provider, pattern in usage type / service) → methodology id; first match wins
    ("aws", r"snapshot", "ccf_replication_aws_ebs_snapshot"),
    ("aws", r"ebs|volumeusage", "ccf_replication_aws_ebs_volume"),
    ("aws", r"elastic file|efs", "ccf_replication_aws_efs"),
    ("aws", r"container registry|ecr", "ccf_replication_aws_ecr"),
    ("aws", r"timedstorage|simple storage|\bs3\b", "ccf_replication_aws_s3"),
)
WH_PER_KWH = 1_000


class _Register:
    """Factors used, by id, so each appears once in the register."""

    def __init__(self) -> None:
        self.used: dict[str, Factor] = {}

    def add(self, factor: Factor) -> Factor:
        self.used.setdefault(factor.factor_id, factor)
        return factor


def cloud_energy(charges: pd.DataFrame, cost: pd.Series) -> tuple[pd.DataFrame, list[Factor]]:
    """Per charge row: IT energy parts, method, note and the factor ids behind them.

    `cost` is the report's cost basis per row (used to extrapolate unknown usage lines).
    """
    reg = _Register()
    cls = classify(charges)
    out = pd.DataFrame(index=charges.index)
    out["energy_class"] = cls["energy_class"]
    out["n_cpus"] = cls["n_cpus"]
    out["n_gpus"] = cls["n_gpus"]
    out["gpu_model"] = cls["gpu_model"]
    hours = cls["instance_hours"].fillna(0.0)
    out["gpu_hours"] = hours * cls["n_gpus"].fillna(0)
    out["cpu_core_hours"] = hours * cls["n_cpus"].fillna(0)
    out["duration_s"] = (
        charges["charge_period_end"] - charges["charge_period_start"]
    ).dt.total_seconds()
    cpu_w, cpu_ids = _cpu_watts(charges, cls, reg)
    gpu_w, gpu_ids = _gpu_watts(cls, reg)
    memory = reg.add(ft.method_factor("memory_w_per_gb_ccf"))
    mem_w = cls["mem_gb"].fillna(0) * memory.value
    out["cpu_energy_kwh"] = cpu_w * hours / WH_PER_KWH
    out["gpu_energy_kwh"] = gpu_w * hours / WH_PER_KWH
    out["memory_energy_kwh"] = (mem_w * hours + cls["memory_gb_hours"].fillna(0) * memory.value) / WH_PER_KWH  # fmt: skip
    storage_kwh, storage_ids = _storage_kwh(charges, cls, reg)
    network = reg.add(ft.method_factor("ccf_network_kwh_per_gb"))
    network_kwh = cls["network_gb"].fillna(0) * network.value
    out["it_energy_kwh"] = (
        out["cpu_energy_kwh"] + out["gpu_energy_kwh"] + out["memory_energy_kwh"]
        + storage_kwh + network_kwh
    )  # fmt: skip
    modelled = cls["energy_class"].isin(["compute", "storage_ssd", "storage_hdd", "network", "memory"])  # fmt: skip
    out["energy_method"] = np.where(modelled, "modelled", "none")
    out["energy_note"] = cls["energy_note"]
    out["cpu_power_factor_id"] = cpu_ids.where(cls["energy_class"] == "compute")
    out["gpu_power_factor_id"] = gpu_ids.where(out["gpu_hours"] > 0)
    out["memory_factor_id"] = pd.Series(memory.factor_id, index=charges.index).where(
        (cls["mem_gb"].fillna(0) > 0) | (cls["memory_gb_hours"].fillna(0) > 0)
    )
    out["energy_check_factor_id"] = storage_ids.fillna(
        pd.Series(network.factor_id, index=charges.index).where(cls["energy_class"] == "network")
    )
    out["cpu_util_factor_id"] = pd.Series(None, index=charges.index, dtype=object)
    compute = cls["energy_class"] == "compute"
    cpu_util = reg.add(ft.method_factor("ccf_default_cpu_util_pct", is_default=True))
    out.loc[compute & (cls["n_cpus"] > 0), "cpu_util_factor_id"] = cpu_util.factor_id
    gpu_util = reg.add(ft.method_factor("default_gpu_util_ratio", is_default=True))
    out["gpu_util_factor_id"] = pd.Series(gpu_util.factor_id, index=charges.index).where(
        out["gpu_hours"] > 0
    )
    _extrapolate(out, charges, cost)
    return out, list(reg.used.values())


def _cpu_watts(charges: pd.DataFrame, cls: pd.DataFrame, reg: _Register) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    """Per-vCPU power at CCF's default 50 % utilisation, × vCPUs (W per instance)."""
    util = ft.method_factor("ccf_default_cpu_util_pct", is_default=True).value / 100
    model = cls["cpu_model"].fillna(charges["provider"].map(PROVIDER_CPU)).fillna("ccf-aws-average")  # fmt: skip
    watts = pd.Series(0.0, index=charges.index)
    ids = pd.Series(None, index=charges.index, dtype=object)
    compute = cls["energy_class"] == "compute"
    for name in sorted(model[compute].unique()):
        low, high = (reg.add(f) for f in ft.cpu_power_factors(name))
        rows = compute & (model == name)
        watts[rows] = cls.loc[rows, "n_cpus"].fillna(0) * (low.value + util * (high.value - low.value))  # fmt: skip
        ids[rows] = high.factor_id
    return watts, ids


def _gpu_watts(cls: pd.DataFrame, reg: _Register) -> tuple[pd.Series, pd.Series]:
    """GPU power at the default GPU utilisation (TDP, as on-prem), × GPUs (W per instance)."""
    util = ft.method_factor("default_gpu_util_ratio", is_default=True).value
    watts = pd.Series(0.0, index=cls.index)
    ids = pd.Series(None, index=cls.index, dtype=object)
    has_gpu = (cls["n_gpus"].fillna(0) > 0) & (cls["energy_class"] == "compute")
    model = cls["gpu_model"].where(cls["gpu_model"].notna(), "generic-gpu")
    for name in sorted(model[has_gpu].unique()):
        low, high = (reg.add(f) for f in ft.gpu_power_factors(name, is_default=name == "generic-gpu"))  # fmt: skip
        rows = has_gpu & (model == name)
        watts[rows] = cls.loc[rows, "n_gpus"] * (low.value + util * (high.value - low.value))
        ids[rows] = high.factor_id
    return watts, ids


def _storage_kwh(charges: pd.DataFrame, cls: pd.DataFrame, reg: _Register) -> tuple[pd.Series, pd.Series]:  # fmt: skip
    """TB-hours × Wh/TB-h (SSD or HDD) × the service's replication factor."""
    kwh = pd.Series(0.0, index=charges.index)
    ids = pd.Series(None, index=charges.index, dtype=object)
    # searched on storage lines only: on a large bill the searches are the slow part
    stored = charges[cls["energy_class"].isin(["storage_ssd", "storage_hdd"])]
    detail = (stored["usage_type"].fillna("") + " " + stored["service_name"].fillna("")).str.lower()  # fmt: skip
    replication_id = pd.Series("ccf_replication_default", index=charges.index)
    for provider, pattern, factor_id in reversed(_REPLICATION):
        hit = (stored["provider"] == provider) & detail.str.contains(pattern)
        replication_id[hit.index[hit.to_numpy(dtype=bool)]] = factor_id
    for medium, coefficient_id in (("storage_ssd", "ccf_ssd_wh_per_tb_hour"),
                                   ("storage_hdd", "ccf_hdd_wh_per_tb_hour")):  # fmt: skip
        rows = cls["energy_class"] == medium
        if not rows.any():
            continue
        coefficient = reg.add(ft.method_factor(coefficient_id))
        for rid in sorted(replication_id[rows].unique()):
            copies = reg.add(ft.method_factor(rid, is_default=rid == "ccf_replication_default"))
            these = rows & (replication_id == rid)
            kwh[these] = cls.loc[these, "storage_tb_hours"] * coefficient.value * copies.value / WH_PER_KWH  # fmt: skip
            ids[these] = coefficient.factor_id
    return kwh, ids


def _extrapolate(out: pd.DataFrame, charges: pd.DataFrame, cost: pd.Series) -> None:
    """Unknown usage lines: kWh per currency unit of modelled lines of the same provider and
    service (else the same provider), in the same currency, × the line's cost (CCF's method)."""
    unknown = out["energy_class"] == "unknown"
    if not unknown.any():
        return
    known = (out["energy_method"] == "modelled") & (cost > 0)
    keys_fine = [charges["provider"], charges["service_name"].fillna(""), charges["currency"]]
    keys_coarse = [charges["provider"], charges["currency"]]
    ratio = pd.Series(np.nan, index=out.index)
    basis = pd.Series(None, index=out.index, dtype=object)
    for keys, label in ((keys_fine, "service"), (keys_coarse, "provider")):
        frame = pd.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
        kwh = out["it_energy_kwh"].where(known, 0.0).groupby([frame[c] for c in frame]).transform("sum")  # fmt: skip
        money = cost.where(known, 0.0).groupby([frame[c] for c in frame]).transform("sum")
        found = unknown & ratio.isna() & (money > 0)
        ratio[found] = kwh[found] / money[found]
        basis[found] = label
    has = unknown & ratio.notna()
    out.loc[has, "it_energy_kwh"] = (cost[has].clip(lower=0) * ratio[has]).astype("float64")
    out.loc[has, "energy_method"] = "extrapolated"
    out.loc[has, "energy_note"] = (
        "no physical model for this line: kWh per "
        + charges.loc[has, "currency"]
        + " of modelled lines of the same "
        + basis[has].astype(str)
        + " x its cost"
    )
    out.loc[unknown & ~has, "energy_note"] = (
        "no physical model and no modelled line of the same provider and currency to extrapolate from"
    )
