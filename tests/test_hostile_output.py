"""The payload corpus (tests/hostile.py) through the whole pipeline: `greenops run --dry-run` on
inputs whose job names, comments, labels, tags, team and model names are payloads. Every output
shows them as inert text: parsed HTML holds no element or attribute from data, e-mail headers
carry no injected line, CSV cells start with no formula prefix, templates evaluate nothing, and
every file stays inside the output folder."""

from __future__ import annotations

import csv
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pandas as pd
import pytest

from reporting.outputs import csv_safe, csv_text
from tests.hostile import (
    FORMULA_PREFIXES,
    PAYLOADS,
    HostileRun,
    inert_problems,
    parse_html,
)

MAIL_HEADERS = {
    "Auto-Submitted", "Content-Type", "Date", "From", "MIME-Version", "Message-ID", "Subject", "To",
}  # fmt: skip
NUMERIC_COLUMNS = {
    "line", "measured_value", "threshold", "wasted_gpu_hours", "wasted_energy_kwh",
    "wasted_cost", "wasted_co2e_kg",
}  # fmt: skip
EVALUATED = ("JINJAJINJA", "<class 'str'>")  # what jinja_block / jinja_class give if evaluated
# Payloads that arrive whole as a team name (a sacct comment: no "|" or line break in them).
AS_TEAM_NAMES = ("script", "img_onerror", "attr_break", "svg_onload", "jinja_expr", "jinja_block")


def _mails(run: HostileRun) -> list[tuple[bytes, EmailMessage]]:
    """(bytes as received by the SMTP server, parsed message) of every e-mail the run sent."""
    return [(raw, BytesParser(policy=policy.default).parsebytes(raw)) for raw in run.mails]


def _all_output_text(run: HostileRun) -> dict[Path, str]:
    return {
        path: path.read_bytes().decode("utf-8", "replace")
        for path in run.out.rglob("*")
        if path.is_file() and path.suffix in (".html", ".eml", ".csv", ".json")
    }


def test_the_run_succeeds_and_fetches_nothing(hostile_run: HostileRun) -> None:
    assert hostile_run.exit_code == 0, hostile_run.output
    assert len(_mails(hostile_run)) >= 4  # digests and the hostile teams' weekly summaries
    assert hostile_run.requests == []


def test_report_html_holds_data_only_as_text(hostile_run: HostileRun) -> None:
    html = (hostile_run.out / "report.html").read_text(encoding="utf-8")
    assert inert_problems(html, allowed_links=("#", "data_docs/")) == []
    text = parse_html(html).all_text
    for name in AS_TEAM_NAMES:
        assert PAYLOADS[name] in text, name
    assert "Lab <b>&amp;</b> {{7*7}}" in text  # the organisation's own name, as written
    # A 10 kB name is shown cut (the PDF layout of such text is quadratic), a bidi override
    # is dropped (it would disguise the text around it).
    assert "L" * 299 + "…" in text and "L" * 300 not in text
    assert "\u202e" not in text and "invoicegnp.exe" in text


def test_serving_volume_model_names_reach_the_report_as_text(hostile_run: HostileRun) -> None:
    html = (hostile_run.out / "report.html").read_text(encoding="utf-8")
    served = html.split('<table class="numbers serving-table">', 1)[1].split("</table>", 1)[0]
    text = parse_html(served).all_text
    for name in ("script", "img_onerror", "jinja_expr", "file_url"):
        assert PAYLOADS[name] in text, name
    assert "<script" not in served and "L" * 300 not in text


def test_report_pdf_shows_the_payloads_as_text(hostile_run: HostileRun) -> None:
    text, attachments = hostile_run.pdf
    assert "{{7*7}}" in text and "<script>alert('xss')</script>" in text
    assert not any(marker in text for marker in EVALUATED)
    assert attachments == {}  # `<link rel="attachment">` from data embedded nothing


def test_emails_have_only_their_own_headers(hostile_run: HostileRun) -> None:
    for raw, message in _mails(hostile_run):
        subject = message["Subject"]
        assert set(message.keys()) == MAIL_HEADERS, subject
        for name, value in message.items():
            assert "\r" not in value and "\n" not in value, (subject, name)
        head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
        for line in re.split(rb"\r?\n", head):  # each line a header or its folded continuation
            assert re.match(rb"(?:[A-Za-z-]+: |[ \t])", line), (subject, line)
    weekly = [m["Subject"] for _, m in _mails(hostile_run) if "weekly" in m["Subject"]]
    assert any("<script>alert('xss')</script>" in subject for subject in weekly)


