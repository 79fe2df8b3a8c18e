"""Corrupted copies of the real samples through `greenops run`: every row read is accepted or
quarantined, each damaged line is quarantined under its file and line, and the run exits 0 or 3
as each input's max_quarantined_ratio says. Then random damage under hypothesis.

One corrupted copy carries all the line-level damage of its format (at different lines); the
file-level cases (empty, header only, another format) are files of their own. Each Slurm file
is an input of its own site, so that copies of the same jobs do not supersede each other."""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reporting.cli import app
from reporting.config import load_config
from reporting.intake import ingest
from reporting.validation.stage import Validator, validate_intake
from tests.conftest import FIXTURES, HB_FIELDS

SLURM = FIXTURES / "slurm"
BILLING = FIXTURES / "billing"
PSV = SLURM / "hb-jobinfo_sacct.DERIVED_parsable2_with_header.psv"
SNOWMAN = SLURM / "hb-jobinfo_sacct.txt"  # header-less, fields separated by ☃
FOCUS = BILLING / "focus-sample-data_1.0_focus_sample.csv"
CUR = BILLING / "focus_converters_sample-anonymous-aws-cur-legacy.csv"
GCP = BILLING / "koku_gcp_202011_standard_export_with_credits.csv"
AZURE = BILLING / "focus_converters_sample-anonymous-ea-export-dataset.csv"
RUN = ("--date", "2024-04-30", "--period", "2023-01-01..2024-12-31")

# damage → the checks it may be quarantined under (the reader's, or validation's). sacct's
# --parsable trailing delimiter is optional, so one field more or less can also shift the
# fields and fail their parsing instead of the count.
CHECKS = {
    "truncated": {"field_count", "encoding", "unparseable"},
    "extra_delimiter": {"field_count", "unparseable"},
    "missing_delimiter": {"field_count", "unparseable"},
    "invalid_utf8": {"encoding"},
    "start_after_end": {
        "end_before_start",
        "time_order",
        "expect_column_pair_values_a_to_be_greater_than_b:charge_period_end",
    },
    "duplicate": {
        "duplicate",
        "expect_compound_columns_to_be_unique:line_item_id+charge_period_start",
    },
    "negative_duration": {"negative_duration", "unparseable"},
    "unknown_unit": {"unparseable"},
}


# ---- damage, line by line (1-based physical line numbers) ----------------------------------


