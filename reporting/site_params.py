"""Resolve the methodology parameters of each (site, partition, GPU model) from config + tables.

Precedence, most specific first: partition `methodology`, site `methodology` (and the site's
own `pue`), global `[methodology]`, then the packaged tables. Each parameter comes back as a
`Factor`, so the ledger can name the factor behind every number.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

import pandas as pd

from reporting import factors as ft
from reporting.config import Config, Methodology, Partition, RateCard, Site
from reporting.errors import ConfigError
from reporting.factors import Factor

GENERIC_GPU = "generic-gpu"
GENERIC_CPU = "generic-cpu"
PUE_SCOPE_BY_KIND = {"onprem": "onprem-default", "aws": "aws", "gcp": "gcp", "azure": "azure"}


@dataclass(frozen=True)
class Resolver:
    """Answers parameter questions for one config; collects every factor it hands out."""

    config: Config

    def partition(self, site: Site, name: str) -> Partition | None:
        return next((p for p in site.partitions if fnmatchcase(name or "", p.name)), None)

    def _layers(self, site: Site, part: Partition | None) -> list[tuple[str, Methodology]]:
        layers = [
            (f"sites.{site.name}.methodology", site.methodology),
            ("methodology", self.config.methodology),
        ]
        if part is not None:
            layers.insert(
                0, (f"sites.{site.name}.partitions.{part.name}.methodology", part.methodology)
            )
        return layers

    def override(
        self, site: Site, part: Partition | None, attr: str, kind: str, unit: str
    ) -> Factor | None:
        for key_path, layer in self._layers(site, part):
            value = getattr(layer, attr)
            if value is not None:
                return ft.config_factor(f"{key_path}.{attr}", kind, value, unit, layer.source or "")
        return None

    def pue(self, site: Site, part: Partition | None) -> Factor:
        found = self.override(site, part, "pue", "pue", "ratio")
        if found:
            return found
        if site.pue is not None:
            return ft.config_factor(
                f"sites.{site.name}.pue", "pue", site.pue, "ratio", site.pue_source or ""
            )
        return ft.pue_factor(PUE_SCOPE_BY_KIND[site.kind], is_default=site.kind == "onprem")

    def grid(self, site: Site, part: Partition | None) -> Factor:
        found = self.override(
            site, part, "grid_intensity_g_per_kwh", "grid_intensity", "g CO2e/kWh"
        )
        if found:
            return found
        factor = ft.grid_factor(site.grid_zone)
        if factor is None:
            raise ConfigError(
                f"sites.{site.name}.grid_zone: unknown zone {site.grid_zone!r}. Use a zone of "
                "reporting/data/grid_intensity.csv (e.g. 'US-SRVC', 'SE', 'gcp:us-central1') or set "
                "methodology.grid_intensity_g_per_kwh with a source."
            )
        return factor

    def market(self, site: Site, location: Factor) -> Factor:
        """Market-based factor: instruments' factors for their shares, residual mix for the rest."""
        if not site.instruments:
            return Factor(
                factor_id=f"market:{site.name}:none",
                kind="market_intensity",
                key=site.name,
                value=location.value,
                unit="g CO2e/kWh",
                is_default=True,
                source=f"no contractual instruments configured: equals location-based ({location.factor_id})",
            )
        covered = sum(i.share for i in site.instruments)
        residual, residual_source = site.residual_mix_g_co2e_per_kwh, site.residual_mix_source
        if residual is None:
            residual, residual_source = (
                location.value,
                f"no residual mix configured: location-based {location.factor_id}",
            )
        value = sum(i.share * i.g_co2e_per_kwh for i in site.instruments) + (1 - covered) * residual
        parts = "; ".join(
            f"{i.kind} {i.share:.0%} at {i.g_co2e_per_kwh:g} g ({i.source})"
            for i in site.instruments
        )
        return Factor(
            factor_id=f"market:{site.name}",
            kind="market_intensity",
            key=site.name,
            value=value,
            unit="g CO2e/kWh",
            licence="user-supplied",
            is_default=site.residual_mix_g_co2e_per_kwh is None,
            source=f"{parts}; remaining {1 - covered:.0%} at {residual:g} g ({residual_source})",
        )

    def cpu_power(self, site: Site, part: Partition | None) -> tuple[Factor, Factor]:
        lo = self.override(site, part, "cpu_min_w_per_thread", "cpu_power_min", "W per CPU")
        hi = self.override(site, part, "cpu_max_w_per_thread", "cpu_power_max", "W per CPU")
        model_name = (part.cpu_model if part else None) or site.cpu_model
        if model_name is not None and model_name.lower() not in ft.cpu_models():
            raise ConfigError(
                f"sites.{site.name}: unknown cpu_model {model_name!r}. Use a model of "
                "reporting/data/cpu_power.csv or set methodology.cpu_max_w_per_thread with a source."
            )
        model = ft.cpu_models()[model_name.lower()] if model_name else GENERIC_CPU
        table_lo, table_hi = ft.cpu_power_factors(model, is_default=model_name is None)
        return _in_order(lo or table_lo, hi or table_hi, f"per CPU thread, {_where(site, part)}")

    def gpu_power(
        self, site: Site, part: Partition | None, model: str | None
    ) -> tuple[Factor, Factor]:
        lo = self.override(site, part, "gpu_min_w", "gpu_power_min", "W per GPU")
        hi = self.override(site, part, "gpu_max_w", "gpu_power_max", "W per GPU")
        table_lo, table_hi = ft.gpu_power_factors(model or GENERIC_GPU, is_default=model is None)
        what = f"per {model or GENERIC_GPU} GPU, {_where(site, part)}"
        return _in_order(lo or table_lo, hi or table_hi, what)

    def method(
        self, site: Site, part: Partition | None, attr: str, unit: str, *, is_default: bool = False
    ) -> Factor:
        """A methodology constant: config override, else data/methodology.csv row `attr`."""
        found = self.override(site, part, attr, attr, unit)
        return found or ft.method_factor(attr, is_default=is_default)

    def embodied(self, site: Site, part: Partition | None, per_gpu: bool) -> Factor:
        attr = "embodied_kg_per_gpu_hour" if per_gpu else "embodied_kg_per_core_hour"
        unit = "kg CO2e per GPU-hour" if per_gpu else "kg CO2e per core-hour"
        found = self.override(site, part, attr, "embodied", unit)
        return found or ft.embodied_factor(
            "gpu-server-8x" if per_gpu else "cpu-node", "GPU-hour" if per_gpu else "core-hour"
        )

    def rate_card(self, site: Site, part: Partition | None) -> tuple[str | None, RateCard | None]:
        if part is not None and part.rate_card is not None:
            return f"sites.{site.name}.partitions.{part.name}.rate_card", part.rate_card
        if site.rate_card is not None:
            return f"sites.{site.name}.rate_card", site.rate_card
        return None, None

    def gpu_model(
        self, site: Site, part: Partition | None, gpu_type: str | None
    ) -> tuple[str | None, str | None]:
        """(canonical GPU model or None, problem text or None) for a gres type as printed."""
        if gpu_type:
            for mapping in ((part.gpu_types if part else {}), site.gpu_types):
                if gpu_type in mapping:
                    return self._known_gpu(site, mapping[gpu_type])
            model = ft.gpu_models().get(gpu_type.lower())
            if model:
                return model, None
            return None, (
                f"GPU type {gpu_type!r} is not a known model: map it in the config, e.g. "
                f'sites.gpu_types = {{ {gpu_type} = "A100-SXM4-80GB" }} (models: reporting/data/gpu_power.csv)'
            )
        default = (part.gpu_model if part else None) or site.gpu_model
        return self._known_gpu(site, default) if default else (None, None)

    def _known_gpu(self, site: Site, name: str) -> tuple[str | None, str | None]:
        model = ft.gpu_models().get(name.lower())
        if model is None:
            raise ConfigError(
                f"sites.{site.name}: GPU model {name!r} is not in reporting/data/gpu_power.csv. "
                "Use one of its `model` names."
            )
        return model, None


