"""The quarterly ESG report as a reader gets it: the sample quarter's HTML in headless Chromium,
its PDF as PNG pages (pdftoppm) and text (pdftotext), its CSV extracts, restatements after a
factor changes, and hostile text from the inputs.

The browser and PDF checks skip only on a machine where they cannot be installed (not root and
the binary missing); as root (CI) a missing binary is a failure: `make install-test` installs
`chromium` and `poppler-utils` with apt-get.
"""

from __future__ import annotations

import csv
import html as html_lib
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import escape
from PIL import Image
from pypdf import PdfReader

from reporting import pipeline
from reporting.config import load_config
from reporting.period import parse_period
from reporting.report_sections import format_kpi, format_tonnes
from tests import chromium

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "snapshots" / "demo_report_sections.txt"
SECTIONS = (
    "Contents", "Scope statement", "Headline totals", "Energy", "Emissions by scope",
    "Attribution", "Cloud (Scope 3.1)", "Trend", "Intensity", "Location", "Model footprint cards",
    "Efficiency findings", "Energy methods", "Data coverage", "Defaults used", "Uncertainty",
    "Methodology", "Restatements", "Appendix A — Factor register", "Appendix B — Assurance",
)  # fmt: skip
GOLDEN_SECTIONS = ("scope", "totals", "energy", "emissions", "trend", "intensity", "location",
                   "models", "uncertainty", "restatements")  # fmt: skip
HOSTILE_IMG = '<img src="http://127.0.0.1:9/x">'
HOSTILE_FILE = "file:///etc/passwd"
PNG_DPI = 50
MM_PER_INCH = 25.4
A4_MARGINS_MM = {"top": 20, "right": 15, "bottom": 18, "left": 15}  # report.css @page
INK_BELOW = 245  # a pixel darker than this (0–255 grey) is ink


def need(binary: str) -> str:
    """The binary's path; skip when it is missing and cannot be installed here, fail as root."""
    found = chromium.binary() if binary == "chromium" else shutil.which(binary)
    if found:
        return found
    if os.geteuid() == 0:
        pytest.fail(f"{binary} is missing: `make install-test` installs it with apt-get")
    pytest.skip(f"{binary} is not installed and this user cannot install it (not root)")


