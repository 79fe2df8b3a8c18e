"""Static tables: FOCUS 1.2 columns, the lab's accounts, regions, public prices and workload mix.

Prices are public on-demand list prices as widely published (EC2 Linux in us-east-1 before the
mid-2025 P4/P5 price cut; Compute Engine in us-central1); other regions use an approximate
multiplier. Savings Plan rates, spot discounts, the tax rate and all volumes are illustrative.
"""

from __future__ import annotations

import hashlib
import json
from random import Random

# FOCUS 1.2 columns (all 57, in the order of the spec's column list), then two AWS-style custom
# columns. Nulls are written as empty cells.
FOCUS_COLUMNS = (
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName",
    "BillingAccountType", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "CapacityReservationId", "CapacityReservationStatus", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit", "ContractedCost",
    "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId",
    "ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "ServiceSubcategory",
    "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "SubAccountId", "SubAccountName",
    "SubAccountType", "Tags",
)  # fmt: skip
HEADER = FOCUS_COLUMNS + ("x_InstanceType", "x_UsageType")
COL = {name: index for index, name in enumerate(HEADER)}

TEAMS = ("foundation-models", "alignment", "inference-platform", "evaluation", "vision", "research")
MODELS = ("orca-7b", "orca-70b", "orca-7b-chat", "orca-70b-chat")
CHAT_MODELS = ("orca-7b-chat", "orca-70b-chat")
BENCHES = ("mmlu", "gsm8k", "humaneval", "helm", "mt-bench", "longctx")

CURRENCY = "USD"
TAX_RATE = 0.06  # illustrative US sales tax on every account's monthly charges
AWS = {
    "provider": "AWS",
    "publisher": "Amazon Web Services, Inc.",
    "issuer": "Amazon Web Services, Inc.",
    "billing_id": "481516234200",
    "billing_name": "Example AI Lab",
    "billing_type": "Management Account",
    "sub_type": "Member Account",
}
GCP = {
    "provider": "Google Cloud",
    "publisher": "Google Cloud",
    "issuer": "Google Cloud",
    "billing_id": "01A7C3-5E9B2D-4F0A61",
    "billing_name": "Example AI Lab (Google Cloud)",
    "billing_type": "Billing Account",
    "sub_type": "Project",
}
# AWS member accounts (one per team plus shared services and the management account) and
# Google Cloud projects; key -> (provider table, SubAccountId, SubAccountName).
ACCOUNTS = {
    "management": (AWS, "481516234200", "example-ai-lab-management"),
    "shared-services": (AWS, "481516234201", "example-ai-lab-shared-services"),
    **{
        team: (AWS, f"4815162342{11 + i}", f"example-ai-lab-{team}") for i, team in enumerate(TEAMS)
    },
    "gcp-vision": (GCP, "eail-vision-prod", "eail-vision-prod"),
    "gcp-research": (GCP, "eail-research-sandbox", "eail-research-sandbox"),
}

# region -> (RegionName, usage-type prefix as in CUR, price multiplier vs us-east-1)
AWS_REGIONS = {
    "us-east-1": ("US East (N. Virginia)", "", 1.0),
    "us-west-2": ("US West (Oregon)", "USW2-", 1.0),
    "eu-north-1": ("EU (Stockholm)", "EUN1-", 1.06),
}
GCP_REGIONS = {
    "us-central1": ("Iowa", "Americas", 1.0),
    "europe-west4": ("Netherlands", "EMEA", 1.1),
}

# EC2 on-demand Linux USD per hour in us-east-1, and the Compute Savings Plan (1 yr, no upfront)
# rate as a fraction of it.
EC2_PRICES = {
    "p5.48xlarge": 98.32,
    "p4d.24xlarge": 32.7726,
    "g5.xlarge": 1.006,
    "g5.12xlarge": 5.672,
    "g6e.xlarge": 1.861,
    "g6.xlarge": 0.8048,
    "m6i.xlarge": 0.192,
    "c6i.2xlarge": 0.34,
}
SP_RATE = {"p5": 0.74, "p4d": 0.72, "g5": 0.70, "g6": 0.70, "g6e": 0.70, "m6i": 0.72, "c6i": 0.72}
GCE_PRICES = {"a2-highgpu-1g": 3.673385, "g2-standard-8": 0.853624}
GCE_GPU = {"a2-highgpu-1g": "1x NVIDIA A100 40GB", "g2-standard-8": "1x NVIDIA L4"}