def _damage_slurm(text: str, sep: str, header: list[str]) -> tuple[str, dict[int, str]]:
    """Every line-level damage on its own finished job line; returns the text and line → damage."""
    lines = text.splitlines()
    first = 1 if lines[0].startswith("JobID") else 0
    col = {name.lower(): i for i, name in enumerate(header)}
    jobs = [i for i, line in enumerate(lines[first:], first)
            if "." not in line.split(sep)[0] and line.split(sep)[col["state"]] == "COMPLETED"]  # fmt: skip
    damaged: dict[int, str] = {}

    def set_field(i: int, name: str, value: str, damage: str) -> None:
        fields = lines[i].split(sep)
        fields[col[name]] = value
        lines[i], damaged[i + 1] = sep.join(fields), damage

    lines[jobs[0]], damaged[jobs[0] + 1] = lines[jobs[0]][: len(lines[jobs[0]]) // 2], "truncated"
    fields = lines[jobs[1]].split(sep)
    lines[jobs[1]], damaged[jobs[1] + 1] = sep.join(fields[:3] + ["x", *fields[3:]]), "extra_delimiter"  # fmt: skip
    fields = lines[jobs[2]].split(sep)
    lines[jobs[2]], damaged[jobs[2] + 1] = sep.join(fields[:2] + fields[3:]), "missing_delimiter"
    lines[jobs[3]], damaged[jobs[3] + 1] = "\udcff\udcfe" + lines[jobs[3]], "invalid_utf8"
    start, end = (lines[jobs[4]].split(sep)[col[k]] for k in ("start", "end"))
    set_field(jobs[4], "start", end, "start_after_end")
    set_field(jobs[4], "end", start, "start_after_end")
    set_field(jobs[5], "elapsed", "-01:00:00", "negative_duration")
    set_field(jobs[6], "reqmem", "500Q", "unknown_unit")
    # The same job id and submit time once more, at the end: the reader keeps the later record
    # of a run (the most final, latest one), so the first copy is the one quarantined.
    lines.append(lines[jobs[7]])
    damaged[jobs[7] + 1] = "duplicate"
    return "\n".join(lines) + "\n", damaged


def _damage_csv(text: str, start: str, end: str) -> tuple[str, dict[int, str]]:
    """Line-level damage on a billing CSV whose rows are one line each."""
    lines = text.splitlines()
    header = next(csv.reader([lines[0]]))
    damaged: dict[int, str] = {}
    lines[1], damaged[2] = lines[1][: len(lines[1]) // 2], "truncated"
    lines[2], damaged[3] = lines[2].replace(",", ",,", 1), "extra_delimiter"
    lines[3], damaged[4] = lines[3].replace(",", "", 1), "missing_delimiter"
    lines[4], damaged[5] = lines[4][:3] + "\udcff" + lines[4][3:], "invalid_utf8"
    if start != end:
        row = next(csv.reader([lines[5]]))
        row[header.index(start)], row[header.index(end)] = row[header.index(end)], row[header.index(start)]  # fmt: skip
        lines[5], damaged[6] = _csv_line(row), "start_after_end"
    return "\n".join(lines) + "\n", damaged


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def _write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


# ---- the Slurm run -----------------------------------------------------------------------

SITE = """
[[sites]]
name = "{name}"
grid_zone = "NL"
timezone = "Europe/Amsterdam"
gpu_types = {{ a100 = "A100-PCIE-40GB", v100 = "V100-PCIE-32GB" }}

[[inputs]]
kind = "slurm"
path = "{path}"
site = "{name}"
max_quarantined_ratio = {ratio}
{extra}
"""
SNOWMAN_FIELDS = f'delimiter = "☃"\nfields = [{", ".join(repr(f) for f in HB_FIELDS)}]'


def _slurm_inputs(folder: Path, other_format_ratio: float) -> tuple[Path, dict[str, dict[int, str]]]:  # fmt: skip
    psv_text, psv_damage = _damage_slurm(PSV.read_text(), "|", PSV.read_text().split("\n")[0].split("|"))  # fmt: skip
    snow_text, snow_damage = _damage_slurm(SNOWMAN.read_text(), "☃", HB_FIELDS)
    _write(folder / "damaged.psv", psv_text)
    _write(folder / "damaged.txt", snow_text)
    (folder / "empty.psv").write_text("")
    (folder / "header-only.psv").write_text(PSV.read_text().split("\n")[0] + "\n")
    shutil.copy(FOCUS, folder / "other-format.psv")
    cases = [("damaged.psv", 0.3, ""), ("damaged.txt", 0.3, SNOWMAN_FIELDS),
             ("empty.psv", 0.05, ""), ("header-only.psv", 0.05, ""),
             ("other-format.psv", other_format_ratio, "")]  # fmt: skip
    text = '[organisation]\nname = "bad inputs"\n' + "".join(
        SITE.format(name=f"s{i}", path=path, ratio=ratio, extra=extra)
        for i, (path, ratio, extra) in enumerate(cases)
    )
    config = folder / "greenops.toml"
    config.write_text(text, encoding="utf-8")
    return config, {"damaged.psv": psv_damage, "damaged.txt": snow_damage}


def _run(config: Path) -> tuple[int, str, dict, pd.DataFrame]:
    out = config.parent / "out"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(out), *RUN])
    summary = json.loads((out / "summary.json").read_text())
    return result.exit_code, result.output, summary, pd.read_csv(out / "quarantine.csv")


def _assert_accounted(summary: dict, quarantine: pd.DataFrame, damage: dict[str, dict[int, str]]) -> None:  # fmt: skip
    for stats in summary["inputs"]:
        assert stats["rows_read"] == stats["rows_accepted"] + stats["rows_quarantined"], stats
        assert (quarantine["source_file"] == stats["source_file"]).sum() == stats["rows_quarantined"]  # fmt: skip
    for name, lines in damage.items():
        mine = quarantine[quarantine["source_file"] == name].groupby("line")["check"].first()
        for line, kind in lines.items():
            assert mine.get(line) in CHECKS[kind], (name, line, kind, mine.get(line))


