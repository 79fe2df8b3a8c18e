"""Typed configuration, loaded from TOML with messages that name the file and the key.

The contract keys (`[organisation]`, `[[sites]]`, `[[inputs]]`, `[ledger]`) are stable; the rest
grows with the tool. Every key is documented once, on its field, and in README.md.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reporting.audit_config import Audit, Notify
from reporting.errors import ConfigError

OWNER_FIELDS = (
    "account", "user", "job_name", "comment", "wckey", "partition", "site", "namespace",
    # cloud billing lines: `account` is the sub-account (AWS account, GCP project, Azure
    # subscription) name or id; `tag:<key>` matches a tag or label (keys lower-cased)
    "provider", "billing_account", "service", "region", "resource",
)  # fmt: skip
BILLING_KINDS = ("billing", "focus", "aws_cur", "gcp_billing", "azure_cost")
VENDOR_CARBON_KINDS = ("vendor_carbon", "aws_carbon", "gcp_carbon")  # shown beside, never added
PHASES = ("training", "fine-tuning", "inference", "evaluation", "development", "other")
UNALLOCATED = "unallocated"

Ratio = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def refuse_reversed(model: BaseModel, low: str, high: str, unit: str, why: str) -> None:
    """A (minimum, maximum) pair of keys set the wrong way round is refused, naming both."""
    low_value, high_value = getattr(model, low), getattr(model, high)
    if low_value is not None and high_value is not None and low_value > high_value:
        unit = f" {unit}" if unit else ""
        raise ValueError(
            f"{low} = {low_value:g}{unit} is greater than {high} = {high_value:g}{unit} "
            f"({why}): set {low} at most {high}, or swap the two values"
        )


class Methodology(_Strict):
    """Overrides of packaged methodology defaults; any level (global, site, partition) may set them."""

    gpu_min_w: NonNegative | None = None  # idle power of one GPU, W
    gpu_max_w: Positive | None = None  # full-load power (TDP) of one GPU, W
    cpu_min_w_per_thread: NonNegative | None = None  # idle power per allocated CPU, W
    cpu_max_w_per_thread: Positive | None = None  # full-load power per allocated CPU, W
    memory_w_per_gb: NonNegative | None = None  # power of allocated memory, W per GB
    default_gpu_util_ratio: Ratio | None = None  # used when no GPU telemetry (packaged: 1.0 = TDP)
    default_cpu_util_ratio: Ratio | None = None  # used when TotalCPU is missing (packaged: 1.0)
    pue: Annotated[float, Field(ge=1.0, le=3.0)] | None = None  # facility / IT energy
    grid_intensity_g_per_kwh: NonNegative | None = None  # replaces the grid_zone table value
    embodied_kg_per_gpu_hour: NonNegative | None = None  # amortised hardware emissions per GPU-hour
    embodied_kg_per_core_hour: NonNegative | None = None  # ... per CPU core-hour of CPU-only jobs
    max_node_power_w: Positive | None = (
        None  # measured energy above this mean W per node is rejected
    )
    source: str | None = (
        None  # where the overriding values come from (shown in the factor register)
    )

    @model_validator(mode="after")
    def _overrides_need_a_source(self) -> Methodology:
        values = self.model_dump(exclude={"source"}, exclude_none=True)
        if values and not self.source:
            raise ValueError(
                f"methodology overrides {sorted(values)} need a `source` "
                "(where the numbers come from; it is printed in the factor register)"
            )
        # Power rises from idle to full load with utilisation: reversed, more work would
        # draw less power. Pairs split over levels or with a table value: site_params.
        for low, high in (("gpu_min_w", "gpu_max_w"), ("cpu_min_w_per_thread", "cpu_max_w_per_thread")):  # fmt: skip
            refuse_reversed(self, low, high, "W", "idle power cannot exceed full-load power")
        return self


class RateCard(_Strict):
    """On-prem chargeback prices; cost = GPU-h, core-h and GB-h prices plus energy price × facility kWh."""

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")  # ISO 4217
    gpu_hour: NonNegative = 0.0
    cpu_core_hour: NonNegative = 0.0  # price per allocated CPU core-hour
    mem_gb_hour: NonNegative = 0.0
    energy_per_kwh: NonNegative = 0.0  # electricity price per facility kWh
    source: str  # e.g. "Internal chargeback rates FY2026"


class Partition(_Strict):
    name: str  # partition name as in sacct; shell-style wildcards allowed (`gpu*`)
    gpu_model: str | None = None  # canonical GPU model when TRES carries no GPU type
    cpu_model: str | None = None  # CPU model of the nodes (a row of data/cpu_power.csv)
    gpu_types: dict[str, str] = {}  # gres type as printed → canonical GPU model
    rate_card: RateCard | None = None
    methodology: Methodology = Methodology()


class Instrument(_Strict):
    """A contractual instrument for market-based Scope 2 (PPA, REC, GO, supplier-specific mix)."""

    kind: Literal["PPA", "REC", "GO", "supplier"]
    share: Ratio  # share of the site's consumption the instrument covers
    g_co2e_per_kwh: NonNegative = 0.0  # emission factor of the covered energy
    source: str  # contract, certificate registry or supplier disclosure


class Site(_Strict):
    name: str
    kind: Literal["onprem", "aws", "gcp", "azure"] = "onprem"
    grid_zone: str  # a zone of data/grid_intensity.csv, e.g. "US-SRVC", "SE", "gcp:us-central1"
    pue: Annotated[float, Field(ge=1.0, le=3.0)] | None = None  # measured PUE; default: packaged
    pue_source: str | None = None  # where the measured PUE comes from
    timezone: str = "UTC"  # how naive timestamps in this site's logs are read
    gpu_model: str | None = None  # default canonical GPU model of the site
    cpu_model: str | None = None  # default CPU model of the site
    gpu_types: dict[str, str] = {}  # gres type → canonical GPU model, for every partition
    partitions: list[Partition] = []
    rate_card: RateCard | None = None
    instruments: list[Instrument] = []
    residual_mix_g_co2e_per_kwh: NonNegative | None = None  # market factor for uncovered energy
    residual_mix_source: str | None = None
    methodology: Methodology = Methodology()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown timezone {value!r} (use an IANA name such as 'Europe/Berlin')"
            ) from exc
        return value

    @model_validator(mode="after")
    def _sources_present(self) -> Site:
        if self.pue is not None and not self.pue_source:
            raise ValueError("`pue` needs `pue_source` (how it was measured)")
        if self.residual_mix_g_co2e_per_kwh is not None and not self.residual_mix_source:
            raise ValueError("`residual_mix_g_co2e_per_kwh` needs `residual_mix_source`")
        if sum(i.share for i in self.instruments) > 1.0 + 1e-9:
            raise ValueError("instrument shares add up to more than 1")
        return self


class Input(_Strict):
    # slurm; opencost (Kubernetes allocations: JSON API responses or CSV exports); a cloud
    # billing export: focus, aws_cur, gcp_billing, azure_cost, or `billing` (the family is
    # detected from each file's header); or a provider's own carbon export: aws_carbon,
    # gcp_carbon, or `vendor_carbon` (detected); or GPU telemetry: dcgm (dcgm-exporter scrapes
    # or Prometheus query_range JSON dumps of the site's GPUs); or serving_volume (requests and
    # tokens per model and day: model, day, requests, tokens; for the report's intensity metrics)
    kind: Literal[
        "slurm", "opencost", "dcgm", "billing", "focus", "aws_cur", "gcp_billing", "azure_cost",
        "vendor_carbon", "aws_carbon", "gcp_carbon", "serving_volume",
    ]  # fmt: skip
    path: str  # glob, relative to the config file
    site: str | None = (
        None  # [[sites]] entry of a cluster (slurm, opencost); billing lines carry their region
    )
    cluster: str | None = None  # opencost: the cluster name where the export carries none
    # opencost: the cluster's nodes are cloud instances billed in a billing input. Their bill
    # lines are split over the pods by allocation share and the pods' own cost is not added.
    cloud_nodes: bool = False
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")  # opencost: currency of its costs
    day_first: bool = False  # Azure exports with localised D/M/Y dates
    delimiter: str | None = None  # header-less dumps: the field separator (default "|")
    fields: list[str] | None = None  # header-less dumps: the --format field list, in order
    max_quarantined_ratio: Ratio = 0.05  # above this share of rows quarantined, exit 3
    # a row with a longer field (UTF-8 bytes) is quarantined as field_too_long; default 1 MiB
    max_field_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024
    # a file with more rows is refused whole (none of it read; the quality gate fails naming it)
    max_rows: Annotated[int, Field(ge=1)] | None = None


class OwnerRule(_Strict):
    """First matching rule sets each of team/model/phase/owner; `{group}` inserts a named group."""

    match: dict[str, str]  # field → regex (all must match); fields: OWNER_FIELDS
    team: str | None = None
    model: str | None = None
    phase: str | None = None
    owner: str | None = None

    @field_validator("match")
    @classmethod
    def _known_fields_and_regexes(cls, match: dict[str, str]) -> dict[str, str]:
        if not match:
            raise ValueError("`match` needs at least one field")
        for field, pattern in match.items():
            if field not in OWNER_FIELDS and not (field.startswith("tag:") and len(field) > 4):
                raise ValueError(
                    f"unknown field {field!r}; use one of {', '.join(OWNER_FIELDS)} or tag:<key>"
                )
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex for {field!r}: {exc}") from exc
        return match

    @model_validator(mode="after")
    def _sets_something(self) -> OwnerRule:
        if not any((self.team, self.model, self.phase, self.owner)):
            raise ValueError("a rule must set at least one of team, model, phase, owner")
        if self.phase and "{" not in self.phase and self.phase not in PHASES:
            raise ValueError(f"phase {self.phase!r} is not one of {', '.join(PHASES)}")
        groups = {g for pattern in self.match.values() for g in re.compile(pattern).groupindex}
        for attr in ("team", "model", "phase", "owner"):
            for name in re.findall(r"\{(\w*)\}", getattr(self, attr) or ""):
                if name not in groups:
                    raise ValueError(
                        f"{attr} uses {{{name}}}, which is not a named group (?P<{name}>...) of `match`"
                    )
        return self


class Organisation(_Strict):
    name: str
    reporting_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


class Billing(_Strict):
    """How cloud billing lines are costed and shared."""

    cost_basis: Literal["billed", "effective"] = "billed"  # invoice (cash) or amortised
    # Untagged tax and support: stay `unallocated`, or are split over teams in proportion to
    # their tagged spend in the same currency and billing period.
    shared_costs: Literal["unallocated", "proportional"] = "unallocated"
    shared_services: str = "(?i)support"  # regex on the service name: shared like tax


class Ledger(_Strict):
    path: str | None = None  # default: <out>/ledger; relative to the config file


class Validation(_Strict):
    """Run-level expectations: they warn in the report, they never quarantine rows."""

    # a table's row count this run further than this share from the trailing median of earlier
    # nights (usage runs, billing lines) is a warning
    drift_tolerance_ratio: Positive = 0.5
    drift_history_nights: Annotated[int, Field(ge=1, le=366)] = 7  # nights in the trailing median
    # freshness: the latest ended_at / charge_period_end must reach run date − this many days
    max_input_lag_days: Annotated[int, Field(ge=0)] = 2
    # sums: a billing month's charges total per currency outside [min, max] × the previous
    # month's (pro rata while the month is in progress) is a warning
    sum_min_ratio: Positive = 0.5
    sum_max_ratio: Positive = 2.0

    @model_validator(mode="after")
    def _ranges_in_order(self) -> Validation:
        refuse_reversed(self, "sum_min_ratio", "sum_max_ratio", "",
                        "a billing month's total is expected between the two × the previous "
                        "month's; reversed, every month would warn")  # fmt: skip
        return self


class Engine(_Strict):
    """How a run's work is cut up (results are the same whatever the settings)."""

    # Slurm inputs larger than this are read in slices of about this size, one at a time
    # (memory bounded by the slice, not the input)
    batch_mb: Annotated[float, Field(gt=0)] = 32.0


