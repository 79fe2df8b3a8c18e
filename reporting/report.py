"""Render the sustainability report: one self-contained HTML file, and a PDF from it.

The context is a plain dict built by the pipeline (totals, breakdowns, coverage, factor
register; see `tests/test_report.py` for a full example). Rendering is pure: no clock, no
environment, no network. The same context gives the same HTML bytes and the same PDF bytes;
PDF dates come from the context's `run_date`.

Confinement: WeasyPrint gets a URL fetcher that refuses everything except `file://` paths inside
`templates_dir()`. The HTML inlines its CSS and references nothing, so nothing is fetched at all.
"""

from __future__ import annotations

import math
import mimetypes
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jinja2
import weasyprint
from weasyprint.urls import URLFetcher, URLFetcherResponse

from . import report_sections
from .energy import ENERGY_METHODS
from .errors import ReportingError
from .shown import bounded

TEMPLATE_NAME = "report.html"
PRINT_STYLESHEET = "report-print.css"  # PDF-only layout, applied over the HTML's own CSS
DASH = "—"
KWH_PER_MWH = 1_000
KWH_SHOWN_AS_MWH_FROM = 10_000
KG_PER_TONNE = 1_000
RAW_MAX_CHARS = 200
# Longest text any `{{ }}` shows: above the longest methodology note (1,342), far above any name.
# Longer text comes from data (a 10 kB job name) and would only slow the PDF layout down.
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
UNALLOCATED = "unallocated"
METHOD_LABELS = {
    "gpu_formula": "GPU power",
    "cpu_formula": "CPU power",
    "memory_formula": "Memory power",
    "memory_w_per_gb": "Memory power",
    "energy_formula": "Energy",
    "carbon_formula": "Carbon",
}
SUMMED_COLUMNS = (
    "facility_energy_kwh",
    "co2e_location_kg",
    "co2e_market_kg",
    "co2e_embodied_kg",
    "gpu_hours",
    "jobs",
    "share_of_energy",
)


def templates_dir() -> Path:
    """The installed `reporting/templates`, else the checkout's top-level `templates/`."""
    installed = Path(__file__).resolve().parent / "templates"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "templates"


# --- filters: pipeline units in, text for people out; None (or NaN) is shown as a dash ---------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _grouped(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    # Rounding can leave "-0.0"; a sign on zero only confuses readers.
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def format_kwh(value: float | None) -> str:
    """`1,234.5 kWh`; from 10,000 kWh on, `12.35 MWh`."""
    if value is None or math.isnan(value):
        return DASH
    if abs(value) >= KWH_SHOWN_AS_MWH_FROM:
        return f"{_grouped(value / KWH_PER_MWH, 2)} MWh"
    return f"{_grouped(value, 1)} kWh"


def format_kg(value: float | None) -> str:
    """`456.7 kg CO2e`; from 1,000 kg on, `1.23 t CO2e`."""
    if value is None or math.isnan(value):
        return DASH
    if abs(value) >= KG_PER_TONNE:
        return f"{_grouped(value / KG_PER_TONNE, 2)} t CO2e"
    return f"{_grouped(value, 1)} kg CO2e"


def format_money(value: Mapping[str, float] | None) -> str:
    """`{"USD": 1234.5}` -> `USD 1,234.50`; several currencies joined by ` · `, sorted by code."""
    if _missing(value) or not value:
        return DASH
    parts = [
        f"{code} {DASH if _missing(amount) else _grouped(amount, 2)}"
        for code, amount in sorted(value.items())
    ]
    return " · ".join(parts)


def format_pct(value: float | None) -> str:
    """A 0–1 ratio as `12.3 %`."""
    if value is None or math.isnan(value):
        return DASH
    return f"{_grouped(value * 100, 1)} %"


def format_num(value: float | None, decimals: int | None = None) -> str:
    """Thousands separators; ints get no decimals, floats one unless `decimals` says otherwise."""
    if value is None or math.isnan(value):
        return DASH
    if decimals is None:
        decimals = 0 if isinstance(value, numbers.Integral) else 1
    return _grouped(value, decimals)