class _SectionText(HTMLParser):
    """Text of each <section id=...> of the document, whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.text: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.stack.append(dict(attrs).get("id"))
        if self.stack and self.stack[-1]:
            breaks = tag in ("tr", "p", "li", "h2", "h3", "dt", "caption")
            self.text.setdefault(str(self.stack[-1]), []).append("\n" if breaks else " ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1]:
            self.text.setdefault(str(self.stack[-1]), []).append(data)


def section_text(html: str) -> dict[str, str]:
    html = re.sub(r"<svg.*?</svg>", "", html, flags=re.DOTALL)  # charts are checked on their own
    parser = _SectionText()
    parser.feed(html)
    return {k: "\n".join(" ".join(line.split()) for line in "".join(v).split("\n") if line.strip())
            for k, v in parser.text.items()}  # fmt: skip


@pytest.fixture(scope="module")
def demo(demo_out_session: Path) -> dict[str, object]:
    html = (demo_out_session / "report.html").read_text(encoding="utf-8")
    summary = json.loads((demo_out_session / "summary.json").read_text(encoding="utf-8"))
    return {"out": demo_out_session, "html": html, "summary": summary, "text": section_text(html)}


# --- content -------------------------------------------------------------------------------------


@pytest.mark.parametrize("heading", SECTIONS)
def test_every_section_heading_is_in_the_sample_report(demo: dict, heading: str) -> None:
    assert f">{html_lib.escape(heading, quote=False)}</h2>" in demo["html"]


def test_headline_kpis_equal_summary_json(demo: dict) -> None:
    lines = demo["text"]["totals"].splitlines()
    for kpi in demo["summary"]["kpis"]:
        row = next(line for line in lines if line.startswith(kpi["label"]))
        assert format_kpi(kpi["value"], kpi["unit"]) in row, (kpi, row)


def test_scopes_regions_and_months_equal_summary_json(demo: dict) -> None:
    summary, text = demo["summary"], demo["text"]
    scope2 = next(r for r in summary["by_scope"] if r["scope"] == "2")
    assert f"Scope 2 Electricity of on-premises compute {format_tonnes(scope2['co2e_location_kg'])} " \
           f"{format_tonnes(scope2['co2e_market_kg'])}" in text["emissions"]  # fmt: skip
    for month in summary["by_month"]:
        assert f"{month['month']} " in text["trend"]
        assert format_tonnes(month["co2e_location_kg"]) in text["trend"]
    regions = {r["region"] for r in summary["by_region"]}
    assert {"US-SRVC", "SE", "US-NWPP"} <= regions
    totals = summary["totals"]
    for name in ("by_region", "by_gpu_model", "by_team", "by_model"):
        rows = summary[name]
        assert sum(r["co2e_location_kg"] for r in rows) == pytest.approx(totals["co2e_location_kg"])
        assert sum(r["facility_energy_kwh"] for r in rows) == pytest.approx(
            totals["facility_energy_kwh"]
        )


def test_unallocated_line_in_every_attribution_table(demo: dict) -> None:
    for table_id in ("by-team", "by-model", "by-phase", "by-region", "by-gpu-type"):
        block = demo["html"].split(f'id="{table_id}"', 1)[1].split("</section>", 1)[0]
        assert '<tr class="unallocated">' in block, table_id


def test_sample_report_sections_match_the_golden_text(demo: dict) -> None:
    text = "\n\n".join(f"## {s}\n{demo['text'][s]}" for s in GOLDEN_SECTIONS) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "review the diff; UPDATE_GOLDEN=1 rewrites it"
    )


def test_no_comparison_period_in_the_ledger_is_said(demo: dict) -> None:
    assert demo["summary"]["comparisons"]["previous_quarter"]["available"] is False
    assert (
        "Previous quarter (2026-04-01 to 2026-06-30): no data for the comparison period."
        in demo["text"]["totals"]
    )


def test_charts_are_inline_svg_with_alt_text_and_unique_ids(demo: dict) -> None:
    html = demo["html"]
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.DOTALL)
    assert len(svgs) >= 12
    for svg in svgs:
        assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg
        assert "<style" not in svg and "<dc:date>" not in svg
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids repeat between charts"
    for ref in re.findall(r'(?:href="|url\()#([^")]+)', html):
        assert ref in ids, ref


def test_csv_extracts_of_every_table(demo: dict) -> None:
    tables = demo["out"] / "tables"
    names = {p.stem for p in tables.glob("*.csv")}
    assert {"headline_kpis", "by_region", "by_gpu_model", "monthly", "model_cards", "location",
            "uncertainty", "uncertainty_sensitivity", "emissions_by_scope", "energy_by_site",
            "intensity", "factor_register", "publications", "trailing_quarters"} <= names  # fmt: skip
    with (tables / "headline_kpis.csv").open(encoding="utf-8") as f:
        rows = {r["key"]: float(r["value"]) for r in csv.DictReader(f)}
    assert rows == {k["key"]: pytest.approx(k["value"]) for k in demo["summary"]["kpis"]}


def test_findings_table_shows_the_25_largest_and_counts_the_rest(demo: dict) -> None:
    count = demo["summary"]["findings"]["count"]
    block = demo["html"].split('<table class="numbers findings">', 1)[1].split("</table>", 1)[0]
    assert block.count("<tr>") == 1 + 25  # header row and 25 findings
    assert f"{count - 25:,} more findings in <code>findings.csv</code>." in demo["html"]
    with (demo["out"] / "findings.csv").open(encoding="utf-8", newline="") as f:
        assert sum(1 for _ in csv.DictReader(f)) == count


def test_method_changes_are_marked_on_the_trend_chart_and_noted(demo: dict) -> None:
    changes = demo["summary"]["method_changes"]["by_month"]
    assert [c["from"] for c in changes] == ["2026-08"]  # DCGM telemetry starts in August
    monthly = demo["html"].split('id="chart-monthly"', 1)[1].split("</svg>", 1)[0]
    desc = html_lib.unescape(monthly.split("<desc", 1)[1].split("</desc>", 1)[0])
    for change in changes:
        said = f"{change['mark']} between {change['after']} and {change['from']}: "
        assert said + ", ".join(change["reasons"]) in desc
        note = (
            f"Marked {change['mark']}: method change between {change['after']} and {change['from']}"
        )
        assert note in demo["text"]["trend"]


def test_model_cards_with_telemetry_show_their_measured_idle_share(demo: dict) -> None:
    with (demo["out"] / "tables" / "model_cards.csv").open(encoding="utf-8", newline="") as f:
        cards = {r["model"]: r for r in csv.DictReader(f)}
    measured = {m for m, c in cards.items() if float(c["idle_measured_kg"]) > 0}
    assert {"orca-7b", "orca-7b-chat", "orca-70b-chat"} <= measured
    for model in measured:
        card = cards[model]
        assert float(card["dynamic_kg"]) + float(card["idle_measured_kg"]) == pytest.approx(
            float(card["co2e_location_kg"]), abs=1e-5
        )
    assert "Telemetry covered" in demo["text"]["models"]
    assert "No telemetry for its runs" in demo["text"]["models"]  # heron-vit has none


def test_published_summary_is_kept_in_the_ledger(demo: dict) -> None:
    folder = demo["out"] / "ledger" / "_published" / "2026-07-01..2026-09-30"
    record = json.loads((folder / "2026-09-30.json").read_text(encoding="utf-8"))
    assert record["values"] == {k["key"]: k["value"] for k in demo["summary"]["kpis"]}
    assert demo["summary"]["restatements"]["restated"] is False


# --- as a reader: browser and PDF pages ----------------------------------------------------------


def test_browser_shows_every_section_without_errors_or_requests(demo: dict) -> None:
    need("chromium")
    page = chromium.open_page(chromium.file_url(demo["out"] / "report.html"))
    assert page.errors() == []
    assert page.failed == []
    assert page.requests == [chromium.file_url(demo["out"] / "report.html")]
    assert [t.strip() for t in page.texts] == list(SECTIONS)


def _pdftotext(pdf: Path, first: int, last: int) -> str:
    args = ["pdftotext", "-layout", "-f", str(first), "-l", str(last), str(pdf), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def test_pdf_pages_contents_and_no_overflow(demo: dict, tmp_path: Path) -> None:
    need("pdftoppm")
    pdf = demo["out"] / "report.pdf"
    pages = len(PdfReader(pdf).pages)
    subprocess.run(
        ["pdftoppm", "-r", str(PNG_DPI), "-png", str(pdf), str(tmp_path / "page")], check=True
    )
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == pages >= 25
    contents = _pdftotext(pdf, 1, 2)
    for heading in SECTIONS[1:]:
        found = re.search(rf"{re.escape(heading)}\s*\.*\s*(\d+)\s*$", contents, flags=re.MULTILINE)
        assert found, f"{heading} missing from the contents"
        target = int(found.group(1))
        assert heading in " ".join(_pdftotext(pdf, target, target).split()), (heading, target)
    for number, image in enumerate(images, start=1):
        assert _margin_ink(image) == [], f"page {number}: content runs into the side margins"


def _margin_ink(path: Path) -> list[tuple[int, int]]:
    """Dark pixels in the left and right page margins (between header and footer areas)."""
    image = Image.open(path).convert("L")
    width, height = image.size
    px_per_mm = PNG_DPI / MM_PER_INCH
    side = int(A4_MARGINS_MM["right"] * px_per_mm) - 2
    top, bottom = (
        int(A4_MARGINS_MM["top"] * px_per_mm) + 2,
        height - int(A4_MARGINS_MM["bottom"] * px_per_mm) - 2,
    )
    pixels = image.load()
    return [(x, y) for y in range(top, bottom) for x in (*range(side), *range(width - side, width))
            if pixels[x, y] < INK_BELOW]  # fmt: skip


# --- restatements and hostile text, on a small ledger --------------------------------------------

CONFIG = """
[organisation]
name = "Quarterly test lab"

