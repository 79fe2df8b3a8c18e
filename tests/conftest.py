from __future__ import annotations

import shutil
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
