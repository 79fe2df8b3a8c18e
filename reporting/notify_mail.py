"""The NOTIFY stage's e-mails: text from data made safe, digests and weekly summaries, SMTP.

Everything taken from findings (job names, messages, user names) is untrusted: `clean_text`
turns it into one printable line with links defused before any template or header sees it, the
HTML part is autoescaped, and headers are built with `email.headerregistry`. Messages are
deterministic: Date, Message-ID and MIME boundary derive from the recipient, the findings and
`run_date`, so a rerun renders byte-identical e-mails.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

import jinja2
import pandas as pd

from reporting import report
from reporting.audit_config import Notify

DASH = "—"
JOB_NAME_MAX_CHARS = 120
NAME_MAX_CHARS = 80
TEXT_MAX_CHARS = 500
SUBJECT_MAX_CHARS = 160
FILE_PART_MAX_CHARS = 64
WEEKLY_TOP = 10
SMTP_TIMEOUT_S = 30
REPLY_MAX_CHARS = 200
# Measured values of these rules are 0–1 ratios (see reporting/audit.py); failed runs are kWh.
RATIO_RULES = frozenset(
    {
        "idle_gpu",
        "low_gpu_util",
        "low_cpu_efficiency",
        "memory_over_request",
        "timelimit_over_request",
        "untagged_spend",
        "cleaner_region",
    }
)
KWH_RULES = frozenset({"failed_run"})
# Conservative on purpose: addresses end up in headers, SMTP commands and outbox file names.
_ADDRESS = re.compile(r"[A-Za-z0-9_%+'-]+(\.[A-Za-z0-9_%+'-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*):(//)")
_WWW = re.compile(r"(?i)\bwww\.")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9@+_-]+")


# --- untrusted text ------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def clean_text(value: Any, max_chars: int = TEXT_MAX_CHARS) -> str:
    """One printable line: no CR/LF, control or bidi characters, links defused, cut with `…`."""
    if _missing(value):
        return DASH
    kept = []
    for ch in str(value):
        category = unicodedata.category(ch)
        if ch.isspace() or category in ("Zl", "Zp"):
            kept.append(" ")
        elif category not in ("Cc", "Cf", "Co", "Cs", "Cn"):  # Cf holds the bidi overrides
            kept.append(ch)
    text = " ".join("".join(kept).split())
    # Mail clients turn URL-looking text into links; data must never become a link.
    text = _WWW.sub("www[.]", _SCHEME.sub(r"\1[:]\2", text))
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def is_address(value: Any) -> bool:
    """A plain ASCII `local@domain` address (no display name, quoting or comments)."""
    return isinstance(value, str) and _ADDRESS.fullmatch(value) is not None


def _number(value: Any) -> float | None:
    return None if _missing(value) else float(value)


# --- views: one finding, ready for the templates -------------------------------------------------


def _measured(rule: str, value: Any) -> str:
    number = _number(value)
    if rule in RATIO_RULES:
        return report.format_pct(number)
    if rule in KWH_RULES:
        return report.format_kwh(number)
    return report.format_num(number, 3)


def _money(amount: Any, currency: Any) -> dict[str, float] | None:
    if _missing(amount) or _missing(currency):
        return None
    return {clean_text(currency, 8): float(amount)}


def finding_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """Cleaned text and plain numbers (None if unknown) of one FINDING_COLUMNS row."""
    rule = clean_text(row["rule"], NAME_MAX_CHARS)
    return {
        "finding_id": clean_text(row["finding_id"], NAME_MAX_CHARS),
        "job_name": clean_text(row["job_name"], JOB_NAME_MAX_CHARS),
        "rule": rule,
        "severity": clean_text(row["severity"], NAME_MAX_CHARS),
        "usage_id": clean_text(row["usage_id"], NAME_MAX_CHARS),
        "user": clean_text(row["user"], NAME_MAX_CHARS),
        "measured": _measured(rule, row["measured_value"]),
        "threshold": _measured(rule, row["threshold"]),
        "gpu_hours": _number(row["wasted_gpu_hours"]),
        "energy_kwh": _number(row["wasted_energy_kwh"]),
        "cost": _money(row["wasted_cost"], row["currency"]),
        "co2e_kg": _number(row["wasted_co2e_kg"]),
        "formula": clean_text(row["waste_formula"]),
        "message": clean_text(row["message"]),
        "action": clean_text(row["action"]),
    }


def waste_totals(findings: pd.DataFrame) -> dict[str, Any]:
    """Jobs and waste of a set of findings, each run counted once.

    A run flagged by two rules (say idle GPUs and a failed run) did not waste the sum of both
    estimates, so each run contributes its largest-energy finding only.
    """
    runs = findings.sort_values(["wasted_energy_kwh", "finding_id"], ascending=[False, True])
    runs = runs.drop_duplicates("usage_id")
    cost: dict[str, float] = {}
    for amount, currency in zip(runs["wasted_cost"], runs["currency"], strict=True):
        for code, value in (_money(amount, currency) or {}).items():
            cost[code] = cost.get(code, 0.0) + value
    return {
        "jobs": len(runs),
        "findings": len(findings),
        "energy_kwh": float(runs["wasted_energy_kwh"].fillna(0.0).sum()),
        "co2e_kg": float(runs["wasted_co2e_kg"].fillna(0.0).sum()),
        "gpu_hours": float(runs["wasted_gpu_hours"].fillna(0.0).sum()),
        "cost": dict(sorted(cost.items())),
    }


def _jobs(count: int) -> str:
    return f"{count:,} inefficient job" + ("" if count == 1 else "s")


# --- composing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One e-mail to one recipient and the finding ids it carries (the unit SMTP accepts)."""

    to: str
    kind: str  # "digest" or "weekly"
    finding_ids: tuple[str, ...]
    message: EmailMessage
    team: str = ""  # weekly only: the team summarised

    @property
    def if_refused(self) -> str:
        """What a refusal means for this e-mail, for the error line."""
        if self.kind == "digest":
            return f"its {len(self.finding_ids)} finding(s) stay pending for the next night"
        # Summaries go out on one weekday only: a failed one waits a week unless rerun today.
        return f"team {clean_text(self.team, NAME_MAX_CHARS)}'s weekly summary is not sent (rerun today to retry)"


