"""The installed `greenops` console script, end to end, in a subprocess, on real sample files."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.conftest import hb_config

ROOT = Path(__file__).parent.parent
GREENOPS = Path(sys.executable).parent / "greenops"
HB_RUN = ("--date", "2024-04-30", "--period", "2023-01-01..2024-12-31", "--out", "out")


def _greenops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GREENOPS), *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def _ledger_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def hb_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("hb")
    config = hb_config(folder)
    result = _greenops("run", "--config", str(config), *HB_RUN, cwd=folder)
    return folder, result


def test_console_script_is_installed() -> None:
    assert GREENOPS.exists(), "run `make test`: it installs the package into .venv"


def test_hb_sample_every_line_accounted_and_energy_non_zero(hb_run) -> None:
    folder, result = hb_run
    assert result.returncode == 0, result.stderr
    summary = json.loads((folder / "out" / "summary.json").read_text())
    (inputs,) = summary["inputs"]
    assert (inputs["rows_read"], inputs["rows_accepted"], inputs["rows_quarantined"]) == (
        242,
        242,
        0,
    )
    assert summary["totals"]["facility_energy_kwh"] > 0
    assert summary["totals"]["co2e_location_kg"] > 0
    assert summary["totals"]["jobs"] == 90  # 100 runs, 7 pending and 3 running not attributed
    assert sum(summary["energy_methods"].values()) == pytest.approx(1.0)
    assert set(summary) >= {
        "period",
        "totals",
        "by_team",
        "by_model",
        "by_phase",
        "by_site",
        "inputs",
        "energy_methods",
        "findings",
    }
    assert "INFO reporting: attributed 90 runs" in result.stderr


def test_pdf_and_html_are_written(hb_run) -> None:
    folder, _ = hb_run
    pdf = (folder / "out" / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-")
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) >= 3
    assert "Hábrók sample" in pages[0].extract_text()
    html = (folder / "out" / "report.html").read_text()
    assert "Factor register" in html and "grid:NL:2023" in html
    assert "V100-PCIE-32GB" in html
    sample_sha256 = hashlib.sha256((folder / "hb-jobinfo_sacct.txt").read_bytes()).hexdigest()
    assert "Appendix B — Assurance" in html and sample_sha256 in html


def test_rerunning_the_same_date_gives_byte_identical_outputs(hb_run) -> None:
    folder, _ = hb_run
    before = _ledger_bytes(folder / "out" / "ledger")
    html = (folder / "out" / "report.html").read_bytes()
    pdf = (folder / "out" / "report.pdf").read_bytes()
    again = _greenops("run", "--config", "greenops.toml", *HB_RUN, cwd=folder)
    assert again.returncode == 0, again.stderr
    assert _ledger_bytes(folder / "out" / "ledger") == before
    assert (folder / "out" / "report.html").read_bytes() == html
    assert (folder / "out" / "report.pdf").read_bytes() == pdf


def test_report_verb_renders_from_the_ledger_alone(hb_run, tmp_path: Path) -> None:
    folder, _ = hb_run
    (folder / "hb-jobinfo_sacct.txt").rename(folder / "moved.txt")  # inputs are not read
    try:
        result = _greenops(
            "report", "--config", "greenops.toml", "--period", "2024-04", "--out", "out", cwd=folder
        )
    finally:
        (folder / "moved.txt").rename(folder / "hb-jobinfo_sacct.txt")
    assert result.returncode == 0, result.stderr
    summary = json.loads((folder / "out" / "summary.json").read_text())
    assert summary["period"] == {"start": "2024-04-01", "end": "2024-04-30", "label": "2024-04"}
    assert 0 < summary["totals"]["facility_energy_kwh"]


def test_user_error_exit_1_without_traceback(tmp_path: Path) -> None:
    result = _greenops("run", "--config", "missing.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: missing.toml: config file not found")
    assert "Traceback" not in result.stderr
