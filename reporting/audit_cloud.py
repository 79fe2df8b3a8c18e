"""The efficiency audit of cloud billing lines (the ledger's Scope 3.1 rows) → findings.

- unused_commitment: commitments paid for and not used (FOCUS CommitmentDiscountStatus Unused,
  Azure UnusedReservation / UnusedSavingsPlan, the unused part of a CUR RI or Savings Plan fee);
- untagged_spend: the share of usage cost no owner rule attributed, per billing period and currency;
- spot_candidate: on-demand GPU instances doing training or fine-tuning, work that survives a
  spot reclaim when it checkpoints;
- commitment_candidate: on-demand GPU instances of one type used on most days of the period;
- cleaner_region: GPU usage in a region with a configured lower-carbon alternative.

The line rules add up a resource's lines (its resource id, else its instance type, service or
charge) per billing period and currency, every day row of every charge: an hourly export would
otherwise raise a finding per hour and mail its owner every night. Waste is money in the line's
currency (never converted), and cleaner_region's carbon; no rule claims kWh, since spot and
commitments change the price of the same energy and a cleaner region its carbon. Spot and
commitment savings are estimates from configured discounts.

Not built: idle GPU pods and over-sized inference fleets. They need per-pod utilisation
(Kubernetes / DCGM metrics), which billing lines do not carry.
"""

from __future__ import annotations

import pandas as pd

from reporting.audit_config import Audit, RegionRule, Rule, SavingRule
from reporting.config import UNALLOCATED
from reporting.factors import grid_factor, table

CLOUD_SCOPE = "3.1"
INTERRUPTIBLE_PHASES = ("training", "fine-tuning")  # checkpointed work restarts after a reclaim
ON_DEMAND = "Standard"  # FOCUS PricingCategory; Dynamic = spot, Committed = RI / savings plan
CONTEXT = ("site", "user", "account", "owner", "team", "model", "phase", "currency", "provider",
           "region_id", "resource_type", "billing_period", "grid_intensity_g_per_kwh")  # fmt: skip
OWNERS = ("site", "user", "account", "job_name", "owner", "team", "model", "phase")


def is_cloud(ledger: pd.DataFrame) -> pd.Series:
    """Rows of cloud billing lines (hand-built cluster frames may have no `scope` column)."""
    if "scope" not in ledger.columns:
        return pd.Series(False, index=ledger.index)
    return (ledger["scope"] == CLOUD_SCOPE).fillna(False).astype(bool)


def audit_cloud(rows: pd.DataFrame, audit: Audit) -> list[pd.DataFrame]:
    """Findings of the cloud rules (FINDING_COLUMNS but finding_id and first_seen), per rule."""
    if rows.empty:
        return []
    usage = rows[rows["charge_category"] == "Usage"]
    found = []
    if audit.unused_commitment.enabled:  # CUR bills unused RI fees as fees, not usage
        found.append(_unused_commitment(rows, audit.unused_commitment))
    if audit.untagged_spend.enabled:
        found.append(_untagged_spend(usage, audit.untagged_spend))
    if audit.spot_candidate.enabled:
        found.append(_spot_candidate(usage, audit.spot_candidate))
    if audit.commitment_candidate.enabled:
        found.append(_commitment_candidate(usage, audit.commitment_candidate))
    if audit.cleaner_region.enabled:
        found.append(_cleaner_region(usage, audit.cleaner_region))
    return [f for f in found if not f.empty]


