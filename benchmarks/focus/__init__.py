"""Deterministic generator of realistic FinOps FOCUS 1.2 cost exports for a small AI lab.

The lab ("Example AI Lab") runs on AWS member accounts, one per team (foundation-models,
alignment, inference-platform, evaluation, vision, research) plus shared services and the
management account, and on two Google Cloud projects. The export holds all 57 FOCUS 1.2 columns
(nulls as empty cells) and two AWS-style custom columns, `x_InstanceType` and `x_UsageType`.

What is in it:
  usage      GPU instances for serving, training, fine-tuning, evaluation and dev boxes (EC2
             p5/p4d/g5/g6/g6e, Compute Engine a2/g2; on demand, spot as PricingCategory Dynamic,
             or covered by the Savings Plan as Committed), CPU instances, EBS gp3, S3, GCS, data
             transfer out and between regions, NAT gateways, and lines with no physical model
             (CloudWatch requests and log ingestion, SQS requests)
  commitment a Compute Savings Plan: a monthly Purchase row (EffectiveCost 0), covered usage
             (BilledCost 0, EffectiveCost at the plan rate) and, whenever usage leaves some of a
             period's commitment unconsumed, a CommitmentDiscountStatus "Unused" row
  monthly    AWS Business Support on the production account, a research credit (negative),
             sales tax for every account, and one Correction adjustment in the last month
  tags       a KeyValue JSON object {"team", "model", "phase"}; drift as in real exports: a few
             resources spell the key " Team", research boxes carry "experimental": true, and
             shared networking, support, tax and forgotten dev boxes are untagged
  drift      ChargeFrequency "Usage-based" next to "Usage-Based" on ~5 % of resources

Rows come in billing-period order: each month opens with the plan's fee, then usage in charge
period order (daily periods, or hourly when there are more than HOURLY_ABOVE usage rows a day),
and closes with the month's support, credit, adjustment and tax rows. `--rows` is met exactly:
every period gets a quota of rows that persistent resources (storage, serving fleet, networking)
always fill first and intermittent ones (training campaigns, fine-tunes, evals, dev boxes) top up.
Only ``Random.random()`` is used, no clock: the same arguments give a byte-identical file (gzip
output too: no name or time in its header). Rows are written period by period, so memory holds
one period's rows and the estate (which grows with rows per period, not with the file's length).
With ``bad_rows`` > 0, that many rows spread over the file are broken on purpose (a cost that is
not a number, or a ChargePeriodEnd at hour 30); they count in no total of the statistics.
"""

from __future__ import annotations

import gzip
import io
import os
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from random import Random

from .catalog import ACCOUNTS, COL, HEADER, PROFILES, balanced_deck, hex_id
from .fleet import Resource, build
from .rows import BAD_ROW_KINDS, FocusStats, Ledger, savings_plan

__all__ = ["BAD_ROW_KINDS", "FocusStats", "generate_focus", "minimum_rows"]

HOURLY_ABOVE = 1500  # usage rows per day above which charge periods are hours, not days
SP_COVER = 0.65  # the plan's commitment as a share of the expected eligible usage
ROWS_PER_MONTH = 1 + len(ACCOUNTS) + 2  # plan fee, tax per account, support, credit
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip


class Fleet:
    """Persistent resources bill every period; intermittent ones are created as needed."""

    def __init__(self, rng: Random, n_persistent: int):
        self.rng, self.serials, self.built = rng, {}, 0
        self.intermittent: list[Resource] = []
        self._deck: list[str] = []
        deck: list[str] = []
        self.persistent = []
        while len(self.persistent) < n_persistent:
            deck = deck or balanced_deck(rng, True)
            self.persistent.append(self._new(deck.pop(0)))

    def _new(self, profile: str) -> Resource:
        self.serials[profile] = serial = self.serials.get(profile, 0) + 1
        res = build(profile, self.rng, serial)
        self.built += 1
        if res.tagged and self.built % 53 == 4:  # tag drift: a few resources spell it " Team"
            res.cells[COL["Tags"]] = res.cells[COL["Tags"]].replace('""team""', '"" Team""')
        return res

    def intermittent_at(self, index: int) -> Resource:
        while index >= len(self.intermittent):
            self._deck = self._deck or balanced_deck(self.rng, False)
            self.intermittent.append(self._new(self._deck.pop(0)))
        return self.intermittent[index]


