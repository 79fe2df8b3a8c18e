"""Serving volume (requests and tokens per model and day): the reader's row accounting and
header errors, the store kept with the ledger, and kg CO2e per 1M tokens / 1k requests in
summary.json and the report, on a small real run."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from reporting import pipeline, serving, serving_intensity
from reporting.cli import app
from reporting.config import load_config
from reporting.errors import InputError
from reporting.ingest.limits import DEFAULT_LIMITS, Limits
from reporting.ledger import read_ledger
from reporting.period import parse_period
from reporting.summary import Period

ROOT = Path(__file__).parent.parent
HEADER = "model,day,requests,tokens\n"
GOOD = [
    "orca-7b,2026-07-01,1000,500000",
    "orca-7b,2026-07-02,2000,900000",
    "heron-vit,2026-07-01,10,4000",
]


def _read(tmp_path: Path, body: str, limits: Limits = DEFAULT_LIMITS) -> tuple:
    path = tmp_path / "volume.csv"
    path.write_text(body, encoding="utf-8")
    rows, quarantine, rows_read, error = serving.read_serving(path, "volume.csv", limits)
    assert rows_read == len(rows) + len(quarantine)  # every row accounted for
    return rows, quarantine, rows_read, error


def test_good_rows_are_typed(tmp_path: Path) -> None:
    rows, quarantine, rows_read, error = _read(tmp_path, HEADER + "\n".join(GOOD) + "\n")
    assert error is None and quarantine.empty and rows_read == 3
    assert list(rows.columns) == serving.SERVING_SCHEMA.names
    first = rows.iloc[0]
    assert (first["model"], first["day"], first["requests"], first["tokens"]) == (
        "orca-7b", date(2026, 7, 1), 1000, 500000)  # fmt: skip
    assert rows["line"].tolist() == [2, 3, 4]


def test_columns_in_any_order_and_case(tmp_path: Path) -> None:
    rows, _, _, _ = _read(tmp_path, "Tokens, DAY ,model,requests\n7,2026-07-01,m,3\n")
    assert (rows["tokens"].iloc[0], rows["requests"].iloc[0]) == (7, 3)


@pytest.mark.parametrize(
    ("line", "check", "words"),
    [
        (",2026-07-01,1,1", "required_value", "model is empty"),
        ("m,01/07/2026,1,1", "date", "day is not an ISO date (YYYY-MM-DD): 01/07/2026"),
        ("m,2026-02-30,1,1", "date", "2026-02-30"),
        ("m,2026-07-01,-5,1", "number", "requests is not a whole number ≥ 0 (digits only): -5"),
        ("m,2026-07-01,1,1.5", "number", "tokens is not a whole number ≥ 0 (digits only): 1.5"),
        ("m,2026-07-01,1,", "required_value", "tokens is empty"),
        ("m,2026-07-01,1", "field_count", "3 fields where the header has 4"),
        ("orca-7b,2026-07-01,5,5", "duplicate", "model and day repeat line 2 of this file"),
    ],
)
def test_bad_rows_are_quarantined_by_line(
    tmp_path: Path, line: str, check: str, words: str
) -> None:
    rows, quarantine, rows_read, _ = _read(tmp_path, HEADER + "\n".join([*GOOD, line]) + "\n")
    assert rows_read == 4 and len(rows) == 3
    (bad,) = quarantine.to_dict("records")
    assert (bad["source_file"], bad["line"], bad["check"]) == ("volume.csv", 5, check)
    assert words in bad["reason"]


def test_limits_bound_fields_and_rows(tmp_path: Path) -> None:
    long_name = "x" * 300
    rows, quarantine, _, _ = _read(
        tmp_path,
        HEADER + f"{long_name},2026-07-01,1,1\n" + GOOD[0] + "\n",
        Limits(max_field_bytes=100),
    )
    assert len(rows) == 1 and quarantine["check"].tolist() == ["field_too_long"]
    assert quarantine["line"].tolist() == [2]
    rows, quarantine, rows_read, error = _read(
        tmp_path, HEADER + "\n".join(GOOD) + "\n", Limits(max_rows=2)
    )
    assert rows.empty and quarantine.empty and rows_read == 0
    assert error and "max_rows" in error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("model,day,requests,tokens,region\nm,2026-07-01,1,1,x\n",
         "volume.csv: column 'region' is not a serving-volume column"),
        ("model,day,requests\nm,2026-07-01,1\n", "volume.csv: column 'tokens' is missing"),
        ("model,day,requests,tokens,model\n", "volume.csv: column 'model' appears twice"),
        ("", "volume.csv: column 'model' is missing"),
    ],
)  # fmt: skip
def test_header_mistakes_are_one_input_error(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        _read(tmp_path, body)


def test_store_replaces_the_rows_of_the_files_read(tmp_path: Path) -> None:
    root = tmp_path / "ledger"
    assert not serving.supplied(root) and serving.read_serving_volume(root).empty
    rows, _, _, _ = _read(tmp_path, HEADER + "\n".join(GOOD) + "\n")
    serving.write_serving(root, rows, ["volume.csv"])
    other = rows.assign(source_file="other.csv").head(1)
    serving.write_serving(root, other, ["other.csv"])
    serving.write_serving(root, rows.head(2), ["volume.csv"])  # the file shrank
    kept = serving.read_serving_volume(root)
    assert serving.supplied(root)
    assert sorted(zip(kept["source_file"], kept["line"], strict=True)) == [
        ("other.csv", 2), ("volume.csv", 2), ("volume.csv", 3)]  # fmt: skip


# --- intensity --------------------------------------------------------------------------------

PERIOD = Period(date(2026, 7, 1), date(2026, 7, 31), "2026-07")


def _ledger_rows() -> pd.DataFrame:
    return pd.DataFrame({
        "day": [date(2026, 7, 1), date(2026, 7, 2), date(2026, 7, 3), date(2026, 7, 1), date(2026, 7, 1)],
        "model": ["orca-7b", "orca-7b", "orca-7b", "orca-7b", "idle"],
        "phase": ["inference", "inference", "inference", "training", "inference"],
        "facility_energy_kwh": [10.0, 20.0, 5.0, 1000.0, 50.0],
        "co2e_location_kg": [4.0, 8.0, 2.0, 400.0, 20.0],
        "co2e_market_kg": [2.0, 4.0, 1.0, 200.0, 10.0],
    })  # fmt: skip


def _volume() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["orca-7b", "orca-7b", "orca-7b", "heron-vit"],
        "day": [date(2026, 7, 1), date(2026, 7, 2), date(2026, 8, 1), date(2026, 7, 1)],
        "requests": [1000, 3000, 99, 10], "tokens": [2_000_000, 6_000_000, 99, 4000],
    })  # fmt: skip


def test_only_the_inference_footprint_is_divided_by_the_volume_of_the_period() -> None:
    block = serving_intensity.per_model(_ledger_rows(), _volume(), PERIOD)
    assert block["available"] is True
    heron, orca = block["models"]
    # 14 kg over the three July inference days (training and the idle rows left out), 8M tokens
    # and 4k requests on July days (the August line is outside the period)
    assert (orca["tokens"], orca["requests"]) == (8_000_000, 4000)
    assert orca["inference_location_kg"] == pytest.approx(14.0)
    assert orca["location_kg_per_1m_tokens"] == pytest.approx(14.0 / 8)
    assert orca["market_kg_per_1m_tokens"] == pytest.approx(7.0 / 8)
    assert orca["location_kg_per_1k_requests"] == pytest.approx(14.0 / 4)
    assert orca["inference_days_without_volume"] == 1  # 2026-07-03 used, no volume
    assert heron["location_kg_per_1m_tokens"] is None  # volume, but no inference footprint
    assert block["inference_models_without_volume"] == []


def test_without_volume_the_metric_says_why() -> None:
    assert serving_intensity.per_model(_ledger_rows(), None, PERIOD) == {
        "available": False, "reason": serving_intensity.NOT_SUPPLIED}  # fmt: skip
    later = Period(date(2026, 9, 1), date(2026, 9, 30), "2026-09")
    assert serving_intensity.per_model(_ledger_rows(), _volume(), later)["reason"] == (
        serving_intensity.NONE_IN_PERIOD
    )


# --- through the pipeline -------------------------------------------------------------------------

CONFIG = """
[organisation]
name = "Serving test lab"

