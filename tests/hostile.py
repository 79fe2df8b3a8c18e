"""Hostile input shared by the security tests: the payload corpus, the fuzz budget, and checks
that parsed HTML holds data only as text.

Payloads go where anyone who can submit a job or tag a resource writes: job names, comments,
labels, tags, team and model names. Each must reach every output as inert text.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import http.server
import io
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings

# name → payload. Kept free of "|" and line breaks where a sacct field must carry it whole;
# PIPE_OR_NEWLINE lists the ones that cannot (they break a dump line and land in quarantine).
PAYLOADS: dict[str, str] = {
    "script": "<script>alert('xss')</script>",
    "img_onerror": '"><img src=x onerror=alert(1)>',
    "attr_break": "' onmouseover='alert(2)' x='",
    "svg_onload": "<svg/onload=alert(3)>",
    "jinja_expr": "{{7*7}}",
    "jinja_block": "{% for x in range(3) %}JINJA{% endfor %}",
    "jinja_class": "{{ ''.__class__.__mro__ }}",
    "crlf_header": "x\r\nBcc: evil@example.com",
    "formula_eq": "=cmd|' /C calc'!A0",
    "formula_plus": "+1+cmd|' /C calc'!A0",
    "formula_minus": "-2+3+cmd|' /C calc'!A0",
    "formula_at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "formula_tab": "\t=1+1",
    "formula_cr": "\r=1+1",
    "bidi": "invoice\u202egnp.exe",
    "bidi_isolate": "\u2066admin\u2069\u202dx",
    "file_url": "file:///etc/passwd",
    "css_url": "x</style><style>body{background:url(file:///etc/passwd)}</style>",
    "long": "L" * 10_000,
}
PIPE_OR_NEWLINE = {
    name for name, text in PAYLOADS.items() if "|" in text or "\n" in text or "\r" in text
}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SECRET = "s3cr3t-P4ss-7f1e9d"  # the SMTP password the secrets tests hunt for


# --- the fuzz budget -----------------------------------------------------------------------------
# `make test` runs a bounded, derandomised budget (the same examples every time); `make fuzz`
# sets HYPOTHESIS_PROFILE=fuzz for a longer random campaign (FUZZ_EXAMPLES per unit of weight).
_COMMON = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
}
settings.register_profile("bounded", max_examples=12, derandomize=True, **_COMMON)
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "80"))  # per unit of weight
settings.register_profile("fuzz", max_examples=FUZZ_EXAMPLES, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "bounded")
FUZZ = settings.get_profile(PROFILE if PROFILE in ("bounded", "fuzz") else "bounded")


def fuzz(weight: int = 1) -> settings:
    """The profile's settings with `weight` times its examples (cheap readers get more)."""
    return settings(FUZZ, max_examples=FUZZ.max_examples * weight)


# --- HTML made of data -----------------------------------------------------------------------------

# <svg> itself is allowed: the report's charts are inline SVG (matplotlib). What could make an
# SVG active is checked like the rest: <script>, <foreignObject>, handlers, links not to "#".
ACTIVE_TAGS = {
    "script", "img", "iframe", "object", "embed", "foreignobject", "link", "base", "form",
    "input", "video", "audio", "source", "frame", "frameset", "applet", "math", "image",
}  # fmt: skip


class Markup(HTMLParser):
    """Every start tag with its attributes, the text, and the code of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.code: list[str] = []  # content of <script> and <style> elements
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_code = tag in ("style", "script")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False

    def handle_data(self, data: str) -> None:
        (self.code if self._in_code else self.text).append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def parse_html(html: str) -> Markup:
    parser = Markup()
    parser.feed(html)
    parser.close()
    return parser


def inert_problems(html: str, *, allowed_links: tuple[str, ...] = ("#",)) -> list[str]:
    """What in the markup could run, load or navigate: active tags, event handlers, foreign
    links, `url(` in styles, `{{7*7}}` evaluated. Empty when the document is inert."""
    markup = parse_html(html)
    problems = []
    for tag, attrs in markup.tags:
        if tag in ACTIVE_TAGS:
            problems.append(f"<{tag}> element")
        for name, value in attrs.items():
            if name.startswith("on"):
                problems.append(f"<{tag} {name}=...> event handler")
            if name in ("src", "srcset", "background", "action", "formaction", "poster"):
                problems.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "xlink:href") and not (value or "").startswith(allowed_links):
                problems.append(f"<{tag} href={value!r}>")
            if name == "style" and "url(" in (value or ""):
                problems.append(f"<{tag} style={value!r}>")
    styles = html.count("<style")
    if styles > 1:
        problems.append(f"{styles} <style> elements (one is the report's own)")
    if "JINJAJINJA" in markup.all_text or "<class 'str'>" in markup.all_text:
        problems.append("a template payload was evaluated")
    return problems


# --- a small installation whose every free-text field is hostile -------------------------------

RUN_DATE = "2026-07-02"  # a Thursday: the weekly summaries go out too
SACCT_FIELDS = (
    "JobID|JobName|User|Account|Partition|WCKey|Comment|NodeList|NNodes|NCPUS|State|Submit|"
    "Start|End|Elapsed|Timelimit|TotalCPU|ReqMem|MaxRSS|AllocTRES|TRESUsageInTot|ConsumedEnergyRaw"
)
HOSTILE_CONFIG = """
[organisation]
name = "Lab <b>&amp;</b> {{{{7*7}}}}"