def per_resource(
    rows: pd.DataFrame, kind: str, summed: tuple[str, ...], extra: tuple[str, ...] = ()
) -> pd.DataFrame:
    """One row per resource, billing period and currency: `summed` added up over its day rows
    and charges, the rest taken from its costliest line. usage_id is `<kind>:` + the group's key
    (one id per rule, so the waste of two rules on one resource is never merged)."""
    resource = rows["job_name"].astype(object)
    for fallback in ("resource_type", "service_name", "usage_id"):
        resource = resource.fillna(rows[fallback].astype(object))
    key = kind + ":" + _text(rows["billing_period"])
    for part in (rows["site"], rows["account"], resource, rows["currency"]):
        key = key + "|" + _text(part)
    ordered = rows.assign(_key=key, _resource=resource).sort_values(
        ["cost", "usage_id"], ascending=[False, True], kind="stable"
    )
    grouped = ordered.groupby("_key", sort=True)
    out = (
        grouped[list(summed)]
        .sum(min_count=1)
        .join(grouped[[*CONTEXT, *extra, "_resource"]].first())
    )
    out["ended_at"] = grouped["ended_at"].max()
    out["charges"] = grouped["usage_id"].nunique()
    out = out.rename(columns={"_resource": "job_name"})
    return out.rename_axis("usage_id").reset_index()


def _text(values: pd.Series) -> pd.Series:
    return values.astype(object).fillna("").astype(str)


def _found(hit: pd.DataFrame, rule: str, settings: Rule, *, measured: pd.Series, threshold: float,
           wasted_cost: pd.Series | float, wasted_co2e: pd.Series | float, formula: str,
           message: pd.Series, action: str | pd.Series) -> pd.DataFrame:  # fmt: skip
    return pd.DataFrame({
        "rule": rule, "severity": settings.severity, "usage_id": hit["usage_id"],
        **{c: hit[c].astype(object).where(hit[c].notna(), None) for c in OWNERS},
        "measured_value": measured.astype("float64"), "threshold": float(threshold),
        "wasted_gpu_hours": 0.0, "wasted_energy_kwh": 0.0, "wasted_cost": wasted_cost,
        "currency": hit["currency"], "wasted_co2e_kg": wasted_co2e, "waste_formula": formula,
        "message": message, "action": action, "ended_at": hit["ended_at"],
    }, index=hit.index)  # fmt: skip


def money(amounts: pd.Series, currencies: pd.Series) -> pd.Series:
    return pd.Series([f"{a:,.2f} {c}" for a, c in zip(amounts, currencies, strict=True)],
                     index=amounts.index, dtype=object)  # fmt: skip


def _period(frame: pd.DataFrame) -> pd.Series:
    """The billing period's start date (the last part of the ledger's `billing_period` key)."""
    return _text(frame["billing_period"]).str.rsplit("|", n=1).str[-1]


