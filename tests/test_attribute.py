"""Attribution on runs whose numbers can be worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from reporting.attribute import attribute_usage
from reporting.config import load_config
from reporting.pipeline import ingest

HEADER = "JobID|JobName|User|Account|Partition|NNodes|NCPUS|State|Submit|Start|End|Elapsed|TotalCPU|ReqMem|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw"
CONFIG = """
[organisation]
name = "Lab"
[[sites]]
name = "lab"
grid_zone = "SE"
timezone = "UTC"
gpu_types = {{ a100 = "A100-SXM4-40GB" }}
rate_card = {{ currency = "EUR", gpu_hour = 2.0, energy_per_kwh = 0.1, source = "test card" }}
{site_extra}
[sites.methodology]
gpu_min_w = 100
gpu_max_w = 400
cpu_min_w_per_thread = 1
cpu_max_w_per_thread = 3
memory_w_per_gb = 0.5
pue = 1.5
grid_intensity_g_per_kwh = 100
source = "hand-computable test values"
[[inputs]]
kind = "slurm"
path = "dump.psv"
site = "lab"
[[owners]]
match = {{ account = "^nlp$" }}
team = "nlp"
[[owners]]
match = {{ job_name = "^train-(?P<model>.+)$" }}
model = "{{model}}"
phase = "training"
"""
# 2 GPUs at 50 % (gres/gpuutil sums 100 % over two GPUs), 4 CPUs at 50 %, 10 GB, 2 h, across midnight.
JOB = "1|train-llm|alice|nlp|gpu|1|4|COMPLETED|2026-07-01T22:00:00|2026-07-01T23:00:00|2026-07-02T01:00:00|02:00:00|04:00:00|10G|cpu=4,gres/gpu:a100=2,gres/gpu=2,mem=10G,node=1||"
STEP = "1.batch|batch||||1|4|COMPLETED|2026-07-01T23:00:00|2026-07-01T23:00:00|2026-07-02T01:00:00|02:00:00|04:00:00||cpu=4,gres/gpu=2,mem=10G,node=1|gres/gpuutil=100|0"
GPU_W, CPU_W, MEMORY_W = 2 * (100 + 0.5 * 300), 4 * (1 + 0.5 * 2), 10 * 0.5
IT_KWH = (GPU_W + CPU_W + MEMORY_W) * 2 / 1000


def _attribute(tmp_path: Path, lines: list[str], site_extra: str = ""):
    (tmp_path / "dump.psv").write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    (tmp_path / "c.toml").write_text(CONFIG.format(site_extra=site_extra), encoding="utf-8")
    config = load_config(tmp_path / "c.toml")
    return attribute_usage(ingest(config).usage, config, "test-run")


def test_modelled_energy_carbon_cost_by_hand(tmp_path: Path) -> None:
    ledger = _attribute(tmp_path, [JOB, STEP]).ledger
    assert ledger["it_energy_kwh"].sum() == pytest.approx(IT_KWH)  # 1.026 kWh
    assert ledger["gpu_energy_kwh"].sum() == pytest.approx(GPU_W * 2 / 1000)
    assert ledger["cpu_energy_kwh"].sum() == pytest.approx(CPU_W * 2 / 1000)
    assert ledger["memory_energy_kwh"].sum() == pytest.approx(MEMORY_W * 2 / 1000)
    assert ledger["facility_energy_kwh"].sum() == pytest.approx(IT_KWH * 1.5)
    assert ledger["co2e_location_kg"].sum() == pytest.approx(IT_KWH * 1.5 * 100 / 1000)
    assert ledger["co2e_market_kg"].sum() == pytest.approx(ledger["co2e_location_kg"].sum())
    assert ledger["co2e_embodied_kg"].sum() == pytest.approx(
        4 * 2544 / (8 * 4 * 8760)
    )  # 4 GPU-hours
    assert ledger["cost"].sum() == pytest.approx(4 * 2.0 + IT_KWH * 1.5 * 0.1)
    assert set(ledger["currency"]) == {"EUR"}
    assert set(ledger["energy_method"]) == {"modelled"}
    assert (ledger["team"].unique(), ledger["model"].unique(), ledger["phase"].unique()) == (
        ["nlp"],
        ["llm"],
        ["training"],
    )
    assert ledger["owner"].unique().tolist() == ["unallocated"]


def test_a_run_across_midnight_is_split_by_its_time_each_day(tmp_path: Path) -> None:
    ledger = _attribute(tmp_path, [JOB, STEP]).ledger
    assert [str(d) for d in ledger["day"]] == ["2026-07-01", "2026-07-02"]
    assert ledger["slice_ratio"].tolist() == pytest.approx([0.5, 0.5])
    assert ledger["it_energy_kwh"].tolist() == pytest.approx([IT_KWH / 2, IT_KWH / 2])


def test_plausible_measured_energy_wins_and_implausible_is_rejected_visibly(tmp_path: Path) -> None:
    measured = JOB + "7200000"  # 2 kWh over 2 h on one node: 1,000 W, plausible
    ledger = _attribute(tmp_path, [measured]).ledger
    assert ledger["it_energy_kwh"].sum() == pytest.approx(2.0)
    assert set(ledger["energy_method"]) == {"measured"}
    parts = ledger[["gpu_energy_kwh", "cpu_energy_kwh", "memory_energy_kwh"]].sum(axis=1)
    assert parts.sum() == pytest.approx(2.0)  # a measured total is split in the model's proportions
    absurd = JOB.replace("1|train", "2|train") + "18446744073709551614"  # counter fault
    ledger = _attribute(tmp_path, [absurd]).ledger
    assert set(ledger["energy_method"]) == {"modelled"}
    assert ledger["energy_note"].str.contains("rejected as implausible").all()


def test_default_gpu_utilisation_is_named_when_no_telemetry(tmp_path: Path) -> None:
    attribution = _attribute(tmp_path, [JOB])  # no step: no gres/gpuutil
    ledger = attribution.ledger
    assert ledger["it_energy_kwh"].sum() == pytest.approx((2 * 400 + CPU_W + MEMORY_W) * 2 / 1000)
    assert set(ledger["gpu_util_factor_id"]) == {"method:default_gpu_util_ratio"}
    factor = next(f for f in attribution.factors if f.factor_id == "method:default_gpu_util_ratio")
    assert factor.is_default and factor.value == 1.0


def test_contractual_instruments_lower_market_based_only(tmp_path: Path) -> None:
    instruments = """
residual_mix_g_co2e_per_kwh = 200
residual_mix_source = "test residual mix"
[[sites.instruments]]
kind = "PPA"
share = 0.75
g_co2e_per_kwh = 0
source = "test PPA"
"""
    ledger = _attribute(tmp_path, [JOB, STEP], instruments).ledger
    facility = IT_KWH * 1.5
    assert ledger["co2e_location_kg"].sum() == pytest.approx(facility * 100 / 1000)
    assert ledger["co2e_market_kg"].sum() == pytest.approx(facility * (0.25 * 200) / 1000)


def test_every_ledger_row_names_its_factors(tmp_path: Path) -> None:
    attribution = _attribute(tmp_path, [JOB, STEP])
    ids = {f.factor_id for f in attribution.factors}
    row = attribution.ledger.iloc[0]
    for column in (
        "grid_factor_id",
        "pue_factor_id",
        "market_factor_id",
        "embodied_factor_id",
        "memory_factor_id",
    ):
        assert row[column] in ids, column
    assert all(part in ids for part in row["gpu_power_factor_id"].split(";"))
