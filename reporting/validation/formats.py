"""One expectation suite per raw source format, run on the rows that format's reader produced.

The readers turn vendor text into canonical rows and quarantine what they cannot parse; these
suites then hold each format's rows to what that format promises (mandatory fields filled,
types as the reader declares them, value ranges, enumerations, natural keys), before the
canonical `usage` and `charges` suites run on every row. A format's suite only sees its own
rows: `usage` rows of `source == "slurm"`, `charges` rows of `family == "aws_cur"`, and so on.
Suites of formats with no rows this run are not run, so Data Docs list the formats read.

Natural keys:
- Slurm: cluster (site) + job id + submit time. Within an input the reader already keeps one
  record per key (a job seen in several dumps keeps its most final record; the others are
  quarantined as `duplicate`); across two inputs of the same cluster the suite quarantines the
  later copy.
- AWS CUR: `identity/LineItemId` + the usage interval start (CUR 2.0: `identity_line_item_id`),
  kept by the reader as `line_item_id` + `charge_period_start`. A repeated key is quarantined
  (the first copy in file order is kept).

DCGM telemetry (`dcgm`) only warns: a sample the reader accepted is a number on a placed GPU;
an implausible one is worth a look but the energy integration handles it (counter resets) or
coverage shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import pandas as pd

from reporting.validation.suites import meta

E = gx.expectations
Q, WARN, GATE = "quarantine", "warn", "gate"

# Every state `sacct` prints (JOB STATE CODES in its man page), as the reader reduces them
# (`CANCELLED by 123` → CANCELLED). Anything else is a corrupted or mis-split State field.
SLURM_STATES = (
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "COMPLETING", "CONFIGURING", "DEADLINE", "FAILED",
    "NODE_FAIL", "OUT_OF_MEMORY", "PENDING", "PREEMPTED", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "RESIZING", "RESV_DEL_HOLD", "REVOKED", "RUNNING", "SIGNALING",
    "SPECIAL_EXIT", "STAGE_OUT", "STOPPED", "SUSPENDED", "TIMEOUT",
)  # fmt: skip
OPENCOST_KINDS = ("pod", "idle", "unallocated", "unmounted", "aggregate")
PRICING_CATEGORIES = ("Standard", "Dynamic", "Committed", "Other")
COMMITMENT_STATUSES = ("Used", "Unused")
# A charge period longer than a leap year is a mistyped date (2062 for 2026), not a real line:
# the longest real ones are a month (CUR monthly fees) or a term purchase dated to its month.
MAX_CHARGE_PERIOD_HOURS = 366 * 24
# The largest instances sold have 1,920 vCPUs (AWS u7inh-32tb.480xlarge); above 2,048 is a
# unit or column slip.
MAX_VCPUS = 2048
SECONDS_PER_HOUR = 3600


def _types(columns: dict[str, str]) -> list[Any]:
    """Column dtypes the reader declares: a mismatch is a reader bug, so it gates."""
    return [
        E.ExpectColumnValuesToBeOfType(column=c, type_=t, meta=meta(GATE, f"{c} is {t}"))
        for c, t in columns.items()
    ]


def _between(
    column: str, low: float | None, high: float | None, rule: str, on_failure: str = Q
) -> Any:
    return E.ExpectColumnValuesToBeBetween(
        column=column, min_value=low, max_value=high, meta=meta(on_failure, rule)
    )


def slurm_expectations() -> list[Any]:
    """`usage` rows read from `sacct` dumps."""
    return [
        *_types(
            {
                "duration_s": "float64",
                "n_nodes": "float64",
                "n_gpus": "float64",
                "timelimit_s": "float64",
                "measured_energy_kwh": "float64",
            }
        ),
        E.ExpectColumnValuesToBeInSet(
            column="state",
            value_set=list(SLURM_STATES),
            meta=meta(Q, "State is a Slurm job state"),
        ),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["site", "job_id", "submitted_at"],  # job ids repeat across clusters
            ignore_row_if="any_value_is_missing",
            meta=meta(Q, "cluster + job id + submit time is unique"),
        ),
        _between("n_nodes", 1, None, "NNodes ≥ 1"),
        _between("timelimit_s", 0, None, "Timelimit ≥ 0"),
        _between("mem_requested_gb", 0, None, "ReqMem ≥ 0"),
        _between("mem_used_max_gb", 0, None, "MaxRSS / TRESUsageInTot mem ≥ 0"),
        _between("cpu_time_s", 0, None, "TotalCPU ≥ 0"),
        _between("measured_energy_kwh", 0, None, "ConsumedEnergyRaw ≥ 0"),
        _between("cpu_util_ratio", 0, 1, "CPU utilisation in [0, 1]"),
        _between("gpu_util_ratio", 0, 1, "GPU utilisation in [0, 1]"),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="started_at",
            column_B="submitted_at",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            # a requeued job may carry its requeue time as Submit: worth a look, not a rejection
            meta=meta(WARN, "Start ≥ Submit"),
        ),
    ]


def opencost_expectations() -> list[Any]:
    """`usage` rows read from OpenCost allocations (they carry their own cost)."""
    return [
        *_types({"cost": "float64", "n_gpus": "float64", "duration_s": "float64"}),
        E.ExpectColumnValuesToNotBeNull(column="cost", meta=meta(Q, "totalCost is set")),
        E.ExpectColumnValuesToMatchRegex(
            column="currency", regex=r"^[A-Z]{3}$", meta=meta(Q, "currency is an ISO 4217 code")
        ),
        E.ExpectColumnValuesToBeInSet(
            column="allocation_kind",
            value_set=list(OPENCOST_KINDS),
            meta=meta(Q, f"allocation kind in {', '.join(OPENCOST_KINDS)}"),
        ),
        _between("cpu_util_ratio", 0, 1, "CPU efficiency in [0, 1]"),
        _between("mem_requested_gb", 0, None, "RAM request ≥ 0"),
    ]


def _billing(not_null: dict[str, str], provider: str | None) -> list[Any]:
    """What every billing family promises, plus its mandatory fields and provider name."""
    found = [
        *_types({"billed_cost": "float64", "effective_cost": "float64", "line": "int64"}),
        *[
            E.ExpectColumnValuesToNotBeNull(column=c, meta=meta(Q, f"{field} is set"))
            for c, field in not_null.items()
        ],
        E.ExpectColumnValuesToBeInSet(
            column="pricing_category",
            value_set=list(PRICING_CATEGORIES),
            meta=meta(Q, f"pricing category in {', '.join(PRICING_CATEGORIES)}"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="commitment_status",
            value_set=list(COMMITMENT_STATUSES),
            meta=meta(Q, "commitment status is Used or Unused"),
        ),
        _between("charge_period_hours", 0, MAX_CHARGE_PERIOD_HOURS, "charge period ≤ 366 days"),
        _between("vcpus", 1, MAX_VCPUS, f"vCPUs in [1, {MAX_VCPUS:,}]"),
    ]
    if provider:
        found.append(
            E.ExpectColumnValuesToBeInSet(
                column="provider", value_set=[provider], meta=meta(Q, f"provider is {provider}")
            )
        )
    return found


def focus_expectations() -> list[Any]:
    return _billing(
        {"billing_account_id": "BillingAccountId", "billing_period_start": "BillingPeriodStart",
         "provider": "ProviderName"},
        None,
    )  # fmt: skip


def aws_cur_expectations() -> list[Any]:
    return [
        *_billing({"billing_period_start": "bill/BillingPeriodStartDate"}, "aws"),
        E.ExpectCompoundColumnsToBeUnique(
            column_list=["line_item_id", "charge_period_start"],
            ignore_row_if="any_value_is_missing",
            meta=meta(Q, "identity/LineItemId + lineItem/UsageStartDate is unique"),
        ),
    ]


def gcp_billing_expectations() -> list[Any]:
    return _billing(
        {"billing_account_id": "billing_account_id", "billing_period_start": "invoice.month"},
        "gcp",
    )


def azure_cost_expectations() -> list[Any]:
    return _billing({"sub_account_id": "SubscriptionId"}, "azure")


def vendor_carbon_expectations() -> list[Any]:
    """Providers' own carbon figures: shown beside ours, never added, so failures only warn."""
    return [
        *[
            E.ExpectColumnValuesToBeBetween(
                column=c, min_value=0, meta=meta(WARN, f"{c} ≥ 0 (provider's figure)")
            )
            for c in ("co2e_location_kg", "co2e_market_kg")
        ],
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="period_end",
            column_B="period_start",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta=meta(WARN, "period end ≥ period start"),
        ),
        E.ExpectColumnValuesToBeInSet(
            column="provider", value_set=["aws", "gcp"], meta=meta(WARN, "provider is aws or gcp")
        ),
    ]