def test_damaged_slurm_dumps_through_run(tmp_path: Path) -> None:
    config, damage = _slurm_inputs(tmp_path, other_format_ratio=0.5)
    code, output, summary, quarantine = _run(config)
    stats = {i["source_file"]: i for i in summary["inputs"]}
    assert code == 3  # only the file of another format is over its limit
    gate = [line for line in output.splitlines() if "rows quarantined (limit" in line]
    assert (
        len(gate) == 1 and "other-format.psv: 1001 of 1001 rows quarantined (limit 50%)" in gate[0]
    )
    assert stats["other-format.psv"]["rows_quarantined"] == 1001  # its header is a row here
    assert set(quarantine.loc[quarantine["source_file"] == "other-format.psv", "check"]) == {"no_header"}  # fmt: skip
    for name in ("empty.psv", "header-only.psv"):
        assert (stats[name]["rows_read"], stats[name]["rows_quarantined"]) == (0, 0)
    for name in ("damaged.psv", "damaged.txt"):
        assert stats[name]["rows_read"] == 243  # 242 lines and the repeated job
        assert 0 < stats[name]["rows_quarantined"] / stats[name]["rows_read"] <= 0.3
    _assert_accounted(summary, quarantine, damage)
    first = quarantine[quarantine["source_file"] == "damaged.psv"].iloc[0]
    assert first["reason"] and first["line"] >= 2  # named by file and line, with a reason
    runs = summary["validation"]["quarantined_carried"]["runs"]
    assert runs["copies"] >= 2  # the repeated job (with its steps) in each dump


def test_the_same_damage_exits_0_when_the_limit_allows_it(tmp_path: Path) -> None:
    config, damage = _slurm_inputs(tmp_path, other_format_ratio=1.0)
    code, output, summary, quarantine = _run(config)
    assert code == 0, output
    _assert_accounted(summary, quarantine, damage)


def test_damaged_billing_exports_through_run(tmp_path: Path) -> None:
    damage = {}
    for name, sample, start, end in (
        ("focus.csv", FOCUS, "ChargePeriodStart", "ChargePeriodEnd"),
        ("cur.csv", CUR, "lineItem/UsageStartDate", "lineItem/UsageEndDate"),
        ("gcp.csv", GCP, "usage_start_time", "usage_end_time"),
        ("azure.csv", AZURE, "Date", "Date"),  # one date per line: nothing to swap
    ):
        text, damage[name] = _damage_csv(sample.read_text(encoding="utf-8-sig"), start, end)
        if name == "cur.csv":  # a line item of the same hour once more, with another cost
            header, row = csv.reader(CUR.read_text().splitlines()[:11:10])
            row[header.index("lineItem/UnblendedCost")] = "9.5"
            text += _csv_line(row) + "\n"
            damage[name][len(text.splitlines())] = "duplicate"
        _write(tmp_path / name, text)
    (tmp_path / "focus-empty.csv").write_text("")
    (tmp_path / "focus-header-only.csv").write_text(FOCUS.read_text().split("\n")[0] + "\n")
    shutil.copy(PSV, tmp_path / "focus-other-format.csv")
    inputs = [("focus", "focus.csv"), ("aws_cur", "cur.csv"), ("gcp_billing", "gcp.csv"),
              ("azure_cost", "azure.csv"), ("focus", "focus-empty.csv"),
              ("focus", "focus-header-only.csv"), ("focus", "focus-other-format.csv")]  # fmt: skip
    config = tmp_path / "greenops.toml"
    config.write_text('[organisation]\nname = "t"\n' + "".join(
        f'\n[[inputs]]\nkind = "{kind}"\npath = "{path}"\nmax_quarantined_ratio = 0.5\n'
        for kind, path in inputs
    ))  # fmt: skip
    code, output, summary, quarantine = _run(config)
    stats = {i["source_file"]: i for i in summary["inputs"]}
    assert code == 3, output  # the file of another format; the damaged ones stay under 50 %
    assert "focus-other-format.csv: 242 of 242 rows quarantined (limit 50%)" in output
    _assert_accounted(summary, quarantine, damage)
    for name in ("focus-empty.csv", "focus-header-only.csv"):
        assert stats[name]["rows_read"] == stats[name]["rows_quarantined"] == 0
    assert stats["focus.csv"]["rows_read"] == 1000 and stats["cur.csv"]["rows_read"] == 1282
    billing = summary["validation"]["quarantined_carried"]["billing"]
    assert billing["copies"] == 1 and billing["estimated"] >= 1 and billing["cost"]


