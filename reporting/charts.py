"""The report's charts: matplotlib figures rendered to SVG and inlined (same in HTML and PDF).

Readable in grey-scale: series differ by hatching and markers, not by colour alone. Each SVG
carries a <title> and <desc> (alt text) and role="img". Bytes are reproducible: no date in the
metadata, `svg.hashsalt` set per chart, and every id prefixed with the chart's id so several
charts can share one HTML document. Text is drawn as paths, so data never reaches the SVG as
markup; the alt text is escaped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; set before anything imports pyplot
from markupsafe import Markup, escape
from matplotlib.figure import Figure

from reporting.shown import bounded

KG_PER_TONNE = 1_000
KWH_PER_MWH = 1_000
WIDTH_IN = 6.6  # fits the A4 content width (180 mm) with room to spare
GREYS = ("0.25", "0.55", "0.8", "0.95", "0.4", "0.7")
HATCHES = ("", "//", "..", "xx", "\\\\", "++")
MARKERS = ("o", "s", "D", "^", "v", "P")
MAX_BARS = 12
RC = {"svg.fonttype": "path", "font.family": "DejaVu Sans", "font.size": 8,
      "axes.spines.top": False, "axes.spines.right": False, "hatch.linewidth": 0.6}  # fmt: skip
_ID = re.compile(r'id="([^"]+)"')
_STYLE = re.compile(r'style="([^"]*)"')


def _presentation(match: re.Match[str]) -> str:
    """`style="fill: #fff; stroke: #000"` -> `fill="#fff" stroke="#000"`."""
    pairs = [part.split(":", 1) for part in match.group(1).split(";") if ":" in part]
    return " ".join(f'{k.strip()}="{v.strip()}"' for k, v in pairs)


def _figure(height_in: float) -> Any:
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(WIDTH_IN, height_in))
        return fig, fig.add_subplot()


def to_svg(fig: Any, chart_id: str, title: str, desc: str) -> Markup:
    """Inline SVG markup with alt text, ids prefixed by `chart_id`, no XML prolog or comments."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": chart_id}):
        fig.savefig(buffer, format="svg", bbox_inches="tight",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})  # fmt: skip
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<!--.*?-->\n?", "", text, flags=re.DOTALL)
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    # The <style> matplotlib adds would apply to the whole HTML page (its selector is `*`), and
    # WeasyPrint reads style attributes inside inline SVG as HTML CSS (warning on `stroke`):
    # drop the former, turn the latter into presentation attributes.
    text = re.sub(r"\s*<style[^>]*>.*?</style>", "", text, flags=re.DOTALL)
    text = _STYLE.sub(_presentation, text)
    for old in sorted(set(_ID.findall(text)), key=len, reverse=True):
        new = f"{chart_id}-{old}"
        text = text.replace(f'id="{old}"', f'id="{new}"').replace(f"#{old})", f"#{new})")
        text = text.replace(f'href="#{old}"', f'href="#{new}"')
    head = (f'<svg role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" class="chart-svg" '
            f'id="{chart_id}"')  # fmt: skip
    text = text.replace("<svg", head, 1)
    # Alt text carries data (team and model names): bounded like every text the report shows.
    alt = (f'<title id="{chart_id}-title">{escape(bounded(title))}</title>'
           f'<desc id="{chart_id}-desc">{escape(bounded(desc))}</desc>')  # fmt: skip
    text = re.sub(r"(<svg[^>]*>)", lambda m: m.group(1) + alt, text, count=1)
    return Markup(text)  # matplotlib output with escaped alt text


def _short(names: Sequence[str], width: int = 28) -> list[str]:
    return [n if len(n) <= width else n[: width - 1] + "…" for n in names]


def _legend(ax: Any, columns: int = 3) -> None:
    ax.legend(
        frameon=False, ncols=columns, loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=7
    )


def hbar_pairs(chart_id: str, title: str, names: Sequence[str], location_kg: Sequence[float],
               market_kg: Sequence[float]) -> Markup:  # fmt: skip
    """Horizontal bars of location-based t CO2e with the market-based value as a marker."""
    names, location_kg, market_kg = names[:MAX_BARS], location_kg[:MAX_BARS], market_kg[:MAX_BARS]
    fig, ax = _figure(0.5 + 0.28 * max(len(names), 1))
    rows = list(range(len(names)))[::-1]
    with matplotlib.rc_context(RC):
        ax.barh(rows, [v / KG_PER_TONNE for v in location_kg], color=GREYS[2], edgecolor=GREYS[0],
                hatch=HATCHES[1], label="location-based")  # fmt: skip
        ax.plot([v / KG_PER_TONNE for v in market_kg], rows, linestyle="none", marker="D",
                color="black", markersize=4, label="market-based")  # fmt: skip
        ax.set_yticks(rows, _short(names))
        ax.set_xlabel("t CO2e")
        _legend(ax, 2)
    desc = "; ".join(f"{n}: {lo / KG_PER_TONNE:,.2f} t location-based, {m / KG_PER_TONNE:,.2f} t market-based"
                     for n, lo, m in zip(names, location_kg, market_kg, strict=True))  # fmt: skip
    return to_svg(fig, chart_id, title, desc)


def stacked_hbar(chart_id: str, title: str, names: Sequence[str], series: dict[str, Sequence[float]],
                 unit: str, scale: float) -> Markup:  # fmt: skip
    """Horizontal stacked bars (e.g. energy by method per site); each series has its hatch."""
    names = list(names)[:MAX_BARS]
    fig, ax = _figure(0.7 + 0.3 * max(len(names), 1))
    rows = list(range(len(names)))[::-1]
    left = [0.0] * len(names)
    with matplotlib.rc_context(RC):
        for i, (label, values) in enumerate(series.items()):
            shown = [v / scale for v in list(values)[: len(names)]]
            ax.barh(rows, shown, left=left, label=label, color=GREYS[i % len(GREYS)],
                    edgecolor="black", linewidth=0.4, hatch=HATCHES[i % len(HATCHES)])  # fmt: skip
            left = [a + b for a, b in zip(left, shown, strict=True)]
        ax.set_yticks(rows, _short(names))
        ax.set_xlabel(unit)
        _legend(ax, min(len(series), 5))
    return to_svg(fig, chart_id, title, _series_text(names, series, unit, scale))


