"""The sacct reader on the real hb-jobinfo sample and on hand-made lines for the traps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reporting.config import load_config
from reporting.errors import InputError
from reporting.pipeline import ingest
from tests.conftest import FIXTURES, hb_config

HB_LINES = 242
HEADER = "JobID|JobName|User|Account|Partition|NodeList|NNodes|NCPUS|State|Submit|Start|End|Elapsed|Timelimit|TotalCPU|ReqMem|MaxRSS|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw"


def _usage(intake, job_id: str) -> pd.Series:
    rows = intake.usage[intake.usage["usage_id"].str.contains(f":{job_id}:", regex=False)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


@pytest.mark.parametrize("header", [False, True])
def test_real_sample_every_line_accounted(tmp_path: Path, header: bool) -> None:
    intake = ingest(load_config(hb_config(tmp_path, header=header)))
    (stats,) = intake.files.values()
    assert stats["rows_read"] == HB_LINES
    assert stats["rows_accepted"] + stats["rows_quarantined"] == HB_LINES
    assert stats["rows_quarantined"] == 0  # a clean real dump
    assert stats["runs"] == 100  # 76 plain jobs + 24 array tasks (FORMATS.md §1.4)
    assert stats["not_attributed"] == {"PENDING": 7, "RUNNING": 3}


def test_job_merged_with_its_steps(hb_config_path: Path) -> None:
    job = _usage(ingest(load_config(hb_config_path)), "7965768")
    assert job["state"] == "CANCELLED"  # "CANCELLED by 10314909"
    assert job["n_gpus"] == 1 and job["gpu_type"] == "v100" and job["gpu_model"] == "V100-PCIE-32GB"
    assert job["n_cpus"] == 8
    assert job["lines_merged"] == 3  # job + .batch + .extern
    assert job["mem_used_max_gb"] == pytest.approx(1294440 / 1024**2)  # MaxRSS of .batch
    assert job["gpu_util_ratio"] == pytest.approx(0.90)  # gres/gpuutil=90 of .batch, extern ignored
    assert job["mem_requested_gb"] == pytest.approx(10.0)
    assert job["duration_s"] == 15 * 3600 + 28 * 60 + 22
    assert job["started_at"] == pd.Timestamp("2024-04-04T19:45:17Z")  # 21:45:17 CEST
    assert job["cpu_time_s"] == pytest.approx(15 * 3600 + 33 * 60 + 59)


def test_array_tasks_and_multistep_jobs(hb_config_path: Path) -> None:
    intake = ingest(load_config(hb_config_path))
    assert _usage(intake, "5908801_3")["state"] == "COMPLETED"
    two_node = _usage(intake, "7818766")
    assert two_node["n_nodes"] == 2 and two_node["n_cpus"] == 128 and two_node["lines_merged"] == 4


def _dump(tmp_path: Path, lines: list[str], name: str = "dump.psv") -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode("utf-8"))
    return path


def _config(tmp_path: Path, extra_site: str = "") -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f"""
[organisation]
name = "Test"
[[sites]]
name = "lab"
grid_zone = "SE"
timezone = "UTC"
gpu_types = {{ a100 = "A100-SXM4-40GB" }}
{extra_site}
[[inputs]]
kind = "slurm"
path = "in/*.psv"
site = "lab"
max_quarantined_ratio = 1.0
""",
        encoding="utf-8",
    )
    return path


JOB = "100|train|u1|acct|gpu|n[1-4]|4|256|COMPLETED|2026-07-01T00:00:00|2026-07-01T01:00:00|2026-07-01T11:00:00|10:00:00|12:00:00|1-00:00:00|64G||billing=256,cpu=256,gres/gpu:a100=16,gres/gpu=16,mem=64G,node=4||20543125"


def test_energy_of_job_and_steps_is_never_summed(tmp_path: Path) -> None:
    # CSCS sample job 38113: job = .extern = 20,543,125 J, .batch 5,094,129 J, srun step 20,536,917 J.
    steps = [
        "100.batch|batch||||n1|1|64|COMPLETED|2026-07-01T01:00:00|2026-07-01T01:00:00|2026-07-01T11:00:00|10:00:00||00:10:00||100K|cpu=64,gres/gpu=4,mem=16G,node=1|gres/gpuutil=0|5094129",
        "100.extern|extern||||n[1-4]|4|256|COMPLETED|2026-07-01T01:00:00|2026-07-01T01:00:00|2026-07-01T11:00:00|10:00:00||00:00:00||0|cpu=256,gres/gpu=16,mem=64G,node=4||20543125",
        "100.0|python||||n[1-4]|4|256|COMPLETED|2026-07-01T01:00:05|2026-07-01T01:00:05|2026-07-01T11:00:00|09:59:55||23:50:00||20G|cpu=256,gres/gpu=16,mem=64G,node=4|gres/gpuutil=1280|20536917",
    ]
    _dump(tmp_path, [JOB, *steps])
    intake = ingest(load_config(_config(tmp_path)))
    job = _usage(intake, "100")
    assert job["measured_energy_kwh"] == pytest.approx(20543125 / 3.6e6)
    assert job["gpu_util_ratio"] == pytest.approx(0.80)  # 1280 % over 16 GPUs
    assert job["mem_used_max_gb"] == pytest.approx(20.0)
    assert job["lines_merged"] == 4


def test_bad_lines_are_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    good = JOB.replace("|20543125", "|0")
    lines = [
        good,
        "101|short|u1|acct|gpu|n1|1|8|COMPLETED",  # line 3: wrong field count
        good.replace("100|train", "102|tr\udcffin"),  # line 4: non-UTF-8 byte (written below)
        good.replace("100|", "103|").replace(
            "2026-07-01T11:00:00", "2026-06-30T11:00:00"
        ),  # end before start
        good.replace("100|", "104|").replace("gres/gpu:a100=16", "gres/gpu:tpu9=16"),  # unknown GPU
        good.replace("100|", "105|").replace(
            "|10:00:00|12:00:00|", "|1-2x:00:00|12:00:00|"
        ),  # bad Elapsed
        "999.batch|batch||||n1|1|8|COMPLETED|2026-07-01T01:00:00|2026-07-01T01:00:00|2026-07-01T02:00:00|01:00:00||00:10:00||100K|cpu=8||0",
    ]
    path = _dump(tmp_path, [])
    path.write_bytes("\n".join([HEADER, *lines]).encode("utf-8", errors="surrogateescape") + b"\n")
    intake = ingest(load_config(_config(tmp_path)))
    checks = dict(zip(intake.quarantine["line"], intake.quarantine["check"]))
    assert checks == {
        3: "field_count",
        4: "encoding",
        5: "end_before_start",
        6: "unknown_gpu_model",
        7: "unparseable",
        8: "orphan_step",
    }
    (stats,) = intake.files.values()
    assert (stats["rows_read"], stats["rows_accepted"], stats["rows_quarantined"]) == (7, 1, 6)
    reasons = dict(zip(intake.quarantine["check"], intake.quarantine["reason"]))
    assert "expected 20 fields" in reasons["field_count"]
    assert "'tpu9'" in reasons["unknown_gpu_model"] and "gpu_types" in reasons["unknown_gpu_model"]
    assert "'1-2x:00:00'" in reasons["unparseable"]
    raw = dict(zip(intake.quarantine["line"], intake.quarantine["raw"]))
    assert raw[4].startswith("102|tr\\xffin")


def test_running_and_pending_jobs_are_counted_not_attributed(tmp_path: Path) -> None:
    running = "200|serve|u1|acct|gpu|n1|1|8|RUNNING|2026-07-01T00:00:00|2026-07-01T01:00:00|Unknown|05:00:00|UNLIMITED|00:00:00|8G||billing=8,cpu=8,mem=8G,node=1||0"
    pending = "201_[3-40]|eval|u1|acct|gpu|None assigned|1|8|PENDING|2026-07-01T00:00:00|Unknown|Unknown|00:00:00|01:00:00|00:00:00|8G||||"
    _dump(tmp_path, [running, pending])
    (stats,) = ingest(load_config(_config(tmp_path))).files.values()
    assert stats["rows_accepted"] == 2 and stats["not_attributed"] == {"PENDING": 1, "RUNNING": 1}


def test_a_job_in_two_dumps_keeps_its_final_record(tmp_path: Path) -> None:
    running = "300|t|u1|acct|gpu|n1|1|8|RUNNING|2026-07-01T00:00:00|2026-07-01T01:00:00|Unknown|05:00:00|1-00:00:00|00:00:00|8G||billing=8,cpu=8,mem=8G,node=1||0"
    done = "300|t|u1|acct|gpu|n1|1|8|COMPLETED|2026-07-01T00:00:00|2026-07-01T01:00:00|2026-07-01T09:00:00|08:00:00|1-00:00:00|04:00:00|8G||billing=8,cpu=8,mem=8G,node=1||0"
    _dump(tmp_path, [running], "a.psv")
    _dump(tmp_path, [done], "b.psv")
    intake = ingest(load_config(_config(tmp_path)))
    assert len(intake.usage) == 1 and intake.usage.iloc[0]["state"] == "COMPLETED"
    assert list(intake.quarantine["check"]) == ["duplicate"]
    assert "b.psv:2" in intake.quarantine.iloc[0]["reason"]


def test_requeued_runs_are_separate_runs(tmp_path: Path) -> None:
    first = "400|t|u1|acct|gpu|n1|1|8|REQUEUED|2026-07-01T00:00:00|2026-07-01T01:00:00|2026-07-01T02:00:00|01:00:00|1-00:00:00|04:00:00|8G||billing=8,cpu=8,mem=8G,node=1||0"
    second = first.replace("REQUEUED|2026-07-01T00:00:00", "COMPLETED|2026-07-01T02:00:10")
    _dump(tmp_path, [first, second])
    intake = ingest(load_config(_config(tmp_path)))
    assert sorted(intake.usage["state"]) == ["COMPLETED", "REQUEUED"]
    assert intake.usage["usage_id"].is_unique


def test_header_less_dump_without_fields_is_quarantined_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.psv").write_text(JOB + "\n" + JOB.replace("100|", "101|") + "\n", encoding="utf-8")
    _dump(tmp_path, [JOB.replace("100|", "200|")], "good.psv")  # other files carry on
    intake = ingest(load_config(_config(tmp_path)))
    bad = intake.quarantine[intake.quarantine["source_file"] == "in/x.psv"]
    assert list(bad["line"]) == [1, 2] and set(bad["check"]) == {"no_header"}
    assert "set `fields`" in bad.iloc[0]["reason"]
    assert intake.files["in/x.psv"]["rows_quarantined"] == 2
    assert len(intake.usage) == 1


def test_missing_required_field_quarantines_the_file_with_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.psv").write_text("JobID|State\n1|COMPLETED\n", encoding="utf-8")
    intake = ingest(load_config(_config(tmp_path)))
    (row,) = intake.quarantine.to_dict("records")
    assert row["check"] == "missing_fields" and "no start, end, elapsed field" in row["reason"]


def test_unreadable_file_fails_the_gate_but_not_the_run(tmp_path: Path) -> None:
    _dump(tmp_path, [JOB], "good.psv")
    (tmp_path / "in" / "gone.psv").symlink_to(tmp_path / "deleted-since")  # a file that vanished
    intake = ingest(load_config(_config(tmp_path)))
    assert len(intake.usage) == 1
    assert any("in/gone.psv: cannot read" in failure for failure in intake.gate_failures)


def test_no_file_matching_the_input_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"inputs\[0\]\.path: no file matches"):
        ingest(load_config(_config(tmp_path)))


def test_fixture_is_the_real_sample() -> None:
    assert (FIXTURES / "slurm" / "hb-jobinfo_sacct.txt").stat().st_size == 102_564


def test_steps_of_requeued_runs_stay_with_their_own_run(tmp_path: Path) -> None:
    first = "500|t|u1|acct|gpu|n1|1|8|REQUEUED|2026-07-01T00:00:00|2026-07-01T01:00:00|2026-07-01T02:00:00|01:00:00|1-00:00:00|00:10:00|8G||billing=8,cpu=8,mem=8G,node=1||0"
    first_step = "500.batch|batch||||n1|1|8|CANCELLED|2026-07-01T01:00:00|2026-07-01T01:00:00|2026-07-01T02:00:00|01:00:00||00:10:00||1G|cpu=8,mem=8G,node=1||0"
    second = first.replace("REQUEUED|2026-07-01T00:00:00", "COMPLETED|2026-07-01T02:00:10")
    second_step = first_step.replace("|1G|", "|3G|").replace("CANCELLED", "COMPLETED")
    _dump(tmp_path, [first, first_step, second, second_step])
    intake = ingest(load_config(_config(tmp_path)))
    by_state = intake.usage.set_index("state")
    assert by_state.loc["REQUEUED", "mem_used_max_gb"] == pytest.approx(1.0)
    assert by_state.loc["COMPLETED", "mem_used_max_gb"] == pytest.approx(3.0)
    assert list(by_state["lines_merged"]) == [2, 2]


def test_a_dump_with_only_a_header_is_a_quiet_night(tmp_path: Path) -> None:
    _dump(tmp_path, [])
    (stats,) = ingest(load_config(_config(tmp_path))).files.values()
    assert (stats["rows_read"], stats["rows_accepted"], stats["rows_quarantined"]) == (0, 0, 0)