def format_factor(value: float | None) -> str:
    """A factor value at full useful precision (10 significant digits), grouped: `2,544`, `0.000269`."""
    if value is None or math.isnan(value):
        return DASH
    return f"{value:,.10g}"


def format_raw(value: str | None) -> str:
    """A quarantined input line: control characters made visible, cut at ~200 chars with `…`."""
    if value is None:
        return DASH
    visible = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(value))
    return visible if len(visible) <= RAW_MAX_CHARS else visible[:RAW_MAX_CHARS] + "…"


def bar_width(share: float | None) -> str:
    """A CSS width for a share bar, clamped to 0–100 %; only digits reach the style attribute."""
    if share is None or math.isnan(share):
        return "0%"
    return f"{min(max(float(share), 0.0), 1.0) * 100:.1f}%"


FILTERS: dict[str, Callable[..., str]] = {
    "kwh": format_kwh,
    "kg": format_kg,
    "money": format_money,
    "pct": format_pct,
    "num": format_num,
    "factor": format_factor,
    "raw": format_raw,
    "bar_width": bar_width,
}


# --- view: the few derived values the template needs -------------------------------------------


def _sum_money(costs: Iterable[Mapping[str, float] | None]) -> dict[str, float]:
    total: dict[str, float] = {}
    for cost in costs:
        for code, amount in (cost or {}).items():
            if not _missing(amount):
                total[code] = total.get(code, 0.0) + amount
    return dict(sorted(total.items()))


