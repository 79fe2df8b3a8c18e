"""Data Docs: Great Expectations' own HTML of this run's validation results, under
`<out>/data_docs/` (index.html). The report links to it and never embeds it: GX's pages carry
timestamps, which must stay out of report.html, report.pdf and summary.json."""

from __future__ import annotations

import logging
import re
import shutil
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

log = logging.getLogger("reporting")

DOCS_DIR = "data_docs"


def write_data_docs(validator: Any, out_dir: Path, run_date: date | None = None) -> Path:
    """Write the Data Docs of the validator's results (replacing older ones); return index.html.
    The results are dated to the run date (midnight UTC), not the clock, like every output."""
    run_time = datetime.combine(run_date or date(1970, 1, 1), time(), UTC)
    target = out_dir / DOCS_DIR
    if target.exists():
        shutil.rmtree(target)
    context = validator.context
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(target.resolve()),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    if "greenops" not in context.get_site_names():
        context.add_data_docs_site(site_name="greenops", site_config=site)
    for name, result in validator.results.items():
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=f"greenops.{name}"),
            run_id=RunIdentifier(run_name="greenops", run_time=run_time),
            batch_identifier=name,
        )
        context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=["greenops"])
    _without_clock(target, run_time)
    log.info("wrote Data Docs to %s", target / "index.html")
    return target / "index.html"


_CLOCK_QUERY = re.compile(r"\?d=\d{8}T\d{6}\.\d+Z")
_STAMP = re.compile(r"\d{8}T\d{6}\.\d{6}Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _without_clock(target: Path, run_time: datetime) -> None:
    """GX stamps the build and load times on its pages and gives their elements random ids;
    they are replaced (ids numbered in order of appearance, times other than the run date
    omitted) so the same run gives the same pages."""
    dated = run_time.strftime("%Y%m%dT%H%M%S.%fZ")
    for page in target.rglob("*.html"):
        text = _CLOCK_QUERY.sub("", page.read_text(encoding="utf-8"))
        text = _STAMP.sub(
            lambda m: m.group() if m.group() == dated else "(clock time omitted)", text
        )
        page.write_text(_numbered_ids(text), encoding="utf-8")


def _numbered_ids(text: str) -> str:
    numbers: dict[str, str] = {}
    return _UUID.sub(lambda m: numbers.setdefault(m.group(), f"gx{len(numbers)}"), text)
