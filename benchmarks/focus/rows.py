"""FOCUS rows as CSV text, and the statistics EXPECTED.json reports (counted while writing).

Cost semantics follow FOCUS: BilledCost is the invoice basis, EffectiveCost the amortised one.
Usage covered by the Savings Plan has BilledCost 0 and EffectiveCost at the plan's rate; the
plan's monthly fee is a Purchase row with EffectiveCost 0; the part of the commitment no usage
consumed in a period is a Usage row with CommitmentDiscountStatus "Unused" and no resource.
Money is rounded to 10 decimals; totals add those rounded values exactly (integer 1e-10 units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .catalog import (
    ACCOUNTS,
    COL,
    CURRENCY,
    TAX_RATE,
    account_fields,
    csv_cell,
    make_cells,
    num,
    price_text,
)
from .fleet import Resource

I_BILLED, I_EFFECTIVE, I_LIST = COL["BilledCost"], COL["EffectiveCost"], COL["ListCost"]
I_CONTRACTED, I_PC_EFFECTIVE = COL["ContractedCost"], COL["PricingCurrencyEffectiveCost"]
I_CONSUMED, I_PRICING_QTY = COL["ConsumedQuantity"], COL["PricingQuantity"]
I_BP_START, I_BP_END = COL["BillingPeriodStart"], COL["BillingPeriodEnd"]
I_CP_START, I_CP_END, I_INVOICE = COL["ChargePeriodStart"], COL["ChargePeriodEnd"], COL["InvoiceId"]
I_PRICING_CAT, I_CD_QTY, I_CD_STATUS = (
    COL["PricingCategory"],
    COL["CommitmentDiscountQuantity"],
    COL["CommitmentDiscountStatus"],
)
COMMITMENT_COLUMNS = tuple(
    f"CommitmentDiscount{part}" for part in ("Category", "Id", "Name", "Type", "Unit")
)
I_COMMITMENT = [COL[c] for c in COMMITMENT_COLUMNS]
SP_SERVICE = {
    "ServiceName": "Savings Plans for AWS Compute usage", "ServiceCategory": "Compute",
    "ServiceSubcategory": "Virtual Machines", "x_UsageType": "ComputeSP:1yrNoUpfront",
}  # fmt: skip
BAD_ROW_KINDS = ("malformed_cost", "hour_30")
CENT = Decimal("0.01")


def savings_plan(arn: str, name: str) -> dict:
    """The CommitmentDiscount* cells shared by every row of the lab's Compute Savings Plan."""
    values = ("Spend", arn, name, "Savings Plan", CURRENCY)
    return {
        "arn": arn, "name": name, "fields": dict(zip(COMMITMENT_COLUMNS, values, strict=True)),
        "cells": [csv_cell(value) for value in values],
    }  # fmt: skip


def cents(total_units: int) -> float:
    return float((Decimal(total_units) / 10**10).quantize(CENT, ROUND_HALF_UP))


@dataclass
class FocusStats:
    path: str
    granularity: str = ""
    rows: int = 0
    totals: dict = field(default_factory=dict)  # currency -> [billed units, effective units]
    untagged: list = field(default_factory=lambda: [0, 0, 0])  # rows, billed, effective units
    categories: dict = field(default_factory=dict)
    providers: dict = field(default_factory=dict)
    bad_rows: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "header_lines": 1,
            "charge_granularity": self.granularity,
            "totals": {
                currency: {"BilledCost": cents(billed), "EffectiveCost": cents(effective)}
                for currency, (billed, effective) in sorted(self.totals.items())
            },
            "charge_categories": dict(sorted(self.categories.items())),
            "providers": dict(sorted(self.providers.items())),
            "untagged_rows": self.untagged[0],
            "untagged_cost": {
                "BilledCost": cents(self.untagged[1]),
                "EffectiveCost": cents(self.untagged[2]),
            },
            "bad_row_count": len(self.bad_rows),
            "bad_row_numbers": [bad["line"] for bad in self.bad_rows],
            "bad_rows": self.bad_rows,
        }


