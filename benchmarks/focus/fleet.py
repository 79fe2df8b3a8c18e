"""The lab's cloud estate: what each resource is, when it runs and how much it uses per period.

Only ``Random.random()`` is used, so a seed gives the same estate on any CPython 3.11+.
"""

from __future__ import annotations

from random import Random

from .catalog import (
    ACCOUNTS,
    AWS_REGIONS,
    BENCHES,
    CHAT_MODELS,
    CPU_NAMES,
    DEV_TOPICS,
    EC2_PRICES,
    GCE_GPU,
    GCE_PRICES,
    GCP_REGIONS,
    MODELS,
    RESEARCHERS,
    TEAM_DEFAULTS,
    TEAM_WEIGHTS,
    account_fields,
    hex_id,
    log_uniform,
    make_cells,
    num,
    pick,
    price_text,
    products,
    sku_id,
    sp_factor,
    tags_json,
    team_tags,
    uniform,
    weighted,
)

HOURS, STORAGE, VOLUME = 0, 1, 2  # what ConsumedQuantity measures
ALWAYS, SCALED, WEEKDAY, BURST, CAMPAIGN = range(5)  # when a resource runs


class Resource:
    """One billed thing. `cells` holds the row cells that never change; `roll` draws its day."""

    __slots__ = (
        "account", "amount", "cells", "day", "eligible", "factor", "growth", "h_hi", "h_lo",
        "hours", "key", "kind", "list_price", "mean_hours", "mode", "p_day", "provider", "run_left",
        "schedule", "sp_price", "spot", "start", "tagged", "volume",
    )  # fmt: skip

    def roll(self, day: int, weekday: int, total_days: int, rng: Random) -> None:
        """Draw the resource's day: active hours, when they start, volume and spot price."""
        self.day, schedule = day, self.schedule
        if schedule == ALWAYS:
            hours = 24.0
        elif schedule == SCALED:  # inference scaled in at weekends
            hours = 24.0 if weekday < 5 or rng.random() < 0.5 else uniform(rng, 8, 16)
        elif schedule == WEEKDAY:
            active = rng.random() < (0.9 if weekday < 5 else 0.08)
            hours = uniform(rng, self.h_lo, self.h_hi) if active else 0.0
        elif schedule == BURST:
            hours = uniform(rng, self.h_lo, self.h_hi) if rng.random() < self.p_day else 0.0
        elif self.run_left > 0:  # a training campaign runs day and night
            self.run_left -= 1
            hours = 24.0
        elif rng.random() < 0.1:
            self.run_left = 2 + int(rng.random() * 6)
            hours = uniform(rng, 6, 24)
        else:
            hours = 0.0
        self.hours = hours
        self.start = 0.0 if hours >= 24 else uniform(rng, 0, 24)  # may run past midnight
        if self.mode == STORAGE:
            self.amount = self.volume * (1 + self.growth * day / total_days)
        elif self.mode == VOLUME:
            self.amount = self.volume * (0.6 + 0.8 * rng.random())
        if self.spot:
            self.factor = self.spot * (0.9 + 0.2 * rng.random())

    def quantity(self, h0: float, span: float, month_hours: float) -> float:
        """ConsumedQuantity in the period [h0, h0 + span) hours of the day; 0 when idle."""
        hours = self.hours
        if hours <= 0:
            return 0.0
        end = self.start + hours  # hours past midnight wrap to the start of the same day
        overlap = max(0.0, min(h0 + span, end) - max(h0, self.start))
        if end > 24:
            overlap += max(0.0, min(h0 + span, end - 24) - h0)
        if overlap <= 0:
            return 0.0
        if self.mode == HOURS:
            return overlap
        if self.mode == STORAGE:
            return self.amount * overlap / month_hours
        return self.amount * overlap / hours


def _base(account: str, kind: str, tags: str | None, mode: int, schedule: int) -> Resource:
    res = Resource()
    res.account, res.kind, res.tagged = account, kind, bool(tags)
    res.mode, res.schedule, res.eligible = mode, schedule, False
    res.list_price = res.sp_price = res.spot = res.growth = res.volume = 0.0
    res.p_day, res.mean_hours, res.h_lo, res.h_hi = 1.0, 24.0, 24.0, 24.0
    res.day, res.hours, res.start, res.amount, res.factor, res.run_left = -1, 0.0, 0.0, 0.0, 1.0, 0
    return res