[[sites]]
name = "atlas"
grid_zone = "US-SRVC"
timezone = "America/New_York"
pue = {pue}
pue_source = "test meter"
gpu_types = {{ a100 = "A100-SXM4-80GB", h100 = "H100-SXM5-80GB" }}

[[inputs]]
kind = "slurm"
path = "sacct.psv"
site = "atlas"

[[owners]]
match = {{ job_name = "^(?P<model>(?!batch$|extern$).+)$" }}
model = "{{model}}"
"""
HOSTILE_JOBS = {"ft-heron-vit-01": HOSTILE_IMG, "jupyter": HOSTILE_FILE}


def _small_ledger(folder: Path, pue: float) -> Path:
    """The first 40 lines of the atlas July dump, two job names made hostile."""
    lines = (ROOT / "sample_logs/slurm/atlas/sacct-2026-07.psv").read_text().splitlines()[:40]
    fields = [line.split("|") for line in lines]
    for row in fields[1:]:
        row[2] = HOSTILE_JOBS.get(row[2], row[2])
    (folder / "sacct.psv").write_text("\n".join("|".join(r) for r in fields) + "\n")
    config = folder / "greenops.toml"
    config.write_text(CONFIG.format(pue=pue), encoding="utf-8")
    return config


def _run(config: Path, out: Path) -> dict[str, object]:
    options = pipeline.RunOptions(
        started_at=datetime(2026, 8, 1, tzinfo=UTC), force=True, notify="off"
    )
    pipeline.run(load_config(config), date(2026, 7, 31), parse_period("2026-07"), out, options)
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("small")
    first = _run(_small_ledger(folder, 1.3), folder / "out")
    return {"folder": folder, "first": first}


def test_hostile_job_names_render_as_text(small: dict) -> None:
    html = (small["folder"] / "out" / "report.html").read_text(encoding="utf-8")
    assert "<img" not in html
    assert str(escape(HOSTILE_IMG)) in html
    assert HOSTILE_FILE in html
    text = (
        _pdftotext(small["folder"] / "out" / "report.pdf", 1, 99)
        if shutil.which("pdftotext")
        else ""
    )
    if text:
        assert HOSTILE_FILE in text and "127.0.0.1:9/x" in text
    if chromium.binary() or os.geteuid() == 0:
        need("chromium")
        page = chromium.open_page(chromium.file_url(small["folder"] / "out" / "report.html"))
        assert page.errors() == [] and page.failed == []
        assert len(page.requests) == 1


def test_without_serving_volume_the_intensity_says_so(small: dict) -> None:
    assert small["first"]["intensity"]["serving_volume"]["available"] is False
    html = (small["folder"] / "out" / "report.html").read_text(encoding="utf-8")
    intensity = section_text(html)["intensity"]
    said = (
        "kg CO2e per 1M tokens · per 1k requests — —\nnot available: no serving volume was supplied"
    )
    assert said in intensity
    assert "Per model served" not in intensity


def test_restatement_shown_after_a_factor_changes(small: dict) -> None:
    folder = small["folder"]
    assert small["first"]["restatements"]["restated"] is False
    second = _run(_small_ledger(folder, 1.4), folder / "out")
    block = second["restatements"]
    assert block["restated"] is True and block["significant"] is True
    assert "factor config:sites.atlas.pue: 1.3 → 1.4" in block["reasons"]
    energy = next(c for c in block["changes"] if c["key"] == "facility_energy_kwh")
    assert energy["restated"] == pytest.approx(energy["published"] * 1.4 / 1.3)
    html = (folder / "out" / "report.html").read_text(encoding="utf-8")
    assert "Figures restated since the first publication of 2026-07-31" in html
    assert "factor config:sites.atlas.pue: 1.3 → 1.4" in html
    published = sorted(
        p.name for p in (folder / "out/ledger/_published/2026-07-01..2026-07-31").iterdir()
    )
    assert published == ["2026-07-31.2.json", "2026-07-31.json"]
    _run(_small_ledger(folder, 1.4), folder / "out")  # the same figures again: nothing new recorded
    assert len(list((folder / "out/ledger/_published/2026-07-01..2026-07-31").iterdir())) == 2