class Ledger:
    """Renders rows into a buffer, flushed by the caller, and keeps the running statistics."""

    def __init__(self, stats: FocusStats, commitment: dict, bad_lines: list[int]):
        self.stats, self.lines, self.rows = stats, [], 0
        self.bad_lines = sorted(bad_lines, reverse=True)  # next one last
        self.next_bad = self.bad_lines.pop() if self.bad_lines else 0
        self.commitment = commitment  # the Savings Plan: ARN, name, CommitmentDiscount* cells
        # this month: (category, provider, account, kind, tagged) -> [rows, billed, effective]
        self.month: dict[tuple, list[int]] = {}
        self.period: tuple = ()
        self.invoices: dict[str, str] = {}  # provider -> this month's invoice id
        self.previous_xfer = 0.0  # inter-region transfer billed last month

    def set_period(self, bp_start: str, bp_end: str, cp_start: str, cp_end: str) -> None:
        self.period = (bp_start, bp_end, cp_start, cp_end)

    def _bad(self, cells: list) -> None:
        """Break the row on purpose (--bad-rows); it counts in no total."""
        stats, line = self.stats, self.rows + 1
        bad = BAD_ROW_KINDS[len(stats.bad_rows) % len(BAD_ROW_KINDS)]
        if bad == "malformed_cost":
            cells[I_BILLED] = '"1,234.5O"'
        else:
            cells[I_CP_END] = cells[I_CP_START][:11] + "30:00:00Z"
        stats.bad_rows.append({"line": line, "kind": bad})
        self.lines.append(",".join(cells))
        self.next_bad = self.bad_lines.pop() if self.bad_lines else 0

    def _add(self, cells: list, billed: str, effective: str, key: tuple) -> None:
        self.rows += 1
        billed_text = _strip(billed)
        cells[I_BILLED] = billed_text
        cells[I_EFFECTIVE] = cells[I_PC_EFFECTIVE] = (
            billed_text if effective is billed else _strip(effective)
        )
        if self.rows + 1 == self.next_bad:  # the header is line 1
            return self._bad(cells)
        billed_units = int(billed.replace(".", ""))  # exact, in 1e-10 units
        effective_units = billed_units if effective is billed else int(effective.replace(".", ""))
        tally = self.month.get(key)
        if tally is None:
            tally = self.month[key] = [0, 0, 0]
        tally[0] += 1
        tally[1] += billed_units
        tally[2] += effective_units
        self.lines.append(",".join(cells))

    def usage(self, res: Resource, qty: float, covered: float | None = None) -> None:
        """One usage row of `res`; `covered` is the Savings Plan cost when the plan covers it."""
        cells = res.cells.copy()
        cells[I_BP_START], cells[I_BP_END], cells[I_CP_START], cells[I_CP_END] = self.period
        cells[I_INVOICE] = self.invoices[res.provider]
        cells[I_CONSUMED] = cells[I_PRICING_QTY] = num(qty)
        list_fixed = f"{qty * res.list_price:.10f}"
        cells[I_LIST] = cells[I_CONTRACTED] = _strip(list_fixed)
        if covered is not None:
            billed, effective = "0.0000000000", f"{covered:.10f}"
            cells[I_PRICING_CAT], cells[I_CD_STATUS] = "Committed", "Used"
            cells[I_CD_QTY] = _strip(effective)
            for index, value in zip(I_COMMITMENT, self.commitment["cells"], strict=True):
                cells[index] = value
        elif res.spot:
            billed = effective = f"{qty * res.list_price * res.factor:.10f}"
        else:
            billed = effective = list_fixed
        self._add(cells, billed, effective, res.key)

    def charge(self, account: str, category: str, kind: str, amount: float, effective: float,
               **fields) -> None:  # fmt: skip
        """A row that is not resource usage: purchase, unused commitment, tax, credit, ..."""
        table = ACCOUNTS[account][0]
        bp_start, bp_end, cp_start, cp_end = self.period
        base = account_fields(account, fields.pop("region", None), None)
        base.update(
            ChargeCategory=category, BillingPeriodStart=bp_start, BillingPeriodEnd=bp_end,
            ChargePeriodStart=fields.pop("cp_start", cp_start),
            ChargePeriodEnd=fields.pop("cp_end", cp_end),
            InvoiceId=self.invoices[table["provider"]], ListCost=num(amount),
            ContractedCost=num(amount),
        )  # fmt: skip
        base.update(fields)
        key = (category, table["provider"], account, kind, False)
        self._add(make_cells(base), f"{amount:.10f}", f"{effective:.10f}", key)

    def unused(self, amount: float, hours: float) -> None:
        self.charge(
            "management", "Usage", "commitment", 0.0, amount, ChargeFrequency="Usage-Based",
            ChargeDescription="Unused Savings Plan commitment", PricingCategory="Committed",
            CommitmentDiscountStatus="Unused", CommitmentDiscountQuantity=num(amount),
            PricingQuantity=num(hours), PricingUnit="Hours", ContractedUnitPrice="0",
            PricingCurrencyContractedUnitPrice="0", **self.commitment["fields"], **SP_SERVICE,
        )  # fmt: skip

    def purchase(self, rate: float, hours: float) -> None:
        """The Savings Plan's recurring fee for the billing period (amortised into usage)."""
        amount, sp = round(rate * hours, 10), self.commitment
        self.charge(
            "management", "Purchase", "commitment", amount, 0.0, ChargeFrequency="Recurring",
            ChargeDescription=f"Savings Plan recurring fee: {price_text(rate)} per hour, Compute"
            " Savings Plan 1 yr No Upfront", PricingCategory="Standard",
            PricingQuantity=num(hours), PricingUnit="Hours", ListUnitPrice=num(rate),
            ContractedUnitPrice=num(rate), PricingCurrencyListUnitPrice=num(rate),
            PricingCurrencyContractedUnitPrice=num(rate), CommitmentDiscountQuantity=num(amount),
            ResourceId=sp["arn"], ResourceName=sp["name"], ResourceType="Savings Plan",
            **sp["fields"], **SP_SERVICE,
        )  # fmt: skip

    def flush(self, handle) -> None:
        if self.lines:
            handle.write("\n".join(self.lines) + "\n")
            self.lines.clear()

    def _month_sum(self, column: int, account: str | None = None, kind: str | None = None) -> float:
        """This month's billed (column 1) or effective (2) cost of an account or resource kind."""
        total = sum(
            tally[column]
            for (_, _, key_account, key_kind, _), tally in self.month.items()
            if account in (None, key_account) and kind in (None, key_kind)
        )
        return cents(total)

    def month_end(self, month_label: str, correction: tuple | None) -> None:
        """Support, credit, the correction (`correction` = its charge period and month name; the
        last month only) and tax for every account; then the month's rows join the totals."""
        support = business_support(self._month_sum(2, account="inference-platform"))
        self.charge(
            "inference-platform", "Purchase", "support", support, support,
            ChargeFrequency="Recurring", ChargeDescription="AWS Support (Business)",
            ServiceName="AWS Support (Business)", ServiceCategory="Management and Governance",
            ServiceSubcategory="Support", PricingCategory="Standard", PricingQuantity="1",
            PricingUnit="Months", ListUnitPrice=num(support), ContractedUnitPrice=num(support),
        )  # fmt: skip
        credit = -round(min(1500.0, self._month_sum(1, account="research")), 2)
        self.charge(
            "research", "Credit", "credit", credit, credit, ChargeFrequency="One-Time",
            ChargeDescription="AWS Cloud Credit for Research",
            ServiceName="Amazon Elastic Compute Cloud", ServiceCategory="Compute",
            ServiceSubcategory="Virtual Machines",
        )  # fmt: skip
        if correction is not None:
            amount = -round(max(0.04 * self.previous_xfer, 25.0), 2)
            self.charge(
                "foundation-models", "Adjustment", "adjustment", amount, amount,
                ChargeClass="Correction", ChargeFrequency="One-Time",
                ChargeDescription="Correction: inter-region data transfer USE1-USW2 billed twice"
                f" in {correction[2]}", ServiceName="AWS Data Transfer",
                ServiceCategory="Networking", ServiceSubcategory="Data Transfer",
                cp_start=correction[0], cp_end=correction[1], region="us-east-1",
            )  # fmt: skip
        for account, (_, sub_id, _) in ACCOUNTS.items():
            tax = round(TAX_RATE * max(self._month_sum(1, account=account), 0.0), 2)
            self.charge(
                account, "Tax", "tax", tax, tax, ChargeFrequency="Recurring",
                ChargeDescription=f"Sales tax on {month_label} charges, account {sub_id}",
                ServiceName="Tax", ServiceCategory="Other", ServiceSubcategory="Other (Other)",
            )  # fmt: skip
        self.previous_xfer = self._month_sum(1, kind="xfer-region")
        stats = self.stats
        for (category, provider, _, _, tagged), (rows, billed, effective) in self.month.items():
            stats.rows = self.rows
            stats.categories[category] = stats.categories.get(category, 0) + rows
            stats.providers[provider] = stats.providers.get(provider, 0) + rows
            total = stats.totals.setdefault(CURRENCY, [0, 0])
            total[0] += billed
            total[1] += effective
            if not tagged:
                stats.untagged[0] += rows
                stats.untagged[1] += billed
                stats.untagged[2] += effective
        self.month.clear()


def business_support(charges: float) -> float:
    """AWS Business Support: 10 % of the first $10k, 7 % up to $80k, 5 % up to $250k, 3 % above;
    at least $100 a month."""
    fee = sum(
        rate * max(0.0, min(charges, high) - low)
        for low, high, rate in (
            (0, 1e4, 0.10),
            (1e4, 8e4, 0.07),
            (8e4, 2.5e5, 0.05),
            (2.5e5, 1e12, 0.03),
        )
    )
    return round(max(100.0, fee), 2)


def _strip(fixed: str) -> str:
    text = fixed.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
