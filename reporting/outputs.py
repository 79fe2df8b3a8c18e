"""Write a period's outputs: summary.json, quarantine.csv, report.html, report.pdf and the CSV
extracts of the report's tables (tables/*.csv)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reporting import extracts, report
from reporting.audit_findings import Findings
from reporting.csv_writer import write_csv, write_csv_tables
from reporting.schema import FINDING_COLUMNS

METHODOLOGY = {
    "gpu_formula": "GPU W = n_gpus × (W_min + u_gpu × (W_max − W_min)); u_gpu from Slurm gres/gpuutil "
    "(sum of per-GPU % over the step's GPUs ÷ 100 × GPUs, highest step), else the default utilisation",
    "cpu_formula": "CPU W = n_cpus × (W_min + u_cpu × (W_max − W_min)); u_cpu = TotalCPU ÷ (Elapsed × NCPUS)",
    "memory_formula": "memory W = requested GB × W per GB",
    "energy_formula": "IT kWh = measured Slurm ConsumedEnergyRaw when its mean power per node is plausible, "
    "else GPU kWh + (CPU W + memory W) × Elapsed, where GPU kWh is measured by DCGM telemetry (the "
    "energy counter's increase, else power integrated by the trapezoid rule; scrapes more than 300 s "
    "apart are not integrated) over the share of the run's GPU-time it covers and GPU W × the rest; "
    "facility kWh = IT kWh × PUE. Telemetry goes to Slurm jobs by host and time overlap (a host's GPUs "
    "shared by GPU count) and to pods by their pod labels (a time-sliced GPU split equally among its pods)",
    "carbon_formula": "location-based kg = facility kWh × grid g/kWh ÷ 1000; market-based uses the site's "
    "contractual instruments and residual mix (equal to location-based when none are configured)",
    "embodied_note": "Embodied emissions are a management allocation (amortised hardware per GPU-hour, or per "
    "core-hour for CPU-only jobs), reported as Scope 3.2 beside Scope 2 and never added into it.",
    "audit_note": "Findings (defaults, each configurable under [audit]): idle GPU — GPU utilisation ≤ 1 % "
    "for ≥ 30 min (Job Defense Shield): with DCGM telemetry the idle GPU-hours it saw, waste = their "
    "measured energy; without, a run whose mean utilisation is that low, waste = the run's GPU energy; "
    "low GPU utilisation < 15 % on ≥ 1 GPU-hour (jobstats), waste = GPU energy × (1 − utilisation) "
    "less the idle finding's; Kubernetes pods are judged per workload (namespace and controller) and "
    "month, an autoscaling or right-sizing candidate; low CPU efficiency < 65 % on "
    "CPU-only runs of ≥ 10 core-hours (jobstats), waste = CPU energy × (1 − efficiency); memory "
    "over-request, peak used / requested < 0.35 (Job Defense Shield), waste = memory energy × (1 − "
    "ratio); time limit over-request, elapsed / limit < 0.2 (Job Defense Shield), no energy waste; "
    "failed, timed-out, out-of-memory and node-failed runs ≥ 1 kWh, waste = the whole run. Energies "
    "are facility kWh; waste in kg CO2e uses the run's location-based intensity and in cost its cost per kWh. "
    "Cloud billing lines (per resource and billing period): unused commitments, waste = the unused "
    "amortised cost; untagged spend above 10 % of a period's usage cost (an attribution gap, no "
    "waste); on-demand GPU training or fine-tuning ≥ 24 GPU-hours as spot candidates, saving = cost × "
    "an assumed 60 % discount; steady on-demand GPU use on ≥ 20 days as commitment candidates, saving = "
    "cost × an assumed 30 % discount; GPU work in a region with a configured cleaner alternative, "
    "saving = kg CO2e × (1 − clean / current intensity). Cloud savings are estimates; none is counted "
    "as energy waste.",
    "time_note": "Each finished job is split over the UTC days it ran on in proportion to its time on each "
    "day; naive sacct timestamps are read in the site's timezone. Running and pending jobs are counted "
    "but not attributed until they finish.",
}

# Cells starting with these are read as formulas by spreadsheet programs (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Neutralise formula prefixes in text cells (a leading apostrophe), for CSV exports."""
    safe = frame.copy()
    for column in safe.columns:
        values = safe[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            risky = _risky(values)
            if isinstance(values.dtype, pd.StringDtype):  # stays text (Arrow-backed, fast)
                if risky.any():
                    safe[column] = values.where(~risky, "'" + values)
                continue
            text = values.astype(object)
            if risky.any():
                text = text.where(~risky, "'" + text[risky].astype(str))
            safe[column] = text
    return safe


def _risky(column: pd.Series) -> pd.Series:
    """Text cells that start with a formula prefix (only str values count, not numbers)."""
    if pd.api.types.infer_dtype(column) in ("string", "empty"):  # str values and missing only
        return column.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
    return column.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES)).astype(bool)


