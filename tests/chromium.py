"""Open a page in headless Chromium and report what a reader's browser saw: console messages,
log entries (CSP violations, failed loads), every request, failed requests, and the text of
the elements a CSS selector picks.

Talks the DevTools protocol over `--remote-debugging-pipe` (NUL-terminated JSON on fds 3 and 4),
so no websocket client or extra package is needed.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEADLINE_S = 120  # a safety net against a hung browser, not a timing assertion
BINARIES = ("chromium", "chromium-browser", "google-chrome")


def binary() -> str | None:
    return next((found for name in BINARIES if (found := shutil.which(name))), None)


@dataclass
class PageReport:
    console: list[dict[str, Any]] = field(default_factory=list)  # Runtime.consoleAPICalled
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # Runtime.exceptionThrown
    log: list[dict[str, Any]] = field(default_factory=list)  # Log.entryAdded
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    failed: list[dict[str, Any]] = field(default_factory=list)  # Network.loadingFailed
    texts: list[str] = field(default_factory=list)  # textContent of the selected elements

    def errors(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error or warning log entries."""
        found = [f"console.{c['type']}: {c.get('args')}" for c in self.console
                 if c["type"] in ("error", "warning", "assert")]  # fmt: skip
        found += [
            f"exception: {e.get('exceptionDetails', {}).get('text')}" for e in self.exceptions
        ]
        found += [f"log {e['entry']['level']}: {e['entry']['text']}" for e in self.log
                  if e["entry"]["level"] in ("error", "warning")]  # fmt: skip
        return found


class _Pipe:
    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self.proc, self.out, self.inp = proc, to_browser, from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        reply = self.wait(lambda m: m.get("id") == self.next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def wait(self, wanted: Any) -> dict[str, Any]:
        """Read messages until one matches `wanted`; keep events on the way."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return dict(message)
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError("Chromium stopped answering on the DevTools pipe")
            ready, _, _ = select.select([self.inp], [], [], min(left, 1.0))
            if ready:
                self.buffer += os.read(self.inp, 1 << 20)


def open_page(url: str, selector: str = "h2") -> PageReport:
    """Load `url` in a fresh headless Chromium profile and report on it."""
    chrome = binary()
    assert chrome, "chromium not installed"
    cmd_r, cmd_w = os.pipe()
    out_r, out_w = os.pipe()
    with tempfile.TemporaryDirectory() as profile:
        args = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]  # fmt: skip

        # A tiny Python trampoline puts the pipe ends on fds 3 and 4 and execs the browser.
        trampoline = (f"import os, sys; os.dup2({cmd_r}, 3); os.dup2({out_w}, 4); "
                      "os.execv(sys.argv[1], sys.argv[1:])")  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-c", trampoline, *args], pass_fds=(cmd_r, out_w),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(cmd_r)
        os.close(out_w)
        pipe = _Pipe(proc, cmd_w, out_r)
        try:
            return _visit(pipe, url, selector)
        finally:
            try:
                pipe.send("Browser.close")
            except (RuntimeError, OSError):
                pass
            proc.wait(timeout=DEADLINE_S)
            os.close(cmd_w)
            os.close(out_r)


def _visit(pipe: _Pipe, url: str, selector: str) -> PageReport:
    target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Runtime", "Log", "Network", "Page"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.send("Page.navigate", {"url": url}, session=session)
    pipe.wait(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session)
    expression = f"JSON.stringify([...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent))"
    result = pipe.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
    )
    report = PageReport(texts=json.loads(result["result"]["value"]))
    for event in (e for e in pipe.events if e.get("sessionId") == session):
        _collect(report, event["method"], event.get("params", {}))
    return report


def _collect(report: PageReport, method: str, params: dict[str, Any]) -> None:
    if method == "Runtime.consoleAPICalled":
        report.console.append(
            {"type": params["type"], "args": [a.get("value") for a in params.get("args", [])]}
        )
    elif method == "Runtime.exceptionThrown":
        report.exceptions.append(params)
    elif method == "Log.entryAdded":
        report.log.append(params)
    elif method == "Network.requestWillBeSent":
        report.requests.append(params["request"]["url"])
    elif method == "Network.loadingFailed":
        report.failed.append(params)


def file_url(path: Path) -> str:
    return path.resolve().as_uri()
