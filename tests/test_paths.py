"""Paths: every path in the config resolves from the config file's folder, whatever the working
directory; names made from data cannot leave the output folder (the outbox: see also
tests/test_notify.py::test_outbox_names_are_safe_whatever_the_recipient, and the whole
pipeline in tests/test_hostile_output.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from reporting import notify
from reporting.cli import _smtp_password
from reporting.config import load_config
from reporting.intake import all_input_files
from reporting.pipeline import ledger_root
from tests.hostile import PAYLOADS, SECRET, notify_section, write_installation
from tests.test_notify import finding, findings, settings


def test_config_paths_resolve_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    write_installation(site, "http://127.0.0.1:9", notify_section(25, 'password_file = "pw"'))
    (site / "pw").write_text(SECRET)
    config_path = site / "greenops.toml"
    config_path.write_text(config_path.read_text() + '\n[ledger]\npath = "state/ledger"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "slurm").mkdir()  # a decoy: the same relative path under the working directory
    (elsewhere / "slurm" / "decoy.psv").write_text("JobID|State\n")
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../site/greenops.toml"))  # relative to the working directory
    files = all_input_files(config)
    assert sorted(files) == [
        "cloud/focus.csv",
        "k8s/alloc.json",
        "serving/volume.csv",
        "slurm/sacct.psv",
    ]
    assert all(path.is_relative_to(site) for path in files.values())
    assert ledger_root(config, Path("out")) == site / "state" / "ledger"
    assert config.resolve(str(config.notify.directory)) == site / "owners.csv"
    assert _smtp_password(config, dry_run=False) == SECRET  # password_file, from site/


def test_outbox_files_stay_in_the_outbox_whatever_the_addresses(tmp_path: Path) -> None:
    hostile_users = ["../../../escape", "..", "a/b", "/etc/cron.d/x", PAYLOADS["crlf_header"]]
    rows = [finding(n, user=user) for n, user in enumerate(hostile_users)]
    people = pd.DataFrame(
        [(user, "", "nlp", "lead@example.org") for user in hostile_users],
        columns=notify.DIRECTORY_COLUMNS,
    )
    result = notify.notify_findings(
        findings(*rows), settings(25, admin_address="ops@example.org",
                                  weekly_summary_weekday="monday"),
        state_dir=tmp_path / "ledger", out_dir=tmp_path / "out", run_date=date(2026, 9, 28),
        dry_run=True, password=None, directory=people, organisation="Lab",
    )  # fmt: skip
    outbox = (tmp_path / "out" / "outbox").resolve()
    assert result.outbox and all(p.resolve().parent == outbox for p in result.outbox)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert sorted(written) == sorted(result.outbox)