def _series_text(names: Sequence[str], series: dict[str, Sequence[float]], unit: str,
                 scale: float) -> str:  # fmt: skip
    """The chart's numbers as text (its alt text): per name, each series' value."""
    return "; ".join(
        f"{n}: "
        + ", ".join(f"{label} {list(v)[i] / scale:,.2f} {unit}" for label, v in series.items())
        for i, n in enumerate(names)
    )


def _marks(ax: Any, marks: Sequence[dict[str, Any]]) -> None:
    """A dotted line between the spans where the method changed, a triangle and its letter on
    top (`method_changes.between`); room is made above the data for the labels."""
    if not marks:
        return
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top + (top - bottom) * 0.15)
    for mark in marks:
        x = mark["index"] - 0.5
        ax.axvline(x, color="black", linestyle=(0, (1.5, 1.5)), linewidth=0.8)
        ax.plot([x], [0.98], transform=ax.get_xaxis_transform(), marker="v", color="black",
                markersize=5, linestyle="none")  # fmt: skip
        ax.annotate(f"{mark['mark']}: method change", xy=(x, 0.98), xycoords=("data", "axes fraction"),
                    xytext=(5, 0), textcoords="offset points", va="center", fontsize=7)  # fmt: skip


def marks_text(marks: Sequence[dict[str, Any]]) -> str:
    """The marks in words, for the alt text."""
    if not marks:
        return ""
    return " Method changes marked: " + "; ".join(
        f"{m['mark']} between {m['after']} and {m['from']}: {', '.join(m['reasons'])}"
        for m in marks
    )


def grouped_bars(chart_id: str, title: str, names: Sequence[str], series: dict[str, Sequence[float]],
                 unit: str, scale: float, marks: Sequence[dict[str, Any]] = ()) -> Markup:  # fmt: skip
    """Vertical grouped bars (e.g. per month or per scope), one hatch per series; `marks` are
    method changes between bars."""
    fig, ax = _figure(2.6)
    width = 0.8 / max(len(series), 1)
    with matplotlib.rc_context(RC):
        for i, (label, values) in enumerate(series.items()):
            xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(names))]
            ax.bar(xs, [v / scale for v in values], width=width, label=label,
                   color=GREYS[i % len(GREYS)], edgecolor="black", linewidth=0.4,
                   hatch=HATCHES[i % len(HATCHES)])  # fmt: skip
        ax.set_xticks(range(len(names)), _short(names, 22))
        ax.set_ylabel(unit)
        _marks(ax, marks)
        _legend(ax, min(len(series), 4))
    return to_svg(
        fig, chart_id, title, _series_text(names, series, unit, scale) + marks_text(marks)
    )


def lines(chart_id: str, title: str, names: Sequence[str], series: dict[str, Sequence[float]],
          unit: str, scale: float, marks: Sequence[dict[str, Any]] = ()) -> Markup:  # fmt: skip
    """Lines with markers (trailing quarters); one quarter alone is drawn as markers; `marks`
    are method changes between quarters."""
    fig, ax = _figure(2.4)
    with matplotlib.rc_context(RC):
        for i, (label, values) in enumerate(series.items()):
            ax.plot(range(len(names)), [v / scale for v in values], label=label, color="black",
                    marker=MARKERS[i % len(MARKERS)], linestyle=("-", "--", ":")[i % 3],
                    markerfacecolor=GREYS[(i + 1) % len(GREYS)])  # fmt: skip
        ax.set_xticks(range(len(names)), list(names))
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        _marks(ax, marks)
        _legend(ax, min(len(series), 4))
    return to_svg(
        fig, chart_id, title, _series_text(names, series, unit, scale) + marks_text(marks)
    )


def tornado(chart_id: str, title: str, central: float, bars: Sequence[dict[str, Any]]) -> Markup:
    """Sensitivity of one KPI: for each input, the value at its low and high case (t CO2e)."""
    fig, ax = _figure(0.8 + 0.4 * max(len(bars), 1))
    rows = list(range(len(bars)))[::-1]
    base = central / KG_PER_TONNE
    with matplotlib.rc_context(RC):
        for row, bar in zip(rows, bars, strict=True):
            low, high = bar["low"] / KG_PER_TONNE, bar["high"] / KG_PER_TONNE
            ax.barh(row, low - base, left=base, color=GREYS[3], edgecolor="black", hatch=HATCHES[2],
                    linewidth=0.5, label="low case" if row == rows[0] else None)  # fmt: skip
            ax.barh(row, high - base, left=base, color=GREYS[1], edgecolor="black", hatch=HATCHES[1],
                    linewidth=0.5, label="high case" if row == rows[0] else None)  # fmt: skip
        ax.axvline(base, color="black", linewidth=1)
        ax.set_yticks(rows, [b["parameter"] for b in bars])
        ax.set_xlabel("t CO2e, location-based (Scope 2 + 3.1); vertical line: central estimate")
        _legend(ax, 2)
    desc = f"central {base:,.2f} t; " + "; ".join(
        f"{b['parameter']}: low {b['low'] / KG_PER_TONNE:,.2f} t, high {b['high'] / KG_PER_TONNE:,.2f} t"
        for b in bars
    )
    return to_svg(fig, chart_id, title, desc)
