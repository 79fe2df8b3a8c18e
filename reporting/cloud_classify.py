"""Sort billing lines into what consumed energy (the Cloud Carbon Footprint classification).

Each usage line is compute (an instance of a known type, or vCPU / GPU time), storage (SSD or
HDD, by capacity-time), network (data transfer), memory (GB-time) or unknown; non-usage lines
(tax, purchases, credits, adjustments) and unused commitments consume nothing.
The quantity each class needs is converted here to one unit: hours, TB-hours, GB, GB-hours.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from reporting.factors import table

HOURS_PER_MONTH = 730  # AWS/Azure/GCP bill "month" capacity at 730 h (8,760 / 12)
BYTES_PER_GB = 1024**3
S_PER_HOUR = 3_600

_HOURS = re.compile(
    r"^(?:hrs|hours?|h|instance[- ]?hours?|node[- ]?hours?|1 hour|units/hour)$", re.IGNORECASE
)
_SECONDS = re.compile(r"^(?:s|seconds?)$", re.IGNORECASE)
_GB_MONTH = re.compile(r"^(?:gb|gib)[- /]?(?:mo|month|months)$|^gb months$", re.IGNORECASE)
_BYTE_SECONDS = re.compile(r"^byte[- ]seconds?$", re.IGNORECASE)
_GB = re.compile(r"^(?:gb|gib|gigabytes?)$", re.IGNORECASE)
_BYTES = re.compile(r"^bytes?$", re.IGNORECASE)
_GB_HOURS = re.compile(r"^(?:gb|gib)[- ]?(?:hours?|hrs)$|^gb hours$", re.IGNORECASE)
_TRANSFER = re.compile(r"data ?transfer|bytes?-?(?:out|in)\b|egress|bandwidth|internet|inter-?region|-out-bytes", re.IGNORECASE)  # fmt: skip
_SSD = re.compile(r"ssd|volumeusage\.(?:gp|io)|provisioned|premium|\bp\d+ lrs|block volume|persistent ?disk ssd", re.IGNORECASE)  # fmt: skip
_HDD_HINT = re.compile(r"hdd|timedstorage|snapshot|sc1|st1|archive|glacier|blob|standard storage|bucket|object", re.IGNORECASE)  # fmt: skip
_GCP_CORE = re.compile(r"\bcore\b|vcpu", re.IGNORECASE)
_GCP_RAM = re.compile(r"\bram\b|memory", re.IGNORECASE)
_GPU_IN_TEXT = re.compile(
    r"(h200|h100|a100 80gb|a100|v100|t4|l4|a10g|a10|l40s|k80|p100|mi300x)\b", re.IGNORECASE
)
_GPU_TEXT_MODEL = {
    "h200": "H200-SXM-141GB", "h100": "H100-SXM5-80GB", "a100 80gb": "A100-SXM4-80GB",
    "a100": "A100-SXM4-40GB", "v100": "V100-SXM2-32GB", "t4": "T4", "l4": "L4", "a10g": "A10G",
    "a10": "A10", "l40s": "L40S", "mi300x": "MI300X",
}  # fmt: skip

CLASSES = ("compute", "storage_ssd", "storage_hdd", "network", "memory", "unknown", "none")


def catalog() -> pd.DataFrame:
    """The packaged instance catalog, keyed by (provider, lower-case instance type)."""
    rows = table("cloud_instances").copy()
    rows["key"] = rows["provider"] + ":" + rows["instance_type"].str.lower()
    for column in ("vcpus", "memory_gb", "gpus"):
        rows[column] = pd.to_numeric(rows[column], errors="coerce")
    return rows.set_index("key")


def classify(charges: pd.DataFrame) -> pd.DataFrame:
    """Per charge: energy_class and the quantities its energy needs.

    Columns: energy_class, instance_hours, n_cpus, n_gpus, gpu_model, cpu_model, mem_gb,
    storage_tb_hours, network_gb, memory_gb_hours, catalog_key, energy_note.
    """
    out = pd.DataFrame(index=charges.index)
    unit = charges["consumed_unit"].fillna("").astype(str).str.strip()
    qty = charges["consumed_quantity"].astype("float64")
    detail = (
        charges["usage_type"].fillna("").astype(str) + " " + charges["charge_description"].fillna("")
        + " " + charges["service_name"].fillna("")
    )  # fmt: skip
    usage = (charges["charge_category"] == "Usage") & (charges["commitment_status"] != "Unused")
    out["energy_class"] = np.where(usage, "unknown", "none")
    out["energy_note"] = np.where(
        charges["commitment_status"] == "Unused",
        "unused commitment: paid for, no capacity used",
        np.where(
            usage, None, "not usage (" + charges["charge_category"].fillna("?") + "): no energy"
        ),
    )
    for column in ("instance_hours", "n_cpus", "n_gpus", "mem_gb", "storage_tb_hours",
                   "network_gb", "memory_gb_hours"):  # fmt: skip
        out[column] = np.nan
    out["gpu_model"] = None
    out["cpu_model"] = None
    out["catalog_key"] = None
    open_ = usage & qty.notna()
    _instances(charges, out, open_ & unit.str.match(_HOURS), qty)
    _gcp_resources(charges, out, open_ & (out["energy_class"] == "unknown"), unit, qty, detail)
    open_ &= out["energy_class"] == "unknown"
    _storage(out, open_ & (unit.str.match(_GB_MONTH) | unit.str.match(_BYTE_SECONDS)), unit, qty, detail)  # fmt: skip
    open_ &= out["energy_class"] == "unknown"
    moved = open_ & (unit.str.match(_GB) | unit.str.match(_BYTES))
    transfer = moved & _contains(detail, moved, _TRANSFER)
    gb = qty.where(~unit.str.match(_BYTES), qty / BYTES_PER_GB)
    out.loc[transfer, "energy_class"] = "network"
    out.loc[transfer, "network_gb"] = gb[transfer]
    gb_hours = open_ & ~transfer & unit.str.match(_GB_HOURS)
    memory = gb_hours & _contains(detail, gb_hours, _GCP_RAM)
    out.loc[memory, "energy_class"] = "memory"
    out.loc[memory, "memory_gb_hours"] = qty[memory]
    return out


def _instances(charges: pd.DataFrame, out: pd.DataFrame, hourly: pd.Series, qty: pd.Series) -> None:
    """Instance-hours of a catalogued type (or of a line that states its vCPUs) → compute."""
    known = catalog()
    key = charges["provider"].fillna("") + ":" + charges["resource_type"].fillna("").str.lower()
    found = hourly & key.isin(known.index)
    rows = known.reindex(key[found])
    rows.index = key[found].index
    out.loc[found, "energy_class"] = "compute"
    out.loc[found, "instance_hours"] = qty[found]
    out.loc[found, "n_cpus"] = rows["vcpus"]
    out.loc[found, "n_gpus"] = rows["gpus"]
    out.loc[found, "mem_gb"] = rows["memory_gb"]
    out.loc[found, "gpu_model"] = rows["gpu_model"].where(rows["gpu_model"] != "", None)
    out.loc[found, "cpu_model"] = rows["cpu_model"].where(rows["cpu_model"] != "", None)
    out.loc[found, "catalog_key"] = key[found]
    stated = hourly & ~found & (charges["vcpus"] > 0)
    out.loc[stated, "energy_class"] = "compute"
    out.loc[stated, "instance_hours"] = qty[stated]
    out.loc[stated, "n_cpus"] = charges.loc[stated, "vcpus"]
    out.loc[stated, "n_gpus"] = 0.0
    out.loc[stated, "energy_note"] = "instance type not in the catalog: vCPUs from the billing line, no GPU or memory counted"  # fmt: skip


def _gcp_resources(charges: pd.DataFrame, out: pd.DataFrame, open_: pd.Series, unit: pd.Series,
                   qty: pd.Series, detail: pd.Series) -> None:  # fmt: skip
    """GCP bills cores, RAM and GPUs as separate SKUs: vCPU-seconds, byte-seconds, GPU-seconds."""
    gcp = open_ & (charges["provider"] == "gcp")
    seconds = gcp & unit.str.match(_SECONDS)
    gpu_text = pd.Series(None, index=detail.index, dtype=object)
    if seconds.any():
        found = detail[seconds].str.extract(_GPU_IN_TEXT, expand=False).str.lower()
        gpu_text[seconds] = found.astype(object).where(found.notna(), None)
    gpu = seconds & gpu_text.notna() & _contains(detail, seconds, "gpu", case=False)
    out.loc[gpu, "energy_class"] = "compute"
    out.loc[gpu, "instance_hours"] = qty[gpu] / S_PER_HOUR
    out.loc[gpu, "n_gpus"] = 1.0
    out.loc[gpu, "n_cpus"] = 0.0
    out.loc[gpu, "gpu_model"] = gpu_text[gpu].map(_GPU_TEXT_MODEL)
    core = seconds & ~gpu & _contains(detail, seconds, _GCP_CORE)
    out.loc[core, "energy_class"] = "compute"
    out.loc[core, "instance_hours"] = qty[core] / S_PER_HOUR
    out.loc[core, "n_cpus"] = 1.0
    out.loc[core, "n_gpus"] = 0.0
    byte_seconds = gcp & unit.str.match(_BYTE_SECONDS)
    ram = byte_seconds & _contains(detail, byte_seconds, _GCP_RAM)
    out.loc[ram, "energy_class"] = "memory"
    out.loc[ram, "memory_gb_hours"] = qty[ram] / BYTES_PER_GB / S_PER_HOUR


def _storage(out: pd.DataFrame, mask: pd.Series, unit: pd.Series, qty: pd.Series,
             detail: pd.Series) -> None:  # fmt: skip
    """Capacity-time → TB-hours; SSD when the line says so, else HDD (CCF's default)."""
    tb_hours = (qty * HOURS_PER_MONTH / 1000).where(
        unit.str.match(_GB_MONTH), qty / BYTES_PER_GB / S_PER_HOUR / 1000
    )
    ssd = _contains(detail, mask, _SSD) & ~_contains(detail, mask, r"hdd", case=False)
    out.loc[mask, "energy_class"] = np.where(ssd[mask], "storage_ssd", "storage_hdd")
    out.loc[mask, "storage_tb_hours"] = tb_hours[mask]
    hinted = _contains(detail, mask, _HDD_HINT) | ssd
    guess = mask & ~hinted
    out.loc[guess, "energy_note"] = "storage medium not stated: counted as HDD (CCF default)"


def _contains(text: pd.Series, rows: pd.Series, pattern: str | re.Pattern[str], *,
              case: bool = True) -> pd.Series:  # fmt: skip
    """`text.str.contains(pattern)` searched on `rows` only (False elsewhere): the searches are
    most of the time classifying a large bill takes, and each concerns few of its lines."""
    found = pd.Series(False, index=text.index)
    if rows.any():
        found[rows] = text[rows].str.contains(pattern, case=case).to_numpy(dtype=bool)
    return found
