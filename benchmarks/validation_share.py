"""Validation's share of one `greenops run` on a generated atlas dump (the dumps of run.py).

    .venv/bin/python benchmarks/validation_share.py --lines 100000 [--work /tmp/greenops-bench]

Runs the CLI's `run` in this process, with timers wrapped around the validation pieces the
pipeline calls (wall and CPU seconds; on a shared machine CPU time is the steadier of the two): importing Great Expectations, building the context and suites (`Validator`),
the row suites and run-level checks on the intake (`validate_intake`), the ledger suite
(`validate_ledger`) and Data Docs (`write_data_docs`). Prints each piece, their sum and the
run's wall time. Single run, single process: peak memory is run.py's business.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import RUN_DATE, prepare  # the sibling script, not a package

TIMES: dict[str, tuple[float, float]] = {}  # piece → (wall s, CPU s)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _add(name: str, began: tuple[float, float]) -> None:
    wall, cpu = TIMES.get(name, (0.0, 0.0))
    now = _now()
    TIMES[name] = (wall + now[0] - began[0], cpu + now[1] - began[1])


_RUNNING: list[
    str
] = []  # the timed piece running now: a piece called inside another is not added twice


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _RUNNING:  # e.g. validate_rows inside validate_intake: counted by the outer piece
            return function(*args, **kwargs)
        began = _now()
        _RUNNING.append(name)
        try:
            return function(*args, **kwargs)
        finally:
            _RUNNING.pop()
            _add(name, began)

    return wrapper


def _sum() -> tuple[float, float]:
    return sum(w for w, _ in TIMES.values()), sum(c for _, c in TIMES.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    work = Path(tempfile.gettempdir()) / "greenops-bench"
    parser.add_argument("--work", type=Path, default=work)
    parser.add_argument("--config", type=Path, help="run this config instead of a generated dump's")
    parser.add_argument("--period", help="report this period (default: the quarter to date)")
    args = parser.parse_args()
    if args.config is not None:  # a dump made elsewhere (e.g. scale_dump.py's 10M lines)
        config, lines = args.config.resolve(), args.lines
    else:
        config, lines, _ = prepare(args.lines, args.work.resolve(), args.seed)
    out = args.work.resolve() / "out-share"
    shutil.rmtree(out, ignore_errors=True)

    began = _now()
    from reporting import cli  # pandas, pyarrow, ...: what every run imports anyway

    importing = _now()
    import great_expectations  # noqa: F401  (only validation needs it)

    _add("import great_expectations", importing)
    from reporting.validation import docs, stage

    stage.Validator = timed("context and suites (Validator)", stage.Validator)
    stage.validate_intake = timed("usage/charges suites, run checks (validate_intake)", stage.validate_intake)  # fmt: skip
    stage.validate_ledger = timed("ledger suite (validate_ledger)", stage.validate_ledger)
    # streamed slices (reporting/engine.py) run their row suites through validate_rows
    stage.validate_rows = timed("row suites of streamed slices (validate_rows)", stage.validate_rows)  # fmt: skip
    docs.write_data_docs = timed("Data Docs (write_data_docs)", docs.write_data_docs)
    command = ["run", "--config", str(config), "--date", RUN_DATE, "--out", str(out), "--quiet"]
    if args.period:
        command += ["--period", args.period]
    cli.app(command, standalone_mode=False)
    wall, cpu = (end - start for end, start in zip(_now(), began, strict=True))
    print(f"{lines:,} lines, one in-process `greenops run`: {wall:.1f} s wall, {cpu:.1f} s CPU")
    for name, (piece_wall, piece_cpu) in [*TIMES.items(), ("validation in all", _sum())]:
        print(f"  {name}: {piece_wall:.2f} s wall ({piece_wall / wall:.1%}), "
              f"{piece_cpu:.2f} s CPU ({piece_cpu / cpu:.1%})")  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