def _finish(res: Resource, fields: dict, rng: Random, price: float, unit: str) -> Resource:
    res.list_price, res.provider = price, fields["ProviderName"]
    res.key = ("Usage", res.provider, res.account, res.kind, res.tagged)  # for the statistics
    fields.update(
        ListUnitPrice=num(price), ContractedUnitPrice=num(price), ConsumedUnit=unit,
        PricingCurrencyListUnitPrice=num(price), PricingCurrencyContractedUnitPrice=num(price),
        PricingUnit=unit, PricingCategory=fields.get("PricingCategory", "Standard"),
        ChargeFrequency="Usage-based" if rng.random() < 0.05 else "Usage-Based",
    )  # fmt: skip
    res.cells = make_cells(fields)
    return res


def instance(rng: Random, account: str, itype: str, region: str, name: str | None,
             tags: str | None, schedule: int, spot: bool = False, hours=(24.0, 24.0),
             p_day: float = 1.0) -> Resource:  # fmt: skip
    """An EC2 (or Compute Engine) instance billed per hour, on demand or spot."""
    res = _base(account, "instance", tags, HOURS, schedule)
    res.h_lo, res.h_hi, res.p_day = hours[0], hours[1], p_day
    res.mean_hours = (hours[0] + hours[1]) / 2
    if itype in GCE_PRICES:
        _, area, mult = GCP_REGIONS[region]
        zone, price = f"{region}-{pick(rng, 'abc')}", round(GCE_PRICES[itype] * mult, 6)
        fields, usage_type = account_fields(account, region, zone), f"{itype} running in {area}"
        instance_id = "".join(str(int(rng.random() * 10)) for _ in range(19))
        fields.update(
            ChargeDescription=f"{itype} ({GCE_GPU[itype]}) instance running in {area}",
            ResourceId=f"//compute.googleapis.com/projects/{ACCOUNTS[account][1]}/zones/{zone}"
            f"/instances/{instance_id}", ServiceName="Compute Engine", SkuMeter="Instance Usage",
            SkuId=sku_id("gce", itype, region)[:12],
        )  # fmt: skip
    else:
        region_name, prefix, mult = AWS_REGIONS[region]
        zone, price = f"{region}{pick(rng, 'abcd')}", round(EC2_PRICES[itype] * mult, 4)
        fields, sku = account_fields(account, region, zone), sku_id("ec2", itype, region)
        usage_type = f"{prefix}{'SpotUsage' if spot else 'BoxUsage'}:{itype}"
        description = (
            f"Linux/UNIX Spot Instance-hour for {itype} in {region_name}"
            if spot
            else f"{price_text(price)} per On Demand Linux {itype} Instance Hour"
        )
        fields.update(
            ChargeDescription=description, ResourceId=f"i-0{hex_id(rng, 16)}",
            ServiceName="Amazon Elastic Compute Cloud", SkuMeter="Instance Usage", SkuId=sku,
            SkuPriceId=f"{sku}.JRTCKXETXF.6YS6EN2CT7",
        )  # fmt: skip
        res.eligible = not spot
        res.sp_price = round(price * sp_factor(itype), 6)
    if spot:
        res.spot = uniform(rng, 0.3, 0.45)
        fields["PricingCategory"] = "Dynamic"
    fields.update(
        ResourceName=name, ResourceType="instance", ServiceCategory="Compute",
        ServiceSubcategory="Virtual Machines", Tags=tags, x_InstanceType=itype,
        x_UsageType=usage_type,
    )  # fmt: skip
    return _finish(res, fields, rng, price, "Hours")


def product(rng: Random, account: str, kind: str, region: str, resource_id: str | None,
            name: str | None, tags: str | None, volume: float, growth: float = 0.0,
            ) -> Resource:  # fmt: skip
    """A metered product that is not an instance: storage, transfer, requests, NAT gateways."""
    service, category, sub, unit, price, usage, text, rtype, meter = products(region)[kind]
    mode = STORAGE if unit.endswith("-Months") else HOURS if unit == "Hours" else VOLUME
    res = _base(account, kind, tags, mode, ALWAYS)
    res.volume, res.growth = volume, growth
    fields = account_fields(account, region, None)
    sku = sku_id(kind, region)[: 12 if kind == "gcs" else 16]
    fields.update(
        ChargeDescription=text, ResourceId=resource_id, ResourceName=name,
        ResourceType=rtype or None, ServiceName=service, ServiceCategory=category,
        ServiceSubcategory=sub, SkuId=sku, SkuMeter=meter, Tags=tags, x_UsageType=usage,
        SkuPriceId=f"{sku}.JRTCKXETXF.6YS6EN2CT7" if kind != "gcs" else None,
    )  # fmt: skip
    return _finish(res, fields, rng, price, unit)


