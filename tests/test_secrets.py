"""The SMTP password never leaves the login. It is used against real aiosmtpd servers (one that
accepts it: the shared hostile run, password from the environment; one that refuses it:
password from a file, logs at DEBUG as JSON), then every file the runs wrote, everything they
printed and every e-mail sent is searched for it. Misplaced secrets are not echoed either.

`--dry-run` never reads the password, so the outbox's .eml files cannot hold it; the e-mails
searched here are the ones the server received."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reporting.audit_config import Notify
from reporting.cli import app
from reporting.errors import ConfigError
from reporting.notify import read_password
from tests.hostile import (
    SECRET,
    HostileRun,
    notify_section,
    run_installation,
    smtp_server,
    write_installation,
)


def _leaks(folder: Path, *texts: str | bytes) -> list[str]:
    """Files under `folder` and texts that hold the secret (named by path or position)."""
    needle = SECRET.encode()
    found = [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]
    encoded = [t.encode() if isinstance(t, str) else t for t in texts]
    return found + [f"text {n}" for n, text in enumerate(encoded) if needle in text]


def test_a_run_that_logs_in_leaks_nothing(hostile_run: HostileRun) -> None:
    assert hostile_run.exit_code == 0 and hostile_run.mails  # it logged in and sent
    assert set(hostile_run.passwords) == {SECRET.encode()}
    assert _leaks(hostile_run.folder, hostile_run.output, *hostile_run.mails) == []
    assert list(hostile_run.out.glob("runs/*.json"))  # the manifests were there to search


def test_a_refused_login_leaks_nothing(tmp_path: Path) -> None:
    with smtp_server(password=None) as (port, box):  # refuses every login
        write_installation(tmp_path, "http://127.0.0.1:9",
                           notify_section(port, 'password_file = "secrets/smtp"'))  # fmt: skip
        (tmp_path / "secrets").mkdir()
        (tmp_path / "secrets" / "smtp").write_text(SECRET + "\n")
        out, code, printed = run_installation(tmp_path, "--verbose", "--log-format", "json")
    assert code == 1 and "login as 'greenops' failed (535" in printed
    assert '"level": "DEBUG"' in printed or '"level": "INFO"' in printed
    assert set(box.passwords) == {SECRET.encode()} and box.messages == []
    (tmp_path / "secrets" / "smtp").unlink()  # the one file meant to hold it
    assert _leaks(tmp_path, printed) == []
    assert list(out.glob("runs/*.json")) and (out / "report.html").exists()


@pytest.mark.parametrize(
    ("notify", "expected"),
    [
        (f'password_env = "{SECRET}"', "must be the name of an environment variable"),
        (f'password = "{SECRET}"', "notify.password: unknown key"),
        ('password_file = "no/such/file"', "[notify].password_file: cannot read"),
    ],
)
def test_misplaced_secrets_are_not_echoed(tmp_path: Path, notify: str, expected: str) -> None:
    write_installation(tmp_path, "http://127.0.0.1:9", f"enabled = true\n{notify}")
    config = tmp_path / "greenops.toml"
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--out", str(tmp_path)])
    assert result.exit_code == 1 and expected in result.output, result.output
    assert SECRET not in result.output


def test_password_file_errors_hold_no_password(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(SECRET.encode("utf-16"))  # not UTF-8
    with pytest.raises(ConfigError) as raised:
        read_password(Notify(password_file="pw"), tmp_path, {})
    assert "cannot read" in str(raised.value) and SECRET not in str(raised.value)
