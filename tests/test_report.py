"""Report renderer: filters, HTML content and escaping, PDF layout, determinism, confinement.

Everything runs the real jinja2 and WeasyPrint; nothing is mocked.
"""

from __future__ import annotations

import copy
import http.server
import io
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pypdf
import pytest
import tinycss2
from fontTools.misc import timeTools
from fontTools.ttLib import TTFont

from reporting import report
from reporting.errors import ReportingError

TOTAL_FACILITY_KWH = 48_230.5
TOTAL_IT_KWH = 34_450.4
TOTAL_LOCATION_KG = 12_988.4
TOTAL_MARKET_KG = 12_988.4
TOTAL_EMBODIED_KG = 1_502.7
TOTAL_USD = 86_412.37
TOTAL_GPU_HOURS = 61_204.0
TOTAL_JOBS = 18_342


def _rows(key: str, parts: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Breakdown rows as shares of the totals, so they add up like the pipeline's do."""
    return [
        {
            key: name,
            "facility_energy_kwh": TOTAL_FACILITY_KWH * share,
            "co2e_location_kg": TOTAL_LOCATION_KG * share,
            "co2e_market_kg": TOTAL_MARKET_KG * share,
            "co2e_embodied_kg": TOTAL_EMBODIED_KG * share,
            "cost": {"USD": round(TOTAL_USD * share, 2)},
            "gpu_hours": TOTAL_GPU_HOURS * share,
            "jobs": round(TOTAL_JOBS * share),
            "share_of_energy": share,
        }
        for name, share in parts
    ]


def make_context() -> dict[str, Any]:
    """A realistic quarter for a small lab: one on-prem cluster, default PUE, some quarantine."""
    return {
        "title": "Compute sustainability report",
        "organisation": "Example AI Lab",
        "tool_version": "0.1.0",
        "run_date": "2026-09-30",
        "period": {"start": "2026-07-01", "end": "2026-09-30", "label": "2026-Q3"},
        "totals": {
            "it_energy_kwh": TOTAL_IT_KWH,
            "facility_energy_kwh": TOTAL_FACILITY_KWH,
            "co2e_location_kg": TOTAL_LOCATION_KG,
            "co2e_market_kg": TOTAL_MARKET_KG,
            "co2e_embodied_kg": TOTAL_EMBODIED_KG,
            "cost": {"USD": TOTAL_USD},
            "gpu_hours": TOTAL_GPU_HOURS,
            "jobs": TOTAL_JOBS,
        },
        "market_basis_note": (
            "No contractual instruments configured for atlas: market-based equals location-based."
        ),
        "by_team": _rows(
            "team",
            [
                ("llm-pretraining", 0.52),
                ("multimodal", 0.21),
                ("speech", 0.12),
                ("inference-platform", 0.09),
                ("unallocated", 0.06),
            ],
        ),
        "by_model": _rows(
            "model",
            [
                ("atlas-70b", 0.44),
                ("atlas-7b", 0.18),
                ("vista-l", 0.15),
                ("whisper-ft-de", 0.11),
                ("unallocated", 0.12),
            ],
        ),
        "by_phase": _rows(
            "phase",
            [
                ("training", 0.63),
                ("inference", 0.17),
                ("evaluation", 0.11),
                ("dev", 0.06),
                ("unallocated", 0.03),
            ],
        ),
        "by_site": _rows("site", [("atlas", 1.0)]),
        "energy_methods": {
            "measured": 0.31,
            "telemetry": 0.0,
            "modelled": 0.69,
            "extrapolated": 0.0,
            "none": 0.0,
        },
        "inputs": [
            {
                "source_file": "sacct/2026-07.txt",
                "kind": "slurm",
                "rows_read": 6_120,
                "rows_accepted": 6_118,
                "rows_quarantined": 2,
            },
            {
                "source_file": "sacct/2026-08.txt",
                "kind": "slurm",
                "rows_read": 6_391,
                "rows_accepted": 6_391,
                "rows_quarantined": 0,
            },
            {
                "source_file": "sacct/2026-09.txt",
                "kind": "slurm",
                "rows_read": 5_840,
                "rows_accepted": 5_833,
                "rows_quarantined": 7,
            },
        ],
        "not_attributed": [{"state": "RUNNING", "jobs": 14}, {"state": "PENDING", "jobs": 231}],
        "quarantine": {
            "rows": 9,
            "by_check": [
                {"check": "end_before_start", "rows": 5},
                {"check": "unparseable_tres", "rows": 3},
                {"check": "negative_elapsed", "rows": 1},
            ],
            "sample": [
                {
                    "source_file": "sacct/2026-07.txt",
                    "line": 1_204,
                    "check": "end_before_start",
                    "reason": "End 2026-07-03T10:00:00 is before Start 2026-07-03T11:12:09",
                    "raw": "8812|llm-pretraining|gpu|2026-07-03T11:12:09|2026-07-03T10:00:00|"
                    "COMPLETED|billing=64,cpu=64,gres/gpu=8,mem=512G,node=1",
                },
                {
                    "source_file": "sacct/2026-09.txt",
                    "line": 77,
                    "check": "unparseable_tres",
                    "reason": "AllocTRES field 'gres/gpu=eight' is not key=number",
                    "raw": "9120|speech|gpu|2026-09-02T08:00:00|2026-09-02T09:30:00|COMPLETED|"
                    "gres/gpu=eight" + "|x" * 150,
                },
            ],
        },
        "factors": [
            {
                "factor_id": "grid.atlas.2024",
                "kind": "grid_intensity",
                "key": "atlas",
                "value": 269.0,
                "unit": "g CO2e/kWh",
                "source": "EPA eGRID2023 SRVC",
                "year": 2023,
                "licence": "US federal data",
                "url": "https://www.epa.gov/system/files/documents/2025-01/"
                "egrid2023_summary_tables.xlsx",
                "is_default": False,
                "rows": 18_342,
            },
            {
                "factor_id": "pue.default",
                "kind": "pue",
                "key": "atlas",
                "value": 1.4,
                "unit": "ratio",
                "source": "Uptime Institute 2023 (industry average 1.58, site estimate 1.4)",
                "year": 2023,
                "licence": "quoted",
                "url": "https://intelligence.uptimeinstitute.com/resource/large-data-centers-are-"
                "mostly-more-efficient-analysis-confirms",
                "is_default": True,
                "rows": 18_342,
            },
            {
                "factor_id": "gpu.power.A100-SXM4-80GB",
                "kind": "gpu_power",
                "key": "A100",
                "value": 400.0,
                "unit": "W (max)",
                "source": "NVIDIA A100 datasheet",
                "year": None,
                "licence": "vendor datasheet",
                "url": "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
                "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf",
                "is_default": False,
                "rows": 12_870,
            },
            {
                "factor_id": "embodied.8gpu_server",
                "kind": "embodied",
                "key": "8xA100 server",
                "value": 2544.0,
                "unit": "kg CO2e per server",
                "source": "Chien et al. via Scope3",
                "year": 2023,
                "licence": "CC-BY-4.0",
                "url": "https://preview.methodology.scope3.com/nvidia_a100.md",
                "is_default": True,
                "rows": 12_870,
            },
        ],
        "defaults_used": [
            {
                "what": "PUE for site atlas",
                "value": "1.4",
                "rows": 18_342,
                "why": "No measured PUE configured for atlas (sites.atlas.pue).",
            },
            {
                "what": "Embodied emissions per 8-GPU server",
                "value": "2,544 kg CO2e over 4 years",
                "rows": 12_870,
                "why": "No hardware inventory configured.",
            },
        ],
        "methodology": {
            "gpu_formula": "n_gpus × (W_min + u_gpu × (W_max − W_min))",
            "cpu_formula": "n_cores × W_per_core × u_cpu",
            "memory_w_per_gb": 0.375,
            "embodied_note": "2,544 kg CO2e per 8-GPU server, amortised over 4 years of service.",
        },
        "findings": {
            "count": 37,
            "by_rule": {"low_gpu_utilisation": 29, "idle_reservation": 8},
            "wasted_energy_kwh": 2_311.8,
            "wasted_co2e_kg": 622.4,
        },
    }


@pytest.fixture(scope="module")
def html() -> str:
    return report.render_html(make_context())


@pytest.fixture(scope="module")
def pdf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    report.write_pdf(report.render_html(make_context()), path)
    return path.read_bytes()


def _pdf_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        (float("nan"), "—"),
        (0, "0.0 kWh"),
        (12.345, "12.3 kWh"),
        (9_999.94, "9,999.9 kWh"),
        (10_000, "10.00 MWh"),
        (12_345.6, "12.35 MWh"),
        (1_234_567.8, "1,234.57 MWh"),
        (-0.01, "0.0 kWh"),
    ],
)
def test_kwh(value: float | None, expected: str) -> None:
    assert report.format_kwh(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        (0.04, "0.0 kg CO2e"),
        (456.78, "456.8 kg CO2e"),
        (999.9, "999.9 kg CO2e"),
        (1_000, "1.00 t CO2e"),
        (12_988.4, "12.99 t CO2e"),
        (2_500_000, "2,500.00 t CO2e"),
    ],
)
def test_kg(value: float | None, expected: str) -> None:
    assert report.format_kg(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        ({}, "—"),
        ({"USD": 1234.56}, "USD 1,234.56"),
        ({"USD": 0.005}, "USD 0.01"),
        ({"USD": 10.0, "EUR": 1_000_000}, "EUR 1,000,000.00 · USD 10.00"),
        ({"USD": None}, "USD —"),
    ],
)
def test_money(value: dict[str, float] | None, expected: str) -> None:
    assert report.format_money(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        (0, "0.0 %"),
        (0.123, "12.3 %"),
        (0.31, "31.0 %"),
        (1, "100.0 %"),
    ],
)
def test_pct(value: float | None, expected: str) -> None:
    assert report.format_pct(value) == expected


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (None, None, "—"),
        (18_342, None, "18,342"),
        (61_204.04, None, "61,204.0"),
        (0.375, 2, "0.38"),
        (1_234_567, 0, "1,234,567"),
    ],
)
def test_num(value: float | None, decimals: int | None, expected: str) -> None:
    assert report.format_num(value, decimals) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "—"),
        (269.0, "269"),
        (2544.0, "2,544"),
        (0.000269, "0.000269"),
        (1.4, "1.4"),
    ],
)
def test_factor(value: float | None, expected: str) -> None:
    assert report.format_factor(value) == expected


