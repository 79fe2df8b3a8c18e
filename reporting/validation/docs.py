"""Data Docs: Great Expectations' own HTML of this run's validation results, under
`<out>/data_docs/` (index.html). The report links to it and never embeds it: GX's pages carry
timestamps, which must stay out of report.html, report.pdf and summary.json."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

log = logging.getLogger("reporting")

DOCS_DIR = "data_docs"


def write_data_docs(validator: Any, out_dir: Path) -> Path:
    """Write the Data Docs of the validator's results (replacing older ones); return index.html."""
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
            run_id=RunIdentifier(run_name="greenops"),
            batch_identifier=name,
        )
        context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=["greenops"])
    log.info("wrote Data Docs to %s", target / "index.html")
    return target / "index.html"
