from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
