"""The NOTIFY stage: tell owners about their findings, once, in one digest per night.

Findings (FINDING_COLUMNS) → drop suppressed and already notified → an address per finding
(directory, address template, team lead, admin) → one digest per address, the
`max_findings_per_owner` largest by kg CO2e → SMTP (or `.eml` files in dry-run). On the
configured weekday each team lead also gets a summary of the team's week.

`state_dir/_notified.json` remembers what the server accepted, so reruns and backfills send
nothing twice:

    {"findings": {finding_id: {"sent_on": "2026-09-30", "to": "alice@example.org"}},
     "weekly": {"2026-W40": {team: {"sent_on": "2026-09-28", "to": ["lead@example.org"]}}}}
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.headerregistry import Address
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reporting import notify_mail as mail
from reporting import notify_stream as stream
from reporting.audit_config import Notify
from reporting.audit_findings import Findings, findings_of_frame
from reporting.config import UNALLOCATED
from reporting.errors import ConfigError, InputError, ReportingError

STATE_FILE = "_notified.json"
OUTBOX = "outbox"
DIRECTORY_COLUMNS = ["user", "email", "team", "team_lead"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEK_DAYS = 7


@dataclass(frozen=True)
class NotifyResult:
    sent: list[str]  # finding_ids accepted by the server (or written to the outbox in dry-run)
    pending: list[str]  # not sent (refused, unreachable, over the cap, no address): next night
    unresolved: list[str]  # owners (user names) with no address: listed in the report
    outbox: list[Path]  # .eml files written (dry-run)
    errors: list[str]  # one line per SMTP problem, naming host/recipient and what to do
    # Added beside the lead's contract: finding_ids dropped by [notify].suppress_* (neither
    # sent nor pending), and the teams whose weekly summary went out (or to the outbox).
    suppressed: list[str] = field(default_factory=list)
    weekly: list[str] = field(default_factory=list)


def notify_findings(findings: pd.DataFrame | Findings, settings: Notify, *, state_dir: Path, out_dir: Path,
                    run_date: date, dry_run: bool, password: str | None,
                    directory: pd.DataFrame | None, organisation: str) -> NotifyResult:  # fmt: skip
    """Send tonight's digests (and weekly summaries); SMTP problems become `errors`, not raises.

    The caller decides whether notifying is on (`settings.enabled`); this function just sends.
    """
    _check_settings(settings)
    sender = mail.sender_address(settings.from_address, organisation)
    state = read_state(state_dir)
    book = address_book(directory)
    held = findings if isinstance(findings, Findings) else findings_of_frame(findings, run_date)
    try:
        outgoing, reduced = _stored_outgoing(held, settings, state, book, sender=sender,
                                             organisation=organisation, run_date=run_date)  # fmt: skip
        return _send(
            outgoing, reduced, settings, (state_dir, state), out_dir, run_date, dry_run, password
        )
    finally:
        if held is not findings:  # held on disk for this call only
            held.close()


def _stored_outgoing(findings: Findings, settings: Notify, state: dict[str, Any], book: AddressBook,
                     **compose: Any) -> tuple[list[mail.Outgoing], stream.Due]:  # fmt: skip
    """Tonight's digests and weekly summaries of findings held on disk (notify_stream.py)."""
    run_date = compose["run_date"]
    weekday = WEEKDAYS[run_date.weekday()] == settings.weekly_summary_weekday
    reduced = stream.due(
        findings, settings, state["findings"],
        address=lambda o, u, t: resolve_address(_owner_name({"owner": o, "user": u}), t, settings, book),
        owner_name=lambda o, u: _owner_name({"owner": o, "user": u}),
        week=(run_date - timedelta(days=WEEK_DAYS - 1), run_date) if weekday else None,
        led_teams=set(book.leads),
    )  # fmt: skip
    cap = settings.max_findings_per_owner
    digests = [mail.compose_digest(str(to), findings.rows_at(np.array(reduced.shown[to])),
                                   max(reduced.counts[to] - cap, 0), **compose)
               for to in sorted(reduced.shown)]  # fmt: skip
    week = findings.rows_at(np.concatenate(reduced.week)) if reduced.week else None
    weekly = _weekly(week, state, book, settings=settings, **compose) if week is not None else []
    return [*digests, *weekly], reduced