def test_raw_truncates_and_shows_control_characters() -> None:
    assert report.format_raw("a\tb\x1bc") == "a\\tb\\x1bc"
    assert report.format_raw("x" * 500) == "x" * 200 + "…"
    assert report.format_raw("x" * 200) == "x" * 200


@pytest.mark.parametrize(
    ("share", "expected"),
    [
        (None, "0%"),
        (-0.2, "0.0%"),
        (0.31, "31.0%"),
        (7, "100.0%"),
    ],
)
def test_bar_width_is_clamped(share: float | None, expected: str) -> None:
    assert report.bar_width(share) == expected


def test_filters_are_registered() -> None:
    assert {"kwh", "kg", "money", "pct", "num"} <= set(report.environment().filters)


# --- HTML ------------------------------------------------------------------------------------


def test_templates_dir_holds_the_report_templates() -> None:
    assert (report.templates_dir() / "report.html").is_file()
    assert (report.templates_dir() / "report.css").is_file()
    assert (report.templates_dir() / report.PRINT_STYLESHEET).is_file()


def test_print_stylesheet_declarations_are_all_important() -> None:
    """WeasyPrint takes the print sheet as a user stylesheet, which loses to the report.css
    inlined in the HTML unless a declaration is !important: one without it does nothing."""
    text = (report.templates_dir() / report.PRINT_STYLESHEET).read_text(encoding="utf-8")
    rules = tinycss2.parse_stylesheet(text, skip_comments=True, skip_whitespace=True)
    declarations = [
        d
        for rule in rules
        for d in tinycss2.parse_blocks_contents(rule.content, True, True)
        if d.type == "declaration"
    ]
    assert declarations and all(d.important for d in declarations)


