"""OpenCost allocation JSON and CSV export → usage rows; duplicates and bad rows quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reporting.ingest.opencost import read_opencost
from reporting.schema import QUARANTINE_COLUMNS, USAGE_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures" / "k8s"
SAMPLE = FIXTURES / "opencost_swagger_allocation_example.raw.json"


def conserved(read) -> None:
    accepted = read.usage.groupby("source_file").size()
    quarantined = read.quarantine.groupby("source_file").size()
    for name, rows in read.rows_read.items():
        assert rows == accepted.get(name, 0) + quarantined.get(name, 0), name


def allocation(name, start, end, **extra):
    properties = {"cluster": "c1", "namespace": "inf", "pod": name, "node": "n1"}
    properties.update(extra.pop("properties", {}))
    body = {
        "name": name, "properties": properties, "window": {"start": start, "end": end},
        "start": start, "end": end, "cpuCores": 2.0, "cpuCoreRequestAverage": 2.0,
        "cpuCoreUsageAverage": 0.5, "gpuCount": 1.0, "gpuHours": 1.0,
        "ramByteRequestAverage": 4 * 1024**3, "totalCost": 3.0,
    }  # fmt: skip
    body.update(extra)
    return body


def write(tmp_path: Path, name: str, steps) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"code": 200, "status": "success", "data": steps}))
    return path


def test_real_sample() -> None:
    read = read_opencost({"alloc.json": SAMPLE}, site="eu1")
    usage = read.usage
    assert list(usage.columns[: len(USAGE_COLUMNS)]) == USAGE_COLUMNS
    assert read.rows_read == {"alloc.json": 3} and read.quarantine.empty
    conserved(read)
    assert usage["cost"].sum() == pytest.approx(0.456113)
    assert usage["allocation_kind"].tolist() == ["aggregate", "pod", "aggregate"]
    pod = usage.set_index("job_name").loc["opencost-75dc7dcc49-xdx5t"]
    assert pod["usage_id"] == "k8s:cluster-one:opencost/opencost-75dc7dcc49-xdx5t:20230118T113845Z"
    assert pod["started_at"] == pd.Timestamp("2023-01-18T11:38:45Z")
    assert pod["ended_at"] == pd.Timestamp("2023-01-20T11:38:00Z")
    assert pod["duration_s"] == 172755.0
    assert pod["n_cpus"] == pytest.approx(0.019995)
    assert pod["cpu_util_ratio"] == pytest.approx(0.001821 / 0.019995)
    assert pod["state"] == "COMPLETED" and pod["source"] == "opencost"
    assert pod["provider_id"] == "i-064548f89b9d35c11"
    assert usage["measured_energy_kwh"].isna().all()
    assert set(QUARANTINE_COLUMNS) == set(read.quarantine.columns)


def test_steps_idle_and_labels(tmp_path: Path) -> None:
    day1 = ("2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z")
    day2 = ("2024-05-02T00:00:00Z", "2024-05-03T00:00:00Z")
    labelled = allocation("p1", *day1, properties={"labels": {"app_kubernetes_io_name": "llm"}})
    idle = allocation("__idle__", *day1, properties={"pod": None, "namespace": None})
    path = write(
        tmp_path, "a.json", [{"p1": labelled, "__idle__": idle}, {"p1": allocation("p1", *day2)}]
    )
    read = read_opencost({"a.json": path}, site="eu1", as_of=pd.Timestamp("2024-05-02T12:00Z"))
    conserved(read)
    usage = read.usage.set_index("usage_id")
    assert list(usage.index) == [
        "k8s:c1:inf/p1:20240501T000000Z", "k8s:c1:__idle__:20240501T000000Z",
        "k8s:c1:inf/p1:20240502T000000Z",
    ]  # fmt: skip
    first = usage.iloc[0]
    assert json.loads(first["labels"]) == {"app_kubernetes_io_name": "llm"}
    assert first["n_gpus"] == 1.0 and first["mem_requested_gb"] == 4.0
    assert first["cpu_util_ratio"] == 0.25 and first["duration_s"] == 86400
    assert usage.iloc[1]["namespace"] == "__idle__" and usage.iloc[1]["allocation_kind"] == "idle"
    assert usage["state"].tolist() == ["COMPLETED", "COMPLETED", "RUNNING"]  # day 2 not over


def test_requeried_windows_quarantined(tmp_path: Path) -> None:
    day = ("2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z")
    shifted = ("2024-05-01T12:00:00Z", "2024-05-02T12:00:00Z")
    first = write(tmp_path, "first.json", [{"p1": allocation("p1", *day)}])
    again = write(
        tmp_path, "again.json",
        [{"p1": allocation("p1", *day, totalCost=4.0)}, {"p1": allocation("p1", *shifted)}],
    )  # fmt: skip
    read = read_opencost({"first.json": first, "again.json": again}, site="eu1")
    conserved(read)
    assert len(read.usage) == 1 and read.usage["cost"].iloc[0] == 4.0  # later file kept
    assert sorted(read.quarantine["check"]) == ["duplicate", "overlapping_window"]
    assert read.quarantine["reason"].str.contains("again.json:1").all()


def test_malformed_json_quarantined(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"code": 200, "data": [')
    shape = tmp_path / "shape.json"
    shape.write_text('{"code": 500, "message": "boom"}')
    bad_rows = write(
        tmp_path, "rows.json",
        [{"ok": allocation("ok", "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z"),
          "nowin": allocation("nowin", "yesterday", "2024-05-02T00:00:00Z"),
          "backwards": allocation("backwards", "2024-05-02T00:00:00Z", "2024-05-01T00:00:00Z"),
          "num": allocation("num", "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", cpuCores="x"),
          "null": None}],
    )  # fmt: skip
    paths = {"broken.json": broken, "shape.json": shape, "rows.json": bad_rows}
    read = read_opencost({**paths, "gone.json": tmp_path / "gone.json"}, site="eu1")
    conserved(read)
    assert read.rows_read == {"broken.json": 1, "shape.json": 1, "rows.json": 5, "gone.json": 0}
    assert "gone.json" in read.file_errors
    checks = read.quarantine.set_index("source_file")["check"]
    assert checks["broken.json"] == "json" and checks["shape.json"] == "json_shape"
    rows = read.quarantine[read.quarantine["source_file"] == "rows.json"]
    assert sorted(rows["check"]) == ["json_shape", "number", "window", "window"]
    assert rows["reason"].str.contains("cpu_cores|window_start|window end|not a JSON").all()
    assert read.usage["job_name"].tolist() == ["ok"]


CSV_HEADER = (
    "Date,Namespace,ControllerKind,ControllerName,Pod,Container,CPUCoreUsageAverage,"
    "CPUCoreRequestAverage,RAMBytesUsageAverage,RAMBytesRequestAverage,NetworkReceiveBytes,"
    "NetworkTransferBytes,GPUs,PVBytes,CPUCost,RAMCost,NetworkCost,PVCost,GPUCost,TotalCost,"
    "Labels,Label_team"
)


def test_csv_export(tmp_path: Path) -> None:
    rows = [
        '2024-05-01,inf,deployment,llm,llm-1,srv,1,4,0,1073741824,0,0,2,0,1,0.5,0,0,8,9.5,"{""app"": ""llm""}",ml',
        "2024-05-01,inf,deployment,llm,llm-2,srv,x,4,0,0,0,0,0,0,0,0,0,0,0,1,,",
        '2024-05-01,inf,deployment,llm,llm-3,srv,1,4,0,0,0,0,0,0,0,0,0,0,0,1,"{broken",',
        "2024-05-01,inf,deployment,llm,llm-4,srv,1",
        "2024-05-01,inf,deployment,llm,llm-1,srv,1,4,0,0,0,0,2,0,0,0,0,0,0,9.5,,",
    ]
    path = tmp_path / "export.csv"
    path.write_text("\n".join([CSV_HEADER, *rows]) + "\n")
    read = read_opencost({"export.csv": path}, site="eu1", cluster="k1")
    conserved(read)
    assert read.rows_read == {"export.csv": 5}
    row = read.usage.iloc[0]
    assert row["usage_id"] == "k8s:k1:inf/llm-1/srv:20240501T000000Z"
    assert row["duration_s"] == 86400 and row["n_gpus"] == 2 and row["n_cpus"] == 4
    assert row["cpu_util_ratio"] == 0.25 and row["cost"] == 9.5 and row["mem_requested_gb"] == 1
    assert json.loads(row["labels"]) == {"app": "llm", "team": "ml"}
    assert sorted(read.quarantine["check"]) == ["duplicate", "field_count", "labels", "number"]


def test_csv_without_date_column(tmp_path: Path) -> None:
    path = tmp_path / "nodate.csv"
    path.write_text("Namespace,Pod,TotalCost\ninf,p,1\ninf,q,2\n")
    read = read_opencost({"nodate.csv": path}, site="eu1")
    conserved(read)
    assert read.usage.empty and set(read.quarantine["check"]) == {"required_column"}


def test_opencost_allocations_flow_through_the_pipeline_with_their_own_cost(tmp_path: Path) -> None:
    import json as _json

    from typer.testing import CliRunner

    from reporting.cli import app

    sample = (
        Path(__file__).parent / "fixtures" / "k8s" / "opencost_swagger_allocation_example.raw.json"
    )
    (tmp_path / "alloc.json").write_bytes(sample.read_bytes())
    (tmp_path / "greenops.toml").write_text(
        '[organisation]\nname = "k8s"\n[[sites]]\nname = "kube"\ngrid_zone = "US-SRVC"\n'
        'timezone = "UTC"\n[[inputs]]\nkind = "opencost"\npath = "alloc.json"\nsite = "kube"\n'
        '[[owners]]\nmatch = { namespace = "^(?P<ns>.+)$" }\nteam = "{ns}"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--config", str(tmp_path / "greenops.toml"),
                                      "--from", "2023-01-01", "--to", "2023-12-31", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = _json.loads((out / "summary.json").read_text())
    allocations = [a for window in _json.loads(sample.read_text())["data"] for a in window.values()]
    assert summary["totals"]["cost"]["USD"] == pytest.approx(
        sum(a["totalCost"] for a in allocations)
    )
    [stats] = summary["inputs"]
    assert stats["rows_read"] == stats["rows_accepted"] == len(allocations)
    assert {t["team"] for t in summary["by_team"]} == {
        a["properties"]["namespace"] for a in allocations
    }
