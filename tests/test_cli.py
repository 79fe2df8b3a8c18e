"""Command-line error paths: exit code and the one line the user reads; every command has help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reporting.cli import app
from tests.conftest import hb_config

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("command", ["run", "report", "validate", "demo", "version"])
def test_every_command_has_help(command: str) -> None:
    result = _invoke(command, "--help")
    assert result.exit_code == 0
    assert app.registered_commands and all(c.callback.__doc__ for c in app.registered_commands)


def test_missing_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = _invoke("run", "--config", str(tmp_path / "nope.toml"), "--date", "2026-07-01")
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {tmp_path / 'nope.toml'}: config file not found. Pass --config with an existing file."
    )


def test_wrong_config_key_names_file_and_key(tmp_path: Path) -> None:
    path = hb_config(tmp_path, extra="colour = 1")
    result = _invoke("validate", "--config", str(path))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: inputs[0].colour: unknown key")
    assert "Traceback" not in result.output


def test_missing_input_path_names_the_input(tmp_path: Path) -> None:
    path = hb_config(tmp_path)
    path.write_text(path.read_text().replace("hb-jobinfo_sacct.txt", "missing/*.txt"))
    result = _invoke(
        "run", "--config", str(path), "--date", "2024-04-30", "--out", str(tmp_path / "out")
    )
    assert result.exit_code == 1
    assert "inputs[0].path: no file matches" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "yesterday"], "--date 'yesterday' is not a date"),
        (["--date", "2024-04-30", "--period", "2024-Q5"], "--period '2024-Q5' is not a period"),
        (
            ["--date", "2024-04-30", "--period", "2024-05-01..2024-04-01"],
            "the end is before the start",
        ),
    ],
)
def test_bad_dates_and_periods(tmp_path: Path, args: list[str], message: str) -> None:
    result = _invoke(
        "run", "--config", str(hb_config(tmp_path)), *args, "--out", str(tmp_path / "out")
    )
    assert result.exit_code == 1
    assert message in result.output


def test_unknown_option_is_a_usage_error() -> None:
    assert _invoke("run", "--bogus").exit_code == 2


def test_validate_prints_counts_and_writes_nothing(tmp_path: Path) -> None:
    path = hb_config(tmp_path)
    result = _invoke("validate", "--config", str(path))
    assert result.exit_code == 0
    assert "242 read, 242 accepted, 0 quarantined" in result.output
    assert not (tmp_path / "out").exists()


def test_quality_gate_exits_3_and_still_writes_the_report(tmp_path: Path) -> None:
    path = hb_config(tmp_path, extra="max_quarantined_ratio = 0.0")
    dump = tmp_path / "hb-jobinfo_sacct.txt"
    dump.write_bytes(dump.read_bytes() + b"broken line\n")
    out = tmp_path / "out"
    result = _invoke(
        "run",
        "--config",
        str(path),
        "--date",
        "2024-04-30",
        "--period",
        "2024-04",
        "--out",
        str(out),
    )
    assert result.exit_code == 3
    assert "Data-quality gate" in result.output and "1 of 243 rows quarantined" in result.output
    assert (out / "report.pdf").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["quality_gate"]["passed"] is False
    assert "Data-quality gate failed" in (out / "report.html").read_text()