def _where(site: Site, part: Partition | None) -> str:
    return f"site {site.name}" + (f" partition {part.name}" if part else "")


def _in_order(low: Factor, high: Factor, what: str) -> tuple[Factor, Factor]:
    """Idle and full-load power as resolved: an override above the other end (set at another
    level, or the packaged table's) is refused, since more work would then draw less power."""
    if low.value > high.value:
        raise ConfigError(
            f"{_named(low)} = {low.value:g} W is greater than {_named(high)} = {high.value:g} W "
            f"(idle and full-load power {what}): idle power cannot exceed full-load power; "
            "lower the idle value or set the full-load one beside it (with its source)"
        )
    return low, high


def _named(factor: Factor) -> str:
    """A config key path, or the packaged table row the value comes from."""
    if factor.factor_id.startswith("config:"):
        return factor.key
    table, model, end = factor.factor_id.split(":")
    return f"the {'idle' if end == 'min' else 'full-load'} power of {model} in reporting/data/{table}.csv"


def check_config(config: Config) -> None:
    """Fail early, naming the file and key, on config values the tables cannot resolve."""
    try:
        _resolve_everything(Resolver(config))
    except ConfigError as exc:
        raise ConfigError(f"{config.config_file}: {exc}") from None


def _resolve_everything(resolver: Resolver) -> None:
    for site in resolver.config.sites:
        location = resolver.grid(site, None)
        resolver.market(site, location)
        for part in [None, *site.partitions]:
            resolver.cpu_power(site, part)
            names = {
                *site.gpu_types.values(),
                *(part.gpu_types.values() if part else ()),
                *filter(None, [site.gpu_model, part.gpu_model if part else None]),
            }
            models: set[str | None] = {resolver._known_gpu(site, n)[0] for n in names}
            if not ((part.gpu_model if part else None) or site.gpu_model):
                models.add(None)  # GPUs of no known type get the generic model
            for model in sorted(models, key=str):
                resolver.gpu_power(site, part, model)