# ---- random damage -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _mutate(line: bytes, kind: int, position: float, noise: bytes) -> bytes:
    at = int(position * len(line))
    return [
        line[:at],  # truncated
        line[:at] + noise + line[at:],  # bytes (delimiters, quotes, bad UTF-8) added
        line[:at] + line[at + 1 :],  # one byte removed
        line + b"\n" + line,  # the line twice
    ][kind]


DAMAGE = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=241),
        st.integers(min_value=0, max_value=3),
        st.floats(min_value=0, max_value=1),
        st.binary(min_size=1, max_size=4)
        | st.sampled_from([b"|", b"\xe2\x98", b'"', b",", b"\xff"]),
    ),
    min_size=1,
    max_size=6,
)


CASES = itertools.count()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(damage=DAMAGE, billing=st.booleans())
# Found by this test: a \r put inside a quoted field once ended a line for the CSV reader, and
# every later line was numbered one too high.
@example(damage=[(133, 1, 0.7150657028384649, b"\r"), (71, 0, 0.33673980891592287, b"\x7f\xda3")], billing=True)  # fmt: skip
# A line cut inside a quoted field: the next line continues that field (the test expected a row).
@example(damage=[(0, 0, 0.0, b"\x00"), (1, 0, 0.3125, b"\x00"), (1, 0, 0.3125, b"\x00"), (1, 0, 0.3125, b"\x00")], billing=True)  # fmt: skip
def test_random_damage_never_loses_a_row_nor_raises(
    tmp_path: Path, validator: Validator, damage: list, billing: bool
) -> None:
    """Slurm dumps are read line by line: every non-blank line is a row. CSV rows may span
    lines, so there: every line the damage did not touch is still a row of its own (accepted
    or quarantined, under its own number), and nothing is counted twice."""
    sample = FOCUS if billing else SNOWMAN
    lines = sample.read_bytes().split(b"\n")
    touched = set()
    for index, kind, position, noise in sorted(damage, reverse=True):
        target = 1 + index if billing else index  # the FOCUS header stays
        mutated = _mutate(lines[target], kind, position, noise).split(b"\n")
        lines[target : target + 1] = mutated
        touched = {t + len(mutated) - 1 if t > target else t for t in touched} | set(range(target, target + len(mutated)))  # fmt: skip
    folder = tmp_path / f"case-{next(CASES)}"
    folder.mkdir()
    (folder / "dump").write_bytes(b"\n".join(lines))
    kind = 'kind = "focus"' if billing else f'kind = "slurm"\nsite = "s"\n{SNOWMAN_FIELDS}'
    (folder / "greenops.toml").write_text(
        '[organisation]\nname = "t"\n\n[[sites]]\nname = "s"\ngrid_zone = "NL"\n'
        'timezone = "Europe/Amsterdam"\ngpu_types = { a100 = "A100-PCIE-40GB", v100 = "V100-PCIE-32GB" }\n'
        f'\n[[inputs]]\n{kind}\npath = "dump"\nmax_quarantined_ratio = 1.0\n', encoding="utf-8"
    )  # fmt: skip
    config = load_config(folder / "greenops.toml")
    intake, _ = validate_intake(ingest(config), config, date(2024, 4, 30), validator)
    (stats,) = intake.files.values()
    assert stats["rows_read"] == stats["rows_accepted"] + stats["rows_quarantined"]
    if not billing:
        assert stats["rows_read"] == sum(1 for line in lines if line.strip())
        return
    rows = [*intake.charges["line"], *intake.quarantine["line"]]
    assert len(rows) == len(set(rows)) == stats["rows_read"]
    # A line that starts inside a quoted field (a damaged line left a quote open) continues
    # that field, as RFC 4180 says: it is not a row of its own.
    touched |= _inside_quotes(lines)
    untouched = {n + 1 for n, line in enumerate(lines) if n and n not in touched and line.strip()}
    assert untouched <= set(rows)


def _inside_quotes(lines: list[bytes]) -> set[int]:
    """Indices of the lines that begin inside a quoted field (an odd count of quotes before)."""
    inside, open_quote = set(), False
    for number, line in enumerate(lines):
        if open_quote:
            inside.add(number)
        open_quote ^= line.count(b'"') % 2 == 1
    return inside
