"""The PDF renderer fetches nothing: no network, no file outside the packaged templates. Proven
with payload URLs pointing at a local listener that records every request and at local files
(/etc/passwd and a canary file of known content), both through the whole pipeline (job names,
labels, tags: tests/hostile.py) and in raw HTML handed straight to the renderer."""

from __future__ import annotations

from pathlib import Path

import pytest
import weasyprint
from pypdf import PdfReader

from reporting import report
from tests.hostile import HostileRun, listener

CANARY = "canary-7d1f3a: this file must never reach a PDF"


def _pdf_text(path: Path) -> tuple[str, dict[str, list[bytes]]]:
    reader = PdfReader(path)
    return "\n".join(page.extract_text() for page in reader.pages), reader.attachments


def _passwd_line() -> str:
    """The first line of /etc/passwd, whatever this machine holds there ("" if none)."""
    try:
        return Path("/etc/passwd").read_text().splitlines()[0]
    except (OSError, IndexError):
        return ""


def _hostile_html(base_url: str, canary: Path) -> str:
    """Markup that loads from everywhere a document can: what data must never become."""
    outside = canary.as_uri()
    return f"""<!DOCTYPE html><html><head>
      <link rel="stylesheet" href="{base_url}/sheet.css">
      <link rel="attachment" href="file:///etc/passwd"><link rel="attachment" href="{outside}">
      <style>@import url("{base_url}/import.css");
             body {{ background: url("{base_url}/bg.png") }}
             @font-face {{ font-family: X; src: url("{outside}") }}
             p::after {{ content: url("{base_url}/after.png") }}</style>
      </head><body><p>hostile</p>
      <img src="{base_url}/img.png"><img src="file:///etc/passwd"><img src="{outside}">
      <img src="../../../../../../../etc/passwd"><object data="{outside}" type="text/plain"></object>
      <embed src="{base_url}/embed"><iframe src="{outside}"></iframe>
      <a rel="attachment" href="{outside}">attached</a><svg><image href="{base_url}/svg.png"/></svg>
      </body></html>"""


def test_the_pipeline_with_payload_urls_fetched_nothing(hostile_run: HostileRun) -> None:
    assert hostile_run.exit_code == 0 and hostile_run.requests == []
    text, attachments = hostile_run.pdf
    assert f"{hostile_run.base_url}/plain-url" in text  # the URL is shown, as text
    assert "file:///etc/passwd" in text and attachments == {}
    if _passwd_line():
        assert _passwd_line() not in text


def test_raw_html_straight_to_the_renderer_loads_nothing(tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text(CANARY)
    with listener() as (base_url, requests):
        report.write_pdf(_hostile_html(base_url, canary), tmp_path / "raw.pdf")
    text, attachments = _pdf_text(tmp_path / "raw.pdf")
    assert requests == [] and attachments == {}
    assert "hostile" in text and CANARY not in text
    if _passwd_line():
        assert _passwd_line() not in text
    assert b"canary-7d1f3a" not in (tmp_path / "raw.pdf").read_bytes()


def test_control_weasyprint_unconfined_would_leak(tmp_path: Path) -> None:
    """The same markup without our fetcher reaches the listener and attaches the files: the
    checks above can fail."""
    canary = tmp_path / "canary.txt"
    canary.write_text(CANARY)
    with listener() as (base_url, requests):
        weasyprint.HTML(string=_hostile_html(base_url, canary)).write_pdf(tmp_path / "open.pdf")
    _, attachments = _pdf_text(tmp_path / "open.pdf")
    assert "/sheet.css" in requests and "/img.png" in requests
    assert [CANARY.encode()] in attachments.values()


def test_symlink_out_of_the_templates_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "templates"
    root.mkdir()
    (root / "ok.css").write_text("p {}")
    secret = tmp_path / "secret.txt"
    secret.write_text(CANARY)
    (root / "link.css").symlink_to(secret)
    fetcher = report.ConfinedURLFetcher(root)
    assert fetcher.fetch((root / "ok.css").as_uri()).read() == b"p {}"
    with pytest.raises(report.RefusedURL):
        fetcher.fetch((root / "link.css").as_uri())
    with pytest.raises(report.RefusedURL):
        fetcher.fetch(root.as_uri() + "/%2e%2e/secret.txt")
