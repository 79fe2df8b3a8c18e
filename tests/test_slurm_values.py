"""sacct value formats, with examples taken from real dumps (FORMATS.md §1)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reporting.ingest import slurm_values as sv


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("03:34:13", 3 * 3600 + 34 * 60 + 13),
        ("1-04:33:44", 86400 + 4 * 3600 + 33 * 60 + 44),
        ("163-00:18:41", 163 * 86400 + 18 * 60 + 41),
        ("35:38.726", 35 * 60 + 38.726),
        ("00:00.001", 0.001),
        ("UNLIMITED", None),
        ("Partition_Limit", None),
        ("", None),
    ],
)
def test_durations(text: str, seconds: float | None) -> None:
    parsed, bad = sv.parse_duration_s(pd.Series([text]))
    assert not bad[0]
    if seconds is None:
        assert math.isnan(parsed[0])
    else:
        assert parsed[0] == pytest.approx(seconds)


def test_unparseable_duration_is_flagged_not_guessed() -> None:
    parsed, bad = sv.parse_duration_s(pd.Series(["1-2x:00:00"]))
    assert bad[0] and math.isnan(parsed[0])


@pytest.mark.parametrize(
    ("text", "n_cpus", "n_nodes", "gb"),
    [
        ("32G", 8, 1, 32.0),
        ("199G", 8, 1, 199.0),
        ("32000M", 8, 1, 32000 / 1024),
        ("1294440K", 1, 1, 1294440 / 1024**2),
        ("0", 8, 1, 0.0),
        ("6760Mc", 4, 1, 4 * 6760 / 1024),  # legacy: per CPU
        ("250Gn", 8, 2, 500.0),  # legacy: per node
        ("0n", 8, 2, 0.0),
    ],
)
def test_memory(text: str, n_cpus: int, n_nodes: int, gb: float) -> None:
    parsed, bad = sv.parse_memory_gb(
        pd.Series([text]), pd.Series([float(n_cpus)]), pd.Series([float(n_nodes)])
    )
    assert not bad[0]
    assert parsed[0] == pytest.approx(gb)


def test_tres_counts_gpus_from_the_untyped_entry_and_keeps_the_type() -> None:
    tres = sv.parse_tres(
        pd.Series(["billing=8,cpu=8,gres/gpu:v100=1,gres/gpu=1,mem=10G,node=1", ""])
    )
    assert tres.loc[0, "gres/gpu"] == "1"
    assert tres.loc[0, "gpu_type"] == "v100"
    assert tres.loc[0, "cpu"] == "8"
    assert pd.isna(tres.loc[1, "gres/gpu"])


def test_tres_usage_keeps_gpu_utilisation() -> None:
    text = (
        "cpu=15:33:58,energy=0,fs/disk=934556828,gres/gpumem=20500736K,gres/gpuutil=90,mem=1294440K"
    )
    assert sv.parse_tres(pd.Series([text])).loc[0, "gres/gpuutil"] == "90"


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("CANCELLED by 10304007", "CANCELLED"),
        ("CANCELLED+", "CANCELLED"),
        ("COMPLETED", "COMPLETED"),
        ("NODE_FAIL", "NODE_FAIL"),
        ("timeout", "TIMEOUT"),
    ],
)
def test_states(text: str, state: str) -> None:
    assert sv.parse_state(pd.Series([text]))[0] == state


def test_naive_times_are_read_in_the_site_timezone_and_stored_as_utc() -> None:
    times, bad = sv.parse_local_time(
        pd.Series(["2024-04-04T21:45:17", "Unknown", "None", "2024-03-15-20:24:16", "soon"]),
        "Europe/Amsterdam",
    )
    assert times[0] == pd.Timestamp("2024-04-04T19:45:17Z")  # CEST = UTC+2
    assert pd.isna(times[1]) and pd.isna(times[2])
    assert times[3] == pd.Timestamp("2024-03-15T19:24:16Z")  # SLURM_TIME_FORMAT variant, CET
    assert list(bad) == [False, False, False, False, True]


def test_times_in_the_spring_gap_shift_forward() -> None:
    times, _ = sv.parse_local_time(pd.Series(["2026-03-08T02:30:00"]), "America/New_York")
    assert times[0] == pd.Timestamp("2026-03-08T07:00:00Z")


def test_energy_zero_means_not_metered() -> None:
    kwh, bad = sv.parse_energy_kwh(pd.Series(["0", "", "7200000"]))
    assert math.isnan(kwh[0]) and math.isnan(kwh[1]) and kwh[2] == pytest.approx(2.0)
    assert not bad.any()