def month_spans(first: date, stop: date) -> list[tuple[date, date, date, date]]:
    """(month start, next month start, clipped start, clipped end) of each month in the window."""
    spans, cursor = [], date(first.year, first.month, 1)
    while cursor < stop:
        following = date(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        spans.append((cursor, following, max(cursor, first), min(following, stop)))
        cursor = following
    return spans


def minimum_rows(start: str, end: str) -> int:
    first, stop = date.fromisoformat(start), date.fromisoformat(end)
    return len(month_spans(first, stop)) * ROWS_PER_MONTH + 1 + 2 * (stop - first).days


def ts(moment: datetime | date) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@contextmanager
def open_output(path: str):
    """Text handle on `path`; `.gz` is gzip without a file name or time in its header."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    if not path.endswith(".gz"):
        with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as handle:
            yield handle
        return
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as packed,
        io.TextIOWrapper(packed, encoding="utf-8", newline="\n") as handle,
    ):
        yield handle


def quotas(usage_rows: int, first: date, days: int, per_day: int) -> list[int]:
    """Rows per period (weekends a little quieter), summing exactly to `usage_rows`."""
    weights = [0.9 if (first + timedelta(d)).weekday() >= 5 else 1.0 for d in range(days)]
    total, done, result, cumulative = sum(weights) * per_day, 0, [], 0.0
    for weight in weights:
        for _ in range(per_day):
            cumulative += weight
            target = int(usage_rows * cumulative / total + 1e-9)
            result.append(target - done)
            done = target
    result[-1] += usage_rows - done
    return result


def commitment_rate(fleet: Fleet, mean_rows: float, per_day: int) -> float:
    """USD per hour: SP_COVER x the plan-eligible cost the fleet is expected to run."""
    expected, rows, index = 0.0, 0.0, 0

    def add(res: Resource) -> tuple[float, float]:
        duty = res.p_day * res.mean_hours / 24
        return (res.sp_price * duty if res.eligible else 0.0), (res.p_day if per_day == 1 else duty)

    for res in fleet.persistent:
        cost, chance = add(res)
        expected, rows = expected + cost, rows + chance
    while rows < mean_rows:
        cost, chance = add(fleet.intermittent_at(index))
        expected, rows, index = expected + cost, rows + chance, index + 1
    return max(0.001, round(SP_COVER * expected, 3))


def bill(ledger: Ledger, res: Resource, qty: float, budget: float) -> tuple[float, bool]:
    """Write `res`'s row(s), applying the plan while budget lasts: (budget left, split?)."""
    if not res.eligible or budget <= 0:
        ledger.usage(res, qty)
        return budget, False
    cost = qty * res.sp_price
    if cost <= budget:
        ledger.usage(res, qty, cost)
        return budget - cost, False
    covered = budget / res.sp_price  # the plan runs out: the rest is billed on demand
    ledger.usage(res, covered, budget)
    ledger.usage(res, qty - covered)
    return 0.0, True


def fill_period(ledger: Ledger, fleet: Fleet, rng: Random, when: tuple, need: int,
                budget: float) -> None:  # fmt: skip
    """One charge period: every persistent resource that runs, then intermittent ones until
    `need` rows; then the plan's unused part, unless the plan ran out on a row (whose on-demand
    rest took that last row)."""
    day, weekday, days, h0, span, month_hours = when
    split, emitted, index, persistent = False, 0, 0, len(fleet.persistent)
    while index < persistent or emitted < need:
        if index < persistent:
            res = fleet.persistent[index]
        else:
            res = fleet.intermittent_at(index - persistent)
        index += 1
        if res.day != day:
            res.roll(day, weekday, days, rng)
        if res.hours <= 0:  # idle today
            continue
        qty = res.quantity(h0, span, month_hours)
        if qty > 0:
            budget, did_split = bill(ledger, res, qty, budget)
            split, emitted = split or did_split, emitted + 1
    if not split:
        ledger.unused(max(budget, 0.0), span)


def generate_focus(
    rows: int, seed: int, start: str, end: str, out: str, bad_rows: int = 0
) -> FocusStats:
    """Write a FOCUS 1.2 CSV (gzip if `out` ends in .gz) of exactly `rows` data rows."""
    first, stop = date.fromisoformat(start), date.fromisoformat(end)
    days, months = (stop - first).days, month_spans(first, stop)
    if days < 1 or rows < minimum_rows(start, end):
        raise ValueError(f"need --end after --start and --rows >= {minimum_rows(start, end):,}")
    usage_rows = rows - len(months) * ROWS_PER_MONTH - 1
    per_day = 24 if usage_rows > HOURLY_ABOVE * days else 1
    quota, span, period = quotas(usage_rows, first, days, per_day), 24 / per_day, 0
    rng = Random(seed)
    persistent = sum(weight for keep, weight in PROFILES.values() if keep)
    share = persistent / sum(weight for _, weight in PROFILES.values())
    fleet = Fleet(rng, int(share * (min(quota) - 1)))
    rate = commitment_rate(fleet, usage_rows / len(quota) - 1, per_day)
    arn = f"arn:aws:savingsplans::{ACCOUNTS['management'][1]}:savingsplan/" + "-".join(
        hex_id(rng, n) for n in (8, 4, 4, 4, 12)
    )
    bad_lines = [1 + (k + 1) * rows // (bad_rows + 1) for k in range(bad_rows)]
    stats = FocusStats(os.path.basename(out), "hourly" if per_day == 24 else "daily")
    ledger = Ledger(stats, savings_plan(arn, "eail-compute-sp-2026"), bad_lines)
    with open_output(out) as handle:
        handle.write(",".join(HEADER) + "\n")
        for index, (m_start, m_end, c_start, c_end) in enumerate(months):
            bp_start, bp_end, month_hours = ts(m_start), ts(m_end), (m_end - m_start).days * 24
            ledger.invoices = {p: str(1_000_000_000 + int(rng.random() * 9e9))
                               for p in ("AWS", "Google Cloud")}  # fmt: skip
            ledger.set_period(bp_start, bp_end, ts(c_start), ts(c_end))
            ledger.purchase(rate, (c_end - c_start).days * 24)
            for day in range((c_start - first).days, (c_end - first).days):
                midnight = datetime.combine(first + timedelta(day), datetime.min.time())
                for hour in range(per_day):
                    begin = midnight + timedelta(hours=hour * span)
                    ledger.set_period(
                        bp_start, bp_end, ts(begin), ts(begin + timedelta(hours=span))
                    )
                    when = (day, midnight.weekday(), days, hour * span, span, month_hours)
                    fill_period(ledger, fleet, rng, when, quota[period] - 1, rate * span)
                    ledger.flush(handle)
                    period += 1
            ledger.set_period(bp_start, bp_end, ts(c_start), ts(c_end))
            previous = months[index - 1] if index else months[index]
            correction = (ts(previous[2]), ts(previous[3]), MONTHS[previous[0].month - 1])
            ledger.month_end(f"{MONTHS[m_start.month - 1]} {m_start.year}",
                             correction if index == len(months) - 1 else None)  # fmt: skip
            ledger.flush(handle)
    return stats
