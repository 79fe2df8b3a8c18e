"""Resource limits: `max_field_bytes` and `max_rows` per input, and the fixed limits on gzip
inflation, header width and JSON depth. Extremes cost bounded memory and end as row or file
problems with a message naming the file, never as a crash."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from reporting.cli import app
from reporting.config import load_config
from reporting.errors import ConfigError
from reporting.ingest.billing.dispatch import read_billing
from reporting.ingest.billing.raw import read_raw
from reporting.ingest.dcgm import read_dcgm
from reporting.ingest.limits import MAX_COLUMNS, MAX_GZIP_RATIO, MIB, Limits
from reporting.ingest.opencost import read_opencost
from reporting.intake import ingest
from tests.conftest import focus_rows, hb_config

HB_DUMP = "hb-jobinfo_sacct.txt"
MEMORY_BOUND_BYTES = 64 * MIB  # what reading any one of the extremes below may allocate


def _peak_bytes(read: Callable[[], Any]) -> tuple[Any, int]:
    """The result of `read()` and the most memory Python allocated meanwhile."""
    tracemalloc.start()
    try:
        result = read()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _bomb(path: Path, inflated_mib: int, unit: bytes = b"\0") -> Path:
    """A gzip file of `inflated_mib` MiB of `unit`: 1 MiB members repeated (quick to build)."""
    member = gzip.compress(unit * (MIB // len(unit)), mtime=0)
    path.write_bytes(member * inflated_mib)
    return path


# --- config --------------------------------------------------------------------------------------


def test_limits_are_input_keys_with_defaults(tmp_path: Path) -> None:
    config = load_config(hb_config(tmp_path, extra="max_rows = 500\nmax_field_bytes = 4096"))
    assert (config.inputs[0].max_rows, config.inputs[0].max_field_bytes) == (500, 4096)
    (tmp_path / "plain").mkdir()
    default = load_config(hb_config(tmp_path / "plain"))
    assert (default.inputs[0].max_rows, default.inputs[0].max_field_bytes) == (None, MIB)


@pytest.mark.parametrize("extra", ["max_rows = 0", "max_field_bytes = -1", 'max_rows = "many"'])
def test_bad_limits_name_the_key(tmp_path: Path, extra: str) -> None:
    with pytest.raises(ConfigError, match=r"inputs\[0\]\.max_(rows|field_bytes)"):
        load_config(hb_config(tmp_path, extra=extra))


# --- max_field_bytes -----------------------------------------------------------------------------


def test_slurm_row_with_an_over_long_field_is_quarantined(tmp_path: Path) -> None:
    path = hb_config(tmp_path, extra="max_field_bytes = 1000")
    dump = tmp_path / HB_DUMP
    first = dump.read_text(encoding="utf-8").splitlines()[0].split("☃")
    first[1] = "n" * 5000  # JobName
    dump.write_text(dump.read_text(encoding="utf-8") + "☃".join(first) + "\n", encoding="utf-8")
    intake = ingest(load_config(path))
    (stats,) = intake.files.values()
    assert (stats["rows_read"], stats["rows_accepted"], stats["rows_quarantined"]) == (243, 242, 1)
    (row,) = intake.quarantine.to_dict("records")
    assert (row["check"], row["line"]) == ("field_too_long", 243)
    assert "field 2 (JobName) is 5,000 bytes, longer than max_field_bytes (1,000)" in row["reason"]
    assert len(row["raw"]) == 2001 and row["raw"].endswith("…")  # cut, not the whole line


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("x" * 800, "a field is longer than max_field_bytes (500)"),  # caught by csv itself
        (
            "é" * 400,
            "field 16 (ChargeDescription) is 800 bytes, longer than max_field_bytes (500)",
        ),  # bytes, not chars
    ],
)
def test_billing_row_with_an_over_long_field_is_quarantined(
    tmp_path: Path, value: str, reason: str
) -> None:
    path = tmp_path / "focus.csv"
    text = focus_rows([{"BilledCost": "1"}, {"BilledCost": "2", "ChargeDescription": value},
                       {"BilledCost": "3"}])  # fmt: skip
    path.write_text(text, encoding="utf-8")
    read = read_billing({"focus.csv": path}, "focus", limits=Limits(max_field_bytes=500))
    assert read.rows_read == {"focus.csv": 3}
    assert read.charges["billed_cost"].tolist() == [1.0, 3.0]
    (row,) = read.quarantine.to_dict("records")
    assert (row["check"], row["line"]) == ("field_too_long", 3)
    assert reason in row["reason"]


def test_json_and_parquet_fields_are_limited(tmp_path: Path) -> None:
    limits = Limits(max_field_bytes=100)
    lines = tmp_path / "lines.jsonl"
    lines.write_text(json.dumps({"a": "x"}) + "\n" + json.dumps({"a": "y" * 200}) + "\n")
    table = pa.table({"a": ["x", "y" * 200, "z"], "n": [1, 2, 3]})
    pq.write_table(table, tmp_path / "t.parquet")
    for name, rows in (("lines.jsonl", 2), ("t.parquet", 3)):
        raw = read_raw(tmp_path / name, name, limits)
        assert (raw.rows_read, len(raw.records)) == (rows, rows - 1)
        assert raw.quarantine[["line", "check"]].values.tolist() == [[2, "field_too_long"]]


def test_opencost_and_dcgm_fields_are_limited(tmp_path: Path) -> None:
    limits = Limits(max_field_bytes=100)
    window = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}
    pods = {f"ns/p{n}": {"properties": {"namespace": "ns", "pod": f"p{n}",
                                        "labels": {"team": "t" * (50 + 100 * n)}},
                         "window": window} for n in range(2)}  # fmt: skip
    (tmp_path / "alloc.json").write_text(json.dumps({"code": 200, "data": [pods]}))
    read = read_opencost({"alloc.json": tmp_path / "alloc.json"}, site="k", limits=limits)
    assert read.rows_read == {"alloc.json": 2} and len(read.usage) == 1
    assert read.quarantine["check"].tolist() == ["field_too_long"]
    scrape = tmp_path / "scrape.prom"
    labels = 'Hostname="n1",gpu="0"'
    scrape.write_text(
        f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} 300 1714521600000\n"
        f'DCGM_FI_DEV_POWER_USAGE{{{labels},pod="{"p" * 300}"}} 300 1714521600000\n'
    )
    telemetry = read_dcgm({"scrape.prom": scrape}, limits=limits)
    assert telemetry.rows_read == {"scrape.prom": 2} and len(telemetry.samples) == 1
    assert telemetry.quarantine[["line", "check"]].values.tolist() == [[2, "field_too_long"]]


# --- max_rows ------------------------------------------------------------------------------------


def test_too_many_rows_refuses_the_file_and_fails_the_gate(tmp_path: Path) -> None:
    path = hb_config(tmp_path, extra="max_rows = 200")
    intake = ingest(load_config(path))
    (stats,) = intake.files.values()
    assert (stats["rows_read"], stats["rows_accepted"], stats["rows_quarantined"]) == (0, 0, 0)
    assert intake.usage.empty and intake.quarantine.empty
    (failure,) = intake.gate_failures
    assert failure.startswith(f"{HB_DUMP}: more than 200 rows (max_rows of its input)")


def test_too_many_rows_in_other_formats(tmp_path: Path) -> None:
    limits = Limits(max_rows=2)
    (tmp_path / "focus.csv").write_text(focus_rows([{"BilledCost": "1"}] * 3))
    pq.write_table(pa.table({"a": ["1", "2", "3"]}), tmp_path / "t.parquet")
    window = {"start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}
    pods = {f"p{n}": {"properties": {"namespace": "ns"}, "window": window} for n in range(3)}
    (tmp_path / "alloc.json").write_text(json.dumps({"code": 200, "data": [pods]}))
    (tmp_path / "s.prom").write_text('DCGM_FI_DEV_GPU_UTIL{Hostname="h",gpu="0"} 1 1\n' * 3)
    results = {
        "focus.csv": read_billing({"focus.csv": tmp_path / "focus.csv"}, "focus", limits=limits),
        "t.parquet": read_raw(tmp_path / "t.parquet", "t.parquet", limits),
        "alloc.json": read_opencost({"alloc.json": tmp_path / "alloc.json"}, site="k",
                                    limits=limits),
        "s.prom": read_dcgm({"s.prom": tmp_path / "s.prom"}, limits=limits),
    }  # fmt: skip
    for name, read in results.items():
        error = read.error if hasattr(read, "error") else read.file_errors[name]
        assert error.startswith("more than 2 rows (max_rows of its input)"), name


def test_a_refused_file_fails_every_run_not_just_the_first(tmp_path: Path) -> None:
    path = hb_config(tmp_path, extra="max_rows = 200")
    run = ["run", "--config", str(path), "--date", "2024-04-30", "--period", "2024-04",
           "--out", str(tmp_path / "out")]  # fmt: skip
    result = CliRunner().invoke(app, run)
    assert result.exit_code == 3, result.output
    assert f"Data-quality gate: {HB_DUMP}: more than 200 rows" in result.output
    # Not recorded as processed: the next run reads the unchanged file again (and fails again).
    state = json.loads((tmp_path / "out" / "ledger" / "_inputs_state.json").read_text())
    assert HB_DUMP not in state


# --- fixed limits: gzip bombs, wide headers, deep JSON -------------------------------------------


@pytest.mark.parametrize("name", ["bomb.csv.gz", "bomb.jsonl.gz"])
def test_gzip_bomb_is_refused_within_bounded_memory(tmp_path: Path, name: str) -> None:
    path = _bomb(tmp_path / name, inflated_mib=400)
    read, peak = _peak_bytes(lambda: read_billing({name: path}, "billing"))
    assert read.rows_read == {name: 0} and read.charges.empty
    assert f"inflates more than {MAX_GZIP_RATIO}× its size" in read.file_errors[name]
    assert peak < MEMORY_BOUND_BYTES


def test_opencost_gzip_bomb_is_refused_within_bounded_memory(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "alloc.json.gz", inflated_mib=400, unit=b"[")
    read, peak = _peak_bytes(lambda: read_opencost({"alloc.json.gz": path}, site="k"))
    assert read.rows_read == {"alloc.json.gz": 0} and read.usage.empty
    assert "inflates more than" in read.file_errors["alloc.json.gz"]
    assert peak < MEMORY_BOUND_BYTES


def test_a_well_compressed_real_export_is_not_a_bomb(tmp_path: Path) -> None:
    path = tmp_path / "focus.csv.gz"
    path.write_bytes(
        gzip.compress(focus_rows([{"BilledCost": str(n)} for n in range(5000)]).encode())
    )
    read = read_billing({"focus.csv.gz": path}, "focus")
    assert not read.file_errors and len(read.charges) == 5000


@pytest.mark.parametrize("name", ["wide.csv", "wide.jsonl", "wide.psv"])
def test_a_million_column_header_is_refused(tmp_path: Path, name: str) -> None:
    columns = [f"c{n}" for n in range(1_000_000)]
    path = tmp_path / name
    if name.endswith(".jsonl"):  # 100,000 keys: JSON parsing under tracemalloc is slow
        path.write_text(json.dumps(dict.fromkeys(columns[:100_000], "1")) + "\n")
    else:
        separator = "|" if name.endswith(".psv") else ","
        path.write_text("JobID" + separator + separator.join(columns) + "\n1" + separator * 10)
    if name.endswith(".psv"):
        config = hb_config(tmp_path)
        text = config.read_text().replace(HB_DUMP, name).split("delimiter")[0]
        config.write_text(text)
        intake, peak = _peak_bytes(lambda: ingest(load_config(config), only={name}))
        assert intake.quarantine["check"].tolist() == ["wide_header"]
        assert "the header has 1,000,001 fields" in intake.quarantine["reason"].iloc[0]
    else:
        raw, peak = _peak_bytes(lambda: read_raw(path, name))
        assert raw.rows_read == 0 and raw.error is not None
        assert f"more than the {MAX_COLUMNS:,} any known export has" in raw.error
    assert peak < 8 * path.stat().st_size + MEMORY_BOUND_BYTES


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deep_json_is_quarantined_not_a_crash(tmp_path: Path, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    (tmp_path / "alloc.json").write_text('{"code": 200, "data": ' + deep + "}")
    (tmp_path / "lines.jsonl").write_text('{"a": ' + deep + "}\n" + '{"a": 1}\n')
    (tmp_path / "dump.json").write_text('{"status": "success", "data": {"result": ' + deep + "}}")
    pods = read_opencost({"alloc.json": tmp_path / "alloc.json"}, site="k")
    assert pods.rows_read == {"alloc.json": 1} and pods.quarantine["check"].tolist() == ["json"]
    raw = read_raw(tmp_path / "lines.jsonl", "lines.jsonl")
    assert raw.rows_read == 2 and raw.quarantine["check"].tolist() == ["json"]
    telemetry = read_dcgm({"dump.json": tmp_path / "dump.json"})
    assert telemetry.quarantine["check"].tolist() == ["json_shape"]
