"""dcgm-exporter scrapes and Prometheus query dumps → GPU samples; bad lines quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from reporting.ingest.dcgm import read_dcgm
from reporting.telemetry import gpu_intervals

FIXTURES = Path(__file__).parent / "fixtures" / "k8s"
SCRAPE = pd.Timestamp("2024-05-01T00:00:00Z")


def conserved(read) -> None:
    accepted = read.samples.groupby("source_file").size()
    quarantined = read.quarantine.groupby("source_file").size()
    for name, rows in read.rows_read.items():
        assert rows == accepted.get(name, 0) + quarantined.get(name, 0), name


def test_real_datadog_fixture() -> None:
    paths = {
        "metrics.txt": FIXTURES / "datadog_dcgm_fixture_metrics.txt",
        "remap.txt": FIXTURES / "datadog_dcgm_fixture_label_remap.txt",
    }
    read = read_dcgm(paths, scrape_times={"metrics.txt": SCRAPE, "remap.txt": SCRAPE})
    conserved(read)
    assert read.rows_read == {"metrics.txt": 4, "remap.txt": 1}
    assert read.ignored == {"metrics.txt": 34, "remap.txt": 0}
    samples = read.samples.set_index(["source_file", "metric"])
    power = samples.loc[("metrics.txt", "power_w")]
    assert power["value"] == 8.969 and power["host"] == "424773df46e0"
    assert power["model"] == "Tesla T4" and power["gpu"] == "0" and power["pod"] is None
    assert samples.loc[("metrics.txt", "energy_mj"), "value"] == 128996013
    assert samples.loc[("remap.txt", "gpu_util_pct"), "pod"] == "bar"
    assert samples.loc[("remap.txt", "gpu_util_pct"), "namespace"] == "foo"
    # the fixture's dummy `DCGM_FI_PROF_GR_ENGINE_ACTIVE 0` has no GPU labels
    assert read.quarantine[["line", "check"]].values.tolist() == [[95, "labels"]]


def test_scrape_series_with_timestamps_and_exported_labels(tmp_path: Path) -> None:
    labels = 'gpu="1",UUID="GPU-x",modelName="H100",Hostname="n1",pod="dcgm-exporter-abc",'
    labels += 'namespace="gpu-operator",exported_pod="llm-0",exported_namespace="inf"'
    lines = [
        f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} 300 1714521600000",
        f"DCGM_FI_DEV_POWER_USAGE{{{labels}}} 300 1714525200000",
        'DCGM_FI_DEV_POWER_USAGE{gpu="1",UUID="GPU-x",Hostname="n1"} abc 1714521600000',
        'DCGM_FI_DEV_POWER_USAGE{gpu="1",UUID="GPU-x",Hostname="n1"} 300',
        'DCGM_FI_DEV_GPU_UTIL{gpu="1" UUID="GPU-x"} 3 1714521600000',
        "this is not prometheus",
        'DCGM_FI_DEV_SM_CLOCK{gpu="1",Hostname="n1"} 1410',
    ]
    path = tmp_path / "scrape.prom"
    path.write_text("\n".join(lines) + "\n")
    read = read_dcgm({"scrape.prom": path})
    conserved(read)
    assert read.rows_read == {"scrape.prom": 6} and read.ignored == {"scrape.prom": 1}
    assert sorted(read.quarantine["check"]) == ["syntax", "syntax", "timestamp", "value"]
    assert read.samples["pod"].tolist() == ["llm-0", "llm-0"]
    assert read.samples["namespace"].tolist() == ["inf", "inf"]
    intervals, _ = gpu_intervals(read.samples, max_gap_s=3600)
    assert intervals["energy_kwh"].sum() == pytest.approx(0.3)  # 300 W for one hour


def test_query_range_dump(tmp_path: Path) -> None:
    metric = {"__name__": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Hostname": "n1", "gpu": "0",
              "UUID": "GPU-a", "exported_pod": "", "pod": ""}  # fmt: skip
    document = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": metric, "values": [[1714521600, "0"], [1714521660, "3600000"], [1]]},
                {"metric": {"Hostname": "n1", "gpu": "0"}, "values": [[1714521600, "1"]]},
                {"metric": {"__name__": "DCGM_FI_DEV_FB_USED"}, "values": [[1714521600, "1"]]},
            ],
        },
    }
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(document))
    broken = tmp_path / "broken.json"
    broken.write_text('{"status": "error"}')
    read = read_dcgm({"dump.json": path, "broken.json": broken})
    conserved(read)
    assert read.rows_read == {"dump.json": 4, "broken.json": 1}
    assert read.ignored["dump.json"] == 1
    assert read.samples["pod"].isna().all()  # pod="" means no pod
    assert read.samples["timestamp"].iloc[1] == pd.Timestamp("2024-05-01T00:01:00Z")
    assert sorted(read.quarantine["check"]) == ["json_shape", "labels", "syntax"]
    intervals, _ = gpu_intervals(read.samples)
    assert intervals["energy_kwh"].tolist() == pytest.approx([0.001])  # 3.6e6 mJ = 1 Wh


def test_unreadable_file_is_a_file_error(tmp_path: Path) -> None:
    read = read_dcgm({"gone.prom": tmp_path / "gone.prom"})
    assert read.rows_read == {"gone.prom": 0} and "gone.prom" in read.file_errors
    assert read.samples.empty and read.quarantine.empty


def test_the_exporters_own_pod_is_not_charged_for_the_gpus(tmp_path: Path) -> None:
    # Scraped without honor_labels or pod mapping: `pod` names the dcgm-exporter pod itself.
    own = 'gpu="0",UUID="GPU-y",Hostname="n2",pod="nvidia-dcgm-exporter-7xk2p",namespace="gpu-operator"'
    mapped = 'gpu="1",UUID="GPU-z",Hostname="n2",pod="llm-1",namespace="inf"'
    path = tmp_path / "scrape.prom"
    path.write_text(
        f"DCGM_FI_DEV_POWER_USAGE{{{own}}} 250 1714521600000\n"
        f"DCGM_FI_DEV_POWER_USAGE{{{mapped}}} 250 1714521600000\n"
    )
    read = read_dcgm({"scrape.prom": path})
    conserved(read)
    assert read.samples["pod"].tolist() == [None, "llm-1"]
    assert read.samples["namespace"].tolist() == [None, "inf"]
