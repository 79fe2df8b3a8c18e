"""Command line: argument parsing, logging and exit codes — nothing else.

Exit codes: 0 done; 1 a user-facing error; 2 bad command line; 3 data-quality gate failed
(the report is still written).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from reporting import __version__, notify, pipeline
from reporting.config import Config, load_config
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
    """A ReportingError is the user's to fix: one line on stderr, exit 1 (75 when another run
    holds the ledger). Bugs keep their traceback."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
        except ReportingError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(getattr(exc, "exit_code", 1)) from None

    return wrapper


def _yesterday_utc() -> date:
    # The CLI is the only place that reads the clock; stages get the date as an argument.
    return datetime.now(UTC).date() - timedelta(days=1)


def _parse_date(text: str | None, option: str = "--date") -> date:
    if text is None:
        return _yesterday_utc()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportingError(
            f"{option} {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-07-14."
        ) from None


class _JsonLines(logging.Formatter):
    """One JSON object per log line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}  # fmt: skip
        return json.dumps(entry, ensure_ascii=False)


def _setup_logging(quiet: bool, verbose: bool, log_format: str = "text") -> None:
    if log_format not in ("text", "json"):
        raise ReportingError(f"--log-format {log_format!r}: use text or json.")
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonLines()
        if log_format == "json"
        else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    # Libraries stay at WARNING even when they set their own loggers lower (GX does).
    handler.addFilter(lambda r: r.name.startswith("reporting") or r.levelno >= logging.WARNING)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("reporting").setLevel(level)  # our stage lines; libraries stay at WARNING


def _finish(result: pipeline.RunResult) -> None:
    for failure in result.gate_failures:
        typer.echo(f"Data-quality gate: {failure}", err=True)
    for error in result.notify_errors:
        typer.echo(f"Notify: {error}", err=True)
    if result.gate_failures:
        raise typer.Exit(EXIT_GATE)
    if result.notify_errors:  # findings stay pending and are retried next night
        raise typer.Exit(1)


@app.command()
@_user_errors
def run(
    config: ConfigOption,
    date_: Annotated[
        str | None, typer.Option("--date", help="Run date (default: yesterday, UTC).")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Backfill: first day; re-reads every input.")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Backfill: last day (with --from).")
    ] = None,
    period: PeriodOption = None,
    out: OutOption = Path("out"),
    quiet: Annotated[bool, typer.Option(help="Warnings and errors only.")] = False,
    verbose: bool = False,
    log_format: Annotated[str, typer.Option(help="text or json (one object per line).")] = "text",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write owners' e-mails to <out>/outbox, send nothing.")
    ] = False,
    engine: Annotated[
        str, typer.Option(help="local, or dask: large inputs' slices processed on a Dask cluster.")
    ] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://host:8786); default: a local cluster."),
    ] = None,
) -> None:
    """The nightly job: new or changed inputs → ledger → report → audit → owners' e-mails."""
    _setup_logging(quiet, verbose, log_format)
    if engine not in ("local", "dask"):
        raise ReportingError(f"--engine {engine!r}: use local or dask.")
    if scheduler is not None and engine != "dask":
        raise ReportingError("--scheduler goes with --engine dask.")
    if (from_ is None) != (to is None):
        raise ReportingError("--from and --to go together: give both days of the backfill.")
    run_date = _parse_date(to if to else date_, "--to" if to else "--date")
    if from_ is not None:
        first = _parse_date(from_, "--from")
        chosen = parse_period(period) if period else parse_period(f"{first}..{run_date}")
    else:
        chosen = parse_period(period) if period else quarter_to_date(run_date)
    loaded = load_config(config)
    with _progress_bar() as on_stage:
        options = pipeline.RunOptions(
            started_at=datetime.now(UTC).replace(microsecond=0),
            force=from_ is not None,
            after_step=_crash_hook(),
            on_stage=on_stage,
            notify="dry-run" if dry_run else "send",
            smtp_password=_smtp_password(loaded, dry_run),
            engine="dask" if engine == "dask" else "local",
            scheduler=scheduler,
        )
        result = pipeline.run(loaded, run_date, chosen, out, options)
    _finish(result)


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[str], None] | None]:
    """A rich progress bar over the run's stages, only when a person watches stderr."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("greenops run", total=len(pipeline.STAGES))
        yield lambda stage: progress.update(
            task, advance=1, description=f"greenops run: {stage} done"
        )


def _smtp_password(config: Config, dry_run: bool) -> str | None:
    """The SMTP password, from the environment variable or file the config names (never the config)."""
    if dry_run or not config.notify.enabled:
        return None
    return notify.read_password(config.notify, config.base_dir, os.environ)


def _crash_hook() -> Callable[[int], None] | None:
    """Test hook: GREENOPS_TEST_CRASH_AFTER_STEPS=N kills this process (SIGKILL) at step N of the
    ledger commit (0: partitions written, no journal yet; N: after the N-th rename), to prove
    that a killed run leaves a ledger the next run recovers."""
    steps = os.environ.get("GREENOPS_TEST_CRASH_AFTER_STEPS")
    if not steps:
        return None

    def crash(step: int) -> None:
        if step == int(steps):
            os.kill(os.getpid(), signal.SIGKILL)

    return crash


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
def validate(
    config: ConfigOption,
    quiet: bool = False,
    date_: Annotated[
        str | None, typer.Option("--date", help="Run date for freshness (default: yesterday).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write GX Data Docs to <out>/data_docs only.")
    ] = None,
) -> None:
    """Read and check every input (ingest + expectation suites); print counts per file, failed
    checks and warnings; write nothing (Data Docs with --out). Exit 3 if the gate fails."""
    _setup_logging(quiet, False)
    loaded = load_config(config)
    checked = pipeline.check_inputs(loaded, _parse_date(date_), out)
    intake, record = checked
    for stats in intake.files.values():
        typer.echo(
            f"{stats['source_file']}: {stats['rows_read']} read, {stats['rows_accepted']} accepted, "
            f"{stats['rows_quarantined']} quarantined"
        )
    for check, rows in intake.quarantine.groupby("check").size().items():
        typer.echo(f"  {check}: {rows}")
    for warning in record["warnings"]:
        typer.echo(f"Warning: {warning}")
    if intake.gate_failures:
        _finish(pipeline.RunResult({}, intake.gate_failures, Path(".")))


@app.command()
@_user_errors
def audit(
    config: ConfigOption,
    period: Annotated[str, typer.Option(help="2026-Q3, 2026-07, ...")],
    out: OutOption = Path("out"),
) -> None:
    """Audit a period of the ledger: print findings per rule, write <out>/findings.csv."""
    _setup_logging(False, False)
    chosen = parse_period(period)
    reported = pipeline.report(load_config(config), chosen, out, chosen.end)
    findings = reported.summary["findings"]
    typer.echo(
        f"{findings['count']} findings: {findings['wasted_energy_kwh']:,.1f} kWh and "
        f"{findings['wasted_co2e_kg']:,.1f} kg CO2e wasted (written to {out / 'findings.csv'})"
    )
    for rule, count in findings["by_rule"].items():
        typer.echo(f"  {rule}: {count}")


@app.command("notify")
@_user_errors
def notify_owners(
    config: ConfigOption,
    date_: Annotated[
        str | None, typer.Option("--date", help="Night to notify for (default: yesterday).")
    ] = None,
    out: OutOption = Path("out"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write e-mails to <out>/outbox only.")
    ] = False,
) -> None:
    """Send owners the digests of findings not notified yet (quarter to date of --date)."""
    _setup_logging(False, False)
    loaded = load_config(config)
    run_date = _parse_date(date_)
    reported = pipeline.report(loaded, quarter_to_date(run_date), out, run_date)
    options = pipeline.RunOptions(
        started_at=datetime.now(UTC).replace(microsecond=0),
        notify="dry-run" if dry_run else "send",
        smtp_password=_smtp_password(loaded, dry_run),
    )
    errors = pipeline.notify_only(loaded, out, run_date, reported.findings, options)
    _finish(pipeline.RunResult(reported.summary, [], out, errors))


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
    options = pipeline.RunOptions(
        started_at=datetime.now(UTC).replace(microsecond=0), force=True, notify="dry-run"
    )
    result = pipeline.run(config, DEMO_DATE, quarter_to_date(DEMO_DATE), out, options)
    typer.echo(
        f"Wrote {out / 'report.html'}, {out / 'report.pdf'}, {out / 'summary.json'}, "
        f"{out / 'findings.csv'} and the owners' e-mails in {out / 'outbox'}"
    )
    _finish(result)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