[[sites]]
name = "atlas"
grid_zone = "US-SRVC"
timezone = "America/New_York"
gpu_types = {{ a100 = "A100-SXM4-80GB", h100 = "H100-SXM5-80GB" }}

[[inputs]]
kind = "slurm"
path = "sacct.psv"
site = "atlas"

[[inputs]]
kind = "serving_volume"
path = "{serving}"

[[owners]]
match = {{ job_name = "^eval-(?P<model>orca-7b)-" }}
model = "{{model}}"
phase = "inference"
[[owners]]
match = {{ job_name = "^ft-(?P<model>heron-vit)-" }}
model = "{{model}}"
phase = "training"
"""
VOLUME = HEADER + "orca-7b,2026-07-01,4000,8000000\norca-7b,2026-07-02,-1,5\n" \
    "orca-7b,2026-08-01,5,5\nheron-vit,2026-07-01,10,4000\n"  # fmt: skip


def _install(folder: Path, volume: str = VOLUME) -> Path:
    lines = (ROOT / "sample_logs/slurm/atlas/sacct-2026-07.psv").read_text().splitlines()[:40]
    (folder / "sacct.psv").write_text("\n".join(lines) + "\n")
    (folder / "volume.csv").write_text(volume, encoding="utf-8")
    config = folder / "greenops.toml"
    config.write_text(CONFIG.format(serving="volume.csv"), encoding="utf-8")
    return config


def test_serving_volume_through_run_into_summary_and_report(tmp_path: Path) -> None:
    config = _install(tmp_path)
    options = pipeline.RunOptions(
        started_at=datetime(2026, 8, 1, tzinfo=UTC), force=True, notify="off"
    )
    pipeline.run(
        load_config(config), date(2026, 7, 31), parse_period("2026-07"), tmp_path / "out", options
    )
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    stats = next(i for i in summary["inputs"] if i["kind"] == "serving_volume")
    assert (stats["rows_read"], stats["rows_accepted"], stats["rows_quarantined"]) == (4, 3, 1)
    quarantine = pd.read_csv(tmp_path / "out" / "quarantine.csv")
    bad = quarantine[quarantine["source_file"] == "volume.csv"]
    assert bad["line"].tolist() == [3] and bad["check"].tolist() == ["number"]

    ledger = read_ledger(tmp_path / "out" / "ledger", date(2026, 7, 1), date(2026, 7, 31))
    inference = ledger[(ledger["model"] == "orca-7b") & (ledger["phase"] == "inference")]
    assert not inference.empty
    block = summary["intensity"]["serving_volume"]
    orca = next(m for m in block["models"] if m["model"] == "orca-7b")
    assert orca["tokens"] == 8_000_000 and orca["requests"] == 4000
    assert orca["location_kg_per_1m_tokens"] == pytest.approx(
        inference["co2e_location_kg"].sum() / 8, rel=1e-6
    )
    assert orca["market_kg_per_1k_requests"] == pytest.approx(
        inference["co2e_market_kg"].sum() / 4, rel=1e-6
    )

    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<h3>Per model served</h3>" in html
    assert "no serving volume was supplied" not in html
    extract = pd.read_csv(tmp_path / "out" / "tables" / "intensity_per_model_served.csv")
    assert extract["model"].tolist() == ["heron-vit", "orca-7b"]


def test_an_unknown_column_stops_the_run_naming_file_and_column(tmp_path: Path) -> None:
    config = _install(tmp_path, "model,date,requests,tokens\norca-7b,2026-07-01,1,1\n")
    result = CliRunner().invoke(
        app, ["run", "--config", str(config), "--out", str(tmp_path / "out"),
              "--date", "2026-07-31", "--period", "2026-07"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "volume.csv: column 'date' is not a serving-volume column" in result.output
    assert "Traceback" not in result.output
