"""Reporting periods: `2026-Q3`, `2026-07`, `2026-07-14`, `2023-01-01..2024-12-31`, quarter to date."""

from __future__ import annotations

import re
from datetime import date, timedelta

from reporting.errors import ReportingError
from reporting.summary import Period


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_end(year: int, month: int) -> date:
    first_next = date(year + month // 12, month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def quarter_to_date(run_date: date) -> Period:
    start = _quarter_start(run_date)
    quarter = (start.month - 1) // 3 + 1
    return Period(start, run_date, f"{run_date.year}-Q{quarter} to {run_date.isoformat()}")


def parse_period(text: str) -> Period:
    """Parse a period; the end is inclusive."""
    text = text.strip()
    try:
        if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
            year, quarter = int(m[1]), int(m[2])
            return Period(date(year, 3 * quarter - 2, 1), _month_end(year, 3 * quarter), text)
        if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
            year, month = int(m[1]), int(m[2])
            return Period(date(year, month, 1), _month_end(year, month), text)
        if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", text):
            start, end = date.fromisoformat(m[1]), date.fromisoformat(m[2])
            if end < start:
                raise ValueError("the end is before the start")
            return Period(start, end, text)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            return Period(day, day, text)
    except ValueError as exc:
        raise ReportingError(f"--period {text!r}: {exc}.") from None
    raise ReportingError(
        f"--period {text!r} is not a period. Use a quarter (2026-Q3), a month (2026-07), "
        "a day (2026-07-14) or START..END (2023-01-01..2024-12-31)."
    )
