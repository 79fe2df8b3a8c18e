"""Run manifests: what a run read, with which config and tool, how long each stage took, and how
it ended. One JSON file per run under `<out>/runs/`; the report's assurance appendix uses the
deterministic part of it (hashes and counts, never timings).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reporting import __version__

if TYPE_CHECKING:
    from reporting.config import Config
    from reporting.intake import Intake
    from reporting.summary import Period

RUNS_DIR = "runs"


class Timer:
    """Seconds spent per stage (a monotonic clock: durations only, never dates)."""

    def __init__(self, on_lap: Callable[[str], None] | None = None) -> None:
        self.stages_s: dict[str, float] = {}
        self._last = time.perf_counter()
        self._on_lap = on_lap  # e.g. a progress bar

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages_s[stage] = round(now - self._last, 3)
        self._last = now
        if self._on_lap is not None:
            self._on_lap(stage)


def batch_id(fingerprints: dict[str, dict[str, Any]]) -> str:
    """Content id of the inputs a run processed: same files, same id, whatever the date; the
    ledger's `run_id` column holds it, so every row names the input versions it came from."""
    digest = hashlib.sha256(
        repr(sorted((k, v["sha256"]) for k, v in fingerprints.items())).encode()
    )
    return f"batch-{digest.hexdigest()[:12]}"


def config_sha256(config: Config) -> str:
    return hashlib.sha256(config.config_file.read_bytes()).hexdigest()


def assurance(config: Config, fingerprints: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The reproducible part: tool version, config hash, every input file with its hash."""
    return {
        "tool_version": __version__,
        "config_file": config.config_file.name,
        "config_sha256": config_sha256(config),
        "inputs": [{"source_file": name, **fp} for name, fp in sorted(fingerprints.items())],
    }


def write(
    out_dir: Path,
    config: Config,
    run_date: date,
    period: Period,
    started_at: datetime,
    fingerprints: dict[str, dict[str, Any]],
    processed: set[str],
    intake: Intake | None,
    timer: Timer,
    gate_failures: list[str],
) -> Path:
    """Write `<out>/runs/<started_at>_<run date>.json` and return its path."""
    counts = intake.files if intake else {}
    inputs = [
        {
            "source_file": name,
            **fp,
            "status": "processed" if name in processed else "unchanged",
            **{
                k: counts[name][k]
                for k in ("rows_read", "rows_accepted", "rows_quarantined")
                if name in counts
            },
        }
        for name, fp in sorted(fingerprints.items())
    ]
    run_id = f"{started_at.strftime('%Y%m%dT%H%M%SZ')}_{run_date.isoformat()}_{os.getpid()}"
    record = {
        "run_id": run_id,
        "batch_id": batch_id({n: fingerprints[n] for n in processed}) if processed else None,
        **assurance(config, fingerprints),
        "run_date": run_date.isoformat(),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "started_at": started_at.isoformat(),
        "inputs": inputs,
        "stages_s": timer.stages_s,
        "status": "data_quality_gate_failed" if gate_failures else "ok",
        "gate_failures": gate_failures,
    }
    folder = out_dir / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