def test_print_stylesheet_stays_out_of_the_html(html: str) -> None:
    assert "!important" not in html  # the print sheet's rules are PDF-only


@pytest.mark.parametrize(
    "heading",
    [
        "Contents",
        "Headline totals",
        "Attribution",
        "By team",
        "By model",
        "By phase",
        "By site",
        "Energy methods",
        "Data coverage",
        "Defaults used",
        "Efficiency findings",
        "Methodology",
        "Appendix A — Factor register",
    ],
)
def test_html_has_section_heading(html: str, heading: str) -> None:
    assert f">{heading}</h" in html


@pytest.mark.parametrize(
    "text",
    [
        "Example AI Lab",
        "2026-Q3",
        "2026-07-01 to 2026-09-30",
        "Run date",
        "0.1.0",
        "48.23 MWh",
        "34.45 MWh",
        "12.99 t CO2e",
        "1.50 t CO2e",
        "USD 86,412.37",
        "61,204.0",
        "18,342",
        "Scope 2 — location-based",
        "Scope 2 — market-based",
        "management allocation, Scope 3.2 — not added to Scope 2",
        "market-based equals location-based",
    ],
)
def test_html_shows_headline_values(html: str, text: str) -> None:
    assert text in html


def test_html_shows_coverage_defaults_and_register(html: str) -> None:
    for text in [
        "sacct/2026-09.txt",
        "end_before_start",
        "RUNNING",
        "PENDING",
        "231",
        "No silent fallbacks",
        "PUE for site atlas",
        "grid.atlas.2024",
        "EPA eGRID2023 SRVC",
        "US federal data",
        "year not stated",
        "low_gpu_utilisation",
        "n_gpus × (W_min + u_gpu × (W_max − W_min))",
        "31.0 %",
        "69.0 %",
    ]:
        assert text in html


