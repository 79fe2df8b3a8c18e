"""Command line: argument parsing, logging and exit codes — nothing else.

Exit codes: 0 done; 1 a user-facing error; 2 bad command line; 3 data-quality gate failed
(the report is still written).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from reporting import __version__, pipeline
from reporting.config import load_config
from reporting.errors import ReportingError
from reporting.period import parse_period, quarter_to_date

EXIT_GATE = 3
DEMO_DATE = date(2026, 9, 30)  # the last day of the sample quarter in sample_logs/

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Energy, cost and carbon of ML compute: ledger, audit and ESG reports.",
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="TOML config file.")]
OutOption = Annotated[Path, typer.Option("--out", help="Output folder.")]
PeriodOption = Annotated[
    str | None, typer.Option(help="2026-Q3, 2026-07, 2026-07-14 or START..END.")
]


def _user_errors(command: Callable[..., None]) -> Callable[..., None]:
    """A ReportingError is the user's to fix: one line on stderr, exit 1. Bugs keep their traceback."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
        except ReportingError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _yesterday_utc() -> date:
    # The CLI is the only place that reads the clock; stages get the date as an argument.
    return datetime.now(UTC).date() - timedelta(days=1)


def _parse_date(text: str | None) -> date:
    if text is None:
        return _yesterday_utc()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportingError(
            f"--date {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-07-14."
        ) from None


def _setup_logging(quiet: bool, verbose: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("reporting").setLevel(level)  # our stage lines; libraries stay at WARNING


def _finish(result: pipeline.RunResult) -> None:
    for failure in result.gate_failures:
        typer.echo(f"Data-quality gate: {failure}", err=True)
    if result.gate_failures:
        raise typer.Exit(EXIT_GATE)


@app.command()
@_user_errors
def run(
    config: ConfigOption,
    date_: Annotated[
        str | None, typer.Option("--date", help="Run date (default: yesterday, UTC).")
    ] = None,
    period: PeriodOption = None,
    out: OutOption = Path("out"),
    quiet: bool = False,
    verbose: bool = False,
) -> None:
    """The nightly job: ingest inputs, attribute, write the ledger, render the period's report."""
    _setup_logging(quiet, verbose)
    run_date = _parse_date(date_)
    chosen = parse_period(period) if period else quarter_to_date(run_date)
    _finish(pipeline.run(load_config(config), run_date, chosen, out))


@app.command()
@_user_errors
def report(
    config: ConfigOption,
    period: Annotated[str, typer.Option(help="2026-Q3, 2026-07, ...")],
    out: OutOption = Path("out"),
    quiet: bool = False,
) -> None:
    """Render a period from the ledger alone (no inputs are read)."""
    _setup_logging(quiet, False)
    chosen = parse_period(period)
    pipeline.report(load_config(config), chosen, out, chosen.end)


@app.command()
@_user_errors
def validate(config: ConfigOption, quiet: bool = False) -> None:
    """Read and check every input; print counts per file; write nothing."""
    _setup_logging(quiet, False)
    intake = pipeline.ingest(load_config(config))
    for stats in intake.files.values():
        typer.echo(
            f"{stats['source_file']}: {stats['rows_read']} read, {stats['rows_accepted']} accepted, "
            f"{stats['rows_quarantined']} quarantined"
        )
    for check, rows in intake.quarantine.groupby("check").size().items():
        typer.echo(f"  {check}: {rows}")
    if intake.gate_failures:
        _finish(pipeline.RunResult({}, intake.gate_failures, Path(".")))


@app.command()
@_user_errors
def demo(
    out: OutOption = Path("out"),
    samples: Annotated[Path, typer.Option(help="The sample folder.")] = Path("sample_logs"),
) -> None:
    """Run the whole pipeline on sample_logs/ (a small AI lab's quarter) into --out."""
    _setup_logging(False, False)
    config_path = samples / "greenops.toml"
    if not config_path.exists():
        raise ReportingError(
            f"{config_path}: not found. Run `greenops demo` from the repository root."
        )
    config = load_config(config_path)
    result = pipeline.run(config, DEMO_DATE, quarter_to_date(DEMO_DATE), out)
    typer.echo(f"Wrote {out / 'report.html'}, {out / 'report.pdf'}, {out / 'summary.json'}")
    _finish(result)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
