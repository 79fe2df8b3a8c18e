from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from reporting.ingest.billing.common import CHARGE_COLUMNS
from reporting.schema import empty_usage
from tests.hostile import (
    SECRET,
    HostileRun,
    listener,
    notify_section,
    run_installation,
    smtp_server,
    write_installation,
)

FIXTURES = Path(__file__).parent / "fixtures"
HB_FIELDS = (
    (FIXTURES / "slurm" / "hb-jobinfo_generate_data.sh.txt")
    .read_text()
    .split("--format=")[1]
    .split()[0]
    .split(",")
)

HB_CONFIG = """
[organisation]
name = "Hábrók sample"

[[sites]]
name = "habrok"
grid_zone = "NL"
timezone = "Europe/Amsterdam"
gpu_types = {{ a100 = "A100-PCIE-40GB", v100 = "V100-PCIE-32GB" }}

[[inputs]]
kind = "slurm"
path = "{path}"
site = "habrok"
{extra}
"""


def hb_config(tmp_path: Path, *, header: bool = False, extra: str = "") -> Path:
    """A config reading a copy of the real hb-jobinfo sample (header-less ☃ dump, or the .psv)."""
    if header:
        name = "hb-jobinfo_sacct.DERIVED_parsable2_with_header.psv"
        inputs = extra
    else:
        name = "hb-jobinfo_sacct.txt"
        fields = ", ".join(f'"{f}"' for f in HB_FIELDS)
        inputs = f'delimiter = "☃"\nfields = [{fields}]\n{extra}'
    shutil.copy(FIXTURES / "slurm" / name, tmp_path / name)
    path = tmp_path / "greenops.toml"
    path.write_text(HB_CONFIG.format(path=name, extra=inputs), encoding="utf-8")
    return path


@pytest.fixture
def hb_config_path(tmp_path: Path) -> Path:
    return hb_config(tmp_path)


FOCUS_HEADER = [
    "BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "BillingAccountId",
    "BillingPeriodStart", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
    "ProviderName", "RegionId", "ServiceName", "ServiceCategory", "ConsumedQuantity",
    "ConsumedUnit", "ChargeDescription", "Tags", "x_InstanceType", "x_UsageType",
    "ResourceId", "PricingCategory", "CommitmentDiscountStatus",
]  # fmt: skip


def focus_rows(rows: list[dict[str, str]]) -> str:
    """A small FOCUS CSV: one EC2 usage line per dict, with the dict's values overriding."""
    lines = []
    for row in rows:
        values = {
            "EffectiveCost": row.get("BilledCost", "0"), "ListCost": "", "BillingCurrency": "USD",
            "BillingAccountId": "acct", "BillingPeriodStart": "2026-07-01T00:00:00Z",
            "ChargePeriodStart": "2026-07-01T00:00:00Z", "ChargePeriodEnd": "2026-07-01T10:00:00Z",
            "ChargeCategory": "Usage", "ProviderName": "AWS", "RegionId": "us-east-1",
            "ServiceName": "Amazon Elastic Compute Cloud", "ServiceCategory": "Compute",
            "ConsumedQuantity": "10", "ConsumedUnit": "Hours", "ChargeDescription": "",
            "Tags": "", "x_InstanceType": "", "x_UsageType": "", "ResourceId": "",
            "PricingCategory": "Standard", "CommitmentDiscountStatus": "", **row,
        }  # fmt: skip
        lines.append([values[c] for c in FOCUS_HEADER])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(FOCUS_HEADER)
    writer.writerows(lines)
    return text.getvalue()


T = pd.Timestamp


def usage_frame(rows: list[dict]) -> pd.DataFrame:
    """Canonical usage rows (one-hour Slurm runs), each dict overriding the defaults."""
    base = {"source": "slurm", "source_file": "a.psv", "site": "c", "state": "COMPLETED",
            "started_at": T("2026-07-01T00:00Z"), "ended_at": T("2026-07-01T01:00Z"),
            "duration_s": 3600.0, "n_nodes": 1.0, "n_cpus": 8.0, "n_gpus": 1.0,
            "measured_energy_kwh": None, "lines_merged": 2, "raw": "raw"}  # fmt: skip
    frame = pd.DataFrame([{**base, "line": i + 1, "usage_id": f"u{i}", **r} for i, r in enumerate(rows)])  # fmt: skip
    return pd.concat([empty_usage(), frame], ignore_index=True)


