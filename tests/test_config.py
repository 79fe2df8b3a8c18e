"""Config errors name the file and the key; the README's and the sample's configs load."""

from __future__ import annotations

from pathlib import Path

import pytest

from reporting.config import load_config
from reporting.errors import ConfigError
from reporting.pipeline import ingest

ROOT = Path(__file__).parent.parent
MINIMAL = """
[organisation]
name = "Lab"
[[sites]]
name = "a"
grid_zone = "SE"
[[inputs]]
kind = "slurm"
path = "x/*.psv"
site = "a"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "greenops.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, MINIMAL))
    assert config.resolve("x/*.psv") == tmp_path.resolve() / "x" / "*.psv"
    assert config.organisation.reporting_currency == "USD"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('grid_zone = "SE"', 'grid_zone = "SE"\npue = "high"'),
            r"sites\[0\]\.pue: .*number.*'high'",
        ),
        (('grid_zone = "SE"', 'grid_zone = "SE"\ngird = 1'), r"sites\[0\]\.gird: unknown key"),
        (('site = "a"', 'site = "b"'), r"inputs\[0\]\.site 'b' is not a \[\[sites\]\] name"),
        (('kind = "slurm"', 'kind = "lsf"'), r"inputs\[0\]\.kind: .*'lsf'"),
        (('name = "Lab"', ""), r"organisation\.name: required key is missing"),
        (
            ('grid_zone = "SE"', 'grid_zone = "SE"\npue = 1.2'),
            r"sites\[0\]: .*`pue` needs `pue_source`",
        ),
        (
            ('grid_zone = "SE"', 'grid_zone = "SE"\ntimezone = "Mars/Base"'),
            r"sites\[0\]\.timezone: unknown timezone",
        ),
    ],
)
def test_wrong_key_type_or_reference_names_file_and_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _write(tmp_path, MINIMAL.replace(*change, 1))
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_owner_rule_with_unknown_field_or_bad_regex(tmp_path: Path) -> None:
    bad_field = MINIMAL + '[[owners]]\nmatch = { colour = "x" }\nteam = "t"\n'
    with pytest.raises(ConfigError, match=r"owners\[0\]\.match: .*unknown field 'colour'"):
        load_config(_write(tmp_path, bad_field))
    bad_regex = MINIMAL + '[[owners]]\nmatch = { account = "(" }\nteam = "t"\n'
    with pytest.raises(ConfigError, match=r"owners\[0\]\.match: .*invalid regex"):
        load_config(_write(tmp_path, bad_regex))
    bad_group = MINIMAL + '[[owners]]\nmatch = { account = "^x" }\nmodel = "{name}"\n'
    with pytest.raises(ConfigError, match=r"owners\[0\]: .*\{name\}.*named group"):
        load_config(_write(tmp_path, bad_group))


def test_methodology_override_without_source_is_refused(tmp_path: Path) -> None:
    text = MINIMAL + "[methodology]\ngpu_max_w = 500\n"
    with pytest.raises(ConfigError, match=r"methodology: .*need a `source`"):
        load_config(_write(tmp_path, text))


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid TOML"):
        load_config(_write(tmp_path, "[organisation\n"))
    with pytest.raises(ConfigError, match=r"config file not found"):
        load_config(tmp_path / "nope.toml")


def test_unknown_grid_zone_and_gpu_model_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.psv").write_text("JobID|State|Start|End|Elapsed\n", encoding="utf-8")
    path = _write(tmp_path, MINIMAL.replace('"SE"', '"XX"'))
    with pytest.raises(
        ConfigError, match=r"greenops\.toml: sites\.a\.grid_zone: unknown zone 'XX'"
    ):
        ingest(load_config(path))
    text = MINIMAL.replace(
        'grid_zone = "SE"', 'grid_zone = "SE"\ngpu_types = { a100 = "A100-ULTRA" }'
    )
    with pytest.raises(ConfigError, match=r"sites\.a: GPU model 'A100-ULTRA' is not in"):
        ingest(load_config(_write(tmp_path, text)))


def test_sample_config_loads() -> None:
    config = load_config(ROOT / "sample_logs" / "greenops.toml")
    assert [s.name for s in config.sites] == ["atlas", "nordic", "helios"]
