"""Benchmark `greenops report --period 2026-Q3` on a large ledger synthesised directly.

    .venv/bin/python benchmarks/report_bench.py --rows 10000000 --days 90 --repeat 3 \\
        [--work /tmp/greenops-report-bench] [--profile DIR] [--date-label 2026-11-22]

The ledger (benchmarks/ledger_synth.py: atlas Slurm runs, the real schema and partition layout,
`--days` daily partitions from 2026-07-01 holding about `--rows` rows) is built once and cached
under <work>/<rows>-<days>-<seed>/, with the records the report reads besides the partitions:
the factor register, per-file intake records, input fingerprints and a validation record. The
config is run.py's atlas config with `[ledger] path` pointing at it. Each repetition removes the
report's publication log (so every run does the same work) and runs the installed `greenops
report` as a child; wall, CPU (user+sys) and peak RSS come from os.wait4(). With --profile, one
more run goes under cProfile (DIR/report.prof) and py-spy, if installed (DIR/report.speedscope).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import config_text, greenops_executable, machine, measure  # the sibling script

PERIOD = "2026-Q3"
FIRST_DAY = date(2026, 7, 1)
DONE_MARKER = ".complete"


def build(folder: Path, rows: int, days: int, seed: int) -> int:
    """Write the config and the synthetic ledger under `folder` once; return the ledger's rows."""
    marker = folder / DONE_MARKER
    if marker.exists():
        return int(marker.read_text().split()[0])
    from ledger_synth import Synth

    from reporting import ledger as store
    from reporting.config import load_config
    from reporting.factors import register_frame
    from reporting.runstate import write_state
    from reporting.schema import empty_quarantine
    from reporting.validation import runlevel

    shutil.rmtree(folder, ignore_errors=True)
    root = folder / "ledger"
    root.mkdir(parents=True)
    config_path = folder / "greenops.toml"
    text = config_text("slurm", "data/*.psv") + '\n[ledger]\npath = "ledger"\n'
    config_path.write_text(text, encoding="utf-8")
    shutil.copy(HERE.parent / "sample_logs" / "owners.csv", folder / "owners.csv")
    synth = Synth(load_config(config_path), rows, days, FIRST_DAY, seed)
    began, written, runs_by_file = time.perf_counter(), 0, {}
    for day, table in synth.days_written():
        path = store.partition_path(root, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd", write_statistics=True)
        written += table.num_rows
        name = f"data/sacct-{day:%Y-%m}.psv"  # the runs that started that day
        runs_by_file[name] = runs_by_file.get(name, 0) + synth.runs_per_day
        print(f"{day}: {table.num_rows:,} rows ({written:,} in all)", file=sys.stderr)
    store.write_factors(root, register_frame(synth.factors))
    records = _records(runs_by_file, FIRST_DAY, FIRST_DAY + timedelta(days))
    store.write_intake(root, records, empty_quarantine())
    write_state(root, {n: {"size": 3 * r["rows_read"] * 110, "sha256": "0" * 64} for n, r in records.items()})  # fmt: skip
    runlevel.write_json(root, runlevel.RESULTS_FILE, _validation_record())
    took = time.perf_counter() - began
    print(f"built {written:,} ledger rows in {days} partitions in {took:.0f} s", file=sys.stderr)
    marker.write_text(f"{written} rows={rows} days={days} seed={seed}\n")
    return written


def _records(runs_by_file: dict[str, int], first: date, end: date) -> dict[str, dict]:
    """Intake records as a run writes them: per monthly dump, its lines and runs."""
    records = {}
    for name, runs in sorted(runs_by_file.items()):
        lines = 3 * runs  # a job line and about two step lines per run
        records[name] = {
            "kind": "slurm", "source_file": name, "site": "atlas", "rows_read": lines,
            "rows_accepted": lines, "rows_quarantined": 0, "runs": runs,
            "not_attributed": {"PENDING": runs // 40, "RUNNING": runs // 300},
            "span": [f"{first.isoformat()}T04:00:00+00:00", f"{end.isoformat()}T03:59:59+00:00"],
        }  # fmt: skip
    return records


def _validation_record() -> dict:
    suites = [("slurm", 16), ("usage", 20), ("charges", 11), ("ledger", 10)]
    return {
        "billing_totals": {}, "gate": [], "run_date": "2026-09-30", "suite_version": "2",
        "suites": [{"expectations": n, "failed": [], "rows_quarantined": 0, "suite": s} for s, n in suites],
        "warnings": [],
    }  # fmt: skip


def report_command(greenops: Path, config: Path, out: Path) -> list[str]:
    return [str(greenops), "report", "--config", str(config), "--period", PERIOD, "--out", str(out), "--quiet"]  # fmt: skip


def profile(greenops: Path, config: Path, folder: Path, into: Path) -> None:
    """One run under cProfile, and one sampled by py-spy when it is installed."""
    into.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder / "ledger" / "_published", ignore_errors=True)
    command = report_command(greenops, config, folder / "out-profile")
    cprofile = [sys.executable, "-m", "cProfile", "-o", str(into / "report.prof"), *command]
    subprocess.run(cprofile, check=True)
    spy = Path(sys.executable).parent / "py-spy"
    if spy.exists():
        shutil.rmtree(folder / "ledger" / "_published", ignore_errors=True)
        record = [str(spy), "record", "--format", "speedscope", "--rate", "50", "-o"]
        subprocess.run([*record, str(into / "report.speedscope"), "--", *command], check=True)
    print(f"profiles in {into}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="ledger rows (about)")
    parser.add_argument("--days", type=int, default=90, help="daily partitions from 2026-07-01")
    parser.add_argument("--repeat", type=int, default=3, help="runs (median reported)")
    parser.add_argument("--seed", type=int, default=7)
    work = Path(tempfile.gettempdir()) / "greenops-report-bench"
    parser.add_argument("--work", type=Path, default=work, help="cache of the ledger")
    parser.add_argument("--profile", type=Path, metavar="DIR", help="also profile one run")
    parser.add_argument("--date-label", default="not given", help="measurement date to print")
    args = parser.parse_args()
    if not 1 <= args.days <= 92 or args.rows < args.days or args.repeat < 0:
        parser.error("--days 1..92 (within 2026-Q3), --rows at least --days, --repeat ≥ 0")
    greenops = greenops_executable()
    folder = args.work.resolve() / f"{args.rows}-{args.days}-{args.seed}"
    rows = build(folder, args.rows, args.days, args.seed)
    config = folder / "greenops.toml"
    runs = []
    for i in range(1, args.repeat + 1):
        shutil.rmtree(folder / "ledger" / "_published", ignore_errors=True)
        runs.append(measure(report_command(greenops, config, folder / "out"), folder / "out"))
        print(f"run {i}/{args.repeat}: {runs[-1]['wall']:.1f} s wall, {runs[-1]['cpu']:.1f} s CPU, "
              f"{runs[-1]['rss']:,.0f} MiB peak RSS", file=sys.stderr)  # fmt: skip
    if args.profile:
        profile(greenops, config, folder, args.profile.resolve())
    if not runs:
        return 0
    size_mib = sum(p.stat().st_size for p in (folder / "ledger").glob("day=*/*.parquet")) / 1024**2
    walls = [r["wall"] for r in runs]
    print(f"Date: {args.date_label}\n\nMachine:\n")
    print("\n".join(machine()))
    print(f"\n`greenops report --period {PERIOD}` on a synthetic ledger ({folder}):\n")
    print("| ledger rows | partitions | parquet MiB | runs | wall s, median (min–max) | CPU s "
          "| peak RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    print(
        f"| {rows:,} | {args.days} | {size_mib:,.0f} | {len(runs)} | "
        f"{statistics.median(walls):,.2f} ({min(walls):,.2f}–{max(walls):,.2f}) | "
        f"{statistics.median(r['cpu'] for r in runs):,.2f} | "
        f"{statistics.median(r['rss'] for r in runs):,.0f} |"
    )
    print(json.dumps({"runs": runs}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