def slurm_view(rows: pd.DataFrame) -> pd.DataFrame:
    """The job id, out of `usage_id` = slurm:<site>:<job id>:<submit>."""
    return rows.assign(job_id=rows["usage_id"].str.rsplit(":", n=2).str[1])


# The largest GPU boards draw 1,200 W (B200 / GB200 per GPU, NVIDIA's data sheets); a
# reading above 1,500 W is a unit slip (mW) or a corrupted sample.
MAX_GPU_POWER_W = 1500.0


def dcgm_expectations() -> list[Any]:
    """GPU samples from dcgm-exporter: plausible power and utilisation."""
    return [
        E.ExpectColumnValuesToNotBeNull(column="host", meta=meta(WARN, "the sample names a host")),
        _between("power_w", 0, MAX_GPU_POWER_W, "GPU power in [0, 1,500] W", WARN),
        _between("gpu_util_pct", 0, 100, "GPU utilisation in [0, 100] %", WARN),
        _between("gr_engine_active_ratio", 0, 1, "graphics engine activity in [0, 1]", WARN),
    ]


def dcgm_view(samples: pd.DataFrame) -> pd.DataFrame:
    """One column per metric (NaN on the other metrics' rows, which expectations skip)."""
    view = samples[["source_file", "line", "host"]].copy()
    for metric in ("power_w", "gpu_util_pct", "gr_engine_active_ratio"):
        view[metric] = samples["value"].where(samples["metric"] == metric)
    return view


