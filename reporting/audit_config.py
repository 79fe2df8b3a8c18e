"""Config of the efficiency audit (`[audit]`) and of owner notifications (`[notify]`).

Default thresholds come from published tools (METHODS.md §6); each is overridable per rule.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Severity = Literal["info", "low", "medium", "high"]
NonNegative = Annotated[float, Field(ge=0.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    enabled: bool = True
    threshold: NonNegative  # the rule's ratio limit (see each rule)
    min_size: NonNegative  # smallest run the rule looks at, in the rule's unit
    severity: Severity = "medium"


class SavingRule(Rule):
    """A cloud pricing rule: the saving is estimated as the on-demand cost × `discount`."""

    discount: Annotated[float, Field(ge=0.0, le=1.0)]  # assumed share of on-demand cost saved


class RegionRule(Rule):
    """cleaner_region: `alternatives` maps a region (`us-east-1`, or `aws:us-east-1` for one
    provider only) to a lower-carbon region of the same provider that could run its GPU work."""

    threshold: NonNegative = 0.1
    min_size: NonNegative = 1.0
    severity: Severity = "low"
    alternatives: dict[str, str] = {}

    @field_validator("alternatives")
    @classmethod
    def _known_regions(cls, value: dict[str, str]) -> dict[str, str]:
        from reporting.factors import table  # the packaged region table, read only when set

        known = {(r.provider, r.region) for r in table("cloud_regions").itertuples()}
        for key, alternative in value.items():
            provider, _, region = key.rpartition(":")
            providers = {provider} if provider else {p for p, r in known if r == region}
            if not any((p, region) in known for p in providers):
                raise ValueError(f"{key!r} is not a region of reporting/data/cloud_regions.csv")
            if not any((p, alternative) in known for p in providers):
                raise ValueError(
                    f"{key!r} = {alternative!r}: {alternative!r} is not a region of the same "
                    "provider in reporting/data/cloud_regions.csv"
                )
        return value


class Audit(_Strict):
    """One entry per rule; `threshold` and `min_size` units are given per rule."""

    # GPU utilisation at or below threshold (ratio) over a run of at least min_size seconds.
    # Job Defense Shield flags zero-utilisation GPU jobs from 30 min on (METHODS.md §6).
    idle_gpu: Rule = Rule(threshold=0.01, min_size=1800, severity="high")
    # GPU utilisation below threshold on runs of at least min_size GPU-hours (jobstats GPU_UTIL_RED 15 %).
    low_gpu_util: Rule = Rule(threshold=0.15, min_size=1.0, severity="medium")
    # CPU efficiency below threshold on CPU-only runs of at least min_size core-hours
    # (jobstats CPU_UTIL_RED 65 %).
    low_cpu_efficiency: Rule = Rule(threshold=0.65, min_size=10.0, severity="low")
    # Peak memory used / requested below threshold on runs of at least min_size requested GB-hours
    # (Job Defense Shield excess-memory ratio 0.35).
    memory_over_request: Rule = Rule(threshold=0.35, min_size=100.0, severity="low")
    # Elapsed / time limit below threshold on runs of at least min_size seconds of time limit
    # (Job Defense Shield excess-time ratio 0.2): a scheduling flag, no energy wasted.
    timelimit_over_request: Rule = Rule(threshold=0.2, min_size=3600, severity="info")
    # Runs that ended FAILED, TIMEOUT, OUT_OF_MEMORY or NODE_FAIL using at least min_size
    # facility kWh: the whole run's energy is waste (GreenAlgorithms reports failed jobs' footprint).
    failed_runs: Rule = Rule(threshold=0.0, min_size=1.0, severity="medium")

    # Cloud billing lines (Scope 3.1; rules in audit_cloud.py). Money is in each line's currency.
    # No published tool sets these limits: they are this tool's judgement unless a source is named.
    # Unused commitments (reserved instances, savings plans) of at least min_size per resource and
    # billing period; threshold unused. Any unused commitment is paid-for waste: min_size only
    # keeps rounding residues out.
    unused_commitment: Rule = Rule(threshold=0.0, min_size=1.0, severity="medium")
    # Untagged (team `unallocated`) share of usage cost above threshold (ratio) per billing period
    # and currency, with at least min_size untagged. The FinOps Foundation's Allocation capability
    # tracks "percentage of spend allocated" but sets no number: 10 % is a judgement.
    untagged_spend: Rule = Rule(threshold=0.10, min_size=100.0, severity="low")
    # On-demand GPU instances doing training or fine-tuning (checkpointed, so they survive a spot
    # reclaim) of at least min_size GPU-hours per resource and billing period; threshold unused.
    # discount is an assumption, to be set per provider from its current spot prices (AWS markets
    # "up to 90 %" off on-demand: an upper bound, not a typical saving).
    spot_candidate: SavingRule = SavingRule(threshold=0.0, min_size=24.0, severity="low",
                                            discount=0.6)  # fmt: skip
    # On-demand GPU instances of one type, region and currency used on at least threshold distinct
    # days of the audited period, costing at least min_size: steady use a 1-year commitment could
    # cover. discount is an assumption, to be set from the provider's commitment prices.
    commitment_candidate: SavingRule = SavingRule(threshold=20, min_size=1000.0, severity="low",
                                                  discount=0.3)  # fmt: skip
    # GPU usage in a region with a configured cleaner alternative, when moving would cut its
    # location-based CO2e by more than threshold (ratio; a judgement, so that small gaps between
    # annual averages prompt no move), on at least min_size GPU-hours per resource and billing
    # period. No alternatives by default: the rule finds nothing until they are configured.
    cleaner_region: RegionRule = RegionRule()


class Notify(_Strict):
    """Owner digests over SMTP; the password comes from the environment or a file, never here."""

    enabled: bool = False
    from_address: str = "greenops@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None  # name of the environment variable holding the password
    password_file: str | None = None  # or a file holding it (relative to the config file)
    directory: str | None = None  # CSV: user,email,team,team_lead (relative to the config file)
    address_template: str | None = None  # e.g. "{user}@example.org" for users not in the directory
    admin_address: str | None = None  # gets what no owner or team lead can be found for
    max_findings_per_owner: int = Field(default=25, ge=1)  # per digest, per night
    suppress_users: list[str] = []
    suppress_job_names: list[str] = []  # regexes
    suppress_rules: list[str] = []
    weekly_summary_weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"

    @field_validator("password_env")
    @classmethod
    def _names_a_variable(cls, value: str | None) -> str | None:
        # A password pasted here by mistake must not be echoed into the cron mail.
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(
                "must be the name of an environment variable (letters, digits and _), not the "
                "password itself; the value is not shown"
            )
        return value