def test_breakdown_total_row_adds_up(html: str) -> None:
    assert '<td class="name">Total</td>' in html
    assert html.count("100.0 %") >= 4


def test_unallocated_row_is_marked(html: str) -> None:
    assert html.count('<tr class="unallocated">') == 3
    assert "not attributed to a team" in html


def test_factor_urls_are_text_not_links(html: str) -> None:
    assert "https://www.epa.gov/system/files" in html
    assert 'href="http' not in html


def test_html_is_self_contained(html: str) -> None:
    for reference in ["<link", "<script", "<img", "src=", "url(", "@import", 'http-equiv="refresh']:
        assert reference not in html
    assert "<style>" in html and "@page" in html


def test_render_html_is_deterministic() -> None:
    assert report.render_html(make_context()) == report.render_html(make_context())


def test_html_dates_come_from_run_date(html: str) -> None:
    assert '<meta name="dcterms.created" content="2026-09-30">' in html
    assert '<meta name="dcterms.modified" content="2026-09-30">' in html


def test_hostile_names_are_escaped_not_evaluated() -> None:
    context = make_context()
    context["organisation"] = 'Evil" onload="alert(1)'
    context["by_team"][0]["team"] = "<script>alert(1)</script>"
    context["by_model"][0]["model"] = '"><img src=x onerror=alert(1)>'
    context["by_phase"][0]["phase"] = "{{7*7}}"
    context["quarantine"]["sample"][0]["raw"] = "</pre><script>alert(2)</script>"
    html = report.render_html(context)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "<img" not in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'content="Evil&#34; onload=&#34;alert(1)"' in html
    assert "{{7*7}}" in html


def test_quarantine_raw_is_truncated(html: str) -> None:
    long_raw = make_context()["quarantine"]["sample"][1]["raw"]
    assert len(long_raw) > 200
    assert long_raw[:200] + "…" in html
    assert long_raw not in html


def test_no_findings_and_no_defaults_say_so() -> None:
    context = make_context()
    context["findings"] = {
        "count": 0,
        "by_rule": {},
        "wasted_energy_kwh": 0.0,
        "wasted_co2e_kg": 0.0,
    }
    context["defaults_used"] = []
    html = report.render_html(context)
    assert "found nothing to report for this period, or has not run for it" in html
    assert "No default values were applied" in html
    assert "No silent fallbacks" not in html