class Config(_Strict):
    organisation: Organisation
    sites: list[Site] = []
    inputs: list[Input]
    ledger: Ledger = Ledger()
    billing: Billing = Billing()
    methodology: Methodology = Methodology()
    owners: list[OwnerRule] = []
    audit: Audit = Audit()
    notify: Notify = Notify()
    validation: Validation = Validation()
    engine: Engine = Engine()
    config_file: Path = Path(
        "greenops.toml"
    )  # set by load_config; relative paths resolve from its folder

    @model_validator(mode="after")
    def _references_resolve(self) -> Config:
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError(f"site names must be unique, got {names}")
        for i, inp in enumerate(self.inputs):
            if inp.kind in ("slurm", "opencost", "dcgm") and inp.site is None:
                raise ValueError(
                    f"inputs[{i}].site: a {inp.kind} input needs the [[sites]] it ran on"
                )
            if inp.site is not None and inp.site not in names:
                raise ValueError(f"inputs[{i}].site {inp.site!r} is not a [[sites]] name ({names})")
        return self

    def site(self, name: str) -> Site:
        return next(s for s in self.sites if s.name == name)

    @property
    def base_dir(self) -> Path:
        return self.config_file.parent

    def resolve(self, path: str) -> Path:
        return (self.base_dir / path).resolve() if not Path(path).is_absolute() else Path(path)

    def display_path(self, path: Path) -> str:
        """A file's name in ledgers and reports: relative to the config file when below it."""
        absolute = Path(os.path.abspath(path))  # not resolve(): keep a symlink's own name
        try:
            return absolute.relative_to(self.base_dir).as_posix()
        except ValueError:
            return absolute.as_posix()


def load_config(path: Path) -> Config:
    """Read and validate a TOML config; raise ConfigError naming the file and key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found. Pass --config with an existing file."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the syntax at that line.") from exc
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> Config:
    if "config_file" in raw:
        raise ConfigError(f"{path}: config_file: unknown key; check its spelling.")
    try:
        return Config.model_validate({**raw, "config_file": path.resolve()})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key_path(first["loc"])
        message = _describe(first)
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(
            f"{path}: {key}: {message}{more}. See the config reference in README.md."
        ) from None


def _key_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _describe(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key; check its spelling"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if error["type"] not in ("value_error", "assertion_error") and not isinstance(
        value, (dict, list)
    ):
        message += f" (got {value!r})"
    return message