# One entry per resource profile: name -> (persistent?, weight). Persistent resources bill every
# period; the others are drawn as needed to fill each period's rows. Weights are shares of rows.
PROFILES = {
    "serve": (True, 9),  # inference fleet, scaled in at weekends
    "serve-large": (True, 2),
    "cpu-always": (True, 4),
    "forgotten-dev": (True, 2),  # untagged GPU dev box left running
    "ebs": (True, 12),
    "s3": (True, 4),
    "xfer-out": (True, 4),
    "xfer-region": (True, 3),
    "nat-hours": (True, 1),
    "nat-bytes": (True, 2),
    "xfer-shared": (True, 1),
    "cw-requests": (True, 3),
    "cw-logs": (True, 2),
    "sqs": (True, 2),
    "gcs": (True, 2),
    "train": (False, 4),
    "finetune": (False, 9),
    "eval": (False, 8),
    "research-dev": (False, 6),
    "cpu-batch": (False, 4),
    "gcp-gpu": (False, 6),
}

DEV_TOPICS = ("kv-cache", "moe-router", "flash-attn", "longctx", "quant-int4", "spec-decode")
RESEARCHERS = ("lcho", "mgarcia")

TEAM_WEIGHTS = (
    ("foundation-models", 4), ("alignment", 2), ("inference-platform", 4), ("evaluation", 2),
    ("vision", 2), ("research", 1),
)  # fmt: skip
TEAM_DEFAULTS = {  # team -> (models to tag with, phase, regions)
    "foundation-models": (("orca-7b", "orca-70b"), "training", ("us-east-1", "us-west-2")),
    "alignment": (CHAT_MODELS, "fine-tuning", ("us-east-1", "us-west-2")),
    "inference-platform": (CHAT_MODELS, "inference", ("us-east-1", "us-west-2", "eu-north-1")),
    "evaluation": (MODELS, "evaluation", ("us-east-1", "eu-north-1")),
    "vision": ((None,), "training", ("us-west-2",)),
    "research": (("orca-7b", None), "training", ("eu-north-1", "us-east-1")),
}
CPU_NAMES = {"inference-platform": "api-gateway", "evaluation": "eval-harness",
             "foundation-models": "dataprep", "alignment": "pref-labeling", "research": "notebook",
             "vision": "vis-dataprep"}  # fmt: skip


def sku_id(*parts: str) -> str:
    """A stable SKU-like id (16 upper-case letters/digits) for a product description."""
    digest = hashlib.sha1("|".join(parts).encode()).digest()
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(alphabet[b % 32] for b in digest[:16])


def price_text(price: float) -> str:
    """`$32.7726`, `$1.006`, `$0.34`: as AWS writes unit prices in descriptions."""
    text = f"{price:.4f}".rstrip("0")
    return "$" + (text + "0" if len(text.split(".")[1]) < 2 else text)


def sp_factor(instance_type: str) -> float:
    return SP_RATE[instance_type.split(".")[0]]


def products(region: str) -> dict:
    """Non-instance products in a region: key -> (ServiceName, ServiceCategory,
    ServiceSubcategory, unit, list price per unit, usage type, ChargeDescription, ResourceType,
    SkuMeter)."""
    if region in GCP_REGIONS:
        return {
            "gcs": ("Cloud Storage", "Storage", "Object Storage", "GiB-Months", 0.02,
                    "Standard Storage", f"Standard Storage {GCP_REGIONS[region][0]}", "bucket",
                    "Storage"),
        }  # fmt: skip
    name, prefix, mult = AWS_REGIONS[region]
    ebs = round(0.08 * mult, 4)
    other = "US West (Oregon)" if region != "us-west-2" else "US East (N. Virginia)"
    pair = (prefix[:-1] or "USE1") + ("-USW2" if region != "us-west-2" else "-USE1")
    ec2, xfer, cw = "Amazon Elastic Compute Cloud", "AWS Data Transfer", "AmazonCloudWatch"
    ebs_text = f"{price_text(ebs)} per GB-month of General Purpose (gp3) provisioned storage"
    s3_text = "$0.023 per GB - first 50 TB / month of storage used"
    out_text = "$0.090 per GB - first 10 TB / month data transfer out beyond the global free tier"
    logs_text = f"$0.50 per GB custom log data ingested in Standard log class - {name}"
    sqs_text = f"$0.40 per million Amazon SQS standard requests in Tier1 in {name}"
    mg, net = "Management and Governance", "Networking"
    return {
        "ebs": (ec2, "Storage", "Disk", "GB-Months", ebs, f"{prefix}EBS:VolumeUsage.gp3",
                f"{ebs_text} - {name}", "volume", "Storage"),
        "s3": ("Amazon Simple Storage Service", "Storage", "Object Storage", "GB-Months", 0.023,
               f"{prefix}TimedStorage-ByteHrs", s3_text, "bucket", "Storage"),
        "xfer-out": (xfer, net, "Data Transfer", "GB", 0.09, f"{prefix}DataTransfer-Out-Bytes",
                     out_text, "instance", "Data Transfer"),
        "xfer-region": (xfer, net, "Data Transfer", "GB", 0.02, f"{pair}-AWS-Out-Bytes",
                        f"$0.020 per GB - {name} data transfer to {other}", "bucket",
                        "Data Transfer"),
        "nat-hours": (ec2, net, "Network Management", "Hours", 0.045, f"{prefix}NatGateway-Hours",
                      "$0.045 per NAT Gateway Hour", "natgateway", "NAT Gateway"),
        "nat-bytes": (ec2, net, "Network Management", "GB", 0.045, f"{prefix}NatGateway-Bytes",
                      "$0.045 per GB Data Processed by NAT Gateways", "natgateway", "NAT Gateway"),
        "cw-requests": (cw, mg, "Observability", "Requests", 0.00001, f"{prefix}CW:Requests",
                        "$0.01 per 1,000 requests", "", "API Request"),
        "cw-logs": (cw, mg, "Observability", "GB", 0.5, f"{prefix}DataProcessing-Bytes",
                    logs_text, "log-group", "Log Ingestion"),
        "sqs": ("Amazon Simple Queue Service", "Integration", "Messaging", "Requests", 0.0000004,
                f"{prefix}Requests-Tier1", sqs_text, "queue", "API Request"),
    }  # fmt: skip


