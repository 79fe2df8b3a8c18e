"""Config errors name the file and the key; the README's and the sample's configs load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reporting.cli import app
from reporting.config import load_config
from reporting.errors import ConfigError
from reporting.pipeline import ingest
from reporting.site_params import check_config, parameters
from tests.conftest import usage_frame

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


SOURCE = 'source = "lab"\n'
GLOBAL, SITE = "[methodology]\n", "[sites.methodology]\n"


@pytest.mark.parametrize(
    ("site_keys", "extra", "message"),
    [
        (
            "",
            "[validation]\nsum_min_ratio = 3\nsum_max_ratio = 2\n",
            (
                r"validation: sum_min_ratio = 3 is greater than sum_max_ratio = 2 \(.*\): "
                r"set sum_min_ratio at most sum_max_ratio, or swap the two values"
            ),
        ),
        (  # against the default maximum (2)
            "",
            "[validation]\nsum_min_ratio = 2.5\n",
            r"validation: sum_min_ratio = 2\.5 is greater than sum_max_ratio = 2 ",
        ),
        (
            "",
            GLOBAL + "gpu_min_w = 500\ngpu_max_w = 400\n" + SOURCE,
            r"methodology: gpu_min_w = 500 W is greater than gpu_max_w = 400 W",
        ),
        (
            "",
            GLOBAL + "cpu_min_w_per_thread = 9\ncpu_max_w_per_thread = 3\n" + SOURCE,
            r"methodology: cpu_min_w_per_thread = 9 W is greater than cpu_max_w_per_thread = 3 W",
        ),
        (  # split over levels: the site's idle value above the global full-load value
            SITE + "gpu_min_w = 200\n" + SOURCE,
            GLOBAL + "gpu_max_w = 150\n" + SOURCE,
            (
                r"sites\.a\.methodology\.gpu_min_w = 200 W is greater than methodology\."
                r"gpu_max_w = 150 W \(idle and full-load power per generic-gpu GPU, site a\)"
            ),
        ),
        (  # an override against the packaged value of the site's GPU model
            'gpu_model = "T4"\n' + SITE + "gpu_min_w = 100\n" + SOURCE,
            "",
            (
                r"sites\.a\.methodology\.gpu_min_w = 100 W is greater than the full-load power "
                r"of T4 in reporting/data/gpu_power\.csv = 70 W"
            ),
        ),
    ],
)
def test_a_minimum_above_its_maximum_is_refused_in_one_line(
    tmp_path: Path, site_keys: str, extra: str, message: str
) -> None:
    text = MINIMAL.replace('grid_zone = "SE"\n', 'grid_zone = "SE"\n' + site_keys) + extra
    path = _write(tmp_path, text)
    result = CliRunner().invoke(app, ["validate", "--config", str(path)])
    assert result.exit_code == 1, result.output
    # one error line (in-process, pytest's capture may add library import warnings above it)
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert line.startswith(f"Error: {path}: ") and "Traceback" not in result.output
    assert re.search(message, line), line


def test_an_override_that_does_not_fit_a_gpu_model_read_from_the_data_is_refused(
    tmp_path: Path,
) -> None:
    """Only the jobs name the T4 here: the generic model passes the config check, the T4 fails
    when its parameters are resolved, naming the file and the key."""
    config = load_config(_write(tmp_path, MINIMAL.replace('"a"', '"c"') + (
        '[methodology]\ngpu_min_w = 100\nsource = "lab"\n'
    )))  # fmt: skip
    check_config(config)  # generic-gpu: 100 W ≤ 200 W
    with pytest.raises(ConfigError, match=(
        rf"^{re.escape(str(config.config_file))}: methodology\.gpu_min_w = 100 W is greater than "
        r"the full-load power of T4 in reporting/data/gpu_power\.csv = 70 W \(idle and full-load "
        r"power per T4 GPU, site c\)"
    )):  # fmt: skip
        parameters(usage_frame([{"gpu_model": "T4"}]), config)
