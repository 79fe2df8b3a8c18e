"""Make a large sacct dump from a generated one: its jobs repeated `--times` times, each copy's
job IDs moved up by a multiple of `--stride`, so every copy is a distinct set of jobs over the
same quarter (the load per day is multiplied, the mix of jobs and states is kept).

    .venv/bin/python benchmarks/scale_dump.py SOURCE.psv OUT.psv --times 10

Generating 10M lines with generate.py takes an hour on 2 cores; this takes a minute. Lines are
copied as bytes with only the leading JobID changed (the dump must have JobID first, as
generate.py writes it). Standard library only; memory is one line at a time.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

JOB_ID = re.compile(rb"^(\d+)")


def scale(source: Path, target: Path, times: int, stride: int) -> int:
    """Write the copies; return the data lines written."""
    written = 0
    with target.open("wb") as out:
        for copy in range(times):
            with source.open("rb") as dump:
                header = dump.readline()
                if copy == 0:
                    out.write(header)
                for line in dump:
                    out.write(_shifted(line, copy * stride))
                    written += 1
    return written


def _shifted(line: bytes, shift: int) -> bytes:
    """The line with its leading job ID moved up by `shift`."""
    if not shift:
        return line
    return JOB_ID.sub(lambda m: str(int(m.group(1)) + shift).encode(), line, count=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--times", type=int, required=True)
    parser.add_argument("--stride", type=int, default=100_000_000, help="job-ID offset per copy")
    args = parser.parse_args()
    args.target.parent.mkdir(parents=True, exist_ok=True)
    lines = scale(args.source, args.target, args.times, args.stride)
    print(f"wrote {lines:,} data lines to {args.target}")


if __name__ == "__main__":
    main()
