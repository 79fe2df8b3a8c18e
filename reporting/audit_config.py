"""Config of the efficiency audit (`[audit]`) and of owner notifications (`[notify]`).

Default thresholds come from published tools (METHODS.md §6); each is overridable per rule.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "low", "medium", "high"]
NonNegative = Annotated[float, Field(ge=0.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    enabled: bool = True
    threshold: NonNegative  # the rule's ratio limit (see each rule)
    min_size: NonNegative  # smallest run the rule looks at, in the rule's unit
    severity: Severity = "medium"


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
