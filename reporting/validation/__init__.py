"""The validate stage: Great Expectations suites on the canonical tables, between ingest and
attribute. `suites` declares them, `run` runs them and turns failures into quarantine rows,
warnings and gate failures, `runlevel` holds the run-level checks (drift, freshness), `stage`
ties them to the intake and `docs` writes GX's Data Docs. Importing this package does not import
Great Expectations (seconds to load); `stage`, `run` and `docs` do."""
