"""`greenops demo` on sample_logs/: a golden summary.json and the generator's known bad lines."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from reporting.ledger import read_ledger

ROOT = Path(__file__).parent.parent
GREENOPS = Path(sys.executable).parent / "greenops"
GOLDEN = Path(__file__).parent / "snapshots" / "demo_summary.json"
EXPECTED = json.loads((ROOT / "sample_logs" / "slurm" / "EXPECTED.json").read_text())
CLOUD_EXPECTED = json.loads((ROOT / "sample_logs" / "cloud" / "EXPECTED.json").read_text())
TELEMETRY_EXPECTED = json.loads((ROOT / "sample_logs" / "telemetry" / "EXPECTED.json").read_text())
SERVING_EXPECTED = json.loads((ROOT / "sample_logs" / "serving" / "EXPECTED.json").read_text())
SERVING_CHECK_FOR_KIND = {"negative_count": "number", "repeated_model_day": "duplicate"}
CHECK_FOR_KIND = {
    "missing_field": {
        "field_count",
        "unparseable",
    },  # with --parsable's trailing '|' a lost field shifts the rest
    "end_before_start": {"end_before_start"},
    "unknown_gpu": {"unknown_gpu_model"},
    "non_utf8": {"encoding"},
    "bad_duration": {"unparseable"},
}


@pytest.fixture(scope="module")
def demo_out(demo_out_session: Path) -> Path:
    return demo_out_session  # one demo run per test session, shared with the report tests


def test_summary_matches_the_golden_file(demo_out: Path) -> None:
    summary = json.loads((demo_out / "summary.json").read_text())
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    assert summary == json.loads(GOLDEN.read_text()), (
        "review the diff; UPDATE_GOLDEN=1 rewrites the snapshot"
    )


def test_every_sample_line_is_accounted_for(demo_out: Path) -> None:
    summary = json.loads((demo_out / "summary.json").read_text())
    inputs = {i["source_file"].removeprefix("slurm/"): i for i in summary["inputs"]}
    cloud = {f"cloud/{name}" for name in CLOUD_EXPECTED["files"]}
    k8s = {i for i in inputs if i.startswith("k8s/")}
    assert len(k8s) == 3  # one OpenCost response per month of the quarter
    telemetry = {f"telemetry/{site}/{name}" for site in ("atlas", "helios")
                 for name in TELEMETRY_EXPECTED[site]["files"]}  # fmt: skip
    served = {f"serving/{name}" for name in SERVING_EXPECTED["files"]}
    assert set(inputs) == set(EXPECTED["files"]) | cloud | k8s | telemetry | served
    for name, expected in EXPECTED["files"].items():
        stats = inputs[name]
        assert stats["rows_read"] == expected["data_lines"], name
        assert stats["rows_accepted"] + stats["rows_quarantined"] == stats["rows_read"], name


def test_dcgm_telemetry_is_read_whole_and_measures_the_covered_jobs(demo_out: Path) -> None:
    summary = json.loads((demo_out / "summary.json").read_text())
    inputs = {i["source_file"]: i for i in summary["inputs"]}
    for site in ("atlas", "helios"):
        for name, expected in TELEMETRY_EXPECTED[site]["files"].items():
            stats = inputs[f"telemetry/{site}/{name}"]
            assert stats["rows_read"] == stats["rows_accepted"] == expected["points"], name
    ledger = read_ledger(demo_out / "ledger", date(2026, 7, 1), date(2026, 9, 30))
    atlas = ledger[ledger["site"] == "atlas"]
    job_ids = atlas["usage_id"].str.split(":").str[2]
    for job in TELEMETRY_EXPECTED["atlas"]["jobs"]:  # whole-node jobs wholly covered
        measured = atlas[job_ids == job["job_id"]]
        assert set(measured["energy_method"]) == {"telemetry"}, job["job_name"]
        # EXPECTED gives these jobs alone; here jobs ending or starting on the same hosts within
        # a scrape interval take their seconds' share.
        expected_kwh = job["telemetry_energy_kwh"]
        assert measured["gpu_energy_kwh"].sum() == pytest.approx(expected_kwh, rel=1e-4)
    helios = ledger[ledger["site"] == "helios"]["gpu_energy_telemetry_kwh"].sum()
    # Pod-labelled telemetry inside the pods' windows (less than all pod-labelled intervals).
    assert 0.99 * TELEMETRY_EXPECTED["helios"]["pod_energy_kwh"] <= helios
    assert helios <= TELEMETRY_EXPECTED["helios"]["pod_energy_kwh"] + 1e-6
    assert summary["gpu_energy"]["telemetry_share"] > 0


def test_the_cloud_export_is_read_whole_and_reconciles_to_the_generator(demo_out: Path) -> None:
    summary = json.loads((demo_out / "summary.json").read_text())
    inputs = {i["source_file"]: i for i in summary["inputs"]}
    for name, expected in CLOUD_EXPECTED["files"].items():
        stats = inputs[f"cloud/{name}"]
        assert stats["rows_read"] == stats["rows_accepted"] == expected["rows"]
        for currency, totals in expected["totals"].items():
            assert stats["cost_in"][currency]["effective"] == pytest.approx(
                totals["EffectiveCost"], abs=0.01
            )
    assert all(r["reconciled"] for r in summary["cloud"]["reconciliation"])
    scopes = {row["scope"] for row in summary["by_scope"]}
    assert scopes == {"2", "3.1"}  # on-prem and cloud side by side


def test_each_deliberate_bad_line_is_quarantined_with_the_right_check(demo_out: Path) -> None:
    quarantine = pd.read_csv(demo_out / "quarantine.csv")
    for name, expected in EXPECTED["files"].items():
        mine = quarantine[quarantine["source_file"] == f"slurm/{name}"].set_index("line")
        for bad in expected["bad_lines"]:
            assert mine.loc[bad["line"], "check"] in CHECK_FOR_KIND[bad["kind"]], (name, bad)
    # Everything else quarantined is a step of one of those jobs, never a good job.
    quarantine = quarantine[~quarantine["source_file"].str.startswith("serving/")]
    assert set(quarantine["check"]) <= {c for s in CHECK_FOR_KIND.values() for c in s} | {
        "job_quarantined",
        "orphan_step",
    }


def test_serving_volume_is_read_whole_and_gives_each_inference_model_an_intensity(
    demo_out: Path,
) -> None:
    summary = json.loads((demo_out / "summary.json").read_text())
    inputs = {i["source_file"]: i for i in summary["inputs"]}
    quarantine = pd.read_csv(demo_out / "quarantine.csv")
    for name, expected in SERVING_EXPECTED["files"].items():
        stats = inputs[f"serving/{name}"]
        assert stats["rows_read"] == expected["data_lines"]
        assert stats["rows_quarantined"] == len(expected["bad_lines"])
        mine = quarantine[quarantine["source_file"] == f"serving/{name}"].set_index("line")
        for kind, line in expected["bad_lines"].items():
            assert mine.loc[line, "check"] == SERVING_CHECK_FOR_KIND[kind], (kind, line)
    block = summary["intensity"]["serving_volume"]
    assert block["available"] is True and block["inference_models_without_volume"] == []
    ledger = read_ledger(demo_out / "ledger", date(2026, 7, 1), date(2026, 9, 30))
    inference = ledger[ledger["phase"] == "inference"].groupby("model")["co2e_location_kg"].sum()
    for model in block["models"]:
        assert model["location_kg_per_1m_tokens"] == pytest.approx(
            inference[model["model"]] / (model["tokens"] / 1e6), abs=1e-6
        )


def test_implausible_nordic_energy_is_rejected_and_missing_energy_is_modelled(
    demo_out: Path,
) -> None:
    ledger = pq.read_table(
        demo_out / "ledger", columns=["usage_id", "site", "energy_method", "energy_note"]
    ).to_pandas()
    nordic = ledger[ledger["site"] == "nordic"].drop_duplicates("usage_id")
    rejected = nordic["energy_note"].fillna("").str.contains("rejected as implausible")
    implausible = sum(f["energy_flags"].get("implausible", 0) for f in EXPECTED["files"].values())
    assert rejected.sum() == implausible
    assert (nordic["energy_method"] == "measured").sum() > 0.8 * len(nordic)


def test_report_files_are_written(demo_out: Path) -> None:
    assert (demo_out / "report.pdf").read_bytes().startswith(b"%PDF-")
    html = (demo_out / "report.html").read_text()
    for team in ("foundation-models", "inference-platform", "unallocated"):
        assert team in html


def test_the_pdf_links_to_the_data_docs_beside_it(demo_out: Path) -> None:
    """The PDF's links are the HTML's: relative to the report, never into the installed package
    (a file:// URI would name the install path and change with it)."""
    from pypdf import PdfReader

    uris = [
        annotation.get_object()["/A"]["/URI"]
        for page in PdfReader(demo_out / "report.pdf").pages
        for annotation in page.get("/Annots") or []
        if "/URI" in annotation.get_object().get("/A", {})
    ]
    assert "data_docs/index.html" in uris
    assert not [uri for uri in uris if uri.startswith("file:")]
