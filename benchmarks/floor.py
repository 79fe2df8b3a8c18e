"""Run the floor (benchmarks/floor.sql, one DuckDB query) on raw atlas sacct dumps.

    .venv/bin/python benchmarks/floor.py --sacct '/tmp/greenops-bench/100000/data/*.psv' \\
        [--out floor.csv] [--threads N] [--compare out/summary.json]

Writes the per-team, per-day table to --out (CSV) and prints the totals of the days from
--start to --end (default 2026-Q3, the period `greenops run --date 2026-09-30` reports). With
--compare, also prints how far those totals are from a `greenops run` summary.json's.
Needs DuckDB: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb

QUERY = Path(__file__).resolve().parent / "floor.sql"
TOTALS = ("it_energy_kwh", "facility_energy_kwh", "co2e_location_kg", "cost")


def run_floor(sacct_glob: str, threads: int | None) -> duckdb.DuckDBPyConnection:
    """The floor's table `floor` (team, day, totals), in a fresh in-memory DuckDB."""
    connection = duckdb.connect()
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    connection.execute("SET VARIABLE sacct_files = ?", [sacct_glob])
    *setup, query = connection.extract_statements(QUERY.read_text(encoding="utf-8"))
    for statement in setup:  # the session setting and the macros
        connection.execute(statement)
    connection.execute(f"CREATE TEMP TABLE floor AS {query.query}")
    return connection


def period_totals(connection: duckdb.DuckDBPyConnection, start: str, end: str) -> dict[str, float]:
    sums = ", ".join(f"sum({c})" for c in TOTALS)
    where = "day BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)"
    row = connection.execute(f"SELECT {sums} FROM floor WHERE {where}", [start, end]).fetchone()
    return dict(zip(TOTALS, (float(v or 0.0) for v in row), strict=True))


def compare(totals: dict[str, float], summary_path: Path) -> list[str]:
    """One line per total: floor, greenops, relative difference (floor ÷ greenops − 1)."""
    summary = json.loads(summary_path.read_text(encoding="utf-8"))["totals"]
    theirs = {c: summary[c] for c in TOTALS if c != "cost"}
    theirs["cost"] = sum(summary["cost"].values())  # atlas bills in one currency (USD)
    return [
        f"{c}: floor {totals[c]:,.3f}, greenops {theirs[c]:,.3f}, "
        f"difference {totals[c] / theirs[c] - 1:+.4%}"
        for c in TOTALS
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sacct", required=True, help="glob of the atlas sacct dumps")
    parser.add_argument("--out", type=Path, help="write the team × day table here (CSV)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument("--start", default="2026-07-01", help="first day of the totals")
    parser.add_argument("--end", default="2026-09-30", help="last day of the totals")
    parser.add_argument("--compare", type=Path, help="a `greenops run` summary.json")
    args = parser.parse_args()
    connection = run_floor(args.sacct, args.threads)
    if args.out:
        connection.table("floor").write_csv(str(args.out))
    totals = period_totals(connection, args.start, args.end)
    print(
        f"floor {args.start}..{args.end}: " + ", ".join(f"{k} {v:,.3f}" for k, v in totals.items())
    )
    if args.compare:
        print("\n".join(compare(totals, args.compare)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
