"""Streaming (issue #9): a large Slurm input read slice by slice, here or on a real Dask
LocalCluster, writes the same ledger and summary as the same input read whole.

The input is the demo's August atlas dump (real generator output, 1 MB, ~3,300 lines, one
line made unreadable) with two days of the demo's DCGM telemetry, so slices also join
measured GPU energy and quarantine lines far from the start of the file."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting.slices import cut

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_logs"
DUMP = "slurm/atlas/sacct-2026-08.psv"
TELEMETRY = ["telemetry/atlas/dcgm-2026-08-03.json", "telemetry/atlas/dcgm-2026-08-04.json"]
GREENOPS = Path(sys.executable).parent / "greenops"


def atlas_config(folder: Path, batch_mb: float | None) -> Path:
    """The demo config's organisation, atlas site and owner rules, reading copies of the dump
    and telemetry in `folder`; `[engine] batch_mb` when given."""
    blocks: list[list[str]] = [[]]
    for line in (SAMPLE / "greenops.toml").read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            blocks.append([])
        blocks[-1].append(line)
    kept = [
        "\n".join(b)
        for b in blocks
        if b
        and b[0].strip() not in ("[[inputs]]", "[notify]")
        and (b[0].strip() != "[[sites]]" or tomllib.loads("\n".join(b))["sites"][0]["name"] == "atlas")
    ]  # fmt: skip
    for name in [DUMP, *TELEMETRY]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE / name, folder / name)
    kept.append(f'[[inputs]]\nkind = "slurm"\npath = "{DUMP}"\nsite = "atlas"\n')
    kept.append('[[inputs]]\nkind = "dcgm"\npath = "telemetry/atlas/*.json"\nsite = "atlas"\n')
    if batch_mb is not None:
        kept.append(f"[engine]\nbatch_mb = {batch_mb}\n")
    _with_bad_line(folder / DUMP)
    path = folder / "greenops.toml"
    path.write_text("\n".join(kept), encoding="utf-8")
    return path


BAD_LINE = 3001  # 1-based line number of a line that cannot be split, in the fifth slice


def _with_bad_line(dump: Path) -> None:
    lines = dump.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(BAD_LINE - 1, "not|a|sacct|line\n")
    dump.write_text("".join(lines), encoding="utf-8")


def run(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GREENOPS), "run", "--config", str(config), "--date", "2026-08-31", "--out", str(out),
         "--period", "2026-08", *extra],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def ledger(out: Path) -> pd.DataFrame:
    frame = pd.read_parquet(out / "ledger")
    return frame.sort_values(["usage_id", "slice_start_at"]).reset_index(drop=True)


def partition_bytes(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted((out / "ledger").glob("day=*/*.parquet"))}


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whole")
    result = run(atlas_config(folder, None), folder / "out")
    assert result.returncode == 0, result.stderr
    assert " slices: " not in result.stderr  # 1 MB is well under the default batch: read whole
    return folder / "out"


def test_a_streamed_run_writes_the_same_ledger_and_summary(whole: Path, tmp_path: Path) -> None:
    result = run(atlas_config(tmp_path, 0.2), tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "streamed 6 slices" in result.stderr  # 1.07 MB in slices of about 0.2 MB
    assert partition_bytes(tmp_path / "out") == partition_bytes(whole)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    expected = json.loads((whole / "summary.json").read_text())
    assert summary == expected
    record = summary["inputs"][0]
    assert record["rows_read"] == record["rows_accepted"] + record["rows_quarantined"] > 3000
    # the quarantined lines keep their numbers in the file
    bad = pd.read_csv(tmp_path / "out" / "quarantine.csv").query("check == 'field_count'")
    assert bad["line"].tolist() == [BAD_LINE]
    assert (tmp_path / "out" / "quarantine.csv").read_bytes() == (
        whole / "quarantine.csv"
    ).read_bytes()
    assert summary["gpu_energy"]["runs_with_telemetry"] == 2  # slices joined the stored telemetry
    assert not (tmp_path / "out" / "ledger" / "_staging").exists()


def test_the_dask_engine_on_a_local_cluster_writes_the_same_ledger(
    whole: Path, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:  # fmt: skip
        result = run(atlas_config(tmp_path, 0.2), tmp_path / "out", "--engine", "dask",
                     "--scheduler", cluster.scheduler_address)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "dask: 6 slices on 2 workers" in result.stderr
    pd.testing.assert_frame_equal(ledger(tmp_path / "out"), ledger(whole))
    assert partition_bytes(tmp_path / "out") == partition_bytes(whole)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary == json.loads((whole / "summary.json").read_text())


def test_unknown_engine_is_a_clear_error(tmp_path: Path) -> None:
    result = run(atlas_config(tmp_path, None), tmp_path / "out", "--engine", "spark")
    assert result.returncode == 1
    assert "--engine 'spark': use local or dask" in result.stderr
    assert "Traceback" not in result.stderr


def _dump(jobs: list[tuple[str, int]]) -> bytes:
    """A sacct-like dump: header, then per job its line and `steps` step lines."""
    lines = [b"JobID|State|Elapsed"]
    for job, steps in jobs:
        lines.append(f"{job}|COMPLETED|00:01:00".encode())
        lines += [f"{job}.{s}|COMPLETED|00:01:00".encode() for s in range(steps)]
    return b"\n".join(lines) + b"\n"


job_ids = st.one_of(
    st.integers(1, 10**6).map(str),
    st.tuples(st.integers(1, 10**6), st.integers(0, 99)).map(lambda t: f"{t[0]}_{t[1]}"),
)


def _base(line: bytes) -> bytes:
    return line.split(b"|")[0].split(b".")[0]


@settings(max_examples=60, deadline=None)
@given(
    jobs=st.lists(st.tuples(job_ids, st.integers(0, 4)), min_size=1, max_size=60),
    batch_bytes=st.integers(1, 400),
)
def test_slices_cover_the_dump_and_never_split_a_job(
    jobs: list[tuple[str, int]], batch_bytes: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("cut") / "dump.psv"
    data = _dump(jobs)
    path.write_bytes(data)
    spans = cut(path, batch_bytes, None, None)
    assert spans[0].start == len(b"JobID|State|Elapsed\n") and spans[-1].end == len(data)
    for before, after in itertools.pairwise(spans):
        assert before.end == after.start
        # a cut never falls between two lines of one job (its steps, or its requeued records)
        last = data[before.start : before.end].splitlines()[-1]
        first = data[after.start : after.end].splitlines()[0]
        assert _base(last) != _base(first)
    for span in spans:
        assert span.first_line == data[: span.start].count(b"\n") + 1
        assert span.end - span.start > 0