[[sites]]
name = "atlas"
grid_zone = "US-SRVC"
gpu_model = "A100-SXM4-80GB"

[[inputs]]
kind = "slurm"
path = "slurm/*.psv"
site = "atlas"
max_quarantined_ratio = 1.0

[[inputs]]
kind = "opencost"
path = "k8s/*.json"
site = "atlas"
cluster = "helios"
max_quarantined_ratio = 1.0

[[inputs]]
kind = "focus"
path = "cloud/*.csv"
max_quarantined_ratio = 1.0

[[inputs]]
kind = "serving_volume"
path = "serving/*.csv"
max_quarantined_ratio = 1.0

[[owners]]
match = {{ "tag:team" = "(?s)(?P<team>.+)" }}
team = "{{team}}"
[[owners]]
match = {{ "tag:model" = "(?s)(?P<model>.+)" }}
model = "{{model}}"
[[owners]]
match = {{ comment = "(?s)team=(?P<team>.+)" }}
team = "{{team}}"
[[owners]]
match = {{ job_name = "(?s)(?P<model>.+)" }}
model = "{{model}}"

[notify]
from_address = "greenops@example.org"
address_template = "{{user}}@example.org"
admin_address = "ops@example.org"
directory = "owners.csv"
weekly_summary_weekday = "thursday"
{notify}
"""


def hostile_texts(base_url: str) -> dict[str, str]:
    """The corpus plus payloads aimed at a listener on `base_url` (which must see nothing)."""
    return {
        **PAYLOADS,
        "url": f"{base_url}/plain-url",
        "img_url": f'"><img src="{base_url}/img.png">',
        "link_css": f'<link rel="stylesheet" href="{base_url}/x.css">',
        "attachment": f'<a rel="attachment" href="{base_url}/a.txt">a</a>',
        "attach_file": '<link rel="attachment" href="file:///etc/passwd">',
    }


def _sacct_dump(texts: dict[str, str]) -> str:
    lines = [SACCT_FIELDS]
    for n, (name, text) in enumerate(sorted(texts.items())):
        if "|" in text or "\n" in text or "\r" in text:
            lines.append(f"{text}|breaks the line")  # lands in quarantine, raw as written
            continue
        user = "alice" if n % 2 else text.replace(" ", "")[:40] or "bob"
        lines.append(
            f"{7000 + n}|{text}|{user}|acct|gpu||team={text}|node1|1|8|FAILED|"
            "2026-07-01T00:00:00|2026-07-01T00:00:00|2026-07-01T02:00:00|02:00:00|04:00:00|"
            "00:10:00|64G||billing=8,cpu=8,gres/gpu=4,mem=64G,node=1||"
        )
    return "\n".join(lines) + "\n"


def _opencost(texts: dict[str, str]) -> str:
    window = {"start": "2026-07-01T00:00:00Z", "end": "2026-07-02T00:00:00Z"}
    pods = {
        f"ml/pod-{n}": {
            "name": f"ml/pod-{n}", "window": window, "cpuCores": 2, "ramBytes": 4e9,
            "totalCost": 1.5, "minutes": 1440,
            "properties": {"namespace": "ml", "pod": f"pod-{n}", "node": "node1",
                           "labels": {"team": text, "model": text}},
        }
        for n, text in enumerate(texts.values())
    }  # fmt: skip
    return json.dumps({"code": 200, "data": [pods]})


def _focus(texts: dict[str, str]) -> str:
    from tests.conftest import focus_rows

    rows = [
        {"BilledCost": "10", "Tags": json.dumps({"team": text, "model": text}),
         "ChargeDescription": text, "ResourceId": text, "x_InstanceType": "p4d.24xlarge",
         "BillingPeriodStart": "2026-07-01T00:00:00Z", "ChargePeriodStart": "2026-07-01T00:00:00Z",
         "ChargePeriodEnd": "2026-07-01T10:00:00Z"}
        for text in texts.values()
    ]  # fmt: skip
    return focus_rows(rows)


def _serving(texts: dict[str, str]) -> str:
    """Serving volume with every payload as a model name (the report's per-model table)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", "day", "requests", "tokens"])
    for text in texts.values():
        writer.writerow([text, "2026-07-01", "10", "5000"])
    return out.getvalue()


def _directory(texts: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user", "email", "team", "team_lead"])
    for team in (texts["script"], texts["jinja_expr"], texts["bidi"], texts["long"]):
        writer.writerow(["alice", "alice@example.org", team, "lead@example.org"])
    return out.getvalue()


def write_installation(folder: Path, base_url: str, notify: str = "") -> Path:
    """Inputs (sacct dump, OpenCost allocations, FOCUS export, serving volume), owner rules routing the
    payloads into team and model names, an owners' directory; returns the config path."""
    texts = hostile_texts(base_url)
    for sub, name, body in (
        ("slurm", "sacct.psv", _sacct_dump(texts)),
        ("k8s", "alloc.json", _opencost(texts)),
        ("cloud", "focus.csv", _focus(texts)),
        ("serving", "volume.csv", _serving(texts)),
        (".", "owners.csv", _directory(texts)),
    ):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / sub / name).write_text(body, encoding="utf-8")
    config = folder / "greenops.toml"
    config.write_text(HOSTILE_CONFIG.format(notify=notify), encoding="utf-8")
    return config


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:  # http.server's name
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"fetched")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def listener() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server recording every request path: (base URL, requests)."""
    requests: list[str] = []
    handler = type("Recorder", (_Recorder,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Mailbox:
    """An aiosmtpd handler keeping each message's bytes as received, and the passwords of the
    logins it saw (accepting only `password`, if given)."""

    password: bytes | None = None
    messages: list[bytes] = field(default_factory=list)
    passwords: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> Any:  # fmt: skip
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.passwords.append(data.password)
        return AuthResult(success=data.password == self.password, handled=False)


@contextlib.contextmanager
def smtp_server(password: bytes | None) -> Iterator[tuple[int, Mailbox]]:
    """A real SMTP server on 127.0.0.1 requiring AUTH: (port, its mailbox)."""
    from aiosmtpd.controller import Controller

    box = Mailbox(password)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(box, hostname="127.0.0.1", port=port,
                            authenticator=box.authenticate, auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


def notify_section(port: int, password_source: str) -> str:
    """[notify] keys sending through the test server as `greenops`."""
    return (
        f'enabled = true\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\nsecurity = "none"\n'
        f'username = "greenops"\n{password_source}\n'
    )


@dataclass(frozen=True)
class HostileRun:
    folder: Path
    out: Path
    exit_code: int
    output: str  # stdout and stderr (logs) of the run
    requests: list[str]  # what reached the listener, during and after the run
    base_url: str
    mails: list[bytes]  # the e-mails as the SMTP server received them
    passwords: list[bytes]  # the passwords the server was given

    @functools.cached_property
    def pdf(self) -> tuple[str, dict[str, list[bytes]]]:
        """The report PDF's text and attachments (extracted once: it takes seconds)."""
        from pypdf import PdfReader

        reader = PdfReader(self.out / "report.pdf")
        return "\n".join(page.extract_text() for page in reader.pages), reader.attachments


def run_installation(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[Path, int, str]:
    """`greenops run` on a hostile installation, in-process; (out folder, exit code, output)."""
    from typer.testing import CliRunner

    from reporting.cli import app

    out = folder / "out"
    command = ["run", "--config", str(folder / "greenops.toml"), "--date", RUN_DATE,
               "--period", "2026-07", "--out", str(out), *args]  # fmt: skip
    result = CliRunner().invoke(app, command, env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return out, result.exit_code, result.output