def charge_frame(rows: list[dict]) -> pd.DataFrame:
    """Canonical charges (one-hour USD usage lines), each dict overriding the defaults."""
    base = {"source_file": "f.csv", "charge_period_start": T("2026-07-01T00:00Z"),
            "charge_period_end": T("2026-07-01T01:00Z"), "charge_category": "Usage",
            "billed_cost": 1.0, "currency": "USD"}  # fmt: skip
    frame = pd.DataFrame([{**base, "line": i + 1, "charge_id": f"c{i}", **r} for i, r in enumerate(rows)])  # fmt: skip
    return frame.reindex(columns=CHARGE_COLUMNS)


@pytest.fixture(scope="session")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRun]:
    """One `greenops run` over inputs whose every free-text field is a payload (tests/hostile.py),
    with a listener the payload URLs point at, mailing owners through a real SMTP server that
    requires the password SECRET (from the environment); shared by the security tests."""
    with listener() as (base_url, requests), smtp_server(SECRET.encode()) as (port, box):
        folder = tmp_path_factory.mktemp("hostile")
        write_installation(folder, base_url, notify_section(port, 'password_env = "SMTP_PW"'))
        out, code, output = run_installation(folder, "--verbose", env={"SMTP_PW": SECRET})
        yield HostileRun(folder, out, code, output, requests, base_url, box.messages,
                         box.passwords)  # fmt: skip


@pytest.fixture(scope="session")
def demo_out_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`greenops demo` on sample_logs/, run once per session (the installed console script)."""
    out = tmp_path_factory.mktemp("demo") / "out"
    greenops = Path(sys.executable).parent / "greenops"
    result = subprocess.run(
        [str(greenops), "demo", "--out", str(out)],
        check=False,
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return out


# --- running in parallel (pytest-xdist: `make test` runs `-n 2 --dist loadgroup`) ----------------


@pytest.hookimpl(tryfirst=True)  # before xdist turns the marks into test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests sharing a module- or session-scoped fixture of ours (the demo run, the hostile run,
    a rendered PDF...) are put in one xdist group, so that each shared fixture is built once, on
    one worker; every other test is scheduled on its own. Without xdist the marks do nothing."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    parent: dict[str, str] = {}  # union-find over fixtures: tests link the fixtures they share

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    shared = {item.nodeid: _shared_fixtures(item) for item in items}
    for keys in shared.values():
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    for item in items:
        if keys := shared[item.nodeid]:
            item.add_marker(pytest.mark.xdist_group(root(keys[0])))
    # Longest work first: xdist hands out the groups (most tests first), then single tests in
    # this order, so the modules whose tests each run the whole pipeline start early instead of
    # leaving one worker busy alone at the end. Whole modules move, so module fixtures stay built
    # once; the order of tests within a module is kept.
    items.sort(key=lambda item: -_MODULE_WEIGHT.get(item.path.stem, 0))


# Measured cost of each module (seconds of a `make test` worker, rounded; `--durations`), for the
# order above only: a missing or stale entry makes the suite slower, never wrong.
_MODULE_WEIGHT = {
    "test_nightly": 1500, "test_bad_inputs": 690, "test_cloud": 480, "test_streaming": 400,
    "test_properties": 380, "test_telemetry_pipeline": 260, "test_end_to_end": 240,
    "test_cloud_nodes": 200, "test_quarterly_report": 200, "test_docs": 190,
    "test_validation_formats": 190, "test_demo": 180, "test_validation_carried": 150,
    "test_secrets": 120, "test_cli": 80, "test_serving": 70, "test_confinement": 70,
    "test_fuzz_readers": 70, "test_validation": 60, "test_ledger": 55, "test_audit_cloud": 55,
    "test_limits": 45, "test_k8s_sample": 45, "test_opencost": 40,
}  # fmt: skip


def _shared_fixtures(item: pytest.Item) -> list[str]:
    """The module- and session-scoped fixtures of tests/ that the test uses, directly or not."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    keys = []
    for name in item.fixturenames:  # type: ignore[attr-defined]
        for definition in info.name2fixturedefs.get(name, ()):
            module = getattr(definition.func, "__module__", "")
            if definition.scope in ("module", "session") and module.startswith("tests."):
                keys.append(f"{module}.{name}")
    return keys


def pytest_collection_finish(session: pytest.Session) -> None:
    """Say so when xdist ignored the groups (pytest-xdist#1386: loadgroup has no effect with
    pytest 9.2): the tests still pass, but shared fixtures are then built on every worker."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    if any(i.get_closest_marker("xdist_group") and "@" not in i.nodeid for i in session.items):
        session.config.issue_config_time_warning(
            pytest.PytestWarning("xdist_group marks were ignored: see pytest-xdist#1386"), 2
        )
