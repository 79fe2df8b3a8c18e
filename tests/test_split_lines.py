"""The column-at-once line splitter keeps and quarantines the lines a line-by-line reading would.

A reference reading (every non-blank line through lines._split_line, as the reader once did)
is compared with split_delimited on random dumps: CRs, blank and whitespace lines, bad UTF-8,
trailing delimiters, wrong field counts and fields over max_field_bytes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reporting.ingest.limits import Limits
from reporting.ingest.lines import Span, _data_lines, _split_line, read_header, split_delimited

HEADER = b"JobID|State|End\n"
PIECES = [b"1", b"22", b"|", b"\r", b"\n", b" ", b"\t", b"\x0b", b"\xff", b"\xc3\xa9", b"\xc3"]
PIECES += [b"COMPLETED", b"||", b"\n\n", b"\r\n", b"x" * 12, b"\xe2\x80\xa8", b"\x1c"]
BODIES = st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join)
LIMITS = Limits(max_field_bytes=10)


def _reference(data: bytes, span: Span | None) -> tuple[pd.DataFrame, list[tuple], int]:
    header, first = read_header(data.split(b"\n"), None, None, "JobID")
    if span is None:
        numbered = _data_lines(data.split(b"\n"), first)
    else:
        numbered = _data_lines(data[span.start : span.end].split(b"\n"), 0, span.first_line - 1)
    good, bad = [], []
    for number, raw in numbered:
        row, problem = _split_line(number, raw, "|", header, LIMITS)
        (bad.append(problem) if problem else good.append(row))
    records = pd.DataFrame(good, columns=[*header, "line", "raw"], dtype=object)
    return records, bad, len(numbered)


def _check(path: Path, data: bytes, span: Span | None) -> None:
    path.write_bytes(data)
    split = split_delimited(
        path, delimiter=None, fields=None, header_marker="JobID", source_name="d", limits=LIMITS,
        span=span,
    )  # fmt: skip
    records, bad, rows = _reference(data, span)
    assert split.rows_read == rows
    got = split.records.astype(object)
    pd.testing.assert_frame_equal(got, records, check_dtype=False, check_index_type=False)
    quarantined = split.quarantine[["line", "raw", "check", "reason"]]
    assert list(quarantined.itertuples(index=False, name=None)) == bad


@settings(max_examples=150, deadline=None)
@given(BODIES, st.integers(min_value=0, max_value=6))
@example(b"1|COMPLETED|x|\r\n2|FAILED||\n\n \t\n3|x\n4|\xff|\n5|a|b|c\n", 2)  # --parsable, CRLF
def test_split_matches_a_line_by_line_reading(tmp_path_factory, body: bytes, cut: int) -> None:
    path = tmp_path_factory.mktemp("dump") / "sacct.psv"
    data = HEADER + body
    _check(path, data, None)
    # A slice starting at a line start after the header, numbered as in the file.
    starts = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    start = starts[min(cut, len(starts) - 1)]
    first_line = data[:start].count(b"\n") + 1
    _check(path, data, Span(start, len(data), first_line))
