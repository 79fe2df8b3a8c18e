"""The expectation suites, defined in code and versioned with it: one per canonical table
(the suites per raw source format are in formats.py).

Each expectation carries in its `meta`:
- `on_failure`: what a failing row does — `quarantine` (the row leaves the accepted rows before
  attribution, into quarantine with the expectation's name as `check`), `warn` (the row stays;
  the run carries a warning) or `gate` (the run is marked and exits 3; the rows stay, because a
  ledger row failing is a bug in attribution, and dropping it would break cost conservation);
- `rule`: the human wording used in quarantine reasons and warnings.

Only expectations that can fail are declared (the per-format suites also re-assert what their
reader guarantees, so that Data Docs show it per format). The raw-source readers already quarantine lines
that cannot be parsed (wrong field count, bad bytes, unparseable values), superseded Slurm
records (job id + submit time: `duplicate`) and, for finished runs, end before start and
negative durations; the usage suite repeats the last two so that every reader (and runs still
in progress) is held to them.

Derived columns (`validate_*` frames in run.py add them before GX sees the table):
- `gpus_per_node` = n_gpus / n_nodes;
- `measured_node_power_w` = measured_energy_kwh × 3.6e6 / duration_s / n_nodes.
"""

from __future__ import annotations

from typing import Any

import great_expectations as gx

from reporting.config import PHASES, UNALLOCATED

J_PER_KWH = 3_600_000
# A Slurm node's gres/gpu count: 8 physical GPUs in today's densest HGX/DGX nodes, 16 in a DGX-2;
# with MIG every slice counts as a GPU (7 per A100/H100 × 8 = 56). 64 per node is above any real
# node and catches unit slips (GPU-seconds or memory read as a count) and corrupted TRES strings.
MAX_GPUS_PER_NODE = 64
# The methodology's default max_node_power_w: mean measured power per node above this is not
# physical. The attribute stage already rejects such measured energy and models the run instead,
# so here it only warns (the run is good; its meter reading is not).
MAX_NODE_POWER_W = 14_300
FOCUS_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
LEDGER_SCOPES = ("2", "3.1")
# Floating-point noise, not a negative quantity: energy split over billing lines (credits net
# against usage) can land at -3e-10 kWh on the real FOCUS sample. Anything below is a real bug.
ROUNDING_TOLERANCE = -1e-6

E = gx.expectations

SUITE_VERSION = "2"  # bump when an expectation changes; recorded in summary.json


def meta(on_failure: str, rule: str) -> dict[str, Any]:
    return {"on_failure": on_failure, "rule": rule}


def usage_expectations() -> list[Any]:
    """The canonical `usage` table (one row per run)."""
    q = "quarantine"
    return [
        *[
            E.ExpectColumnToExist(column=c, meta=meta("gate", f"column {c} present"))
            for c in (
                "usage_id",
                "site",
                "state",
                "started_at",
                "ended_at",
                "duration_s",
                "n_nodes",
                "n_cpus",
                "n_gpus",
                "measured_energy_kwh",
            )
        ],
        *[
            E.ExpectColumnValuesToNotBeNull(column=c, meta=meta(q, f"{c} is set"))
            for c in ("usage_id", "site", "state")
        ],
        E.ExpectColumnValuesToBeUnique(column="usage_id", meta=meta(q, "usage_id is unique")),
        E.ExpectColumnValuesToBeBetween(
            column="duration_s", min_value=0, meta=meta(q, "duration_s ≥ 0")
        ),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ended_at",
            column_B="started_at",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta=meta(q, "ended_at ≥ started_at"),
        ),
        E.ExpectColumnValuesToBeBetween(column="n_cpus", min_value=0, meta=meta(q, "n_cpus ≥ 0")),
        E.ExpectColumnValuesToBeBetween(column="n_gpus", min_value=0, meta=meta(q, "n_gpus ≥ 0")),
        E.ExpectColumnValuesToBeBetween(
            column="gpus_per_node",
            min_value=0,
            max_value=MAX_GPUS_PER_NODE,
            meta=meta(q, f"n_gpus / n_nodes ≤ {MAX_GPUS_PER_NODE}"),
        ),
        E.ExpectColumnValuesToBeBetween(
            column="measured_node_power_w",
            min_value=0,
            max_value=MAX_NODE_POWER_W,
            meta=meta("warn", f"measured mean power per node ≤ {MAX_NODE_POWER_W:,} W"),
        ),
    ]


def charges_expectations() -> list[Any]:
    """The canonical `charges` table (one row per billing line). Negative costs (credits,
    refunds) are legitimate: billed_cost has no lower bound."""
    q = "quarantine"
    return [
        *[
            E.ExpectColumnToExist(column=c, meta=meta("gate", f"column {c} present"))
            for c in (
                "charge_id",
                "charge_period_start",
                "charge_period_end",
                "charge_category",
                "billed_cost",
                "currency",
            )
        ],
        E.ExpectColumnValuesToNotBeNull(column="billed_cost", meta=meta(q, "billed_cost is set")),
        # charge_id hashes the raw row (+ its occurrence within the file): the same line in two
        # files of an input (an overlapping re-export) would be billed twice
        E.ExpectColumnValuesToBeUnique(column="charge_id", meta=meta(q, "charge_id is unique")),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="charge_period_end",
            column_B="charge_period_start",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta=meta(q, "charge_period_end ≥ charge_period_start"),
        ),
        E.ExpectColumnValuesToMatchRegex(
            column="currency", regex=r"^[A-Z]{3}$", meta=meta(q, "currency is an ISO 4217 code")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="charge_category",
            value_set=list(FOCUS_CATEGORIES),
            meta=meta(q, f"charge_category in {', '.join(FOCUS_CATEGORIES)}"),
        ),
    ]


def ledger_expectations() -> list[Any]:
    """Ledger rows before they are written: a failure is an attribution bug, so it gates."""
    g = "gate"
    non_negative = ("it_energy_kwh", "facility_energy_kwh", "co2e_location_kg",
                    "co2e_market_kg", "co2e_embodied_kg")  # fmt: skip
    return [
        *[
            E.ExpectColumnValuesToBeBetween(
                column=c, min_value=ROUNDING_TOLERANCE, meta=meta(g, f"{c} ≥ 0")
            )
            for c in non_negative
        ],
        *[
            E.ExpectColumnValuesToNotBeNull(column=c, meta=meta(g, f"{c} is set"))
            for c in ("team", "model", "phase")
        ],
        E.ExpectColumnValuesToBeInSet(
            column="scope", value_set=list(LEDGER_SCOPES), meta=meta(g, "scope is 2 or 3.1")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="phase",
            value_set=[*PHASES, UNALLOCATED],
            meta=meta(g, f"phase in {', '.join([*PHASES, UNALLOCATED])}"),
        ),
    ]


SUITES = {
    "usage": usage_expectations,
    "charges": charges_expectations,
    "ledger": ledger_expectations,
}


def build_suite(name: str, expectations: list[Any]) -> Any:
    """A fresh gx.ExpectationSuite named `greenops.<name>`."""
    suite = gx.ExpectationSuite(name=f"greenops.{name}", meta={"version": SUITE_VERSION})
    for expectation in expectations:
        suite.add_expectation(expectation)
    return suite
