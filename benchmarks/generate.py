"""Generate realistic, deterministic Slurm sacct dumps and FOCUS cloud bills for tests, demos
and benchmarks.

    python benchmarks/generate.py sacct --cluster atlas --jobs 200000 --seed 7 \\
        --start 2026-07-01 --end 2026-10-01 --out /tmp/atlas [--split month|none] [--expected F]
    python benchmarks/generate.py focus --rows 1000000 --seed 7 --start 2026-07-01 \\
        --end 2026-10-01 --out /tmp/focus.csv.gz [--bad-rows K] [--expected F]
    python benchmarks/generate.py k8s --seed 7 --start 2026-07-01 --end 2026-10-01 \\
        --out /tmp/k8s [--telemetry-out /tmp/dcgm --telemetry-start 2026-09-14 \\
        --telemetry-days 7] [--expected F]
    python benchmarks/generate.py sample --out sample_logs/slurm

``sample`` writes exactly the committed sample (both clusters, fixed seeds, Q3 2026) plus
``EXPECTED.json``: per file the data/job/step line counts, job states, nordic energy flags and
the 1-based line numbers (header included) of the deliberately bad lines. The simulation and the
list of bad-line kinds live in the ``sacct`` package next to this file. Standard library only;
memory stays flat for any ``--jobs`` because jobs are written one at a time. ``--jobs`` counts
submissions with every array task counted as one job; a dump has about 3 lines per job (3.1 in
the sample).

``focus`` writes a FinOps FOCUS 1.2 cost export of exactly ``--rows`` data rows (the ``focus``
package next to this file describes its content); ``sample`` also writes the committed cloud
sample, ``<out>/../cloud/focus-2026-Q3.csv``, and an ``EXPECTED.json`` next to it with the row
count, BilledCost and EffectiveCost totals per currency, rows per ChargeCategory and untagged rows.

``k8s`` writes the OpenCost ``/allocation`` responses of the ``helios`` inference cluster (one
file per month, one 24 h step map per day) and, with ``--telemetry-out``, DCGM ``query_range``
dumps for some consecutive days (the ``k8s`` package next to this file describes them).
``sample`` also writes the committed Kubernetes and telemetry sample: ``<out>/../k8s/``,
``<out>/../telemetry/helios/`` and ``<out>/../telemetry/atlas/`` (DCGM dumps for part of the
atlas training jobs, chosen from the atlas sacct sample just written), each with EXPECTED.json.
It also writes the illustrative serving volume of the inference models (``serving`` module next to
this file): ``<out>/../serving/serving-volume-2026-Q3.csv`` and its EXPECTED.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from datetime import date

if __package__:
    from . import focus, k8s, sacct, serving
else:  # run as a script: python benchmarks/generate.py (Python puts this folder on sys.path)
    import focus
    import k8s
    import sacct
    import serving

SAMPLE_START, SAMPLE_END = "2026-07-01", "2026-10-01"
SAMPLE_RUNS = (("atlas", 3000, 20260701), ("nordic", 1000, 20260702))  # cluster, jobs, seed
FOCUS_SAMPLE = ("focus-2026-Q3.csv", 3500, 20260703)  # file in <out>/../cloud, rows, seed
K8S_SAMPLE = (20260704, "2026-09-14", 7)  # seed, first telemetry day (UTC), telemetry days
# atlas telemetry: seed, sacct dump, first and end day (UTC) of the chosen jobs' starts
ATLAS_TELEMETRY = (20260705, "sacct-2026-08.psv", "2026-08-01", "2026-08-11")
ATLAS_TIMEZONE = "America/New_York"  # as sample_logs/greenops.toml reads atlas times
SERVING_SAMPLE = ("serving-volume-2026-Q3.csv", 20260706)  # file in <out>/../serving, seed


def expected_manifest(command: str, runs: list[tuple[str, list]]) -> dict:
    """EXPECTED.json content: per file (path relative to the output folder) its statistics."""
    files = {}
    for prefix, stats_list in runs:
        for stats in stats_list:
            files[f"{prefix}{stats.path}"] = stats.as_dict()
    return {
        "generator": command,
        "bad_line_kinds": list(sacct.BAD_LINE_KINDS),
        "notes": "data_lines excludes the header; bad line numbers count the header as line 1.",
        "files": files,
    }


def write_json(path: str, payload: dict) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")


def report(cluster: str, result: sacct.DumpResult, seconds: float) -> None:
    lines = sum(stats.data_lines + stats.header_lines for stats in result.files)
    rate = lines / seconds if seconds else float("inf")
    print(
        f"{cluster}: {len(result.files)} file(s), {lines:,} lines in {seconds:.2f} s "
        f"({rate:,.0f} lines/s)",
        file=sys.stderr,
    )
    if result.oversubscribed_starts:
        max_days = sacct.MAX_QUEUE_WAIT_S // sacct.DAY_S
        print(
            f"{cluster}: {result.oversubscribed_starts:,} jobs waited longer than {max_days} "
            "days and were started on busy nodes (more jobs than the cluster can run)",
            file=sys.stderr,
        )


def focus_manifest(command: str, stats: focus.FocusStats) -> dict:
    """EXPECTED.json content for a FOCUS export (money rounded to cents)."""
    return {
        "generator": command,
        "bad_row_kinds": list(focus.BAD_ROW_KINDS),
        "notes": (
            "rows excludes the header. Totals add the rows as written (10 decimals) and round "
            "to cents; broken rows (--bad-rows) count in rows but in no total or count. "
            "Untagged rows have an empty Tags cell; on the BilledCost basis they include the "
            "Savings Plan fee, on the EffectiveCost basis its unused part."
        ),
        "files": {stats.path: stats.as_dict()},
    }


def report_focus(stats: focus.FocusStats, seconds: float) -> None:
    rate = stats.rows / seconds if seconds else float("inf")
    print(
        f"focus: {stats.rows:,} rows ({stats.granularity} charge periods) in {seconds:.2f} s "
        f"({rate:,.0f} rows/s)",
        file=sys.stderr,
    )


def cmd_focus(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    stats = focus.generate_focus(
        args.rows, args.seed, args.start, args.end, args.out, args.bad_rows
    )
    report_focus(stats, time.perf_counter() - began)
    if args.expected:
        command = (
            f"generate.py focus --rows {args.rows} --seed {args.seed} --start {args.start} "
            f"--end {args.end} --bad-rows {args.bad_rows}"
        )
        write_json(args.expected, focus_manifest(command, stats))
    return 0


def write_focus_sample(slurm_out: str) -> None:
    """The committed cloud bill: <slurm_out>/../cloud/focus-2026-Q3.csv and its EXPECTED.json."""
    folder = os.path.normpath(os.path.join(slurm_out, os.pardir, "cloud"))
    name, rows, seed = FOCUS_SAMPLE
    began = time.perf_counter()
    stats = focus.generate_focus(rows, seed, SAMPLE_START, SAMPLE_END, os.path.join(folder, name))
    report_focus(stats, time.perf_counter() - began)
    command = (
        f"generate.py sample (focus --rows {rows} --seed {seed} --start {SAMPLE_START} "
        f"--end {SAMPLE_END})"
    )
    write_json(os.path.join(folder, "EXPECTED.json"), focus_manifest(command, stats))


def report_k8s(what: str, expected: dict | None, seconds: float | None) -> None:
    if expected is not None:
        took = "" if seconds is None else f" in {seconds:.2f} s"
        print(f"{what}: {len(expected['files'])} file(s){took}", file=sys.stderr)


def cmd_k8s(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    allocations, telemetry = k8s.generate_helios(
        args.seed, args.start, args.end, args.out, args.telemetry_out, args.telemetry_start,
        args.telemetry_days,
    )  # fmt: skip
    report_k8s("opencost (+ dcgm)", allocations, time.perf_counter() - began)
    report_k8s("dcgm", telemetry, None)
    if args.expected:
        command = (
            f"generate.py k8s --seed {args.seed} --start {args.start} --end {args.end} "
            f"--telemetry-start {args.telemetry_start} --telemetry-days {args.telemetry_days}"
        )
        payload = {"generator": command, "notes": k8s.K8S_NOTES, **allocations}
        if telemetry is not None:
            payload["telemetry"] = telemetry
        k8s.write_expected(args.expected, payload)
    return 0


def write_k8s_sample(slurm_out: str, slurm_expected: dict) -> None:
    """The committed Kubernetes and telemetry sample next to <slurm_out> (see the docstring)."""
    root = os.path.normpath(os.path.join(slurm_out, os.pardir))
    seed, first_day, days = K8S_SAMPLE
    began = time.perf_counter()
    allocations, helios = k8s.generate_helios(
        seed, SAMPLE_START, SAMPLE_END, os.path.join(root, "k8s"),
        os.path.join(root, "telemetry", "helios"), first_day, days,
    )  # fmt: skip
    report_k8s("k8s helios", allocations, time.perf_counter() - began)
    command = (
        f"generate.py sample (k8s --seed {seed} --start {SAMPLE_START} --end {SAMPLE_END} "
        f"--telemetry-start {first_day} --telemetry-days {days})"
    )
    k8s.write_expected(
        os.path.join(root, "k8s", "EXPECTED.json"),
        {"generator": command, "notes": k8s.K8S_NOTES, **allocations},
    )
    atlas_seed, dump, first, last = ATLAS_TELEMETRY
    bad = slurm_expected["files"][f"atlas/{dump}"]["bad_line_numbers"]
    began = time.perf_counter()
    atlas = k8s.generate_atlas(
        atlas_seed, os.path.join(slurm_out, "atlas", dump), set(bad), first, last,
        ATLAS_TIMEZONE, os.path.join(root, "telemetry", "atlas"),
    )  # fmt: skip
    report_k8s("telemetry atlas", atlas, time.perf_counter() - began)
    k8s.write_expected(
        os.path.join(root, "telemetry", "EXPECTED.json"),
        {
            "generator": f"{command}; atlas seed {atlas_seed}",
            "notes": k8s.TELEMETRY_NOTES,
            "step_s": k8s.STEP_S,
            "max_gap_s": k8s.MAX_GAP_S,
            "helios": helios,
            "atlas": atlas,
        },
    )


def write_serving_sample(slurm_out: str) -> None:
    """The committed serving volume: <slurm_out>/../serving/<file> and its EXPECTED.json."""
    folder = os.path.normpath(os.path.join(slurm_out, os.pardir, "serving"))
    os.makedirs(folder, exist_ok=True)
    name, seed = SERVING_SAMPLE
    expected = serving.generate(seed, SAMPLE_START, SAMPLE_END, os.path.join(folder, name))
    command = (
        f"generate.py sample (serving --seed {seed} --start {SAMPLE_START} --end {SAMPLE_END})"
    )
    payload = {"generator": command, "notes": serving.NOTES, "files": {name: expected}}
    write_json(os.path.join(folder, "EXPECTED.json"), payload)


def cmd_sacct(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    result = sacct.generate_dump(
        args.cluster, args.jobs, args.seed, args.start, args.end, args.out, args.split
    )
    report(args.cluster, result, time.perf_counter() - began)
    if args.expected:
        command = (
            f"generate.py sacct --cluster {args.cluster} --jobs {args.jobs} "
            f"--seed {args.seed} --start {args.start} --end {args.end} --split {args.split}"
        )
        write_json(args.expected, expected_manifest(command, [("", result.files)]))
    return 0


def remove_old_dumps(folder: str) -> None:
    """So a changed month range cannot leave a stale file next to the new sample."""
    for path in sorted(glob.glob(os.path.join(folder, "sacct-*"))):
        os.remove(path)


def cmd_sample(args: argparse.Namespace) -> int:
    runs = []
    for cluster, n_jobs, seed in SAMPLE_RUNS:
        folder = os.path.join(args.out, cluster)
        remove_old_dumps(folder)
        began = time.perf_counter()
        result = sacct.generate_dump(
            cluster, n_jobs, seed, SAMPLE_START, SAMPLE_END, folder, "month"
        )
        report(cluster, result, time.perf_counter() - began)
        if result.oversubscribed_starts:
            raise SystemExit("the committed sample must never oversubscribe a node")
        runs.append((f"{cluster}/", result.files))
    manifest = expected_manifest("generate.py sample", runs)
    write_json(os.path.join(args.out, "EXPECTED.json"), manifest)
    write_focus_sample(args.out)
    write_k8s_sample(args.out, manifest)
    write_serving_sample(args.out)
    return 0


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def iso_date(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use YYYY-MM-DD") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sacct_cmd = commands.add_parser("sacct", help="one cluster's dump with your own size and seed")
    sacct_cmd.add_argument("--cluster", required=True, choices=sorted(sacct.CLUSTERS))
    sacct_cmd.add_argument(
        "--jobs", required=True, type=positive_int, help="submissions; array tasks count"
    )
    sacct_cmd.add_argument("--seed", required=True, type=int)
    sacct_cmd.add_argument(
        "--start", default=SAMPLE_START, type=iso_date, help="first day, local time (YYYY-MM-DD)"
    )
    sacct_cmd.add_argument(
        "--end", default=SAMPLE_END, type=iso_date, help="day after the last, local time"
    )
    sacct_cmd.add_argument("--out", required=True, help="folder for the sacct-*.psv/.txt files")
    sacct_cmd.add_argument("--split", choices=("month", "none"), default="month")
    sacct_cmd.add_argument("--expected", help="also write EXPECTED.json-style statistics here")
    sacct_cmd.set_defaults(handler=cmd_sacct)
    focus_cmd = commands.add_parser("focus", help="a FOCUS 1.2 cloud cost export")
    focus_cmd.add_argument("--rows", required=True, type=positive_int, help="data rows, exactly")
    focus_cmd.add_argument("--seed", required=True, type=int)
    focus_cmd.add_argument("--start", default=SAMPLE_START, type=iso_date, help="first day, UTC")
    focus_cmd.add_argument("--end", default=SAMPLE_END, type=iso_date, help="day after the last")
    focus_cmd.add_argument("--out", required=True, help="the CSV file; .gz for gzip")
    focus_cmd.add_argument(
        "--bad-rows", default=0, type=non_negative_int, help="rows broken on purpose"
    )
    focus_cmd.add_argument("--expected", help="also write EXPECTED.json-style statistics here")
    focus_cmd.set_defaults(handler=cmd_focus)
    k8s_cmd = commands.add_parser("k8s", help="OpenCost allocations (+ DCGM dumps) of helios")
    k8s_cmd.add_argument("--seed", required=True, type=int)
    k8s_cmd.add_argument("--start", default=SAMPLE_START, type=iso_date, help="first day, UTC")
    k8s_cmd.add_argument("--end", default=SAMPLE_END, type=iso_date, help="day after the last")
    k8s_cmd.add_argument("--out", required=True, help="folder for the opencost-*.json files")
    k8s_cmd.add_argument("--telemetry-out", help="folder for dcgm-*.json dumps (default: none)")
    k8s_cmd.add_argument(
        "--telemetry-start", default=K8S_SAMPLE[1], type=iso_date, help="first telemetry day"
    )
    k8s_cmd.add_argument("--telemetry-days", default=K8S_SAMPLE[2], type=positive_int)
    k8s_cmd.add_argument("--expected", help="also write EXPECTED.json-style statistics here")
    k8s_cmd.set_defaults(handler=cmd_k8s)
    sample = commands.add_parser(
        "sample", help="write the committed sample (clusters, cloud bill, k8s and telemetry)"
    )
    sample.add_argument("--out", required=True)
    sample.set_defaults(handler=cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("sacct", "focus", "k8s") and args.end <= args.start:
        parser.error("--end must be after --start")
    if args.command == "focus" and args.rows < focus.minimum_rows(args.start, args.end):
        parser.error(f"--rows must be at least {focus.minimum_rows(args.start, args.end):,}")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