def billing_view(rows: pd.DataFrame) -> pd.DataFrame:
    length = rows["charge_period_end"] - rows["charge_period_start"]
    return rows.assign(charge_period_hours=length.dt.total_seconds() / SECONDS_PER_HOUR)


@dataclass(frozen=True)
class Format:
    """A raw format: the table its reader fills, how its rows are told apart there, its suite."""

    table: str  # usage | charges | vendor_carbon | telemetry
    column: str | None  # the column naming the format (None: the whole table)
    value: str | None
    expectations: Callable[[], list[Any]]
    view: Callable[[pd.DataFrame], pd.DataFrame] = lambda rows: rows


FORMATS: dict[str, Format] = {
    "slurm": Format("usage", "source", "slurm", slurm_expectations, slurm_view),
    "opencost": Format("usage", "source", "opencost", opencost_expectations),
    "focus": Format("charges", "family", "focus", focus_expectations, billing_view),
    "aws_cur": Format("charges", "family", "aws_cur", aws_cur_expectations, billing_view),
    "gcp_billing": Format(
        "charges", "family", "gcp_billing", gcp_billing_expectations, billing_view
    ),
    "azure_cost": Format("charges", "family", "azure_cost", azure_cost_expectations, billing_view),
    "vendor_carbon": Format("vendor_carbon", None, None, vendor_carbon_expectations),
    "dcgm": Format("telemetry", None, None, dcgm_expectations, dcgm_view),
}


def rows_of(name: str, table: pd.DataFrame) -> pd.DataFrame:
    """The rows of one format in its table, as its suite sees them (labels kept)."""
    fmt = FORMATS[name]
    rows = table if fmt.column is None else table[table[fmt.column] == fmt.value]
    return fmt.view(rows) if not rows.empty else rows