def _send(outgoing: list[mail.Outgoing], reduced: stream.Due, settings: Notify,
          stored: tuple[Path, dict[str, Any]], out_dir: Path, run_date: date, dry_run: bool,
          password: str | None) -> NotifyResult:  # fmt: skip
    """Send (or write to the outbox) the e-mails of findings held on disk; record what went."""
    (state_dir, state), errors, outbox = stored, [], []
    if dry_run:
        delivered, outbox = outgoing, _write_outbox(outgoing, out_dir, run_date)
    else:
        accepted, errors = mail.send_all(outgoing, settings, password)
        delivered = [o for o, ok in zip(outgoing, accepted, strict=True) if ok]
        _record(state, delivered, run_date)
        write_state(state_dir, state)
    sent = sorted({i for o in delivered if o.kind == "digest" for i in o.finding_ids})
    return NotifyResult(
        sent=sent, pending=stream.sorted_ids(reduced.todo, minus=sent),
        unresolved=sorted(reduced.unresolved), outbox=outbox, errors=_redact(errors, password),
        suppressed=stream.sorted_ids(reduced.suppressed),
        weekly=sorted({o.team for o in delivered if o.kind == "weekly"}),
    )  # fmt: skip


def _write_outbox(outgoing: list[mail.Outgoing], out_dir: Path, run_date: date) -> list[Path]:
    outbox = out_dir / OUTBOX
    paths = []
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        for item in outgoing:
            path = outbox / mail.outbox_name(item, run_date)
            path.write_bytes(item.message.as_bytes())
            paths.append(path)
    except OSError as exc:
        raise ReportingError(
            f"{outbox}: cannot write the notification outbox ({exc.strerror or exc}). Check that "
            "the output folder is writable, or pass another --out."
        ) from exc
    return paths


def _redact(errors: list[str], password: str | None) -> list[str]:
    # Belt and braces: no reply we quote should echo the password, but make sure it cannot.
    if not password:
        return errors
    return [line.replace(password, "[password]") for line in errors]


# --- settings and suppression --------------------------------------------------------------------


def _check_settings(settings: Notify) -> None:
    """Fail on addresses and patterns that would break every night, naming the key."""
    if not mail.is_address(settings.from_address):
        raise ConfigError(
            f"[notify].from_address {settings.from_address!r} is not an e-mail address"
        )
    if settings.admin_address is not None and not mail.is_address(settings.admin_address):
        raise ConfigError(
            f"[notify].admin_address {settings.admin_address!r} is not an e-mail address"
        )
    for pattern in settings.suppress_job_names:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"[notify].suppress_job_names: {pattern!r} is not a regex ({exc})"
            ) from exc
    _from_template(settings.address_template, "user")


def _text(value: Any) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


# --- addresses -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressBook:
    emails: Mapping[str, str]  # user → e-mail
    leads: Mapping[str, tuple[str, ...]]  # team → its leads' e-mails, in directory order


def address_book(directory: pd.DataFrame | None) -> AddressBook:
    """Users' and team leads' addresses from `load_directory`'s table (a lead is an address or a user)."""
    if directory is None or directory.empty:
        return AddressBook({}, {})
    rows = directory.to_dict("records")
    emails = {r["user"]: r["email"] for r in rows if r["email"]}
    leads: dict[str, list[str]] = {}
    for r in rows:
        lead = r["team_lead"] if mail.is_address(r["team_lead"]) else emails.get(r["team_lead"])
        if r["team"] and lead and lead not in leads.setdefault(r["team"], []):
            leads[r["team"]].append(lead)
    return AddressBook(emails, {team: tuple(a) for team, a in leads.items()})