@lru_cache(maxsize=1)
def _text_environment() -> jinja2.Environment:
    # The report's environment (filters, strict undefined) without HTML escaping: a job named
    # `a&b` must read `a&b` in the plain-text part, which no client parses as HTML.
    return report.environment().overlay(autoescape=False)


def _render(name: str, context: Mapping[str, Any]) -> tuple[str, str]:
    html = report.environment().get_template(f"email/{name}.html.j2").render(context)
    text = _text_environment().get_template(f"email/{name}.txt.j2").render(context)
    return text, html


def sender_address(from_address: str, organisation: str) -> Address:
    """`Organisation GreenOps <from_address>`; the caller has checked the address."""
    display = clean_text(f"{organisation} GreenOps", NAME_MAX_CHARS)
    return Address(display_name=display, addr_spec=from_address)


def compose_digest(to: str, shown: pd.DataFrame, more: int, *, sender: Address,
                   organisation: str, run_date: date) -> Outgoing:  # fmt: skip
    """One owner's nightly digest of `shown` (already ranked); `more` are left for later nights."""
    totals = waste_totals(shown)
    context = {
        "organisation": clean_text(organisation, NAME_MAX_CHARS),
        "run_date": run_date.isoformat(),
        "findings": [finding_view(row) for row in shown.to_dict("records")],
        "more": more,
        "totals": totals,
    }
    subject = (
        f"GreenOps: {_jobs(totals['jobs'])}, {report.format_kwh(totals['energy_kwh'])} wasted "
        f"({run_date.isoformat()})"
    )
    ids = tuple(shown["finding_id"].astype(str))
    text, html = _render("digest", context)
    message = build_message(sender=sender, to=to, subject=subject, text=text, html=html,
                            run_date=run_date, seed="\n".join(["digest", to, *ids]))  # fmt: skip
    return Outgoing(to=to, kind="digest", finding_ids=ids, message=message)