FORMULA_BYTES = np.zeros(256, dtype=bool)
FORMULA_BYTES[[ord(p) for p in FORMULA_PREFIXES]] = True


def csv_safe_table(table: pa.Table) -> pa.Table:
    """`csv_safe` of an Arrow table: text columns' risky cells get a leading apostrophe."""
    for number, column in enumerate(table.columns):
        if pa.types.is_string(column.type):
            text = column.combine_chunks()
            risky = _risky_cells(text)
            if risky is not None:
                quoted = pc.binary_join_element_wise("'", text.filter(risky), "")
                text = pc.replace_with_mask(text, risky, quoted)
                table = table.set_column(number, table.field(number), text)
    return table


def _risky_cells(text: pa.StringArray) -> pa.Array | None:
    """Which cells start with a formula prefix (all one byte), None if none does: their first
    bytes looked up at once."""
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset :][: len(text) + 1]
    data = text.buffers()[2]
    starts = offsets[:-1]
    filled = offsets[1:] > starts
    if data is None or not filled.any():
        return None
    first = np.frombuffer(data, dtype=np.uint8)[starts[filled]]
    risky = np.zeros(len(text), dtype=bool)
    risky[filled] = FORMULA_BYTES[first]
    if text.null_count:
        risky &= text.is_valid().to_numpy(zero_copy_only=False)
    return pa.array(risky) if risky.any() else None


def csv_text(frame: pd.DataFrame) -> str:
    """A CSV export: formula prefixes neutralised, RFC 4180 line ends. With `\r\n` as the line
    end the csv module quotes every cell holding a CR or LF; with `\n` it leaves a lone CR bare,
    which spreadsheets read as a new row whose first cell escaped `csv_safe`."""
    return csv_safe(frame).to_csv(index=False, lineterminator="\r\n")


def _write_csv(path: Path, frame: pd.DataFrame | Findings) -> None:
    """csv_text(frame) written to `path` (atomically), without holding the whole text; findings
    held on disk are written a ranked chunk at a time."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        if isinstance(frame, Findings):
            write_csv_tables((csv_safe_table(t) for t in frame.tables()), FINDING_COLUMNS, handle)
        else:
            write_csv(csv_safe(frame), handle)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def write_all(
    out_dir: Path,
    summary: dict[str, Any],
    context: dict[str, Any],
    quarantine: pd.DataFrame,
    findings: pd.DataFrame | Findings,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(
        out_dir / "summary.json",
        json.dumps(summary, indent=2, sort_keys=False, ensure_ascii=False) + "\n",
    )
    _write_csv(out_dir / "quarantine.csv", quarantine)
    _write_csv(out_dir / "findings.csv", findings)
    extracts.write_tables(out_dir / "tables", extracts.tables(summary, context), csv_text)
    html = report.render_html(context)
    report.write_html(html, out_dir / "report.html")
    report.write_pdf(html, out_dir / "report.pdf")