def test_methodology_shows_every_formula_and_note() -> None:
    context = make_context()
    context["methodology"] = {
        "gpu_formula": "GPU W = n_gpus × (W_min + u_gpu × (W_max − W_min))",
        "cpu_formula": "CPU W = n_cpus × (W_min + u_cpu × (W_max − W_min))",
        "memory_formula": "memory W = requested GB × W per GB",
        "energy_formula": "facility kWh = IT kWh × PUE",
        "carbon_formula": "location-based kg = facility kWh × grid g/kWh ÷ 1000",
        "embodied_note": "Amortised hardware per GPU-hour.",
        "time_note": "Each finished job is split over the UTC days it ran on.",
    }
    html = report.render_html(context)
    for text in context["methodology"].values():
        assert text in html
    assert "<dt>Carbon</dt>" in html


def test_findings_say_when_the_audit_has_not_run() -> None:
    context = make_context()
    context["findings"] = {
        "count": 0,
        "by_rule": {},
        "wasted_energy_kwh": 0.0,
        "wasted_co2e_kg": 0.0,
        "audited": False,
    }
    assert "The efficiency audit has not run for this period" in report.render_html(context)


def test_missing_factor_metadata_is_shown_as_missing() -> None:
    context = make_context()
    context["factors"][0].update(url=None, licence=None, source=None, year=None)
    html = report.render_html(context)
    assert ">None<" not in html
    assert "source not stated" in html and "licence not stated" in html


def test_numpy_scalars_format_like_python_ones() -> None:
    assert report.format_num(np.int64(18_342)) == "18,342"
    assert report.format_kwh(np.float64(12_345.6)) == "12.35 MWh"
    assert report.format_pct(np.float64("nan")) == "—"


def test_missing_context_key_is_an_error() -> None:
    context = make_context()
    del context["market_basis_note"]
    with pytest.raises(Exception, match="market_basis_note"):
        report.render_html(context)


def test_write_html_writes_exact_bytes(tmp_path: Path, html: str) -> None:
    path = tmp_path / "report.html"
    report.write_html(html, path)
    assert path.read_bytes() == html.encode("utf-8")


def test_write_html_to_missing_folder_names_the_path(tmp_path: Path, html: str) -> None:
    path = tmp_path / "missing" / "report.html"
    with pytest.raises(ReportingError, match="missing/report.html: cannot write the report"):
        report.write_html(html, path)


# --- PDF -------------------------------------------------------------------------------------


def test_pdf_is_a_multi_page_pdf(pdf_bytes: bytes) -> None:
    assert pdf_bytes.startswith(b"%PDF-")
    assert len(pypdf.PdfReader(io.BytesIO(pdf_bytes)).pages) >= 2


def test_pdf_first_page_has_the_cover(pdf_bytes: bytes) -> None:
    first = _pdf_text(pdf_bytes)[0]
    assert "Example AI Lab" in first
    assert "Compute sustainability report" in first
    assert "Contents" in first


def test_pdf_has_running_header_footer_and_contents_page_numbers(pdf_bytes: bytes) -> None:
    pages = _pdf_text(pdf_bytes)
    assert f"page 2 of {len(pages)}" in pages[1]
    assert "Example AI Lab" in pages[1]
    first = pages[0]
    headline_line = next(line for line in first.splitlines() if "Headline totals" in line)
    assert headline_line.rstrip().endswith("2")


def test_pdf_dates_come_from_run_date(pdf_bytes: bytes) -> None:
    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes))
    assert reader.metadata is not None
    assert str(reader.metadata["/CreationDate"]) == "D:20260930"
    assert str(reader.metadata["/ModDate"]) == "D:20260930"


def _embedded_fonts(data: bytes) -> list[TTFont]:
    fonts = []
    for page in pypdf.PdfReader(io.BytesIO(data)).pages:
        resources: Any = page["/Resources"]
        for font in resources["/Font"].values():
            descriptor = font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
            fonts.append(TTFont(io.BytesIO(descriptor.get_object()["/FontFile2"].get_data())))
    return fonts


def test_pdf_font_subsets_are_stamped_with_run_date_not_clock(pdf_bytes: bytes) -> None:
    """fontTools stamps subset fonts with the clock unless SOURCE_DATE_EPOCH is set; HarfBuzz
    keeps the font file's own date. Either way no font may carry a time after the run date (the
    test runs later than the context's run date, so a clock stamp would be caught)."""
    fonts = _embedded_fonts(pdf_bytes)
    run_date = datetime(2026, 9, 30, tzinfo=UTC).timestamp()
    assert fonts
    assert all(font["head"].modified + timeTools.epoch_diff <= run_date for font in fonts)