def csv_cell(value: str) -> str:
    """CSV quoting as the csv module does it (QUOTE_MINIMAL), for pre-rendered cells."""
    if '"' in value or "," in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def make_cells(fields: dict) -> list[str]:
    """A row as a list of CSV cells in HEADER order; columns not in `fields` are null (empty)."""
    cells = [""] * len(HEADER)
    for name, value in fields.items():
        cells[COL[name]] = csv_cell(str(value)) if value is not None else ""
    return cells


def num(value: float) -> str:
    """A decimal rounded to 10 places, trailing zeros dropped: `32.7726`, `0.0000004`, `0`."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def uniform(rng: Random, low: float, high: float) -> float:
    return low + (high - low) * rng.random()


def log_uniform(rng: Random, low: float, high: float) -> float:
    return low * (high / low) ** rng.random()


def pick(rng: Random, items: tuple):
    return items[int(rng.random() * len(items))]


def weighted(rng: Random, pairs: tuple):
    target = rng.random() * sum(weight for _, weight in pairs)
    for key, weight in pairs:
        target -= weight
        if target < 0:
            return key
    return pairs[-1][0]


def hex_id(rng: Random, digits: int) -> str:
    return "".join("0123456789abcdef"[int(rng.random() * 16)] for _ in range(digits))


def account_fields(account: str, region: str | None, zone: str | None) -> dict:
    """The account, provider and region cells of a row of `account` (a key of ACCOUNTS)."""
    table, sub_id, sub_name = ACCOUNTS[account]
    regions = AWS_REGIONS if table["provider"] == "AWS" else GCP_REGIONS
    region_name = regions[region][0] if region else None
    return {
        "ProviderName": table["provider"], "PublisherName": table["publisher"],
        "InvoiceIssuerName": table["issuer"], "BillingAccountId": table["billing_id"],
        "BillingAccountName": table["billing_name"], "BillingAccountType": table["billing_type"],
        "SubAccountId": sub_id, "SubAccountName": sub_name,
        "SubAccountType": "Management Account" if account == "management" else table["sub_type"],
        "BillingCurrency": CURRENCY, "PricingCurrency": CURRENCY, "ChargeCategory": "Usage",
        "RegionId": region, "RegionName": region_name, "AvailabilityZone": zone or None,
    }  # fmt: skip


def balanced_deck(rng: Random, persistent: bool, size: int = 100) -> list[str]:
    """Profiles in an order where every prefix holds them in about their weight's share, after
    one of each (so that even a small estate has every kind of resource)."""
    chosen = [(name, weight) for name, (keep, weight) in PROFILES.items() if keep == persistent]
    total = sum(weight for _, weight in chosen)
    entries = []
    for name, weight in chosen:
        count = max(1, round(size * weight / total))
        entries += [((i + rng.random()) / count if i else rng.random() - 1, name)
                    for i in range(count)]  # fmt: skip
    return [name for _, name in sorted(entries)]


def tags_json(team: str, model: str | None, phase: str | None, **extra) -> str:
    """The Tags cell: a KeyValue JSON object."""
    tags = {"team": team}
    if model:
        tags["model"] = model
    if phase:
        tags["phase"] = phase
    tags.update(extra)
    return json.dumps(tags)


def team_tags(rng: Random, team: str, untagged: float = 0.0) -> tuple[str | None, str, str]:
    """(Tags or None, a model of the team or '', a region of the team)."""
    models, phase, regions = TEAM_DEFAULTS[team]
    model = pick(rng, models)
    tags = None if rng.random() < untagged else tags_json(team, model, phase)
    return tags, model or "", pick(rng, regions)
