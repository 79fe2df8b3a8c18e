"""The audit and what follows from its findings, in this process: audit_period, the report's
findings figures (per rule, top 25, owners without an address), findings.csv, the first-seen
dates and a notify dry-run (the owners' digests written to <OUT>/outbox), with CPU time and RSS
printed after each.

    .venv/bin/python benchmarks/audit_bench.py /tmp/copy-of/1000000-90-7 OUT [notify]

The folder is one report_bench.py built (greenops.toml, owners.csv, ledger/); use a copy: the
first-seen dates and notification state are written into its ledger (and removed first).
"""

from __future__ import annotations

import resource
import sys
import time
from datetime import date
from pathlib import Path

from reporting import ledger as store
from reporting import notify, outputs, summary
from reporting.audit_scan import audit_period
from reporting.config import load_config

RUN_DATE = date(2026, 9, 30)


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return int(next(s for s in status if s.startswith("VmRSS")).split()[1]) / 1024


def lap(name: str, cpu: float) -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name}: {time.process_time() - cpu:.2f} s CPU, RSS {rss_mib():,.0f} MiB "
          f"(peak {peak:,.0f})", file=sys.stderr, flush=True)  # fmt: skip
    return time.process_time()


def main() -> int:
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    config, root = load_config(folder / "greenops.toml"), folder / "ledger"
    for name in (store.FIRST_SEEN_FILE, store.LEGACY_FIRST_SEEN_FILE, notify.STATE_FILE):
        (root / name).unlink(missing_ok=True)
    print(f"base RSS {rss_mib():,.0f} MiB", file=sys.stderr)
    start = cpu = time.process_time()
    first_seen = store.read_first_seen_table(root)
    findings = audit_period(root, date(2026, 7, 1), RUN_DATE, config.audit, first_seen, RUN_DATE)
    cpu = lap(f"audit_period ({len(findings):,} findings)", cpu)
    summary._findings(findings), summary.findings_table(findings)
    notify.unresolved_owners(findings, config.notify, None)
    cpu = lap("summary figures, top 25, owners", cpu)
    outputs._write_csv(out / "findings.csv", findings)
    cpu = lap("findings.csv", cpu)
    store.write_first_seen(root, findings)
    cpu = lap("first seen", cpu)
    if "notify" in sys.argv[3:]:
        result = notify.notify_findings(
            findings, config.notify, state_dir=root, out_dir=out, run_date=RUN_DATE,
            dry_run=True, password=None, organisation=config.organisation.name,
            directory=notify.load_directory(folder / "owners.csv"),
        )  # fmt: skip
        cpu = lap(f"notify ({len(result.outbox)} e-mails, {len(result.pending):,} pending)", cpu)
    lap("total", start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
