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

USAGE_KINDS = ("slurm", "opencost")


def read_telemetry_input(
    paths: dict[str, Path], spec: Input
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Any]], dict[str, str]]:
    """(samples with their site, quarantine, per-file stats, file errors) of a dcgm input."""
    read = read_dcgm(paths)
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
        }  # fmt: skip
    return samples, read.quarantine, stats, read.file_errors


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