def test_write_pdf_leaves_environment_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    report.write_pdf("<p>x</p>", tmp_path / "x.pdf")
    assert "SOURCE_DATE_EPOCH" not in os.environ
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "123")
    report.write_pdf("<p>x</p>", tmp_path / "x.pdf")
    assert os.environ["SOURCE_DATE_EPOCH"] == "123"


def test_pdf_is_byte_for_byte_reproducible(tmp_path: Path, pdf_bytes: bytes) -> None:
    path = tmp_path / "again.pdf"
    report.write_pdf(report.render_html(make_context()), path)
    assert path.read_bytes() == pdf_bytes


# --- confinement -----------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it gets."""
    requests: list[str] = []
    handler = type("Recorder", (_Recorder,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_weasyprint_default_fetcher_would_fetch(server: tuple[str, list[str]]) -> None:
    """Control: the harness sees a fetch when nothing stops it, so `requests == []` means something."""
    import weasyprint

    base, requests = server
    weasyprint.HTML(string=f'<img src="{base}/x.png">').write_pdf()
    assert requests == ["/x.png"]


def test_pdf_from_hostile_context_fetches_nothing(
    tmp_path: Path, server: tuple[str, list[str]]
) -> None:
    base, requests = server
    context = make_context()
    context["by_team"][0]["team"] = f'<img src="{base}/x.png">'
    context["by_team"][1]["team"] = "file:///etc/passwd"
    context["factors"][0]["url"] = "file:///etc/passwd"
    context["factors"][1]["url"] = f'<img src="{base}/x.png">'
    path = tmp_path / "hostile.pdf"
    report.write_pdf(report.render_html(context), path)
    text = "\n".join(_pdf_text(path.read_bytes()))
    assert requests == []
    assert "root:x:0:0" not in text
    assert "file:///etc/passwd" in text


def test_fetcher_refuses_urls_even_in_unescaped_html(
    tmp_path: Path, server: tuple[str, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    """Defence in depth: markup that bypassed escaping still loads nothing."""
    base, requests = server
    html = f"""<!DOCTYPE html><html><head>
      <link rel="stylesheet" href="{base}/evil.css">
      <link rel="attachment" href="file:///etc/passwd">
      <style>@import url("{base}/import.css"); body {{ background: url("{base}/bg.png") }}
             @font-face {{ font-family: X; src: url("file:///etc/passwd") }}</style>
      </head><body><p>hostile</p>
      <img src="{base}/x.png"><img src="file:///etc/passwd">
      <img src="../../../../../../etc/passwd"><object data="{base}/o.svg"></object>
      </body></html>"""
    path = tmp_path / "raw.pdf"
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        report.write_pdf(html, path)
    data = path.read_bytes()
    assert requests == []
    assert b"root:x:0:0" not in data
    assert pypdf.PdfReader(io.BytesIO(data)).attachments == {}
    assert "refused to fetch" in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.png",
        "https://example.org/x.css",
        "ftp://example.org/x",
        "data:text/css,body{}",
        "file:///etc/passwd",
        "file://otherhost/etc/passwd",
    ],
)
def test_fetcher_refuses_outside_urls(url: str) -> None:
    with pytest.raises(report.RefusedURL):
        report.ConfinedURLFetcher(report.templates_dir()).fetch(url)


def test_fetcher_refuses_path_traversal() -> None:
    root = report.templates_dir()
    with pytest.raises(report.RefusedURL):
        report.ConfinedURLFetcher(root).fetch(root.as_uri() + "/../../../../../etc/passwd")


def test_fetcher_serves_files_inside_templates_dir() -> None:
    root = report.templates_dir()
    response = report.ConfinedURLFetcher(root).fetch((root / "report.css").as_uri())
    assert response.content_type == "text/css"
    assert b"@page" in response.read()


def test_hostile_context_is_not_mutated() -> None:
    context = make_context()
    before = copy.deepcopy(context)
    report.render_html(context)
    assert context == before
