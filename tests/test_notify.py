"""Owner notifications: digests over a real SMTP server (aiosmtpd on 127.0.0.1), no mocks."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from reporting import notify, notify_mail
from reporting.audit_config import Notify
from reporting.errors import ConfigError
from reporting.schema import FINDING_COLUMNS

RUN_DATE = date(2026, 9, 28)  # a Monday
HOSTILE_JOB = (
    "x\r\nBcc: evil@example.com <script>alert(1)</script> http://evil.example/a \u202egnp.exe"
)


def finding(n: int, **values: Any) -> dict[str, Any]:
    """Finding n: idle GPUs, user alice; n sets the numbers so ranking and totals are easy."""
    row = {
        "finding_id": f"f-{n:02d}", "rule": "idle_gpu", "severity": "high",
        "usage_id": f"habrok:{n}", "site": "habrok", "user": "alice", "account": "nlp",
        "job_name": f"train-{n}", "owner": "unallocated", "team": "nlp", "model": "llama",
        "phase": "training", "measured_value": 0.004, "threshold": 0.01,
        "wasted_gpu_hours": 12.5, "wasted_energy_kwh": 40.0 + n, "wasted_cost": 10.0 + n,
        "currency": "EUR", "wasted_co2e_kg": 5.0 + n,
        "waste_formula": "allocated GPU facility energy (all of it)",
        "message": "GPUs idle: 0.4 % utilisation over 12.5 GPU-hours",
        "action": f"Cancel idle allocations (job {n}).", "first_seen": RUN_DATE.isoformat(),
        "ended_at": pd.Timestamp("2026-09-27T10:00Z"),
    }  # fmt: skip
    row.update(values)
    return row


def findings(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=FINDING_COLUMNS)


def directory(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=notify.DIRECTORY_COLUMNS, dtype=object)


# --- a real SMTP server --------------------------------------------------------------------------


@dataclass
class Mailbox:
    """aiosmtpd handler: keeps what it accepts, answers 550 for the addresses in `refuse`."""

    refuse: set[str] = field(default_factory=set)
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: Any) -> str:  # fmt: skip
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        self.received.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted"

    def to(self, address: str) -> EmailMessage:
        [message] = [m for rcpt, m in self.received if rcpt == [address]]
        return message


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(**smtp_options: Any) -> tuple[Mailbox, Controller]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), **smtp_options)
    controller.start()
    return box, controller


@pytest.fixture
def server() -> Iterator[tuple[Mailbox, int]]:
    box, controller = start_server()
    yield box, controller.port
    controller.stop()


def settings(port: int, **values: Any) -> Notify:
    base = {
        "enabled": True, "smtp_host": "127.0.0.1", "smtp_port": port, "security": "none",
        "from_address": "greenops@example.org", "address_template": "{user}@example.org",
        "weekly_summary_weekday": "sunday",
    }  # fmt: skip
    return Notify(**{**base, **values})


def run(frame: pd.DataFrame, config: Notify, tmp_path: Path, **options: Any) -> notify.NotifyResult:
    arguments: dict[str, Any] = {
        "state_dir": tmp_path / "ledger", "out_dir": tmp_path / "out", "run_date": RUN_DATE,
        "dry_run": False, "password": None, "directory": None, "organisation": "Example Lab",
    }  # fmt: skip
    return notify.notify_findings(frame, config, **{**arguments, **options})


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def state(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "ledger" / notify.STATE_FILE).read_text())


# --- delivery ------------------------------------------------------------------------------------


def test_one_digest_per_recipient_with_numbers_and_actions(server, tmp_path):
    box, port = server
    frame = findings(finding(1), finding(2, job_name="<b>bold</b> & co"), finding(3, user="bob"))
    result = run(frame, settings(port), tmp_path)
    assert (result.sent, result.pending, result.errors) == (["f-01", "f-02", "f-03"], [], [])
    assert sorted(rcpt for rcpt, _ in box.received) == [["alice@example.org"], ["bob@example.org"]]
    alice = box.to("alice@example.org")
    assert alice["Subject"] == "GreenOps: 2 inefficient jobs, 83.0 kWh wasted (2026-09-28)"
    assert alice["From"] == "Example Lab GreenOps <greenops@example.org>"
    text, html = parts(alice)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html and "<b>bold</b>" not in html
    assert "<b>bold</b> & co" in text  # plain text is not HTML-escaped
    for part in (text, html):
        assert "42.0 kWh" in part and "7.0 kg CO2e" in part and "EUR 12.00" in part
        assert "12.5 GPU-h" in part and "0.4 %" in part and "1.0 %" in part
        assert "Cancel idle allocations (job 2)." in part
        assert "allocated GPU facility energy (all of it)" in part
    # Ranked by kg CO2e: finding 2 (7 kg) before finding 1 (6 kg).
    assert text.index("job 2") < text.index("job 1")


def test_cap_leaves_the_rest_pending_and_says_how_many(server, tmp_path):
    box, port = server
    frame = findings(finding(1), finding(2), finding(3))
    result = run(frame, settings(port, max_findings_per_owner=2), tmp_path)
    assert (result.sent, result.pending) == (["f-02", "f-03"], ["f-01"])
    text, html = parts(box.to("alice@example.org"))
    assert "1 more finding did not fit" in text and "1 more finding" in html
    assert "job 1)" not in text
    following = run(frame, settings(port, max_findings_per_owner=2), tmp_path,
                    run_date=RUN_DATE + timedelta(days=1))  # fmt: skip
    assert (following.sent, following.pending) == (["f-01"], [])


def test_rerun_of_the_same_night_sends_nothing_new(server, tmp_path):
    box, port = server
    frame = findings(finding(1), finding(2, user="bob"))
    first = run(frame, settings(port), tmp_path)
    again = run(frame, settings(port), tmp_path)
    assert len(box.received) == 2
    assert (again.sent, again.pending, again.errors) == ([], [], [])
    assert state(tmp_path)["findings"] == {
        "f-01": {"sent_on": "2026-09-28", "to": "alice@example.org"},
        "f-02": {"sent_on": "2026-09-28", "to": "bob@example.org"},
    }
    assert sorted(state(tmp_path)["findings"]) == first.sent


def test_a_refused_recipient_stays_pending_and_others_are_sent(server, tmp_path):
    box, port = server
    box.refuse.add("bob@example.org")
    frame = findings(finding(1), finding(2, user="bob"), finding(3, user="bob"))
    result = run(frame, settings(port), tmp_path)
    assert (result.sent, result.pending) == (["f-01"], ["f-02", "f-03"])
    [error] = result.errors
    assert f"127.0.0.1:{port}" in error and "bob@example.org" in error and "550" in error
    assert list(state(tmp_path)["findings"]) == ["f-01"]


def test_no_server_gives_an_error_line_and_everything_pending(tmp_path):
    port = free_port()  # nothing listens there
    result = run(findings(finding(1), finding(2, user="bob")), settings(port), tmp_path)
    assert (result.sent, result.pending) == ([], ["f-01", "f-02"])
    [error] = result.errors
    assert error.startswith(f"SMTP 127.0.0.1:{port}: cannot connect (ConnectionRefusedError")
    assert "[notify].smtp_host" in error and "2 digest(s) with 2 finding(s) stay pending" in error
    assert state(tmp_path)["findings"] == {}


def test_login_failure_is_an_error_line_without_the_password(tmp_path):
    def reject(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)

    box, controller = start_server(authenticator=reject, auth_require_tls=False)
    try:
        config = settings(controller.port, username="greenops")
        result = run(findings(finding(1)), config, tmp_path, password="hunter2-secret")
    finally:
        controller.stop()
    [error] = result.errors
    assert "login as 'greenops' failed (535" in error and "password_env" in error
    assert "hunter2" not in error and box.received == [] and result.pending == ["f-01"]


def test_login_with_the_right_password_delivers(tmp_path):
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"greenops", b"pw")
        return AuthResult(success=ok)

    box, controller = start_server(authenticator=check, auth_require_tls=False)
    try:
        result = run(findings(finding(1)), settings(controller.port, username="greenops"), tmp_path,
                     password="pw")  # fmt: skip
    finally:
        controller.stop()
    assert (result.sent, result.errors, len(box.received)) == (["f-01"], [], 1)


def test_starttls_not_offered_is_an_error_line(server, tmp_path):
    box, port = server
    result = run(findings(finding(1)), settings(port, security="starttls"), tmp_path)
    [error] = result.errors
    assert "STARTTLS failed" in error and '[notify].security = "ssl"' in error
    assert box.received == [] and result.pending == ["f-01"]


def test_no_findings_sends_nothing_and_connects_nowhere(tmp_path):
    result = run(findings(), settings(free_port()), tmp_path)
    assert result == notify.NotifyResult(sent=[], pending=[], unresolved=[], outbox=[], errors=[])


# --- dry run, determinism, hostile data ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("x\r\nBcc: evil@example.com", "x Bcc: evil@example.com"),
        ("a\u202eexe.txt\u2066b\x00c", "aexe.txtbc"),
        ("see https://evil.example and www.evil.example", "see https[:]//evil.example and www[.]evil.example"),
        ("j" * 200, "j" * 119 + "…"),
        (float("nan"), "—"),
    ],
)  # fmt: skip
def test_clean_text(raw, clean):
    assert notify_mail.clean_text(raw, notify_mail.JOB_NAME_MAX_CHARS) == clean


def test_dry_run_writes_the_outbox_and_marks_nothing_sent(tmp_path):
    frame = findings(finding(1), finding(2, user="../../etc/passwd"), finding(3, user="bob"))
    config = settings(free_port(), admin_address="ops@example.org")
    result = run(frame, config, tmp_path, dry_run=True)
    outbox = tmp_path / "out" / "outbox"
    assert sorted(p.name for p in result.outbox) == sorted(p.name for p in outbox.iterdir())
    names = [
        re.fullmatch(r"2026-09-28-digest-(.+)-[0-9a-f]{8}\.eml", p.name) for p in result.outbox
    ]
    assert sorted(m.group(1) for m in names if m) == [
        "alice@example_org", "bob@example_org", "ops@example_org",
    ]  # fmt: skip
    assert result.sent == ["f-01", "f-02", "f-03"] and result.errors == []
    assert not (tmp_path / "ledger" / notify.STATE_FILE).exists()
    message = BytesParser(policy=policy.default).parsebytes(result.outbox[0].read_bytes())
    assert message["Subject"].startswith("GreenOps: ")
    assert run(frame, config, tmp_path, dry_run=True).sent == result.sent  # still not marked


@pytest.mark.parametrize("to", ["../../etc/passwd", "a/b@c", "..", "", "x" * 500, "é@ü.org"])
def test_outbox_names_are_safe_whatever_the_recipient(to):
    item = notify_mail.Outgoing(to=to, kind="digest", finding_ids=(), message=EmailMessage())
    name = notify_mail.outbox_name(item, RUN_DATE)
    assert re.fullmatch(r"2026-09-28-digest-[A-Za-z0-9@+_-]{1,64}-[0-9a-f]{8}\.eml", name), name


def test_same_inputs_give_the_same_bytes(tmp_path):
    frame = findings(finding(1), finding(2, job_name=HOSTILE_JOB))
    first = run(frame, settings(free_port()), tmp_path / "a", dry_run=True)
    second = run(frame, settings(free_port()), tmp_path / "b", dry_run=True)
    assert [p.read_bytes() for p in first.outbox] == [p.read_bytes() for p in second.outbox]
    message = BytesParser(policy=policy.default).parsebytes(first.outbox[0].read_bytes())
    assert message["Date"] == "Mon, 28 Sep 2026 00:00:00 +0000"
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.org>", message["Message-ID"])


def test_hostile_text_injects_no_header_script_or_link(server, tmp_path):
    box, port = server
    frame = findings(finding(1, job_name=HOSTILE_JOB, message="see https://evil.example/x",
                             action="www.evil.example", team="nlp\r\nBcc: evil@example.com"))  # fmt: skip
    people = directory(("alice", "", "nlp\r\nBcc: evil@example.com", "lead@lab.example"))
    config = settings(port, weekly_summary_weekday="monday")
    result = run(frame, config, tmp_path, directory=people)
    assert (result.errors, result.weekly) == ([], ["nlp\r\nBcc: evil@example.com"])
    assert sorted(rcpt for rcpt, _ in box.received) == [["alice@example.org"], ["lead@lab.example"]]
    weekly = box.to("lead@lab.example")
    assert weekly["Subject"].startswith("GreenOps weekly, team nlp Bcc: evil@example.com: ")
    assert all("Bcc" not in m for _, m in box.received)
    message = box.to("alice@example.org")
    assert sorted(message.keys()) == [
        "Auto-Submitted", "Content-Type", "Date", "From", "MIME-Version", "Message-ID",
        "Subject", "To",
    ]  # fmt: skip
    text, html = parts(message)
    assert "<script" not in html and "&lt;script&gt;" in html
    assert not re.search(r"https?://|www\.", html + text)
    assert "\u202e" not in html + text and "x Bcc: evil@example.com" in text


@pytest.mark.parametrize(
    ("name", "team", "template", "admin", "expected"),
    [
        ("alice", "nlp", "{user}@example.org", "ops@example.org", "alice@lab.example"),
        ("bob", "nlp", "{user}@example.org", "ops@example.org", "bob@example.org"),
        ("bob", "nlp", None, "ops@example.org", "carol@lab.example"),
        ("bob", "vision", None, "ops@example.org", "ops@example.org"),
        ("bob", "vision", None, None, None),
        ("dan@elsewhere.example", "vision", None, None, "dan@elsewhere.example"),
        ("unallocated", "vision", "{user}@example.org", "ops@example.org", "ops@example.org"),
        ("no spaces allowed", "nlp", "{user}@example.org", None, "carol@lab.example"),
    ],
)
def test_address_resolution_order(name, team, template, admin, expected):
    book = notify.address_book(directory(
        ("alice", "alice@lab.example", "nlp", "carol"),
        ("carol", "carol@lab.example", "nlp", "carol"),
    ))  # fmt: skip
    config = settings(25, address_template=template, admin_address=admin)
    assert notify.resolve_address(name, team, config, book) == expected


def test_owners_without_an_address_are_unresolved_and_pending(server, tmp_path):
    box, port = server
    frame = findings(finding(1, user="zed"), finding(2, user="amy", owner="amy@lab.example"))
    result = run(frame, settings(port, address_template=None), tmp_path)
    assert (result.sent, result.pending, result.unresolved) == (["f-02"], ["f-01"], ["zed"])
    assert [rcpt for rcpt, _ in box.received] == [["amy@lab.example"]]


def test_suppressed_findings_are_neither_sent_nor_pending(server, tmp_path):
    box, port = server
    frame = findings(
        finding(1), finding(2, user="svc-ci"), finding(3, job_name="smoke-test-42"),
        finding(4, rule="timelimit_over_request"),
    )  # fmt: skip
    config = settings(port, suppress_users=["svc-ci"], suppress_job_names=[r"^smoke-test-\d+$"],
                      suppress_rules=["timelimit_over_request"])  # fmt: skip
    result = run(frame, config, tmp_path)
    assert (result.sent, result.pending) == (["f-01"], [])
    assert result.suppressed == ["f-02", "f-03", "f-04"]
    assert [rcpt for rcpt, _ in box.received] == [["alice@example.org"]]


# --- weekly team-lead summary --------------------------------------------------------------------


def test_weekly_summary_on_its_weekday_once_per_team_and_week(server, tmp_path):
    box, port = server
    old = (RUN_DATE - timedelta(days=7)).isoformat()  # outside the 7 days ending RUN_DATE
    frame = findings(finding(1), finding(2, user="bob"), finding(3, first_seen=old),
                     finding(4, team="vision", user="vic"))  # fmt: skip
    people = directory(("alice", "", "nlp", "lead@lab.example"), ("vic", "", "vision", ""))
    config = settings(port, weekly_summary_weekday="tuesday")
    on_monday = run(frame, config, tmp_path, directory=people)
    assert on_monday.weekly == [] and "lead@lab.example" not in str(box.received)
    monday = settings(port, weekly_summary_weekday="monday")
    first = run(frame, monday, tmp_path, directory=people)
    assert first.weekly == ["nlp"] and first.sent == []  # the digests went out already
    weekly = box.to("lead@lab.example")
    assert weekly["Subject"] == (
        "GreenOps weekly, team nlp: 2 inefficient jobs, 83.0 kWh wasted (2026-09-22 – 2026-09-28)"
    )
    text, html = parts(weekly)
    assert "idle_gpu: 2 findings, 83.0 kWh, 13.0 kg CO2e" in text and "job 3" not in text
    assert "Top 2 by carbon" in html and text.index("job 2") < text.index("job 1")
    again = run(frame, monday, tmp_path, directory=people)
    assert again.weekly == [] and len(box.received) == 4
    assert state(tmp_path)["weekly"] == {
        "2026-W40": {"nlp": {"sent_on": "2026-09-28", "to": ["lead@lab.example"]}}
    }


# --- inputs: directory and password --------------------------------------------------------------


def test_load_directory(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("user,email,team,team_lead\nalice, alice@lab.example ,nlp,carol\nbob,,nlp,\n")
    loaded = notify.load_directory(path)
    assert loaded.to_dict("records") == [
        {"user": "alice", "email": "alice@lab.example", "team": "nlp", "team_lead": "carol"},
        {"user": "bob", "email": "", "team": "nlp", "team_lead": ""},
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("user,email,team\nalice,a@b.org,nlp\n", "line 1: the [notify].directory file lacks column(s) team_lead"),
        ("user,email,team,team_lead\nalice,a@b.org,nlp,\nbob,not an address,nlp,\n", "line 3: 'not an address'"),
        ("user,email,team,team_lead\nalice,a@b.org\n", "line 2: expected 4 fields"),
        ("user,email,team,team_lead\n,a@b.org,nlp,\n", "line 2: the user is empty"),
    ],
)  # fmt: skip
def test_bad_directory_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "people.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(f"{path}, {message}")):
        notify.load_directory(path)


def test_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the \\[notify\\].directory file"):
        notify.load_directory(tmp_path / "absent.csv")


def test_read_password(tmp_path):
    (tmp_path / "smtp.secret").write_text("from-file\n")
    assert notify.read_password(Notify(), tmp_path, {}) is None
    env = Notify(password_env="GREENOPS_SMTP_PASSWORD")
    assert notify.read_password(env, tmp_path, {"GREENOPS_SMTP_PASSWORD": "from-env"}) == "from-env"
    from_file = Notify(password_file="smtp.secret")
    assert notify.read_password(from_file, tmp_path, {}) == "from-file"
    with pytest.raises(ConfigError, match="GREENOPS_SMTP_PASSWORD, which is not set"):
        notify.read_password(env, tmp_path, {})
    with pytest.raises(ConfigError, match="cannot read .*absent"):
        notify.read_password(Notify(password_file="absent"), tmp_path, {})


def test_bad_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\[notify\].from_address 'nobody'"):
        run(findings(finding(1)), settings(25, from_address="nobody"), tmp_path, dry_run=True)
    with pytest.raises(ConfigError, match=r"\[notify\].address_template '\{name\}@x.org'"):
        run(findings(finding(1)), settings(25, address_template="{name}@x.org"), tmp_path)


def test_a_refused_weekly_summary_is_retried_by_a_rerun_the_same_day(server, tmp_path):
    box, port = server
    box.refuse.add("lead@lab.example")
    people = directory(("alice", "", "nlp", "lead@lab.example"))
    config = settings(port, weekly_summary_weekday="monday")
    first = run(findings(finding(1)), config, tmp_path, directory=people)
    assert first.weekly == [] and first.sent == ["f-01"]
    [error] = first.errors
    assert "lead@lab.example" in error and "weekly summary is not sent (rerun today" in error
    box.refuse.clear()
    again = run(findings(finding(1)), config, tmp_path, directory=people)
    assert (again.weekly, again.sent, again.errors) == (["nlp"], [], [])


def test_owners_without_their_own_address_are_listed_with_where_their_findings_go() -> None:
    frame = findings(
        finding(1, user="alice"),  # in the directory: personal address
        finding(2, user="bob", team="nlp"),  # unknown: goes to nlp's lead
        finding(3, user="carol", team="vision"),  # unknown team, no lead: admin
    )
    book = directory(("alice", "alice@example.org", "nlp", "lead@example.org"))
    listed = notify.unresolved_owners(frame, Notify(admin_address="admin@example.org"), book)
    assert listed == [
        {"owner": "bob", "team": "nlp", "findings": 1, "routed_to": "lead@example.org"},
        {"owner": "carol", "team": "vision", "findings": 1, "routed_to": "admin@example.org"},
    ]
    nobody = notify.unresolved_owners(findings(finding(4, user="dave", team="x")), Notify(), None)
    assert nobody[0]["routed_to"].startswith("nobody")