def _total_row(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Column sums of a breakdown, so the reader can check the parts add up."""
    total: dict[str, Any] = {
        column: sum(row[column] for row in rows if not _missing(row[column]))
        for column in SUMMED_COLUMNS
    }
    total["cost"] = _sum_money(row["cost"] for row in rows)
    return total


def _breakdowns(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The attribution tables; all but `by_site` always show an `unallocated` line."""
    found = report_sections.attribution_tables(context)
    return [
        {
            "id": f"by-{key.replace('_', '-')}",
            "title": f"By {label}",
            "label": label,
            "key": key,
            "name": name,
            "rows": (rows := _rows_of(context, name, key)),
            "total": _total_row(rows),
        }
        for name, key, label in found
    ]


def _rows_of(context: Mapping[str, Any], name: str, key: str) -> list[Mapping[str, Any]]:
    rows = context[name]
    if name == "by_site" or "quarterly" not in context:
        return rows  # contexts without the quarterly sections keep their rows as given
    return report_sections.with_unallocated(rows, key)


def _energy_methods(shares: Mapping[str, float]) -> list[tuple[str, float]]:
    """The five methods in hierarchy order (missing ones as 0), then any unknown ones by name."""
    extra = sorted(set(shares) - set(ENERGY_METHODS))
    return [(method, shares.get(method, 0.0)) for method in (*ENERGY_METHODS, *extra)]


def _method_items(methodology: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(label, text, is_formula) for the formulas and parameters, known ones first."""
    keys = [k for k in METHOD_LABELS if k in methodology]
    keys += sorted(k for k in methodology if k not in METHOD_LABELS and not k.endswith("_note"))
    return [_method_item(key, methodology[key]) for key in keys]


def _method_item(key: str, value: Any) -> tuple[str, str, bool]:
    label = METHOD_LABELS.get(key, key.removesuffix("_formula").replace("_", " ").capitalize())
    if key == "memory_w_per_gb":
        return label, f"{format_num(value, 3)} W per GB allocated", False
    return label, str(value), key.endswith("_formula")


def _method_notes(methodology: Mapping[str, Any]) -> list[str]:
    """Notes other than the embodied one, which the scope statement quotes."""
    return [
        str(methodology[k])
        for k in sorted(methodology)
        if k.endswith("_note") and k != "embodied_note"
    ]


def _view(context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **context,
        **report_sections.view(context),
        "breakdowns": _breakdowns(context),
        "methods": _energy_methods(context["energy_methods"]),
        "method_items": _method_items(context["methodology"]),
        "method_notes": _method_notes(context["methodology"]),
        "rules": sorted(context["findings"]["by_rule"].items(), key=lambda kv: (-kv[1], kv[0])),
        "unallocated": UNALLOCATED,
        "scope_totals": {str(row["scope"]): row for row in context.get("by_scope") or []},
        "cloud": context.get("cloud"),
        # contexts from before validation ran (or built by hand) have no validation record
        "validation": context.get("validation") or {"suites": [], "warnings": []},
    }


# --- rendering -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The report's jinja2 environment: autoescaped, strict about missing keys."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=bounded,
    )
    env.filters.update(FILTERS)
    env.filters.update(report_sections.FILTERS)
    return env


def render_html(context: dict[str, Any]) -> str:
    """The whole report as one self-contained HTML document (CSS inlined, no external refs)."""
    return environment().get_template(TEMPLATE_NAME).render(_view(context))


def write_html(html: str, path: Path) -> None:
    """Write the HTML as UTF-8 with `\\n` line ends, byte for byte what `render_html` gave."""
    try:
        path.write_bytes(html.encode("utf-8"))
    except OSError as exc:
        raise _write_error(path, exc) from exc


def write_pdf(html: str, path: Path) -> None:
    """Lay out the HTML for print with WeasyPrint and write the PDF; fetches nothing."""
    root = templates_dir()
    # No base URL: the report's own links (data_docs/index.html) stay relative to the PDF, as
    # in the HTML, rather than pointing into wherever the package is installed.
    document = weasyprint.HTML(
        string=html,
        base_url=None,
        url_fetcher=ConfinedURLFetcher(root),
        media_type="print",
    ).render(stylesheets=[_print_stylesheet(root)])
    # PDF dates come from <meta name="dcterms.created/modified">; embedded font subsets get the
    # same date, or fontTools would stamp them with the clock and no two PDFs would match.
    with _source_date_epoch(_epoch_of(document.metadata.modified)):
        pdf = document.write_pdf()
    try:
        path.write_bytes(pdf)
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _print_stylesheet(root: Path) -> weasyprint.CSS:
    """The PDF-only sheet, read from the templates folder (nothing else is fetched)."""
    return weasyprint.CSS(
        string=(root / PRINT_STYLESHEET).read_text(encoding="utf-8"),
        base_url=root.as_uri() + "/",
        url_fetcher=ConfinedURLFetcher(root),
        media_type="print",
    )


def _epoch_of(w3c_date: str | None) -> int:
    """Seconds since 1970 at the start (UTC) of the day a W3C date names: `2026`, `2026-09-30`, …"""
    if not w3c_date:
        return 0
    year, month, day = (w3c_date[:10].split("-") + ["01", "01"])[:3]
    return int(datetime(int(year), int(month), int(day), tzinfo=UTC).timestamp())


@contextmanager
def _source_date_epoch(epoch: int) -> Iterator[None]:
    """Set SOURCE_DATE_EPOCH while fonts are subset (fontTools reads it instead of the clock).

    Process-wide while it lasts, like any environment variable: render one PDF at a time.
    """
    previous = os.environ.get(SOURCE_DATE_EPOCH)
    os.environ[SOURCE_DATE_EPOCH] = str(epoch)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[SOURCE_DATE_EPOCH]
        else:
            os.environ[SOURCE_DATE_EPOCH] = previous


def _write_error(path: Path, exc: OSError) -> ReportingError:
    reason = exc.strerror or type(exc).__name__
    return ReportingError(
        f"{path}: cannot write the report ({reason}). Check that the output folder exists "
        "and is writable, or pass another --out."
    )


class RefusedURL(ValueError):
    """The report tried to load a URL outside the templates folder."""


class ConfinedURLFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint ships no type hints
    """Serves `file://` URLs inside `root` and refuses everything else.

    WeasyPrint catches the `RefusedURL`, logs an error and leaves the resource out, so a URL
    smuggled in through data can neither reach the network nor read local files.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols=("file",), allow_redirects=False)
        self._root = root.resolve()

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        path = self._confined_path(url)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": content_type})

    def _confined_path(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
            raise RefusedURL(f"refused to fetch {url!r}: the report loads nothing from outside")
        path = Path(unquote(parts.path)).resolve()
        if not path.is_relative_to(self._root) or not path.is_file():
            raise RefusedURL(f"refused to fetch {url!r}: not a file inside {self._root}")
        return path