def resolve_gpu_models(usage: pd.DataFrame, config: Config) -> tuple[pd.Series, pd.Series]:
    """Canonical GPU model per usage row and a problem text (None when fine)."""
    resolver = Resolver(config)
    keys = (
        usage[["site", "partition", "gpu_type"]]
        .astype(object)
        .where(usage[["site", "partition", "gpu_type"]].notna(), None)
    )
    answers: dict[tuple[str, str, str | None], tuple[str | None, str | None]] = {}
    for key in set(map(tuple, keys.itertuples(index=False, name=None))):
        site = config.site(key[0])
        answers[key] = resolver.gpu_model(site, resolver.partition(site, key[1] or ""), key[2])
    resolved = [answers[tuple(k)] for k in keys.itertuples(index=False, name=None)]
    model = pd.Series([r[0] for r in resolved], index=usage.index, dtype=object)
    problem = pd.Series([r[1] for r in resolved], index=usage.index, dtype=object)
    return model, problem


def parameters(usage: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, list[Factor]]:
    """Methodology parameters for every usage row (aligned to its index) and the factors used."""
    resolver = Resolver(config)
    keys = ["site", "partition", "gpu_model"]
    combos = usage[keys].astype(object).where(usage[keys].notna(), None).drop_duplicates()
    rows, used = [], []
    for site_name, partition, gpu_model in combos.itertuples(index=False, name=None):
        site = config.site(site_name)
        part = resolver.partition(site, partition or "")
        try:  # a GPU model only the data names may meet an override it does not fit
            values, factors = _combo_parameters(resolver, site, part, gpu_model)
        except ConfigError as exc:
            raise ConfigError(f"{config.config_file}: {exc}") from None
        rows.append({"site": site_name, "partition": partition, "gpu_model": gpu_model, **values})
        used += factors
    table = pd.DataFrame(rows, columns=[*keys, *PARAMETER_COLUMNS])
    aligned = (
        usage[keys]
        .astype(object)
        .where(usage[keys].notna(), None)
        .merge(table, on=keys, how="left")
    )
    aligned.index = usage.index
    return aligned[PARAMETER_COLUMNS], used


