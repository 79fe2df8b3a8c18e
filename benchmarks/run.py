"""Benchmark `greenops run` on generated atlas sacct dumps and FOCUS exports of given sizes,
side by side with the floor (benchmarks/floor.sql: the same figures from the same sacct dump in
one DuckDB query).

    .venv/bin/python benchmarks/run.py --lines 100000 1000000 --focus-rows 1000000 --repeat 3 \\
        [--no-floor] [--work /tmp/greenops-bench] [--keep DIR] [--date-label 2026-07-14]

For each size an input of about that many lines is generated once and cached under <work>/
(<lines>/ for sacct, focus-<rows>/ for FOCUS; generation is not measured), next to a config: the
atlas sections of sample_logs/greenops.toml and one [[inputs]] for the dump, or the sample's
organisation, billing and owner sections and one FOCUS input. `greenops run` (the one installed
next to this Python) then runs --repeat times as a child process with a fresh output folder, so
the ledger is written from scratch; for sacct, each repetition also runs benchmarks/floor.py with
this Python right after it (needs DuckDB: `pip install -e '.[bench]'`). Wall time, user+sys CPU
time and peak RSS of each child come from os.wait4(); the medians, the ratios greenops ÷ floor
and the 1-minute load average before and after each size go into Markdown tables on stdout.
Standard library only (DuckDB is imported by the floor's child process, not here).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
FLOOR = HERE / "floor.py"
SAMPLE_CONFIG = HERE.parent / "sample_logs" / "greenops.toml"
SITE = "atlas"
RUN_DATE = "2026-09-30"  # the last day of the generated quarter: the report covers all of Q3
START, END = "2026-07-01", "2026-10-01"
LINES_PER_JOB = 2.95  # measured on large atlas dumps (3.1 in the small sample)
SACCT_HEADER = (
    "| lines | MiB | runs | greenops wall s, median (min–max) | CPU s | peak RSS MiB | tree RSS MiB "
    "| floor wall s (min–max) | CPU s | peak RSS MiB | ratio wall | ratio CPU | load 1 min |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
SACCT_HEADER_NO_FLOOR = (
    "| lines | MiB | runs | wall s, median (min–max) | CPU s (user+sys) | peak RSS MiB "
    "| tree RSS MiB | lines/s (wall) | load 1 min |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
FOCUS_HEADER = (
    "| rows | MiB | runs | wall s, median (min–max) | CPU s (user+sys) | peak RSS MiB "
    "| tree RSS MiB | rows/s (wall) | load 1 min |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
FOCUS_FILE = "focus-2026-Q3.csv"
SAMPLE_S = 0.5  # process-tree RSS sampling interval
DONE_MARKER = ".complete"  # written after generation, so an interrupted dump is regenerated


def greenops_executable() -> Path:
    """`greenops` next to this interpreter (not os.path.realpath: a venv's python is a symlink)."""
    exe = Path(os.path.abspath(sys.executable)).parent / "greenops"
    if not exe.is_file() or not os.access(exe, os.X_OK):
        sys.exit(
            f"error: no `greenops` next to {sys.executable} (looked for {exe}).\n"
            "Run this script with the Python of the environment where greenops-reporting is "
            "installed, e.g. `.venv/bin/python benchmarks/run.py ...`."
        )
    return exe


def sample_blocks() -> list[list[str]]:
    """sample_logs/greenops.toml cut into top-level blocks at unindented `[` lines; sub-tables
    such as `[[sites.partitions]]` are indented there, so they stay with their site."""
    blocks: list[list[str]] = [[]]
    for line in SAMPLE_CONFIG.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            blocks.append([])
        blocks[-1].append(line)
    return blocks


def config_text(kind: str, input_glob: str) -> str:
    """The sample config without its inputs, plus one input: for `slurm`, with the atlas site
    only; for `focus`, with no site at all (billing lines carry their region)."""

    def keep(block: list[str]) -> bool:
        header = block[0].strip() if block else ""
        if header == "[[sites]]":
            return kind == "slurm" and tomllib.loads("\n".join(block))["sites"][0]["name"] == SITE
        return header != "[[inputs]]"  # preamble comments, [organisation], [[owners]], ...

    kept = ["\n".join(block) for block in sample_blocks() if keep(block)]
    site = f'site = "{SITE}"\n' if kind == "slurm" else ""
    kept.append(
        f'[[inputs]]\nkind = "{kind}"\npath = "{input_glob}"\n{site}max_quarantined_ratio = 1.0\n'
    )
    text = f"# Written by benchmarks/run.py: sample_logs/greenops.toml with one {kind} input.\n"
    text += "\n".join(kept)
    parsed = tomllib.loads(text)  # fail here, not inside the measurement, if the cut went wrong
    sites = [s["name"] for s in parsed.get("sites", [])]
    assert sites == ([SITE] if kind == "slurm" else []) and len(parsed["inputs"]) == 1
    return text


def atlas_config_text(input_glob: str) -> str:
    return config_text("slurm", input_glob)


def count_lines(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        with path.open("rb") as handle:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return total


def generate_once(folder: Path, what: str, command: list[str], marker: str) -> None:
    """Run the generator into `folder` unless a complete earlier run left its marker there."""
    if (folder / DONE_MARKER).exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    print(f"generating {what} in {folder / 'data'} ...", file=sys.stderr)
    subprocess.run([sys.executable, str(HERE / "generate.py"), *command], check=True)
    (folder / DONE_MARKER).write_text(marker + "\n")


def write_config(folder: Path, kind: str, input_glob: str) -> Path:
    config = folder / "greenops.toml"
    # The sample's [notify] names its owners directory next to the config.
    shutil.copy(SAMPLE_CONFIG.parent / "owners.csv", folder / "owners.csv")
    config.write_text(config_text(kind, input_glob), encoding="utf-8")
    return config


def prepare(lines: int, work: Path, seed: int) -> tuple[Path, int, int]:
    """Generate (once) the sacct dump and config for `lines`; return (config, lines, bytes)."""
    folder = work / str(lines)
    jobs = max(1, round(lines / LINES_PER_JOB))
    options = f"--cluster {SITE} --jobs {jobs} --seed {seed} --start {START} --end {END}"
    command = ["sacct", *options.split(), "--split", "none", "--out", str(folder / "data")]
    generate_once(
        folder, f"~{lines:,} sacct lines ({jobs:,} jobs)", command, f"jobs={jobs} seed={seed}"
    )
    config = write_config(folder, "slurm", "data/*.psv")
    dumps = sorted((folder / "data").glob("*.psv"))
    return config, count_lines(dumps), sum(d.stat().st_size for d in dumps)


def prepare_focus(rows: int, work: Path, seed: int) -> tuple[Path, int, int]:
    """Generate (once) a FOCUS export of exactly `rows` rows and its config; as prepare()."""
    folder = work / f"focus-{rows}"
    out = folder / "data" / FOCUS_FILE
    options = f"--rows {rows} --seed {seed} --start {START} --end {END} --out {out}"
    generate_once(
        folder, f"{rows:,} FOCUS rows", ["focus", *options.split()], f"rows={rows} seed={seed}"
    )
    config = write_config(folder, "focus", f"data/{FOCUS_FILE}")
    return config, rows, out.stat().st_size


def tree_rss_mib(pid: int) -> float:
    """Resident memory of `pid` and all its descendants now (MiB): a Dask run's workers are
    separate processes, and wait4's ru_maxrss is only the largest single process's peak."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    family, grew = {pid}, True
    while grew:
        added = {p for p, parent in parents.items() if parent in family} - family
        family |= added
        grew = bool(added)
    total_kib = 0
    for member in family:
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total_kib += next((int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("VmRSS:")), 0)  # fmt: skip
    return total_kib / 1024


def _sample_tree(pid: int, peak: list[float], stop: threading.Event) -> None:
    while not stop.wait(SAMPLE_S):
        peak[0] = max(peak[0], tree_rss_mib(pid))


def measure(command: list[str], out: Path) -> dict[str, float]:
    """Run `command` once with a fresh `out` folder; wall s, CPU s and peak RSS MiB of the child
    (ru_maxrss: its largest process) and of its whole process tree (sampled every SAMPLE_S)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with tempfile.TemporaryFile() as stderr:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        tree_peak, stop = [0.0], threading.Event()
        sampler = threading.Thread(target=_sample_tree, args=(child.pid, tree_peak, stop))
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - began
        stop.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        if child.returncode != 0:
            stderr.seek(0)
            sys.exit(
                f"error: `{' '.join(command)}` exited with {child.returncode}:\n"
                + stderr.read().decode(errors="replace")[-4000:]
            )
    cpu, rss_mib = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # KiB on Linux
    return {"wall": wall, "cpu": cpu, "rss": rss_mib, "tree_rss": max(tree_peak[0], rss_mib)}


def greenops_command(greenops: Path, config: Path, out: Path, extra: list[str]) -> list[str]:
    options = ["--date", RUN_DATE, "--out", str(out), "--quiet", *extra]
    return [str(greenops), "run", "--config", str(config), *options]


def floor_command(config: Path, out: Path) -> list[str]:
    dumps = str(config.parent / "data" / "*.psv")
    return [sys.executable, str(FLOOR), "--sacct", dumps, "--out", str(out / "floor.csv")]


def run_options(args: argparse.Namespace) -> list[str]:
    """The options of `greenops run` chosen on the benchmark's command line."""
    return ["--engine", args.engine, *(["--period", args.period] if args.period else [])]


def check_floor_runs() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import duckdb"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        sys.exit(
            f"error: the floor needs DuckDB in {sys.executable}'s environment: "
            "`pip install -e '.[bench]'`, or pass --no-floor."
        )


def median_cell(runs: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in runs]
    middle = statistics.median(values)
    if key != "wall":  # CPU s with decimals; RSS in whole MiB
        return f"{middle:,.2f}" if key == "cpu" else f"{middle:,.0f}"
    return f"{middle:,.2f} ({min(values):,.2f}–{max(values):,.2f})"


def bench_size(
    label: str, size: tuple[Path, int, int], args: argparse.Namespace, greenops: Path,
    floor: bool,
) -> str:  # fmt: skip
    """Run one size --repeat times (greenops, then the floor); return its table row."""
    config, lines, size_bytes = size
    load_before = os.getloadavg()[0]
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    for i in range(1, args.repeat + 1):
        root = (args.keep or args.work).resolve()
        out = root / (f"{label}-{lines}-run{i}" if args.keep else "out")
        command = greenops_command(greenops, config, out / "greenops", run_options(args))
        ours.append(measure(command, out / "greenops"))
        if floor:
            theirs.append(measure(floor_command(config, out / "floor"), out / "floor"))
        note = (
            f" (floor {theirs[-1]['wall']:.1f} s, {theirs[-1]['cpu']:.1f} s CPU)" if floor else ""
        )
        print(
            f"{label} {lines:,} lines, run {i}/{args.repeat}: {ours[-1]['wall']:.1f} s wall, "
            f"{ours[-1]['cpu']:.1f} s CPU, {ours[-1]['rss']:.0f} MiB peak RSS "
            f"({ours[-1]['tree_rss']:.0f} MiB with its child processes){note}",
            file=sys.stderr,
        )
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    load = f"{load_before:.1f}–{os.getloadavg()[0]:.1f}"
    cells = [f"{lines:,}", f"{size_bytes / 1024**2:,.1f}", str(args.repeat)]
    cells += [median_cell(ours, key) for key in ("wall", "cpu", "rss", "tree_rss")]
    if floor:
        cells += [median_cell(theirs, key) for key in ("wall", "cpu", "rss")]
        for key in ("wall", "cpu"):
            ratio = statistics.median(r[key] for r in ours) / statistics.median(
                r[key] for r in theirs
            )
            cells.append(f"{ratio:,.1f}×")
    else:
        cells.append(f"{lines / statistics.median(r['wall'] for r in ours):,.0f}")
    return "| " + " | ".join([*cells, load]) + " |"


def code_under_test() -> str:
    """Where the child imports `reporting` from (PYTHONPATH can point at a snapshot), and its rev."""

    def output(*command: str) -> str:
        return subprocess.run(command, check=False, capture_output=True, text=True).stdout.strip()

    where = output(sys.executable, "-P", "-c", "import reporting; print(reporting.__path__[0])")
    describe = ("git", "-C", where, "describe", "--always", "--dirty")
    rev = output(*describe) if shutil.which("git") else ""
    return f"{where} ({rev or 'no git revision'})"


def machine() -> list[str]:
    def first(path: str, key: str) -> str:
        try:
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "unknown"

    mem_kib = first("/proc/meminfo", "MemTotal").split()[0]
    mem = f"{int(mem_kib) / 1024**2:.1f} GiB" if mem_kib.isdigit() else "unknown"
    return [
        f"- CPU: {first('/proc/cpuinfo', 'model name')}",
        f"- nproc: {os.cpu_count()} (usable by this process: {len(os.sched_getaffinity(0))})",
        f"- memory: {mem}",
        f"- Python: {platform.python_version()} ({sys.executable})",
        f"- OS: {platform.platform()}",
        f"- code: {code_under_test()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[], help="sacct dump sizes")
    parser.add_argument("--focus-rows", type=int, nargs="+", default=[], help="FOCUS sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median reported)")
    parser.add_argument("--no-floor", action="store_true", help="sacct: skip the DuckDB floor")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    work = Path(tempfile.gettempdir()) / "greenops-bench"
    parser.add_argument("--work", type=Path, default=work, help="cache of inputs and configs")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep run outputs under DIR")
    parser.add_argument("--date-label", default="not given", help="measurement date to print")
    parser.add_argument(
        "--engine",
        choices=["local", "dask"],
        default="local",
        help="greenops run --engine (dask: a local cluster of 2 processes)",
    )
    parser.add_argument("--period", help="greenops run --period (default: the quarter to date)")
    args = parser.parse_args()
    sizes = [*args.lines, *args.focus_rows]
    if args.repeat < 1 or not sizes or any(n < 1 for n in sizes):
        parser.error("give --lines and/or --focus-rows; sizes and --repeat must be positive")
    greenops = greenops_executable()
    floor = bool(args.lines) and not args.no_floor
    if floor:
        check_floor_runs()

    work = args.work.resolve()
    sacct_rows = [
        bench_size("sacct", prepare(n, work, args.seed), args, greenops, floor) for n in args.lines
    ]
    focus_rows = [
        bench_size("focus", prepare_focus(n, work, args.seed), args, greenops, False)
        for n in args.focus_rows
    ]

    print(f"Date: {args.date_label}\n")
    print("Machine:\n")
    print("\n".join(machine()))
    period = f"period {START}..{END}, seed {args.seed}"
    if sacct_rows:
        floor_note = " and benchmarks/floor.py" if floor else ""
        print(f"\n`greenops run --date {RUN_DATE}`{floor_note} on atlas sacct dumps ({period}):\n")
        header = SACCT_HEADER if floor else SACCT_HEADER_NO_FLOOR
        print(header)
        print("\n".join(sacct_rows))
    if focus_rows:
        print(f"\n`greenops run --date {RUN_DATE}` on FOCUS 1.2 exports ({period}):\n")
        print(FOCUS_HEADER)
        print("\n".join(focus_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
