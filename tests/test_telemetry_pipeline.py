"""DCGM telemetry through `greenops run`: measured GPU energy replaces the model for the jobs it
covers, on the night it arrives even when the jobs were read on an earlier night."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reporting.cli import app
from reporting.ledger import read_ledger

HEADER = "JobID|JobName|User|Account|Partition|NodeList|NNodes|NCPUS|State|Submit|Start|End|Elapsed|AllocTRES"
# One 2-GPU job for an hour on gpu01, one CPU job, one 1-GPU job on a host without telemetry.
ROWS = (
    ("101|train|ana|ml|gpu|gpu01|1|16", "cpu=16,gres/gpu=2,mem=64G,node=1"),
    ("102|prep|ana|ml|cpu|cpu01|1|8", "cpu=8,mem=16G,node=1"),
    ("103|eval|bo|ml|gpu|gpu02|1|8", "cpu=8,gres/gpu=1,mem=32G,node=1"),
)
TIMES = "COMPLETED|2026-07-01T09:00:00|2026-07-01T10:00:00|2026-07-01T11:00:00|01:00:00"
SACCT = "\n".join([HEADER, *(f"{job}|{TIMES}|{tres}" for job, tres in ROWS)]) + "\n"


def _dcgm(watts: dict[str, float], util_pct: dict[str, float]) -> str:
    """query_range JSON: each GPU of gpu01 at constant power and utilisation 09:50–11:10 UTC."""
    start = int(datetime(2026, 7, 1, 9, 50, tzinfo=UTC).timestamp())
    times = range(start, start + 80 * 60 + 1, 60)
    result = []
    for gpu, w in watts.items():
        labels = {"Hostname": "gpu01", "gpu": gpu, "UUID": f"GPU-{gpu}", "modelName": "H100"}
        for name, value in (
            ("DCGM_FI_DEV_POWER_USAGE", w),
            ("DCGM_FI_DEV_GPU_UTIL", util_pct[gpu]),
        ):
            result.append({"metric": {"__name__": name, **labels},
                           "values": [[t, str(value)] for t in times]})  # fmt: skip
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})


def _write(tmp_path: Path, telemetry: bool) -> Path:
    (tmp_path / "sacct.psv").write_text(SACCT)
    (tmp_path / "dcgm").mkdir(exist_ok=True)
    if telemetry:
        (tmp_path / "dcgm" / "day1.json").write_text(_dcgm({"0": 300.0, "1": 300.0}, {"0": 0.0, "1": 80.0}))  # fmt: skip
    config = tmp_path / "greenops.toml"
    config.write_text(
        '[organisation]\nname = "lab"\n[[sites]]\nname = "lab"\ngrid_zone = "US-SRVC"\n'
        'timezone = "UTC"\ngpu_model = "H100-SXM5-80GB"\ncpu_model = "amd-epyc-7763"\n'
        '[[inputs]]\nkind = "slurm"\npath = "sacct.psv"\nsite = "lab"\n'
        '[[inputs]]\nkind = "dcgm"\npath = "dcgm/*.json"\nsite = "lab"\n',
        encoding="utf-8",
    )
    return config


def _run(config: Path, out: Path, night: str = "2026-07-01") -> None:
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--date", night, "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output


def _jobs(out: Path):
    ledger = read_ledger(out / "ledger", date(2026, 7, 1), date(2026, 7, 1))
    return ledger.set_index("job_name")


def test_telemetry_replaces_the_modelled_gpu_energy_of_covered_jobs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(_write(tmp_path, telemetry=True), out)
    jobs = _jobs(out)
    train = jobs.loc["train"]
    # Two GPUs at exactly 300 W for the job's hour: 0.6 kWh, whatever the power model says.
    assert train["gpu_energy_kwh"] == pytest.approx(0.6)
    assert train["gpu_energy_telemetry_kwh"] == pytest.approx(0.6)
    assert train["energy_method"] == "telemetry" and train[
        "telemetry_coverage_ratio"
    ] == pytest.approx(1.0)
    assert train["gpu_util_ratio"] == pytest.approx(0.4)  # (0 % + 80 %) / 2 from DCGM
    assert train["idle_gpu_hours"] == pytest.approx(1.0)  # GPU 0 idle all hour
    assert train["idle_gpu_energy_kwh"] == pytest.approx(0.3)
    assert "DCGM" in train["energy_note"]
    assert jobs.loc["eval", "energy_method"] == "modelled"  # gpu02 has no telemetry
    assert jobs.loc["prep", "energy_method"] == "modelled"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["gpu_energy"]["telemetry_kwh"] == pytest.approx(0.6)
    assert summary["gpu_energy"]["runs_with_telemetry"] == 1
    assert summary["findings"]["by_rule"]["idle_gpu"] == 1  # GPU 0's idle hour (≥ 30 min)
    assert "DCGM telemetry" in (out / "report.html").read_text()


def test_telemetry_arriving_a_night_later_reattributes_the_jobs_it_covers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = _write(tmp_path, telemetry=False)
    (tmp_path / "dcgm" / "empty.json").write_text(
        json.dumps({"status": "success", "data": {"result": []}})
    )
    _run(config, out)
    assert _jobs(out).loc["train", "energy_method"] == "modelled"
    modelled_kwh = _jobs(out).loc["train", "gpu_energy_kwh"]
    _write(tmp_path, telemetry=True)  # the night's DCGM file lands; the sacct dump is unchanged
    _run(config, out, night="2026-07-02")
    train = _jobs(out).loc["train"]
    assert train["energy_method"] == "telemetry"
    assert train["gpu_energy_kwh"] == pytest.approx(0.6) and modelled_kwh != pytest.approx(0.6)
    again = tmp_path / "again"  # the same inputs read at once give the same ledger rows
    _run(config, again, night="2026-07-02")
    assert _jobs(again).loc["train", "gpu_energy_kwh"] == pytest.approx(train["gpu_energy_kwh"])