PARAMETER_COLUMNS = [
    "pue",
    "pue_factor_id",
    "grid_zone",
    "grid_intensity_g_per_kwh",
    "grid_factor_id",
    "market_intensity_g_per_kwh",
    "market_factor_id",
    "gpu_min_w",
    "gpu_max_w",
    "gpu_power_factor_id",
    "cpu_min_w",
    "cpu_max_w",
    "cpu_power_factor_id",
    "memory_w_per_gb",
    "memory_factor_id",
    "default_gpu_util_ratio",
    "gpu_util_factor_id",
    "default_cpu_util_ratio",
    "cpu_util_factor_id",
    "energy_check_factor_id",
    "embodied_kg_per_gpu_hour",
    "embodied_kg_per_core_hour",
    "embodied_gpu_factor_id",
    "embodied_cpu_factor_id",
    "max_node_power_w",
    "rate_gpu_hour",
    "rate_cpu_core_hour",
    "rate_mem_gb_hour",
    "rate_energy_per_kwh",
    "currency",
    "rate_card_id",
]


def _combo_parameters(
    resolver: Resolver, site: Site, part: Partition | None, gpu_model: str | None
) -> tuple[dict[str, object], list[Factor]]:
    pue = resolver.pue(site, part)
    grid = resolver.grid(site, part)
    market = resolver.market(site, grid)
    gpu_lo, gpu_hi = resolver.gpu_power(site, part, gpu_model)
    cpu_lo, cpu_hi = resolver.cpu_power(site, part)
    memory = resolver.method(site, part, "memory_w_per_gb", "W per GB")
    # Utilisation defaults stand in for missing telemetry: fallbacks, flagged as such.
    gpu_util = resolver.method(site, part, "default_gpu_util_ratio", "ratio", is_default=True)
    cpu_util = resolver.method(site, part, "default_cpu_util_ratio", "ratio", is_default=True)
    max_node = resolver.method(site, part, "max_node_power_w", "W per node")
    emb_gpu, emb_cpu = resolver.embodied(site, part, True), resolver.embodied(site, part, False)
    card_id, card = resolver.rate_card(site, part)
    values = {
        "pue": pue.value,
        "pue_factor_id": pue.factor_id,
        "grid_zone": site.grid_zone,
        "grid_intensity_g_per_kwh": grid.value,
        "grid_factor_id": grid.factor_id,
        "market_intensity_g_per_kwh": market.value,
        "market_factor_id": market.factor_id,
        "gpu_min_w": gpu_lo.value,
        "gpu_max_w": gpu_hi.value,
        "gpu_power_factor_id": f"{gpu_lo.factor_id};{gpu_hi.factor_id}",
        "cpu_min_w": cpu_lo.value,
        "cpu_max_w": cpu_hi.value,
        "cpu_power_factor_id": f"{cpu_lo.factor_id};{cpu_hi.factor_id}",
        "memory_w_per_gb": memory.value,
        "memory_factor_id": memory.factor_id,
        "default_gpu_util_ratio": gpu_util.value,
        "gpu_util_factor_id": gpu_util.factor_id,
        "default_cpu_util_ratio": cpu_util.value,
        "cpu_util_factor_id": cpu_util.factor_id,
        "energy_check_factor_id": max_node.factor_id,
        "embodied_kg_per_gpu_hour": emb_gpu.value,
        "embodied_kg_per_core_hour": emb_cpu.value,
        "embodied_gpu_factor_id": emb_gpu.factor_id,
        "embodied_cpu_factor_id": emb_cpu.factor_id,
        "max_node_power_w": max_node.value,
        "rate_gpu_hour": card.gpu_hour if card else None,
        "rate_cpu_core_hour": card.cpu_core_hour if card else None,
        "rate_mem_gb_hour": card.mem_gb_hour if card else None,
        "rate_energy_per_kwh": card.energy_per_kwh if card else None,
        "currency": card.currency if card else resolver.config.organisation.reporting_currency,
        "rate_card_id": f"config:{card_id}" if card_id else None,
    }
    used = [
        pue,
        grid,
        market,
        gpu_lo,
        gpu_hi,
        cpu_lo,
        cpu_hi,
        memory,
        gpu_util,
        cpu_util,
        max_node,
        emb_gpu,
        emb_cpu,
    ]
    if card is not None and card_id is not None:
        used.append(
            ft.Factor(
                factor_id=f"config:{card_id}",
                kind="rate_card",
                key=card_id,
                value=card.gpu_hour,
                unit=f"{card.currency}/GPU-h; {card.cpu_core_hour:g}/core-h; {card.mem_gb_hour:g}/GB-h; "
                f"{card.energy_per_kwh:g}/kWh",
                source=card.source,
                licence="user-supplied",
            )
        )
    return values, used
