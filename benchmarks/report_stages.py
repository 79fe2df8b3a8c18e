"""Where `greenops report` spends its time: the report run in this process, with wall time,
CPU time and RSS printed as each of its stages ends.

    .venv/bin/python benchmarks/report_stages.py /tmp/greenops-report-bench/1000000-90-7/greenops.toml OUT

Meant for the ledgers report_bench.py builds (it deletes the ledger's publication log first, as
report_bench does). The stages are the functions pipeline.report calls, wrapped by name; a
name the code under test lacks is skipped, so older commits (on PYTHONPATH) can be measured too.
"""

from __future__ import annotations

import functools
import importlib
import resource
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

from reporting import cli, notify, outputs, pipeline, quarterly
from reporting import ledger as store
from reporting import report as rendering

try:  # the period's ledger read as a rollup (not in older commits)
    rollup = importlib.import_module("reporting.rollup")
except ImportError:
    rollup = None

STAGES = [
    (store, "read_ledger"), (pipeline, "audit_ledger"), (pipeline, "audit_period"), (rollup, "read"),
    (pipeline, "cloud_block"),
    (pipeline, "build_summary"), (notify, "unresolved_owners"), (pipeline, "build_context"),
    (quarterly, "complete"), (outputs, "_write_csv"), (rendering, "render_html"),
    (rendering, "write_pdf"), (outputs, "write_all"),
]  # fmt: skip


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(module: ModuleType, name: str) -> None:
    function = getattr(module, name, None) if module is not None else None
    if function is None:
        return

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            print(
                f"{module.__name__}.{name}: {time.perf_counter() - wall:.2f} s wall "
                f"{time.process_time() - cpu:.2f} s CPU, RSS {rss_mib():,.0f} MiB "
                f"(peak {peak_mib():,.0f})",
                file=sys.stderr,
            )

    setattr(module, name, wrapper)


def main() -> int:
    config, out = sys.argv[1], sys.argv[2]
    for module, name in STAGES:
        timed(module, name)
    shutil.rmtree(Path(config).parent / "ledger" / "_published", ignore_errors=True)
    wall, cpu = time.perf_counter(), time.process_time()
    command = ["report", "--config", config, "--period", "2026-Q3", "--out", out, "--quiet"]
    cli.app(command, standalone_mode=False)
    print(
        f"total {time.perf_counter() - wall:.1f} s wall {time.process_time() - cpu:.1f} s CPU, "
        f"peak {peak_mib():,.0f} MiB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
