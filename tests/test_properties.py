"""Invariants under random input (hypothesis): nothing lost, nothing negative, order irrelevant."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting.attribute import LINEAR_COLUMNS, attribute_usage, split_by_day
from reporting.config import load_config
from reporting.pipeline import ingest

HEADER = "JobID|JobName|User|Account|Partition|NNodes|NCPUS|State|Submit|Start|End|Elapsed|TotalCPU|ReqMem|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw"
CONFIG = """
[organisation]
name = "Lab"
[[sites]]
name = "lab"
grid_zone = "DE"
timezone = "Europe/Berlin"
gpu_types = { a100 = "A100-SXM4-80GB" }
rate_card = { gpu_hour = 2.0, cpu_core_hour = 0.01, source = "test" }
[[inputs]]
kind = "slurm"
path = "dump.psv"
site = "lab"
max_quarantined_ratio = 1.0
[[owners]]
match = { account = "^(?P<team>t[0-3])$" }
team = "{team}"
"""
STATES = [
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CANCELLED by 42",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "RUNNING",
    "PENDING",
]
BASE = datetime(2026, 7, 1)


def _fmt_duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


@st.composite
def job(draw: st.DrawFn, job_id: int) -> list[str]:
    start = BASE + timedelta(seconds=draw(st.integers(0, 80 * 86400)))
    elapsed = draw(st.integers(0, 5 * 86400))
    gpus = draw(st.sampled_from([0, 0, 1, 4, 8]))
    cpus = draw(st.integers(1, 128))
    state = draw(st.sampled_from(STATES))
    end = (
        "Unknown"
        if state in ("RUNNING", "PENDING")
        else (start + timedelta(seconds=elapsed)).isoformat()
    )
    gres = f"gres/gpu:a100={gpus},gres/gpu={gpus}," if gpus else ""
    energy = draw(st.sampled_from(["0", "", str(draw(st.integers(1, 10**13)))]))
    total_cpu = _fmt_duration(draw(st.integers(0, max(elapsed, 1) * cpus)))
    line = (
        f"{job_id}|job{job_id}|u{job_id % 5}|t{job_id % 5}|gpu|1|{cpus}|{state}|{start.isoformat()}|"
        f"{start.isoformat()}|{end}|{_fmt_duration(elapsed)}|{total_cpu}|{draw(st.integers(0, 512))}G|"
        f"cpu={cpus},{gres}mem=8G,node=1||{energy}"
    )
    lines = [line]
    if draw(st.booleans()) and end != "Unknown":
        util = draw(st.integers(0, 100 * max(gpus, 1)))
        lines.append(
            f"{job_id}.batch|batch||||1|{cpus}|COMPLETED|{start.isoformat()}|{start.isoformat()}|{end}|"
            f"{_fmt_duration(elapsed)}|00:01:00||cpu={cpus},gres/gpu={gpus}|gres/gpuutil={util}|0"
        )
    return lines


garbage = st.text(
    alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=80
)


@st.composite
def dumps(draw: st.DrawFn) -> list[str]:
    lines: list[str] = []
    for job_id in range(1, draw(st.integers(1, 25)) + 1):
        lines += draw(job(job_id))
    for _ in range(draw(st.integers(0, 4))):
        lines.insert(draw(st.integers(0, len(lines))), draw(garbage))
    return lines


def _run(lines: list[str]):
    folder = Path(tempfile.mkdtemp())
    (folder / "dump.psv").write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    (folder / "c.toml").write_text(CONFIG, encoding="utf-8")
    config = load_config(folder / "c.toml")
    intake = ingest(config)
    return intake, attribute_usage(intake.usage, config, "prop")


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(dumps())
def test_every_line_is_accepted_or_quarantined(lines: list[str]) -> None:
    intake, _ = _run(lines)
    (stats,) = intake.files.values()
    data_lines = sum(
        1 for line in lines if line.encode("utf-8").strip()
    )  # the reader's idea of blank
    assert stats["rows_read"] == data_lines
    assert stats["rows_accepted"] + stats["rows_quarantined"] == data_lines


@FAST
@given(dumps())
def test_attributed_quantities_are_finite_and_non_negative(lines: list[str]) -> None:
    _, attribution = _run(lines)
    for column in LINEAR_COLUMNS:
        values = attribution.ledger[column].dropna()
        assert (values >= 0).all() and values.map(pd.notna).all(), column


@FAST
@given(dumps(), st.randoms(use_true_random=False))
def test_line_order_does_not_change_results(lines: list[str], random) -> None:
    shuffled = list(lines)
    random.shuffle(shuffled)
    _, first = _run(lines)
    _, second = _run(shuffled)
    for column in LINEAR_COLUMNS:
        assert second.ledger[column].sum() == pytest.approx(
            first.ledger[column].sum(), rel=1e-9, abs=1e-12
        )
    assert sorted(first.ledger["usage_id"]) == sorted(second.ledger["usage_id"])


@FAST
@given(dumps())
def test_day_slices_add_back_to_each_run(lines: list[str]) -> None:
    _, attribution = _run(lines)
    ledger = attribution.ledger
    if ledger.empty:
        return
    per_run = ledger.groupby("usage_id")["slice_ratio"].sum()
    assert per_run.to_numpy() == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10 * 86400), st.integers(0, 4 * 86400), st.floats(0, 1e4)),
        min_size=1,
        max_size=20,
    )
)
def test_split_by_day_conserves_every_linear_quantity(runs: list[tuple[int, int, float]]) -> None:
    start = pd.Series(
        [pd.Timestamp("2026-07-01T00:00:00Z") + pd.Timedelta(seconds=s) for s, _, _ in runs]
    )
    frame = pd.DataFrame(
        {
            "started_at": start,
            "ended_at": start + pd.to_timedelta([d for _, d, _ in runs], unit="s"),
        }
    )
    for column in LINEAR_COLUMNS:
        frame[column] = [v for _, _, v in runs]
    sliced = split_by_day(frame)
    for column in LINEAR_COLUMNS:
        assert sliced[column].sum() == pytest.approx(frame[column].sum(), rel=1e-9, abs=1e-9)
    assert (sliced["slice_end_at"] >= sliced["slice_start_at"]).all()
