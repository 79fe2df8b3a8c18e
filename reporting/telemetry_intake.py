"""DCGM telemetry inputs: read, account for every sample, and find the usage files it touches.

Telemetry and the runs it measures may arrive on different nights. Samples are kept with the
ledger (`ledger.write_telemetry`), so a run read later is joined with telemetry read earlier;
and when new telemetry arrives, the usage files of the same site whose runs overlap it in time
(`coupled_usage_files`, from the spans the intake records) are read again and re-attributed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reporting.config import Input
from reporting.ingest.dcgm import read_dcgm
from reporting.ingest.limits import Limits
from reporting.telemetry import device_samples, gpu_intervals

USAGE_KINDS = ("slurm", "opencost")


def read_telemetry_input(
    paths: dict[str, Path], spec: Input
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Any]], dict[str, str]]:
    """(samples with their site, quarantine, per-file stats, file errors) of a dcgm input."""
    read = read_dcgm(paths, limits=Limits(spec.max_field_bytes, spec.max_rows))
    samples = read.samples.assign(site=str(spec.site))
    stats = {}
    for name, rows_read in read.rows_read.items():
        mine = samples[samples["source_file"] == name]
        quarantined = int((read.quarantine["source_file"] == name).sum())
        if len(mine) + quarantined != rows_read:  # conservation: a bug if it fails
            raise AssertionError(f"{name}: {rows_read} read != {len(mine)} + {quarantined}")
        stats[name] = {
            "source_file": name, "kind": spec.kind, "rows_read": rows_read,
            "rows_accepted": len(mine), "rows_quarantined": quarantined, "runs": 0,
            "not_attributed": {}, "ignored_samples": read.ignored.get(name, 0),
            **site_span(str(spec.site), mine["timestamp"], mine["timestamp"]),
            "telemetry": telemetry_stats(mine),
        }  # fmt: skip
    return samples, read.quarantine, stats, read.file_errors


def telemetry_stats(samples: pd.DataFrame) -> dict[str, Any]:
    """What a file's samples hold, for the summary: GPUs, energy, counter resets, pauses not
    integrated (and the counters' energy across them), and energy of GPUs no pod label claims."""
    intervals, gaps = gpu_intervals(samples)
    labelled = samples[samples["pod"].notna()]
    claimed = intervals.merge(
        labelled[["host", "timestamp"]].assign(device=device_samples(labelled)["device"])
        .drop_duplicates(), left_on=["host", "device", "start"],
        right_on=["host", "device", "timestamp"], how="left", indicator=True,
    )  # fmt: skip
    unclaimed = claimed["_merge"] == "left_only"
    return {
        "gpus": int(intervals[["host", "device"]].drop_duplicates().shape[0]),
        "energy_kwh": round(float(intervals["energy_kwh"].sum()), 6),
        "counter_resets": int(intervals["counter_reset"].sum()),
        "gaps": len(gaps),
        "gap_energy_kwh": round(
            float(gaps["energy_kwh"].where(gaps["method"] == "dcgm:energy_counter", 0.0).sum()), 6
        ),
        "without_pod_energy_kwh": round(float(claimed.loc[unclaimed, "energy_kwh"].sum()), 6),
    }


def site_span(site: str, starts: pd.Series, ends: pd.Series) -> dict[str, Any]:
    """The site and the time a file covers (ISO text, None when it holds no rows)."""
    first, last = starts.dropna().min(), ends.dropna().max()
    return {
        "site": site,
        "span": None if pd.isna(first) or pd.isna(last) else [first.isoformat(), last.isoformat()],
    }


def coupled_usage_files(recorded: dict[str, dict[str, Any]], samples: pd.DataFrame) -> set[str]:
    """Usage files already in the ledger whose runs overlap the new telemetry of their site.
    (Files recorded before spans were kept carry no site: a `--force` run re-reads them.)"""
    spans = samples.groupby("site")["timestamp"].agg(["min", "max"])
    coupled = set()
    for name, record in recorded.items():
        span = record.get("span")
        if (
            record.get("kind") not in USAGE_KINDS
            or record.get("site") not in spans.index
            or not span
        ):
            continue
        first, last = spans.loc[record["site"]]
        if pd.Timestamp(span[0]) <= last and pd.Timestamp(span[1]) >= first:
            coupled.add(name)
    return coupled


def telemetry_summary(records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per site: the DCGM files read and what they held (summary.json `telemetry`). Pauses and
    resets are those inside each file; a pause between two files shows in the runs' coverage."""
    per_site: dict[str, dict[str, Any]] = {}
    for record in records.values():
        if record.get("kind") != "dcgm" or "telemetry" not in record:
            continue
        stats = record["telemetry"]
        site = per_site.setdefault(record["site"], {
            "site": record["site"], "files": 0, "samples": 0, "quarantined": 0, "gpus": 0,
            "energy_kwh": 0.0, "counter_resets": 0, "gaps": 0, "gap_energy_kwh": 0.0,
            "without_pod_energy_kwh": 0.0,
        })  # fmt: skip
        site["files"] += 1
        site["samples"] += record["rows_accepted"]
        site["quarantined"] += record["rows_quarantined"]
        site["gpus"] = max(site["gpus"], stats["gpus"])
        for key in (
            "energy_kwh",
            "counter_resets",
            "gaps",
            "gap_energy_kwh",
            "without_pod_energy_kwh",
        ):
            site[key] += stats[key]
    return [{k: round(v, 6) if isinstance(v, float) else v for k, v in s.items()}
            for _, s in sorted(per_site.items())]  # fmt: skip