def _by_rule(findings: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for rule, group in findings.groupby("rule", sort=True):
        rows.append({"rule": clean_text(rule, NAME_MAX_CHARS), **waste_totals(group)})
    return sorted(rows, key=lambda r: (-r["findings"], r["rule"]))


def compose_weekly(to: str, team: str, findings: pd.DataFrame, *, sender: Address,
                   organisation: str, run_date: date, days: int) -> Outgoing:  # fmt: skip
    """A team lead's summary of the team's findings first seen in the `days` ending run_date."""
    start = run_date - timedelta(days=days - 1)
    top = findings.sort_values(["wasted_co2e_kg", "finding_id"], ascending=[False, True])
    totals = waste_totals(findings)
    team_text = clean_text(team, NAME_MAX_CHARS)
    context = {
        "organisation": clean_text(organisation, NAME_MAX_CHARS),
        "team": team_text,
        "start": start.isoformat(),
        "end": run_date.isoformat(),
        "by_rule": _by_rule(findings),
        "top": [finding_view(row) for row in top.head(WEEKLY_TOP).to_dict("records")],
        "totals": totals,
    }
    subject = (
        f"GreenOps weekly, team {team_text}: {_jobs(totals['jobs'])}, "
        f"{report.format_kwh(totals['energy_kwh'])} wasted ({start.isoformat()} – {run_date.isoformat()})"
    )
    ids = tuple(sorted(findings["finding_id"].astype(str)))
    text, html = _render("weekly", context)
    message = build_message(sender=sender, to=to, subject=subject, text=text, html=html,
                            run_date=run_date, seed="\n".join(["weekly", to, team, *ids]))  # fmt: skip
    return Outgoing(to=to, kind="weekly", finding_ids=ids, message=message, team=team)


def build_message(*, sender: Address, to: str, subject: str, text: str, html: str,
                  run_date: date, seed: str) -> EmailMessage:  # fmt: skip
    """A multipart/alternative e-mail whose every byte follows from its arguments."""
    digest = hashlib.sha256(f"{seed}\n{run_date.isoformat()}".encode()).hexdigest()[:32]
    message = EmailMessage()  # policy.default also refuses CR/LF in any header value
    message["From"] = sender
    message["To"] = Address(addr_spec=to)
    message["Subject"] = clean_text(subject, SUBJECT_MAX_CHARS)
    message["Date"] = format_datetime(datetime.combine(run_date, time(), tzinfo=UTC))
    message["Message-ID"] = f"<{digest}@{sender.domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to us
    # Quoted-printable keeps the body 7-bit, so relays without 8BITMIME take it as is.
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    message.set_boundary(f"=_greenops_{digest}")  # random by default, which breaks reruns
    return message


def outbox_name(outgoing: Outgoing, run_date: date) -> str:
    """`2026-09-30-digest-alice@example_org-1a2b3c4d.eml`.

    Only `[A-Za-z0-9@+_-]` from the address (no dots, so never `..`, and no slashes), cut to 64
    characters; the hash keeps names apart that sanitise alike.
    """
    safe = _UNSAFE_FILE_CHARS.sub("_", outgoing.to)[:FILE_PART_MAX_CHARS] or "_"
    tag = hashlib.sha256(f"{outgoing.to}\n{outgoing.team}".encode()).hexdigest()[:8]
    return f"{run_date.isoformat()}-{outgoing.kind}-{safe}-{tag}.eml"


# --- sending -------------------------------------------------------------------------------------


class _Unavailable(Exception):
    """The server cannot be used at all this night; the message says why and what to do."""


def _where(settings: Notify) -> str:
    return f"SMTP {settings.smtp_host}:{settings.smtp_port}"


def _reply(exc: BaseException) -> str:
    """The server's reply or the OS error, on one line and short (never holds the password)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        return clean_text(f"{exc.smtp_code} {text}", REPLY_MAX_CHARS)
    return clean_text(f"{type(exc).__name__}: {exc}", REPLY_MAX_CHARS)


def _connect(settings: Notify) -> smtplib.SMTP:
    host, port = settings.smtp_host, settings.smtp_port
    try:
        if settings.security == "ssl":
            context = ssl.create_default_context()
            return smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_S, context=context)
        return smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_S)
    except (smtplib.SMTPException, OSError) as exc:
        raise _Unavailable(
            f"cannot connect ({_reply(exc)}). Check [notify].smtp_host, smtp_port and security, "
            "and that the mail relay is running"
        ) from exc


def _secure_and_login(smtp: smtplib.SMTP, settings: Notify, password: str | None) -> None:
    try:
        if settings.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
    except (smtplib.SMTPException, OSError) as exc:
        raise _Unavailable(
            f"STARTTLS failed ({_reply(exc)}). Check that the server offers STARTTLS on this "
            'port, or set [notify].security = "ssl" (port 465) or "none" (local relays only)'
        ) from exc
    if not settings.username:
        return
    try:
        smtp.login(settings.username, password or "")
    except (smtplib.SMTPException, OSError) as exc:
        raise _Unavailable(
            f"login as {clean_text(settings.username, NAME_MAX_CHARS)!r} failed ({_reply(exc)}). "
            "Check [notify].username and the password in password_env or password_file"
        ) from exc


def _open(settings: Notify, password: str | None) -> smtplib.SMTP:
    if settings.username and password is None:
        raise _Unavailable(
            "[notify].username is set but no password was given. Set [notify].password_env or "
            "password_file"
        )
    smtp = _connect(settings)
    try:
        _secure_and_login(smtp, settings, password)
    except _Unavailable:
        smtp.close()
        raise
    return smtp


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()  # the messages are already accepted or not; a failed QUIT changes nothing


def _pending_note(outgoing: Sequence[Outgoing]) -> str:
    digests = [o for o in outgoing if o.kind == "digest"]
    findings = sum(len(o.finding_ids) for o in digests)
    note = f"{len(digests)} digest(s) with {findings} finding(s) stay pending for the next night"
    weekly = len(outgoing) - len(digests)
    return note + (
        f"; {weekly} weekly summary(ies) not sent (rerun today to retry)." if weekly else "."
    )


def send_all(outgoing: Sequence[Outgoing], settings: Notify,
             password: str | None) -> tuple[list[bool], list[str]]:  # fmt: skip
    """Send each e-mail over one connection: which the server accepted, and one line per problem.

    Network, TLS, login and refusal problems never raise: they become error lines, and the
    e-mails concerned count as not accepted, so their findings are retried the next night.
    """
    accepted = [False] * len(outgoing)
    if not outgoing:
        return accepted, []
    try:
        smtp = _open(settings, password)
    except _Unavailable as problem:
        return accepted, [f"{_where(settings)}: {problem}; {_pending_note(outgoing)}"]
    errors: list[str] = []
    try:
        for index, item in enumerate(outgoing):
            try:
                accepted[index], error = _send_one(smtp, item, settings)
            except _Unavailable as problem:  # the rest would fail the same way
                errors.append(f"{_where(settings)}: {problem}; {_pending_note(outgoing[index:])}")
                break
            if error:
                errors.append(error)
    finally:
        _close(smtp)
    return accepted, errors


def _send_one(smtp: smtplib.SMTP, item: Outgoing, settings: Notify) -> tuple[bool, str | None]:
    """Whether the server accepted this e-mail, else why; raises `_Unavailable` if none can go."""
    where, to, note = _where(settings), item.to, item.if_refused
    try:
        refused = smtp.send_message(item.message, to_addrs=[to])
    except smtplib.SMTPRecipientsRefused as exc:
        reply = _reply_for(exc.recipients.get(to))
        return False, (
            f"{where}: refused recipient {to} ({reply}); check that address in the "
            f"[notify].directory file or address_template; {note}."
        )
    except smtplib.SMTPSenderRefused as exc:
        raise _Unavailable(
            f"refused the sender {settings.from_address} ({_reply(exc)}); check that "
            "[notify].from_address may send through this relay"
        ) from exc
    except smtplib.SMTPDataError as exc:
        return False, f"{where}: refused the message to {to} ({_reply(exc)}); {note}."
    except (smtplib.SMTPException, OSError) as exc:
        raise _Unavailable(f"connection lost while sending to {to} ({_reply(exc)})") from exc
    if to in refused:
        return False, f"{where}: refused recipient {to} ({_reply_for(refused[to])}); {note}."
    return True, None


def _reply_for(response: tuple[int, bytes] | None) -> str:
    if response is None:
        return "no reply"
    code, text = response
    return clean_text(f"{code} {text.decode('utf-8', 'replace')}", REPLY_MAX_CHARS)
