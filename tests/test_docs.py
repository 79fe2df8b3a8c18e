"""The README's examples work as written: its config reference, its cron line and systemd unit."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from reporting.config import parse_config
from tests.conftest import hb_config

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
GREENOPS = Path(sys.executable).parent / "greenops"


def _block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)
    (block,) = [b for b in blocks if containing in b]
    return block


def test_config_reference_is_a_valid_config(tmp_path: Path) -> None:
    text = _block("toml", "[organisation]")
    config = parse_config(tomllib.loads(text), tmp_path / "greenops.toml")
    assert config.sites[0].partitions[0].name == "h100"


def _install_at(folder: Path) -> None:
    """A deployment like the README's /srv/greenops: a config, its dumps, and .venv/bin/greenops."""
    hb_config(folder)
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "greenops").symlink_to(GREENOPS)


@pytest.mark.parametrize(
    ("language", "marker", "pattern"),
    [
        ("cron", "MAILTO", r"^15 2 \* \* \*\s+(.*)$"),
        ("ini", "ExecStart", r"^ExecStart=(.*)$"),
    ],
)
def test_scheduled_command_runs_as_written(
    tmp_path: Path, language: str, marker: str, pattern: str
) -> None:
    (command,) = re.findall(pattern, _block(language, marker), flags=re.MULTILINE)
    _install_at(tmp_path)
    command = command.replace("/srv/greenops", str(tmp_path))
    result = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "report.pdf").exists() and (
        tmp_path / "out" / "summary.json"
    ).exists()