def _unused_commitment(rows: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    lines = rows[rows["commitment_status"] == "Unused"]
    # The amortised (effective) cost is the unused part: a FOCUS Unused row bills 0 (the purchase
    # carries the cash), a CUR RIFee line bills the whole fee, used part included.
    lines = lines.assign(unused_cost=lines["effective_cost"].fillna(lines["cost"]))
    groups = per_resource(lines, "unused", ("unused_cost",))
    hit = groups[groups["unused_cost"] >= rule.min_size]
    return _found(
        hit, "unused_commitment", rule, measured=hit["unused_cost"], threshold=rule.min_size,
        wasted_cost=hit["unused_cost"], wasted_co2e=0.0,
        formula="the unused commitment's amortised (effective) cost; no energy: nothing ran",
        message="commitment unused: " + money(hit["unused_cost"], hit["currency"])
        + " paid for capacity not used (" + hit["charges"].map(_lines) + ", billing period "
        + _period(hit) + ")",
        action="Reduce or exchange the commitment at renewal (or move matching on-demand usage "
        "onto it); check its size against the steady usage of the last months.",
    )  # fmt: skip


def _lines(n: int) -> str:
    return f"{n} line" + ("" if n == 1 else "s")


def _untagged_spend(usage: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    untagged = usage["team"].fillna(UNALLOCATED) == UNALLOCATED
    frame = usage.assign(
        _untagged=usage["cost"].where(untagged, 0.0),
        _period=usage["billing_period"].fillna(""), _currency=usage["currency"].fillna(""),
    )  # fmt: skip
    grouped = frame.groupby(["_currency", "_period"], sort=True)
    per = pd.DataFrame({
        "total": grouped["cost"].sum(), "untagged": grouped["_untagged"].sum(),
        "ended_at": grouped["ended_at"].max(),
        "site": grouped["provider"].agg(lambda p: "+".join(sorted(p.dropna().astype(str).unique()))),
    }).reset_index()  # fmt: skip
    share = (per["untagged"] / per["total"]).where(per["total"] > 0)
    hit = per[(share > rule.threshold) & (per["untagged"] >= rule.min_size)]
    hit = hit.assign(
        usage_id="untagged:" + hit["_period"] + ":" + hit["_currency"],
        currency=hit["_currency"], billing_period=hit["_period"], user=None, account=None,
        job_name="untagged usage, billing period " + _period(hit.assign(billing_period=hit["_period"])),
        owner=UNALLOCATED, team=UNALLOCATED, model=UNALLOCATED, phase=UNALLOCATED,
    )  # fmt: skip
    pct = (share[hit.index] * 100).round(1).astype(str)
    return _found(
        hit, "untagged_spend", rule, measured=share[hit.index], threshold=rule.threshold,
        wasted_cost=0.0, wasted_co2e=0.0,
        formula="none: an attribution gap (cost no owner rule matched), not waste",
        message=pct + " % of usage cost untagged: " + money(hit["untagged"], hit["currency"])
        + " of " + money(hit["total"], hit["currency"]) + " has no team",
        action="Tag the resources with their team (or add an owner rule for them), and activate "
        "the tags as cost-allocation tags in the billing console so exports carry them.",
    )  # fmt: skip


def _on_demand_gpu(usage: pd.DataFrame) -> pd.DataFrame:
    return usage[(usage["pricing_category"] == ON_DEMAND) & (usage["gpu_hours"] > 0)]


def _spot_candidate(usage: pd.DataFrame, rule: SavingRule) -> pd.DataFrame:
    lines = _on_demand_gpu(usage)
    lines = lines[lines["phase"].isin(INTERRUPTIBLE_PHASES)]
    groups = per_resource(lines, "spot", ("cost", "gpu_hours"))
    hit = groups[groups["gpu_hours"] >= rule.min_size]
    saving = hit["cost"] * rule.discount
    return _found(
        hit, "spot_candidate", rule, measured=hit["gpu_hours"], threshold=rule.min_size,
        wasted_cost=saving, wasted_co2e=0.0,
        formula=f"estimate: on-demand cost × assumed spot discount {rule.discount:g}; no energy",
        message="on-demand " + hit["resource_type"].astype(object).fillna("GPU instance").astype(str)
        + " for " + hit["phase"].astype(str) + ": " + hit["gpu_hours"].round(1).astype(str)
        + " GPU-hours, " + money(hit["cost"], hit["currency"]) + "; spot would save an estimated "
        + money(saving, hit["currency"]) + " (assumed " + f"{rule.discount * 100:g}" + " % discount)",
        action="Run training and fine-tuning on spot (preemptible) capacity with checkpoints, so a "
        "reclaimed instance resumes; check the current spot price of this type and region.",
    )  # fmt: skip


def _commitment_candidate(usage: pd.DataFrame, rule: SavingRule) -> pd.DataFrame:
    lines = _on_demand_gpu(usage)
    keys = [_text(lines[c]) for c in ("provider", "resource_type", "region_id", "currency")]
    grouped = lines.groupby(keys, sort=True)
    per = pd.DataFrame({
        "days": grouped["day"].nunique(), "cost": grouped["cost"].sum(),
        "gpu_hours": grouped["gpu_hours"].sum(), "ended_at": grouped["ended_at"].max(),
        **{c: grouped[c].agg(_common) for c in ("account", "owner", "team", "model", "phase")},
    }).reset_index()  # fmt: skip
    hit = per[(per["days"] >= rule.threshold) & (per["cost"] >= rule.min_size)]
    hit = hit.assign(
        usage_id="commit:" + hit["provider"] + ":" + hit["resource_type"] + ":" + hit["region_id"]
        + ":" + hit["currency"],
        site=hit["provider"] + ":" + hit["region_id"], user=None,
        job_name=hit["resource_type"].where(hit["resource_type"] != "", "GPU instances") + " on-demand",
    )  # fmt: skip
    saving = hit["cost"] * rule.discount
    return _found(
        hit, "commitment_candidate", rule, measured=hit["days"], threshold=rule.threshold,
        wasted_cost=saving, wasted_co2e=0.0,
        formula=f"estimate: on-demand cost × assumed commitment discount {rule.discount:g}; no energy",
        message=hit["job_name"] + " in " + hit["region_id"] + " on " + hit["days"].astype(str)
        + " days: " + hit["gpu_hours"].round(1).astype(str) + " GPU-hours, "
        + money(hit["cost"], hit["currency"]) + "; a commitment would save an estimated "
        + money(saving, hit["currency"]) + " (assumed " + f"{rule.discount * 100:g}" + " % discount)",
        action="Cover the steady base of this usage with a reservation or savings plan (committed "
        "use discount) sized to the lowest daily use, not the peak; keep bursts on-demand or spot.",
    )  # fmt: skip


def _common(values: pd.Series) -> object:
    """The one value of a group (None if none), else `unallocated`: a mixed group has no owner."""
    distinct = values.dropna().unique()
    return distinct[0] if len(distinct) == 1 else (None if len(distinct) == 0 else UNALLOCATED)


def _cleaner_region(usage: pd.DataFrame, rule: RegionRule) -> pd.DataFrame:
    if not rule.alternatives:
        return pd.DataFrame()
    provider, region = _text(usage["provider"]), _text(usage["region_id"])
    alternative = pd.Series([rule.alternatives.get(f"{p}:{r}", rule.alternatives.get(r))
                             for p, r in zip(provider, region, strict=True)],
                            index=usage.index, dtype=object)  # fmt: skip
    intensity = {pair: _intensity(*pair) for pair in set(zip(provider, alternative, strict=True))}
    clean = pd.Series([intensity[pair] for pair in zip(provider, alternative, strict=True)],
                      index=usage.index, dtype="float64")  # fmt: skip
    lines = usage.assign(alternative=alternative, clean=clean)
    lines = lines[(lines["gpu_hours"] > 0) & lines["clean"].notna()]
    groups = per_resource(
        lines, "region", ("gpu_hours", "co2e_location_kg"), ("alternative", "clean")
    )
    dirty = groups["grid_intensity_g_per_kwh"]
    share = (1 - groups["clean"] / dirty).where(dirty > 0)
    hit = groups[(share > rule.threshold) & (groups["gpu_hours"] >= rule.min_size)]
    share = share[hit.index]
    return _found(
        hit, "cleaner_region", rule, measured=share, threshold=rule.threshold, wasted_cost=0.0,
        wasted_co2e=hit["co2e_location_kg"] * share,
        formula="location-based kg CO2e × (1 − alternative region's g/kWh ÷ this region's g/kWh)",
        message=hit["gpu_hours"].round(1).astype(str) + " GPU-hours in " + hit["region_id"]
        + " (" + dirty[hit.index].round(0).astype(int).astype(str) + " g CO2e/kWh); "
        + hit["alternative"] + " runs at " + hit["clean"].round(0).astype(int).astype(str)
        + " g/kWh (annual grid averages)",
        action="Run this GPU work in " + hit["alternative"] + " where data residency, latency and "
        "capacity allow; the same energy there emits " + (share * 100).round(0).astype(int).astype(str)
        + " % less (location-based).",
    )  # fmt: skip


def _intensity(provider: str, region: str | None) -> float | None:
    """Grid intensity (g CO2e/kWh) of a provider's region from the packaged tables."""
    if region is None:
        return None
    zones = table("cloud_regions")
    zone = zones.loc[(zones["provider"] == provider) & (zones["region"] == region), "grid_zone"]
    factor = grid_factor(zone.iloc[0]) if len(zone) else None
    return factor.value if factor else None
