"""The validate stage: Great Expectations suites on what the readers produced, between ingest and
attribute. `formats` declares one suite per raw source format (Slurm, OpenCost, FOCUS, AWS CUR,
GCP, Azure, providers' carbon), `suites` one per canonical table (usage, charges, ledger); `run`
runs them and turns failures into quarantine rows, warnings and gate failures; `runlevel` holds
the run-level checks (drift, freshness, billing sums); `carried` estimates what quarantined rows
would have carried; `stage` ties them to the intake and `docs` writes GX's Data Docs. Importing
this package does not import Great Expectations (seconds to load); `stage`, `run` and `docs` do."""