def test_email_bodies_are_inert_and_load_nothing(hostile_run: HostileRun) -> None:
    for _, message in _mails(hostile_run):
        html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
        assert html_part is not None and text_part is not None
        html, text = html_part.get_content(), text_part.get_content()
        # No links at all (data never becomes one), no images, no remote anything.
        assert inert_problems(html, allowed_links=()) == [], message["Subject"]
        assert not re.search(r"(?i)https?://|file://|www\.", html + text), message["Subject"]
        assert "\u202e" not in html + text and "\u2066" not in html + text
        assert not any(marker in html + text for marker in EVALUATED)
    digests = [m for _, m in _mails(hostile_run) if "weekly" not in m["Subject"]]
    bodies = "".join(m.get_body(("plain",)).get_content() for m in digests)
    assert "{{7*7}}" in bodies and "<script>alert('xss')</script>" in bodies


@pytest.mark.parametrize("name", ["findings.csv", "quarantine.csv"])
def test_csv_cells_start_with_no_formula_prefix(hostile_run: HostileRun, name: str) -> None:
    with open(hostile_run.out / name, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, name
    for row in rows:
        for column, cell in row.items():
            if column in NUMERIC_COLUMNS:
                assert cell == "" or float(cell) == float(cell), (column, cell)
            else:  # a short row (a CR split it) would give None here
                assert not cell.startswith(FORMULA_PREFIXES), (name, column, cell[:40])
    if name == "quarantine.csv":  # the payloads that break a sacct line, as written, defused
        raws = {row["raw"] for row in rows}
        assert "'" + PAYLOADS["formula_eq"] + "|breaks the line" in raws
        assert "'" + PAYLOADS["formula_at"] + "|breaks the line" in raws


def test_csv_safe_keeps_numbers_numbers() -> None:
    frame = pd.DataFrame({"cost": [-1.5, 2.0], "line": [1, 2], "name": ["-5", "=1"]})
    safe = csv_safe(frame)
    assert safe["cost"].tolist() == [-1.5, 2.0] and safe["name"].tolist() == ["'-5", "'=1"]
    assert csv_text(frame).split("\r\n")[1] == "-1.5,1,'-5"
    assert csv_text(pd.DataFrame({"raw": ["a\r=2"]})) == 'raw\r\n"a\r=2"\r\n'  # CR quoted


def test_no_template_evaluates_data(hostile_run: HostileRun) -> None:
    texts = _all_output_text(hostile_run)
    for n, (_, message) in enumerate(_mails(hostile_run)):
        for part in message.walk():
            if part.get_content_maintype() == "text":
                texts[Path(f"mail {n} {part.get_content_type()}")] = part.get_content()
    assert len(texts) > len(_mails(hostile_run))
    for path, text in texts.items():
        assert not any(marker in text for marker in EVALUATED), path


def test_data_docs_hold_no_active_content_from_data(hostile_run: HostileRun) -> None:
    """Great Expectations' own pages have scripts and CDN links (theirs, not ours); no element,
    attribute or script of theirs carries a payload."""
    for path in (hostile_run.out / "data_docs").rglob("*.html"):
        markup = parse_html(path.read_text(encoding="utf-8"))
        for tag, attrs in markup.tags:
            assert not any("alert(" in (value or "") for value in attrs.values()), (path, tag)
            assert (tag, attrs.get("src")) != ("img", "x"), path
        assert not any("alert(" in code for code in markup.code), path


def test_every_file_stays_inside_the_output_folder(hostile_run: HostileRun) -> None:
    inputs = {"greenops.toml", "owners.csv", "slurm/sacct.psv", "k8s/alloc.json", "cloud/focus.csv",
              "serving/volume.csv"}  # fmt: skip
    written = {
        p.relative_to(hostile_run.folder).as_posix()
        for p in hostile_run.folder.rglob("*")
        if p.is_file() and not p.resolve().is_relative_to(hostile_run.out.resolve())
    }
    assert written == inputs
    stray = [p for p in hostile_run.folder.parent.iterdir() if p.is_file()]
    assert [p.name for p in stray if not p.name.startswith(".")] == []  # pytest's .lock aside


def test_in_a_browser_no_script_runs_and_no_request_leaves(hostile_run: HostileRun) -> None:
    """The hostile report opened in headless Chromium: nothing but the file itself is loaded,
    no console error or exception (an injected script or handler would raise or log one)."""
    from tests import chromium
    from tests.test_quarterly_report import need

    need("chromium")
    page = chromium.open_page(chromium.file_url(hostile_run.out / "report.html"))
    assert page.errors() == [] and page.failed == [] and page.exceptions == []
    assert page.requests == [chromium.file_url(hostile_run.out / "report.html")]
    assert hostile_run.requests == []  # and the listener the payload URLs point at heard nothing