def _owner_name(row: Mapping[str, Any]) -> str:
    """Who the finding is for: its owner, or the run's user when no owner was attributed."""
    owner = _text(row["owner"]).strip()
    return owner if owner and owner != UNALLOCATED else _text(row["user"]).strip()


def _from_template(template: str | None, name: str) -> str | None:
    if template is None:
        return None
    try:
        return template.format(user=name)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f'[notify].address_template {template!r}: use only {{user}}, e.g. "{{user}}@example.org"'
        ) from exc


def resolve_address(name: str, team: str, settings: Notify, book: AddressBook) -> str | None:
    """An address for `name`: itself, directory, template, team lead, admin; None if none is valid."""
    if mail.is_address(name):
        return name
    candidates: list[str | None] = []
    if name and name != UNALLOCATED:  # never mail "unallocated@example.org"
        candidates += [book.emails.get(name), _from_template(settings.address_template, name)]
    candidates += [*book.leads.get(team, ())[:1], settings.admin_address]
    return next((c for c in candidates if mail.is_address(c)), None)


def unresolved_owners(
    findings: pd.DataFrame | Findings, settings: Notify, directory: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """Owners with no address of their own, and who gets their findings instead (for the report)."""
    book = address_book(directory)
    # Count findings per (owner, user, team) first: a handful of combinations, many findings
    # (`Findings` counted them as they were found).
    combos = (
        findings.owners
        if isinstance(findings, Findings)
        else findings.groupby(["owner", "user", "team"], dropna=False, sort=False).size()
    )
    counts: dict[tuple[str, str], int] = {}
    for (owner, user, team), n in combos.items():
        key = (_owner_name({"owner": owner, "user": user}), _text(team))
        counts[key] = counts.get(key, 0) + int(n)
    listed = []
    for (name, team), findings_n in sorted(counts.items()):
        personal = name != UNALLOCATED and (
            mail.is_address(name)
            or mail.is_address(book.emails.get(name))
            or mail.is_address(_from_template(settings.address_template, name))
        )
        if not personal:
            routed = resolve_address(name, team, settings, book)
            listed.append({"owner": name or UNALLOCATED, "team": team, "findings": findings_n,
                           "routed_to": routed or "nobody: pending until an address is configured"})  # fmt: skip
    return listed


# --- what to send --------------------------------------------------------------------------------


def _ranked(findings: pd.DataFrame) -> pd.DataFrame:
    """Largest kg CO2e first; unknown last; finding_id breaks ties so the order never varies."""
    return findings.sort_values(
        ["wasted_co2e_kg", "finding_id"], ascending=[False, True], na_position="last", kind="stable"
    )


def _week_key(run_date: date) -> str:
    year, week, _ = run_date.isocalendar()
    return f"{year}-W{week:02d}"


def _weekly(findings: pd.DataFrame, state: dict[str, Any], book: AddressBook, *, sender: Address,
            organisation: str, run_date: date, settings: Notify) -> list[mail.Outgoing]:  # fmt: skip
    """Each team lead's summary of the team's findings first seen in the week ending run_date.

    Only on `weekly_summary_weekday`, only to leads not yet sent this (team, ISO week), and only
    for teams with findings that week: a lead gets no empty summaries.
    """
    if WEEKDAYS[run_date.weekday()] != settings.weekly_summary_weekday:
        return []
    first_seen = pd.to_datetime(findings["first_seen"], errors="coerce").dt.date
    start = run_date - timedelta(days=WEEK_DAYS - 1)
    week = findings[(first_seen >= start) & (first_seen <= run_date)]
    done = state["weekly"].get(_week_key(run_date), {})
    summaries = []
    for team, leads in sorted(book.leads.items()):
        team_findings = week[week["team"].astype(str) == team]
        for lead in leads:
            if team_findings.empty or lead in done.get(team, {}).get("to", []):
                continue
            summaries.append(mail.compose_weekly(lead, team, team_findings, sender=sender,
                                                 organisation=organisation, run_date=run_date,
                                                 days=WEEK_DAYS))  # fmt: skip
    return summaries


# --- state ---------------------------------------------------------------------------------------


def read_state(state_dir: Path) -> dict[str, Any]:
    """What was already notified; empty if the file does not exist yet."""
    path = state_dir / STATE_FILE
    if not path.exists():
        return {"findings": {}, "weekly": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return {"findings": dict(state["findings"]), "weekly": dict(state["weekly"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: cannot read the notification state ({exc}). Restore it from a backup; "
            "deleting it would send every open finding again."
        ) from exc


def _record(state: dict[str, Any], delivered: list[mail.Outgoing], run_date: date) -> None:
    sent_on = run_date.isoformat()
    for item in delivered:
        if item.kind == "digest":
            for finding_id in item.finding_ids:
                state["findings"][finding_id] = {"sent_on": sent_on, "to": item.to}
        else:
            teams = state["weekly"].setdefault(_week_key(run_date), {})
            entry = teams.setdefault(item.team, {"sent_on": sent_on, "to": []})
            entry["to"] = sorted({*entry["to"], item.to})


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Atomically (tmp + rename): a crash leaves the old state or the new, never half of one."""
    path = state_dir / STATE_FILE
    tmp = state_dir / f".{STATE_FILE}.tmp"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ReportingError(
            f"{path}: cannot record which findings were e-mailed ({exc.strerror or exc}); they "
            "will be sent again next night. Check that the ledger folder is writable."
        ) from exc


# --- inputs: the directory and the SMTP password -------------------------------------------------


def load_directory(path: Path) -> pd.DataFrame:
    """The address directory, CSV `user,email,team,team_lead` (text, "" where blank)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in DIRECTORY_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(
                    f"{path}, line 1: the [notify].directory file lacks column(s) "
                    f"{', '.join(missing)}; its header must be {','.join(DIRECTORY_COLUMNS)}"
                )
            rows = [_directory_row(path, reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read the [notify].directory file ({exc})") from exc
    return pd.DataFrame(rows, columns=DIRECTORY_COLUMNS, dtype=object)


def _directory_row(path: Path, line: int, row: dict[str, Any]) -> dict[str, str]:
    """One directory line, stripped and checked; extra or missing fields are errors."""
    if None in row or any(row[c] is None for c in DIRECTORY_COLUMNS):
        raise ConfigError(f"{path}, line {line}: expected {len(DIRECTORY_COLUMNS)} fields")
    values = {c: row[c].strip() for c in DIRECTORY_COLUMNS}
    if not values["user"]:
        raise ConfigError(f"{path}, line {line}: the user is empty")
    if values["email"] and not mail.is_address(values["email"]):
        raise ConfigError(f"{path}, line {line}: {values['email']!r} is not an e-mail address")
    if "@" in values["team_lead"] and not mail.is_address(values["team_lead"]):
        raise ConfigError(
            f"{path}, line {line}: team_lead {values['team_lead']!r} is not an e-mail address"
        )
    return values


def read_password(settings: Notify, base_dir: Path, environ: Mapping[str, str]) -> str | None:
    """The SMTP password from `password_env` or `password_file` (relative to base_dir); None if neither."""
    if settings.password_env and settings.password_file:
        raise ConfigError("[notify]: set password_env or password_file, not both")
    if settings.password_env:
        password = environ.get(settings.password_env)
        if not password:
            raise ConfigError(
                f"[notify].password_env names {settings.password_env}, which is not set or empty. "
                "Export it in the job's environment, or use password_file."
            )
        return password
    if settings.password_file:
        path = base_dir / settings.password_file
        try:
            password = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"[notify].password_file: cannot read {path} ({type(exc).__name__})"
            ) from exc
        if not password:
            raise ConfigError(f"[notify].password_file: {path} is empty")
        return password
    return None