def build(profile: str, rng: Random, serial: int) -> Resource:
    """A new resource of the given profile (see catalog.PROFILES)."""
    if profile in ("serve", "serve-large"):
        model = "orca-7b-chat" if profile == "serve" else "orca-70b-chat"
        if profile == "serve":
            itype = weighted(rng, (("g5.xlarge", 4), ("g6.xlarge", 3), ("g6e.xlarge", 3)))
            region = weighted(rng, (("us-east-1", 5), ("us-west-2", 3), ("eu-north-1", 2)))
        else:  # a 70B model on 4 x A10G
            itype, region = "g5.12xlarge", pick(rng, ("us-east-1", "us-west-2"))
        tags = tags_json("inference-platform", model, "inference")
        res = instance(rng, "inference-platform", itype, region, f"serve-{model}-{serial:02d}",
                       tags, SCALED)  # fmt: skip
        res.mean_hours = 22.3
        return res
    if profile == "train":
        team = weighted(rng, (("foundation-models", 7), ("vision", 3)))
        itype = weighted(rng, (("p4d.24xlarge", 65), ("p5.48xlarge", 35)))
        model = pick(rng, ("orca-7b", "orca-70b")) if team == "foundation-models" else None
        name = f"pt-{model}-r{serial:02d}" if model else f"vis-pretrain-{serial:02d}"
        res = instance(rng, team, itype, pick(rng, ("us-east-1", "us-west-2")), name,
                       tags_json(team, model, "training"), CAMPAIGN, p_day=0.35)  # fmt: skip
        res.mean_hours = 21.0
        return res
    if profile == "finetune":
        team = weighted(rng, (("alignment", 6), ("foundation-models", 2), ("vision", 2)))
        model = pick(rng, CHAT_MODELS) if team != "vision" else None
        method = pick(rng, ("sft", "dpo", "lora"))
        itype = weighted(rng, (("g5.12xlarge", 4), ("g6e.xlarge", 4), ("p4d.24xlarge", 2)))
        name = f"ft-{model}-{method}-{serial:02d}" if model else f"vis-ft-{serial:02d}"
        return instance(rng, team, itype, pick(rng, TEAM_DEFAULTS[team][2]), name,
                        tags_json(team, model, "fine-tuning"), BURST, rng.random() < 0.3,
                        (3.0, 20.0), 0.45)  # fmt: skip
    if profile == "eval":
        model, bench = pick(rng, MODELS), pick(rng, BENCHES)
        itype = weighted(rng, (("g6e.xlarge", 7), ("g5.12xlarge", 5), ("g6.xlarge", 5),
                               ("g5.xlarge", 3)))  # fmt: skip
        return instance(rng, "evaluation", itype, pick(rng, ("us-east-1", "eu-north-1")),
                        f"eval-{model}-{bench}", tags_json("evaluation", model, "evaluation"),
                        WEEKDAY, rng.random() < 0.5, (2.0, 12.0), 0.67)  # fmt: skip
    if profile == "research-dev":
        model = "orca-7b" if rng.random() < 0.5 else None
        extra = {"experimental": True} if rng.random() < 0.4 else {}
        tags = tags_json("research", model, pick(rng, ("training", "evaluation")), **extra)
        itype = weighted(rng, (("g5.xlarge", 4), ("g6.xlarge", 4), ("g6e.xlarge", 2)))
        name = f"dev-{pick(rng, RESEARCHERS)}-{pick(rng, DEV_TOPICS)}"
        return instance(rng, "research", itype, pick(rng, ("eu-north-1", "us-east-1")), name,
                        tags, WEEKDAY, False, (5.0, 11.0), 0.67)  # fmt: skip
    if profile == "forgotten-dev":
        team = pick(rng, ("research", "vision"))
        itype = pick(rng, ("g5.xlarge", "g6.xlarge"))
        return instance(rng, team, itype, TEAM_DEFAULTS[team][2][0], None, None, ALWAYS)
    if profile in ("cpu-always", "cpu-batch"):
        team = weighted(rng, TEAM_WEIGHTS)
        tags, model, region = team_tags(rng, team, untagged=0.12)
        itype = weighted(rng, (("m6i.xlarge", 6), ("c6i.2xlarge", 4)))
        name = f"{CPU_NAMES[team]}-{serial:02d}"
        if profile == "cpu-always":
            return instance(rng, team, itype, region, name, tags, ALWAYS)
        return instance(rng, team, itype, region, name, tags, BURST, rng.random() < 0.4,
                        (2.0, 16.0), 0.5)  # fmt: skip
    if profile == "ebs":
        team = weighted(rng, TEAM_WEIGHTS)
        tags, _, region = team_tags(rng, team, untagged=0.08)
        return product(rng, team, "ebs", region, f"vol-0{hex_id(rng, 16)}", None, tags,
                       log_uniform(rng, 100, 4000))  # fmt: skip
    if profile == "s3":
        team = weighted(rng, (("foundation-models", 5), ("vision", 2), ("evaluation", 1),
                              ("alignment", 1)))  # fmt: skip
        tags, _, region = team_tags(rng, team)
        bucket = f"eail-{team}-{pick(rng, ('checkpoints', 'datasets'))}-{serial:02d}"
        return product(rng, team, "s3", region, bucket, bucket, tags,
                       log_uniform(rng, 5e3, 1.5e5), uniform(rng, 0, 0.6))  # fmt: skip
    if profile in ("xfer-out", "xfer-region"):
        team = "inference-platform" if profile == "xfer-out" else "foundation-models"
        tags, _, region = team_tags(rng, team)
        if profile == "xfer-out":
            rid, volume = f"i-0{hex_id(rng, 16)}", log_uniform(rng, 50, 600)
        else:
            rid, volume = (
                f"eail-foundation-models-checkpoints-{serial:02d}",
                log_uniform(rng, 100, 1500),
            )
            region = "us-east-1"
        return product(rng, team, profile, region, rid, None, tags, volume)
    account = "shared-services"
    if profile in ("nat-hours", "nat-bytes", "xfer-shared"):
        region = weighted(rng, (("us-east-1", 5), ("us-west-2", 3), ("eu-north-1", 2)))
        nat = f"arn:aws:ec2:{region}:{ACCOUNTS[account][1]}:natgateway/nat-0{hex_id(rng, 16)}"
        if profile == "xfer-shared":
            return product(rng, account, "xfer-out", region, None, None, None,
                           log_uniform(rng, 20, 200))  # fmt: skip
        return product(rng, account, profile, region, nat, None, None, log_uniform(rng, 100, 1200))
    if profile in ("cw-requests", "cw-logs", "sqs"):
        account = weighted(rng, (("shared-services", 3), ("inference-platform", 2),
                                 ("evaluation", 1)))  # fmt: skip
        tags, _, region = (None, "", "us-east-1")
        if account != "shared-services" and (profile == "sqs" or rng.random() < 0.5):
            tags, _, region = team_tags(rng, account)
        aws_id = ACCOUNTS[account][1]
        if profile == "cw-requests":
            return product(rng, account, profile, region, None, None, tags,
                           log_uniform(rng, 2e5, 5e6))  # fmt: skip
        if profile == "cw-logs":
            arn = f"arn:aws:logs:{region}:{aws_id}:log-group:/eail/{account}/app-{serial:02d}"
            return product(rng, account, profile, region, arn, None, tags, log_uniform(rng, 2, 40))
        arn = f"arn:aws:sqs:{region}:{aws_id}:eail-{account}-jobs-{serial:02d}"
        return product(rng, account, profile, region, arn, None, tags, log_uniform(rng, 1e6, 2e7))
    account = weighted(rng, (("gcp-vision", 6), ("gcp-research", 4)))
    team = account[4:]
    region = pick(rng, tuple(GCP_REGIONS))
    if profile == "gcs":
        bucket = f"eail-{team}-data-{serial:02d}"
        return product(rng, account, "gcs", region, f"//storage.googleapis.com/projects/_/buckets/"
                       f"{bucket}", bucket, tags_json(team, None, "training"),
                       log_uniform(rng, 2e3, 4e4), uniform(rng, 0, 0.4))  # fmt: skip
    model = "orca-7b" if team == "research" else None
    phase = pick(rng, ("training", "fine-tuning") if team == "vision" else ("evaluation",))
    itype = pick(rng, tuple(GCE_PRICES))
    return instance(rng, account, itype, region, f"{team[:3]}-gpu-{serial:02d}",
                    tags_json(team, model, phase), BURST, False, (4.0, 20.0), 0.5)  # fmt: skip
