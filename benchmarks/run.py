"""Benchmark `greenops run` on generated atlas sacct dumps of a given size.

    .venv/bin/python benchmarks/run.py --lines 100000 1000000 --repeat 3 \\
        [--work /tmp/greenops-bench] [--keep DIR] [--date-label 2026-07-14]

For each size an atlas dump of about that many lines is generated once and cached under
<work>/<lines>/ (generation is not measured), next to a config holding the atlas sections of
sample_logs/greenops.toml and one [[inputs]] for the dump. `greenops run` (the one installed next
to this Python) then runs --repeat times as a child process with a fresh output folder, so the
ledger is written from scratch. Wall time, user+sys CPU time and peak RSS of the child come from
os.wait4(); the medians go into a Markdown table on stdout. Standard library only.
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
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE_CONFIG = HERE.parent / "sample_logs" / "greenops.toml"
SITE = "atlas"
RUN_DATE = "2026-09-30"  # the last day of the generated quarter: the report covers all of Q3
START, END = "2026-07-01", "2026-10-01"
LINES_PER_JOB = 2.95  # measured on large atlas dumps (3.1 in the small sample)
TABLE_HEADER = (
    "| lines | MiB | runs | wall s, median (min–max) | CPU s (user+sys) | peak RSS MiB "
    "| lines/s (wall) |\n|---:|---:|---:|---:|---:|---:|---:|"
)
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


def atlas_config_text(input_glob: str) -> str:
    """sample_logs/greenops.toml without the other sites and inputs, plus one atlas input.

    The sample is cut into top-level blocks at unindented `[` lines; sub-tables such as
    `[[sites.partitions]]` are indented there, so they stay with their site.
    """
    blocks: list[list[str]] = [[]]
    for line in SAMPLE_CONFIG.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            blocks.append([])
        blocks[-1].append(line)

    def keep(block: list[str]) -> bool:
        header = block[0].strip() if block else ""
        if header == "[[sites]]":
            return tomllib.loads("\n".join(block))["sites"][0]["name"] == SITE
        return header != "[[inputs]]"  # preamble comments, [organisation], [[owners]], ...

    kept = ["\n".join(block) for block in blocks if keep(block)]
    kept.append(
        f'[[inputs]]\nkind = "slurm"\npath = "{input_glob}"\nsite = "{SITE}"\n'
        "max_quarantined_ratio = 1.0\n"
    )
    text = "# Written by benchmarks/run.py: the atlas sections of sample_logs/greenops.toml.\n"
    text += "\n".join(kept)
    parsed = tomllib.loads(text)  # fail here, not inside the measurement, if the cut went wrong
    assert [s["name"] for s in parsed["sites"]] == [SITE] and len(parsed["inputs"]) == 1
    return text


def prepare(lines: int, work: Path, seed: int) -> tuple[Path, int, int]:
    """Generate (once) the dump and config for `lines`; return (config, data lines, bytes)."""
    folder = work / str(lines)
    data = folder / "data"
    if not (folder / DONE_MARKER).exists():
        shutil.rmtree(folder, ignore_errors=True)
        jobs = max(1, round(lines / LINES_PER_JOB))
        print(f"generating ~{lines:,} lines ({jobs:,} jobs) in {data} ...", file=sys.stderr)
        options = f"--cluster {SITE} --jobs {jobs} --seed {seed} --start {START} --end {END}"
        generate = [sys.executable, str(HERE / "generate.py"), "sacct", *options.split()]
        subprocess.run([*generate, "--split", "none", "--out", str(data)], check=True)
        (folder / DONE_MARKER).write_text(f"jobs={jobs} seed={seed}\n")
    config = folder / "greenops.toml"
    # The sample's [notify] names its owners directory next to the config.
    shutil.copy(SAMPLE_CONFIG.parent / "owners.csv", folder / "owners.csv")
    config.write_text(atlas_config_text("data/*.psv"), encoding="utf-8")
    dumps = sorted(data.glob("*.psv"))
    total = 0
    for dump in dumps:
        with dump.open("rb") as handle:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return config, total, sum(d.stat().st_size for d in dumps)


def measure(greenops: Path, config: Path, out: Path) -> dict[str, float]:
    """Run `greenops run` once into a fresh `out`; wall s, CPU s and peak RSS MiB of the child."""
    shutil.rmtree(out, ignore_errors=True)
    options = ["--date", RUN_DATE, "--out", str(out), "--quiet"]
    command = [str(greenops), "run", "--config", str(config), *options]
    with tempfile.TemporaryFile() as stderr:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        if child.returncode != 0:
            stderr.seek(0)
            sys.exit(
                f"error: `{' '.join(command)}` exited with {child.returncode}:\n"
                + stderr.read().decode(errors="replace")[-4000:]
            )
    cpu, rss_mib = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # KiB on Linux
    return {"wall": wall, "cpu": cpu, "rss": rss_mib}


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
    parser.add_argument("--lines", type=int, nargs="+", required=True, help="dump sizes (lines)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median reported)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed")
    work = Path(tempfile.gettempdir()) / "greenops-bench"
    parser.add_argument("--work", type=Path, default=work, help="cache of dumps and configs")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep run outputs under DIR")
    parser.add_argument("--date-label", default="not given", help="measurement date to print")
    args = parser.parse_args()
    if args.repeat < 1 or any(n < 1 for n in args.lines):
        parser.error("--lines and --repeat must be positive")
    greenops = greenops_executable()

    rows = []
    for lines in args.lines:
        config, actual, size = prepare(lines, args.work.resolve(), args.seed)
        runs = []
        for i in range(1, args.repeat + 1):
            out = (args.keep or args.work).resolve() / (f"{lines}-run{i}" if args.keep else "out")
            result = measure(greenops, config, out)
            runs.append(result)
            print(
                f"{actual:,} lines, run {i}/{args.repeat}: {result['wall']:.1f} s wall, "
                f"{result['cpu']:.1f} s CPU, {result['rss']:.0f} MiB peak RSS",
                file=sys.stderr,
            )
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        wall, cpu, rss = (statistics.median(r[k] for r in runs) for k in ("wall", "cpu", "rss"))
        walls = [r["wall"] for r in runs]
        rows.append(
            f"| {actual:,} | {size / 1024**2:,.1f} | {args.repeat} | {wall:,.2f} "
            f"({min(walls):,.2f}–{max(walls):,.2f}) | {cpu:,.2f} | {rss:,.0f} | "
            f"{actual / wall:,.0f} |"
        )

    print(f"Date: {args.date_label}\n")
    print("Machine:\n")
    print("\n".join(machine()))
    print(f"\n`greenops run --date {RUN_DATE}` (period {START}..{END}, atlas, seed {args.seed}):\n")
    print(TABLE_HEADER)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
